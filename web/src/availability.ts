// Live availability: a view asks to watch the SKUs it shows, and every
// element marked data-avail-sku is kept up to date from the gateway's
// WatchAvailability stream until the view's signal aborts.

import { Code, ConnectError } from "@connectrpc/connect";

import type { Api } from "./api.js";

/** Called with each availability the stream reports. */
export type AvailabilityListener = (sku: string, available: bigint) => void;

/** What the stream is doing, for a small indicator on the page. */
export type WatchState = "live" | "reconnecting" | "paused";

/** After this many failed attempts in a row the watch gives up. */
const maxFailures = 5;

/**
 * watchAvailability streams the availability of skus to listener until
 * signal aborts, which also cancels the HTTP request. The stream is
 * reopened with a growing delay when it ends or fails, and a session that
 * the server refuses is renewed once. onState hears how it goes.
 */
export function watchAvailability(
  api: Api,
  skus: string[],
  signal: AbortSignal,
  listener: AvailabilityListener,
  onState: (state: WatchState) => void = () => {},
): void {
  const unique = [...new Set(skus)].slice(0, 100);
  if (unique.length === 0) {
    return;
  }
  void run(api, unique, signal, listener, onState);
}

async function run(
  api: Api,
  skus: string[],
  signal: AbortSignal,
  listener: AvailabilityListener,
  onState: (state: WatchState) => void,
): Promise<void> {
  let failures = 0;
  let renewed = false;
  while (!signal.aborted) {
    const token = await api.session.token().catch(() => "");
    try {
      // No deadline: the stream is meant to stay open.
      const stream = api.shop.watchAvailability({ skus }, { signal, timeoutMs: 0 });
      for await (const res of stream) {
        // A stream that delivers is healthy again.
        failures = 0;
        onState("live");
        listener(res.sku, res.available);
      }
      // The server ended the stream (it may be restarting): reopen it.
      failures++;
    } catch (err) {
      if (signal.aborted) {
        return;
      }
      const code = ConnectError.from(err).code;
      if (code === Code.Unauthenticated && !renewed) {
        renewed = true;
        await api.session.renew(token).catch(() => "");
        continue;
      }
      failures++;
    }
    if (failures >= maxFailures) {
      onState("paused");
      return;
    }
    onState("reconnecting");
    await sleep(500 * 2 ** failures, signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

/**
 * showAvailability writes available into every element of root that is
 * marked data-avail-sku="sku", in words like "3 left" or "Out of stock".
 */
export function showAvailability(root: ParentNode, sku: string, available: bigint): void {
  for (const el of root.querySelectorAll<HTMLElement>("[data-avail-sku]")) {
    if (el.dataset.availSku === sku) {
      el.textContent = availabilityText(available);
      el.dataset.available = available.toString();
      el.classList.toggle("out", available <= 0n);
    }
  }
}

/** availabilityText is how the page says how many units are left. */
export function availabilityText(available: bigint): string {
  return available <= 0n ? "Out of stock" : `${available} left`;
}
