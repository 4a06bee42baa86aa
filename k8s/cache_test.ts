import assert from "node:assert/strict";
import { MemoryCache } from "./cache.ts";

type Named = { metadata: { name: string; namespace?: string }; data?: string };

Deno.test("MemoryCache tells handlers of adds, real updates and deletes, not of equal puts", () => {
  const cache = new MemoryCache<Named>();
  const seen: string[] = [];
  cache.onChange((type, object, previous) =>
    seen.push(`${type} ${object.metadata.name} ${object.data ?? ""}<-${previous?.data ?? ""}`)
  );
  cache.put({ metadata: { name: "a", namespace: "x" }, data: "1" });
  cache.put({ metadata: { name: "a", namespace: "x" }, data: "1" });
  cache.put({ metadata: { name: "a", namespace: "x" }, data: "2" });
  assert.equal(cache.remove("a", "x"), true);
  assert.equal(cache.remove("a", "x"), false);
  assert.deepEqual(seen, ["add a 1<-", "update a 2<-1", "delete a 2<-"]);
});

Deno.test("MemoryCache gets by namespace and name, lists per namespace", () => {
  const cache = new MemoryCache<Named>();
  cache.put({ metadata: { name: "a", namespace: "x" } });
  cache.put({ metadata: { name: "a", namespace: "y" } });
  cache.put({ metadata: { name: "node" } });
  assert.equal(cache.get("a", "y")?.metadata.namespace, "y");
  assert.equal(cache.get("node")?.metadata.name, "node");
  assert.equal(cache.get("a"), undefined);
  assert.equal(cache.list("x").length, 1);
  assert.equal(cache.list().length, 3);
});

Deno.test("MemoryCache created unsynced syncs when told", async () => {
  const cache = new MemoryCache<Named>({ synced: false });
  assert.equal(cache.hasSynced, false);
  cache.markSynced();
  await cache.synced;
  assert.equal(cache.hasSynced, true);
});
