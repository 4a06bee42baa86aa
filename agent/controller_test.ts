import assert from "node:assert/strict";
import type {
  V1EndpointSlice,
  V1Lease,
  V1MicroTime,
  V1Node,
  V1Service,
} from "@kubernetes/client-node";
import { MemoryCache, type Selectors } from "../k8s/cache.ts";
import type { EventSink } from "../k8s/events.ts";
import {
  ALLOCATED_BY_PURELB,
  Annotations,
  type LBNodeAgentLocalSpec,
  SUBNETS_ANNOTATION,
} from "../k8s/types.ts";
import { parseCidr } from "../ipam/mod.ts";
import { winner } from "../election/mod.ts";
import {
  type AddressChange,
  type ApplyResult,
  batchLine,
  type DummyInterfaceOutcome,
  type FailedChange,
  type GratuitousRequest,
  type Link,
  type LinkAddress,
  type NetworkState,
} from "../netlink/mod.ts";
import { waitFor } from "../tests/wait.ts";
import { AgentController, type AgentMembership, type AgentNetlink } from "./controller.ts";
import { type CustomObject, ServiceAnnouncements } from "./informers.ts";
import { AgentMetrics } from "./metrics.ts";

const NAMESPACE = "purelb-system";
const NODE = "node-a";
const OTHER = "node-b";
/** Long enough that no resync runs in a test that does not ask for one. */
const NO_RESYNC_MS = 3_600_000;
const WAIT_MS = 3_000;

// ---- The network: a fake `ip` holding a NetworkState in memory ----

type NetlinkCall = "readState" | "readLinks" | "applyChanges" | "ensureDummyInterface";

function linkAddress(local: string, prefixLength: number, secondary = false): LinkAddress {
  return {
    family: local.includes(":") ? "IPv6" : "IPv4",
    local,
    prefixLength,
    scope: "global",
    flags: {
      tentative: false,
      dadfailed: false,
      deprecated: false,
      permanent: true,
      noprefixroute: false,
      mngtmpaddr: false,
      nodad: false,
      optimistic: false,
      secondary,
      temporary: false,
    },
  };
}

function link(index: number, name: string, addresses: readonly LinkAddress[]): Link {
  return {
    index,
    name,
    up: true,
    lowerUp: true,
    mac: `02:00:00:00:00:0${index}`,
    linkType: name === "lo" ? "loopback" : "ether",
    flags: ["UP", "LOWER_UP"],
    addresses,
  };
}

/** A node with its own addresses on eth0, which carries the default routes. */
function nodeNetwork(extraOnEth0: readonly LinkAddress[] = []): NetworkState {
  return {
    links: [
      link(1, "lo", [{ ...linkAddress("127.0.0.1", 8), scope: "host" }]),
      link(2, "eth0", [
        linkAddress("192.0.2.11", 24),
        linkAddress("2001:db8:1::11", 64),
        ...extraOnEth0,
      ]),
    ],
    defaultRoutes: [
      { family: "IPv4", interfaceName: "eth0", gateway: "192.0.2.1" },
      { family: "IPv6", interfaceName: "eth0", gateway: "2001:db8:1::1" },
    ],
  };
}

function subnetOf(address: LinkAddress): string {
  return parseCidr(`${address.local}/${address.prefixLength}`).toString();
}

/** Holds the network in memory and applies changes to it as the kernel would. */
class FakeNetlink implements AgentNetlink {
  state: NetworkState;
  readonly calls: NetlinkCall[] = [];
  readonly batches: (readonly AddressChange[])[] = [];
  /** As a kernel without promote_secondaries: deleting a primary IPv4 address deletes the secondaries of its subnet. */
  primaryDeleteTakesSecondaries = false;
  /** Called at the start of every applyChanges. */
  beforeApply: () => void = () => {};
  /** The error `ip` reports for a change, or `undefined` when it succeeds. */
  failure: (change: AddressChange) => string | undefined = () => undefined;

  constructor(state: NetworkState) {
    this.state = state;
  }

  count(call: NetlinkCall): number {
    return this.calls.filter((c) => c === call).length;
  }

  /** `address/prefix` of each address on `name`. */
  addressesOn(name: string): readonly string[] {
    const found = this.state.links.find((l) => l.name === name);
    return (found?.addresses ?? []).map((a) => `${a.local}/${a.prefixLength}`);
  }

  /** Changes the network behind the agent's back. */
  setAddresses(name: string, change: (addresses: readonly LinkAddress[]) => LinkAddress[]): void {
    this.state = {
      ...this.state,
      links: this.state.links.map((l) =>
        l.name === name ? { ...l, addresses: change(l.addresses) } : l
      ),
    };
  }

  readState(): Promise<NetworkState> {
    this.calls.push("readState");
    return Promise.resolve(this.state);
  }

  readLinks(): Promise<NetworkState["links"]> {
    this.calls.push("readLinks");
    return Promise.resolve(this.state.links);
  }

  applyChanges(changes: readonly AddressChange[]): Promise<ApplyResult> {
    this.calls.push("applyChanges");
    this.beforeApply();
    this.batches.push(changes);
    const applied: AddressChange[] = [];
    const alreadyDone: AddressChange[] = [];
    const failed: FailedChange[] = [];
    changes.forEach((change, index) => {
      const message = this.failure(change) ??
        (this.state.links.some((l) => l.name === change.interfaceName)
          ? undefined
          : `Cannot find device "${change.interfaceName}"`);
      if (message !== undefined) {
        failed.push({ change, line: index + 1, command: batchLine(change), message });
      } else if (this.#apply(change)) applied.push(change);
      else alreadyDone.push(change);
    });
    return Promise.resolve({ applied, alreadyDone, failed });
  }

  ensureDummyInterface(name: string): Promise<DummyInterfaceOutcome> {
    this.calls.push("ensureDummyInterface");
    if (this.state.links.some((l) => l.name === name)) {
      return Promise.resolve({ kind: "reused", linkType: "ether", broughtUp: false });
    }
    const index = Math.max(...this.state.links.map((l) => l.index)) + 1;
    this.state = { ...this.state, links: [...this.state.links, link(index, name, [])] };
    return Promise.resolve({ kind: "created" });
  }

  /** False when the change was not needed. */
  #apply(change: AddressChange): boolean {
    const same = (a: LinkAddress) =>
      a.local === change.address && a.prefixLength === change.prefixLength;
    const target = this.state.links.find((l) => l.name === change.interfaceName);
    const addresses = target?.addresses ?? [];
    if (change.kind === "add") {
      if (addresses.some(same)) return false;
      const added = linkAddress(change.address, change.prefixLength);
      const secondary = added.family === "IPv4" &&
        addresses.some((a) => a.family === "IPv4" && subnetOf(a) === subnetOf(added));
      this.setAddresses(
        change.interfaceName,
        (all) => [...all, { ...added, flags: { ...added.flags, secondary } }],
      );
      return true;
    }
    const deleted = addresses.find(same);
    if (deleted === undefined) return false;
    const takesSecondaries = this.primaryDeleteTakesSecondaries && deleted.family === "IPv4" &&
      !deleted.flags.secondary;
    this.setAddresses(change.interfaceName, (all) =>
      all.filter((a) =>
        !same(a) &&
        !(takesSecondaries && a.flags.secondary && a.family === "IPv4" &&
          subnetOf(a) === subnetOf(deleted))
      ));
    return true;
  }
}

// ---- The rest of the world ----

class FakeMembership implements AgentMembership {
  readonly leaseName = `purelb-node-${NODE}`;
  fenced = false;
  renewals = 2;
  previousLocalAddresses: ReadonlySet<string> | undefined = new Set();
  /** Every setSubnets call. */
  readonly subnets: (readonly string[])[] = [];
  /** Every setLocalAddresses call. */
  readonly localAddresses: (readonly string[])[] = [];
  /** Every setAnnouncing call, as `interface,address` texts. */
  readonly announcing: (readonly string[])[] = [];

  setAnnouncing(entries: Iterable<{ interfaceName: string; address: string }>): void {
    this.announcing.push([...entries].map((e) => `${e.interfaceName},${e.address}`).sort());
  }

  setLocalAddresses(addresses: Iterable<string>): void {
    this.localAddresses.push([...addresses].sort());
  }

  setSubnets(cidrs: readonly string[]): void {
    this.subnets.push(cidrs);
  }
}

interface RecordedEvent {
  readonly service: string;
  readonly reason: string;
  readonly message: string;
}

class RecordingEvents implements EventSink {
  readonly recorded: RecordedEvent[] = [];

  record(
    subject: Parameters<EventSink["record"]>[0],
    _type: Parameters<EventSink["record"]>[1],
    reason: Parameters<EventSink["record"]>[2],
    message: string,
  ): Promise<void> {
    const service = `${subject.metadata?.namespace ?? ""}/${subject.metadata?.name ?? ""}`;
    this.recorded.push({ service, reason, message });
    return Promise.resolve();
  }

  reasons(): readonly string[] {
    return this.recorded.map((e) => e.reason);
  }
}

/** Keeps every request in flight until it is aborted. */
class FakeAnnouncer {
  readonly requests: GratuitousRequest[] = [];

  announce(request: GratuitousRequest): Promise<void> {
    this.requests.push(request);
    return new Promise((_, reject) => {
      request.signal?.addEventListener("abort", () => reject(new Error("aborted")));
    });
  }
}

class SliceCache extends MemoryCache<V1EndpointSlice> {
  readonly reloads: Selectors[] = [];

  reload(selectors: Selectors): Promise<void> {
    this.reloads.push(selectors);
    return Promise.resolve();
  }
}

/** Counts `list()`: the controller lists the LBNodeAgents once at the start of each reconcile. */
class CountingCache extends MemoryCache<CustomObject> {
  lists = 0;

  override list(namespace?: string): readonly CustomObject[] {
    this.lists++;
    return super.list(namespace);
  }
}

// ---- Objects in the caches (as the slim views of agent/relevance.ts keep them) ----

function service(name: string, addresses: readonly string[]): V1Service {
  return {
    metadata: {
      name,
      namespace: "shop",
      uid: `uid-${name}`,
      annotations: { [Annotations.allocatedBy]: ALLOCATED_BY_PURELB },
    },
    spec: { type: "LoadBalancer" },
    status: { loadBalancer: { ingress: addresses.map((ip) => ({ ip })) } },
  };
}

function serviceGroup(name: string, v4pools: readonly Record<string, string>[]): CustomObject {
  return {
    apiVersion: "purelb.io/v1",
    kind: "ServiceGroup",
    metadata: { name, namespace: NAMESPACE },
    spec: { local: { v4pools } },
  };
}

function nodeAgent(
  local: LBNodeAgentLocalSpec,
  options: { readonly name?: string; readonly nodeSelector?: unknown } = {},
): CustomObject {
  return {
    apiVersion: "purelb.io/v1",
    kind: "LBNodeAgent",
    metadata: { name: options.name ?? "default", namespace: NAMESPACE },
    spec: {
      local,
      ...(options.nodeSelector === undefined ? {} : { nodeSelector: options.nodeSelector }),
    },
  };
}

/** This node's Node as the agent caches it (name and labels). */
function nodeObject(labels: Readonly<Record<string, string>>): V1Node {
  return { metadata: { name: NODE, labels: { ...labels } } };
}

function nodeLease(node: string, renewedAtMs: number, durationSeconds: number): V1Lease {
  // A cached Lease holds the text the API server sent, not a V1MicroTime.
  const renewTime = new Date(renewedAtMs).toISOString() as unknown as V1MicroTime;
  return {
    metadata: {
      name: `purelb-node-${node}`,
      namespace: NAMESPACE,
      annotations: { [SUBNETS_ANNOTATION]: "192.0.2.0/24,2001:db8:1::/64" },
    },
    spec: { holderIdentity: node, renewTime, leaseDurationSeconds: durationSeconds },
  };
}

/** Local addresses (in eth0's subnet) and virtual ones (on the dummy interface, as /32). */
const LOCAL_POOL = { pool: "192.0.2.50-192.0.2.59", subnet: "192.0.2.0/24" };
const VIRTUAL_POOL = {
  pool: "198.51.100.10-198.51.100.19",
  subnet: "198.51.100.0/24",
  aggregation: "/32",
};
const DEFAULT_GROUPS = [serviceGroup("default", [LOCAL_POOL, VIRTUAL_POOL])];

// ---- The controller with all of the above ----

interface Setup {
  readonly agent?: LBNodeAgentLocalSpec | "none";
  /** LBNodeAgents besides (or, with `agent: "none"`, instead of) `agent`. */
  readonly nodeAgents?: readonly CustomObject[];
  /** This node's labels; `undefined`: there is no Node object. */
  readonly nodeLabels?: Readonly<Record<string, string>>;
  /** False: the Node cache has not read the Node yet (e.g. the RBAC lacks nodes). */
  readonly nodeSynced?: boolean;
  readonly groups?: readonly CustomObject[];
  readonly services?: readonly V1Service[];
  readonly leases?: readonly V1Lease[];
  readonly network?: NetworkState;
  readonly resyncMs?: number;
  readonly announcer?: FakeAnnouncer;
  readonly membership?: (membership: FakeMembership) => void;
}

interface Fixture {
  readonly controller: AgentController;
  readonly netlink: FakeNetlink;
  readonly membership: FakeMembership;
  readonly events: RecordingEvents;
  readonly metrics: AgentMetrics;
  readonly services: MemoryCache<V1Service>;
  readonly slices: SliceCache;
  readonly groups: MemoryCache<CustomObject>;
  readonly agents: CountingCache;
  readonly leases: MemoryCache<V1Lease>;
  readonly node: MemoryCache<V1Node>;
}

async function withAgent(setup: Setup, body: (f: Fixture) => Promise<void>): Promise<void> {
  const services = new MemoryCache<V1Service>();
  const slices = new SliceCache();
  const groups = new MemoryCache<CustomObject>();
  const agents = new CountingCache();
  const leases = new MemoryCache<V1Lease>();
  const node = new MemoryCache<V1Node>({ synced: setup.nodeSynced ?? true });
  if (setup.nodeLabels !== undefined) node.put(nodeObject(setup.nodeLabels));
  for (const object of setup.nodeAgents ?? []) agents.put(object);
  for (const object of setup.services ?? []) services.put(object);
  for (const object of setup.groups ?? DEFAULT_GROUPS) groups.put(object);
  for (const object of setup.leases ?? []) leases.put(object);
  const agent = setup.agent ?? {};
  if (agent !== "none") agents.put(nodeAgent(agent));
  const netlink = new FakeNetlink(setup.network ?? nodeNetwork());
  const membership = new FakeMembership();
  setup.membership?.(membership);
  const events = new RecordingEvents();
  const metrics = new AgentMetrics(NODE);
  const controller = new AgentController({
    caches: { services, slices, groups, agents, leases, node },
    announcements: new ServiceAnnouncements(services),
    namespace: NAMESPACE,
    nodeName: NODE,
    netlink,
    announcer: setup.announcer,
    membership,
    events,
    metrics,
    resyncMs: setup.resyncMs ?? NO_RESYNC_MS,
  });
  controller.start();
  try {
    await body({
      controller,
      netlink,
      membership,
      events,
      metrics,
      services,
      slices,
      groups,
      agents,
      leases,
      node,
    });
  } finally {
    await controller.stop();
    await controller.settle();
  }
}

function until(what: string, check: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  return waitFor(check, timeoutMs, what, 5);
}

/** No reconcile is running (each one lists the LBNodeAgents first, and is counted at its end). */
function idle(f: Fixture): boolean {
  return f.controller.reconcileCount === f.agents.lists;
}

/** Does `action`, then waits until a reconcile that started after it has finished. */
async function reconcileAfter(f: Fixture, action: () => void): Promise<void> {
  await until("the agent idle", () => idle(f));
  const started = f.agents.lists;
  action();
  await until("a reconcile after the change", () => f.agents.lists > started && idle(f));
}

function readiness(f: Fixture): string {
  const state = f.controller.readiness;
  return state.ready ? "ready" : state.reason;
}

async function counterValue(counter: { get(): Promise<{ values: { value: number }[] }> }) {
  return (await counter.get()).values.reduce((sum, v) => sum + v.value, 0);
}

/** An address of the local pool that the election gives to `node` when node-a and node-b are live. */
function localAddressWonBy(node: string): string {
  for (let last = 50; last <= 59; last++) {
    const address = `192.0.2.${last}`;
    if (winner([NODE, OTHER], address) === node) return address;
  }
  throw new Error(`no address of the pool goes to ${node}`);
}

// ---- The tests ----

Deno.test("no LBNodeAgent: not ready and nothing applied; once one goes away, everything is withdrawn", async () => {
  await withAgent(
    { agent: "none", services: [service("web", ["192.0.2.50"])] },
    async (f) => {
      const reason = "no LBNodeAgent with spec.local in purelb-system: announcing nothing";
      await until("the agent reconciled", () => readiness(f) === reason && idle(f));
      assert.deepEqual(f.netlink.calls, []);

      f.agents.put(nodeAgent({}));
      await until(
        "192.0.2.50 on eth0",
        () => f.netlink.addressesOn("eth0").includes("192.0.2.50/24"),
      );
      await until("ready", () => readiness(f) === "ready");

      f.agents.remove("default", NAMESPACE);
      await until(
        "192.0.2.50 withdrawn",
        () => !f.netlink.addressesOn("eth0").includes("192.0.2.50/24"),
      );
      await until("not ready", () => readiness(f) === reason);
      await until("the Withdrawn event", () => f.events.reasons().includes("Withdrawn"));
      assert.deepEqual(f.events.recorded.at(-1), {
        service: "shop/web",
        reason: "Withdrawn",
        message: "Withdrew 192.0.2.50 from node node-a interface eth0",
      });
    },
  );
});

Deno.test("a local address won: recorded, added on the local interface with its prefix, announced, ready", async () => {
  const announcer = new FakeAnnouncer();
  await withAgent({ services: [service("web", ["192.0.2.50"])], announcer }, async (f) => {
    // Set before the first reconcile reaches the network (the body starts in the same tick).
    const recordedAtApply: (readonly string[] | undefined)[] = [];
    f.netlink.beforeApply = () => recordedAtApply.push(f.membership.localAddresses.at(-1));
    await until("ready", () => readiness(f) === "ready");
    assert.deepEqual(recordedAtApply, [["192.0.2.50"]]);
    assert.deepEqual(f.netlink.addressesOn("eth0"), [
      "192.0.2.11/24",
      "2001:db8:1::11/64",
      "192.0.2.50/24",
    ]);
    assert.deepEqual(f.events.recorded, [{
      service: "shop/web",
      reason: "AnnouncingLocal",
      message: "Announcing 192.0.2.50 from node node-a interface eth0",
    }]);
    assert.equal(f.controller.localWonCount, 1);
    assert.equal(f.controller.liveNodeCount, 1);
    assert.deepEqual(f.membership.subnets.at(-1), ["192.0.2.0/24", "2001:db8:1::/64"]);
    assert.deepEqual(f.membership.localAddresses.at(-1), ["192.0.2.50"]);
    assert.match(
      await f.metrics.registry.getSingleMetricAsString("purelb_lbnodeagent_announced"),
      /purelb_lbnodeagent_announced\{service="shop\/web",node="node-a",ip="192.0.2.50"\} 1/,
    );
    // sendgarp is off.
    assert.equal(announcer.requests.length, 0);

    f.services.put(service("web", ["192.0.2.52"]));
    await until("moved to 192.0.2.52", () => f.events.recorded.length === 3);
    assert.deepEqual(f.events.recorded.slice(1).map((e) => e.message), [
      "Announcing 192.0.2.52 from node node-a interface eth0",
      "Withdrew 192.0.2.50 from node node-a interface eth0",
    ]);
    assert.ok(!f.netlink.addressesOn("eth0").includes("192.0.2.50/24"));
  });
});

Deno.test("the Lease lists the local addresses carried, with their interface; virtual ones are not listed", async () => {
  const services = [service("web", ["192.0.2.50"]), service("api", ["198.51.100.10"])];
  await withAgent({ services }, async (f) => {
    await until("ready", () => readiness(f) === "ready");
    assert.deepEqual(f.membership.announcing.at(-1), ["eth0,192.0.2.50"]);
    f.netlink.failure = (change) =>
      change.kind === "add" && change.address === "192.0.2.52"
        ? "RTNETLINK answers: busy"
        : undefined;
    f.services.put(service("web", ["192.0.2.52"]));
    await until("a failed add is not listed", () => f.membership.announcing.at(-1)?.length === 0);
    f.netlink.failure = () => undefined;
    f.controller.kick();
    await until(
      "192.0.2.52 listed instead",
      () => f.membership.announcing.at(-1)?.join(" ") === "eth0,192.0.2.52",
    );
    f.services.remove("web", "shop");
    await until("nothing listed", () => f.membership.announcing.at(-1)?.length === 0);
  });
});

Deno.test("a virtual address: on the dummy interface, created first, with the pool's aggregation", async () => {
  await withAgent({ services: [service("api", ["198.51.100.10"])] }, async (f) => {
    await until("ready", () => readiness(f) === "ready");
    assert.deepEqual(f.netlink.addressesOn("kube-lb0"), ["198.51.100.10/32"]);
    assert.equal(f.netlink.count("ensureDummyInterface"), 1);
    assert.deepEqual(f.events.reasons(), ["AnnouncingVirtual"]);
    assert.equal(f.controller.localWonCount, 0);
    assert.deepEqual(f.membership.localAddresses.at(-1), []);
  });
});

Deno.test("deleting a primary IPv4 address takes its secondaries: the addresses are read and planned again", async () => {
  const wide = { pool: "198.51.100.10-198.51.100.19", subnet: "198.51.100.0/24" };
  await withAgent(
    {
      groups: [serviceGroup("wide", [wide])],
      services: [service("one", ["198.51.100.10"]), service("two", ["198.51.100.11"])],
    },
    async (f) => {
      f.netlink.primaryDeleteTakesSecondaries = true;
      await until(
        "both on kube-lb0",
        () => f.netlink.addressesOn("kube-lb0").length === 2 && idle(f),
      );
      const batches = f.netlink.batches.length;
      await reconcileAfter(f, () => f.services.remove("one", "shop"));
      assert.deepEqual(f.netlink.batches.slice(batches), [
        [{
          kind: "delete",
          interfaceName: "kube-lb0",
          family: "IPv4",
          address: "198.51.100.10",
          prefixLength: 24,
        }],
        [{
          kind: "add",
          interfaceName: "kube-lb0",
          family: "IPv4",
          address: "198.51.100.11",
          prefixLength: 24,
          noDad: false,
        }],
      ]);
      assert.deepEqual(f.netlink.calls.slice(-3), ["applyChanges", "readLinks", "applyChanges"]);
      assert.deepEqual(f.netlink.addressesOn("kube-lb0"), ["198.51.100.11/24"]);
      assert.equal(readiness(f), "ready");
    },
  );
});

Deno.test("depth: a watch event that leaves the decision as it was runs no ip; a kick reads again", async () => {
  await withAgent({ services: [service("web", ["192.0.2.50"])] }, async (f) => {
    await until("ready", () => readiness(f) === "ready" && idle(f));
    const calls = f.netlink.calls.length;
    // A group change always asks for a reconcile; this one changes no decision.
    await reconcileAfter(
      f,
      () =>
        f.groups.put(serviceGroup("spare", [{ pool: "203.0.113.0/28", subnet: "203.0.113.0/24" }])),
    );
    assert.deepEqual(f.netlink.calls.slice(calls), []);

    // A change that does alter the decision reads the network and applies.
    await reconcileAfter(f, () => f.services.put(service("db", ["192.0.2.51"])));
    assert.deepEqual(f.netlink.calls.slice(calls), ["readState", "applyChanges"]);

    const subnetsPublished = f.membership.subnets.length;
    await reconcileAfter(f, () => f.controller.kick());
    assert.deepEqual(f.netlink.calls.slice(calls + 2), ["readState"]);
    assert.equal(f.membership.subnets.length, subnetsPublished + 1);
  });
});

Deno.test("depth verify: the resync reads the network and stops there while it is unchanged; drift is repaired", async () => {
  await withAgent({ services: [service("web", ["192.0.2.50"])], resyncMs: 30 }, async (f) => {
    await until("ready", () => readiness(f) === "ready");
    const reads = f.netlink.count("readState");
    const applies = f.netlink.count("applyChanges");
    const subnetsPublished = f.membership.subnets.length;
    await until("four resyncs", () => f.netlink.count("readState") >= reads + 4);
    assert.equal(f.netlink.count("applyChanges"), applies);
    // Only the first resync after the apply decides (and publishes subnets); the others stop at the read.
    assert.ok(
      f.membership.subnets.length <= subnetsPublished + 1,
      `${f.membership.subnets.length - subnetsPublished} full decisions`,
    );

    f.netlink.setAddresses("eth0", (all) => all.filter((a) => a.local !== "192.0.2.50"));
    await until("192.0.2.50 back", () => f.netlink.addressesOn("eth0").includes("192.0.2.50/24"));
    assert.equal(f.netlink.count("applyChanges"), applies + 1);
  });
});

Deno.test("renaming extlbint clears the old dummy interface and announces on the new one", async () => {
  await withAgent({ services: [service("api", ["198.51.100.10"])] }, async (f) => {
    await until(
      "on kube-lb0",
      () => f.netlink.addressesOn("kube-lb0").includes("198.51.100.10/32"),
    );
    f.agents.put(nodeAgent({ extlbint: "kube-lb1" }));
    await until(
      "on kube-lb1",
      () => f.netlink.addressesOn("kube-lb1").includes("198.51.100.10/32"),
    );
    assert.deepEqual(f.netlink.addressesOn("kube-lb0"), []);
    await until("three events", () => f.events.recorded.length === 3);
    assert.deepEqual(f.events.recorded.map((e) => e.message), [
      "Announcing 198.51.100.10 from node node-a interface kube-lb0",
      "Withdrew 198.51.100.10 from node node-a interface kube-lb0",
      "Announcing 198.51.100.10 from node node-a interface kube-lb1",
    ]);
  });
});

Deno.test("a node whose Lease is not written yet applies nothing", async () => {
  await withAgent({
    services: [service("web", ["192.0.2.50"])],
    membership: (m) => {
      m.renewals = 0;
      m.fenced = true;
    },
  }, async (f) => {
    await until(
      "waiting for the Lease",
      () => readiness(f) === "Lease purelb-node-node-a not written yet" && idle(f),
    );
    assert.equal(f.netlink.count("applyChanges"), 0);
  });
});

Deno.test("a settling node publishes no subnets and claims no local address; virtual ones it carries", async () => {
  await withAgent({
    services: [service("web", ["192.0.2.50"]), service("api", ["198.51.100.10"])],
    membership: (m) => {
      m.renewals = 1;
    },
  }, async (f) => {
    await until(
      "the virtual address",
      () => f.netlink.addressesOn("kube-lb0").includes("198.51.100.10/32") && idle(f),
    );
    assert.ok(!f.netlink.addressesOn("eth0").includes("192.0.2.50/24"));
    assert.deepEqual(f.membership.subnets.at(-1), []);

    f.membership.renewals = 2;
    f.controller.kick();
    await until(
      "192.0.2.50 claimed",
      () => f.netlink.addressesOn("eth0").includes("192.0.2.50/24"),
    );
    assert.deepEqual(f.membership.subnets.at(-1), ["192.0.2.0/24", "2001:db8:1::/64"]);
  });
});

Deno.test("a fenced node claims no local address and is not ready; unfenced, it claims", async () => {
  await withAgent({
    services: [service("web", ["192.0.2.50"])],
    membership: (m) => {
      m.renewals = 5;
      m.fenced = true;
    },
  }, async (f) => {
    await until(
      "fenced",
      () => readiness(f) === "fenced: Lease not renewed for a full duration" && idle(f),
    );
    assert.ok(!f.netlink.addressesOn("eth0").includes("192.0.2.50/24"));
    assert.equal(f.controller.liveNodeCount, 0);

    f.membership.fenced = false;
    f.controller.kick();
    await until(
      "192.0.2.50 claimed",
      () => f.netlink.addressesOn("eth0").includes("192.0.2.50/24"),
    );
    await until("ready", () => readiness(f) === "ready");
  });
});

Deno.test("a local address a previous run recorded in the Lease is removed when not won; others are left", async () => {
  await withAgent({
    network: nodeNetwork([
      linkAddress("192.0.2.98", 24, true),
      linkAddress("192.0.2.99", 24, true),
    ]),
    membership: (m) => {
      m.previousLocalAddresses = new Set(["192.0.2.99"]);
    },
  }, async (f) => {
    await until(
      "192.0.2.99 removed",
      () => !f.netlink.addressesOn("eth0").includes("192.0.2.99/24"),
    );
    // In no pool and not recorded: not ours.
    assert.ok(f.netlink.addressesOn("eth0").includes("192.0.2.98/24"));
    await until("the record emptied", () => f.membership.localAddresses.at(-1)?.length === 0);
  });
});

Deno.test("withdrawAll removes every address this agent manages and reports each as withdrawn", async () => {
  await withAgent({
    services: [service("web", ["192.0.2.50"]), service("api", ["198.51.100.10"])],
  }, async (f) => {
    await until("both announced", () => f.events.recorded.length === 2 && idle(f));
    await f.controller.stop();
    const result = await f.controller.withdrawAll();
    assert.deepEqual(result?.applied.map((c) => `${c.kind} ${c.address}`).sort(), [
      "delete 192.0.2.50",
      "delete 198.51.100.10",
    ]);
    assert.deepEqual(f.netlink.addressesOn("eth0"), ["192.0.2.11/24", "2001:db8:1::11/64"]);
    assert.deepEqual(f.netlink.addressesOn("kube-lb0"), []);
    assert.deepEqual(f.events.recorded.slice(2).map((e) => `${e.service} ${e.message}`).sort(), [
      "shop/api Withdrew 198.51.100.10 from node node-a interface kube-lb0",
      "shop/web Withdrew 192.0.2.50 from node node-a interface eth0",
    ]);
    assert.equal(f.controller.localWonCount, 0);
    assert.deepEqual(f.membership.localAddresses.at(-1), []);
    assert.equal((await f.metrics.announced.get()).values.length, 0);
  });
});

Deno.test("sendgarp: a newly won local address is announced; the announcement stops when it is lost", async () => {
  const announcer = new FakeAnnouncer();
  await withAgent({ agent: { sendgarp: true }, announcer }, async (f) => {
    await until("ready", () => readiness(f) === "ready");
    f.services.put(service("web", ["192.0.2.50"]));
    await until("an announcement", () => announcer.requests.length === 1);
    const [request] = announcer.requests;
    assert.equal(request?.interfaceName, "eth0");
    assert.equal(request?.address, "192.0.2.50");
    assert.equal(request?.count, 3);
    assert.equal(request?.signal?.aborted, false);

    f.services.remove("web", "shop");
    await until("the announcement aborted", () => request?.signal?.aborted === true);
    assert.equal(announcer.requests.length, 1);
  });
});

Deno.test("a failed change: not ready, counted as a reconcile error; it succeeds once ip does", async () => {
  await withAgent({ services: [service("web", ["192.0.2.50"])] }, async (f) => {
    f.netlink.failure = (change) =>
      change.kind === "add" && change.address === "192.0.2.51"
        ? "RTNETLINK answers: Permission denied"
        : undefined;
    await until("ready", () => readiness(f) === "ready" && idle(f));
    assert.equal(await counterValue(f.metrics.reconcileErrors), 0);

    f.services.put(service("db", ["192.0.2.51"]));
    await until("not ready", () => readiness(f) === "1 address changes failed");
    assert.equal(await counterValue(f.metrics.reconcileErrors), 1);
    assert.ok(!f.netlink.addressesOn("eth0").includes("192.0.2.51/24"));

    f.netlink.failure = () => undefined;
    f.controller.kick();
    await until("ready again", () => readiness(f) === "ready");
    assert.ok(f.netlink.addressesOn("eth0").includes("192.0.2.51/24"));
  });
});

Deno.test("another node's Lease expires: this node takes over its address at once", async () => {
  const theirs = localAddressWonBy(OTHER);
  const ours = localAddressWonBy(NODE);
  await withAgent({
    services: [service("theirs", [theirs]), service("ours", [ours])],
    leases: [nodeLease(OTHER, Date.now(), 1)],
  }, async (f) => {
    await until("ours claimed", () => f.netlink.addressesOn("eth0").includes(`${ours}/24`));
    assert.ok(!f.netlink.addressesOn("eth0").includes(`${theirs}/24`));
    assert.equal(f.controller.liveNodeCount, 2);

    await until(
      "theirs taken over",
      () => f.netlink.addressesOn("eth0").includes(`${theirs}/24`),
      2_500,
    );
    assert.equal(f.controller.liveNodeCount, 1);
  });
});

// ---- Which nodes announce: LBNodeAgent spec.nodeSelector against this node's labels ----

const EDGE_ONLY = { matchLabels: { "example.com/role": "edge" } };

Deno.test("a node no LBNodeAgent selects holds nothing and publishes no subnets; labelled, it takes part; unlabelled, it withdraws", async () => {
  await withAgent(
    {
      agent: "none",
      nodeAgents: [nodeAgent({}, { name: "edge", nodeSelector: EDGE_ONLY })],
      services: [service("web", ["192.0.2.50"]), service("api", ["198.51.100.10"])],
    },
    async (f) => {
      const unselected = (labels: string) =>
        "no LBNodeAgent selects node node-a (LBNodeAgents in purelb-system: edge; node labels: " +
        `${labels}): announcing nothing, in no election`;
      // No Node object at all: a node without labels.
      await until("not selected", () => readiness(f) === unselected("none") && idle(f));
      assert.ok(f.membership.subnets.length > 0);
      assert.ok(f.membership.subnets.every((s) => s.length === 0), "never any subnet");
      assert.ok(!f.netlink.addressesOn("eth0").includes("192.0.2.50/24"));
      assert.equal(f.netlink.count("applyChanges"), 0, "nothing to withdraw, nothing applied");
      assert.equal(f.events.recorded.length, 0);

      // Selected: it settles in for one renewal period as a starting node does (virtual
      // addresses only, no subnets), then publishes its subnets and claims.
      f.node.put(nodeObject({ "example.com/role": "edge", zone: "a" }));
      await until("the virtual address", () => f.netlink.addressesOn("kube-lb0").length === 1);
      await until("idle", () => idle(f));
      assert.deepEqual(f.netlink.addressesOn("kube-lb0"), ["198.51.100.10/32"]);
      assert.ok(!f.netlink.addressesOn("eth0").includes("192.0.2.50/24"), "no claim yet");
      assert.deepEqual(f.membership.subnets.at(-1), []);
      f.membership.renewals++;
      await reconcileAfter(f, () => f.controller.kick());
      assert.ok(
        !f.netlink.addressesOn("eth0").includes("192.0.2.50/24"),
        "one renewal is not enough",
      );
      f.membership.renewals++;
      f.controller.renewed();
      await until("claimed", () => f.netlink.addressesOn("eth0").includes("192.0.2.50/24"));
      assert.equal(readiness(f), "ready");
      assert.deepEqual(f.membership.subnets.at(-1), ["192.0.2.0/24", "2001:db8:1::/64"]);

      f.node.put(nodeObject({ "example.com/role": "worker", zone: "a" }));
      await until(
        "not selected again",
        () => readiness(f) === unselected("example.com/role=worker,zone=a") && idle(f),
      );
      assert.ok(!f.netlink.addressesOn("eth0").includes("192.0.2.50/24"));
      assert.deepEqual(f.netlink.addressesOn("kube-lb0"), []);
      assert.deepEqual(f.membership.subnets.at(-1), []);
      assert.deepEqual(f.membership.localAddresses.at(-1), []);
      assert.equal(f.controller.localWonCount, 0);
      assert.deepEqual(
        f.events.recorded.filter((e) => e.reason === "Withdrawn").map((e) => e.service).sort(),
        ["shop/api", "shop/web"],
      );
      assert.doesNotMatch(
        await f.metrics.registry.getSingleMetricAsString("purelb_lbnodeagent_announced"),
        /192\.0\.2\.50|198\.51\.100\.10/,
      );

      // A Node deleted is a node without labels: still not selected.
      await reconcileAfter(f, () => f.node.remove(NODE));
      assert.equal(readiness(f), unselected("none"));
    },
  );
});

Deno.test("a node that starts not selected removes what a previous run left, on every dummy interface an LBNodeAgent names", async () => {
  const network = nodeNetwork([linkAddress("192.0.2.50", 24, true)]);
  await withAgent(
    {
      agent: "none",
      nodeAgents: [
        nodeAgent({ extlbint: "edge-lb0" }, { name: "edge", nodeSelector: EDGE_ONLY }),
      ],
      nodeLabels: { zone: "b" },
      services: [service("web", ["192.0.2.50"])],
      network: {
        ...network,
        links: [
          ...network.links,
          link(3, "kube-lb0", [linkAddress("198.51.100.11", 32)]),
          link(4, "edge-lb0", [linkAddress("198.51.100.12", 32)]),
        ],
      },
      membership: (m) => m.previousLocalAddresses = new Set(["192.0.2.50"]),
    },
    async (f) => {
      await until(
        "the leftovers removed",
        () =>
          !f.netlink.addressesOn("eth0").includes("192.0.2.50/24") &&
          f.netlink.addressesOn("kube-lb0").length === 0 &&
          f.netlink.addressesOn("edge-lb0").length === 0,
      );
      await until("idle", () => idle(f));
      assert.match(readiness(f), /^no LBNodeAgent selects node node-a/);
      assert.deepEqual(f.membership.subnets.at(-1), []);
      assert.deepEqual(f.membership.localAddresses.at(-1), []);
      // Done once: later reconciles read nothing more.
      const calls = f.netlink.calls.length;
      await reconcileAfter(f, () => f.controller.kick());
      assert.equal(f.netlink.calls.length, calls);
    },
  );
});

/** eth0 in 192.0.2.0/24 (the default route) and eth1 in 203.0.113.0/24. */
function twoInterfaceNetwork(): NetworkState {
  const base = nodeNetwork();
  return { ...base, links: [...base.links, link(3, "eth1", [linkAddress("203.0.113.11", 24)])] };
}

Deno.test("two LBNodeAgents: the node uses the one its labels select, and switches interfaces when relabelled", async () => {
  const second = { pool: "203.0.113.50-203.0.113.59", subnet: "203.0.113.0/24" };
  await withAgent(
    {
      agent: "none",
      nodeAgents: [
        nodeAgent({ localint: "eth0" }, { name: "all" }),
        nodeAgent({ localint: "eth1" }, { name: "edge", nodeSelector: EDGE_ONLY }),
      ],
      nodeLabels: {},
      groups: [serviceGroup("default", [LOCAL_POOL, second])],
      network: twoInterfaceNetwork(),
      services: [service("web", ["192.0.2.50"]), service("api", ["203.0.113.50"])],
    },
    async (f) => {
      await until(
        "ready on eth0",
        () => readiness(f) === "ready" && f.netlink.addressesOn("eth0").includes("192.0.2.50/24"),
      );
      assert.deepEqual(f.membership.subnets.at(-1), ["192.0.2.0/24", "2001:db8:1::/64"]);
      assert.ok(!f.netlink.addressesOn("eth1").includes("203.0.113.50/24"));

      f.node.put(nodeObject({ "example.com/role": "edge" }));
      await until(
        "203.0.113.50 on eth1",
        () => f.netlink.addressesOn("eth1").includes("203.0.113.50/24"),
      );
      await until(
        "192.0.2.50 off eth0",
        () => !f.netlink.addressesOn("eth0").includes("192.0.2.50/24") && idle(f),
      );
      assert.deepEqual(f.membership.subnets.at(-1), ["203.0.113.0/24"]);
      assert.equal(readiness(f), "ready");
      assert.ok(
        f.events.recorded.some((e) =>
          e.message === "Announcing 203.0.113.50 from node node-a interface eth1"
        ),
        JSON.stringify(f.events.recorded),
      );
    },
  );
});

Deno.test("a malformed selector selects no node and leaves the other LBNodeAgents alone", async () => {
  const broken = { matchExpressions: [{ key: "zone", operator: "Exists", values: ["a"] }] };
  await withAgent(
    {
      agent: "none",
      nodeAgents: [nodeAgent({ localint: "eth9" }, { name: "aaa", nodeSelector: broken })],
      nodeLabels: { zone: "a" },
      services: [service("web", ["192.0.2.50"])],
    },
    async (f) => {
      await until("not selected", () => /^no LBNodeAgent selects node/.test(readiness(f)));
      f.agents.put(nodeAgent({}, { name: "zzz" }));
      await until("the catch-all applies", () => readiness(f) === "ready" && idle(f));
      // Newly selected, it settles in for two renewals before it claims.
      f.membership.renewals += 2;
      f.controller.renewed();
      await until(
        "claimed after settling",
        () => f.netlink.addressesOn("eth0").includes("192.0.2.50/24"),
      );
    },
  );
});

Deno.test("until its Node is read, the agent applies nothing and says which cache it waits for", async () => {
  await withAgent(
    { nodeSynced: false, services: [service("web", ["192.0.2.50"])] },
    async (f) => {
      await until("not ready", () => readiness(f) === "caches not synced yet: node");
      assert.deepEqual(f.netlink.calls, []);
      f.node.markSynced();
      f.controller.kick();
      await until("ready", () => readiness(f) === "ready");
      assert.ok(f.netlink.addressesOn("eth0").includes("192.0.2.50/24"));
    },
  );
});
