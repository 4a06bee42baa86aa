/**
 * A list-watch cache that does not give up: client-node's `ListWatch` relists on 410 Gone but
 * stops for good on any other error (API server restarting, connection refused, 5xx). This
 * wrapper restarts it with exponential backoff, resumes from the last resource version (a
 * relist follows automatically if that version has been compacted away), and tells when the
 * cache has been filled once.
 *
 * @module
 */

import {
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
} from "@kubernetes/client-node";
import type { ApiConnection } from "./transport.ts";

/** What happened to an object, as seen by the cache. */
export type InformerEventType = "add" | "update" | "delete";

/** Called for each change; `object` belongs to the cache and must not be mutated. */
export type InformerHandler<T> = (type: InformerEventType, object: T) => void;

/** Options for {@linkcode ResilientInformer}. */
export interface InformerOptions<T extends KubernetesObject> {
  /** A short name for logs and metrics, e.g. "services". */
  readonly name: string;
  /** The watch path, e.g. `/api/v1/services` or `/apis/purelb.io/v1/servicegroups`. */
  readonly path: string;
  /** Lists the same collection (all pages); the list's resourceVersion starts the watch. */
  readonly list: () => Promise<KubernetesListObject<T>>;
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
  /** First restart delay after an error (doubles up to `maxBackoffMs`). Default 200 ms. */
  readonly initialBackoffMs?: number;
  /** Longest restart delay. Default 10 s. */
  readonly maxBackoffMs?: number;
  /** Told about every error before the restart; for logging. */
  readonly onError?: (error: unknown, retryInMs: number) => void;
}

/**
 * A self-healing cache of one kind of object.
 *
 * @example
 * ```ts
 * const core = connection.api(CoreV1Api);
 * const services = new ResilientInformer<V1Service>(connection, {
 *   name: "services",
 *   path: "/api/v1/services",
 *   list: () => core.listServiceForAllNamespaces(),
 * });
 * services.onChange((type, svc) => queue.add(`${svc.metadata?.namespace}/${svc.metadata?.name}`));
 * services.start();
 * await services.synced;
 * ```
 */
export class ResilientInformer<T extends KubernetesObject> {
  readonly #listWatch: ListWatch<T>;
  readonly #handlers: InformerHandler<T>[] = [];
  readonly #options: InformerOptions<T>;
  readonly #synced = Promise.withResolvers<void>();
  #hasSynced = false;
  #listed = false;
  #stopped = true;
  #failures = 0;
  #lastFailureAt = 0;
  #restartTimer: ReturnType<typeof setTimeout> | undefined;
  #restarts = 0;

  constructor(connection: ApiConnection, options: InformerOptions<T>) {
    this.#options = options;
    const list = async () => {
      const result = await options.list();
      this.#listed = true;
      return result;
    };
    this.#listWatch = new ListWatch<T>(
      options.path,
      connection.watch(),
      list,
      false,
      options.labelSelector,
      options.fieldSelector,
    );
    this.#listWatch.on("add", (o) => this.#emit("add", o));
    this.#listWatch.on("update", (o) => this.#emit("update", o));
    this.#listWatch.on("delete", (o) => this.#emit("delete", o));
    this.#listWatch.on("error", (error: unknown) => this.#restartAfterError(error));
  }

  /** Resolves once the first list has been loaded into the cache. */
  get synced(): Promise<void> {
    return this.#synced.promise;
  }

  /** True once the first list has been loaded into the cache. */
  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  /** How many times the list-watch was restarted after an error. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Registers a change handler (before or after start). */
  onChange(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** Begins listing and watching; returns at once. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#run();
  }

  /** Stops watching; the cache keeps its last content. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    await this.#listWatch.stop();
  }

  /** One cached object, or undefined. */
  get(name: string, namespace?: string): T | undefined {
    return this.#listWatch.get(name, namespace);
  }

  /** Every cached object (of one namespace, if given). */
  list(namespace?: string): readonly T[] {
    return this.#listWatch.list(namespace);
  }

  #run(): void {
    this.#listWatch.start().then(() => {
      if (this.#listed && !this.#hasSynced && !this.#stopped) {
        this.#hasSynced = true;
        this.#synced.resolve();
      }
    }, (error: unknown) => this.#restartAfterError(error));
  }

  #emit(type: InformerEventType, object: T): void {
    for (const handler of this.#handlers) {
      try {
        handler(type, object);
      } catch (error) {
        this.#options.onError?.(error, 0);
      }
    }
  }

  #restartAfterError(error: unknown): void {
    if (this.#stopped || this.#restartTimer !== undefined) return;
    const now = Date.now();
    const maxMs = this.#options.maxBackoffMs ?? 10_000;
    // A watch that ran fine for a while before failing starts its backoff afresh.
    if (now - this.#lastFailureAt > 2 * maxMs) this.#failures = 0;
    this.#lastFailureAt = now;
    const delay = Math.min(maxMs, (this.#options.initialBackoffMs ?? 200) * 2 ** this.#failures);
    this.#failures++;
    this.#options.onError?.(error, delay);
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped) return;
      this.#restarts++;
      this.#run();
    }, delay);
  }
}
