/**
 * The operational surface both programs share: structured logs and the HTTP endpoints
 * `/metrics` (Prometheus), `/healthz` and `/readyz`.
 *
 * @module
 */

import {
  configure,
  getTextFormatter,
  jsonLinesFormatter,
  type Logger,
  type LogLevel,
  parseLogLevel,
} from "@logtape/logtape";
import process from "node:process";
import { errorMessage } from "./errors.ts";
import { Counter, Gauge, type Registry } from "prom-client";

/**
 * An informer's `onError`: the failed watch of `what` as a warning on `log` (the informer
 * retries by itself).
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 *
 * const onError = logWatchFailure(getLogger(["purelb", "agent"]), "services");
 * onError(new Error("connection reset"), 200);
 * ```
 */
export function logWatchFailure(
  log: Logger,
  what: string,
): (error: unknown, retryInMs: number) => void {
  return (error, retryInMs) =>
    log.warn("{what} watch failed, retrying in {retryInMs} ms: {error}", {
      what,
      retryInMs,
      error: errorMessage(error),
    });
}

/** Log output format: JSON lines for machines (default), text for people. */
export type LogFormat = "json" | "text";

/** Raised for a log level or format that does not exist; names the accepted ones. */
export class LoggingConfigError extends Error {
  override name = "LoggingConfigError";
}

/**
 * Routes every logger of `category` (and the meta logger's warnings) to stderr.
 *
 * @example
 * ```ts
 * import { getLogger } from "@logtape/logtape";
 *
 * await configureLogging("purelb", "info", "json");
 * getLogger(["purelb", "allocator"]).info("started {version}", { version: "1" });
 * ```
 */
export async function configureLogging(
  category: string,
  level: string,
  format: string,
): Promise<void> {
  let lowest: LogLevel;
  try {
    lowest = parseLogLevel(level);
  } catch {
    throw new LoggingConfigError(
      `log level "${level}" is not one of trace, debug, info, warning, error, fatal`,
    );
  }
  if (format !== "json" && format !== "text") {
    throw new LoggingConfigError(`log format "${format}" is not one of json, text`);
  }
  const formatter = format === "json" ? jsonLinesFormatter : getTextFormatter();
  const encoder = new TextEncoder();
  await configure({
    reset: true,
    sinks: {
      // Written synchronously: a buffered sink would hold lines back until the process exits.
      stderr: (record) => {
        Deno.stderr.writeSync(encoder.encode(formatter(record)));
      },
    },
    loggers: [
      { category, lowestLevel: lowest, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

/** What the operations server asks the program. */
export interface OperationsHandlers {
  readonly registry: Registry;
  /** Alive: the process should not be restarted. */
  readonly healthy: () => boolean;
  /** Ready, or the reason it is not (shown in the /readyz body). */
  readonly ready: () => { readonly ready: true } | {
    readonly ready: false;
    readonly reason: string;
  };
}

/**
 * Serves `/metrics`, `/healthz`, `/readyz` on `hostname:port` (port 0 picks a free one).
 *
 * @example
 * ```ts
 * declare const handlers: Parameters<typeof serveOperations>[1];
 *
 * const server = serveOperations({ hostname: "0.0.0.0", port: 7472 }, handlers);
 * console.log(server.addr.port);
 * await server.shutdown();
 * ```
 */
export function serveOperations(
  listen: { readonly hostname: string; readonly port: number },
  handlers: OperationsHandlers,
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ ...listen, onListen: () => {} }, async (request) => {
    const path = new URL(request.url).pathname;
    switch (path) {
      case "/metrics":
        return new Response(await handlers.registry.metrics(), {
          headers: { "content-type": handlers.registry.contentType },
        });
      case "/healthz":
        return handlers.healthy()
          ? new Response("ok\n")
          : new Response("unhealthy\n", { status: 500 });
      case "/readyz": {
        const state = handlers.ready();
        return state.ready
          ? new Response("ok\n")
          : new Response(`not ready: ${state.reason}\n`, { status: 503 });
      }
      default:
        return new Response("not found; try /metrics, /healthz or /readyz\n", { status: 404 });
    }
  });
}

/**
 * Registers the process's own figures, read at each scrape: `process_resident_memory_bytes`,
 * `process_heap_bytes{kind="used"|"total"}`, `process_external_memory_bytes` (buffers outside
 * the JavaScript heap) and `process_cpu_seconds_total`. Reads no file and needs no permission.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * const registry = new Registry();
 * registerProcessMetrics(registry);
 * (await registry.metrics()).includes("process_resident_memory_bytes"); // true
 * ```
 */
export function registerProcessMetrics(registry: Registry): void {
  const registers = [registry];
  new Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident set size of the process",
    registers,
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  new Gauge({
    name: "process_heap_bytes",
    help: "JavaScript heap, used and total (reserved)",
    labelNames: ["kind"],
    registers,
    collect() {
      const usage = Deno.memoryUsage();
      this.set({ kind: "used" }, usage.heapUsed);
      this.set({ kind: "total" }, usage.heapTotal);
    },
  });
  new Gauge({
    name: "process_external_memory_bytes",
    help: "Memory of objects outside the JavaScript heap that it references (buffers)",
    registers,
    collect() {
      this.set(Deno.memoryUsage().external);
    },
  });
  new Counter({
    name: "process_cpu_seconds_total",
    help: "CPU time of the process, user and system",
    registers,
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.inc((user + system) / 1e6);
    },
  });
}

/**
 * Registers `purelb_api_requests_total{verb}`: the requests `connections` sent to the API
 * server, by HTTP method (`WATCH` for watch streams), read at each scrape.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * declare const connection: { readonly requestCounts: ReadonlyMap<string, number> };
 * registerApiRequestMetrics(new Registry(), [connection]);
 * ```
 */
export function registerApiRequestMetrics(
  registry: Registry,
  connections: readonly { readonly requestCounts: ReadonlyMap<string, number> }[],
): void {
  new Counter({
    name: "purelb_api_requests_total",
    help: "Requests sent to the Kubernetes API server, by HTTP method (WATCH: watch streams)",
    labelNames: ["verb"],
    registers: [registry],
    collect() {
      this.reset();
      for (const connection of connections) {
        for (const [verb, count] of connection.requestCounts) this.inc({ verb }, count);
      }
    },
  });
}

/** What {@linkcode registerInformerMetrics} reads of each informer. */
export interface InformerCounts {
  readonly name: string;
  readonly received: number;
  readonly unchanged: number;
}

/**
 * Registers `purelb_watch_objects_received_total{informer}` (objects listed or sent by watches)
 * and `purelb_watch_objects_unchanged_total{informer}` (of those, the ones that left the cached
 * view as it was), read at each scrape.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 * registerInformerMetrics(new Registry(), () => [{ name: "services", received: 3, unchanged: 1 }]);
 * ```
 */
export function registerInformerMetrics(
  registry: Registry,
  informers: () => readonly InformerCounts[],
): void {
  const registers = [registry];
  new Counter({
    name: "purelb_watch_objects_received_total",
    help: "Objects received from lists and watches, by informer",
    labelNames: ["informer"],
    registers,
    collect() {
      this.reset();
      for (const informer of informers()) this.inc({ informer: informer.name }, informer.received);
    },
  });
  new Counter({
    name: "purelb_watch_objects_unchanged_total",
    help: "Objects received that changed nothing the program reads (no work), by informer",
    labelNames: ["informer"],
    registers,
    collect() {
      this.reset();
      for (const informer of informers()) this.inc({ informer: informer.name }, informer.unchanged);
    },
  });
}

/**
 * Stops the operations server, waiting at most `ms` for open connections: a scraper's
 * kept-alive connection must not keep a stopping program alive.
 *
 * @example
 * ```ts
 * declare const server: Deno.HttpServer<Deno.NetAddr>;
 * await stopOperations(server);
 * ```
 */
export async function stopOperations(server: Deno.HttpServer, ms = 1_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    server.shutdown(),
    new Promise((resolve) => timer = setTimeout(resolve, ms)),
  ]);
  clearTimeout(timer);
}
