/**
 * The connection to the API server: JSON requests and watch streams on Deno's native `fetch`
 * (HTTP/2, the cluster CA, client certificates, bearer tokens read fresh).
 *
 * client-node's own HTTP path runs npm `undici` on Deno's Node compatibility layer, which has
 * crashed the whole process when the API server closed a kept-alive connection (something a
 * controller must survive). `k8s/api.ts` has the calls the programs make; tests can still use
 * client-node's generated classes over this connection with `typedApi()` from `k8s/client.ts`.
 *
 * @module
 */

import type { ClusterAccess } from "./config.ts";

/** One event of a watch stream, as the API server sends it. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: unknown;
}

/** An API request that failed; `code` is the HTTP status, `body` the server's answer. */
export class KubeApiError extends Error {
  override name = "KubeApiError";
  constructor(readonly code: number, readonly body: unknown, message: string) {
    super(message);
  }
}

/** Options of {@linkcode ApiConnection.request}. */
export interface RequestOptions {
  readonly body?: unknown;
  /** Default `application/json`; patches say which kind they are. */
  readonly contentType?: string;
  readonly query?: Readonly<Record<string, string | undefined>>;
  /** Aborts the request (besides the connection's request timeout). */
  readonly signal?: AbortSignal;
}

/** A watch that the API server refused or ended with an error; `status` is the HTTP code. */
export class WatchError extends Error {
  override name = "WatchError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** No watch data (events or bookmarks) for this long means the connection is dead. */
const WATCH_INACTIVITY_MS = 90_000;
/** Server-side watch timeout: watches are recycled every few minutes. */
const WATCH_TIMEOUT_SECONDS = 300;

/**
 * One connection to the API server: builds client-node API objects and watch streams that all
 * use Deno's fetch.
 *
 * @example
 * ```ts
 * import { loadClientConfig } from "./config.ts";
 * import type { V1ServiceList } from "@kubernetes/client-node";
 *
 * const connection = new ApiConnection(loadClientConfig().access);
 * const services: V1ServiceList = await connection.request("GET", "/api/v1/services");
 * ```
 */
export class ApiConnection {
  readonly access: ClusterAccess;
  readonly #client: Deno.HttpClient;
  readonly #requestTimeoutMs: number;
  readonly #requests = new Map<string, number>();

  /**
   * @param access where the API server is and how to authenticate
   * @param requestTimeoutMs how long any single request (not a watch) may take
   */
  constructor(access: ClusterAccess, requestTimeoutMs = 30_000) {
    this.access = access;
    this.#requestTimeoutMs = requestTimeoutMs;
    this.#client = Deno.createHttpClient({
      ...(access.caPem ? { caCerts: [access.caPem] } : {}),
      ...(access.clientCertPem && access.clientKeyPem
        ? { cert: access.clientCertPem, key: access.clientKeyPem }
        : {}),
    });
  }

  /**
   * `fetch` to the API server with this connection's TLS settings, token and request timeout.
   * `url` is absolute or a path on the server.
   */
  fetch(url: string, init: RequestInit = {}): Promise<Response> {
    this.#count(init.method ?? "GET");
    const headers = new Headers(init.headers);
    const token = this.access.bearerToken();
    if (token && !headers.has("authorization")) headers.set("authorization", `Bearer ${token}`);
    const timeout = AbortSignal.timeout(this.#requestTimeoutMs);
    return fetch(url.startsWith("/") ? this.access.server + url : url, {
      ...init,
      headers,
      signal: init.signal ? AbortSignal.any([init.signal, timeout]) : timeout,
      client: this.#client,
    });
  }

  /**
   * Sends one JSON request and returns the parsed answer; throws {@linkcode KubeApiError}
   * (with the server's message) for any status other than 2xx.
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const url = new URL(this.access.server + path);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined && value !== "") url.searchParams.set(key, value);
    }
    const response = await this.fetch(url.toString(), {
      method,
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      headers: {
        accept: "application/json",
        ...(options.body === undefined
          ? {}
          : { "content-type": options.contentType ?? "application/json" }),
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    });
    const text = await response.text();
    let parsed: unknown = undefined;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const message = typeof parsed === "object" && parsed !== null && "message" in parsed
        ? String(parsed.message)
        : text.slice(0, 300);
      throw new KubeApiError(
        response.status,
        parsed,
        `${method} ${path}: HTTP ${response.status}: ${message}`,
      );
    }
    return parsed as T;
  }

  /**
   * Watches `path` from `resourceVersion` (with bookmarks). Yields events until the server
   * ends the watch (normal: resume from the last resource version) or `signal` aborts; throws
   * a {@linkcode WatchError} for an HTTP error or an ERROR event (410 Gone: relist), and other
   * errors when the connection fails or stays silent past the inactivity timeout.
   */
  async *watch(
    path: string,
    params: Readonly<Record<string, string | undefined>>,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent> {
    const url = new URL(this.access.server + path);
    url.searchParams.set("watch", "true");
    url.searchParams.set("allowWatchBookmarks", "true");
    url.searchParams.set("timeoutSeconds", String(WATCH_TIMEOUT_SECONDS));
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== "") url.searchParams.set(key, value);
    }
    const inactivity = new AbortController();
    let timer = setTimeout(() => inactivity.abort(), WATCH_INACTIVITY_MS);
    const touch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => inactivity.abort(), WATCH_INACTIVITY_MS);
    };
    try {
      this.#count("WATCH");
      const token = this.access.bearerToken();
      const response = await fetch(url, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        signal: AbortSignal.any([signal, inactivity.signal]),
        client: this.#client,
      });
      if (response.status !== 200 || !response.body) {
        const text = await response.text().catch(() => "");
        throw new WatchError(response.status, `watch ${path}: HTTP ${response.status} ${text}`);
      }
      const lines = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines());
      for await (const line of lines) {
        touch();
        if (line.trim() === "") continue;
        const event = JSON.parse(line) as WatchEvent;
        if (event.type === "ERROR") {
          const status = event.object as { code?: number; message?: string };
          throw new WatchError(status.code ?? 500, `watch ${path}: ${status.message ?? line}`);
        }
        yield event;
      }
    } catch (error) {
      if (signal.aborted) return;
      if (inactivity.signal.aborted) {
        throw new WatchError(0, `watch ${path}: no data for ${WATCH_INACTIVITY_MS / 1000} s`);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Requests sent so far, by HTTP method (`WATCH` for watches). */
  get requestCounts(): ReadonlyMap<string, number> {
    return this.#requests;
  }

  #count(method: string): void {
    this.#requests.set(method, (this.#requests.get(method) ?? 0) + 1);
  }

  /** Closes idle connections. */
  close(): void {
    this.#client.close();
  }
}

function splitLines(): TransformStream<string, string> {
  let buffered = "";
  return new TransformStream({
    transform(chunk, controller) {
      buffered += chunk;
      const lines = buffered.split("\n");
      buffered = lines.pop() ?? "";
      for (const line of lines) controller.enqueue(line);
    },
    flush(controller) {
      if (buffered !== "") controller.enqueue(buffered);
    },
  });
}
