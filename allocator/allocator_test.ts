import assert from "node:assert/strict";
import fc from "fast-check";
import { type AllocateOutcome, Allocator, type GroupInput } from "./allocator.ts";
import type { AllocationRequest } from "./request.ts";

const T0 = "2026-01-01T00:00:00Z";
const T1 = "2026-01-02T00:00:00Z";

function group(name: string, local: unknown, creationTimestamp = T0): GroupInput {
  return { name, creationTimestamp, spec: { local } };
}

function request(key: string, overrides: Partial<AllocationRequest> = {}): AllocationRequest {
  return {
    key,
    families: ["IPv4"],
    policy: "SingleStack",
    specificAddresses: [],
    group: "default",
    sharingKey: "",
    ports: [{ protocol: "TCP", port: 80 }],
    localTrafficPolicy: false,
    ...overrides,
  };
}

function addresses(outcome: AllocateOutcome): string[] {
  return outcome.kind === "failed" ? [] : outcome.addresses.map((a) => a.address);
}

const ONE_V4 = { v4pools: [{ pool: "192.0.2.10/32", subnet: "192.0.2.0/24" }] };
const DUAL = {
  v4pools: [{ pool: "192.0.2.10-192.0.2.11", subnet: "192.0.2.0/24" }],
  v6pools: [{ pool: "2001:db8::10-2001:db8::11", subnet: "2001:db8::/64" }],
};

Deno.test("a one-address pool serves one service; release makes it reusable", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", ONE_V4)]);
  assert.deepEqual(addresses(allocator.allocate(request("ns/a"))), ["192.0.2.10"]);
  const second = allocator.allocate(request("ns/b"));
  assert.equal(second.kind, "failed");
  assert.match(second.kind === "failed" ? second.reason : "", /no free IPv4 address/);
  assert.equal(second.kind === "failed" ? second.failure : "", "pool_exhausted");
  assert.deepEqual(allocator.release("ns/a").released.map((a) => a.address), ["192.0.2.10"]);
  assert.deepEqual(addresses(allocator.allocate(request("ns/b"))), ["192.0.2.10"]);
});

Deno.test("an allocation that still fits is unchanged; a changed group replaces it", () => {
  const allocator = new Allocator();
  allocator.setGroups([
    group("default", ONE_V4),
    group("other", { v4pools: [{ pool: "198.51.100.1/32", subnet: "198.51.100.0/24" }] }),
  ]);
  allocator.allocate(request("ns/a"));
  assert.equal(allocator.allocate(request("ns/a")).kind, "unchanged");
  const moved = allocator.allocate(request("ns/a", { group: "other" }));
  assert.equal(moved.kind, "assigned");
  assert.deepEqual(addresses(moved), ["198.51.100.1"]);
  assert.deepEqual(moved.kind === "assigned" ? moved.released.map((a) => a.address) : [], [
    "192.0.2.10",
  ]);
  assert.deepEqual(addresses(allocator.allocate(request("ns/b"))), ["192.0.2.10"]);
});

Deno.test("RequireDualStack is all or nothing", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", ONE_V4)]);
  const outcome = allocator.allocate(
    request("ns/a", { families: ["IPv4", "IPv6"], policy: "RequireDualStack" }),
  );
  assert.equal(outcome.kind, "failed");
  assert.match(outcome.kind === "failed" ? outcome.reason : "", /no IPv6 pool/);
  assert.equal(outcome.kind === "failed" ? outcome.failure : "", "family_unavailable");
  const report = allocator.groupReport("default");
  assert.equal(report?.kind === "valid" ? report.stats.IPv4.inUse : -1, 0, "no half allocation");
});

Deno.test("PreferDualStack takes what exists, then adds the family when the pool gains it", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", ONE_V4)]);
  const prefer = request("ns/a", { families: ["IPv6", "IPv4"], policy: "PreferDualStack" });
  assert.deepEqual(addresses(allocator.allocate(prefer)), ["192.0.2.10"]);
  allocator.setGroups([
    group("default", {
      ...ONE_V4,
      v6pools: [{ pool: "2001:db8::10/128", subnet: "2001:db8::/64" }],
    }),
  ]);
  const grown = allocator.allocate(prefer);
  assert.equal(grown.kind, "assigned");
  assert.deepEqual(addresses(grown), ["2001:db8::10", "192.0.2.10"], "ipFamilies order");
});

Deno.test("empty ipFamilies: one address, IPv6 before IPv4", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", DUAL)]);
  const any = request("ns/a", { families: ["IPv6", "IPv4"], policy: "AnyOne" });
  assert.deepEqual(addresses(allocator.allocate(any)), ["2001:db8::10"]);
  allocator.setGroups([group("v4only", ONE_V4)]);
  assert.deepEqual(addresses(allocator.allocate({ ...any, key: "ns/b", group: "v4only" })), [
    "192.0.2.10",
  ]);
});

Deno.test("specific addresses must lie in a pool and be free", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", DUAL)]);
  const outside = allocator.allocate(request("ns/a", { specificAddresses: ["203.0.113.9"] }));
  assert.match(outside.kind === "failed" ? outside.reason : "", /203\.0\.113\.9 is not in any/);
  assert.equal(outside.kind === "failed" ? outside.failure : "", "address_outside_pools");
  assert.deepEqual(
    addresses(allocator.allocate(request("ns/a", { specificAddresses: ["192.0.2.11"] }))),
    ["192.0.2.11"],
  );
  const taken = allocator.allocate(request("ns/b", { specificAddresses: ["192.0.2.11"] }));
  assert.match(taken.kind === "failed" ? taken.reason : "", /in use by ns\/a/);
  assert.equal(taken.kind === "failed" ? taken.failure : "", "sharing_refused");
});

Deno.test("sharing: same key and distinct ports share; a port clash or no key does not", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", ONE_V4)]);
  const web = { sharingKey: "web" };
  allocator.allocate(request("ns/http", { ...web, ports: [{ protocol: "TCP", port: 80 }] }));
  const https = allocator.allocate(
    request("ns/https", { ...web, ports: [{ protocol: "TCP", port: 443 }] }),
  );
  assert.deepEqual(addresses(https), ["192.0.2.10"]);
  assert.equal(allocator.isShared("ns/https", "192.0.2.10"), true);
  const clash = allocator.allocate(request("ns/clash", { ...web }));
  assert.match(clash.kind === "failed" ? clash.reason : "", /TCP\/80/);
  assert.equal(clash.kind === "failed" ? clash.failure : "", "sharing_refused");
  const noKey = allocator.allocate(request("ns/nokey", { ports: [{ protocol: "UDP", port: 53 }] }));
  assert.equal(noKey.kind, "failed");
  allocator.release("ns/http");
  assert.equal(allocator.isShared("ns/https", "192.0.2.10"), false);
});

Deno.test("a sharer whose ports change to clash loses the shared address", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", {
    v4pools: [{ pool: "192.0.2.10-192.0.2.11", subnet: "192.0.2.0/24" }],
  })]);
  allocator.allocate(request("ns/a", { sharingKey: "k" }));
  allocator.allocate(request("ns/b", { sharingKey: "k", ports: [{ protocol: "TCP", port: 81 }] }));
  const clash = allocator.allocate(request("ns/b", { sharingKey: "k" }));
  assert.equal(clash.kind, "failed", "the key is bound to the address, so no other one either");
});

Deno.test("pool edits never move an allocation that still fits", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", DUAL)]);
  allocator.allocate(request("ns/a"));
  allocator.allocate(request("ns/b"));
  allocator.setGroups([group("default", {
    v4pools: [{ pool: "192.0.2.8-192.0.2.20", subnet: "192.0.2.0/24" }],
  })]);
  assert.equal(allocator.allocate(request("ns/a")).kind, "unchanged");
  assert.equal(allocator.allocate(request("ns/b")).kind, "unchanged");
  assert.deepEqual(addresses(allocator.allocate(request("ns/c"))), ["192.0.2.8"]);
  const report = allocator.groupReport("default");
  assert.equal(report?.kind === "valid" ? report.stats.IPv4.inUse : -1, 3);
});

Deno.test("registered allocations are kept at start-up and counted", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", DUAL)]);
  assert.deepEqual(allocator.register(request("ns/a"), ["192.0.2.11"]), []);
  assert.equal(allocator.allocate(request("ns/a")).kind, "unchanged");
  assert.deepEqual(addresses(allocator.allocate(request("ns/b"))), ["192.0.2.10"]);
  const conflict = allocator.register(request("ns/c"), ["192.0.2.11"]);
  assert.equal(conflict.length, 1);
  assert.match(conflict[0] ?? "", /in use by ns\/a/);
});

Deno.test("overlapping groups: the later one is invalid and serves nothing", () => {
  const allocator = new Allocator();
  const reports = allocator.setGroups([
    group("late", { v4pools: [{ pool: "192.0.2.10-192.0.2.20", subnet: "192.0.2.0/24" }] }, T1),
    group("default", ONE_V4, T0),
  ]);
  const late = reports.find((r) => r.name === "late");
  assert.equal(late?.kind, "invalid");
  assert.match(late?.kind === "invalid" ? late.errors.join() : "", /default/);
  const outcome = allocator.allocate(request("ns/a", { group: "late" }));
  assert.match(outcome.kind === "failed" ? outcome.reason : "", /"late" is invalid/);
  assert.equal(outcome.kind === "failed" ? outcome.failure : "", "group_invalid");
  assert.equal(allocator.allocate(request("ns/b")).kind, "assigned");
});

Deno.test("an unknown group fails with its name", () => {
  const allocator = new Allocator();
  const outcome = allocator.allocate(request("ns/a", { group: "nope" }));
  assert.match(outcome.kind === "failed" ? outcome.reason : "", /ServiceGroup "nope" not found/);
  assert.equal(outcome.kind === "failed" ? outcome.failure : "", "group_not_found");
});

Deno.test("property: no address is held by two services unless both share a key", () => {
  const keys = ["a", "b", "c", "d", "e"];
  const op = fc.oneof(
    fc.record({
      kind: fc.constant("allocate" as const),
      service: fc.constantFrom(...keys),
      sharingKey: fc.constantFrom("", "k1", "k2"),
      port: fc.constantFrom(80, 443),
      dual: fc.boolean(),
    }),
    fc.record({ kind: fc.constant("release" as const), service: fc.constantFrom(...keys) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const allocator = new Allocator();
      allocator.setGroups([group("default", DUAL)]);
      const requests = new Map<string, AllocationRequest>();
      for (const o of ops) {
        if (o.kind === "release") {
          allocator.release(o.service);
          requests.delete(o.service);
          continue;
        }
        const r = request(o.service, {
          sharingKey: o.sharingKey,
          ports: [{ protocol: "TCP", port: o.port }],
          families: o.dual ? ["IPv4", "IPv6"] : ["IPv4"],
          policy: o.dual ? "RequireDualStack" : "SingleStack",
        });
        const outcome = allocator.allocate(r);
        if (outcome.kind === "failed") requests.delete(o.service);
        else requests.set(o.service, r);
        if (o.dual && outcome.kind !== "failed") assert.equal(outcome.addresses.length, 2);
      }
      const holders = new Map<string, string[]>();
      for (const key of allocator.serviceKeys()) {
        for (const held of allocator.addressesOf(key)) {
          holders.set(held.address, [...(holders.get(held.address) ?? []), key]);
        }
      }
      for (const [address, services] of holders) {
        if (services.length < 2) continue;
        const rs = services.map((s) => requests.get(s));
        const sharingKeys = new Set(rs.map((r) => r?.sharingKey));
        assert.equal(sharingKeys.size, 1, `${address} held by ${services} with different keys`);
        assert.ok(!sharingKeys.has(""), `${address} shared without a key`);
        const ports = rs.flatMap((r) => r?.ports.map((p) => `${p.protocol}/${p.port}`) ?? []);
        assert.equal(new Set(ports).size, ports.length, `${address}: port clash`);
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("families failing for different reasons count as the most telling one", () => {
  const allocator = new Allocator();
  allocator.setGroups([group("default", ONE_V4)]);
  allocator.allocate(request("ns/a"));
  const outcome = allocator.allocate(
    request("ns/b", { families: ["IPv6", "IPv4"], policy: "PreferDualStack" }),
  );
  assert.match(outcome.kind === "failed" ? outcome.reason : "", /no IPv6 pool; no free IPv4/);
  assert.equal(outcome.kind === "failed" ? outcome.failure : "", "pool_exhausted");
});
