// Money arrives as an integer count of the currency's smallest unit (cents
// for USD) with an ISO 4217 code. It is formatted without floating point:
// the integer is turned into an exact decimal string, which
// Intl.NumberFormat formats as it is.

import type { Money } from "./gen/tienda/common/v1/money_pb.js";

const formatters = new Map<string, Intl.NumberFormat>();

function formatter(currency: string): Intl.NumberFormat {
  let nf = formatters.get(currency);
  if (nf === undefined) {
    nf = new Intl.NumberFormat(undefined, { style: "currency", currency });
    formatters.set(currency, nf);
  }
  return nf;
}

/**
 * minorToDecimal writes amount minor units as a decimal with digits
 * fraction digits: (1999n, 2) is "19.99", (-5n, 2) is "-0.05".
 */
export function minorToDecimal(amount: bigint, digits: number): `${number}` {
  const negative = amount < 0n;
  let s = (negative ? -amount : amount).toString();
  if (digits > 0) {
    s = s.padStart(digits + 1, "0");
    s = `${s.slice(0, -digits)}.${s.slice(-digits)}`;
  }
  return `${negative ? "-" : ""}${s}` as `${number}`;
}

/** formatMoney returns m for display, such as "$19.99"; "" for no money. */
export function formatMoney(m: Money | undefined): string {
  if (m === undefined || m.currencyCode === "") {
    return "";
  }
  let nf: Intl.NumberFormat;
  try {
    nf = formatter(m.currencyCode);
  } catch {
    // An unknown currency code: show the amount in minor units plainly.
    return `${m.amount} ${m.currencyCode} (minor units)`;
  }
  // The currency's usual number of fraction digits, such as 2 for USD and
  // 0 for JPY, is how many minor units make a major one.
  const digits = nf.resolvedOptions().maximumFractionDigits ?? 2;
  return nf.format(minorToDecimal(m.amount, digits));
}
