// The cart: its lines with editable quantities and live stock, the total,
// and checkout.

import { availabilityText, watchAvailability } from "./availability.js";
import { h, replace } from "./dom.js";
import { describeError, isTransient, rememberName } from "./errors.js";
import type { Cart, CartLine } from "./gen/tienda/shop/v1/shop_pb.js";
import { formatMoney } from "./money.js";
import {
  checkQuantity, errorBox, href, loadingLine, messageSlot, parseQuantity, type Ctx,
} from "./view.js";

/** showCart renders the cart view. */
export async function showCart(ctx: Ctx): Promise<void> {
  const heading = ctx.setTitle("Your cart");
  replace(ctx.main, heading, loadingLine("your cart"));

  let cart: Cart | undefined;
  try {
    cart = (await ctx.api.shop.getCart({}, { signal: ctx.signal })).cart;
  } catch (err) {
    if (!ctx.signal.aborted) {
      replace(ctx.main, heading, errorBox(describeError(err), () => void showCart(ctx)));
    }
    return;
  }
  if (ctx.signal.aborted) {
    return;
  }
  ctx.cartChanged(cart);
  new CartView(ctx, heading).render(cart);
}

// CartView owns the cart's part of the page while the cart is shown. Every
// call that changes the cart returns it, and the view is drawn again from
// that answer, so the page never computes prices itself.
class CartView {
  private readonly messages = messageSlot();
  private readonly body = h("div", { class: "cart-body" });
  private watched = "";
  private watchAbort: AbortController | null = null;
  private busy = false;

  constructor(private readonly ctx: Ctx, heading: HTMLHeadingElement) {
    replace(ctx.main, heading, this.messages.el, this.body);
    ctx.signal.addEventListener("abort", () => this.watchAbort?.abort(), { once: true });
  }

  render(cart: Cart | undefined): void {
    const lines = cart?.lines ?? [];
    lines.forEach((l) => rememberName(l.sku, l.name));
    if (lines.length === 0) {
      replace(this.body, h("p", { class: "empty" },
        "Your cart is empty. ", h("a", { href: href("/") }, "Browse the catalog"), "."));
      this.watch([]);
      return;
    }

    const table = h("table", { class: "cart" },
      h("caption", { class: "visually-hidden" }, "Products in your cart"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Product"),
        h("th", { scope: "col", class: "num" }, "Unit price"),
        h("th", { scope: "col" }, "Quantity"),
        h("th", { scope: "col", class: "num" }, "Line total"),
        h("th", { scope: "col" }, "Stock"),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Remove")))),
      h("tbody", {}, ...lines.map((l) => this.lineRow(l))),
      h("tfoot", {}, h("tr", {},
        h("th", { scope: "row", colspan: 3 }, "Total"),
        h("td", { class: "num total", "data-label": "Total" }, formatMoney(cart?.total)),
        h("td", { colspan: 2 }))));

    const checkout = h("button", { type: "button", class: "checkout" },
      pendingAttempt(this.ctx, cart) ? "Try again: place order" : "Place order");
    checkout.addEventListener("click", () => void this.checkout(cart, checkout));

    replace(this.body,
      h("div", { class: "table-wrap" }, table),
      h("div", { class: "checkout-bar" },
        h("p", { class: "total-line" }, "Total ",
          h("strong", { class: "cart-total" }, formatMoney(cart?.total))),
        checkout));
    this.watch(lines.map((l) => l.sku));
  }

  private lineRow(l: CartLine): HTMLTableRowElement {
    const inputId = `qty-${l.sku}`;
    const quantity = h("input", {
      id: inputId, name: "quantity", type: "number", inputmode: "numeric",
      min: 0, step: 1, value: l.quantity.toString(), class: "qty",
    });
    const update = h("form", {
      class: "qty-form", novalidate: true,
      onsubmit: (e: Event) => {
        e.preventDefault();
        void this.setQuantity(l, quantity);
      },
    },
    h("label", { for: inputId, class: "visually-hidden" }, `Quantity of ${l.name}`),
    quantity,
    h("button", { type: "submit", class: "secondary small" }, "Update"));

    const stock = h("span", {
      "data-avail-sku": l.sku, "data-available": l.available.toString(),
      class: "avail",
    });
    const stockCell = h("td", { "data-label": "Stock", class: "stock" });
    showLineStock(stockCell, stock, l.quantity, l.available);

    return h("tr", { "data-sku": l.sku, "data-quantity": l.quantity.toString() },
      h("th", { scope: "row", "data-label": "Product" },
        h("a", { href: href(`/product/${encodeURIComponent(l.sku)}`) }, l.name)),
      h("td", { class: "num", "data-label": "Unit price" }, formatMoney(l.unitPrice)),
      h("td", { "data-label": "Quantity" }, update),
      h("td", { class: "num line-total", "data-label": "Line total" }, formatMoney(l.lineTotal)),
      stockCell,
      h("td", {}, h("button", {
        type: "button", class: "link remove", "aria-label": `Remove ${l.name}`,
        onclick: () => void this.remove(l),
      }, "Remove")));
  }

  private async setQuantity(l: CartLine, input: HTMLInputElement): Promise<void> {
    const n = parseQuantity(input.value, 0);
    if (n === undefined) {
      this.messages.show(checkQuantity);
      input.focus();
      return;
    }
    if (n === l.quantity) {
      return;
    }
    await this.change(async () => {
      const res = await this.ctx.api.shop.updateCartItem({ sku: l.sku, quantity: n });
      return res.cart;
    }, n === 0n ? `Removed ${l.name}.` : `${l.name}: quantity is now ${n}.`, () => {
      input.value = l.quantity.toString();
    });
  }

  private async remove(l: CartLine): Promise<void> {
    await this.change(async () => {
      const res = await this.ctx.api.shop.removeFromCart({ sku: l.sku });
      return res.cart;
    }, `Removed ${l.name}.`);
  }

  // change runs one call that changes the cart, then draws the cart it
  // returned, or shows why it failed and runs undo.
  private async change(
    call: () => Promise<Cart | undefined>, done: string, undo: () => void = () => {},
  ): Promise<void> {
    if (this.busy) {
      return;
    }
    this.busy = true;
    this.body.setAttribute("aria-busy", "true");
    this.messages.clear();
    try {
      const cart = await call();
      this.ctx.cartChanged(cart);
      if (!this.ctx.signal.aborted) {
        this.render(cart);
        this.messages.show(done, "ok");
      }
    } catch (err) {
      undo();
      this.messages.show(describeError(err, { invalid: checkQuantity }));
    } finally {
      this.busy = false;
      this.body.removeAttribute("aria-busy");
    }
  }

  private async checkout(cart: Cart | undefined, button: HTMLButtonElement): Promise<void> {
    if (this.busy || cart === undefined) {
      return;
    }
    this.busy = true;
    button.disabled = true;
    button.textContent = "Placing your order…";
    this.messages.clear();
    const requestId = checkoutAttempt(this.ctx, cart);
    try {
      const res = await this.ctx.api.shop.checkout({ requestId });
      forgetAttempt();
      this.ctx.cartChanged(undefined);
      const id = res.order?.orderId ?? "";
      location.hash = href(`/orders/${encodeURIComponent(id)}`, { placed: "1" });
    } catch (err) {
      // A retry of this attempt reuses its request id only when the call
      // may not have reached the end; otherwise the next try is a new one.
      if (!isTransient(err)) {
        forgetAttempt();
      }
      this.messages.show(describeError(err, {
        invalid: "Please check the quantities in your cart.",
        notFound: "A product in your cart no longer exists. Please remove it.",
      }));
      button.disabled = false;
      button.textContent = isTransient(err) ? "Try again: place order" : "Place order";
      // The cart may have changed (stock ran short): show it as it is now.
      if (!isTransient(err)) {
        void this.refresh();
      }
    } finally {
      this.busy = false;
    }
  }

  private async refresh(): Promise<void> {
    try {
      const res = await this.ctx.api.shop.getCart({}, { signal: this.ctx.signal });
      this.ctx.cartChanged(res.cart);
      if (!this.ctx.signal.aborted) {
        this.render(res.cart);
      }
    } catch {
      // The message about the checkout stays; the old cart stays drawn.
    }
  }

  // watch keeps the stock column live for skus, opening a new stream only
  // when the set of lines changed.
  private watch(skus: string[]): void {
    const key = [...skus].sort().join("\n");
    if (key === this.watched) {
      return;
    }
    this.watched = key;
    this.watchAbort?.abort();
    this.watchAbort = null;
    if (skus.length === 0 || this.ctx.signal.aborted) {
      return;
    }
    const ac = new AbortController();
    this.watchAbort = ac;
    watchAvailability(this.ctx.api, skus, ac.signal, (sku, available) => {
      for (const row of this.body.querySelectorAll<HTMLTableRowElement>("tr[data-sku]")) {
        if (row.dataset.sku !== sku) {
          continue;
        }
        const cell = row.querySelector<HTMLElement>("td.stock");
        const stock = cell?.querySelector<HTMLElement>("[data-avail-sku]");
        if (cell && stock) {
          showLineStock(cell, stock, BigInt(row.dataset.quantity ?? "0"), available);
        }
      }
    });
  }
}

// showLineStock fills a line's stock cell: how many are left, and whether
// the line's quantity can be bought.
function showLineStock(
  cell: HTMLElement, stock: HTMLElement, quantity: bigint, available: bigint,
): void {
  const inStock = available >= quantity;
  stock.textContent = availabilityText(available);
  stock.dataset.available = available.toString();
  stock.classList.toggle("out", available <= 0n);
  cell.classList.toggle("short", !inStock);
  replace(cell, h("span", {},
    h("span", { class: inStock ? "in-stock" : "not-in-stock" },
      inStock ? "In stock" : "Not enough stock"),
    " · ",
    stock));
}

// A checkout attempt is one request id for one version of one shopper's
// cart. It is kept in sessionStorage so that a retry, even after a reload,
// reuses the id and so never buys twice; any change to the cart starts a
// new attempt.
interface Attempt {
  requestId: string;
  token: string;
  version: string;
}

const attemptKey = "tienda.checkout";

// attempt is the pending attempt; storage only carries it over a reload.
let attempt: Attempt | null = loadAttempt();

function loadAttempt(): Attempt | null {
  try {
    const a = JSON.parse(sessionStorage.getItem(attemptKey) ?? "null") as Partial<Attempt> | null;
    if (a && typeof a.requestId === "string" && typeof a.token === "string" &&
      typeof a.version === "string") {
      return { requestId: a.requestId, token: a.token, version: a.version };
    }
  } catch {
    // No storage or something else in it: no pending attempt.
  }
  return null;
}

function pendingAttempt(ctx: Ctx, cart: Cart | undefined): Attempt | null {
  const a = attempt;
  if (a && cart && a.token === ctx.api.session.peek() && a.version === cart.version.toString()) {
    return a;
  }
  return null;
}

function checkoutAttempt(ctx: Ctx, cart: Cart): string {
  const pending = pendingAttempt(ctx, cart);
  if (pending) {
    return pending.requestId;
  }
  attempt = {
    requestId: newRequestId(),
    token: ctx.api.session.peek(),
    version: cart.version.toString(),
  };
  try {
    sessionStorage.setItem(attemptKey, JSON.stringify(attempt));
  } catch {
    // Without storage the attempt still lasts while the page is open.
  }
  return attempt.requestId;
}

function forgetAttempt(): void {
  attempt = null;
  try {
    sessionStorage.removeItem(attemptKey);
  } catch {
    // Nothing was stored.
  }
}

// newRequestId returns a random UUID. crypto.randomUUID exists only in
// secure contexts (https, localhost); elsewhere the same is built from
// getRandomValues.
function newRequestId(): string {
  if (typeof crypto.randomUUID === "function") {
    return crypto.randomUUID();
  }
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6]! & 0x0f) | 0x40;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return [8, 12, 16, 20].reduceRight(
    (s, at) => `${s.slice(0, at)}-${s.slice(at)}`, hex);
}
