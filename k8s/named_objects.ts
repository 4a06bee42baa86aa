/**
 * Caches of single objects chosen by name at run time: one object-name cache (GET and a watch
 * on that name, never a list) per wanted name, started when a name is first wanted and stopped
 * when it no longer is. The agent reads the BGP password Secrets this way, so RBAC can grant
 * it exactly those Secrets (`resourceNames`).
 *
 * @module
 */

import type { KubernetesObject } from "@kubernetes/client-node";
import type { RunningCache } from "./cache.ts";

/**
 * The objects of the names last passed to {@linkcode NamedObjectCaches.want}.
 *
 * @example
 * ```ts
 * import type { V1Secret } from "@kubernetes/client-node";
 * import { MemoryCache } from "./cache.ts";
 *
 * const secrets = new NamedObjectCaches<V1Secret>(() => new MemoryCache<V1Secret>({ synced: true }));
 * secrets.want(["bgp-auth"]);
 * secrets.get("bgp-auth"); // undefined until the cache holds it
 * ```
 */
export class NamedObjectCaches<T extends KubernetesObject> {
  readonly #caches = new Map<string, RunningCache<T>>();
  readonly #open: (name: string) => RunningCache<T>;
  readonly #handlers: Array<() => void> = [];

  /** `open(name)` builds the (not yet started) cache of one object. */
  constructor(open: (name: string) => RunningCache<T>) {
    this.#open = open;
  }

  /** Watches exactly `names` from now on: new names start a cache, dropped ones stop theirs. */
  want(names: Iterable<string>): void {
    const wanted = new Set(names);
    for (const [name, cache] of this.#caches) {
      if (wanted.has(name)) continue;
      this.#caches.delete(name);
      void cache.stop();
    }
    for (const name of wanted) {
      if (this.#caches.has(name)) continue;
      const cache = this.#open(name);
      cache.onChange(() => this.#changed());
      this.#caches.set(name, cache);
      cache.start();
      void cache.synced.then(() => this.#changed());
    }
  }

  /** The object `name`, when it is wanted, exists and has been read. */
  get(name: string): T | undefined {
    return this.#caches.get(name)?.list()[0];
  }

  /** Whether `name` is wanted and its first read is done (found or not). */
  hasSynced(name: string): boolean {
    return this.#caches.get(name)?.hasSynced ?? false;
  }

  /** Called after any wanted object changes, and after each first read. */
  onChange(handler: () => void): void {
    this.#handlers.push(handler);
  }

  /** Stops every cache. */
  async stop(): Promise<void> {
    const caches = [...this.#caches.values()];
    this.#caches.clear();
    await Promise.all(caches.map((cache) => cache.stop()));
  }

  #changed(): void {
    for (const handler of this.#handlers) handler();
  }
}
