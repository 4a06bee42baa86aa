import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AllocateOutcome,
  Allocator,
  type NetboxOffer,
  type NetboxSource,
} from "./allocator.ts";
import type { AllocationRequest } from "./request.ts";
import { type IpFamily } from "../ipam/mod.ts";
import { NetboxError } from "../netbox/mod.ts";

const T0 = "2026-01-01T00:00:00Z";
const SOURCE: NetboxSource = {
  url: "https://netbox.example/",
  tenant: "lab",
  aggregation: { kind: "default" },
};
const NETBOX_GROUP = {
  name: "nb",
  creationTimestamp: T0,
  spec: { netbox: { url: SOURCE.url, tenant: SOURCE.tenant } },
};

function request(key: string, overrides: Partial<AllocationRequest> = {}): AllocationRequest {
  return {
    key,
    families: ["IPv4"],
    policy: "SingleStack",
    specificAddresses: [],
    group: "nb",
    sharingKey: "",
    ports: [{ protocol: "TCP", port: 80 }],
    localTrafficPolicy: false,
    ...overrides,
  };
}

/** Netbox as the controller sees it: reserved addresses are taken in order, freed ones return. */
class FakeNetbox {
  readonly reserved: string[];
  readonly active = new Set<string>();
  constructor(addresses: readonly string[]) {
    this.reserved = [...addresses];
  }
  offer(families: readonly IpFamily[]): NetboxOffer {
    const addresses: { address: string; family: IpFamily }[] = [];
    const failures: Partial<Record<IpFamily, NetboxError>> = {};
    for (const family of families) {
      const index = this.reserved.findIndex((a) => a.includes(":") === (family === "IPv6"));
      const address = index < 0 ? undefined : this.reserved.splice(index, 1)[0];
      if (address === undefined) {
        failures[family] = new NetboxError(
          "exhausted",
          `Netbox has no reserved ${family} address left`,
        );
      } else {
        this.active.add(address);
        addresses.push({ address, family });
      }
    }
    return { source: SOURCE, addresses, failures };
  }
  giveBack(address: string): void {
    assert.ok(this.active.delete(address), `${address} was active when given back`);
    this.reserved.push(address);
  }
}

/** One pass of the controller for a Service: ask Netbox if needed, allocate, return what is freed. */
function serve(allocator: Allocator, netbox: FakeNetbox, req: AllocationRequest): AllocateOutcome {
  const needs = allocator.netboxNeeds(req);
  const outcome = allocator.allocate(req, needs ? netbox.offer(needs.families) : undefined);
  for (const freed of outcome.freedNetbox) netbox.giveBack(freed.address);
  return outcome;
}

function release(allocator: Allocator, netbox: FakeNetbox, key: string): void {
  for (const freed of allocator.release(key).freedNetbox) netbox.giveBack(freed.address);
}

function addresses(outcome: AllocateOutcome): string[] {
  return outcome.kind === "failed" ? [] : outcome.addresses.map((a) => a.address);
}

Deno.test("netbox: an address comes from Netbox, and goes back when released", () => {
  const allocator = new Allocator();
  const reports = allocator.setGroups([NETBOX_GROUP]);
  assert.deepEqual(reports.map((r) => r.kind), ["netbox"]);
  const netbox = new FakeNetbox(["192.0.2.10", "192.0.2.11"]);
  const first = serve(allocator, netbox, request("ns/a"));
  assert.deepEqual(addresses(first), ["192.0.2.10"]);
  assert.deepEqual(first.kind === "assigned" ? first.addresses[0]?.netbox : undefined, SOURCE);
  assert.equal(allocator.netboxNeeds(request("ns/a")), undefined, "held: nothing more needed");
  assert.equal(serve(allocator, netbox, request("ns/a")).kind, "unchanged");
  release(allocator, netbox, "ns/a");
  assert.deepEqual([...netbox.active], []);
  assert.deepEqual(netbox.reserved, ["192.0.2.11", "192.0.2.10"]);
});

Deno.test("netbox: an empty Netbox fails the Service with Netbox's reason, nothing held", () => {
  const allocator = new Allocator();
  allocator.setGroups([NETBOX_GROUP]);
  const netbox = new FakeNetbox([]);
  const outcome = serve(allocator, netbox, request("ns/a"));
  assert.equal(outcome.kind, "failed");
  assert.match(outcome.kind === "failed" ? outcome.reason : "", /no reserved IPv4/);
  assert.equal(outcome.kind === "failed" ? outcome.failure : "", "pool_exhausted");
  assert.deepEqual(allocator.addressesOf("ns/a"), []);
});

Deno.test("netbox: services with one sharing key share one Netbox address", () => {
  const allocator = new Allocator();
  allocator.setGroups([NETBOX_GROUP]);
  const netbox = new FakeNetbox(["192.0.2.10", "192.0.2.11"]);
  const http = request("ns/http", { sharingKey: "web" });
  const https = request("ns/https", {
    sharingKey: "web",
    ports: [{ protocol: "TCP", port: 443 }],
  });
  assert.deepEqual(addresses(serve(allocator, netbox, http)), ["192.0.2.10"]);
  assert.equal(allocator.netboxNeeds(https), undefined, "the key's address is reused");
  assert.deepEqual(addresses(serve(allocator, netbox, https)), ["192.0.2.10"]);
  const clash = request("ns/clash", { sharingKey: "web" });
  const refused = serve(allocator, netbox, clash);
  assert.equal(refused.kind, "failed");
  assert.match(refused.kind === "failed" ? refused.reason : "", /80/);
  assert.equal(refused.kind === "failed" ? refused.failure : "", "sharing_refused");
  release(allocator, netbox, "ns/http");
  assert.ok(netbox.active.has("192.0.2.10"), "still held by ns/https");
  release(allocator, netbox, "ns/https");
  assert.ok(!netbox.active.has("192.0.2.10"), "the last holder gave it back");
});

Deno.test("netbox: RequireDualStack without an IPv6 address gives the IPv4 one back", () => {
  const allocator = new Allocator();
  allocator.setGroups([NETBOX_GROUP]);
  const netbox = new FakeNetbox(["192.0.2.10"]);
  const dual = request("ns/a", { families: ["IPv4", "IPv6"], policy: "RequireDualStack" });
  assert.equal(serve(allocator, netbox, dual).kind, "failed");
  assert.deepEqual([...netbox.active], [], "the taken IPv4 address went back");
  const prefer = request("ns/b", { families: ["IPv4", "IPv6"], policy: "PreferDualStack" });
  assert.deepEqual(addresses(serve(allocator, netbox, prefer)), ["192.0.2.10"]);
  netbox.reserved.push("2001:db8::10");
  assert.deepEqual(allocator.netboxNeeds(prefer)?.families, ["IPv6"]);
  assert.deepEqual(addresses(serve(allocator, netbox, prefer)), ["192.0.2.10", "2001:db8::10"]);
});

Deno.test("netbox: an offer the Service no longer needs goes back", () => {
  const allocator = new Allocator();
  allocator.setGroups([NETBOX_GROUP]);
  const netbox = new FakeNetbox(["192.0.2.10", "192.0.2.11"]);
  serve(allocator, netbox, request("ns/a"));
  // A stale offer (the Service was served meanwhile) is not used and is freed.
  const stale = netbox.offer(["IPv4"]);
  const outcome = allocator.allocate(request("ns/a"), stale);
  assert.equal(outcome.kind, "unchanged");
  assert.deepEqual(outcome.freedNetbox.map((f) => f.address), ["192.0.2.11"]);
});

Deno.test("netbox: a restart registers held addresses from the Service's group", () => {
  const allocator = new Allocator();
  allocator.setGroups([NETBOX_GROUP]);
  assert.deepEqual(allocator.register(request("ns/a"), ["192.0.2.10"]), []);
  assert.deepEqual(allocator.addressesOf("ns/a").map((a) => [a.group, a.netbox?.tenant]), [[
    "nb",
    "lab",
  ]]);
  assert.deepEqual([...allocator.netboxHeld("nb")], [["192.0.2.10", "ns/a"]]);
  assert.equal(allocator.allocate(request("ns/a")).kind, "unchanged");
  assert.deepEqual(allocator.release("ns/a").freedNetbox.map((f) => f.address), ["192.0.2.10"]);
});

Deno.test("netbox: deleting the group keeps the address; its release still returns it", () => {
  const allocator = new Allocator();
  allocator.setGroups([NETBOX_GROUP]);
  const netbox = new FakeNetbox(["192.0.2.10"]);
  serve(allocator, netbox, request("ns/a"));
  allocator.setGroups([]);
  assert.deepEqual(allocator.addressesOf("ns/a").map((a) => [a.address, a.group]), [[
    "192.0.2.10",
    "",
  ]]);
  release(allocator, netbox, "ns/a");
  assert.deepEqual([...netbox.active], []);
});

Deno.test("netbox: a changed aggregation keeps every holder", () => {
  const allocator = new Allocator();
  allocator.setGroups([NETBOX_GROUP]);
  const netbox = new FakeNetbox(["192.0.2.10"]);
  serve(allocator, netbox, request("ns/a"));
  allocator.setGroups([{
    ...NETBOX_GROUP,
    spec: { netbox: { ...NETBOX_GROUP.spec.netbox, aggregation: "/32" } },
  }]);
  assert.deepEqual(allocator.addressesOf("ns/a").map((a) => a.group), ["nb"]);
  assert.equal(serve(allocator, netbox, request("ns/a")).kind, "unchanged");
  const report = allocator.groupReport("nb");
  assert.deepEqual(report?.kind === "netbox" ? report.inUse : undefined, { IPv4: 1, IPv6: 0 });
});

Deno.test("netbox property: no address held twice without sharing, none stranded or leaked", () => {
  const operation = fc.oneof(
    fc.record({
      kind: fc.constant("serve" as const),
      service: fc.integer({ min: 0, max: 5 }),
      key: fc.constantFrom("", "", "k1", "k2"),
      port: fc.constantFrom(80, 443),
      dual: fc.boolean(),
    }),
    fc.record({ kind: fc.constant("release" as const), service: fc.integer({ min: 0, max: 5 }) }),
  );
  fc.assert(
    fc.property(fc.array(operation, { maxLength: 40 }), (operations) => {
      const allocator = new Allocator();
      allocator.setGroups([NETBOX_GROUP]);
      const netbox = new FakeNetbox([
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
        "2001:db8::1",
        "2001:db8::2",
      ]);
      const all = netbox.reserved.length;
      const requests = new Map<string, AllocationRequest>();
      for (const op of operations) {
        const key = `ns/s${op.service}`;
        if (op.kind === "release") {
          release(allocator, netbox, key);
          requests.delete(key);
          continue;
        }
        const req = request(key, {
          sharingKey: op.key,
          ports: [{ protocol: "TCP", port: op.port }],
          ...(op.dual ? { families: ["IPv4", "IPv6"], policy: "PreferDualStack" } : {}),
        });
        serve(allocator, netbox, req);
        requests.set(key, req);
      }
      const holders = new Map<string, AllocationRequest[]>();
      for (const key of allocator.serviceKeys()) {
        for (const held of allocator.addressesOf(key)) {
          const req = requests.get(key);
          assert.ok(req, `${key} holds ${held.address} and was served`);
          holders.set(held.address, [...holders.get(held.address) ?? [], req]);
        }
      }
      for (const [address, reqs] of holders) {
        if (reqs.length < 2) continue;
        const keys = new Set(reqs.map((r) => r.sharingKey));
        assert.ok(keys.size === 1 && !keys.has(""), `${address} is shared only under one key`);
        const ports = reqs.flatMap((r) => r.ports.map((p) => p.port));
        assert.equal(new Set(ports).size, ports.length, `${address}: no port twice`);
      }
      assert.deepEqual([...netbox.active].sort(), [...holders.keys()].sort(), "active = held");
      assert.equal(netbox.active.size + netbox.reserved.length, all, "no address lost");
    }),
    { numRuns: 300 },
  );
});

Deno.test("allocator: two Netbox groups listing one address: one Service gets it, the other's is given back to its Netbox", () => {
  const otherSource: NetboxSource = { ...SOURCE, url: "https://other-netbox.example/" };
  const allocator = new Allocator();
  allocator.setGroups([
    NETBOX_GROUP,
    {
      name: "nb2",
      creationTimestamp: T0,
      spec: { netbox: { url: otherSource.url, tenant: otherSource.tenant } },
    },
  ]);
  const first = allocator.allocate(request("ns/a"), {
    source: SOURCE,
    addresses: [{ address: "192.0.2.10", family: "IPv4" }],
    failures: {},
  });
  assert.deepEqual(addresses(first), ["192.0.2.10"]);
  assert.equal(allocator.isHeld("192.0.2.10"), true);
  const second = allocator.allocate(request("ns/b", { group: "nb2" }), {
    source: otherSource,
    addresses: [{ address: "192.0.2.10", family: "IPv4" }],
    failures: {},
  });
  assert.equal(second.kind, "failed", "never one address for two Services");
  assert.deepEqual(second.freedNetbox, [{ address: "192.0.2.10", source: otherSource }]);
  assert.equal(allocator.netboxHeld("nb").get("192.0.2.10"), "ns/a");
  // The first Service's address goes back to its own Netbox only.
  assert.deepEqual(allocator.release("ns/a").freedNetbox, [
    { address: "192.0.2.10", source: SOURCE },
  ]);
});

Deno.test("allocator: two spellings of one Netbox URL are one source", () => {
  const allocator = new Allocator();
  const slashless = { ...SOURCE, url: "https://netbox.example" };
  allocator.setGroups([
    NETBOX_GROUP,
    {
      name: "nb2",
      creationTimestamp: T0,
      spec: { netbox: { url: slashless.url, tenant: SOURCE.tenant } },
    },
  ]);
  allocator.allocate(request("ns/a"), {
    source: SOURCE,
    addresses: [{ address: "192.0.2.10", family: "IPv4" }],
    failures: {},
  });
  allocator.allocate(request("ns/b", { group: "nb2", sharingKey: "k" }), {
    source: slashless,
    addresses: [{ address: "192.0.2.11", family: "IPv4" }],
    failures: {},
  });
  assert.deepEqual(allocator.release("ns/b").freedNetbox.map((f) => f.address), ["192.0.2.11"]);
});
