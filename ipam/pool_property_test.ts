/**
 * Random sequences of assign / assignSpecific / release on a small pool, checked step by step
 * against a naive reference model that enumerates every address.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { IpFamily } from "./address.ts";
import { type AssignResult, createPoolRange, LocalPool } from "./pool.ts";
import { parseCidr, parseRange } from "./range.ts";
import { findPortConflict, formatPort, type ServicePort } from "./sharing.ts";

const RANGES: readonly (readonly [pool: string, subnet: string])[] = [
  ["10.0.0.254-10.0.1.1", "10.0.0.0/16"],
  ["10.0.2.0/31", "10.0.0.0/16"],
  ["2001:db8::fe-2001:db8::100", "2001:db8::/64"],
];

/** Every address of the pool in allocation order, per family. */
const ADDRESSES: Readonly<Record<IpFamily, readonly string[]>> = {
  IPv4: ["10.0.0.254", "10.0.0.255", "10.0.1.0", "10.0.1.1", "10.0.2.0", "10.0.2.1"],
  IPv6: ["2001:db8::fe", "2001:db8::ff", "2001:db8::100"],
};
const OUTSIDE = ["10.9.9.9", "2001:db8::1"];
const SERVICES = ["ns/a", "ns/b", "ns/c", "ns/d", "ns/e", "ns/f", "ns/g"];
const KEYS = ["", "", "web", "mail"];
const PORTS: readonly ServicePort[] = [
  { protocol: "TCP", port: 80 },
  { protocol: "TCP", port: 443 },
  { protocol: "UDP", port: 53 },
  { protocol: "UDP", port: 80 },
];

function familyOf(address: string): IpFamily {
  return address.includes(":") ? "IPv6" : "IPv4";
}

function isAvoided(address: string): boolean {
  return familyOf(address) === "IPv4" && (address.endsWith(".0") || address.endsWith(".255"));
}

type Operation =
  | {
    readonly kind: "assign";
    readonly service: string;
    readonly family: IpFamily;
    readonly sharingKey: string;
    readonly ports: readonly ServicePort[];
  }
  | {
    readonly kind: "assignSpecific";
    readonly service: string;
    readonly address: string;
    readonly sharingKey: string;
    readonly ports: readonly ServicePort[];
  }
  | { readonly kind: "release"; readonly service: string; readonly family: IpFamily | undefined };

type ModelResult = { readonly kind: "ok"; readonly address: string } | { readonly kind: "error" };

interface ModelAddress {
  sharingKey: string;
  readonly ports: Map<string, readonly ServicePort[]>;
}

/** The rules, written the slow and obvious way. */
class ReferenceModel {
  readonly addresses = new Map<string, ModelAddress>();
  readonly held = new Map<string, Map<IpFamily, string>>();

  constructor(readonly avoidBuggyIPs: boolean) {}

  assign(
    service: string,
    family: IpFamily,
    sharingKey: string,
    ports: readonly ServicePort[],
  ): ModelResult {
    const held = this.held.get(service)?.get(family);
    if (held !== undefined) return this.take(service, held, sharingKey, ports);
    const keyed = ADDRESSES[family].find((address) =>
      sharingKey !== "" && this.addresses.get(address)?.sharingKey === sharingKey
    );
    if (keyed !== undefined) return this.take(service, keyed, sharingKey, ports);
    const free = ADDRESSES[family].find((address) =>
      !this.addresses.has(address) && !(this.avoidBuggyIPs && isAvoided(address))
    );
    return free === undefined ? { kind: "error" } : this.take(service, free, sharingKey, ports);
  }

  assignSpecific(
    service: string,
    address: string,
    sharingKey: string,
    ports: readonly ServicePort[],
  ): ModelResult {
    const family = familyOf(address);
    if (!ADDRESSES[family].includes(address)) return { kind: "error" };
    const held = this.held.get(service)?.get(family);
    if (held !== undefined && held !== address) return { kind: "error" };
    return this.take(service, address, sharingKey, ports);
  }

  take(
    service: string,
    address: string,
    sharingKey: string,
    ports: readonly ServicePort[],
  ): ModelResult {
    const family = familyOf(address);
    const keyElsewhere = ADDRESSES[family].some((other) =>
      other !== address && sharingKey !== "" && this.addresses.get(other)?.sharingKey === sharingKey
    );
    if (keyElsewhere) return { kind: "error" };
    const state = this.addresses.get(address);
    const others = state === undefined
      ? []
      : [...state.ports].filter(([holder]) => holder !== service);
    for (const [, otherPorts] of others) {
      if (state === undefined || state.sharingKey === "" || state.sharingKey !== sharingKey) {
        return { kind: "error" };
      }
      if (otherPorts.some((port) => ports.some((mine) => formatPort(mine) === formatPort(port)))) {
        return { kind: "error" };
      }
    }
    const record = state ?? { sharingKey, ports: new Map() };
    if (others.length === 0) record.sharingKey = sharingKey;
    record.ports.set(service, ports);
    this.addresses.set(address, record);
    const held = this.held.get(service) ?? new Map<IpFamily, string>();
    held.set(family, address);
    this.held.set(service, held);
    return { kind: "ok", address };
  }

  release(service: string, family: IpFamily | undefined): readonly string[] {
    const freed: string[] = [];
    const held = this.held.get(service);
    for (const [heldFamily, address] of held ?? []) {
      if (family !== undefined && family !== heldFamily) continue;
      held?.delete(heldFamily);
      const state = this.addresses.get(address);
      state?.ports.delete(service);
      if (state !== undefined && state.ports.size === 0) {
        this.addresses.delete(address);
        freed.push(address);
      }
    }
    return freed;
  }

  inUse(family: IpFamily): number {
    return ADDRESSES[family].filter((address) => this.addresses.has(address)).length;
  }

  free(family: IpFamily): number {
    return ADDRESSES[family].filter((address) =>
      !this.addresses.has(address) && !(this.avoidBuggyIPs && isAvoided(address))
    ).length;
  }
}

const portsArbitrary = fc.subarray([...PORTS], { maxLength: 3 });
const familyArbitrary = fc.constantFrom<IpFamily>("IPv4", "IPv6");
const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  fc.record({
    kind: fc.constant("assign" as const),
    service: fc.constantFrom(...SERVICES),
    family: familyArbitrary,
    sharingKey: fc.constantFrom(...KEYS),
    ports: portsArbitrary,
  }),
  fc.record({
    kind: fc.constant("assignSpecific" as const),
    service: fc.constantFrom(...SERVICES),
    address: fc.constantFrom(...ADDRESSES.IPv4, ...ADDRESSES.IPv6, ...OUTSIDE),
    sharingKey: fc.constantFrom(...KEYS),
    ports: portsArbitrary,
  }),
  fc.record({
    kind: fc.constant("release" as const),
    service: fc.constantFrom(...SERVICES),
    family: fc.option(familyArbitrary, { nil: undefined }),
  }),
);

function newPool(avoidBuggyIPs: boolean): LocalPool {
  return new LocalPool("prop", {
    ranges: RANGES.map(([pool, subnet]) =>
      createPoolRange(parseRange(pool), parseCidr(subnet), { kind: "default" })
    ),
    avoidBuggyIPs,
  });
}

function simplify(result: AssignResult): ModelResult {
  if (result.kind === "error") {
    assert.ok(result.reason.length > 0, "a refusal says why");
    return { kind: "error" };
  }
  return { kind: "ok", address: result.address };
}

function checkInvariants(pool: LocalPool, model: ReferenceModel): void {
  for (const family of ["IPv4", "IPv6"] as const) {
    assert.equal(pool.inUse(family), model.inUse(family), `${family} in use`);
    assert.equal(pool.stats(family).inUse, model.inUse(family));
    assert.equal(pool.stats(family).free, BigInt(model.free(family)), `${family} free`);
    const keysSeen = new Set<string>();
    for (const address of ADDRESSES[family]) {
      const holders = pool.holdersOf(address);
      const expected = model.addresses.get(address);
      assert.deepEqual(
        holders.map((holder) => holder.serviceKey).sort(),
        [...(expected?.ports.keys() ?? [])].sort(),
        `holders of ${address}`,
      );
      if (holders.length > 1) {
        for (const [index, holder] of holders.entries()) {
          assert.notEqual(holder.sharingKey, "", `${address} is shared only under a key`);
          for (const other of holders.slice(index + 1)) {
            assert.equal(
              holder.sharingKey,
              other.sharingKey,
              `${address} sharers agree on the key`,
            );
            assert.equal(
              findPortConflict(holder.ports, other.ports),
              undefined,
              `ports on ${address}`,
            );
          }
        }
      }
      const key = holders[0]?.sharingKey;
      if (key !== undefined && key !== "") {
        assert.ok(!keysSeen.has(key), `key ${key} holds one ${family} address`);
        keysSeen.add(key);
        assert.equal(pool.addressOfSharingKey(key, family), address);
      }
    }
  }
  for (const service of SERVICES) {
    const held = model.held.get(service) ?? new Map<IpFamily, string>();
    assert.deepEqual(
      pool.allocationsOf(service).map((allocation) => allocation.address),
      (["IPv4", "IPv6"] as const).flatMap((family) => {
        const address = held.get(family);
        return address === undefined ? [] : [address];
      }),
      `allocations of ${service}`,
    );
  }
}

Deno.test("property: the pool agrees with the reference model on every step", () => {
  fc.assert(
    fc.property(
      fc.boolean(),
      fc.array(operationArbitrary, { maxLength: 60 }),
      (avoidBuggyIPs: boolean, operations: readonly Operation[]) => {
        const pool = newPool(avoidBuggyIPs);
        const model = new ReferenceModel(avoidBuggyIPs);
        for (const operation of operations) {
          switch (operation.kind) {
            case "assign": {
              const { service, family, sharingKey, ports } = operation;
              assert.deepEqual(
                simplify(pool.assign(service, { family, sharingKey, ports })),
                model.assign(service, family, sharingKey, ports),
              );
              break;
            }
            case "assignSpecific": {
              const { service, address, sharingKey, ports } = operation;
              assert.deepEqual(
                simplify(pool.assignSpecific(service, address, { sharingKey, ports })),
                model.assignSpecific(service, address, sharingKey, ports),
              );
              break;
            }
            case "release": {
              const released = pool.release(operation.service, operation.family);
              const freed = released.filter((entry) => entry.freed).map((entry) => entry.address);
              assert.deepEqual(
                freed.sort(),
                [...model.release(operation.service, operation.family)].sort(),
              );
              for (const address of freed) {
                const probe = pool.assignSpecific("probe/fresh", address, {
                  sharingKey: "",
                  ports: [],
                });
                assert.equal(simplify(probe).kind, "ok", `released ${address} is assignable`);
                pool.release("probe/fresh");
              }
              break;
            }
          }
          checkInvariants(pool, model);
        }
      },
    ),
    { numRuns: 400 },
  );
});

Deno.test("property: releasing every service empties the pool and frees every address", () => {
  fc.assert(
    fc.property(
      fc.array(operationArbitrary, { maxLength: 40 }),
      (operations: readonly Operation[]) => {
        const pool = newPool(false);
        for (const operation of operations) {
          if (operation.kind === "assign") {
            pool.assign(operation.service, operation);
          } else if (operation.kind === "assignSpecific") {
            pool.assignSpecific(operation.service, operation.address, operation);
          } else {
            pool.release(operation.service, operation.family);
          }
        }
        for (const service of SERVICES) pool.release(service);
        for (const family of ["IPv4", "IPv6"] as const) {
          assert.deepEqual(pool.stats(family), {
            size: BigInt(ADDRESSES[family].length),
            inUse: 0,
            free: BigInt(ADDRESSES[family].length),
          });
          const taken = ADDRESSES[family].map((_, index) => {
            const result = pool.assign(`fresh/${index}`, { family, sharingKey: "", ports: [] });
            return result.kind === "ok" ? result.address : result.reason;
          });
          assert.deepEqual(taken, ADDRESSES[family], "every address is handed out again, in order");
        }
      },
    ),
    { numRuns: 200 },
  );
});
