/**
 * A list-watch cache that never gives up: it lists (in pages), watches from the list's resource
 * version, resumes from the last version it saw when a watch ends, relists (and reports what
 * vanished meanwhile as deletes) on 410 Gone, and restarts with exponential backoff after any
 * other error (API server gone, connection refused, 5xx, silent connection).
 *
 * Every object goes through the informer's `transform` before it is cached: the cache keeps
 * only the fields its program reads (as client-go's `SetTransform`), and an update whose
 * transformed object equals the cached one is no change at all (no handler runs). A transform
 * must therefore drop `resourceVersion`, `managedFields` and whatever else changes without
 * mattering. A transform may also keep nothing of an object that does not concern its program
 * (it returns `undefined`): the cache then holds no entry for it, and a cached object that
 * stops concerning the program is reported as deleted.
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";
import { sleep } from "./backoff.ts";
import { type ApiConnection, KubeApiError, WatchError } from "./transport.ts";
import {
  cacheKey,
  type InformerEventType,
  type InformerHandler,
  type ReloadableCache,
  type Selectors,
} from "./cache.ts";

const LIST_PAGE_SIZE = 500;

/** Options for {@linkcode ResilientInformer}. */
export interface InformerOptions<T extends KubernetesObject> {
  /** A short name for logs and metrics, e.g. "services". */
  readonly name: string;
  /** The collection path, e.g. `/api/v1/services` or `/apis/purelb.io/v1/servicegroups`. */
  readonly path: string;
  /**
   * The object as cached: only the fields the program reads, never `resourceVersion` (see the
   * module documentation), or `undefined` to keep nothing of it. It must keep `metadata.name`
   * and `metadata.namespace`.
   */
  readonly transform: (object: T) => T | undefined;
  readonly labelSelector?: string;
  /**
   * Cache only the object of this name: it is read with a GET and watched with a field selector
   * on its name, so the informer needs the `get` and `watch` verbs but not `list` (an agent
   * reading its own Node). A missing object is an empty cache.
   */
  readonly objectName?: string;
  /** Objects per page of a list. Default 500 (as client-go's reflector). */
  readonly pageSize?: number;
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
 * import type { V1Service } from "@kubernetes/client-node";
 * import { type ApiConnection, slimMetadata, type WorkQueue } from "./mod.ts";
 * declare const connection: ApiConnection;
 * declare const queue: WorkQueue<string>;
 *
 * const services = new ResilientInformer<V1Service>(connection, {
 *   name: "services",
 *   path: "/api/v1/services",
 *   transform: (svc) => ({ metadata: slimMetadata(svc.metadata), spec: { ports: svc.spec?.ports ?? [] } }),
 * });
 * services.onChange((type, svc) => queue.add(`${svc.metadata?.namespace}/${svc.metadata?.name}`));
 * services.start();
 * await services.synced;
 * ```
 */
export class ResilientInformer<T extends KubernetesObject> implements ReloadableCache<T> {
  readonly #connection: ApiConnection;
  readonly #options: InformerOptions<T>;
  readonly #handlers: InformerHandler<T>[] = [];
  readonly #objects = new Map<string, T>();
  readonly #synced = Promise.withResolvers<void>();
  #hasSynced = false;
  #resourceVersion = "";
  #restarts = 0;
  #lists = 0;
  #received = 0;
  #unchanged = 0;
  #stop: AbortController | undefined;
  #running: Promise<void> | undefined;

  constructor(connection: ApiConnection, options: InformerOptions<T>) {
    this.#connection = connection;
    this.#options = options;
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

  /** How many full lists were made (1 + relists after 410 Gone or errors before a first list). */
  get lists(): number {
    return this.#lists;
  }

  /** The informer's short name (e.g. "services"). */
  get name(): string {
    return this.#options.name;
  }

  /** Objects received from lists and watches (each listed object and each watch event). */
  get received(): number {
    return this.#received;
  }

  /** Of those, how many left the cached view as it was (no handler ran). */
  get unchanged(): number {
    return this.#unchanged;
  }

  /** Registers a change handler (before or after start). */
  onChange(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  /** Begins listing and watching; returns at once. */
  start(): void {
    if (this.#running) return;
    const stop = new AbortController();
    this.#stop = stop;
    this.#running = this.#run(stop.signal);
  }

  /** Stops watching; the cache keeps its last content. */
  async stop(): Promise<void> {
    this.#stop?.abort();
    await this.#running;
    this.#running = undefined;
  }

  /** One cached object, or undefined. */
  get(name: string, namespace?: string): T | undefined {
    return this.#objects.get(cacheKey(namespace, name));
  }

  /** Every cached object (of one namespace, if given). */
  list(namespace?: string): readonly T[] {
    const all = [...this.#objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  async #run(stop: AbortSignal): Promise<void> {
    const initialMs = this.#options.initialBackoffMs ?? 200;
    const maxMs = this.#options.maxBackoffMs ?? 10_000;
    let failures = 0;
    while (!stop.aborted) {
      try {
        if (this.#resourceVersion === "") await this.#relist();
        const params = {
          resourceVersion: this.#resourceVersion,
          labelSelector: this.#options.labelSelector,
          fieldSelector: this.#fieldSelector,
        };
        for await (const event of this.#connection.watch(this.#options.path, params, stop)) {
          this.#apply(event.type, event.object as T);
          failures = 0;
        }
        // The server ended the watch (its timeout): resume from the last version seen.
      } catch (error) {
        if (stop.aborted) break;
        if (error instanceof WatchError && error.status === 410) {
          // Our version is older than the server's history: start over from a fresh list.
          this.#resourceVersion = "";
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

  async #relist(): Promise<void> {
    const seen = new Set<string>();
    let resourceVersion = "";
    const pages = this.#options.objectName === undefined
      ? this.#pages(this.#options.labelSelector, this.#options.fieldSelector)
      : this.#getOne(this.#options.objectName);
    for await (const page of pages) {
      for (const object of page.items ?? []) {
        seen.add(cacheKey(object.metadata?.namespace, object.metadata?.name));
        this.#upsert(object);
      }
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
    }
    this.#lists++;
    for (const [key, object] of [...this.#objects]) {
      if (!seen.has(key)) {
        this.#objects.delete(key);
        this.#emit("delete", object);
      }
    }
    this.#resourceVersion = resourceVersion;
    if (!this.#hasSynced) {
      this.#hasSynced = true;
      this.#synced.resolve();
    }
  }

  /**
   * Lists the objects that match `selectors` (besides the informer's own) and caches those it
   * holds no entry for: for objects the transform kept nothing of until now, because what
   * makes them matter lies elsewhere (an EndpointSlice whose Service just came to matter).
   * Objects already cached came from the watch and are at least as new; they are left alone.
   */
  async reload(selectors: Selectors): Promise<void> {
    const join = (a: string | undefined, b: string | undefined) =>
      [a, b].filter((part) => part !== undefined && part !== "").join(",");
    const pages = this.#pages(
      join(this.#options.labelSelector, selectors.labelSelector),
      join(this.#options.fieldSelector, selectors.fieldSelector),
    );
    for await (const page of pages) {
      for (const object of page.items ?? []) {
        if (this.#objects.has(cacheKey(object.metadata?.namespace, object.metadata?.name))) {
          continue;
        }
        this.#upsert(object);
      }
    }
  }

  /** The watch's field selector: the informer's own, and the object's name when it has one. */
  get #fieldSelector(): string | undefined {
    const name = this.#options.objectName;
    if (name === undefined) return this.#options.fieldSelector;
    return [this.#options.fieldSelector, `metadata.name=${name}`].filter(Boolean).join(",");
  }

  /** The one object as a list page: empty when it does not exist. */
  async *#getOne(name: string): AsyncGenerator<ListPage<T>> {
    try {
      const object = await this.#connection.request<T>(
        "GET",
        `${this.#options.path}/${encodeURIComponent(name)}`,
        this.#stop === undefined ? {} : { signal: this.#stop.signal },
      );
      const resourceVersion = object.metadata?.resourceVersion ?? "";
      yield { items: [object], metadata: { resourceVersion } };
    } catch (error) {
      if (!(error instanceof KubeApiError && error.code === 404)) throw error;
      // Absent: a watch without a version starts now and reports the object if it appears.
      yield { items: [] };
    }
  }

  async *#pages(
    labelSelector: string | undefined,
    fieldSelector: string | undefined,
  ): AsyncGenerator<ListPage<T>> {
    let continueToken = "";
    do {
      const page = await this.#connection.request<ListPage<T>>("GET", this.#options.path, {
        // A stopping informer does not wait for a list of thousands of objects to finish.
        ...(this.#stop === undefined ? {} : { signal: this.#stop.signal }),
        query: {
          limit: String(this.#options.pageSize ?? LIST_PAGE_SIZE),
          continue: continueToken,
          labelSelector,
          fieldSelector,
        },
      });
      yield page;
      continueToken = page.metadata?.continue ?? "";
    } while (continueToken !== "");
  }

  #apply(type: string, object: T): void {
    const version = object.metadata?.resourceVersion;
    if (type === "ADDED" || type === "MODIFIED") {
      this.#upsert(object);
    } else if (type === "DELETED") {
      this.#received++;
      const key = cacheKey(object.metadata?.namespace, object.metadata?.name);
      const known = this.#objects.get(key);
      if (known === undefined) {
        this.#unchanged++;
      } else {
        this.#objects.delete(key);
        this.#emit("delete", known);
      }
    }
    if (version) this.#resourceVersion = version;
  }

  #upsert(raw: T): void {
    this.#received++;
    const object = this.#options.transform(raw);
    const key = cacheKey(raw.metadata?.namespace, raw.metadata?.name);
    const known = this.#objects.get(key);
    if (object === undefined) {
      if (known === undefined) {
        this.#unchanged++;
      } else {
        // It no longer concerns the program: gone, as far as the cache is concerned.
        this.#objects.delete(key);
        this.#emit("delete", known);
      }
      return;
    }
    if (known !== undefined && isDeepStrictEqual(known, object)) {
      this.#unchanged++;
      return;
    }
    this.#objects.set(key, object);
    this.#emit(known ? "update" : "add", object, known);
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

/** One page of a list as the API server sends it. */
interface ListPage<T> {
  readonly items?: readonly T[];
  readonly metadata?: { readonly resourceVersion?: string; readonly continue?: string };
}
