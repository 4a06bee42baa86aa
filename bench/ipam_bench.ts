/**
 * IPAM pool benchmarks: the cost of handing out the next free address (and giving it back, so
 * the utilisation stays put) as a pool fills. Run with `deno bench bench/ipam_bench.ts`.
 *
 * Each pool is filled once, on the first call of its benchmark, outside the measured section.
 *
 * @module
 */
import {
  createPoolRange,
  type IpFamily,
  LocalPool,
  parseAddress,
  parseCidr,
  parseRange,
} from "../ipam/mod.ts";

const NO_SHARING = { sharingKey: "", ports: [] } as const;

/** A small deterministic generator (mulberry32), so every run fills pools the same way. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makePool(pool: string, subnet: string, avoidBuggyIPs = false): LocalPool {
  return new LocalPool("bench", {
    ranges: [createPoolRange(parseRange(pool), parseCidr(subnet), { kind: "default" })],
    avoidBuggyIPs,
  });
}

/** Marks `count` distinct addresses out of the first `span` of the range as in use. */
function fillScattered(pool: LocalPool, count: number, span: number): LocalPool {
  const [entry] = pool.ranges;
  if (entry === undefined) throw new Error("the pool has no range");
  const random = seededRandom(42);
  // Partial Fisher-Yates over offsets 0..span-1, so the chosen addresses are distinct.
  const offsets = new Map<number, number>();
  for (let index = 0; index < count; index++) {
    const pick = index + Math.floor(random() * (span - index));
    const chosen = offsets.get(pick) ?? pick;
    offsets.set(pick, offsets.get(index) ?? index);
    const value = entry.range.firstValue + BigInt(chosen);
    const result = pool.assignSpecific(
      `fill/${index}`,
      { family: entry.range.family, value },
      NO_SHARING,
    );
    if (result.kind !== "ok") throw new Error(result.reason);
  }
  return pool;
}

/** Takes the lowest `count` addresses, as a pool filled in order would be. */
function fillInOrder(pool: LocalPool, family: IpFamily, count: number): LocalPool {
  for (let index = 0; index < count; index++) {
    const result = pool.assign(`fill/${index}`, { family, ...NO_SHARING });
    if (result.kind !== "ok") throw new Error(result.reason);
  }
  return pool;
}

function benchNextFree(name: string, family: IpFamily, build: () => LocalPool): void {
  let pool: LocalPool | undefined;
  Deno.bench(name, { group: "assign next free + release" }, (b) => {
    pool ??= build();
    b.start();
    const result = pool.assign("bench/probe", { family, ...NO_SHARING });
    pool.release("bench/probe");
    b.end();
    if (result.kind !== "ok") throw new Error(result.reason);
  });
}

const SLASH_16 = 65_536;

benchNextFree("IPv4 /16, 0% in use", "IPv4", () => makePool("10.0.0.0/16", "10.0.0.0/16"));
benchNextFree(
  "IPv4 /16, 50% in use (scattered)",
  "IPv4",
  () => fillScattered(makePool("10.0.0.0/16", "10.0.0.0/16"), SLASH_16 / 2, SLASH_16),
);
benchNextFree(
  "IPv4 /16, 50% in use (lowest half)",
  "IPv4",
  () => fillInOrder(makePool("10.0.0.0/16", "10.0.0.0/16"), "IPv4", SLASH_16 / 2),
);
benchNextFree(
  "IPv4 /16, 99% in use (scattered)",
  "IPv4",
  () =>
    fillScattered(makePool("10.0.0.0/16", "10.0.0.0/16"), Math.floor(SLASH_16 * 0.99), SLASH_16),
);
benchNextFree(
  "IPv4 /16, 99% in use (lowest 99%)",
  "IPv4",
  () => fillInOrder(makePool("10.0.0.0/16", "10.0.0.0/16"), "IPv4", Math.floor(SLASH_16 * 0.99)),
);
benchNextFree(
  "IPv4 /16, 99% of eligible in use, avoidBuggyIPs",
  "IPv4",
  () =>
    fillInOrder(makePool("10.0.0.0/16", "10.0.0.0/16", true), "IPv4", Math.floor(256 * 254 * 0.99)),
);
benchNextFree("IPv6 /64, 0 in use", "IPv6", () => makePool("2001:db8::/64", "2001:db8::/64"));
benchNextFree(
  "IPv6 /64, 100,000 in use (lowest 100,000)",
  "IPv6",
  () => fillInOrder(makePool("2001:db8::/64", "2001:db8::/64"), "IPv6", 100_000),
);
benchNextFree(
  "IPv6 /64, 100,000 in use (scattered over the first 2^18)",
  "IPv6",
  () => fillScattered(makePool("2001:db8::/64", "2001:db8::/64"), 100_000, 1 << 18),
);

{
  let pool: LocalPool | undefined;
  const address = parseAddress("2001:db8::ffff:0");
  Deno.bench("IPv6 /64, 100,000 in use (scattered), assignSpecific + release", {
    group: "assign specific + release",
  }, (b) => {
    pool ??= fillScattered(makePool("2001:db8::/64", "2001:db8::/64"), 100_000, 1 << 18);
    b.start();
    const result = pool.assignSpecific("bench/probe", address, NO_SHARING);
    pool.release("bench/probe");
    b.end();
    if (result.kind !== "ok") throw new Error(result.reason);
  });
}
