/**
 * A Netbox REST client for the calls the allocator needs: list IP addresses by tenant, status
 * and family (following pagination), and change an address's status. The only file of `ipam/`
 * that does I/O (HTTP, through `fetch`).
 *
 * Every answer is checked: HTTP status (a redirect is an error, not followed: it is usually a
 * login page), `Content-Type: application/json`, and the shape of the JSON body. Reads are cached
 * for a short time; any write empties the cache. Each call has a timeout. Failures are thrown as
 * {@linkcode NetboxError} with a message meant for a Kubernetes Event.
 *
 * @module
 */
import { addressBits, formatAddress, type IpFamily, tryParseAddress } from "./address.ts";

/** One IP address record of Netbox, reduced to what the allocator uses. */
export interface NetboxAddress {
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
}

/** The fields of an address the allocator changes. */
export interface NetboxAddressChange {
  readonly status?: string;
  readonly description?: string;
}

/** Settings of {@linkcode NetboxClient}. */
export interface NetboxClientOptions {
  /** Base URL of Netbox, e.g. `https://netbox.example/` (a trailing `api/` is tolerated). */
  readonly url: string;
  /** The API token; `undefined` makes every call fail with a message saying how to set it. */
  readonly token: string | undefined;
  /** Per-request timeout in milliseconds. Default 5000. */
  readonly timeoutMs?: number;
  /** How long a list answer is reused, in milliseconds. Default 2000; 0 disables the cache. */
  readonly cacheTtlMs?: number;
  /** Page size asked for with `limit`. Default 100. */
  readonly pageSize?: number;
  /** For tests: the clock (milliseconds). */
  readonly now?: () => number;
}

const ADDRESSES_PATH = "api/ipam/ip-addresses/";
const MAX_PAGES = 1_000;
const SNIPPET_LENGTH = 200;

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
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #cacheTtlMs: number;
  readonly #pageSize: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CachedList>();
  /** Bumped by every write, so that a read started before it is not cached after it. */
  #writes = 0;

  /** Builds a client; no request is made until a method is called. */
  constructor(options: NetboxClientOptions) {
    this.baseUrl = normaliseBaseUrl(options.url);
    this.#token = options.token?.trim() || undefined;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
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

  /** Changes an address (`PATCH`); empties the read cache whatever the outcome. */
  async update(
    id: number,
    change: NetboxAddressChange,
    signal?: AbortSignal,
  ): Promise<NetboxAddress> {
    this.#invalidate();
    try {
      const body = await this.#request("PATCH", `${this.baseUrl}${ADDRESSES_PATH}${id}/`, {
        body: change,
        signal,
      });
      return parseAddressRecord(body, `the changed address ${id}`);
    } finally {
      this.#invalidate();
    }
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
      const list = parseList(await this.#request("GET", url, { signal }));
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
    options: { readonly body?: unknown; readonly signal?: AbortSignal | undefined },
  ): Promise<unknown> {
    const what = `${method} ${url}`;
    if (this.#token === undefined) {
      throw new NetboxError(
        "noToken",
        "NETBOX_USER_TOKEN is not set: create the Secret netbox-client (key user-token) in " +
          "the allocator's namespace and restart the allocator",
      );
    }
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        redirect: "manual",
        signal,
        headers: {
          Authorization: `Token ${this.#token}`,
          Accept: "application/json",
          ...(options.body === undefined ? {} : { "Content-Type": "application/json" }),
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
    checkAnswer(what, response, text);
    try {
      return JSON.parse(text);
    } catch (error) {
      throw new NetboxError(
        "body",
        `Netbox answered ${what} with malformed JSON (${describe(error)}): ${snippet(text)}`,
        response.status,
      );
    }
  }
}

function normaliseBaseUrl(url: string): string {
  const withSlash = url.trim().endsWith("/") ? url.trim() : `${url.trim()}/`;
  return withSlash.endsWith("/api/") ? withSlash.slice(0, -"api/".length) : withSlash;
}

function checkAnswer(what: string, response: Response, text: string): void {
  const status = response.status;
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
      `Netbox refused the token for ${what} (${status}): ${detailOf(text)}; check the ` +
        `netbox-client Secret and the token's permissions`,
      status,
    );
  }
  if (status >= 500) {
    throw new NetboxError(
      "serverError",
      `Netbox failed on ${what} (${status}): ${detailOf(text)}`,
      status,
    );
  }
  if (status < 200 || status >= 300) {
    throw new NetboxError(
      "refused",
      `Netbox refused ${what} (${status}): ${detailOf(text)}`,
      status,
    );
  }
  const contentType = response.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(contentType)) {
    throw new NetboxError(
      "contentType",
      `Netbox answered ${what} with ${contentType || "no Content-Type"} instead of JSON ` +
        `(a login or error page? check spec.netbox.url): ${snippet(text)}`,
      status,
    );
  }
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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
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
  const { id, address, status, tenant, description } = value;
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
  };
}
