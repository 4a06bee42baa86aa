/**
 * What a controller needs of a cache of API objects: read it, be told of changes, know when it
 * holds a full list. {@linkcode ResilientInformer} is the real one (list-watch against the API
 * server); {@linkcode MemoryCache} holds what a unit test puts in it.
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import type { KubernetesObject } from "@kubernetes/client-node";

/** What happened to an object, as seen by the cache. */
export type InformerEventType = "add" | "update" | "delete";

/**
 * Called for each change; `object` (the new object, or the deleted one) and `previous` (the
 * cached object an update replaced) belong to the cache and must not be mutated.
 */
export type InformerHandler<T> = (type: InformerEventType, object: T, previous?: T) => void;

/** A read-only cache of one kind of object, as a controller sees it. */
export interface Cache<T> {
  /** One cached object, or undefined. */
  get(name: string, namespace?: string): T | undefined;
  /** Every cached object (of one namespace, if given). */
  list(namespace?: string): readonly T[];
  /** Registers a change handler (before or after start). */
  onChange(handler: InformerHandler<T>): void;
  /** True once the first full list is in the cache. */
  readonly hasSynced: boolean;
  /** Resolves once the first full list is in the cache. */
  readonly synced: Promise<void>;
}

/** A cache the controller also starts and stops (an informer). */
export interface RunningCache<T> extends Cache<T> {
  /** Begins filling the cache; returns at once. */
  start(): void;
  /** Stops filling it; the content stays. */
  stop(): Promise<void>;
}

/** Label and field selectors of a list, as the API takes them. */
export interface Selectors {
  readonly labelSelector?: string;
  readonly fieldSelector?: string;
}

/** A running cache that can also read the objects matching `selectors` on demand. */
export interface ReloadableCache<T> extends RunningCache<T> {
  /** Lists the objects matching `selectors` and caches those it holds no entry for. */
  reload(selectors: Selectors): Promise<void>;
}

/** The cache key of an object: `namespace/name` (`/name` for cluster-scoped ones). */
export function cacheKey(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}

/**
 * A cache filled by hand, for unit tests: {@linkcode MemoryCache.put} and
 * {@linkcode MemoryCache.remove} change it and tell the handlers, as an informer would (an
 * update that leaves the object equal tells nobody). It counts as synced from the start unless
 * created with `{ synced: false }`; {@linkcode MemoryCache.markSynced} completes the first list.
 *
 * @example
 * ```ts
 * import { MemoryCache } from "./cache.ts";
 *
 * const cache = new MemoryCache<{ metadata: { name: string; namespace: string } }>();
 * const seen: string[] = [];
 * cache.onChange((type, object) => seen.push(`${type} ${object.metadata.name}`));
 * cache.put({ metadata: { name: "web", namespace: "shop" } });
 * cache.remove("web", "shop");
 * if (seen.join(", ") !== "add web, delete web") throw new Error(seen.join(", "));
 * ```
 */
export class MemoryCache<T extends KubernetesObject> implements RunningCache<T> {
  readonly #objects = new Map<string, T>();
  readonly #handlers: InformerHandler<T>[] = [];
  readonly #synced = Promise.withResolvers<void>();
  #hasSynced = false;
  #running = false;

  constructor(options: { readonly synced?: boolean } = {}) {
    if (options.synced ?? true) this.markSynced();
  }

  get hasSynced(): boolean {
    return this.#hasSynced;
  }

  get synced(): Promise<void> {
    return this.#synced.promise;
  }

  /** True between `start()` and `stop()`. */
  get running(): boolean {
    return this.#running;
  }

  /** The first full list is in. */
  markSynced(): void {
    this.#hasSynced = true;
    this.#synced.resolve();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.#objects.get(cacheKey(namespace, name));
  }

  list(namespace?: string): readonly T[] {
    const all = [...this.#objects.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  onChange(handler: InformerHandler<T>): void {
    this.#handlers.push(handler);
  }

  start(): void {
    this.#running = true;
  }

  stop(): Promise<void> {
    this.#running = false;
    return Promise.resolve();
  }

  /** Adds or replaces an object (by namespace and name). */
  put(object: T): void {
    const key = cacheKey(object.metadata?.namespace, object.metadata?.name);
    const previous = this.#objects.get(key);
    if (previous !== undefined && isDeepStrictEqual(previous, object)) return;
    this.#objects.set(key, object);
    for (const handler of this.#handlers) {
      if (previous === undefined) handler("add", object);
      else handler("update", object, previous);
    }
  }

  /** Removes an object; returns whether there was one. */
  remove(name: string, namespace?: string): boolean {
    const key = cacheKey(namespace, name);
    const previous = this.#objects.get(key);
    if (previous === undefined) return false;
    this.#objects.delete(key);
    for (const handler of this.#handlers) handler("delete", previous);
    return true;
  }
}
