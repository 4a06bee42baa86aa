import assert from "node:assert/strict";
import { type Work, workKey, workOfKey } from "./work.ts";

Deno.test("every work item survives its queue key", () => {
  const items: readonly Work[] = [
    { kind: "service", key: "shop/web" },
    { kind: "groups" },
    { kind: "group_status", group: "default" },
    { kind: "netbox_return", id: "https://netbox.example/ lab 192.0.2.10" },
    { kind: "netbox_sweep", group: "nb" },
    { kind: "announcing", key: "shop/web" },
  ];
  for (const work of items) assert.deepEqual(workOfKey(workKey(work)), work);
  assert.equal(new Set(items.map(workKey)).size, items.length, "distinct items, distinct keys");
});

Deno.test("a string that is no work key is refused", () => {
  for (const key of ["", "shop/web", "groups:x", "service", "sg:default"]) {
    assert.throws(() => workOfKey(key), TypeError, key);
  }
});
