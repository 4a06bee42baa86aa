/**
 * A stand-in for the Netbox REST API in tests, for faults a real NetBox cannot be made to produce:
 * IP address records held in memory and served with the JSON shapes, filters, pagination and
 * errors of NetBox 4.6/4.7 (the end-to-end tests run against a real one, tests/netbox/real.ts),
 * plus faults queued on demand (hung requests, server errors, login pages, redirects, broken or
 * misshapen JSON). It is as unkind as the real one: any valid status change is accepted (last
 * write wins), weak ETags from `last_updated` with `If-Match` honoured (412), 403 without
 * `WWW-Authenticate` for a bad token, HTML 404 pages whose text changes per request off the API,
 * relative redirects, 301 for an API path without its slash, and an optional latency per request.
 * Listens on 127.0.0.1 only. Test code only.
 *
 * @example
 * ```ts
 * await using netbox = await NetboxTestServer.start({ pageSize: 2, tenants: ["lb"] });
 * netbox.addRange("192.0.2.10/24", 5, { status: "reserved", tenant: "lb" });
 * netbox.failNext({ kind: "status", status: 500 }, 1, { method: "PATCH" });
 * const response = await fetch(`${netbox.url}api/ipam/ip-addresses/?status=reserved`, {
 *   headers: { Authorization: `Token ${netbox.token}` },
 * });
 * console.log((await response.json()).count); // 5
 * ```
 *
 * @module
 */
import {
  addressBits,
  formatAddress,
  type IpAddress,
  maxAddressValue,
  tryParseAddress,
} from "../../ipam/address.ts";

/** The status choices of a Netbox IP address. */
export type NetboxStatus = "active" | "reserved" | "deprecated" | "dhcp" | "slaac";

/** One IP address record held by the server; tests may change its mutable fields directly. */
export interface NetboxAddressRecord {
  /** Netbox object id, from 1 up in the order of addition. */
  readonly id: number;
  /** CIDR text as Netbox stores it: canonical host, then the prefix length ("192.0.2.10/24"). */
  address: string;
  /** Current status. */
  status: NetboxStatus;
  /** Tenant slug, or null without a tenant. */
  tenant: string | null;
  /** Free text. */
  description: string;
}

/** Optional fields of a record added with {@linkcode NetboxTestServer.add}. */
export interface NetboxAddOptions {
  /** Defaults to "active", as in Netbox. */
  readonly status?: NetboxStatus;
  /** Tenant slug; registers the tenant. Defaults to null. */
  readonly tenant?: string | null;
  /** Defaults to "". */
  readonly description?: string;
}

/** How a request consumed by {@linkcode NetboxTestServer.failNext} fails. */
export type NetboxFault =
  /** Accepts the request and never answers, until the client aborts or the server closes. */
  | { readonly kind: "timeout" }
  /**
   * Answers with `status` (200 to 599). Without `body`: a Django-like "Server Error" HTML page
   * as text/html. With `body`: that text, as `contentType` (default application/json).
   */
  | {
    readonly kind: "status";
    readonly status: number;
    readonly body?: string;
    readonly contentType?: string;
  }
  /** 200 text/html with a login page, as behind an authenticating proxy. */
  | { readonly kind: "html" }
  /** 302 to `<url>login/?next=<original path and query>`. */
  | { readonly kind: "redirect" }
  /** 200 application/json with truncated JSON. */
  | { readonly kind: "badJson" }
  /** 200 application/json with valid JSON of the wrong shape (an object for a list, and back). */
  | { readonly kind: "wrongShape" };

/** Which requests a queued fault applies to; omitted fields match anything. */
export interface NetboxFaultMatch {
  /** HTTP method, e.g. "PATCH" (case-insensitive). */
  readonly method?: string;
  /** Tested against the URL path, e.g. "/api/ipam/ip-addresses/7/". */
  readonly path?: RegExp;
}

/** One request as the server received it. */
export interface RecordedRequest {
  /** The `If-Match` header, if any. */
  readonly ifMatch?: string;
  /** HTTP method. */
  readonly method: string;
  /** URL path with its leading slash, without the query. */
  readonly path: string;
  /** Query parameters; of a repeated parameter, the last value. */
  readonly query: Readonly<Record<string, string>>;
  /** The body parsed as JSON, else its text, or undefined when empty. */
  readonly body: unknown;
  /** Whether the request carried the server's token (`Token <v1>` or `Bearer <v2>`). */
  readonly authorized: boolean;
}

/** Options of {@linkcode NetboxTestServer.start}. */
export interface NetboxTestServerOptions {
  /** The v1 API token to accept (`Token <token>`); defaults to a fixed 40-hex string. */
  readonly token?: string;
  /** The v2 API token to accept (`Bearer nbt_<key>.<secret>`); defaults to a fixed one. */
  readonly tokenV2?: string;
  /** Milliseconds every answer is delayed by, like a real NetBox's 100-250 ms. Default 0. */
  readonly latencyMs?: number;
  /** Page size when a list request has no usable `limit` (Netbox: 50). */
  readonly pageSize?: number;
  /** Known tenant slugs, besides those of added records. */
  readonly tenants?: readonly string[];
}

const DEFAULT_TOKEN = "7f3c9a1e5b2d4f6a8c0e1b3d5f7a9c2e4b6d8f01";
const DEFAULT_TOKEN_V2 = "nbt_Xk3mQ9pLr2Tz.Wq8vN4bJ6hY1cF5gD7sA0eR3tU9iO2pK6lZ8xC";
const DEFAULT_PAGE_SIZE = 50;
/** Netbox's MAX_PAGE_SIZE: the cap on `limit`, and what `limit=0` means. */
const MAX_PAGE_SIZE = 1000;
const API_VERSION = "4.7";
const LIST_PATH = "/api/ipam/ip-addresses/";
const ITEM_PATH = /^\/api\/ipam\/ip-addresses\/(\d+)\/$/;
const LOGIN_PATH = "/login/";

const STATUS_LABELS: Readonly<Record<NetboxStatus, string>> = {
  active: "Active",
  reserved: "Reserved",
  deprecated: "Deprecated",
  dhcp: "DHCP",
  slaac: "SLAAC",
};

const LOGIN_PAGE = `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <title>Home | NetBox</title>
</head>
<body>
  <main class="login-container">
    <form action="/login/" method="post">
      <input type="hidden" name="csrfmiddlewaretoken" value="testcsrftoken">
      <label for="id_username">Username</label>
      <input type="text" name="username" id="id_username" autofocus required>
      <label for="id_password">Password</label>
      <input type="password" name="password" id="id_password" required>
      <button type="submit">Sign In</button>
    </form>
  </main>
</body>
</html>
`;

function errorPage(status: number): string {
  const title = `${status >= 500 ? "Server Error" : "Error"} (${status})`;
  // Like NetBox's pages: the text differs with every request (time, request id).
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <title>${title}</title>
</head>
<body>
  <h1>${title}</h1><p>${new Date().toISOString()} request ${crypto.randomUUID()}</p>
</body>
</html>
`;
}

/** NetBox's 404 page off the API: HTML, different for every request. */
function notFoundPage(path: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head><title>Page Not Found | NetBox</title></head>
<body>
  <h1>Page Not Found</h1>
  <p>The requested page ${path} does not exist. ${new Date().toISOString()}</p>
  <input type="hidden" name="csrfmiddlewaretoken" value="${crypto.randomUUID()}">
</body>
</html>
`;
}

/** A CIDR text taken apart; `prefixLength` is undefined when the text has none. */
interface HostAndLength {
  readonly host: IpAddress;
  readonly prefixLength: number | undefined;
}

function parseHostAndLength(text: string): HostAndLength | undefined {
  const [hostText = "", lengthText, ...rest] = text.split("/");
  const host = tryParseAddress(hostText);
  if (host === undefined || rest.length > 0) return undefined;
  if (lengthText === undefined) return { host, prefixLength: undefined };
  if (!/^\d{1,3}$/.test(lengthText)) return undefined;
  const prefixLength = Number(lengthText);
  return prefixLength <= addressBits(host.family) ? { host, prefixLength } : undefined;
}

function sameHost(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.value === b.value;
}

/** IPv4 before IPv6, then by value; unparsable addresses (edited by a test) last. */
function compareHosts(a: IpAddress | undefined, b: IpAddress | undefined): number {
  if (a === undefined || b === undefined) {
    return (a === undefined ? 1 : 0) - (b === undefined ? 1 : 0);
  }
  if (a.family !== b.family) return a.family === "IPv4" ? -1 : 1;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

function isStatus(value: unknown): value is NetboxStatus {
  return typeof value === "string" && Object.hasOwn(STATUS_LABELS, value);
}

/** NetBox's weak ETag of a record: `W/"<last_updated in Python's isoformat>"`. */
function etagOf(lastUpdated: string): string {
  return `W/"${lastUpdated.replace(/Z$/, "+00:00")}"`;
}

/** The `If-Match` values of a request (NetBox ignores `*`). */
function ifMatchValues(header: string | null): string[] {
  if (header === null || header === "*") return [];
  return header.split(",").map((value) => value.trim()).filter((value) => value !== "");
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function jsonTypeName(value: unknown): string {
  if (Array.isArray(value)) return "list";
  switch (typeof value) {
    case "string":
      return "str";
    case "number":
      return Number.isInteger(value) ? "int" : "float";
    case "boolean":
      return "bool";
    default:
      return "NoneType";
  }
}

function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return textResponse(status, JSON.stringify(body), "application/json", headers);
}

function textResponse(
  status: number,
  body: string,
  contentType: string,
  headers: Record<string, string> = {},
): Response {
  const bodyless = status === 204 || status === 205 || status === 304;
  return new Response(bodyless ? null : body, {
    status,
    headers: { "Content-Type": contentType, ...headers },
  });
}

function notFound(): Response {
  return jsonResponse(404, { detail: "No IPAddress matches the given query." });
}

function methodNotAllowed(method: string, allowed: string): Response {
  return jsonResponse(405, { detail: `Method "${method}" not allowed.` }, { Allow: allowed });
}

type Authentication = { readonly ok: true } | { readonly ok: false; readonly detail: string };

/** NetBox 4.6+: `Token <v1>` or `Bearer nbt_<key>.<secret>`; 403 details as NetBox words them. */
function authenticate(header: string | null, tokenV1: string, tokenV2: string): Authentication {
  const parts = (header ?? "").split(" ").filter((part) => part !== "");
  const scheme = parts[0]?.toLowerCase();
  if ((scheme !== "token" && scheme !== "bearer") || parts.length !== 2) {
    return { ok: false, detail: "Authentication credentials were not provided." };
  }
  const given = parts[1] ?? "";
  if (scheme === "bearer" || given.startsWith("nbt_")) {
    return given === tokenV2 ? { ok: true } : { ok: false, detail: "Invalid v2 token" };
  }
  return given === tokenV1 ? { ok: true } : { ok: false, detail: "Invalid v1 token" };
}

function recordedBody(text: string): unknown {
  if (text === "") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Django's `redirect_to_login` quotes `next` keeping only "/" literal; the target is relative. */
function loginRedirectTarget(url: URL): string {
  const next = encodeURIComponent(url.pathname + url.search).replaceAll("%2F", "/");
  return `/login/?next=${next}`;
}

/** Netbox's `limit`/`offset` reading: bad values fall back, `limit=0` means the maximum. */
function pageWindow(params: URLSearchParams, pageSize: number): { limit: number; offset: number } {
  const limitText = params.get("limit");
  const offsetText = params.get("offset");
  let limit = pageSize;
  if (limitText !== null && /^\d+$/.test(limitText)) {
    const requested = Number(limitText);
    limit = requested === 0 ? MAX_PAGE_SIZE : Math.min(requested, MAX_PAGE_SIZE);
  }
  const offset = offsetText !== null && /^\d+$/.test(offsetText) ? Number(offsetText) : 0;
  return { limit, offset };
}

/** A page link as Django REST framework builds it: the same query, new limit and offset, sorted. */
function pageLink(url: URL, limit: number, offset: number | undefined): string {
  const params = new URLSearchParams(url.searchParams);
  params.set("limit", String(limit));
  if (offset === undefined) params.delete("offset");
  else params.set("offset", String(offset));
  params.sort();
  return `${url.origin}${url.pathname}?${params}`;
}

function tenantName(slug: string): string {
  const words = slug.replaceAll("-", " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

interface StoredRecord {
  readonly record: NetboxAddressRecord;
  readonly created: string;
  lastUpdatedMs: number;
  /** The record's fields at `lastUpdatedMs`: a test's direct edit counts as an update too. */
  seen: string;
}

function fieldsOf(record: NetboxAddressRecord): string {
  return JSON.stringify([record.address, record.status, record.tenant, record.description]);
}

/** Moves `last_updated` (and so the ETag) on when a test changed the record directly. */
function refresh(stored: StoredRecord): StoredRecord {
  const fields = fieldsOf(stored.record);
  if (fields !== stored.seen) {
    stored.seen = fields;
    stored.lastUpdatedMs = Math.max(Date.now(), stored.lastUpdatedMs + 1);
  }
  return stored;
}

/** Netbox's validation of the fields a test client may change; empty when valid. */
function changeErrors(body: Record<string, unknown>): Record<string, string[]> {
  const errors: Record<string, string[]> = {};
  const status = body.status;
  // Like NetBox: any valid choice is accepted, whatever the current status.
  if ("status" in body && !isStatus(status)) {
    const shown = typeof status === "string" ? status : JSON.stringify(status);
    errors.status = [`"${shown}" is not a valid choice.`];
  }
  const description = body.description;
  if ("description" in body) {
    if (typeof description !== "string") errors.description = ["Not a valid string."];
    else if (description.length > 200) {
      errors.description = ["Ensure this field has no more than 200 characters."];
    }
  }
  return errors;
}

/** Applies a valid change; `last_updated` moves on even when nothing changed, as in NetBox. */
function applyChange(stored: StoredRecord, body: Record<string, unknown>): void {
  const { record } = stored;
  if (isStatus(body.status)) record.status = body.status;
  if (typeof body.description === "string") record.description = body.description;
  stored.lastUpdatedMs = Math.max(Date.now(), stored.lastUpdatedMs + 1);
  stored.seen = fieldsOf(record);
}

interface QueuedFault {
  readonly fault: NetboxFault;
  readonly match: NetboxFaultMatch;
  remaining: number;
}

type FilterOutcome =
  | { readonly matches: readonly StoredRecord[] }
  | { readonly errors: Readonly<Record<string, string[]>> };

/** The fake Netbox server; see the module documentation. */
export class NetboxTestServer {
  /** Base URL with a trailing slash, e.g. "http://127.0.0.1:41234/". */
  readonly url: string;
  /** The accepted v1 API token. */
  readonly token: string;
  /** The accepted v2 API token. */
  readonly tokenV2: string;
  /** Milliseconds every answer is delayed by; tests may change it. */
  latencyMs: number;
  readonly #pageSize: number;
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #stored = new Map<number, StoredRecord>();
  readonly #tenantIds = new Map<string, number>();
  readonly #faults: QueuedFault[] = [];
  readonly #requests: RecordedRequest[] = [];
  readonly #releaseHeld = new Set<() => void>();
  #nextId = 1;
  #closing: Promise<void> | undefined;

  private constructor(options: NetboxTestServerOptions) {
    this.token = options.token ?? DEFAULT_TOKEN;
    this.tokenV2 = options.tokenV2 ?? DEFAULT_TOKEN_V2;
    this.latencyMs = options.latencyMs ?? 0;
    this.#pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(this.#pageSize) || this.#pageSize < 1) {
      throw new RangeError(`pageSize must be a positive integer, got ${this.#pageSize}`);
    }
    for (const slug of options.tenants ?? []) this.#tenantId(slug);
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      (request) => this.#handle(request),
    );
    this.url = `http://127.0.0.1:${this.#server.addr.port}/`;
  }

  /** Starts a server listening on a free port of 127.0.0.1. */
  static start(options: NetboxTestServerOptions = {}): Promise<NetboxTestServer> {
    return Promise.resolve(new NetboxTestServer(options));
  }

  /**
   * Adds an address record; ids increase from 1. The address is stored canonically, with /32 or
   * /128 when it has no prefix length. Throws when it does not parse or its host is already
   * present (Netbox's global uniqueness).
   */
  add(address: string, options: NetboxAddOptions = {}): NetboxAddressRecord {
    const parsed = parseHostAndLength(address);
    if (parsed === undefined) throw new TypeError(`"${address}" is not an IP address or CIDR`);
    const prefixLength = parsed.prefixLength ?? addressBits(parsed.host.family);
    return this.#insert(parsed.host, prefixLength, options);
  }

  /** Adds `count` consecutive host addresses from `first` (e.g. "192.0.2.10/24"), all alike. */
  addRange(first: string, count: number, options: NetboxAddOptions = {}): NetboxAddressRecord[] {
    const parsed = parseHostAndLength(first);
    if (parsed === undefined) throw new TypeError(`"${first}" is not an IP address or CIDR`);
    if (!Number.isInteger(count) || count < 0) {
      throw new RangeError(`count must be a non-negative integer, got ${count}`);
    }
    const { family, value } = parsed.host;
    if (value + BigInt(count) - 1n > maxAddressValue(family)) {
      throw new RangeError(`${count} addresses from ${first} run past the end of ${family}`);
    }
    const prefixLength = parsed.prefixLength ?? addressBits(family);
    const hosts = Array.from({ length: count }, (_, i) => ({ family, value: value + BigInt(i) }));
    const taken = hosts.find((host) => this.#findHost(host) !== undefined);
    if (taken !== undefined) throw new Error(`${formatAddress(taken)} is already present`);
    return hosts.map((host) => this.#insert(host, prefixLength, options));
  }

  /** The record whose host part is `host` (any spelling; a prefix length is ignored). */
  find(host: string): NetboxAddressRecord | undefined {
    const parsed = parseHostAndLength(host);
    return parsed === undefined ? undefined : this.#findHost(parsed.host)?.record;
  }

  /** The record with this id. */
  byId(id: number): NetboxAddressRecord | undefined {
    return this.#stored.get(id)?.record;
  }

  /** All records in id order (the live objects). */
  records(): readonly NetboxAddressRecord[] {
    return [...this.#stored.values()].map((stored) => stored.record);
  }

  /**
   * Makes the next `count` requests matching `match` fail with `fault`. Faults queue in order;
   * a request takes the first queued fault it matches, before authentication and routing. The
   * login page is never faulted (it is the target of the "redirect" fault).
   */
  failNext(fault: NetboxFault, count = 1, match: NetboxFaultMatch = {}): void {
    if (!Number.isInteger(count) || count < 1) {
      throw new RangeError(`count must be a positive integer, got ${count}`);
    }
    if (
      fault.kind === "status" &&
      !(Number.isInteger(fault.status) && fault.status >= 200 && fault.status <= 599)
    ) {
      throw new RangeError(`a fault status must be 200 to 599, got ${fault.status}`);
    }
    this.#faults.push({ fault, match, remaining: count });
  }

  /** Drops every queued fault. */
  clearFaults(): void {
    this.#faults.length = 0;
  }

  /** Every request received, in order, including faulted and unauthorized ones. */
  get requests(): readonly RecordedRequest[] {
    return this.#requests;
  }

  /** Forgets the recorded requests. */
  clearRequests(): void {
    this.#requests.length = 0;
  }

  /** Requests currently held by a "timeout" fault. */
  get pendingCount(): number {
    return this.#releaseHeld.size;
  }

  /** Answers held requests with 503, then stops the server. Safe to call more than once. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const release of [...this.#releaseHeld]) release();
      await this.#server.shutdown();
    })();
    return this.#closing;
  }

  /** Same as {@linkcode NetboxTestServer.close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #insert(host: IpAddress, prefixLength: number, options: NetboxAddOptions): NetboxAddressRecord {
    if (this.#findHost(host) !== undefined) {
      throw new Error(`${formatAddress(host)} is already present`);
    }
    const tenant = options.tenant ?? null;
    if (tenant !== null) this.#tenantId(tenant);
    const record: NetboxAddressRecord = {
      id: this.#nextId++,
      address: `${formatAddress(host)}/${prefixLength}`,
      status: options.status ?? "active",
      tenant,
      description: options.description ?? "",
    };
    const now = Date.now();
    this.#stored.set(record.id, {
      record,
      created: new Date(now).toISOString(),
      lastUpdatedMs: now,
      seen: fieldsOf(record),
    });
    return record;
  }

  #findHost(host: IpAddress): StoredRecord | undefined {
    for (const stored of this.#stored.values()) {
      const parsed = parseHostAndLength(stored.record.address);
      if (parsed !== undefined && sameHost(parsed.host, host)) return stored;
    }
    return undefined;
  }

  #tenantId(slug: string): number {
    let id = this.#tenantIds.get(slug);
    if (id === undefined) {
      id = this.#tenantIds.size + 1;
      this.#tenantIds.set(slug, id);
    }
    return id;
  }

  async #handle(request: Request): Promise<Response> {
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    const response = await this.#respond(request);
    response.headers.set("API-Version", API_VERSION);
    return response;
  }

  async #respond(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const bodyText = await request.text();
    const authentication = authenticate(
      request.headers.get("Authorization"),
      this.token,
      this.tokenV2,
    );
    const ifMatch = request.headers.get("If-Match");
    this.#requests.push({
      ...(ifMatch === null ? {} : { ifMatch }),
      method: request.method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: recordedBody(bodyText),
      authorized: authentication.ok,
    });
    if (url.pathname === LOGIN_PATH) {
      return request.method === "GET"
        ? textResponse(200, LOGIN_PAGE, "text/html; charset=utf-8")
        : methodNotAllowed(request.method, "GET");
    }
    const fault = this.#takeFault(request.method, url.pathname);
    if (fault !== undefined) return this.#faultResponse(fault, url, request.signal);
    if (!url.pathname.startsWith("/api/")) {
      return textResponse(404, notFoundPage(url.pathname), "text/html; charset=utf-8");
    }
    if (!url.pathname.endsWith("/")) {
      // Django's APPEND_SLASH: a permanent, relative redirect.
      return new Response(null, {
        status: 301,
        headers: { Location: `${url.pathname}/${url.search}` },
      });
    }
    if (!authentication.ok) return jsonResponse(403, { detail: authentication.detail });
    return this.#route(request, url, bodyText);
  }

  #takeFault(method: string, path: string): NetboxFault | undefined {
    const index = this.#faults.findIndex(({ match }) =>
      (match.method === undefined || match.method.toUpperCase() === method) &&
      (match.path === undefined || match.path.test(path))
    );
    const queued = this.#faults[index];
    if (queued === undefined) return undefined;
    queued.remaining -= 1;
    if (queued.remaining === 0) this.#faults.splice(index, 1);
    return queued.fault;
  }

  #faultResponse(fault: NetboxFault, url: URL, signal: AbortSignal): Response | Promise<Response> {
    switch (fault.kind) {
      case "timeout":
        return this.#hold(signal);
      case "status":
        return fault.body === undefined
          ? textResponse(fault.status, errorPage(fault.status), "text/html; charset=utf-8")
          : textResponse(fault.status, fault.body, fault.contentType ?? "application/json");
      case "html":
        return textResponse(200, LOGIN_PAGE, "text/html; charset=utf-8");
      case "redirect":
        return new Response(null, {
          status: 302,
          headers: { Location: loginRedirectTarget(url) },
        });
      case "badJson":
        return textResponse(
          200,
          '{"count": 1, "next": null, "previous": null, "results": [{"id": 1, "address": "192.0.',
          "application/json",
        );
      case "wrongShape":
        return jsonResponse(
          200,
          ITEM_PATH.test(url.pathname) ? [{ detail: "ok" }] : { detail: "ok" },
        );
    }
  }

  #hold(signal: AbortSignal): Promise<Response> {
    return new Promise((resolve) => {
      const release = () => {
        signal.removeEventListener("abort", release);
        this.#releaseHeld.delete(release);
        resolve(jsonResponse(503, { detail: "The Netbox test server closed." }));
      };
      if (signal.aborted || this.#closing !== undefined) {
        release();
        return;
      }
      this.#releaseHeld.add(release);
      signal.addEventListener("abort", release);
    });
  }

  #route(request: Request, url: URL, bodyText: string): Response {
    const base = `${url.origin}/`;
    if (url.pathname === LIST_PATH) {
      if (request.method === "GET") return this.#list(url, base);
      if (request.method === "PATCH") {
        return this.#bulkPatch(request.headers.get("If-Match"), bodyText, base);
      }
      return methodNotAllowed(request.method, "GET, PATCH");
    }
    const item = ITEM_PATH.exec(url.pathname);
    if (item === null) return notFound();
    if (request.method !== "GET" && request.method !== "PATCH") {
      return methodNotAllowed(request.method, "GET, PATCH");
    }
    const found = this.#stored.get(Number(item[1]));
    if (found === undefined) return notFound();
    const stored = refresh(found);
    const etag = () => ({ ETag: etagOf(new Date(stored.lastUpdatedMs).toISOString()) });
    if (request.method === "GET") return jsonResponse(200, this.#render(stored, base), etag());
    const wanted = ifMatchValues(request.headers.get("If-Match"));
    if (wanted.length > 0 && !wanted.includes(etag().ETag)) {
      return jsonResponse(412, { detail: "Precondition failed." }, etag());
    }
    const response = this.#patch(stored, request.headers.get("Content-Type"), bodyText, base);
    if (response.ok) response.headers.set("ETag", etag().ETag);
    return response;
  }

  #list(url: URL, base: string): Response {
    const outcome = this.#filter(url.searchParams);
    if ("errors" in outcome) return jsonResponse(400, outcome.errors);
    const { matches } = outcome;
    const { limit, offset } = pageWindow(url.searchParams, this.#pageSize);
    const count = matches.length;
    return jsonResponse(200, {
      count,
      next: offset + limit < count ? pageLink(url, limit, offset + limit) : null,
      previous: offset <= 0
        ? null
        : pageLink(url, limit, offset - limit <= 0 ? undefined : offset - limit),
      results: matches.slice(offset, offset + limit).map((stored) => this.#render(stored, base)),
    });
  }

  /** Netbox's filters: repeated values of one filter are alternatives, filters all apply. */
  #filter(params: URLSearchParams): FilterOutcome {
    const values = (name: string) => params.getAll(name).filter((value) => value !== "");
    const invalidChoice = (value: string) =>
      `Select a valid choice. ${value} is not one of the available choices.`;
    for (const stored of this.#stored.values()) {
      if (stored.record.tenant !== null) this.#tenantId(stored.record.tenant);
    }
    const statuses = values("status");
    const tenants = values("tenant");
    const families = values("family");
    const ids = values("id");
    const addresses = values("address").map(parseHostAndLength);

    const errors: Record<string, string[]> = {};
    const badStatus = statuses.find((status) => !isStatus(status));
    if (badStatus !== undefined) errors.status = [invalidChoice(badStatus)];
    const badTenant = tenants.find((slug) => !this.#tenantIds.has(slug));
    if (badTenant !== undefined) errors.tenant = [invalidChoice(badTenant)];
    if (!families.every((family) => /^-?\d+$/.test(family))) errors.family = ["Enter a number."];
    if (!ids.every((id) => /^-?\d+$/.test(id))) errors.id = ["Enter a number."];
    if (Object.keys(errors).length > 0) return { errors };

    const parsedHosts = new Map<StoredRecord, HostAndLength | undefined>();
    for (const stored of this.#stored.values()) {
      parsedHosts.set(stored, parseHostAndLength(stored.record.address));
    }
    const addressMatches = (parsed: HostAndLength | undefined) =>
      parsed !== undefined &&
      addresses.some((wanted) =>
        wanted !== undefined && sameHost(wanted.host, parsed.host) &&
        (wanted.prefixLength === undefined || wanted.prefixLength === parsed.prefixLength)
      );
    const matches = [...this.#stored.values()].filter((stored) => {
      const { record } = stored;
      const parsed = parsedHosts.get(stored);
      const family = parsed?.host.family === "IPv6" ? 6 : 4;
      return (statuses.length === 0 || statuses.includes(record.status)) &&
        (tenants.length === 0 || (record.tenant !== null && tenants.includes(record.tenant))) &&
        (families.length === 0 || families.some((wanted) => Number(wanted) === family)) &&
        (ids.length === 0 || ids.some((id) => Number(id) === record.id)) &&
        (addresses.length === 0 || addressMatches(parsed));
    });
    matches.sort((a, b) =>
      compareHosts(parsedHosts.get(a)?.host, parsedHosts.get(b)?.host) || a.record.id - b.record.id
    );
    return { matches };
  }

  #patch(
    stored: StoredRecord,
    contentType: string | null,
    bodyText: string,
    base: string,
  ): Response {
    const mediaType = (contentType ?? "").split(";")[0]?.trim().toLowerCase();
    if (mediaType !== "application/json") {
      return jsonResponse(415, {
        detail: `Unsupported media type "${contentType ?? ""}" in request.`,
      });
    }
    const parsed = parseJsonBody(bodyText);
    if (parsed instanceof Response) return parsed;
    const body = parsed.value;
    if (!isJsonObject(body)) {
      return jsonResponse(400, {
        non_field_errors: [`Invalid data. Expected a dictionary, but got ${jsonTypeName(body)}.`],
      });
    }

    const errors = changeErrors(body);
    if (Object.keys(errors).length > 0) return jsonResponse(400, errors);
    applyChange(stored, body);
    return jsonResponse(200, this.#render(stored, base));
  }

  /**
   * NetBox's bulk update: a JSON list of `{id, ...fields}`, all or nothing; `If-Match` holds the
   * ETags, and every record's current ETag must be among them (412 otherwise).
   */
  #bulkPatch(ifMatch: string | null, bodyText: string, base: string): Response {
    const parsed = parseJsonBody(bodyText);
    if (parsed instanceof Response) return parsed;
    const body = parsed.value;
    if (!Array.isArray(body)) return jsonResponse(400, { detail: "Expected a list of objects." });
    const items: { stored: StoredRecord; change: Record<string, unknown> }[] = [];
    for (const item of body) {
      if (!isJsonObject(item) || typeof item.id !== "number") {
        return jsonResponse(400, { detail: "Every object needs an id." });
      }
      const stored = this.#stored.get(item.id);
      if (stored === undefined) {
        return jsonResponse(400, { detail: `Object ${item.id} not found.` });
      }
      items.push({ stored: refresh(stored), change: item });
    }
    const wanted = ifMatchValues(ifMatch);
    const stale = items.find(({ stored }) =>
      wanted.length > 0 && !wanted.includes(etagOf(new Date(stored.lastUpdatedMs).toISOString()))
    );
    if (stale !== undefined) return jsonResponse(412, { detail: "Precondition failed." });
    const errors = items.map(({ stored, change }) => ({
      id: stored.record.id,
      errors: changeErrors(change),
    })).filter((e) => Object.keys(e.errors).length > 0);
    if (errors.length > 0) {
      return jsonResponse(400, {
        detail: `${errors.length} of ${items.length} objects could not be updated.`,
        errors,
      });
    }
    for (const { stored, change } of items) applyChange(stored, change);
    return jsonResponse(200, items.map(({ stored }) => this.#render(stored, base)));
  }

  #render(stored: StoredRecord, base: string): Record<string, unknown> {
    const { record } = refresh(stored);
    const family = parseHostAndLength(record.address)?.host.family === "IPv6" ? 6 : 4;
    return {
      id: record.id,
      url: `${base}api/ipam/ip-addresses/${record.id}/`,
      display_url: `${base}ipam/ip-addresses/${record.id}/`,
      display: record.address,
      family: { value: family, label: `IPv${family}` },
      address: record.address,
      vrf: null,
      tenant: record.tenant === null ? null : this.#renderTenant(record.tenant, base),
      status: { value: record.status, label: STATUS_LABELS[record.status] },
      role: null,
      assigned_object_type: null,
      assigned_object_id: null,
      assigned_object: null,
      nat_inside: null,
      nat_outside: [],
      dns_name: "",
      description: record.description,
      owner: null,
      comments: "",
      tags: [],
      custom_fields: {},
      created: stored.created,
      last_updated: new Date(stored.lastUpdatedMs).toISOString(),
    };
  }

  #renderTenant(slug: string, base: string): Record<string, unknown> {
    const id = this.#tenantId(slug);
    const name = tenantName(slug);
    return {
      id,
      url: `${base}api/tenancy/tenants/${id}/`,
      display: name,
      name,
      slug,
      description: "",
    };
  }
}

/** The request body as JSON, or NetBox's 400 answer to a body that is not JSON. */
function parseJsonBody(text: string): { readonly value: unknown } | Response {
  try {
    return { value: JSON.parse(text) };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return jsonResponse(400, { detail: `JSON parse error - ${reason}` });
  }
}
