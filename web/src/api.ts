// The connection to the gateway: which URL and protocol the page uses, the
// guest session whose token goes on every call, and the generated client.

import {
  Code,
  ConnectError,
  createClient,
  type Client,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { timestampDate } from "@bufbuild/protobuf/wkt";

import { ShopService } from "./gen/tienda/shop/v1/shop_pb.js";

/** Shop is the generated client of tienda.shop.v1.ShopService. */
export type Shop = Client<typeof ShopService>;

/** ApiConfig says where and how the page calls the gateway. */
export interface ApiConfig {
  /** The gateway's base URL, such as "http://127.0.0.1:8080". */
  baseUrl: string;
  /** The protocol: Connect (JSON) or gRPC-Web (binary). */
  transport: "connect" | "grpc-web";
  /** Whether baseUrl came from ?api= rather than the page's own origin. */
  overridden: boolean;
}

/**
 * readConfig reads the configuration from the page's URL. By default the
 * page calls its own origin with the Connect protocol; ?api=URL calls
 * another gateway (which must allow this origin in -cors-origins), and
 * ?transport=grpc-web switches to gRPC-Web.
 */
export function readConfig(loc: Location): ApiConfig {
  const params = new URLSearchParams(loc.search);
  let baseUrl = loc.origin;
  let overridden = false;
  const api = params.get("api");
  if (api) {
    try {
      const u = new URL(api, loc.href);
      if (u.protocol === "http:" || u.protocol === "https:") {
        baseUrl = (u.origin + u.pathname).replace(/\/+$/, "");
        overridden = baseUrl !== loc.origin;
      }
    } catch {
      // Not a URL: keep the page's own origin.
    }
  }
  const transport = params.get("transport") === "grpc-web" ? "grpc-web" : "connect";
  return { baseUrl, transport, overridden };
}

/** Calls wait this long for an answer before giving up with DeadlineExceeded. */
const unaryTimeoutMs = 15_000;

interface StoredSession {
  token: string;
  /** Milliseconds since the epoch; 0 if the server named no expiry. */
  expires: number;
}

/**
 * Session keeps the guest session in localStorage, one per gateway, so that
 * a token is never sent to a gateway other than the one that issued it.
 * It creates a session on first use and makes a new one when the old one
 * is refused. Concurrent callers share one CreateSession call.
 */
export class Session {
  private current: StoredSession | null;
  private pending: Promise<string> | null = null;
  private readonly key: string;
  private readonly listeners: Array<() => void> = [];

  constructor(
    baseUrl: string,
    private readonly create: () => Promise<StoredSession>,
  ) {
    this.key = `tienda.session ${baseUrl}`;
    this.current = load(this.key);
  }

  /** token returns a token that has not expired, creating a session if needed. */
  token(): Promise<string> {
    const s = this.current;
    if (s !== null && (s.expires === 0 || s.expires > Date.now() + 60_000)) {
      return Promise.resolve(s.token);
    }
    return this.renew(s?.token ?? "");
  }

  /** peek returns the token in use, or "" before the first session. */
  peek(): string {
    return this.current?.token ?? "";
  }

  /**
   * renew replaces the session whose token is stale with a new one, unless
   * another caller did so already, and returns the token to use now. The
   * new shopper starts with an empty cart, so listeners are told.
   */
  renew(stale: string): Promise<string> {
    if (this.current !== null && this.current.token !== stale) {
      return Promise.resolve(this.current.token);
    }
    if (this.pending === null) {
      const hadSession = this.current !== null;
      this.pending = this.create()
        .then((s) => {
          this.current = s;
          save(this.key, s);
          if (hadSession) {
            this.listeners.forEach((fn) => fn());
          }
          return s.token;
        })
        .finally(() => {
          this.pending = null;
        });
    }
    return this.pending;
  }

  /** onRenewed calls fn whenever an old session was replaced by a new one. */
  onRenewed(fn: () => void): void {
    this.listeners.push(fn);
  }
}

function load(key: string): StoredSession | null {
  try {
    const raw = localStorage.getItem(key);
    if (raw === null) {
      return null;
    }
    const s = JSON.parse(raw) as Partial<StoredSession>;
    if (typeof s.token === "string" && s.token !== "" && typeof s.expires === "number") {
      return { token: s.token, expires: s.expires };
    }
  } catch {
    // Storage is off or holds something else: start afresh.
  }
  return null;
}

function save(key: string, s: StoredSession): void {
  try {
    localStorage.setItem(key, JSON.stringify(s));
  } catch {
    // Storage is off (private mode): the session lasts as long as the page.
  }
}

/**
 * authInterceptor sends the session's token on every call but
 * CreateSession. When a unary call is refused as Unauthenticated, for
 * example because the server's key was rotated, it makes a new session
 * once and repeats the call. Streams renew in their own loop instead (see
 * availability.ts), because their error arrives while reading.
 */
function authInterceptor(session: Session): Interceptor {
  return (next) => async (req) => {
    if (req.method.name === ShopService.method.createSession.name) {
      return next(req);
    }
    const token = await session.token();
    req.header.set("Authorization", `Bearer ${token}`);
    if (req.stream) {
      return next(req);
    }
    try {
      return await next(req);
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Unauthenticated) {
        throw err;
      }
      const fresh = await session.renew(token);
      req.header.set("Authorization", `Bearer ${fresh}`);
      return next(req);
    }
  };
}

/** Api is what the views use: the client and the session behind it. */
export interface Api {
  config: ApiConfig;
  shop: Shop;
  session: Session;
}

/** connect builds the transport that config asks for and a client on it. */
export function connect(config: ApiConfig): Api {
  let shop: Shop | undefined;
  const session = new Session(config.baseUrl, async () => {
    if (shop === undefined) {
      throw new Error("client not ready");
    }
    const res = await shop.createSession({});
    const expires = res.expireTime ? timestampDate(res.expireTime).getTime() : 0;
    return { token: res.token, expires };
  });
  const interceptors = [authInterceptor(session)];
  let transport: Transport;
  if (config.transport === "grpc-web") {
    transport = createGrpcWebTransport({
      baseUrl: config.baseUrl,
      interceptors,
      defaultTimeoutMs: unaryTimeoutMs,
    });
  } else {
    transport = createConnectTransport({
      baseUrl: config.baseUrl,
      interceptors,
      useBinaryFormat: false,
      // Side-effect-free methods go as GET requests.
      useHttpGet: true,
      defaultTimeoutMs: unaryTimeoutMs,
    });
  }
  shop = createClient(ShopService, transport);
  return { config, shop, session };
}
