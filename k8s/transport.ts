/**
 * client-node's generated API classes on Deno's own HTTP stack, plus a watch stream.
 *
 * client-node sends requests through npm `undici` on Deno's Node compatibility layer, which has
 * crashed the whole process when the API server closed a kept-alive connection (something a
 * controller must survive). So client-node gives us the typed API classes and models, and the
 * bytes travel through Deno's native `fetch` (HTTP/2 to the API server, the cluster CA, client
 * certificates).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  type Configuration,
  createConfiguration,
  type RequestContext,
  ResponseContext,
  ServerConfiguration,
  wrapHttpLibrary,
} from "./client.ts";
import type { ClusterAccess } from "./config.ts";

/** One event of a watch stream, as the API server sends it. */
export interface WatchEvent {
  readonly type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  readonly object: unknown;
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
 * const connection = new ApiConnection(loadClientConfig().access);
 * const core = connection.api(CoreV1Api);
 * const services = await core.listServiceForAllNamespaces();
 * ```
 */
export class ApiConnection {
  readonly access: ClusterAccess;
  readonly #client: Deno.HttpClient;
  readonly #configuration: Configuration;

  /**
   * @param access where the API server is and how to authenticate
   * @param requestTimeoutMs how long any single request (not a watch) may take
   */
  constructor(access: ClusterAccess, requestTimeoutMs = 30_000) {
    this.access = access;
    this.#client = Deno.createHttpClient({
      ...(access.caPem ? { caCerts: [access.caPem] } : {}),
      ...(access.clientCertPem && access.clientKeyPem
        ? { cert: access.clientCertPem, key: access.clientKeyPem }
        : {}),
    });
    const client = this.#client;
    this.#configuration = createConfiguration({
      baseServer: new ServerConfiguration(access.server, {}),
      authMethods: {
        default: {
          getName: () => "BearerToken",
          applySecurityAuthentication: (context: RequestContext) => {
            const token = access.bearerToken();
            if (token) context.setHeaderParam("Authorization", `Bearer ${token}`);
          },
        },
      },
      httpApi: wrapHttpLibrary({ send: (request) => send(client, request, requestTimeoutMs) }),
    });
  }

  /** A client-node API object (e.g. `CoreV1Api`) that sends through this connection. */
  api<T>(apiClass: new (configuration: Configuration) => T): T {
    return new apiClass(this.#configuration);
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

  /** Closes idle connections. */
  close(): void {
    this.#client.close();
  }
}

async function send(
  client: Deno.HttpClient,
  request: RequestContext,
  timeoutMs: number,
): Promise<ResponseContext> {
  const timeout = AbortSignal.timeout(timeoutMs);
  const callerSignal = request.getSignal();
  const signal = callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout;
  const body = request.getBody();
  const response = await fetch(request.getUrl(), {
    method: request.getHttpMethod(),
    headers: request.getHeaders(),
    ...(body === undefined ? {} : { body: body as BodyInit }),
    signal,
    client,
  });
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => headers[name] = value);
  return new ResponseContext(response.status, headers, {
    text: () => response.text(),
    binary: async () => Buffer.from(await response.arrayBuffer()),
    stream: () => response.body,
  });
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
