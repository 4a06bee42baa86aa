/**
 * A Map whose deletions are deferred and batched.
 *
 * Why: in V8, deleting a key from a large Map and adding the same key again, over and over,
 * costs time proportional to the Map's size (every deletion leaves a dead entry in that key's
 * hash chain until the whole table is rebuilt). A pool does exactly that when the lowest free
 * address is taken and given back repeatedly. Here a deleted key keeps its slot, marked empty,
 * and the table is rebuilt once empty slots outnumber live ones, so every operation is O(1)
 * amortised and memory stays within a constant factor of the live entries.
 *
 * @module
 */

const EMPTY: unique symbol = Symbol("empty");

/**
 * A Map-like store for keys that come and go repeatedly. Values must not be `undefined`.
 *
 * @example
 * ```ts
 * const holders = new DeferredDeleteMap<bigint, string>();
 * holders.set(1n, "ns/web");
 * holders.delete(1n);
 * holders.get(1n); // undefined
 * ```
 */
export class DeferredDeleteMap<K, V> {
  #slots = new Map<K, V | typeof EMPTY>();
  #live = 0;
  readonly #minEmptySlots: number;

  /**
   * `minEmptySlots`: empty slots tolerated whatever the live count, so small maps never
   * rebuild.
   */
  constructor(minEmptySlots = 1024) {
    this.#minEmptySlots = minEmptySlots;
  }

  /** Number of live entries. */
  get size(): number {
    return this.#live;
  }

  /** The value for the key, or undefined. */
  get(key: K): V | undefined {
    const value = this.#slots.get(key);
    return value === EMPTY ? undefined : value;
  }

  /** Whether the key has a live entry. */
  has(key: K): boolean {
    const value = this.#slots.get(key);
    return value !== undefined && value !== EMPTY;
  }

  /** Sets the value for the key. */
  set(key: K, value: V): this {
    const previous = this.#slots.get(key);
    if (previous === undefined || previous === EMPTY) this.#live++;
    this.#slots.set(key, value);
    return this;
  }

  /** Removes the key; returns whether it had a live entry. */
  delete(key: K): boolean {
    const previous = this.#slots.get(key);
    if (previous === undefined || previous === EMPTY) return false;
    this.#slots.set(key, EMPTY);
    this.#live--;
    if (this.#slots.size - this.#live > Math.max(this.#minEmptySlots, this.#live)) this.#compact();
    return true;
  }

  /** The live entries, in insertion order of their slots. */
  *entries(): Generator<readonly [K, V], void, undefined> {
    for (const [key, value] of this.#slots) if (value !== EMPTY) yield [key, value];
  }

  #compact(): void {
    const live = new Map<K, V | typeof EMPTY>();
    for (const [key, value] of this.#slots) if (value !== EMPTY) live.set(key, value);
    this.#slots = live;
  }
}
