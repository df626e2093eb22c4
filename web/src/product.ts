// One product: its description, price and live availability, and a form
// to add some of it to the cart.

import { availabilityText, showAvailability, watchAvailability } from "./availability.js";
import { h, replace } from "./dom.js";
import { describeError, rememberName } from "./errors.js";
import { formatMoney } from "./money.js";
import { lastCatalogHash } from "./catalog.js";
import {
  categoryLabel, checkQuantity, errorBox, href, loadingLine, messageSlot, parseQuantity, type Ctx,
} from "./view.js";

/** showProduct renders the product view for sku. */
export async function showProduct(ctx: Ctx, sku: string): Promise<void> {
  const back = h("p", { class: "back" },
    h("a", { href: lastCatalogHash }, "← Back to the catalog"));
  replace(ctx.main, back, loadingLine("the product"));

  let res;
  try {
    res = await ctx.api.shop.getProduct({ sku }, { signal: ctx.signal });
  } catch (err) {
    if (!ctx.signal.aborted) {
      ctx.setTitle("Product");
      replace(ctx.main, back, errorBox(describeError(err, {
        notFound: "That product no longer exists.",
        invalid: "That is not a product of this shop.",
      }), () => void showProduct(ctx, sku)));
    }
    return;
  }
  if (ctx.signal.aborted) {
    return;
  }
  const p = res.product;
  if (p === undefined) {
    replace(ctx.main, back, errorBox("That product no longer exists."));
    return;
  }
  rememberName(p.sku, p.name);

  const heading = ctx.setTitle(p.name);
  const messages = messageSlot();
  const quantity = h("input", {
    id: "quantity", name: "quantity", type: "number", inputmode: "numeric",
    min: 1, step: 1, value: 1, required: true,
  });
  const add = h("button", { type: "submit" }, "Add to cart");
  const stock = h("p", {
    class: p.available <= 0n ? "avail out" : "avail",
    "data-avail-sku": p.sku,
    "data-available": p.available.toString(),
    // Changes are announced, politely, to screen reader users too.
    "aria-live": "polite",
  }, availabilityText(p.available));

  const form = h("form", {
    class: "add", novalidate: true,
    onsubmit: async (e: Event) => {
      e.preventDefault();
      messages.clear();
      const n = parseQuantity(quantity.value, 1);
      if (n === undefined) {
        messages.show(checkQuantity);
        quantity.focus();
        return;
      }
      add.disabled = true;
      try {
        const res = await ctx.api.shop.addToCart({ sku: p.sku, quantity: n });
        ctx.cartChanged(res.cart);
        const line = res.cart?.lines.find((l) => l.sku === p.sku);
        messages.el.replaceChildren(h("p", { class: "ok", role: "status" },
          `Added ${n} × ${p.name} to your cart`,
          line !== undefined && line.quantity !== n ? ` (${line.quantity} in it now)` : "",
          ". ", h("a", { href: href("/cart") }, "View cart")));
      } catch (err) {
        messages.show(describeError(err, { invalid: checkQuantity }));
      } finally {
        add.disabled = false;
      }
    },
  },
  h("div", { class: "field" }, h("label", { for: "quantity" }, "Quantity"), quantity),
  add);

  replace(ctx.main,
    back,
    h("article", { class: "product" },
      heading,
      h("p", { class: "meta" },
        h("a", { href: href("/", { category: p.category }) }, categoryLabel(p.category)),
        " · ",
        h("span", { class: "sku" }, p.sku)),
      h("p", { class: "description" }, p.description),
      h("p", { class: "price" }, formatMoney(p.price)),
      stock,
      form,
      messages.el));

  // data-watch says whether the number is live: "live" once the stream
  // delivers, "reconnecting" or "paused" when it cannot.
  watchAvailability(ctx.api, [p.sku], ctx.signal,
    (s, available) => showAvailability(ctx.main, s, available),
    (state) => {
      stock.dataset.watch = state;
    });
}
