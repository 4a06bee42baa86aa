import assert from "node:assert/strict";
import fc from "fast-check";
import { ExponentialBackoff, sleep } from "./backoff.ts";
import { type Clock, type Outcome, runWorkers, WorkQueue } from "./workqueue.ts";

/** Registers a test with the op sanitizer on (off by default in Deno 2), so a leaked timer fails it. */
function test(name: string, fn: () => void | Promise<void>): void {
  Deno.test({ name, sanitizeOps: true, sanitizeResources: true, fn });
}

interface FakeTimer {
  readonly dueAt: number;
  readonly callback: () => void;
}

/** A clock whose time moves only through `advance`, firing due timers in order. */
class FakeClock implements Clock {
  #now = 0;
  #nextId = 0;
  readonly #timers = new Map<number, FakeTimer>();
  readonly requestedDelays: number[] = [];

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, ms: number): () => void {
    const id = this.#nextId++;
    this.#timers.set(id, { dueAt: this.#now + ms, callback });
    this.requestedDelays.push(ms);
    return () => this.#timers.delete(id);
  }

  get pendingTimers(): number {
    return this.#timers.size;
  }

  advance(ms: number): void {
    const target = this.#now + ms;
    for (;;) {
      let next: [number, FakeTimer] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].dueAt <= target && (next === undefined || entry[1].dueAt < next[1].dueAt)) {
          next = entry;
        }
      }
      if (next === undefined) break;
      this.#timers.delete(next[0]);
      this.#now = next[1].dueAt;
      next[1].callback();
    }
    this.#now = target;
  }
}

/** Lets every already-resolved promise chain run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/** Polls `condition` until it holds, failing after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(1);
  }
}

/** Takes every queued key without blocking, marking each done. */
async function drain<K extends string>(queue: WorkQueue<K>): Promise<K[]> {
  const keys: K[] = [];
  while (queue.len() > 0) {
    const key = await queue.get();
    if (key === undefined) break;
    keys.push(key);
    queue.done(key);
  }
  return keys;
}

function fakeQueue(): { queue: WorkQueue<string>; clock: FakeClock } {
  const clock = new FakeClock();
  return { queue: new WorkQueue<string>({ clock }), clock };
}

// --- add / get / done ---

test("WorkQueue hands out keys in the order they were added", async () => {
  const queue = new WorkQueue<string>();
  queue.add("a");
  queue.add("b");
  queue.add("c");
  assert.equal(queue.len(), 3);
  assert.deepEqual(await drain(queue), ["a", "b", "c"]);
  queue.shutDown();
});

test("WorkQueue queues a waiting key once however often it is added", async () => {
  const queue = new WorkQueue<string>();
  queue.add("a");
  queue.add("b");
  queue.add("a");
  queue.add("a");
  assert.equal(queue.len(), 2);
  assert.deepEqual(await drain(queue), ["a", "b"]);
  queue.shutDown();
});

test("WorkQueue does not hand out a key that is being processed", async () => {
  const queue = new WorkQueue<string>();
  queue.add("a");
  assert.equal(await queue.get(), "a");
  queue.add("a");
  queue.add("b");
  assert.equal(queue.len(), 1);
  assert.equal(await queue.get(), "b");
  assert.equal(queue.len(), 0);
  queue.shutDown();
});

test("WorkQueue re-queues a key added during processing once, on done", async () => {
  const queue = new WorkQueue<string>();
  queue.add("a");
  assert.equal(await queue.get(), "a");
  queue.add("a");
  queue.add("a");
  queue.done("a");
  assert.equal(queue.len(), 1);
  assert.deepEqual(await drain(queue), ["a"]);
  queue.shutDown();
});

test("WorkQueue does not re-queue a key on done when it was not added meanwhile", async () => {
  const queue = new WorkQueue<string>();
  queue.add("a");
  assert.equal(await queue.get(), "a");
  queue.done("a");
  assert.equal(queue.len(), 0);
  queue.add("a");
  assert.equal(queue.len(), 1);
  queue.shutDown();
});

test("WorkQueue.get waits for the next add", async () => {
  const queue = new WorkQueue<string>();
  let received: string | undefined = "nothing yet";
  const getting = queue.get().then((key) => {
    received = key;
  });
  await settle();
  assert.equal(received, "nothing yet");
  queue.add("a");
  await getting;
  assert.equal(received, "a");
  queue.shutDown();
});

test("WorkQueue gives each waiting worker a different key, first come first served", async () => {
  const queue = new WorkQueue<string>();
  const first = queue.get();
  const second = queue.get();
  queue.add("a");
  queue.add("a");
  queue.add("b");
  assert.deepEqual(await Promise.all([first, second]), ["a", "b"]);
  assert.equal(queue.len(), 0);
  queue.shutDown();
});

test("WorkQueue.shutDown resolves waiting and later gets with undefined", async () => {
  const queue = new WorkQueue<string>();
  const waiting = queue.get();
  assert.equal(queue.shuttingDown, false);
  queue.shutDown();
  assert.equal(queue.shuttingDown, true);
  assert.equal(await waiting, undefined);
  assert.equal(await queue.get(), undefined);
});

test("WorkQueue.shutDown drops queued keys and ignores later adds", async () => {
  const queue = new WorkQueue<string>();
  queue.add("a");
  queue.add("b");
  assert.equal(await queue.get(), "a");
  queue.add("a");
  queue.shutDown();
  assert.equal(queue.len(), 0);
  queue.add("c");
  queue.done("a");
  assert.equal(queue.len(), 0);
  assert.equal(await queue.get(), undefined);
});

// --- addAfter / addRateLimited ---

test("WorkQueue.addAfter queues the key once the delay has passed", () => {
  const { queue, clock } = fakeQueue();
  queue.addAfter("a", 100);
  clock.advance(99);
  assert.equal(queue.len(), 0);
  clock.advance(1);
  assert.equal(queue.len(), 1);
  assert.equal(clock.pendingTimers, 0);
  queue.shutDown();
});

test("WorkQueue.addAfter with a zero or negative delay adds at once", () => {
  const { queue, clock } = fakeQueue();
  queue.addAfter("a", 0);
  queue.addAfter("b", -5);
  assert.equal(queue.len(), 2);
  assert.equal(clock.pendingTimers, 0);
  queue.shutDown();
});

test("WorkQueue.addAfter keeps the sooner of two delays for a key", async () => {
  const { queue, clock } = fakeQueue();
  queue.addAfter("later-first", 100);
  queue.addAfter("later-first", 50);
  queue.addAfter("sooner-first", 50);
  queue.addAfter("sooner-first", 100);
  assert.equal(clock.pendingTimers, 2);
  clock.advance(50);
  assert.deepEqual(await drain(queue), ["later-first", "sooner-first"]);
  assert.equal(clock.pendingTimers, 0);
  clock.advance(100);
  assert.equal(queue.len(), 0);
  queue.shutDown();
});

test("WorkQueue.addAfter of a key being processed re-queues it on done", async () => {
  const { queue, clock } = fakeQueue();
  queue.add("a");
  assert.equal(await queue.get(), "a");
  queue.addAfter("a", 10);
  clock.advance(10);
  assert.equal(queue.len(), 0);
  queue.done("a");
  assert.equal(queue.len(), 1);
  queue.shutDown();
});

test("WorkQueue.addAfter rejects a delay that is not a number or too long", () => {
  const { queue } = fakeQueue();
  for (const ms of [Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31]) {
    assert.throws(() => queue.addAfter("a", ms), RangeError, String(ms));
  }
  queue.shutDown();
});

test("WorkQueue.addAfter works with the system clock", async () => {
  const queue = new WorkQueue<string>();
  const start = performance.now();
  queue.addAfter("a", 20);
  assert.equal(queue.len(), 0);
  assert.equal(await queue.get(), "a");
  assert.ok(performance.now() - start >= 19, `added after ${performance.now() - start} ms`);
  queue.shutDown();
});

test("WorkQueue.shutDown cancels pending delayed adds", () => {
  const { queue, clock } = fakeQueue();
  queue.addAfter("a", 10);
  queue.addAfter("b", 20);
  queue.shutDown();
  assert.equal(clock.pendingTimers, 0);
  queue.addAfter("c", 10);
  assert.equal(clock.pendingTimers, 0);
  assert.equal(queue.len(), 0);
});

test("WorkQueue.shutDown clears real timers (checked by the test sanitizer)", () => {
  const queue = new WorkQueue<string>();
  queue.addAfter("a", 60_000);
  queue.addRateLimited("b");
  queue.shutDown();
  assert.equal(queue.len(), 0);
});

test("WorkQueue.addRateLimited backs off per key and forget resets", () => {
  const clock = new FakeClock();
  const queue = new WorkQueue<string>({
    clock,
    rateLimiter: new ExponentialBackoff({ baseMs: 5, maxMs: 1_000 }),
  });
  for (let i = 0; i < 3; i++) {
    queue.addRateLimited("a");
    clock.advance(1_000);
  }
  queue.addRateLimited("b");
  assert.deepEqual(clock.requestedDelays, [5, 10, 20, 5]);
  assert.equal(queue.retries("a"), 3);
  queue.forget("a");
  assert.equal(queue.retries("a"), 0);
  assert.equal(queue.retries("b"), 1);
  queue.addRateLimited("a");
  assert.equal(clock.requestedDelays.at(-1), 5);
  queue.shutDown();
});

// --- property tests ---

type Step =
  | { readonly op: "add"; readonly key: string }
  | { readonly op: "get"; readonly worker: number }
  | { readonly op: "done"; readonly worker: number };

type WorkerState =
  | { readonly kind: "idle" }
  | { readonly kind: "waiting" }
  | { readonly kind: "holding"; readonly key: string };

const WORKERS = 3;
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ op: fc.constant("add" as const), key: fc.constantFrom("a", "b", "c", "d") }),
  fc.record({ op: fc.constant("get" as const), worker: fc.integer({ min: 0, max: WORKERS - 1 }) }),
  fc.record({ op: fc.constant("done" as const), worker: fc.integer({ min: 0, max: WORKERS - 1 }) }),
);

/**
 * Simulated workers run random add/get/done interleavings. A key is "stale"
 * from an add until a worker next receives it; stale keys not held by anyone
 * must be exactly the queued ones.
 */
test("WorkQueue: random interleavings never share, lose or duplicate keys (property)", async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(stepArbitrary, { maxLength: 80 }), async (steps) => {
      const queue = new WorkQueue<string>();
      const workers: WorkerState[] = Array.from({ length: WORKERS }, () => ({ kind: "idle" }));
      const stale = new Set<string>();
      const violations: string[] = [];
      const held = () =>
        new Set(workers.flatMap((worker) => worker.kind === "holding" ? [worker.key] : []));

      const startGet = (index: number): void => {
        workers[index] = { kind: "waiting" };
        void queue.get().then((key) => {
          if (key === undefined) {
            workers[index] = { kind: "idle" };
            return;
          }
          if (held().has(key)) violations.push(`worker ${index} got "${key}" held by another`);
          stale.delete(key);
          workers[index] = { kind: "holding", key };
        });
      };
      const finish = (index: number): void => {
        const worker = workers[index];
        if (worker?.kind !== "holding") return;
        workers[index] = { kind: "idle" };
        queue.done(worker.key);
      };
      const checkInvariants = (): void => {
        assert.deepEqual(violations, []);
        const holding = held();
        const queuedByModel = [...stale].filter((key) => !holding.has(key)).length;
        assert.equal(queue.len(), queuedByModel, "queued keys differ from the model");
        if (workers.some((worker) => worker.kind === "waiting")) assert.equal(queue.len(), 0);
      };

      for (const step of steps) {
        if (step.op === "add") {
          stale.add(step.key);
          queue.add(step.key);
        } else if (step.op === "get") {
          if (workers[step.worker]?.kind === "idle") startGet(step.worker);
        } else {
          finish(step.worker);
        }
        await settle();
        checkInvariants();
      }

      // Let every worker finish and keep taking keys until nothing is left.
      for (let round = 0; round < 20 && (queue.len() > 0 || held().size > 0); round++) {
        for (let index = 0; index < WORKERS; index++) finish(index);
        for (let index = 0; index < WORKERS; index++) {
          if (workers[index]?.kind === "idle") startGet(index);
        }
        await settle();
        checkInvariants();
      }
      assert.deepEqual([...stale], [], "keys added but never processed afterwards");

      queue.shutDown();
      await settle();
      assert.ok(workers.every((worker) => worker.kind === "idle"), "a get did not end");
    }),
  );
});

type DelayStep =
  | { readonly op: "addAfter"; readonly key: string; readonly ms: number }
  | { readonly op: "advance"; readonly ms: number };

test("WorkQueue.addAfter queues each key at its soonest pending time (property)", async () => {
  const delayStepArbitrary: fc.Arbitrary<DelayStep> = fc.oneof(
    fc.record({
      op: fc.constant("addAfter" as const),
      key: fc.constantFrom("a", "b", "c"),
      ms: fc.integer({ min: -5, max: 100 }),
    }),
    fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 0, max: 60 }) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(delayStepArbitrary, { maxLength: 40 }), async (steps) => {
      const { queue, clock } = fakeQueue();
      const dueAt = new Map<string, number>();
      const expectedQueued = new Set<string>();
      for (const step of steps) {
        if (step.op === "addAfter") {
          queue.addAfter(step.key, step.ms);
          if (step.ms <= 0) {
            expectedQueued.add(step.key);
          } else {
            const due = clock.now() + step.ms;
            dueAt.set(step.key, Math.min(due, dueAt.get(step.key) ?? due));
          }
        } else {
          clock.advance(step.ms);
          for (const [key, due] of dueAt) {
            if (due <= clock.now()) {
              expectedQueued.add(key);
              dueAt.delete(key);
            }
          }
        }
        assert.equal(queue.len(), expectedQueued.size);
        assert.equal(clock.pendingTimers, dueAt.size);
      }
      assert.deepEqual(new Set(await drain(queue)), expectedQueued);
      queue.shutDown();
    }),
  );
});

// --- runWorkers ---

test("runWorkers: done forgets the key's backoff", async () => {
  const { queue } = fakeQueue();
  queue.addRateLimited("a");
  queue.add("a");
  const handled: string[] = [];
  const running = runWorkers(queue, 1, (key): Outcome => {
    handled.push(key);
    return { kind: "done" };
  });
  await waitFor(() => handled.length === 1, "the handler");
  assert.equal(queue.retries("a"), 0);
  queue.shutDown();
  await running;
});

test("runWorkers: retry re-adds with growing backoff and reports the error", async () => {
  const { queue, clock } = fakeQueue();
  const failure = new Error("API unavailable");
  const reported: Array<[string, unknown]> = [];
  let calls = 0;
  const running = runWorkers(queue, 2, async (): Promise<Outcome> => {
    await Promise.resolve();
    calls++;
    return calls <= 2 ? { kind: "retry", error: failure } : { kind: "done" };
  }, { onError: (key, error) => reported.push([key, error]) });

  queue.add("a");
  await waitFor(() => calls === 1 && clock.pendingTimers === 1, "first failure");
  assert.equal(queue.retries("a"), 1);
  clock.advance(5);
  await waitFor(() => calls === 2 && clock.pendingTimers === 1, "second failure");
  clock.advance(10);
  await waitFor(() => calls === 3, "success");
  assert.deepEqual(clock.requestedDelays, [5, 10]);
  assert.deepEqual(reported, [["a", failure], ["a", failure]]);
  assert.equal(queue.retries("a"), 0);
  queue.shutDown();
  await running;
});

test("runWorkers: a thrown error counts as retry, is reported, and done is called", async () => {
  const { queue, clock } = fakeQueue();
  const reported: unknown[] = [];
  let calls = 0;
  const running = runWorkers(queue, 1, async (key): Promise<Outcome> => {
    calls++;
    if (calls === 1) throw new Error(`cannot sync ${key}`);
    await Promise.resolve();
    return { kind: "done" };
  }, { onError: (_key, error) => reported.push(error) });

  queue.add("a");
  await waitFor(() => calls === 1 && clock.pendingTimers === 1, "the failure");
  assert.equal(reported.length, 1);
  assert.ok(reported[0] instanceof Error && reported[0].message === "cannot sync a");
  // Had done() not been called, "a" would stay held and this add would be lost.
  queue.add("a");
  await waitFor(() => calls === 2, "the second attempt");
  queue.shutDown();
  await running;
});

test("runWorkers: requeueAfter forgets the backoff and re-adds after the delay", async () => {
  const clock = new FakeClock();
  const backoff = new ExponentialBackoff();
  backoff.when("a");
  const queue = new WorkQueue<string>({ clock, rateLimiter: backoff });
  queue.add("a");
  let calls = 0;
  const running = runWorkers(queue, 1, (): Outcome => {
    calls++;
    return calls === 1 ? { kind: "requeueAfter", ms: 1_000 } : { kind: "done" };
  });
  await waitFor(() => calls === 1 && queue.retries("a") === 0, "the first call");
  clock.advance(999);
  await settle();
  assert.equal(calls, 1);
  clock.advance(1);
  await waitFor(() => calls === 2, "the requeued call");
  queue.shutDown();
  await running;
});

test("runWorkers: an invalid requeueAfter is reported and retried", async () => {
  const { queue, clock } = fakeQueue();
  const reported: unknown[] = [];
  let calls = 0;
  const running = runWorkers(queue, 1, (): Outcome => {
    calls++;
    return calls === 1 ? { kind: "requeueAfter", ms: Number.NaN } : { kind: "done" };
  }, { onError: (_key, error) => reported.push(error) });
  queue.add("a");
  await waitFor(() => reported.length === 1, "the report");
  assert.ok(reported[0] instanceof RangeError);
  assert.equal(queue.retries("a"), 1);
  clock.advance(5);
  await waitFor(() => calls === 2, "the retry");
  queue.shutDown();
  await running;
});

test("runWorkers: a throwing onError does not stop the worker", async () => {
  const { queue } = fakeQueue();
  const handled: string[] = [];
  const running = runWorkers(queue, 1, (key): Outcome => {
    handled.push(key);
    return key === "bad" ? { kind: "retry", error: new Error("bad") } : { kind: "done" };
  }, {
    onError: () => {
      throw new Error("reporter broke");
    },
  });
  queue.add("bad");
  queue.add("good");
  await waitFor(() => handled.length === 2, "both keys");
  assert.deepEqual(handled, ["bad", "good"]);
  queue.shutDown();
  await running;
});

test("runWorkers resolves only after shutDown and the in-flight handler finish", async () => {
  const queue = new WorkQueue<string>();
  const release = Promise.withResolvers<void>();
  let started = false;
  let finished = false;
  const running = runWorkers(queue, 3, async (): Promise<Outcome> => {
    started = true;
    await release.promise;
    return { kind: "done" };
  }).then(() => {
    finished = true;
  });
  queue.add("a");
  await waitFor(() => started, "the handler to start");
  queue.shutDown();
  await settle();
  assert.equal(finished, false);
  release.resolve();
  await running;
  assert.equal(finished, true);
});

test("runWorkers rejects a worker count that is not a positive integer", async () => {
  const queue = new WorkQueue<string>();
  for (const count of [0, -1, 1.5, Number.NaN]) {
    await assert.rejects(runWorkers(queue, count, () => ({ kind: "done" })), RangeError);
  }
  queue.shutDown();
});

test("runWorkers: 4 real workers never process one key concurrently", async () => {
  const keys = ["a", "b", "c"] as const;
  type Key = typeof keys[number];
  const queue = new WorkQueue<Key>({
    rateLimiter: new ExponentialBackoff({ baseMs: 1, maxMs: 4 }),
  });
  const active = new Map<Key, number>();
  const maxActive = new Map<Key, number>();
  let activeTotal = 0;
  let maxActiveTotal = 0;
  let tick = 0;
  const lastAdded = new Map<Key, number>();
  const lastStarted = new Map<Key, number>();
  let calls = 0;

  const running = runWorkers(queue, 4, async (key): Promise<Outcome> => {
    lastStarted.set(key, ++tick);
    const now = (active.get(key) ?? 0) + 1;
    active.set(key, now);
    maxActive.set(key, Math.max(now, maxActive.get(key) ?? 0));
    activeTotal++;
    maxActiveTotal = Math.max(maxActiveTotal, activeTotal);
    calls++;
    try {
      await sleep(calls % 3);
      return calls % 7 === 0 ? { kind: "retry", error: new Error("flaky") } : { kind: "done" };
    } finally {
      active.set(key, (active.get(key) ?? 1) - 1);
      activeTotal--;
    }
  });

  const add = (key: Key): void => {
    lastAdded.set(key, ++tick);
    queue.add(key);
  };
  const producers = Array.from({ length: 5 }, async (_, producer) => {
    for (let i = 0; i < 60; i++) {
      add(keys[(i + producer) % keys.length] ?? "a");
      if (i % 4 === 0) await sleep(i % 3);
      else await Promise.resolve();
    }
  });
  await Promise.all(producers);
  const caughtUp = () =>
    activeTotal === 0 && queue.len() === 0 &&
    keys.every((key) => (lastStarted.get(key) ?? 0) > (lastAdded.get(key) ?? 0));
  await waitFor(caughtUp, "every key to be processed after its last add");
  queue.shutDown();
  await running;

  assert.deepEqual(Object.fromEntries(maxActive), { a: 1, b: 1, c: 1 });
  assert.ok(maxActiveTotal > 1, "workers never overlapped, so the test proved nothing");
  assert.ok(calls >= keys.length);
});
