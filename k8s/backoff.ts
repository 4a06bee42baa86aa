/**
 * Exponential backoff: per-key delays for retrying failed work, and an abortable
 * {@linkcode sleep}.
 *
 * @module
 */

/**
 * Decides how long to wait before the next attempt for a key. The work queue
 * calls {@linkcode RateLimiter.when} on every failure and
 * {@linkcode RateLimiter.forget} once the key succeeds.
 *
 * @example
 * ```ts
 * import { ExponentialBackoff, type RateLimiter } from "./backoff.ts";
 *
 * const limiter: RateLimiter<string> = new ExponentialBackoff();
 * const firstDelayMs = limiter.when("default/web");
 * ```
 */
export interface RateLimiter<K> {
  /** Returns the delay in milliseconds before the next attempt and records one more failure. */
  when(key: K): number;
  /** Clears the failure history of the key. */
  forget(key: K): void;
  /** Number of failures recorded for the key since it was last forgotten. */
  retries(key: K): number;
}

/** Settings of {@linkcode ExponentialBackoff}; all are optional. */
export interface ExponentialBackoffOptions {
  /** Delay after the first failure, in milliseconds. Default 5. Must be > 0. */
  readonly baseMs?: number;
  /** Upper bound of any delay, in milliseconds. Default 30 000. Must be >= `baseMs`. */
  readonly maxMs?: number;
  /** Growth per failure. Default 2. Must be >= 1. */
  readonly factor?: number;
  /**
   * Fraction in [0, 1] by which a delay may be randomly shortened, so that
   * many keys failing together do not retry in lockstep. Default 0 (none).
   * Jitter only shortens, so `maxMs` stays a hard bound.
   */
  readonly jitter?: number;
  /** Source of numbers in [0, 1) for jitter. Default `Math.random`. */
  readonly random?: () => number;
}

/**
 * Per-key exponential backoff: the n-th consecutive failure of a key (counting
 * from 0) waits `min(maxMs, baseMs * factor ** n)`, optionally shortened by
 * jitter. Holds no timers; it only computes delays.
 *
 * @example
 * ```ts
 * import { ExponentialBackoff } from "./backoff.ts";
 *
 * const backoff = new ExponentialBackoff({ baseMs: 10, maxMs: 1_000 });
 * backoff.when("a"); // 10
 * backoff.when("a"); // 20
 * backoff.retries("a"); // 2
 * backoff.forget("a");
 * backoff.when("a"); // 10 again
 * ```
 */
export class ExponentialBackoff<K = string> implements RateLimiter<K> {
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #factor: number;
  readonly #jitter: number;
  readonly #random: () => number;
  readonly #failures = new Map<K, number>();

  /** @throws {RangeError} when an option is out of its documented range. */
  constructor(options: ExponentialBackoffOptions = {}) {
    const { baseMs = 5, maxMs = 30_000, factor = 2, jitter = 0, random = Math.random } = options;
    if (!(Number.isFinite(baseMs) && baseMs > 0)) {
      throw new RangeError(
        `Cannot create backoff: baseMs must be a finite number > 0, got ${baseMs}`,
      );
    }
    if (!(Number.isFinite(maxMs) && maxMs >= baseMs)) {
      throw new RangeError(
        `Cannot create backoff: maxMs must be finite and >= baseMs (${baseMs}), got ${maxMs}`,
      );
    }
    if (!(Number.isFinite(factor) && factor >= 1)) {
      throw new RangeError(
        `Cannot create backoff: factor must be a finite number >= 1, got ${factor}`,
      );
    }
    if (!(jitter >= 0 && jitter <= 1)) {
      throw new RangeError(`Cannot create backoff: jitter must be in [0, 1], got ${jitter}`);
    }
    this.#baseMs = baseMs;
    this.#maxMs = maxMs;
    this.#factor = factor;
    this.#jitter = jitter;
    this.#random = random;
  }

  /** Returns the delay for the key's next attempt and counts one more failure. */
  when(key: K): number {
    const failures = this.retries(key);
    this.#failures.set(key, failures + 1);
    // factor ** failures may overflow to Infinity; Math.min turns that into the cap.
    const delay = Math.min(this.#maxMs, this.#baseMs * this.#factor ** failures);
    return delay * (1 - this.#jitter * this.#random());
  }

  /** Forgets the key's failures: its next delay is `baseMs` again. */
  forget(key: K): void {
    this.#failures.delete(key);
  }

  /** Number of failures counted for the key since it was last forgotten. */
  retries(key: K): number {
    return this.#failures.get(key) ?? 0;
  }
}

/**
 * Resolves after `ms` milliseconds. If `signal` aborts first, the timer is
 * cleared and the promise rejects with the signal's reason.
 *
 * @example
 * ```ts
 * import { sleep } from "./backoff.ts";
 *
 * const controller = new AbortController();
 * await sleep(10, controller.signal);
 * ```
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal === undefined) {
      setTimeout(resolve, ms);
      return;
    }
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
