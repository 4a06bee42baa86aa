import assert from "node:assert/strict";
import fc from "fast-check";
import { DeferredDeleteMap } from "./deferred_delete_map.ts";

Deno.test("a deleted key is gone and can come back", () => {
  const map = new DeferredDeleteMap<string, number>();
  map.set("a", 1).set("b", 2);
  assert.equal(map.delete("a"), true);
  assert.equal(map.delete("a"), false);
  assert.equal(map.get("a"), undefined);
  assert.equal(map.has("a"), false);
  assert.equal(map.size, 1);
  map.set("a", 3);
  assert.equal(map.get("a"), 3);
  assert.equal(map.size, 2);
  assert.deepEqual([...map.entries()].sort(), [["a", 3], ["b", 2]]);
});

Deno.test("many deletions compact the table and keep every live entry", () => {
  const map = new DeferredDeleteMap<number, number>();
  for (let index = 0; index < 5000; index++) map.set(index, index * 2);
  for (let index = 0; index < 5000; index++) if (index % 5 !== 0) map.delete(index);
  assert.equal(map.size, 1000);
  assert.equal(map.get(5), 10);
  assert.equal(map.get(6), undefined);
  assert.deepEqual(
    [...map.entries()],
    Array.from({ length: 1000 }, (_, index) => [index * 5, index * 10]),
  );
  map.set(6, 1);
  assert.equal(map.size, 1001);
});

Deno.test("property: DeferredDeleteMap behaves like a Map", () => {
  const operation = fc.record({ set: fc.boolean(), key: fc.integer({ min: 0, max: 40 }) });
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 300 }), (operations) => {
      // A tiny threshold, so rebuilding happens often in these short runs.
      const map = new DeferredDeleteMap<number, number>(2);
      const model = new Map<number, number>();
      operations.forEach(({ set, key }, step) => {
        if (set) {
          map.set(key, step);
          model.set(key, step);
        } else {
          assert.equal(map.delete(key), model.delete(key));
        }
        assert.equal(map.size, model.size);
      });
      for (let key = 0; key <= 40; key++) assert.equal(map.get(key), model.get(key));
      assert.deepEqual(new Map(map.entries()), model);
    }),
    { numRuns: 300 },
  );
});
