// Past orders: the list, newest first, and one order with its lines. An
// order just placed is shown with a confirmation.

import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

import { h, replace } from "./dom.js";
import { describeError } from "./errors.js";
import { OrderStatus, type Order } from "./gen/tienda/shop/v1/shop_pb.js";
import { formatMoney } from "./money.js";
import { errorBox, href, loadingLine, type Ctx } from "./view.js";

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function when(t: Timestamp | undefined): string {
  return t ? dateFormat.format(timestampDate(t)) : "";
}

function statusText(s: OrderStatus): string {
  return s === OrderStatus.PLACED ? "Placed" : "Unknown";
}

function itemCount(o: Order): bigint {
  return o.lines.reduce((n, l) => n + l.quantity, 0n);
}

/** showOrders renders the list of the shopper's orders. */
export async function showOrders(ctx: Ctx): Promise<void> {
  const heading = ctx.setTitle("Your orders");
  const list = h("ol", { class: "orders" });
  const more = h("button", { type: "button", class: "secondary" }, "Show older orders");
  const status = h("div", { class: "orders-status" }, loadingLine("your orders"));
  replace(ctx.main, heading, list, status);

  let pageToken = "";
  const load = async () => {
    more.disabled = true;
    let res;
    try {
      res = await ctx.api.shop.listOrders({ pageSize: 20, pageToken }, { signal: ctx.signal });
    } catch (err) {
      if (!ctx.signal.aborted) {
        replace(status, errorBox(describeError(err), () => void load()));
      }
      return;
    } finally {
      more.disabled = false;
    }
    if (ctx.signal.aborted) {
      return;
    }
    list.append(...res.orders.map(orderItem));
    pageToken = res.nextPageToken;
    if (list.childElementCount === 0) {
      replace(status, h("p", { class: "empty" },
        "You have no orders yet. ", h("a", { href: href("/") }, "Browse the catalog"), "."));
    } else {
      replace(status, pageToken !== "" ? more : null);
    }
  };
  more.addEventListener("click", () => void load());
  await load();
}

function orderItem(o: Order): HTMLLIElement {
  const items = itemCount(o);
  return h("li", { class: "order", "data-order-id": o.orderId },
    h("a", { href: href(`/orders/${encodeURIComponent(o.orderId)}`) }, `Order ${o.orderId}`),
    h("span", { class: "meta" }, when(o.createdAt)),
    h("span", {}, `${items} ${items === 1n ? "item" : "items"}`),
    h("strong", { class: "num" }, formatMoney(o.total)));
}

/** showOrder renders one order; placed says it was just placed. */
export async function showOrder(ctx: Ctx, orderId: string): Promise<void> {
  const back = h("p", { class: "back" }, h("a", { href: href("/orders") }, "← All orders"));
  const placed = ctx.params.get("placed") === "1";
  replace(ctx.main, back, loadingLine("the order"));

  let o: Order | undefined;
  try {
    o = (await ctx.api.shop.getOrder({ orderId }, { signal: ctx.signal })).order;
  } catch (err) {
    if (!ctx.signal.aborted) {
      ctx.setTitle("Order");
      replace(ctx.main, back, errorBox(describeError(err, {
        notFound: "We can't find that order.",
        invalid: "We can't find that order.",
      }), () => void showOrder(ctx, orderId)));
    }
    return;
  }
  if (ctx.signal.aborted || o === undefined) {
    return;
  }

  const heading = ctx.setTitle(placed ? "Thank you for your order" : `Order ${o.orderId}`);
  replace(ctx.main,
    back,
    heading,
    placed && h("div", { class: "confirmation", role: "status" },
      h("p", {}, "Your order is placed. ",
        h("span", {}, "Order number "), h("strong", { class: "order-id" }, o.orderId), ".")),
    h("dl", { class: "order-facts" },
      h("dt", {}, "Order"), h("dd", {}, o.orderId),
      h("dt", {}, "Placed"), h("dd", {}, when(o.createdAt)),
      h("dt", {}, "Status"), h("dd", { class: "status" }, statusText(o.status))),
    h("div", { class: "table-wrap" }, h("table", { class: "order-lines" },
      h("caption", { class: "visually-hidden" }, "Products in this order"),
      h("thead", {}, h("tr", {},
        h("th", { scope: "col" }, "Product"),
        h("th", { scope: "col", class: "num" }, "Unit price"),
        h("th", { scope: "col", class: "num" }, "Quantity"),
        h("th", { scope: "col", class: "num" }, "Line total"))),
      h("tbody", {}, ...o.lines.map((l) => h("tr", {},
        h("th", { scope: "row", "data-label": "Product" }, l.name),
        h("td", { class: "num", "data-label": "Unit price" }, formatMoney(l.unitPrice)),
        h("td", { class: "num", "data-label": "Quantity" }, l.quantity.toString()),
        h("td", { class: "num", "data-label": "Line total" }, formatMoney(l.lineTotal))))),
      h("tfoot", {}, h("tr", {},
        h("th", { scope: "row", colspan: 3 }, "Total"),
        h("td", { class: "num order-total", "data-label": "Total" }, formatMoney(o.total)))))),
    placed && h("p", {}, h("a", { href: href("/") }, "Continue shopping")));
}
