import assert from "node:assert/strict";
import fc from "fast-check";
import {
  candidatesFor,
  formatSubnetsAnnotation,
  liveNodes,
  type NodeLeaseRecord,
  parseSubnetsAnnotation,
  shouldSelfFence,
  SubnetsAnnotationError,
} from "./membership.ts";
import { winner } from "./hash.ts";

function record(
  nodeName: string,
  subnets: readonly string[],
  renewTimeMs = 1_000,
  leaseDurationMs = 15_000,
): NodeLeaseRecord {
  return { nodeName, renewTimeMs, leaseDurationMs, subnets };
}

Deno.test("liveNodes keeps a Lease while renewTime + duration is after now", () => {
  const records = [record("a", [], 1_000, 15_000), record("b", [], 5_000, 15_000)];
  assert.deepEqual(liveNodes(records, 15_999).map((r) => r.nodeName), ["a", "b"]);
  assert.deepEqual(liveNodes(records, 16_000).map((r) => r.nodeName), ["b"]);
  assert.deepEqual(liveNodes(records, 20_000).map((r) => r.nodeName), []);
  assert.deepEqual(liveNodes([], 0), []);
});

Deno.test("candidatesFor: nodes whose published subnets contain the address", () => {
  const records = [
    record("node-c", ["192.0.2.0/24", "2001:db8:1::/64"]),
    record("node-a", ["192.0.2.0/25"]),
    record("node-b", ["198.51.100.0/24", "not-a-cidr"]),
    record("node-d", ["2001:db8:1::/64", "2001:db8::/32"]),
  ];
  assert.deepEqual(candidatesFor("192.0.2.10", records), ["node-a", "node-c"]);
  assert.deepEqual(candidatesFor("192.0.2.200", records), ["node-c"]);
  assert.deepEqual(candidatesFor("198.51.100.255", records), ["node-b"]);
  assert.deepEqual(candidatesFor("2001:DB8:1::5", records), ["node-c", "node-d"]);
  assert.deepEqual(candidatesFor("203.0.113.1", records), []);
  assert.deepEqual(candidatesFor("not-an-address", records), []);
  // An IPv4 address never matches an IPv6 subnet of the same numeric range.
  assert.deepEqual(candidatesFor("0.0.0.1", [record("x", ["::/96"])]), []);
});

Deno.test("election end to end: an expired node is no candidate", () => {
  const records = [
    record("node-a", ["192.0.2.0/24"], 0),
    record("node-b", ["192.0.2.0/24"], 10_000),
    record("node-c", ["192.0.2.0/24"], 10_000),
  ];
  // node-c wins 192.0.2.10 among all three (see hash_test.ts); with node-c expired, node-b.
  assert.equal(
    winner(candidatesFor("192.0.2.10", liveNodes(records, 1_000)), "192.0.2.10"),
    "node-c",
  );
  const late = [...records.slice(0, 2), record("node-c", ["192.0.2.0/24"], 0)];
  assert.equal(
    winner(candidatesFor("192.0.2.10", liveNodes(late, 20_000)), "192.0.2.10"),
    "node-b",
  );
});

Deno.test("parseSubnetsAnnotation: canonical, sorted, once; invalid entries reported", () => {
  assert.deepEqual(parseSubnetsAnnotation(""), { subnets: [], invalid: [] });
  assert.deepEqual(
    parseSubnetsAnnotation(" 2001:DB8:1::11/64 , 192.0.2.11/24,,192.0.2.0/24, 10.0.0.5, x/33"),
    { subnets: ["192.0.2.0/24", "2001:db8:1::/64"], invalid: ["10.0.0.5", "x/33"] },
  );
  assert.deepEqual(parseSubnetsAnnotation("192.0.2.0/33").invalid, ["192.0.2.0/33"]);
});

Deno.test("formatSubnetsAnnotation: comma separated, sorted, canonical; throws on non-CIDRs", () => {
  assert.equal(formatSubnetsAnnotation([]), "");
  assert.equal(
    formatSubnetsAnnotation(["2001:db8:1::11/64", "198.51.100.7/24", "192.0.2.11/24"]),
    "192.0.2.0/24,198.51.100.0/24,2001:db8:1::/64",
  );
  assert.throws(
    () => formatSubnetsAnnotation(["192.0.2.0/24", "bogus", "192.0.2.1"]),
    (error: unknown) =>
      error instanceof SubnetsAnnotationError && error.name === "SubnetsAnnotationError" &&
      error.invalid.join(" ") === "bogus 192.0.2.1",
  );
});

Deno.test("property: format then parse gives the same canonical subnets", () => {
  const cidr = fc.oneof(
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })),
    fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })),
  ).map(([address, prefix]) => `${address}/${prefix}`);
  fc.assert(
    fc.property(fc.array(cidr, { maxLength: 8 }), (cidrs) => {
      const text = formatSubnetsAnnotation(cidrs);
      const parsed = parseSubnetsAnnotation(text);
      assert.deepEqual(parsed.invalid, []);
      assert.equal(parsed.subnets.join(","), text);
      assert.equal(formatSubnetsAnnotation(parsed.subnets), text);
      assert.deepEqual([...parsed.subnets].sort(), parsed.subnets);
    }),
  );
});

Deno.test("shouldSelfFence after a full lease duration without a successful renewal", () => {
  assert.equal(shouldSelfFence(1_000, 15_000, 1_000), false);
  assert.equal(shouldSelfFence(1_000, 15_000, 15_999), false);
  assert.equal(shouldSelfFence(1_000, 15_000, 16_000), true);
  assert.equal(shouldSelfFence(1_000, 15_000, 100_000), true);
});
