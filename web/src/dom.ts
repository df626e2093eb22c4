// Small helpers to build the page from data without ever parsing data as
// HTML: every text goes through textContent, so names and messages from the
// server cannot inject markup.

/** A child of an element: a node, a text, or nothing. */
export type Child = Node | string | null | undefined | false;

/** Attributes of an element; on* keys with function values are listeners. */
export type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

/**
 * h creates an element with attributes and children. A false or nullish
 * attribute is left out, true sets it empty (for boolean attributes).
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else if (value !== false && value !== null && value !== undefined) {
      el.setAttribute(key, String(value));
    }
  }
  append(el, ...children);
  return el;
}

/** append adds children to parent, skipping the empty ones. */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

/** replace empties parent and fills it with children. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren();
  append(parent, ...children);
}

/** byId returns the element with id, which the page shell must have. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) {
    throw new Error(`page shell lacks #${id}`);
  }
  return el as T;
}
