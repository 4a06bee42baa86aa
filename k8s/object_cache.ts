/**
 * A cache of one named object, read with `get` and `watch` only (no `list`): it GETs the object,
 * then watches its collection with the field selector `metadata.name=NAME` from the version it
 * read (a watch needs only the `watch` verb), resumes after the server ends a watch, reads the
 * object again on 410 Gone, and restarts with exponential backoff after any other error. An
 * object that does not exist is a valid state: the cache is synced and empty, and the watch
 * reports it when it is created.
 *
 * As {@linkcode ResilientInformer}, it caches the object through a `transform` and tells its
 * handlers only about changes of the transformed object.
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import { sleep } from "./backoff.ts";
import { type ApiConnection, KubeApiError, WatchError } from "./transport.ts";
import type { InformerEventType, InformerHandler, RunningCache } from "./cache.ts";

/** Options of {@linkcode SingleObjectCache}. */
export interface SingleObjectOptions<T extends KubernetesObject> {
  /** A short name for logs and metrics, e.g. "node". */
  readonly name: string;
  /** The collection path, e.g. `/api/v1/nodes`. */
  readonly path: string;
  /** The object's name in that collection. */
  readonly objectName: string;
  /** The object as cached (see {@linkcode ResilientInformer}); must keep `metadata.name`. */
  readonly transform: (object: T) => T;
  /** First restart delay after an error (doubles up to `maxBackoffMs`). Default 200 ms. */
  readonly initialBackoffMs?: number;
  /** Longest restart delay. Default 10 s. */
  readonly maxBackoffMs?: number;
  /** Told about every error before the restart; for logging. */
  readonly onError?: (error: unknown, retryInMs: number) => void;
}

/**
 * See the module documentation.
 *
 * @example
 * ```ts
 * import type { V1Node } from "@kubernetes/client-node";
 * import { type ApiConnection, slimMetadata } from "./mod.ts";
 * declare const connection: ApiConnection;
 *
 * const node = new SingleObjectCache<V1Node>(connection, {
 *   name: "node",
 *   path: "/api/v1/nodes",
 *   objectName: "node-a",
 *   transform: (n) => ({ metadata: { ...slimMetadata(n.metadata), labels: n.metadata?.labels ?? {} } }),
 * });
 * node.onChange(() => console.log("labels now", node.get("node-a")?.metadata?.labels));
 * node.start();
 * await node.synced;
 * ```
 */
export class SingleObjectCache<T extends KubernetesObject> implements RunningCache<T> {
  readonly #connection: ApiConnection;
  readonly #options: SingleObjectOptions<T>;
  readonly #handlers: InformerHandler<T>[] = [];
  readonly #synced = Promise.withResolvers<void>();
  #object: T | undefined;
  #hasSynced = false;
  /** The version to watch from; `""` with {@link #read} done: watch from now (synthetic ADDED). */
  #resourceVersion = "";
  #mustRead = true;
  #restarts = 0;
  #reads = 0;
  #received = 0;
  #unchanged = 0;
  #stop: AbortController | undefined;
  #running: Promise<void> | undefined;

  constructor(connection: ApiConnection, options: SingleObjectOptions<T>) {
    this.#connection = connection;
    this.#options = options;
  }

  /** The cache's short name (e.g. "node"). */
  get name(): string {
    return this.#options.name;
  }

  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  get synced(): Promise<void> {
    return this.#synced.promise;
  }

  /** How many times the get-watch was restarted after an error. */
  get restarts(): number {
    return this.#restarts;
  }

  /** How many times the object was read with a GET. */
  get reads(): number {
    return this.#reads;
  }

  /** Objects received from reads and watches. */
  get received(): number {
    return this.#received;
  }

  /** Of those, how many left the cached view as it was. */
  get unchanged(): number {
    return this.#unchanged;
  }

  /** The object if `name` is its name (whatever `namespace`), else `undefined`. */
  get(name: string, _namespace?: string): T | undefined {
    return name === this.#options.objectName ? this.#object : undefined;
  }

  /** The object, if it exists. */
  list(_namespace?: string): readonly T[] {
    return this.#object === undefined ? [] : [this.#object];
  }

  onChange(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  start(): void {
    if (this.#running) return;
    const stop = new AbortController();
    this.#stop = stop;
    this.#running = this.#run(stop.signal);
  }

  async stop(): Promise<void> {
    this.#stop?.abort();
    await this.#running;
    this.#running = undefined;
  }

  async #run(stop: AbortSignal): Promise<void> {
    const initialMs = this.#options.initialBackoffMs ?? 200;
    const maxMs = this.#options.maxBackoffMs ?? 10_000;
    let failures = 0;
    while (!stop.aborted) {
      try {
        if (this.#mustRead) await this.#read(stop);
        const params = {
          fieldSelector: `metadata.name=${this.#options.objectName}`,
          resourceVersion: this.#resourceVersion,
        };
        for await (const event of this.#connection.watch(this.#options.path, params, stop)) {
          this.#apply(event.type, event.object as T);
          failures = 0;
        }
      } catch (error) {
        if (stop.aborted) break;
        if (error instanceof WatchError && error.status === 410) {
          this.#mustRead = true;
          if (failures === 0) {
            failures++;
            continue;
          }
        }
        const delay = Math.min(maxMs, initialMs * 2 ** failures);
        failures++;
        this.#restarts++;
        this.#options.onError?.(error, delay);
        await sleep(delay, stop).catch(() => {/* stopping */});
      }
    }
  }

  /** GETs the object (absent on 404) and sets the version to watch from. */
  async #read(stop: AbortSignal): Promise<void> {
    let found: T | undefined;
    try {
      found = await this.#connection.request<T>(
        "GET",
        `${this.#options.path}/${encodeURIComponent(this.#options.objectName)}`,
        { signal: stop },
      );
    } catch (error) {
      if (!(error instanceof KubeApiError && error.code === 404)) throw error;
    }
    this.#reads++;
    this.#mustRead = false;
    // Absent: a watch without a version starts now and sends the object if it appears meanwhile.
    this.#resourceVersion = found?.metadata?.resourceVersion ?? "";
    if (found === undefined) this.#remove();
    else this.#upsert(found);
    if (!this.#hasSynced) {
      this.#hasSynced = true;
      this.#synced.resolve();
    }
  }

  #apply(type: string, object: T): void {
    if (type === "ADDED" || type === "MODIFIED") {
      if (object.metadata?.name === this.#options.objectName) this.#upsert(object);
    } else if (type === "DELETED") {
      this.#received++;
      if (this.#object === undefined) this.#unchanged++;
      this.#remove();
    }
    const version = object.metadata?.resourceVersion;
    if (version) this.#resourceVersion = version;
  }

  #upsert(raw: T): void {
    this.#received++;
    const object = this.#options.transform(raw);
    const known = this.#object;
    if (known !== undefined && isDeepStrictEqual(known, object)) {
      this.#unchanged++;
      return;
    }
    this.#object = object;
    this.#emit(known === undefined ? "add" : "update", object, known);
  }

  #remove(): void {
    const known = this.#object;
    if (known === undefined) return;
    this.#object = undefined;
    this.#emit("delete", known);
  }

  #emit(type: InformerEventType, object: T, previous?: T): void {
    for (const handler of this.#handlers) {
      try {
        handler(type, object, previous);
      } catch (error) {
        this.#options.onError?.(error, 0);
      }
    }
  }
}
