// The page's one error boundary: every failed call is shown through
// describeError, which turns a ConnectError's code and message into words
// a shopper understands. Stack traces and internal text never reach the page.

import { Code, ConnectError } from "@connectrpc/connect";

/** productNames maps SKUs to product names, from every product the page saw. */
export const productNames = new Map<string, string>();

/** rememberName records the name of a product for messages that name its SKU. */
export function rememberName(sku: string, name: string): void {
  if (sku !== "" && name !== "") {
    productNames.set(sku, name);
  }
}

/** Wording that depends on what the failed call was about. */
export interface ErrorWording {
  /** For InvalidArgument, such as "Please check the quantity." */
  invalid?: string;
  /** For NotFound, such as "That order doesn't exist." */
  notFound?: string;
}

const busy = "The shop is busy, please try again.";

/**
 * describeError returns what to tell the shopper about err. Messages of
 * FailedPrecondition and AlreadyExists are written by the gateway for
 * people (such as "only 2 left of KIT-MUG-ENAMEL"), so they are shown with
 * product names in place of SKUs; every other code gets a fixed sentence.
 */
export function describeError(err: unknown, wording: ErrorWording = {}): string {
  const cerr = ConnectError.from(err);
  switch (cerr.code) {
    case Code.FailedPrecondition:
      return readable(cerr.rawMessage) || "That can't be done right now.";
    case Code.AlreadyExists:
      return readable(cerr.rawMessage) || "That was done already.";
    case Code.InvalidArgument:
    case Code.OutOfRange:
      return wording.invalid ?? "Please check what you entered.";
    case Code.NotFound:
      return wording.notFound ?? "That product no longer exists.";
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return busy;
    case Code.ResourceExhausted:
      return "The shop is very busy right now. Please wait a moment and try again.";
    case Code.Aborted:
      return "Your cart changed meanwhile. Please look it over and try again.";
    case Code.Unauthenticated:
      return "Your session has ended. Please reload the page to start a new one.";
    case Code.PermissionDenied:
      return "That isn't yours to see or change.";
    case Code.Canceled:
      return "The request was cancelled.";
    case Code.Unknown:
      if (isNetworkFailure(cerr)) {
        return "We can't reach the shop right now. Please check your connection and try again.";
      }
      return somethingWrong(cerr);
    default:
      return somethingWrong(cerr);
  }
}

/** isTransient reports whether err may go away when the same call is retried. */
export function isTransient(err: unknown): boolean {
  const cerr = ConnectError.from(err);
  return (
    cerr.code === Code.Unavailable ||
    cerr.code === Code.DeadlineExceeded ||
    cerr.code === Code.ResourceExhausted ||
    (cerr.code === Code.Unknown && isNetworkFailure(cerr))
  );
}

/** isCanceled reports whether err only says that the page cancelled a call. */
export function isCanceled(err: unknown): boolean {
  return ConnectError.from(err).code === Code.Canceled;
}

// A fetch that never got an HTTP response, because the network is down or
// the browser refused the response (CORS), rejects with a TypeError.
function isNetworkFailure(cerr: ConnectError): boolean {
  return cerr.cause instanceof TypeError;
}

// somethingWrong is for server faults. Their message is not shown, but the
// request id helps an operator find the log line.
function somethingWrong(cerr: ConnectError): string {
  const id = cerr.metadata.get("X-Request-Id");
  const ref = id ? ` (reference ${id.slice(0, 64)})` : "";
  return `Something went wrong on our side${ref}. Please try again.`;
}

// readable puts product names in place of known SKUs, drops a SKU that
// follows its own name in parentheses, and makes a sentence of the result.
function readable(message: string): string {
  let text = message.trim().slice(0, 300);
  if (text === "") {
    return "";
  }
  text = text.replace(/ \(([A-Za-z0-9_-]+)\)/g, (all: string, sku: string) =>
    productNames.has(sku) ? "" : all,
  );
  text = text.replace(/[A-Za-z0-9_-]+/g, (word) => productNames.get(word) ?? word);
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}
