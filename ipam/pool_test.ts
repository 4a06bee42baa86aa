import assert from "node:assert/strict";
import {
  type AssignResult,
  createPoolRange,
  LocalPool,
  PoolConfigurationError,
  type PoolRange,
} from "./pool.ts";
import { parseCidr, parseRange } from "./range.ts";
import type { ServicePort, SharingRequest } from "./sharing.ts";

function poolRange(pool: string, subnet: string, aggregation?: number): PoolRange {
  return createPoolRange(
    parseRange(pool),
    parseCidr(subnet),
    aggregation === undefined ? { kind: "default" } : { kind: "prefix", prefixLength: aggregation },
  );
}

const NO_SHARING: SharingRequest = { sharingKey: "", ports: [] };
const tcp = (port: number): ServicePort => ({ protocol: "TCP", port });
const v4 = (sharingKey = "", ports: readonly ServicePort[] = []) => ({
  family: "IPv4" as const,
  sharingKey,
  ports,
});
const v6 = (sharingKey = "", ports: readonly ServicePort[] = []) => ({
  family: "IPv6" as const,
  sharingKey,
  ports,
});

function addressOf(result: AssignResult): string {
  if (result.kind !== "ok") assert.fail(`expected an address, got: ${result.reason}`);
  return result.address;
}

function reasonOf(result: AssignResult): string {
  if (result.kind !== "error") assert.fail(`expected an error, got ${result.address}`);
  return result.reason;
}

function twoRangePool(): LocalPool {
  return new LocalPool("default", {
    ranges: [
      poolRange("192.0.2.10-192.0.2.11", "192.0.2.0/24"),
      poolRange("198.51.100.0/31", "198.51.100.0/24", 32),
      poolRange("2001:db8::10-2001:db8::11", "2001:db8::/64", 128),
    ],
  });
}

Deno.test("assign walks ranges in declaration order, lowest free first", () => {
  const pool = twoRangePool();
  assert.equal(addressOf(pool.assign("ns/a", v4())), "192.0.2.10");
  assert.equal(addressOf(pool.assign("ns/b", v4())), "192.0.2.11");
  assert.equal(addressOf(pool.assign("ns/c", v4())), "198.51.100.0");
  assert.equal(addressOf(pool.assign("ns/d", v4())), "198.51.100.1");
  assert.equal(reasonOf(pool.assign("ns/e", v4())), "no free IPv4 address in pool default");
  pool.release("ns/b");
  assert.equal(addressOf(pool.assign("ns/e", v4())), "192.0.2.11", "a released address is reused");
});

Deno.test("the allocation carries the range's subnet and aggregation", () => {
  const pool = twoRangePool();
  pool.assign("ns/a", v4());
  pool.assign("ns/b", v4());
  const first = pool.assign("ns/a", v4());
  const third = pool.assign("ns/c", v4());
  assert.ok(first.kind === "ok" && third.kind === "ok");
  assert.equal(first.poolRange.subnet.toString(), "192.0.2.0/24");
  assert.equal(first.poolRange.aggregationPrefixLength, 24);
  assert.equal(third.poolRange.subnet.toString(), "198.51.100.0/24");
  assert.equal(third.poolRange.aggregationPrefixLength, 32);
  assert.equal(third.family, "IPv4");
});

Deno.test("a family without ranges is an error naming the pool", () => {
  const pool = new LocalPool("only-v4", { ranges: [poolRange("10.0.0.0/30", "10.0.0.0/24")] });
  assert.equal(reasonOf(pool.assign("ns/a", v6())), "pool only-v4 has no IPv6 range");
  assert.equal(pool.hasFamily("IPv4"), true);
  assert.equal(pool.hasFamily("IPv6"), false);
});

Deno.test("dual stack: one address per family, released together or per family", () => {
  const pool = twoRangePool();
  assert.equal(addressOf(pool.assign("ns/a", v6())), "2001:db8::10");
  assert.equal(addressOf(pool.assign("ns/a", v4())), "192.0.2.10");
  assert.deepEqual(pool.allocationsOf("ns/a").map((a) => a.address), [
    "192.0.2.10",
    "2001:db8::10",
  ]);
  assert.deepEqual(pool.release("ns/a", "IPv6"), [
    { address: "2001:db8::10", family: "IPv6", freed: true },
  ]);
  assert.deepEqual(pool.allocationsOf("ns/a").map((a) => a.address), ["192.0.2.10"]);
  assert.deepEqual(pool.release("ns/a"), [{ address: "192.0.2.10", family: "IPv4", freed: true }]);
  assert.deepEqual(pool.allocationsOf("ns/a"), []);
  assert.deepEqual(pool.release("ns/a"), [], "releasing twice is harmless");
});

Deno.test("assigning again returns the address the service already holds", () => {
  const pool = twoRangePool();
  assert.equal(addressOf(pool.assign("ns/a", v4())), "192.0.2.10");
  assert.equal(addressOf(pool.assign("ns/a", v4())), "192.0.2.10");
  assert.equal(pool.inUse("IPv4"), 1);
});

Deno.test("sharing: same key and distinct ports share; the key stays bound to its address", () => {
  const pool = twoRangePool();
  assert.equal(addressOf(pool.assign("ns/http", v4("web", [tcp(80)]))), "192.0.2.10");
  assert.equal(addressOf(pool.assign("ns/https", v4("web", [tcp(443)]))), "192.0.2.10");
  assert.equal(addressOf(pool.assign("ns/other", v4())), "192.0.2.11");
  assert.equal(pool.inUse("IPv4"), 2, "in use counts addresses, not services");
  assert.equal(pool.addressOfSharingKey("web", "IPv4"), "192.0.2.10");
  assert.deepEqual(pool.holdersOf("192.0.2.10").map((h) => h.serviceKey), ["ns/http", "ns/https"]);
});

Deno.test("sharing: a port clash on the key's address is an error, not a new address", () => {
  const pool = twoRangePool();
  pool.assign("ns/http", v4("web", [tcp(80)]));
  assert.equal(
    reasonOf(pool.assign("ns/http2", v4("web", [tcp(80)]))),
    "address 192.0.2.10 is shared with ns/http, which already uses TCP/80",
  );
  assert.equal(pool.inUse("IPv4"), 1);
  assert.deepEqual(pool.allocationsOf("ns/http2"), []);
});

Deno.test("sharing: a different key never joins an address", () => {
  const pool = twoRangePool();
  pool.assign("ns/a", v4("one", [tcp(80)]));
  assert.equal(addressOf(pool.assign("ns/b", v4("two", [tcp(443)]))), "192.0.2.11");
  assert.equal(
    reasonOf(pool.assignSpecific("ns/c", "192.0.2.10", { sharingKey: "two", ports: [tcp(8080)] })),
    'sharing key "two" already holds 192.0.2.11 in IPv4; services with this key share that ' +
      "address, not 192.0.2.10",
  );
  assert.equal(
    reasonOf(pool.assignSpecific("ns/c", "192.0.2.10", { sharingKey: "three", ports: [] })),
    'address 192.0.2.10 is in use by ns/a and the sharing keys differ ("three" here, "one" there)',
  );
  assert.equal(
    reasonOf(pool.assignSpecific("ns/c", "192.0.2.10", NO_SHARING)),
    "address 192.0.2.10 is in use by ns/a and ns/c has no sharing key",
  );
});

Deno.test("sharing: releasing one sharer keeps the address for the others", () => {
  const pool = twoRangePool();
  pool.assign("ns/http", v4("web", [tcp(80)]));
  pool.assign("ns/https", v4("web", [tcp(443)]));
  assert.deepEqual(pool.release("ns/http"), [{
    address: "192.0.2.10",
    family: "IPv4",
    freed: false,
  }]);
  assert.equal(pool.inUse("IPv4"), 1);
  assert.equal(addressOf(pool.assign("ns/new", v4())), "192.0.2.11", "still taken");
  assert.equal(addressOf(pool.assign("ns/http", v4("web", [tcp(80)]))), "192.0.2.10");
  pool.release("ns/http");
  assert.deepEqual(pool.release("ns/https"), [{
    address: "192.0.2.10",
    family: "IPv4",
    freed: true,
  }]);
  assert.equal(pool.addressOfSharingKey("web", "IPv4"), undefined, "the key is unbound");
  assert.equal(addressOf(pool.assign("ns/x", v4())), "192.0.2.10");
});

Deno.test("sharing keys bind per family", () => {
  const pool = twoRangePool();
  pool.assign("ns/other", v6());
  assert.equal(addressOf(pool.assign("ns/a", v6("web", [tcp(80)]))), "2001:db8::11");
  assert.equal(addressOf(pool.assign("ns/a", v4("web", [tcp(80)]))), "192.0.2.10");
  assert.equal(addressOf(pool.assign("ns/b", v4("web", [tcp(443)]))), "192.0.2.10");
  assert.equal(addressOf(pool.assign("ns/b", v6("web", [tcp(443)]))), "2001:db8::11");
  assert.equal(pool.addressOfSharingKey("web", "IPv6"), "2001:db8::11");
});

Deno.test("a sole holder may change its key; a sharer may not", () => {
  const pool = twoRangePool();
  pool.assign("ns/a", v4("old", [tcp(80)]));
  assert.equal(addressOf(pool.assign("ns/a", v4("new", [tcp(80)]))), "192.0.2.10");
  assert.equal(pool.addressOfSharingKey("old", "IPv4"), undefined);
  assert.equal(pool.addressOfSharingKey("new", "IPv4"), "192.0.2.10");
  pool.assign("ns/b", v4("new", [tcp(443)]));
  assert.equal(
    reasonOf(pool.assign("ns/b", v4("newer", [tcp(443)]))),
    'address 192.0.2.10 is in use by ns/a and the sharing keys differ ("newer" here, "new" there)',
  );
  assert.equal(
    reasonOf(pool.assign("ns/b", v4("new", [tcp(80)]))),
    "address 192.0.2.10 is shared with ns/a, which already uses TCP/80",
  );
  assert.deepEqual(pool.holdersOf("192.0.2.10")[1]?.ports, [tcp(443)], "a refusal changes nothing");
});

Deno.test("assignSpecific registers existing allocations; assign then skips them", () => {
  const pool = twoRangePool();
  assert.equal(addressOf(pool.assignSpecific("ns/a", "192.0.2.10", NO_SHARING)), "192.0.2.10");
  assert.equal(
    addressOf(pool.assignSpecific("ns/b", " 198.51.100.0 ", NO_SHARING)),
    "198.51.100.0",
  );
  assert.equal(addressOf(pool.assignSpecific("ns/c", "2001:DB8::11", NO_SHARING)), "2001:db8::11");
  assert.equal(addressOf(pool.assign("ns/d", v4())), "192.0.2.11");
  assert.equal(addressOf(pool.assign("ns/e", v4())), "198.51.100.1");
  assert.equal(addressOf(pool.assign("ns/f", v6())), "2001:db8::10");
  assert.equal(addressOf(pool.assignSpecific("ns/a", "192.0.2.10", NO_SHARING)), "192.0.2.10");
});

Deno.test("assignSpecific errors name the address", () => {
  const pool = twoRangePool();
  pool.assign("ns/a", v4());
  const cases: readonly [string, string][] = [
    ["10.9.9.9", "address 10.9.9.9 is not in pool default"],
    ["banana", '"banana" is not an IP address'],
    ["192.0.2.10", "address 192.0.2.10 is in use by ns/a, which does not allow sharing"],
  ];
  for (const [address, reason] of cases) {
    assert.equal(reasonOf(pool.assignSpecific("ns/b", address, NO_SHARING)), reason);
  }
  assert.equal(
    reasonOf(pool.assignSpecific("ns/a", "192.0.2.11", NO_SHARING)),
    "ns/a already holds 192.0.2.10 in pool default; release it before taking 192.0.2.11",
  );
  assert.equal(pool.inUse("IPv4"), 1, "failures leave nothing behind");
});

Deno.test("avoidBuggyIPs skips .0 and .255 for the next free address only", () => {
  const pool = new LocalPool("buggy", {
    ranges: [
      poolRange("10.0.0.254-10.0.2.1", "10.0.0.0/16"),
      poolRange("2001:db8::ff-2001:db8::100", "2001:db8::/64"),
    ],
    avoidBuggyIPs: true,
  });
  const taken: string[] = [];
  for (let index = 0; index < 4; index++) taken.push(addressOf(pool.assign(`ns/s${index}`, v4())));
  assert.deepEqual(taken.slice(0, 3), ["10.0.0.254", "10.0.1.1", "10.0.1.2"]);
  assert.equal(addressOf(pool.assign("ns/v6", v6())), "2001:db8::ff", "IPv6 is not affected");
  assert.equal(addressOf(pool.assignSpecific("ns/net", "10.0.1.0", NO_SHARING)), "10.0.1.0");
  assert.equal(pool.inUse("IPv4"), 5);
  const stats = pool.stats("IPv4");
  assert.equal(stats.size, 260n);
  // 10.0.0.254, 10.0.1.1-254, 10.0.2.1 are eligible: 256, of which 4 are taken.
  assert.equal(stats.free, 252n);
  for (let index = 4; index < 256; index++) pool.assign(`ns/s${index}`, v4());
  assert.equal(pool.allocationsOf("ns/s254")[0]?.address, "10.0.1.254");
  assert.equal(pool.allocationsOf("ns/s255")[0]?.address, "10.0.2.1");
  assert.equal(reasonOf(pool.assign("ns/full", v4())), "no free IPv4 address in pool buggy");
  assert.equal(pool.stats("IPv4").free, 0n);
  pool.release("ns/net");
  assert.equal(reasonOf(pool.assign("ns/full", v4())), "no free IPv4 address in pool buggy");
});

Deno.test("avoidBuggyIPs: a range of only .255 and .0 has nothing to hand out", () => {
  const pool = new LocalPool("edge", {
    ranges: [poolRange("10.0.0.255-10.0.1.0", "10.0.0.0/16")],
    avoidBuggyIPs: true,
  });
  assert.equal(pool.stats("IPv4").free, 0n);
  assert.equal(reasonOf(pool.assign("ns/a", v4())), "no free IPv4 address in pool edge");
  assert.equal(addressOf(pool.assignSpecific("ns/a", "10.0.0.255", NO_SHARING)), "10.0.0.255");
});

Deno.test("stats, size and contains", () => {
  const pool = twoRangePool();
  pool.assign("ns/a", v4());
  assert.deepEqual(pool.stats("IPv4"), { size: 4n, inUse: 1, free: 3n });
  assert.deepEqual(pool.stats("IPv6"), { size: 2n, inUse: 0, free: 2n });
  assert.equal(pool.size("IPv6"), 2n);
  assert.equal(pool.contains("198.51.100.1"), true);
  assert.equal(pool.contains("198.51.100.2"), false);
  assert.equal(pool.contains("nonsense"), false);
  assert.equal(pool.rangeFor("2001:db8::11")?.range.toString(), "2001:db8::10-2001:db8::11");
  assert.equal(pool.overlaps(parseRange("192.0.2.0/24")), true);
  assert.equal(pool.overlaps(parseRange("192.0.3.0/24")), false);
  const other = new LocalPool("other", {
    ranges: [poolRange("2001:db8::11/128", "2001:db8::/64")],
  });
  assert.equal(pool.overlaps(other), true);
});

Deno.test("a huge IPv6 pool hands out its lowest free addresses without enumerating", () => {
  const pool = new LocalPool("v6", { ranges: [poolRange("2001:db8::/64", "2001:db8::/64")] });
  assert.equal(pool.size("IPv6"), 1n << 64n);
  for (let index = 0; index < 100; index++) pool.assign(`ns/s${index}`, v6());
  pool.release("ns/s42");
  assert.equal(addressOf(pool.assign("ns/new", v6())), "2001:db8::2a");
  assert.equal(addressOf(pool.assign("ns/next", v6())), "2001:db8::64");
  assert.equal(pool.stats("IPv6").free, (1n << 64n) - 101n);
});

Deno.test("pools reject inconsistent ranges", () => {
  assert.throws(
    () =>
      new LocalPool("p", {
        ranges: [
          poolRange("10.0.0.0/24", "10.0.0.0/16"),
          poolRange("10.0.0.128/25", "10.0.0.0/16"),
        ],
      }),
    (error: unknown) =>
      error instanceof PoolConfigurationError && error.name === "PoolConfigurationError" &&
      error.message === "pool p: range 10.0.0.128-10.0.0.255 overlaps range 10.0.0.0-10.0.0.255",
  );
  assert.throws(
    () => createPoolRange(parseRange("10.0.1.0/24"), parseCidr("10.0.0.0/24"), { kind: "default" }),
    /range 10\.0\.1\.0-10\.0\.1\.255 is not inside its subnet 10\.0\.0\.0\/24/,
  );
  assert.throws(
    () =>
      createPoolRange(parseRange("10.0.0.0/24"), parseCidr("2001:db8::/64"), { kind: "default" }),
    /is IPv4 but its subnet 2001:db8::\/64 is IPv6/,
  );
  assert.throws(
    () =>
      createPoolRange(parseRange("10.0.0.0/24"), parseCidr("10.0.0.0/24"), {
        kind: "prefix",
        prefixLength: 33,
      }),
    /aggregation \/33 is too long for IPv4/,
  );
});

Deno.test("every error carries a failure code", () => {
  const pool = new LocalPool("v4", { ranges: [poolRange("192.0.2.10/32", "192.0.2.0/24")] });
  const failureOf = (result: AssignResult) => result.kind === "error" ? result.failure : "ok";
  assert.equal(failureOf(pool.assign("ns/a", v6())), "family_unavailable");
  assert.equal(failureOf(pool.assign("ns/a", v4("web", [tcp(80)]))), "ok");
  assert.equal(failureOf(pool.assign("ns/b", v4())), "pool_exhausted");
  assert.equal(
    failureOf(pool.assignSpecific("ns/b", "10.9.9.9", NO_SHARING)),
    "address_outside_pools",
  );
  assert.equal(failureOf(pool.assignSpecific("ns/b", "banana", NO_SHARING)), "invalid_request");
  assert.equal(failureOf(pool.assignSpecific("ns/b", "192.0.2.10", NO_SHARING)), "sharing_refused");
  assert.equal(
    failureOf(pool.assignSpecific("ns/c", "192.0.2.10", { sharingKey: "web", ports: [tcp(80)] })),
    "sharing_refused",
  );
});
