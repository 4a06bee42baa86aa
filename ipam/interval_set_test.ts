import assert from "node:assert/strict";
import fc from "fast-check";
import { IntervalSet } from "./interval_set.ts";

function intervalsOf(set: IntervalSet): [bigint, bigint][] {
  return [...set.intervals()].map(([low, high]) => [low, high]);
}

Deno.test("adding neighbours merges intervals, removing splits them", () => {
  const set = new IntervalSet();
  assert.equal(set.add(5n), true);
  assert.equal(set.add(7n), true);
  assert.deepEqual(intervalsOf(set), [[5n, 5n], [7n, 7n]]);
  assert.equal(set.add(6n), true);
  assert.deepEqual(intervalsOf(set), [[5n, 7n]]);
  assert.equal(set.add(6n), false, "adding twice reports no change");
  assert.equal(set.size, 3);
  assert.equal(set.nextAbsent(5n), 8n);
  assert.equal(set.nextAbsent(4n), 4n);
  assert.equal(set.remove(6n), true);
  assert.deepEqual(intervalsOf(set), [[5n, 5n], [7n, 7n]]);
  assert.equal(set.nextAbsent(5n), 6n);
  assert.equal(set.remove(6n), false, "removing an absent value reports no change");
  assert.equal(set.remove(5n), true);
  assert.equal(set.remove(7n), true);
  assert.deepEqual(intervalsOf(set), []);
  assert.equal(set.size, 0);
  assert.equal(set.intervalCount, 0);
});

Deno.test("a large fragmented set keeps its order (every other value of 10,000)", () => {
  const set = new IntervalSet();
  for (let value = 0n; value < 10_000n; value += 2n) set.add(value);
  assert.equal(set.intervalCount, 5_000);
  assert.equal(set.nextAbsent(0n), 1n);
  assert.equal(set.nextAbsent(9_998n), 9_999n);
  for (let value = 1n; value < 10_000n; value += 2n) set.add(value);
  assert.deepEqual(intervalsOf(set), [[0n, 9_999n]]);
});

type Operation = { readonly add: boolean; readonly value: number };

Deno.test("property: IntervalSet behaves like a Set of numbers", () => {
  const operation = fc.record({ add: fc.boolean(), value: fc.integer({ min: 0, max: 60 }) });
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 300 }), (operations: readonly Operation[]) => {
      const set = new IntervalSet();
      const model = new Set<number>();
      for (const { add, value } of operations) {
        const changed = add ? set.add(BigInt(value)) : set.remove(BigInt(value));
        const modelChanged = add ? !model.has(value) : model.has(value);
        if (add) model.add(value);
        else model.delete(value);
        assert.equal(changed, modelChanged);
        assert.equal(set.size, model.size);
      }
      const intervals = intervalsOf(set);
      for (let index = 1; index < intervals.length; index++) {
        const previous = intervals[index - 1];
        const current = intervals[index];
        assert.ok(previous !== undefined && current !== undefined);
        assert.ok(previous[1] + 1n < current[0], "intervals are disjoint, ordered and maximal");
      }
      for (let value = 0; value <= 62; value++) {
        assert.equal(set.has(BigInt(value)), model.has(value));
        let expected = value;
        while (model.has(expected)) expected++;
        assert.equal(set.nextAbsent(BigInt(value)), BigInt(expected));
      }
    }),
    { numRuns: 300 },
  );
});
