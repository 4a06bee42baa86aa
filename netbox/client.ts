/**
 * A Netbox REST client for the calls the allocator needs: list IP addresses by tenant, status
 * and family (following pagination), and change an address's status. HTTP through `fetch`.
 *
 * Every answer is checked: HTTP status (a redirect is an error, not followed: it is usually a
 * login page), `Content-Type: application/json`, and the shape of the JSON body. Reads are cached
 * for a short time; any write empties the cache. Each call has a timeout. Failures are thrown as
 * {@linkcode NetboxError} with a message meant for a Kubernetes Event.
 *
 * @module
 */
import { addressBits, formatAddress, type IpFamily, tryParseAddress } from "../ipam/address.ts";
import { isRecord } from "../json/mod.ts";

/** One IP address record of Netbox, reduced to what the allocator uses. */
export interface NetboxAddress {
  /**
   * The record's version for `If-Match`: the `ETag` header of a single-record answer, or, for a
   * record from a list, the weak ETag NetBox 4.6+ derives from `last_updated` (a guess: a
   * wrong one only costs a 412). Undefined when neither is known.
   */
  readonly etag: string | undefined;
  /** Netbox's id, for `PATCH api/ipam/ip-addresses/<id>/`. */
  readonly id: number;
  /** The host address in canonical text, without the prefix length. */
  readonly address: string;
  /** The prefix length Netbox stores with it (`192.0.2.10/24` gives 24). */
  readonly prefixLength: number;
  readonly family: IpFamily;
  /** The status value, e.g. `reserved` or `active`. */
  readonly status: string;
  /** The tenant's slug, or `null`. */
  readonly tenant: string | null;
  readonly description: string;
}

/** What went wrong in a Netbox call, for metrics and for deciding whether to retry. */
export type NetboxFailure =
  | "noToken"
  | "timeout"
  | "network"
  | "unauthorized"
  | "redirect"
  | "refused"
  | "serverError"
  | "contentType"
  | "body"
  | "notFound"
  | "conflict"
  | "exhausted";

/**
 * A failed Netbox call. The message says what happened in words an operator can act on.
 *
 * @example
 * ```ts
 * const error = new NetboxError("timeout", "Netbox at https://nb/ did not answer within 5000 ms");
 * error.failure; // "timeout"
 * ```
 */
export class NetboxError extends Error {
  override name = "NetboxError";
  /** The kind of failure. */
  readonly failure: NetboxFailure;
  /** The HTTP status, when Netbox answered. */
  readonly status: number | undefined;

  /** Builds the error. */
  constructor(failure: NetboxFailure, message: string, status?: number) {
    super(message);
    this.failure = failure;
    this.status = status;
  }
}

/** Which addresses to list. */
export interface NetboxAddressFilter {
  readonly tenant: string;
  readonly status?: string;
  readonly family?: IpFamily;
  /** Host address; Netbox matches it whatever the stored prefix length. */
  readonly address?: string;
  /** Netbox ids; any of them. */
  readonly ids?: readonly number[];
}

/** The fields of an address the allocator changes. */
export interface NetboxAddressChange {
  readonly status?: string;
  readonly description?: string;
}

/** Options of {@linkcode NetboxClient.update}. */
export interface NetboxUpdateOptions {
  readonly signal?: AbortSignal | undefined;
  /**
   * The record's ETag: NetBox then changes it only if nobody changed it since (412, thrown as
   * failure `conflict`, otherwise). NetBox before 4.6 ignores it.
   */
  readonly ifMatch?: string | undefined;
}

/** Settings of {@linkcode NetboxClient}. */
export interface NetboxClientOptions {
  /** Base URL of Netbox, e.g. `https://netbox.example/` (a trailing `api/` is tolerated). */
  readonly url: string;
  /** The API token; `undefined` makes every call fail with a message saying how to set it. */
  readonly token: string | undefined;
  /**
   * Per-request timeout in milliseconds. Default 10000 (a cold NetBox worker takes seconds for
   * its first answer); the first request of a client is tried twice.
   */
  readonly timeoutMs?: number;
  /** How long a list answer is reused, in milliseconds. Default 2000; 0 disables the cache. */
  readonly cacheTtlMs?: number;
  /** Page size asked for with `limit` (NetBox caps it at its `MAX_PAGE_SIZE`). Default 100. */
  readonly pageSize?: number;
  /** For tests: the clock (milliseconds). */
  readonly now?: () => number;
}

const ADDRESSES_PATH = "api/ipam/ip-addresses/";
const MAX_PAGES = 1_000;
const SNIPPET_LENGTH = 200;
const DEFAULT_TIMEOUT_MS = 10_000;

interface CachedList {
  readonly expiresAt: number;
  readonly addresses: Promise<readonly NetboxAddress[]>;
}

/**
 * See the module documentation.
 *
 * @example
 * ```ts
 * const netbox = new NetboxClient({ url: "https://netbox.example/", token: "0123abcd" });
 * const reserved = await netbox.list({ tenant: "lab", status: "reserved", family: "IPv4" });
 * await netbox.update(reserved[0]?.id ?? 0, { status: "active" });
 * ```
 */
export class NetboxClient {
  /** The normalised base URL, with a trailing slash. */
  readonly baseUrl: string;
  readonly #authorization: string | undefined;
  readonly #timeoutMs: number;
  readonly #cacheTtlMs: number;
  readonly #pageSize: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedList>();
  /** Bumped by every write, so that a read started before it is not cached after it. */
  #writes = 0;
  /** Whether any request got an HTTP answer yet (until then a timeout is tried once more). */
  #answered = false;
  #conditional: boolean | undefined;

  /** Builds a client; no request is made until a method is called. */
  constructor(options: NetboxClientOptions) {
    this.baseUrl = netboxOrigin(options.url);
    const token = options.token?.trim() || undefined;
    this.#authorization = token === undefined ? undefined : authorizationOf(token);
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#cacheTtlMs = options.cacheTtlMs ?? 2_000;
    this.#pageSize = options.pageSize ?? 100;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Every address matching `filter`, all pages, in Netbox's order. Answers younger than the
   * cache TTL are reused, unless a write happened since.
   */
  list(filter: NetboxAddressFilter, signal?: AbortSignal): Promise<readonly NetboxAddress[]> {
    const url = this.#listUrl(filter);
    const now = this.#now();
    const cached = this.#cache.get(url);
    if (cached !== undefined && cached.expiresAt > now) return cached.addresses;
    const writesBefore = this.#writes;
    const addresses = this.#listAllPages(url, signal);
    if (this.#cacheTtlMs > 0) {
      this.#cache.set(url, { expiresAt: now + this.#cacheTtlMs, addresses });
      addresses.then(
        () => {
          if (this.#writes !== writesBefore) this.#cache.delete(url);
        },
        () => {
          if (this.#cache.get(url)?.addresses === addresses) this.#cache.delete(url);
        },
      );
    }
    return addresses;
  }

  /**
   * The pages of addresses matching `filter`, read one by one as they are asked for. Not
   * cached: it is for picking addresses to change.
   */
  pages(
    filter: NetboxAddressFilter,
    signal?: AbortSignal,
  ): AsyncGenerator<readonly NetboxAddress[]> {
    return this.#pages(this.#listUrl(filter), signal);
  }

  /**
   * The first address matching `filter` and `wanted`, reading pages only until it is found.
   * Not cached: it is for picking an address to change.
   */
  async first(
    filter: NetboxAddressFilter,
    wanted: (address: NetboxAddress) => boolean,
    signal?: AbortSignal,
  ): Promise<NetboxAddress | undefined> {
    for await (const page of this.#pages(this.#listUrl(filter), signal)) {
      const found = page.find(wanted);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  /**
   * Whether this NetBox honours `If-Match` (it sent an `ETag` with a single record), once known.
   * Without it, a change is confirmed by reading it back.
   */
  get conditional(): boolean | undefined {
    return this.#conditional;
  }

  /** One record (`GET .../<id>/`) with its `ETag`. Not cached. */
  async get(id: number, signal?: AbortSignal): Promise<NetboxAddress> {
    const { body, etag } = await this.#request("GET", this.#itemUrl(id), { signal });
    this.#conditional = etag !== undefined;
    return withEtag(parseAddressRecord(body, `address ${id}`), etag);
  }

  /**
   * Changes an address (`PATCH`), conditionally with `ifMatch`; empties the read cache
   * whatever the outcome. A 412 is thrown as failure `conflict`.
   */
  async update(
    id: number,
    change: NetboxAddressChange,
    options: NetboxUpdateOptions = {},
  ): Promise<NetboxAddress> {
    this.#invalidate();
    try {
      const { body, etag } = await this.#request("PATCH", this.#itemUrl(id), {
        body: change,
        signal: options.signal,
        ifMatch: options.ifMatch,
      });
      this.#conditional = etag !== undefined;
      return withEtag(parseAddressRecord(body, `the changed address ${id}`), etag);
    } finally {
      this.#invalidate();
    }
  }

  /**
   * Changes several addresses in one bulk `PATCH` (a JSON list to the list URL), all or none.
   * With `ifMatch` (one ETag per record, any order), NetBox 4.6+ checks every record under a row
   * lock and refuses the whole batch with 412 (failure `conflict`) if any of them changed.
   * Empties the read cache whatever the outcome.
   */
  async updateMany(
    changes: readonly (NetboxAddressChange & { readonly id: number })[],
    options: { readonly signal?: AbortSignal | undefined; readonly ifMatch?: readonly string[] } =
      {},
  ): Promise<readonly NetboxAddress[]> {
    this.#invalidate();
    try {
      const { body } = await this.#request("PATCH", `${this.baseUrl}${ADDRESSES_PATH}`, {
        body: changes,
        signal: options.signal,
        ifMatch: options.ifMatch === undefined ? undefined : options.ifMatch.join(", "),
      });
      if (!Array.isArray(body) || body.length !== changes.length) {
        throw shapeError("a bulk change", `not a list of ${changes.length} records`);
      }
      return body.map((item, i) => parseAddressRecord(item, `record ${i} of a bulk change`));
    } finally {
      this.#invalidate();
    }
  }

  #itemUrl(id: number): string {
    return `${this.baseUrl}${ADDRESSES_PATH}${id}/`;
  }

  #invalidate(): void {
    this.#writes++;
    this.#cache.clear();
  }

  #listUrl(filter: NetboxAddressFilter): string {
    const query = new URLSearchParams({ tenant: filter.tenant });
    if (filter.status !== undefined) query.set("status", filter.status);
    if (filter.family !== undefined) query.set("family", filter.family === "IPv4" ? "4" : "6");
    if (filter.address !== undefined) query.set("address", filter.address);
    for (const id of filter.ids ?? []) query.append("id", String(id));
    query.set("limit", String(this.#pageSize));
    return `${this.baseUrl}${ADDRESSES_PATH}?${query}`;
  }

  async #listAllPages(first: string, signal?: AbortSignal): Promise<readonly NetboxAddress[]> {
    const addresses: NetboxAddress[] = [];
    for await (const page of this.#pages(first, signal)) addresses.push(...page);
    return addresses;
  }

  async *#pages(first: string, signal?: AbortSignal): AsyncGenerator<readonly NetboxAddress[]> {
    const seen = new Set<string>();
    let url: string | null = first;
    for (let page = 0; url !== null; page++) {
      if (page >= MAX_PAGES || seen.has(url)) {
        throw new NetboxError("body", `Netbox pagination did not end (at ${url})`);
      }
      seen.add(url);
      const list = parseList((await this.#request("GET", url, { signal })).body);
      yield list.results;
      url = list.next === null ? null : this.#sameOrigin(list.next);
    }
  }

  /** Netbox behind a proxy often writes `next` with its own idea of scheme and host. */
  #sameOrigin(next: string): string {
    let parsed: URL;
    try {
      parsed = new URL(next, this.baseUrl);
    } catch {
      throw new NetboxError("body", `Netbox answered a "next" page link that is not a URL`);
    }
    return `${new URL(this.baseUrl).origin}${parsed.pathname}${parsed.search}`;
  }

  async #request(
    method: "GET" | "PATCH",
    url: string,
    options: {
      readonly body?: unknown;
      readonly signal?: AbortSignal | undefined;
      readonly ifMatch?: string | undefined;
    },
  ): Promise<{ readonly body: unknown; readonly etag: string | undefined }> {
    const what = `${method} ${url}`;
    const authorization = this.#authorization;
    if (authorization === undefined) {
      throw new NetboxError(
        "noToken",
        "NETBOX_USER_TOKEN is not set: create the Secret netbox-client (key user-token) in " +
          "the allocator's namespace and restart the allocator",
      );
    }
    for (let attempt = 0;; attempt++) {
      try {
        return await this.#requestOnce(method, url, what, authorization, options);
      } catch (error) {
        // A cold NetBox (a worker loading Django) may miss the first deadline: try once more.
        const first = !this.#answered && attempt === 0;
        if (
          !first || !(error instanceof NetboxError) ||
          (error.failure !== "timeout" && error.failure !== "network") || options.signal?.aborted
        ) {
          throw error;
        }
      }
    }
  }

  async #requestOnce(
    method: "GET" | "PATCH",
    url: string,
    what: string,
    authorization: string,
    options: {
      readonly body?: unknown;
      readonly signal?: AbortSignal | undefined;
      readonly ifMatch?: string | undefined;
    },
  ): Promise<{ readonly body: unknown; readonly etag: string | undefined }> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        redirect: "manual",
        signal,
        headers: {
          Authorization: authorization,
          Accept: "application/json",
          ...(options.body === undefined ? {} : { "Content-Type": "application/json" }),
          ...(options.ifMatch === undefined ? {} : { "If-Match": options.ifMatch }),
        },
        ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      });
    } catch (error) {
      if (timeout.aborted) {
        throw new NetboxError(
          "timeout",
          `Netbox did not answer ${what} within ${this.#timeoutMs} ms`,
        );
      }
      if (options.signal?.aborted) throw error;
      throw new NetboxError("network", `cannot reach Netbox for ${what}: ${describe(error)}`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      if (timeout.aborted) {
        throw new NetboxError(
          "timeout",
          `Netbox did not finish answering ${what} within ${this.#timeoutMs} ms`,
        );
      }
      throw new NetboxError(
        "network",
        `reading Netbox's answer to ${what} failed: ${describe(error)}`,
      );
    }
    this.#answered = true;
    checkAnswer(what, response, text);
    const etag = response.headers.get("etag") ?? undefined;
    try {
      return { body: JSON.parse(text), etag };
    } catch (error) {
      throw new NetboxError(
        "body",
        `Netbox answered ${what} with malformed JSON (${describe(error)})`,
        response.status,
      );
    }
  }
}

/**
 * The Netbox root a URL names, normalised so that two spellings of one NetBox give one text:
 * scheme and host in lower case, no default port, no query or fragment, one trailing slash,
 * a trailing `api/` dropped. Text that is not a URL is only given its trailing slash.
 *
 * @example
 * ```ts
 * netboxOrigin("HTTP://NetBox.example:80/api"); // "http://netbox.example/"
 * netboxOrigin("http://127.0.0.1:8001"); // "http://127.0.0.1:8001/"
 * ```
 */
export function netboxOrigin(url: string): string {
  const trimmed = url.trim();
  let parsed: URL;
  try {
    parsed = new URL(trimmed);
  } catch {
    return normaliseBaseUrl(trimmed);
  }
  const path = parsed.pathname.replace(/\/{2,}/g, "/").replace(/\/?$/, "/")
    .replace(/\/api\/$/, "/");
  return `${parsed.protocol}//${parsed.host}${path}`;
}

/**
 * The key of a Netbox source's lock, client state and candidates: its normalised origin and
 * tenant, so that `http://nb:8001` and `http://nb:8001/` are one Netbox.
 *
 * @example
 * ```ts
 * netboxSourceKey({ url: "http://127.0.0.1:8001", tenant: "lab" }) ===
 *   netboxSourceKey({ url: "http://127.0.0.1:8001/", tenant: "lab" }); // true
 * ```
 */
export function netboxSourceKey(source: { readonly url: string; readonly tenant: string }): string {
  return `${netboxOrigin(source.url)} ${source.tenant}`;
}

/**
 * The `Authorization` header for a token: v2 tokens (`nbt_<key>.<secret>`, as NetBox 4.7 creates them) go
 * with `Bearer`, v1 tokens (40 characters, deprecated, gone in NetBox 5) with `Token`.
 *
 * @example
 * ```ts
 * authorizationOf("nbt_abc123.s3cr3t"); // "Bearer nbt_abc123.s3cr3t"
 * authorizationOf("0123456789abcdef0123456789abcdef01234567"); // "Token 0123..."
 * ```
 */
export function authorizationOf(token: string): string {
  return /^nbt_[^.\s]+\.\S+$/.test(token) ? `Bearer ${token}` : `Token ${token}`;
}

function withEtag(address: NetboxAddress, etag: string | undefined): NetboxAddress {
  return etag === undefined ? address : { ...address, etag };
}

function normaliseBaseUrl(url: string): string {
  const withSlash = url.trim().endsWith("/") ? url.trim() : `${url.trim()}/`;
  return withSlash.endsWith("/api/") ? withSlash.slice(0, -"api/".length) : withSlash;
}

function checkAnswer(what: string, response: Response, text: string): void {
  const status = response.status;
  const contentType = response.headers.get("content-type") ?? "";
  const json = /^application\/json\b/i.test(contentType);
  // Page text (times, request ids) changes with every request: only JSON details are quoted,
  // so that the Events of a retried failure aggregate.
  const said = json ? `: ${detailOf(text)}` : ` and ${kindOf(contentType)}`;
  if (status >= 300 && status < 400) {
    const location = response.headers.get("location") ?? "nowhere";
    throw new NetboxError(
      "redirect",
      `Netbox answered ${what} with a redirect (${status}) to ${location}: usually a login ` +
        `page, so check spec.netbox.url (the Netbox root) and the token`,
      status,
    );
  }
  if (status === 401 || status === 403) {
    throw new NetboxError(
      "unauthorized",
      `Netbox refused the token for ${what} (${status})${said}; check the ` +
        `netbox-client Secret and the token's permissions`,
      status,
    );
  }
  if (status === 412) {
    throw new NetboxError(
      "conflict",
      `Netbox refused ${what} (412): the record changed since it was read`,
      status,
    );
  }
  if (status >= 500) {
    throw new NetboxError("serverError", `Netbox failed on ${what} (${status})${said}`, status);
  }
  if (status === 404 && !json) {
    throw new NetboxError(
      "notFound",
      `Netbox answered ${what} with 404 and ${kindOf(contentType)}, not the API: check ` +
        `spec.netbox.url (the Netbox root)`,
      status,
    );
  }
  if (status < 200 || status >= 300) {
    throw new NetboxError("refused", `Netbox refused ${what} (${status})${said}`, status);
  }
  if (!json) {
    throw new NetboxError(
      "contentType",
      `Netbox answered ${what} with ${contentType || "no Content-Type"} instead of JSON ` +
        `(a login or error page? check spec.netbox.url)`,
      status,
    );
  }
}

/** What a non-JSON body was, for a message: its media type, never its text. */
function kindOf(contentType: string): string {
  const media = contentType.split(";")[0]?.trim();
  return media ? `a ${media} page` : "no Content-Type";
}

/** Netbox errors are `{"detail": "..."}` or `{"field": ["..."]}`; anything else is shown short. */
function detailOf(text: string): string {
  try {
    const body: unknown = JSON.parse(text);
    if (isRecord(body)) {
      if (typeof body["detail"] === "string") return body["detail"];
      const fields = Object.entries(body).flatMap(([field, value]) =>
        Array.isArray(value) ? [`${field}: ${value.map(String).join(" ")}`] : []
      );
      if (fields.length > 0) return fields.join("; ");
    }
  } catch {
    // Not JSON: an HTML error page, most likely.
  }
  return snippet(text);
}

function snippet(text: string): string {
  const plain = text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]*>/g, " ")
    .replace(/\s+/g, " ").trim();
  if (plain === "") return "(empty body)";
  return plain.length > SNIPPET_LENGTH ? `${plain.slice(0, SNIPPET_LENGTH)}...` : plain;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function shapeError(what: string, problem: string): NetboxError {
  return new NetboxError(
    "body",
    `Netbox answered ${what} that is not what the API returns: ${problem}`,
  );
}

function parseList(body: unknown): { results: NetboxAddress[]; next: string | null } {
  const what = "a list";
  if (!isRecord(body)) throw shapeError(what, "not a JSON object");
  const { count, next, results } = body;
  if (typeof count !== "number") throw shapeError(what, `"count" is not a number`);
  if (next !== null && typeof next !== "string") {
    throw shapeError(what, `"next" is neither a URL nor null`);
  }
  if (!Array.isArray(results)) throw shapeError(what, `"results" is not a list`);
  return {
    results: results.map((item, i) => parseAddressRecord(item, `result ${i} of a list`)),
    next,
  };
}

/**
 * Reads one Netbox IP address object, checking the fields the allocator relies on.
 *
 * @example
 * ```ts
 * parseAddressRecord({ id: 1, address: "192.0.2.10/24", status: { value: "reserved" },
 *   tenant: { slug: "lab" }, description: "" }, "example").prefixLength; // 24
 * ```
 */
export function parseAddressRecord(value: unknown, what: string): NetboxAddress {
  if (!isRecord(value)) throw shapeError(what, "not a JSON object");
  const { id, address, status, tenant, description, last_updated: lastUpdated } = value;
  if (typeof id !== "number" || !Number.isInteger(id)) {
    throw shapeError(what, `"id" is not an integer`);
  }
  if (typeof address !== "string") throw shapeError(what, `"address" is not a string`);
  const [host = "", prefix = "", ...rest] = address.split("/");
  const parsed = tryParseAddress(host);
  const prefixLength = Number(prefix);
  if (
    parsed === undefined || rest.length > 0 || !/^\d+$/.test(prefix) ||
    prefixLength > addressBits(parsed.family)
  ) {
    throw shapeError(what, `"address" ${JSON.stringify(address)} is not an address with a prefix`);
  }
  const statusValue = isRecord(status) ? status["value"] : status;
  if (typeof statusValue !== "string") throw shapeError(what, `"status" has no value`);
  let tenantSlug: string | null = null;
  if (tenant !== null && tenant !== undefined) {
    if (!isRecord(tenant) || typeof tenant["slug"] !== "string") {
      throw shapeError(what, `"tenant" has no slug`);
    }
    tenantSlug = tenant["slug"];
  }
  if (description !== undefined && typeof description !== "string") {
    throw shapeError(what, `"description" is not a string`);
  }
  return {
    id,
    address: formatAddress(parsed),
    prefixLength,
    family: parsed.family,
    status: statusValue,
    tenant: tenantSlug,
    description: description ?? "",
    etag: typeof lastUpdated === "string" ? etagOfLastUpdated(lastUpdated) : undefined,
  };
}

/**
 * NetBox 4.6+ sends `W/"<last_updated in Python's isoformat>"` as a record's ETag; its JSON
 * writes the same time with `Z` for UTC. So a list's record carries its likely ETag.
 */
function etagOfLastUpdated(lastUpdated: string): string {
  return `W/"${lastUpdated.replace(/Z$/, "+00:00")}"`;
}
