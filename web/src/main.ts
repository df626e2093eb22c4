// tienda's storefront: a single page that calls the gateway's ShopService
// with the generated Connect-ES client. Views are picked by the URL's hash
// (#/, #/product/SKU, #/cart, #/orders, #/orders/ID), so the server only
// ever serves index.html at "/", and ?api= and ?transport= in the query
// stay put while the shopper moves around.

import { connect, readConfig, type Api } from "./api.js";
import { showCart } from "./cart.js";
import { showCatalog } from "./catalog.js";
import { byId, h, replace } from "./dom.js";
import type { Cart } from "./gen/tienda/shop/v1/shop_pb.js";
import { showOrder, showOrders } from "./orders.js";
import { showProduct } from "./product.js";
import type { Ctx } from "./view.js";

const main = byId("main");
const notice = byId("notice");
const cartCount = byId("cart-count");
const cartLink = byId<HTMLAnchorElement>("cart-link");

let viewAbort = new AbortController();
let firstView = true;

/** cartChanged shows how many items the cart holds in the header. */
function cartChanged(cart: Cart | undefined): void {
  const n = (cart?.lines ?? []).reduce((sum, l) => sum + l.quantity, 0n);
  cartCount.textContent = n.toString();
  cartLink.setAttribute("aria-label", `Cart, ${n} ${n === 1n ? "item" : "items"}`);
}

function setTitle(title: string): HTMLHeadingElement {
  document.title = `${title} · tienda`;
  return h("h1", { tabindex: -1 }, title);
}

function markNav(path: string): void {
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav.main a")) {
    const target = a.getAttribute("href")?.slice(1) ?? "";
    const current = target === "/" ? path === "/" || path.startsWith("/product/")
      : path === target || path.startsWith(`${target}/`);
    if (current) {
      a.setAttribute("aria-current", "page");
    } else {
      a.removeAttribute("aria-current");
    }
  }
}

/** route shows the view that the hash names, ending the previous one. */
async function route(api: Api): Promise<void> {
  const hash = location.hash.startsWith("#/") ? location.hash.slice(1) : "/";
  const q = hash.indexOf("?");
  const path = q < 0 ? hash : hash.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : hash.slice(q + 1));

  viewAbort.abort();
  viewAbort = new AbortController();
  const ctx: Ctx = { api, signal: viewAbort.signal, main, params, cartChanged, setTitle };
  markNav(path);
  main.setAttribute("aria-busy", "true");

  const segments = path.split("/").filter((s) => s !== "").map(decodeURIComponent);
  try {
    if (segments.length === 0) {
      await showCatalog(ctx);
    } else if (segments[0] === "product" && segments.length === 2) {
      await showProduct(ctx, segments[1]!);
    } else if (segments[0] === "cart" && segments.length === 1) {
      await showCart(ctx);
    } else if (segments[0] === "orders" && segments.length === 1) {
      await showOrders(ctx);
    } else if (segments[0] === "orders" && segments.length === 2) {
      await showOrder(ctx, segments[1]!);
    } else {
      replace(main, setTitle("Page not found"),
        h("p", {}, "There is nothing here. ", h("a", { href: "#/" }, "Go to the catalog"), "."));
    }
  } finally {
    if (!ctx.signal.aborted) {
      main.removeAttribute("aria-busy");
    }
  }

  // Move focus to the new view's heading so that keyboard and screen
  // reader users start there, but not on the first load.
  if (!firstView && !ctx.signal.aborted) {
    main.querySelector<HTMLElement>("h1")?.focus();
  }
  firstView = false;
}

function start(): void {
  const config = readConfig(location);
  const api = connect(config);

  if (config.overridden || config.transport !== "connect") {
    byId("api-info").textContent =
      `Shop API: ${config.baseUrl} (${config.transport === "grpc-web" ? "gRPC-Web" : "Connect"})`;
  }
  api.session.onRenewed(() => {
    replace(notice,
      h("p", {}, "Your session had ended, so a new one was started with an empty cart."));
    cartChanged(undefined);
  });

  // The skip link focuses the content instead of changing the hash.
  byId("skip").addEventListener("click", (e) => {
    e.preventDefault();
    main.focus();
  });

  window.addEventListener("hashchange", () => {
    if (location.hash === "" || location.hash.startsWith("#/")) {
      notice.replaceChildren();
      void route(api);
    }
  });
  void route(api);

  // The cart's size for the header; this also creates the guest session
  // on a first visit. A failure is left to the view, which shows its own.
  api.shop.getCart({}).then(
    (res) => cartChanged(res.cart),
    () => {},
  );
}

start();
