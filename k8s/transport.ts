/**
 * client-node's typed API classes on Deno's own HTTP stack.
 *
 * client-node sends its requests through npm `undici` on Deno's Node compatibility layer. On
 * Deno 2.9 that combination crashes the whole process (SIGSEGV) when the API server closes a
 * kept-alive connection, e.g. on an API server restart, which a controller must survive. So we
 * keep client-node for what it is good at (KubeConfig, auth, typed APIs, ListWatch) and send
 * the bytes with Deno's native `fetch`, which also speaks HTTP/2 to the API server.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  type Configuration,
  createConfiguration,
  HttpMethod,
  type KubeConfig,
  RequestContext,
  ResponseContext,
  ServerConfiguration,
  Watch,
  wrapHttpLibrary,
} from "@kubernetes/client-node";

/** Raised when the kubeconfig asks for something Deno's TLS cannot do. */
export class TransportConfigError extends Error {
  override name = "TransportConfigError";
}

/** No watch data (events or bookmarks) for this long means the connection is dead. */
const WATCH_INACTIVITY_MS = 90_000;
/** Server-side watch timeout: watches are recycled every few minutes. */
const WATCH_TIMEOUT_SECONDS = 300;

/**
 * One connection to the API server: builds client-node API objects and watches that all use
 * Deno's fetch with the cluster's CA and the user's client certificate, if any.
 *
 * @example
 * ```ts
 * const connection = new ApiConnection(kubeConfig);
 * const core = connection.api(CoreV1Api);
 * const services = await core.listServiceForAllNamespaces();
 * ```
 */
export class ApiConnection {
  readonly kubeConfig: KubeConfig;
  readonly #client: Deno.HttpClient;
  readonly #configuration: Configuration;

  /**
   * @param kubeConfig where the API server is and how to authenticate
   * @param requestTimeoutMs how long any single request (not a watch) may take
   */
  constructor(kubeConfig: KubeConfig, requestTimeoutMs = 30_000) {
    this.kubeConfig = kubeConfig;
    this.#client = Deno.createHttpClient(tlsOptions(kubeConfig));
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new TransportConfigError("the kubeconfig has no current cluster");
    const client = this.#client;
    this.#configuration = createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kubeConfig },
      httpApi: wrapHttpLibrary({ send: (request) => send(client, request, requestTimeoutMs) }),
    });
  }

  /** A client-node API object (e.g. `CoreV1Api`) that sends through this connection. */
  api<T>(apiClass: new (configuration: Configuration) => T): T {
    return new apiClass(this.#configuration);
  }

  /** A client-node `Watch` that streams through this connection (for `ListWatch`). */
  watch(): Watch {
    return new DenoWatch(this.kubeConfig, this.#client);
  }

  /** Closes idle connections. */
  close(): void {
    this.#client.close();
  }
}

function tlsOptions(kubeConfig: KubeConfig): Deno.CreateHttpClientOptions {
  const cluster = kubeConfig.getCurrentCluster();
  const user = kubeConfig.getCurrentUser();
  if (cluster?.skipTLSVerify) {
    throw new TransportConfigError(
      "insecure-skip-tls-verify is not supported: give the cluster's CA (certificate-authority)",
    );
  }
  const options: { caCerts?: string[]; cert?: string; key?: string } = {};
  const ca = pemOf(cluster?.caData, cluster?.caFile);
  if (ca) options.caCerts = [ca];
  const cert = pemOf(user?.certData, user?.certFile);
  const key = pemOf(user?.keyData, user?.keyFile);
  if (cert && key) {
    options.cert = cert;
    options.key = key;
  }
  return options as Deno.CreateHttpClientOptions;
}

function pemOf(base64Data: string | undefined, file: string | undefined): string | undefined {
  if (base64Data) return atob(base64Data);
  if (file) return Deno.readTextFileSync(file);
  return undefined;
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

/** A watch error that carries the HTTP status, as client-node's ListWatch expects. */
class WatchHttpError extends Error {
  override name = "WatchHttpError";
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

/**
 * client-node's `Watch` contract (callback per event, `done` once at the end, an
 * AbortController to stop) on Deno's fetch, with bookmarks, a server-side timeout and an
 * inactivity timeout that detects dead connections.
 */
class DenoWatch extends Watch {
  readonly #kubeConfig: KubeConfig;
  readonly #client: Deno.HttpClient;

  constructor(kubeConfig: KubeConfig, client: Deno.HttpClient) {
    super(kubeConfig);
    this.#kubeConfig = kubeConfig;
    this.#client = client;
  }

  override async watch(
    path: string,
    queryParams: Record<string, unknown>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const cluster = this.#kubeConfig.getCurrentCluster();
    if (!cluster) throw new TransportConfigError("the kubeconfig has no current cluster");
    const url = new URL(cluster.server + path);
    url.searchParams.set("watch", "true");
    url.searchParams.set("allowWatchBookmarks", "true");
    url.searchParams.set("timeoutSeconds", String(WATCH_TIMEOUT_SECONDS));
    for (const [key, value] of Object.entries(queryParams)) {
      if (value !== undefined && value !== "") url.searchParams.set(key, String(value));
    }
    const controller = new AbortController();
    let finished = false;
    let inactivity: ReturnType<typeof setTimeout> | undefined;
    const finish = (error: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(inactivity);
      const stoppedByCaller = controller.signal.aborted && !timedOut;
      controller.abort();
      done(stoppedByCaller ? null : error);
    };
    let timedOut = false;
    const touch = () => {
      clearTimeout(inactivity);
      inactivity = setTimeout(() => {
        timedOut = true;
        controller.abort();
        finish(new DOMException("no watch data within the inactivity timeout", "TimeoutError"));
      }, WATCH_INACTIVITY_MS);
    };

    try {
      const context = new RequestContext(url.toString(), HttpMethod.GET);
      await this.#kubeConfig.applySecurityAuthentication(context);
      touch();
      const response = await fetch(url, {
        headers: context.getHeaders(),
        signal: controller.signal,
        client: this.#client,
      });
      if (response.status !== 200 || !response.body) {
        const text = await response.text().catch(() => "");
        throw new WatchHttpError(response.status, `watch ${path}: HTTP ${response.status} ${text}`);
      }
      this.#readEvents(response.body, callback, touch).then(() => finish(null), finish);
    } catch (error) {
      finish(error);
    }
    return controller;
  }

  async #readEvents(
    body: ReadableStream<Uint8Array>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    touch: () => void,
  ): Promise<void> {
    const lines = body.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines());
    for await (const line of lines) {
      touch();
      if (line.trim() === "") continue;
      const event: unknown = JSON.parse(line);
      if (typeof event === "object" && event !== null && "type" in event && "object" in event) {
        callback(String(event.type), event.object, event);
      }
    }
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
