// The catalog: a search box, a category filter, and one page of products
// at a time with next and previous links.

import type { Api } from "./api.js";
import { availabilityText, showAvailability, watchAvailability } from "./availability.js";
import { h, replace } from "./dom.js";
import { describeError, rememberName } from "./errors.js";
import type { Product } from "./gen/tienda/shop/v1/shop_pb.js";
import { formatMoney } from "./money.js";
import { categoryLabel, errorBox, href, loadingLine, type Ctx } from "./view.js";

const pageSize = 12;

// previousPage remembers, for each page token of the current search, the
// token of the page before it, so that Previous works after Next, after
// the browser's Back, and without keeping a stack in the URL.
let previousPage = new Map<string, string>();
let previousSearch = "";

/** lastCatalogHash is the catalog page to go back to from a product. */
export let lastCatalogHash = "#/";

/** showCatalog renders the catalog view for the q, category and page parameters. */
export async function showCatalog(ctx: Ctx): Promise<void> {
  const q = ctx.params.get("q") ?? "";
  const category = ctx.params.get("category") ?? "";
  const page = ctx.params.get("page") ?? "";
  const pageNumber = Math.max(1, Number.parseInt(ctx.params.get("n") ?? "1", 10) || 1);
  lastCatalogHash = location.hash || "#/";
  if (previousSearch !== `${q}\n${category}`) {
    previousSearch = `${q}\n${category}`;
    previousPage = new Map();
  }

  let title = "Catalog";
  if (q !== "") {
    title = `Results for “${q}”`;
  } else if (category !== "") {
    title = categoryLabel(category);
  }
  const heading = ctx.setTitle(title);
  const form = searchForm(ctx.api, q, category);
  const results = h("section", { "aria-labelledby": "results-heading", class: "results" });
  replace(ctx.main, heading, form, results);
  replace(results, h("h2", { id: "results-heading", class: "visually-hidden" }, "Products"),
    loadingLine("products"));

  let res;
  try {
    res = await ctx.api.shop.listProducts(
      { pageSize, pageToken: page, query: q, category },
      { signal: ctx.signal },
    );
  } catch (err) {
    if (!ctx.signal.aborted) {
      replace(results, errorBox(describeError(err, {
        invalid: "Please shorten the search: at most 100 characters.",
        notFound: "That page of the catalog no longer exists.",
      }), () => void showCatalog(ctx)));
    }
    return;
  }
  if (ctx.signal.aborted) {
    return;
  }
  res.products.forEach((p) => rememberName(p.sku, p.name));

  const list = h("ul", { class: "products" }, ...res.products.map(productCard));
  const empty = res.products.length === 0
    ? h("p", { class: "empty" }, q !== ""
      ? `No products match “${q}”${category !== "" ? ` in ${categoryLabel(category)}` : ""}.`
      : "No products here yet.")
    : null;
  replace(results,
    h("h2", { id: "results-heading", class: "visually-hidden" }, "Products"),
    empty,
    list,
    pager(q, category, page, pageNumber, res.nextPageToken));

  watchAvailability(ctx.api, res.products.map((p) => p.sku), ctx.signal,
    (sku, available) => showAvailability(results, sku, available));
}

function productCard(p: Product): HTMLLIElement {
  return h("li", { class: "card" },
    h("h3", {}, h("a", { href: href(`/product/${encodeURIComponent(p.sku)}`) }, p.name)),
    h("p", { class: "meta" }, categoryLabel(p.category)),
    h("p", { class: "price" }, formatMoney(p.price)),
    h("p", {
      class: p.available <= 0n ? "avail out" : "avail",
      "data-avail-sku": p.sku,
      "data-available": p.available.toString(),
    }, availabilityText(p.available)));
}

function pager(
  q: string, category: string, page: string, pageNumber: number, next: string,
): HTMLElement | null {
  if (page === "" && next === "") {
    return null;
  }
  if (next !== "") {
    previousPage.set(next, page);
  }
  // Without a remembered previous page (after a reload), Previous goes
  // back to the first one.
  const prevToken = previousPage.get(page);
  const prevNumber = prevToken === undefined || prevToken === "" ? 1 : pageNumber - 1;
  const prevLink = page === ""
    ? null
    : h("a", {
      class: "button secondary",
      rel: "prev",
      href: href("/", {
        q, category, page: prevToken ?? "", n: prevNumber > 1 ? String(prevNumber) : "",
      }),
    }, "← Previous");
  const nextLink = next === ""
    ? null
    : h("a", {
      class: "button secondary",
      rel: "next",
      href: href("/", { q, category, page: next, n: String(pageNumber + 1) }),
    }, "Next →");
  return h("nav", { class: "pager", "aria-label": "Pages" },
    prevLink, h("span", { class: "page-number" }, `Page ${pageNumber}`), nextLink);
}

function searchForm(api: Api, q: string, category: string): HTMLFormElement {
  const input = h("input", {
    id: "search", name: "q", type: "search", value: q, maxlength: 100,
    autocomplete: "off", placeholder: "mug, tea, lamp…",
  });
  const select = h("select", { id: "category", name: "category" },
    h("option", { value: "" }, "All categories"));
  if (category !== "") {
    select.append(h("option", { value: category, selected: true }, categoryLabel(category)));
  }
  const go = () => {
    location.hash = href("/", { q: input.value.trim(), category: select.value });
  };
  select.addEventListener("change", go);
  void fillCategories(api, select, category);

  return h("form", {
    class: "search", role: "search", novalidate: true,
    onsubmit: (e: Event) => {
      e.preventDefault();
      go();
    },
  },
  h("div", { class: "field" }, h("label", { for: "search" }, "Search"), input),
  h("div", { class: "field" }, h("label", { for: "category" }, "Category"), select),
  h("button", { type: "submit" }, "Search"));
}

// TODO(web): the API has no call that lists categories, so they are
// gathered from the whole catalog, once per page load. Fine for a shop of
// a few hundred products; a ListCategories method would scale.
let categories: Promise<string[]> | null = null;

function allCategories(api: Api): Promise<string[]> {
  if (categories === null) {
    categories = (async () => {
      const found = new Set<string>();
      let pageToken = "";
      for (let i = 0; i < 10; i++) {
        const res = await api.shop.listProducts({ pageSize: 100, pageToken });
        for (const p of res.products) {
          found.add(p.category);
          rememberName(p.sku, p.name);
        }
        pageToken = res.nextPageToken;
        if (pageToken === "") {
          break;
        }
      }
      found.delete("");
      return [...found].sort((a, b) => a.localeCompare(b));
    })();
    // A failure is retried on the next showing rather than remembered.
    categories.catch(() => {
      categories = null;
    });
  }
  return categories;
}

async function fillCategories(api: Api, select: HTMLSelectElement, current: string) {
  let names: string[];
  try {
    names = await allCategories(api);
  } catch {
    return; // The filter stays at "All categories"; the products show why.
  }
  select.replaceChildren(h("option", { value: "" }, "All categories"),
    ...names.map((c) => h("option", { value: c, selected: c === current }, categoryLabel(c))));
  if (current !== "" && !names.includes(current)) {
    select.append(h("option", { value: current, selected: true }, categoryLabel(current)));
  }
}
