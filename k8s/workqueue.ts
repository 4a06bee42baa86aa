/**
 * The work queue every controller uses: de-duplicating, never hands one key
 * to two workers at once, and supports delayed and rate-limited re-adds.
 *
 * @module
 */

import { ExponentialBackoff, type RateLimiter } from "./backoff.ts";

/**
 * The time source and timer the queue uses for delayed adds. Tests pass a
 * fake one to control time; the default uses `performance.now` and the global
 * `setTimeout`.
 *
 * @example
 * ```ts
 * import type { Clock } from "./workqueue.ts";
 *
 * const systemClock: Clock = {
 *   now: () => performance.now(),
 *   setTimer: (callback, ms) => {
 *     const id = setTimeout(callback, ms);
 *     return () => clearTimeout(id);
 *   },
 * };
 * ```
 */
export interface Clock {
  /** Current time in milliseconds; only differences matter. */
  now(): number;
  /** Calls `callback` once after `ms` milliseconds; the returned function cancels that. */
  setTimer(callback: () => void, ms: number): () => void;
}

/** Settings of {@linkcode WorkQueue}; all are optional. */
export interface WorkQueueOptions<K> {
  /** Delays for {@linkcode WorkQueue.addRateLimited}. Default: `new ExponentialBackoff()`. */
  readonly rateLimiter?: RateLimiter<K>;
  /** Time source and timers for delayed adds. Default: the system's. */
  readonly clock?: Clock;
}

/** Longest delay `setTimeout` accepts without overflowing (about 24.8 days). */
const MAX_DELAY_MS = 2 ** 31 - 1;

interface DelayedAdd {
  readonly dueAt: number;
  readonly cancel: () => void;
}

/**
 * A queue of keys to reconcile.
 *
 * - A key waiting in the queue is queued once, however often it is added.
 * - A key handed out by {@linkcode WorkQueue.get} is held by that worker until
 *   {@linkcode WorkQueue.done}; adding it meanwhile marks it dirty, and `done`
 *   queues it again once. So a key is never processed by two workers at once,
 *   and no add is lost.
 * - Keys are handed out in the order they were queued.
 * - After {@linkcode WorkQueue.shutDown}, adds are ignored, waiting keys and
 *   pending delayed adds are dropped, and `get` resolves `undefined`.
 *
 * @example
 * ```ts
 * import { WorkQueue } from "./workqueue.ts";
 *
 * const queue = new WorkQueue<string>();
 * queue.add("default/web");
 * queue.add("default/web"); // already queued: no effect
 * const key = await queue.get(); // "default/web"
 * if (key !== undefined) {
 *   // ... reconcile key ...
 *   queue.done(key);
 * }
 * queue.shutDown();
 * ```
 */
export class WorkQueue<K extends string> {
  readonly #rateLimiter: RateLimiter<K>;
  readonly #clock: Clock;
  /** Keys waiting to be handed out; a Set keeps insertion order and uniqueness. */
  readonly #queued = new Set<K>();
  /** Keys held by a worker between `get` and `done`. */
  readonly #processing = new Set<K>();
  /** Held keys that were added again and must be queued on `done`. */
  readonly #dirty = new Set<K>();
  readonly #delayed = new Map<K, DelayedAdd>();
  /** Pending `get` calls; non-empty only while no key is queued. */
  readonly #waiters: Array<(key: K | undefined) => void> = [];
  #shuttingDown = false;

  constructor(options: WorkQueueOptions<K> = {}) {
    this.#rateLimiter = options.rateLimiter ?? new ExponentialBackoff<K>();
    this.#clock = options.clock ?? {
      now: () => performance.now(),
      setTimer: (callback, ms) => {
        const id = setTimeout(callback, ms);
        return () => clearTimeout(id);
      },
    };
  }

  /** True once {@linkcode WorkQueue.shutDown} was called. */
  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /** Queues the key unless it is already queued; if it is being processed, queues it on `done`. */
  add(key: K): void {
    if (this.#shuttingDown || this.#queued.has(key)) return;
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter === undefined) {
      this.#queued.add(key);
    } else {
      this.#processing.add(key);
      waiter(key);
    }
  }

  /**
   * Adds the key after `ms` milliseconds (at once if `ms <= 0`). If a delayed
   * add of the key is already pending, the sooner of the two is kept.
   *
   * @throws {RangeError} if `ms` is not a number <= 2^31 - 1.
   */
  addAfter(key: K, ms: number): void {
    if (Number.isNaN(ms) || ms > MAX_DELAY_MS) {
      throw new RangeError(
        `Cannot delay key "${key}": ms must be a number <= ${MAX_DELAY_MS}, got ${ms}`,
      );
    }
    if (this.#shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const dueAt = this.#clock.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending !== undefined) {
      if (pending.dueAt <= dueAt) return;
      pending.cancel();
    }
    const cancel = this.#clock.setTimer(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, ms);
    this.#delayed.set(key, { dueAt, cancel });
  }

  /** Adds the key after the rate limiter's next delay for it; see {@linkcode WorkQueue.forget}. */
  addRateLimited(key: K): void {
    this.addAfter(key, this.#rateLimiter.when(key));
  }

  /** Resets the key's backoff, typically after it was processed successfully. */
  forget(key: K): void {
    this.#rateLimiter.forget(key);
  }

  /** Number of rate-limited adds of the key since it was last forgotten. */
  retries(key: K): number {
    return this.#rateLimiter.retries(key);
  }

  /**
   * Waits for the next key and marks it as being processed; the caller must
   * call {@linkcode WorkQueue.done} with it. Resolves `undefined` once the
   * queue is shut down.
   */
  get(): Promise<K | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const { done: empty, value: key } = this.#queued.values().next();
    if (!empty) {
      this.#queued.delete(key);
      this.#processing.add(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Ends processing of the key; queues it again if it was added meanwhile. */
  done(key: K): void {
    this.#processing.delete(key);
    if (this.#dirty.delete(key)) this.add(key);
  }

  /** Number of keys waiting to be handed out (not those being processed or delayed). */
  len(): number {
    return this.#queued.size;
  }

  /**
   * Stops the queue: cancels delayed adds, drops waiting keys, and resolves
   * every pending and future `get` with `undefined`. Workers still holding a
   * key should finish and call `done`.
   */
  shutDown(): void {
    this.#shuttingDown = true;
    for (const { cancel } of this.#delayed.values()) cancel();
    this.#delayed.clear();
    this.#queued.clear();
    this.#dirty.clear();
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }
}

/**
 * What a handler decided about a key:
 * - `done`: success; the key's backoff is reset.
 * - `retry`: failure; the key is added again with backoff.
 * - `requeueAfter`: success for now; look again after `ms` milliseconds.
 */
export type Outcome =
  | { readonly kind: "done" }
  | { readonly kind: "retry"; readonly error: unknown }
  | { readonly kind: "requeueAfter"; readonly ms: number };

/** Settings of {@linkcode runWorkers}. */
export interface RunWorkersOptions<K> {
  /**
   * Told of every failure: a `retry` outcome, a thrown error or rejected
   * promise, or an invalid `requeueAfter`. Errors it throws are ignored.
   */
  readonly onError?: (key: K, error: unknown) => void;
}

/**
 * Runs `count` workers that take keys from `queue` and pass them to
 * `handler`, then apply its {@linkcode Outcome}: `done` forgets the key's
 * backoff, `retry` re-adds it rate-limited, `requeueAfter` forgets and re-adds
 * it after the delay. A handler that throws counts as `retry`. `done` is
 * always called. Resolves once the queue is shut down and every worker has
 * finished its current key.
 *
 * @example
 * ```ts
 * import { runWorkers, WorkQueue } from "./workqueue.ts";
 *
 * const queue = new WorkQueue<string>();
 * const running = runWorkers(queue, 2, async (key) => {
 *   // ... reconcile key ...
 *   return { kind: "done" };
 * }, { onError: (key, error) => console.error(`sync ${key} failed`, error) });
 * queue.add("default/web");
 * // ... later:
 * queue.shutDown();
 * await running;
 * ```
 *
 * @throws {RangeError} if `count` is not an integer >= 1.
 */
export async function runWorkers<K extends string>(
  queue: WorkQueue<K>,
  count: number,
  handler: (key: K) => Outcome | Promise<Outcome>,
  options: RunWorkersOptions<K> = {},
): Promise<void> {
  if (!(Number.isInteger(count) && count >= 1)) {
    throw new RangeError(`Cannot run workers: count must be an integer >= 1, got ${count}`);
  }
  const report = (key: K, error: unknown): void => {
    try {
      options.onError?.(key, error);
    } catch {
      // A broken reporter must not stop the worker.
    }
  };
  const processKey = async (key: K): Promise<void> => {
    try {
      const outcome = await handler(key);
      switch (outcome.kind) {
        case "done":
          queue.forget(key);
          break;
        case "retry":
          report(key, outcome.error);
          queue.addRateLimited(key);
          break;
        case "requeueAfter":
          queue.addAfter(key, outcome.ms);
          queue.forget(key);
          break;
        default: {
          const unknownOutcome: never = outcome;
          throw new TypeError(`Unknown outcome ${JSON.stringify(unknownOutcome)}`);
        }
      }
    } catch (error: unknown) {
      report(key, error);
      queue.addRateLimited(key);
    } finally {
      queue.done(key);
    }
  };
  const work = async (): Promise<void> => {
    for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
      await processKey(key);
    }
  };
  await Promise.all(Array.from({ length: count }, work));
}
