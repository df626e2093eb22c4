// What every view gets from the shell, and the bits of page that most
// views share: a focusable heading, a loading line, an error box.

import type { Api } from "./api.js";
import { h } from "./dom.js";
import type { Cart } from "./gen/tienda/shop/v1/shop_pb.js";

/** Ctx is one showing of a view. */
export interface Ctx {
  api: Api;
  /** Aborts when the shopper goes to another view: stop streams and renders. */
  signal: AbortSignal;
  /** The element the view fills. */
  main: HTMLElement;
  /** The parameters after "?" in the hash, such as q and category. */
  params: URLSearchParams;
  /** cartChanged tells the shell about the cart after a call returned it. */
  cartChanged(cart: Cart | undefined): void;
  /** setTitle names the view in the heading and the document title. */
  setTitle(title: string): HTMLHeadingElement;
}

/** href builds a hash link such as "#/product/KIT-MUG" with parameters. */
export function href(path: string, params: Record<string, string> = {}): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== "") {
      query.set(key, value);
    }
  }
  const qs = query.toString();
  return `#${path}${qs === "" ? "" : `?${qs}`}`;
}

/** loadingLine is shown while a view waits for its first answer. */
export function loadingLine(what: string): HTMLParagraphElement {
  return h("p", { class: "loading", role: "status" }, `Loading ${what}…`);
}

/**
 * errorBox shows message as an alert, with a button that runs retry when
 * there is one.
 */
export function errorBox(message: string, retry?: () => void): HTMLDivElement {
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", {}, message),
    retry && h("button", { type: "button", class: "secondary", onclick: () => retry() },
      "Try again"),
  );
}

/**
 * messageSlot returns an element for a view's messages: show puts a
 * message in it (an alert for errors, a polite status otherwise) and clear
 * empties it.
 */
export function messageSlot(): {
  el: HTMLDivElement;
  show(text: string, kind?: "error" | "ok"): void;
  clear(): void;
} {
  const el = h("div", { class: "messages" });
  return {
    el,
    show(text: string, kind: "error" | "ok" = "error") {
      el.replaceChildren(
        h(
          "p",
          kind === "error" ? { class: "error", role: "alert" } : { class: "ok", role: "status" },
          text,
        ),
      );
    },
    clear() {
      el.replaceChildren();
    },
  };
}

/**
 * parseQuantity reads a quantity field: a whole number from min to 1000,
 * or undefined when the text is not one.
 */
export function parseQuantity(text: string, min: number): bigint | undefined {
  const t = text.trim();
  if (!/^\d{1,4}$/.test(t)) {
    return undefined;
  }
  const n = BigInt(t);
  return n >= BigInt(min) && n <= 1000n ? n : undefined;
}

/** The words for InvalidArgument on calls that carry a quantity. */
export const checkQuantity = "Please check the quantity: a whole number from 1 to 1000.";

/** categoryLabel is how a category (stored as "kitchen") reads on the page. */
export function categoryLabel(category: string): string {
  return category.charAt(0).toUpperCase() + category.slice(1);
}
