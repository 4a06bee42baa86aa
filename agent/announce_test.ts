import assert from "node:assert/strict";
import fc from "fast-check";
import type { V1EndpointSlice } from "@kubernetes/client-node";
import {
  type AnnounceInput,
  type AnnounceSettings,
  decideAnnouncements,
  healthyEndpointNodes,
  localInterfaces,
  ownedAddressPredicate,
  type ServiceAnnouncement,
  serviceAnnouncement,
  virtualPrefixLength,
} from "./announce.ts";
import { netboxAggregationsOf } from "./settings.ts";
import { winner } from "../election/mod.ts";
import { parseAddressShow } from "../netlink/mod.ts";
import type { NetworkState } from "../netlink/mod.ts";
import { parseServiceGroupSpec, type PoolRange } from "../ipam/mod.ts";

const SETTINGS: AnnounceSettings = {
  localInterface: "default",
  dummyInterface: "kube-lb0",
  sendGarp: false,
};

function poolsOf(local: unknown): readonly PoolRange[] {
  const parsed = parseServiceGroupSpec({ local });
  if (parsed.kind !== "valid" || parsed.source.kind !== "local") throw new Error("bad pool");
  return parsed.source.pool.ranges;
}

const POOLS = poolsOf({
  v4pools: [
    { pool: "192.0.2.200-192.0.2.220", subnet: "192.0.2.0/24" },
    { pool: "198.51.100.10-198.51.100.50", subnet: "198.51.100.0/24" },
    { pool: "203.0.113.10-203.0.113.20", subnet: "203.0.113.0/24", aggregation: "/32" },
  ],
  v6pools: [{ pool: "2001:db8:1::200-2001:db8:1::2ff", subnet: "2001:db8:1::/64" }],
});

interface AddressSpec {
  readonly local: string;
  readonly prefixlen: number;
  readonly flags?: readonly string[];
  readonly secondary?: boolean;
}

/** A node with eth0 (default routes) and kube-lb0, as `ip -json` would print it. */
function nodeNetwork(
  eth0: readonly AddressSpec[] = [
    { local: "192.0.2.11", prefixlen: 24 },
    { local: "2001:db8:1::11", prefixlen: 64 },
  ],
  dummy: readonly AddressSpec[] = [],
): NetworkState {
  const info = (a: AddressSpec) => ({
    family: a.local.includes(":") ? "inet6" : "inet",
    local: a.local,
    prefixlen: a.prefixlen,
    scope: "global",
    ...(a.secondary ? { secondary: true } : {}),
    ...Object.fromEntries((a.flags ?? []).map((flag) => [flag, true])),
  });
  const links = parseAddressShow(JSON.stringify([
    { ifindex: 1, ifname: "lo", flags: ["UP"], link_type: "loopback", addr_info: [] },
    { ifindex: 2, ifname: "eth0", flags: ["UP"], link_type: "ether", addr_info: eth0.map(info) },
    {
      ifindex: 3,
      ifname: "kube-lb0",
      flags: ["UP"],
      link_type: "ether",
      addr_info: dummy.map(info),
    },
  ]));
  return {
    links,
    defaultRoutes: [
      { family: "IPv4", interfaceName: "eth0" },
      { family: "IPv6", interfaceName: "eth0" },
    ],
  };
}

const NOW = 1_000_000;

function live(nodes: readonly string[], subnets = ["192.0.2.0/24", "2001:db8:1::/64"]) {
  return nodes.map((nodeName) => ({
    nodeName,
    renewTimeMs: NOW,
    leaseDurationMs: 6_000,
    subnets,
  }));
}

function input(overrides: Partial<AnnounceInput>): AnnounceInput {
  return {
    nodeName: "node-a",
    settings: SETTINGS,
    services: [],
    endpointNodes: new Map(),
    pools: POOLS,
    network: nodeNetwork(),
    liveNodes: live(["node-a", "node-b", "node-c"]),
    fenced: false,
    ...overrides,
  };
}

function service(
  key: string,
  addresses: readonly string[],
  options: Partial<ServiceAnnouncement> = {},
): ServiceAnnouncement {
  return { key, addresses, localTrafficPolicy: false, allowLocal: false, ...options };
}

Deno.test("local address: only the winner carries it, on eth0 with eth0's prefix length", () => {
  const nodes = ["node-a", "node-b", "node-c"];
  for (const address of ["192.0.2.200", "2001:db8:1::200"]) {
    const expected = winner(nodes, address);
    for (const nodeName of nodes) {
      const plan = decideAnnouncements(input({
        nodeName,
        services: [service("shop/web", [address])],
      }));
      const decision = plan.decisions[0];
      assert.equal(decision?.kind, "local");
      assert.equal(decision?.announce, nodeName === expected);
      assert.deepEqual(
        plan.assignments,
        nodeName === expected
          ? [{
            interfaceName: "eth0",
            address,
            prefixLength: address.includes(":") ? 64 : 24,
            noDad: true,
          }]
          : [],
      );
    }
  }
});

Deno.test("local address: a fenced winner carries nothing; no candidate means no winner", () => {
  const address = "192.0.2.200";
  const expected = winner(["node-a", "node-b", "node-c"], address) ?? "";
  const fenced = decideAnnouncements(input({
    nodeName: expected,
    fenced: true,
    services: [service("shop/web", [address])],
  }));
  assert.deepEqual(fenced.assignments, []);
  const alone = decideAnnouncements(input({
    liveNodes: live(["node-a"], ["198.51.100.0/24"]),
    services: [service("shop/web", [address])],
  }));
  const decision = alone.decisions[0];
  assert.equal(decision?.kind === "local" ? decision.winner : "virtual", undefined);
});

Deno.test("virtual address: on the dummy interface with the aggregation prefix", () => {
  const plan = decideAnnouncements(input({
    services: [
      service("a/default-aggregation", ["198.51.100.10"]),
      service("a/slash-32", ["203.0.113.10"]),
      service("a/no-pool", ["203.0.113.99"]),
    ],
  }));
  assert.deepEqual(
    plan.assignments.map((a) => `${a.interfaceName} ${a.address}/${a.prefixLength}`),
    ["kube-lb0 198.51.100.10/24", "kube-lb0 203.0.113.10/32", "kube-lb0 203.0.113.99/32"],
  );
  assert.equal(virtualPrefixLength("2001:db8:9::1", POOLS), 128);
});

Deno.test("virtual Netbox address: the group's explicit /N, else a host route", () => {
  const fromNetbox = (key: string, address: string, group: string) => ({
    ...service(key, [address]),
    group,
  });
  const plan = decideAnnouncements(input({
    services: [
      fromNetbox("a/aggregated", "203.0.113.25", "nb-24"),
      fromNetbox("a/default", "203.0.113.30", "nb-default"),
      fromNetbox("a/too-long", "203.0.113.40", "nb-64"),
    ],
    netboxAggregations: netboxAggregationsOf([
      {
        metadata: { name: "nb-24" },
        spec: { netbox: { url: "https://nb/", tenant: "t", aggregation: "/24" } },
      },
      { metadata: { name: "nb-default" }, spec: { netbox: { url: "https://nb/", tenant: "t" } } },
      {
        metadata: { name: "nb-64" },
        spec: { netbox: { url: "https://nb/", tenant: "t", aggregation: "/64" } },
      },
    ]),
  }));
  assert.deepEqual(
    plan.assignments.map((a) => `${a.address}/${a.prefixLength}`),
    ["203.0.113.25/24", "203.0.113.30/32", "203.0.113.40/32"],
  );
});

Deno.test("IPv6 flags: tentative, dadfailed, deprecated do not make a subnet local; others do", () => {
  for (const flag of ["tentative", "dadfailed", "deprecated"]) {
    const network = nodeNetwork([{ local: "2001:db8:1::11", prefixlen: 64, flags: [flag] }]);
    const plan = decideAnnouncements(input({
      network,
      services: [service("a/b", ["2001:db8:1::200"])],
    }));
    assert.equal(plan.decisions[0]?.kind, "virtual", flag);
    assert.deepEqual(plan.subnets, [], flag);
  }
  for (const flag of ["mngtmpaddr", "noprefixroute", "dynamic", "nodad", "optimistic"]) {
    const network = nodeNetwork([{ local: "2001:db8:1::11", prefixlen: 64, flags: [flag] }]);
    const plan = decideAnnouncements(input({
      network,
      services: [service("a/b", ["2001:db8:1::200"])],
    }));
    assert.equal(plan.decisions[0]?.kind, "local", flag);
    assert.deepEqual(plan.subnets, ["2001:db8:1::/64"], flag);
  }
});

Deno.test("localint: default route interfaces, or a regex; never the dummy or loopback", () => {
  const network = nodeNetwork();
  assert.deepEqual(localInterfaces(network, SETTINGS), { kind: "ok", names: ["eth0"] });
  assert.deepEqual(
    localInterfaces(network, { ...SETTINGS, localInterface: "^(eth|kube|lo)" }),
    { kind: "ok", names: ["eth0"] },
  );
  assert.deepEqual(
    localInterfaces(network, { ...SETTINGS, localInterface: "^wlan" }),
    { kind: "ok", names: [] },
  );
  const invalid = localInterfaces(network, { ...SETTINGS, localInterface: "(" });
  assert.equal(invalid.kind, "invalid");
  const plan = decideAnnouncements(input({
    settings: { ...SETTINGS, localInterface: "(" },
    services: [service("a/b", ["192.0.2.200"])],
  }));
  assert.match(plan.settingsProblem ?? "", /not a regular expression/);
  assert.equal(plan.decisions[0]?.kind, "virtual");
});

Deno.test("ETP Local on a local address without allow-local: as Cluster, with a warning", () => {
  const address = "192.0.2.201";
  const expected = winner(["node-a", "node-b", "node-c"], address) ?? "";
  const plan = decideAnnouncements(input({
    nodeName: expected,
    services: [service("a/web", [address], { localTrafficPolicy: true })],
    endpointNodes: new Map([["a/web", new Set(["nobody"])]]),
  }));
  assert.equal(plan.assignments.length, 1);
  assert.equal(plan.warnings.length, 1);
  assert.match(plan.warnings[0]?.message ?? "", /announced as Cluster/);

  const allowed = (nodeName: string) =>
    decideAnnouncements(input({
      nodeName,
      services: [service("a/web", [address], { localTrafficPolicy: true, allowLocal: true })],
      endpointNodes: new Map([["a/web", new Set(["node-b"])]]),
    }));
  assert.equal(allowed("node-b").assignments.length, 1);
  assert.equal(allowed("node-a").assignments.length, 0);
  assert.equal(allowed("node-b").warnings.length, 0);
});

Deno.test("ownership: the dummy interface, pool and service addresses; never a primary IPv4", () => {
  const network = nodeNetwork([
    { local: "192.0.2.200", prefixlen: 24 },
    { local: "192.0.2.201", prefixlen: 24, secondary: true },
    { local: "192.0.2.99", prefixlen: 24, secondary: true },
  ]);
  const owns = ownedAddressPredicate({
    dummyInterface: "kube-lb0",
    pools: POOLS,
    serviceAddresses: new Set(["192.0.2.99"]),
    network,
  });
  const eth0 = (address: string) => ({
    interfaceName: "eth0",
    family: "IPv4" as const,
    address,
    prefixLength: 24,
  });
  assert.equal(owns(eth0("192.0.2.200")), false, "primary");
  assert.equal(owns(eth0("192.0.2.201")), true, "pool");
  assert.equal(owns(eth0("192.0.2.99")), true, "service address");
  assert.equal(owns(eth0("192.0.2.98")), false, "neither");
  assert.equal(
    owns({ interfaceName: "kube-lb0", family: "IPv4", address: "10.1.1.1", prefixLength: 8 }),
    true,
  );
});

Deno.test("serviceAnnouncement: only allocated LoadBalancer services with addresses", () => {
  const base = {
    metadata: {
      name: "web",
      namespace: "shop",
      annotations: { "purelb.io/allocated-by": "PureLB", "purelb.io/allow-local": "true" },
    },
    spec: { type: "LoadBalancer", externalTrafficPolicy: "Local" },
    status: { loadBalancer: { ingress: [{ ip: "2001:DB8::0:1" }, { ip: "192.0.2.1" }] } },
  };
  assert.deepEqual(serviceAnnouncement(base), {
    key: "shop/web",
    addresses: ["192.0.2.1", "2001:db8::1"],
    localTrafficPolicy: true,
    allowLocal: true,
  });
  assert.equal(serviceAnnouncement({ ...base, metadata: { name: "web" } }), undefined);
  assert.equal(serviceAnnouncement({ ...base, spec: { type: "ClusterIP" } }), undefined);
  assert.equal(serviceAnnouncement({ ...base, status: {} }), undefined);
  assert.equal(
    serviceAnnouncement({
      ...base,
      metadata: {
        ...base.metadata,
        annotations: { "purelb.io/allocated-by": "PureLB", "purelb.io/allow-local": "false" },
      },
    })?.allowLocal,
    false,
  );
});

function slice(
  service: string,
  endpoints: readonly { a: string; n?: string; ready?: boolean; serving?: boolean }[],
  labelled = true,
): V1EndpointSlice {
  return {
    metadata: {
      namespace: "shop",
      ...(labelled ? { labels: { "kubernetes.io/service-name": service } } : {}),
    },
    addressType: "IPv4",
    endpoints: endpoints.map((e) => ({
      addresses: [e.a],
      ...(e.n === undefined ? {} : { nodeName: e.n }),
      conditions: {
        ...(e.ready === undefined ? {} : { ready: e.ready }),
        ...(e.serving === undefined ? {} : { serving: e.serving }),
      },
    })),
  };
}

Deno.test("healthy endpoints: Ready or Serving, and healthy in every slice", () => {
  const nodes = healthyEndpointNodes([
    slice("web", [
      { a: "10.0.0.1", n: "a", ready: true },
      { a: "10.0.0.2", n: "b", ready: false, serving: true },
      { a: "10.0.0.3", n: "c", ready: false, serving: false },
      { a: "10.0.0.4", n: "d" },
      { a: "10.0.0.5", n: "e", ready: true },
    ]),
    slice("web", [{ a: "10.0.0.5", n: "e", ready: false, serving: false }]),
    slice("web", [{ a: "10.0.0.6", n: "f", ready: true }], false),
    slice("db", [{ a: "10.0.1.1", n: "c", ready: false }]),
  ]);
  assert.deepEqual([...(nodes.get("shop/web") ?? [])].sort(), ["a", "b", "d"]);
  assert.deepEqual([...(nodes.get("shop/db") ?? [])], []);
});

// ---- properties ----

const NODE_NAMES = ["node-a", "node-b", "node-c", "node-d", "node-e"];
const arbitraryNodes = fc.subarray(NODE_NAMES, { minLength: 1 });
const arbitraryLocalAddress = fc.integer({ min: 200, max: 220 }).map((n) => `192.0.2.${n}`);
const arbitraryVirtualAddress = fc.integer({ min: 10, max: 50 }).map((n) => `198.51.100.${n}`);

const arbitraryService = (index: number, address: fc.Arbitrary<string>) =>
  fc.record({
    addresses: fc.array(address, { minLength: 1, maxLength: 2 }),
    localTrafficPolicy: fc.boolean(),
    allowLocal: fc.boolean(),
    endpoints: fc.subarray(NODE_NAMES),
  }).map((s) => ({ key: `ns/svc-${index}`, ...s }));

const arbitraryServices = (address: fc.Arbitrary<string>) =>
  fc.integer({ min: 1, max: 6 }).chain((count) =>
    fc.tuple(...Array.from({ length: count }, (_, i) => arbitraryService(i, address)))
  );

Deno.test("property: every node agrees on one winner per local address", () => {
  fc.assert(
    fc.property(
      arbitraryNodes,
      arbitraryServices(arbitraryLocalAddress),
      fc.subarray(NODE_NAMES),
      (nodes, services, fencedNodes) => {
        const endpointNodes = new Map(services.map((s) => [s.key, new Set(s.endpoints)]));
        const holders = new Map<string, string[]>();
        const winners = new Map<string, Set<string | undefined>>();
        for (const nodeName of nodes) {
          const plan = decideAnnouncements(input({
            nodeName,
            services,
            endpointNodes,
            liveNodes: live(nodes),
            fenced: fencedNodes.includes(nodeName),
          }));
          for (const decision of plan.decisions) {
            assert.equal(decision.kind, "local");
            if (decision.kind !== "local") continue;
            const seen = winners.get(decision.address) ?? new Set();
            seen.add(decision.winner);
            winners.set(decision.address, seen);
            if (decision.announce) {
              holders.set(decision.address, [...(holders.get(decision.address) ?? []), nodeName]);
            }
          }
        }
        for (const [address, seen] of winners) {
          assert.equal(seen.size, 1, `${address}: nodes disagree on the winner`);
          const held = holders.get(address) ?? [];
          assert.ok(held.length <= 1, `${address} held by ${held}`);
          const [elected] = [...seen];
          const expectHeld = elected !== undefined && !fencedNodes.includes(elected);
          assert.equal(held.length, expectHeld ? 1 : 0, `${address}`);
        }
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("property: ETP Local never puts an unshared address on a node without a healthy endpoint", () => {
  fc.assert(
    fc.property(
      arbitraryNodes,
      arbitraryServices(fc.oneof(arbitraryVirtualAddress, arbitraryLocalAddress)),
      (nodes, services) => {
        const endpointNodes = new Map(services.map((s) => [s.key, new Set(s.endpoints)]));
        for (const nodeName of nodes) {
          const plan = decideAnnouncements(input({
            nodeName,
            services,
            endpointNodes,
            liveNodes: live(nodes),
          }));
          for (const assignment of plan.assignments) {
            const users = services.filter((s) => s.addresses.includes(assignment.address));
            const local = assignment.interfaceName === "eth0";
            // Local ETP counts only for a local address with allow-local, or a virtual address.
            const keepsLocal = (s: typeof users[number]) =>
              s.localTrafficPolicy && (!local || s.allowLocal);
            if (users.length === 1 && users.every(keepsLocal)) {
              assert.ok(
                users.some((s) => s.endpoints.includes(nodeName)),
                `${assignment.address} on ${nodeName} without a healthy endpoint`,
              );
            }
          }
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("property: a shared virtual address stays while any service needs it", () => {
  fc.assert(
    fc.property(
      arbitraryServices(fc.constantFrom("198.51.100.10", "198.51.100.11")),
      fc.constantFrom(...NODE_NAMES),
      (services, nodeName) => {
        const endpointNodes = new Map(services.map((s) => [s.key, new Set(s.endpoints)]));
        const plan = decideAnnouncements(input({ nodeName, services, endpointNodes }));
        for (const address of ["198.51.100.10", "198.51.100.11"]) {
          const users = services.filter((s) => s.addresses.includes(address));
          const needed = users.length > 1 ||
            users.some((s) => !s.localTrafficPolicy || s.endpoints.includes(nodeName));
          assert.equal(
            plan.assignments.some((a) => a.address === address),
            needed,
            `${address} with ${users.length} users`,
          );
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("decisions are independent of service order", () => {
  fc.assert(
    fc.property(
      arbitraryServices(fc.oneof(arbitraryLocalAddress, arbitraryVirtualAddress)),
      (services) => {
        const endpointNodes = new Map(services.map((s) => [s.key, new Set(s.endpoints)]));
        const forward = decideAnnouncements(input({ services, endpointNodes }));
        const backward = decideAnnouncements(
          input({ services: [...services].reverse(), endpointNodes }),
        );
        assert.deepEqual(forward.assignments, backward.assignments);
        assert.deepEqual(forward.decisions, backward.decisions);
      },
    ),
    { numRuns: 100 },
  );
});
