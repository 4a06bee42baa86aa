import assert from "node:assert/strict";
import fc from "fast-check";
import { ExponentialBackoff, sleep } from "./backoff.ts";

/** Registers a test with the op sanitizer on (off by default in Deno 2), so a leaked timer fails it. */
function test(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, sanitizeOps: true, sanitizeResources: true, fn });
}

test("ExponentialBackoff doubles from base up to the cap", () => {
  const backoff = new ExponentialBackoff({ baseMs: 5, maxMs: 100 });
  const delays = Array.from({ length: 7 }, () => backoff.when("a"));
  assert.deepEqual(delays, [5, 10, 20, 40, 80, 100, 100]);
  assert.equal(backoff.retries("a"), 7);
});

test("ExponentialBackoff uses the configured factor", () => {
  const backoff = new ExponentialBackoff({ baseMs: 1, maxMs: 1_000, factor: 10 });
  assert.deepEqual([backoff.when("a"), backoff.when("a"), backoff.when("a")], [1, 10, 100]);
});

test("ExponentialBackoff defaults to 5 ms base and a 30 s cap", () => {
  const backoff = new ExponentialBackoff();
  assert.equal(backoff.when("a"), 5);
  for (let i = 0; i < 30; i++) backoff.when("a");
  assert.equal(backoff.when("a"), 30_000);
});

test("ExponentialBackoff counts failures per key", () => {
  const backoff = new ExponentialBackoff({ baseMs: 5 });
  backoff.when("a");
  backoff.when("a");
  assert.equal(backoff.when("b"), 5);
  assert.equal(backoff.retries("a"), 2);
  assert.equal(backoff.retries("b"), 1);
  assert.equal(backoff.retries("never-failed"), 0);
});

test("ExponentialBackoff.forget starts the key over at the base delay", () => {
  const backoff = new ExponentialBackoff({ baseMs: 5 });
  backoff.when("a");
  backoff.when("a");
  backoff.when("b");
  backoff.forget("a");
  assert.equal(backoff.retries("a"), 0);
  assert.equal(backoff.when("a"), 5);
  assert.equal(backoff.retries("b"), 1);
});

test("ExponentialBackoff stays at the cap after very many failures", () => {
  const backoff = new ExponentialBackoff({ baseMs: 5, maxMs: 1_000 });
  let last = 0;
  for (let i = 0; i < 5_000; i++) last = backoff.when("a");
  assert.equal(last, 1_000);
});

test("ExponentialBackoff jitter shortens the delay by up to the jitter fraction", () => {
  const randomValues = [0, 0.5, 0.999];
  const backoff = new ExponentialBackoff({
    baseMs: 100,
    maxMs: 100,
    jitter: 0.5,
    random: () => randomValues.shift() ?? 0,
  });
  assert.equal(backoff.when("a"), 100);
  assert.equal(backoff.when("a"), 75);
  assert.equal(backoff.when("a"), 100 * (1 - 0.5 * 0.999));
});

test("ExponentialBackoff rejects out-of-range options", () => {
  const invalid = [
    { baseMs: 0 },
    { baseMs: -1 },
    { baseMs: Number.NaN },
    { baseMs: 10, maxMs: 5 },
    { maxMs: Number.POSITIVE_INFINITY },
    { factor: 0.5 },
    { jitter: -0.1 },
    { jitter: 1.5 },
    { jitter: Number.NaN },
  ];
  for (const options of invalid) {
    assert.throws(() => new ExponentialBackoff(options), RangeError, JSON.stringify(options));
  }
});

test("ExponentialBackoff delays never decrease and stay within (0, maxMs] (property)", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0.001, max: 1_000, noNaN: true }),
      fc.double({ min: 0, max: 100_000, noNaN: true }),
      fc.double({ min: 1, max: 10, noNaN: true }),
      fc.integer({ min: 1, max: 200 }),
      (baseMs, extraMs, factor, failures) => {
        const maxMs = baseMs + extraMs;
        const backoff = new ExponentialBackoff({ baseMs, maxMs, factor });
        let previous = 0;
        for (let i = 0; i < failures; i++) {
          const delay = backoff.when("k");
          assert.ok(delay >= previous && delay > 0 && delay <= maxMs, `delay ${delay}`);
          previous = delay;
        }
      },
    ),
  );
});

test("ExponentialBackoff with jitter stays within [(1 - jitter) * delay, delay] (property)", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
      fc.integer({ min: 0, max: 20 }),
      (jitter, random, priorFailures) => {
        const options = { baseMs: 5, maxMs: 1_000 };
        const plain = new ExponentialBackoff(options);
        const jittered = new ExponentialBackoff({ ...options, jitter, random: () => random });
        for (let i = 0; i < priorFailures; i++) {
          plain.when("k");
          jittered.when("k");
        }
        const full = plain.when("k");
        const delay = jittered.when("k");
        assert.ok(delay <= full && delay >= (1 - jitter) * full, `${delay} vs ${full}`);
      },
    ),
  );
});

test("sleep resolves after the delay", async () => {
  const start = performance.now();
  await sleep(20);
  // Timers may be rounded to whole milliseconds.
  assert.ok(performance.now() - start >= 19, `woke after ${performance.now() - start} ms`);
});

test("sleep rejects with the abort reason and clears its timer", async () => {
  const controller = new AbortController();
  const reason = new Error("stop");
  const sleeping = sleep(60_000, controller.signal);
  controller.abort(reason);
  // The test sanitizer fails this test if the 60 s timer were left running.
  await assert.rejects(sleeping, (error) => error === reason);
});

test("sleep rejects at once when the signal is already aborted", async () => {
  const reason = new Error("already");
  await assert.rejects(sleep(60_000, AbortSignal.abort(reason)), (error) => error === reason);
});

test("sleep with a signal that does not abort resolves after the delay", async () => {
  const controller = new AbortController();
  const start = performance.now();
  await sleep(20, controller.signal);
  assert.ok(performance.now() - start >= 19, `woke after ${performance.now() - start} ms`);
});
