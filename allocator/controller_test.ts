import assert from "node:assert/strict";
import { merged } from "../tests/merge_patch.ts";
import type { V1Service } from "@kubernetes/client-node";
import { type Clock, type EventSink, type EventSubject, MemoryCache } from "../k8s/mod.ts";
import { ALLOCATED_BY_PURELB, Annotations, type EventReason } from "../k8s/types.ts";
import { type IpFamily } from "../ipam/mod.ts";
import { NetboxError } from "../netbox/mod.ts";
import type { NetboxOffer, NetboxSource } from "./allocator.ts";
import {
  type AllocatorApi,
  AllocatorController,
  GROUP_STATUS_DELAY_MS,
  NETBOX_EXHAUSTED_RETRY_MS,
  NETBOX_UNCERTAIN_SWEEP_MS,
  type NetboxBrokerApi,
} from "./controller.ts";
import type { ServiceGroupObject } from "./groupstatus.ts";
import { AllocatorMetrics } from "./metrics.ts";
import type { NetboxCallResult, NetboxMarker, NetboxSweep } from "./netbox.ts";
import type { FamilyPolicy } from "./request.ts";

const NAMESPACE = "purelb-system";
const NETBOX_URL = "https://netbox.example/";
const ONE_V4 = { local: { v4pools: [{ pool: "192.0.2.10/32", subnet: "192.0.2.0/24" }] } };
const NETBOX_SPEC = { netbox: { url: NETBOX_URL, tenant: "lab" } };
const ASSIGNED_MARKS = { [Annotations.allocatedBy]: ALLOCATED_BY_PURELB };

/** Timers that fire only when the test moves time on. */
class ManualClock implements Clock {
  #now = 0;
  #timers: { due: number; callback: () => void; cancelled: boolean }[] = [];

  now(): number {
    return this.#now;
  }

  setTimer(callback: () => void, ms: number): () => void {
    const timer = { due: this.#now + ms, callback, cancelled: false };
    this.#timers.push(timer);
    return () => timer.cancelled = true;
  }

  /** Moves time on by `ms`, firing the timers that fall due, earliest first. */
  advance(ms: number): void {
    const until = this.#now + ms;
    for (;;) {
      const live = this.#timers.filter((t) => !t.cancelled && t.due <= until);
      const next = live.sort((a, b) => a.due - b.due)[0];
      if (next === undefined) break;
      next.cancelled = true;
      this.#now = next.due;
      next.callback();
    }
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    this.#now = until;
  }
}

interface Patch {
  /** `namespace/name` of a Service, or the name of a ServiceGroup. */
  readonly target: string;
  readonly body: unknown;
}

/** Records the controller's writes and applies them to the caches, as the API server would. */
class FakeApi implements AllocatorApi {
  readonly servicePatches: Patch[] = [];
  readonly groupPatches: Patch[] = [];
  readonly #services: MemoryCache<V1Service>;
  readonly #groups: MemoryCache<ServiceGroupObject>;

  constructor(services: MemoryCache<V1Service>, groups: MemoryCache<ServiceGroupObject>) {
    this.#services = services;
    this.#groups = groups;
  }

  patchNamespacedServiceStatus(
    param: { namespace: string; name: string; body: unknown },
  ): Promise<V1Service> {
    this.servicePatches.push({ target: `${param.namespace}/${param.name}`, body: param.body });
    const current = this.#services.get(param.name, param.namespace);
    const updated = merged(current, param.body) as V1Service;
    if (current !== undefined) this.#services.put(updated);
    return Promise.resolve(updated);
  }

  patchNamespacedCustomObjectStatus(
    param: { namespace: string; name: string; body: unknown },
  ): Promise<unknown> {
    this.groupPatches.push({ target: param.name, body: param.body });
    const current = this.#groups.get(param.name, param.namespace);
    if (current !== undefined) this.#groups.put(merged(current, param.body) as ServiceGroupObject);
    return Promise.resolve({});
  }

  patchesOf(target: string): readonly unknown[] {
    return this.servicePatches.filter((p) => p.target === target).map((p) => p.body);
  }
}

interface RecordedEvent {
  /** `namespace/name` of the subject. */
  readonly subject: string;
  readonly reason: EventReason;
  readonly message: string;
}

class RecordingEvents implements EventSink {
  readonly recorded: RecordedEvent[] = [];

  record(subject: EventSubject, _type: string, reason: EventReason, message: string) {
    const name = `${subject.metadata?.namespace ?? ""}/${subject.metadata?.name ?? ""}`;
    this.recorded.push({ subject: name, reason, message });
    return Promise.resolve();
  }

  of(subject: string, reason: EventReason): readonly string[] {
    return this.recorded.filter((e) => e.subject === subject && e.reason === reason).map((e) =>
      e.message
    );
  }
}

/** Netbox as the controller sees it: reserved addresses handed out in order, failures on demand. */
class FakeNetbox implements NetboxBrokerApi {
  readonly reserved: string[] = [];
  readonly takes: string[] = [];
  readonly givenBack: string[] = [];
  sweeps = 0;
  /** Every take fails with this, while set. */
  takeFailure: NetboxError | undefined;
  /** The next give-backs fail with this, this many times. */
  giveBackFailures = 0;
  /** Sweeps report every held address as unknown to Netbox. */
  sweepMissesHeld = false;
  /** Takes wait for this before answering. */
  takeGate: Promise<void> = Promise.resolve();

  async take(
    source: NetboxSource,
    families: readonly IpFamily[],
    _policy: FamilyPolicy,
    marker: NetboxMarker,
  ): Promise<{ readonly offer: NetboxOffer; readonly result: NetboxCallResult }> {
    this.takes.push(marker.service);
    await this.takeGate;
    const addresses: { address: string; family: IpFamily }[] = [];
    const failures: Partial<Record<IpFamily, NetboxError>> = {};
    for (const family of families) {
      const address = this.takeFailure === undefined ? this.reserved.shift() : undefined;
      if (address !== undefined) addresses.push({ address, family });
      else {
        failures[family] = this.takeFailure ??
          new NetboxError("exhausted", `Netbox has no reserved ${family} address left`);
      }
    }
    const result: NetboxCallResult = this.takeFailure === undefined
      ? { ok: true }
      : { ok: false, error: this.takeFailure };
    return { offer: { source, addresses, failures }, result };
  }

  settle(): void {}

  giveBack(_source: NetboxSource, address: string): Promise<void> {
    if (this.giveBackFailures > 0) {
      this.giveBackFailures--;
      return Promise.reject(new NetboxError("serverError", "Netbox answered 500"));
    }
    this.givenBack.push(address);
    this.reserved.push(address);
    return Promise.resolve();
  }

  sweep(
    _source: NetboxSource,
    _groupUid: string,
    heldNow: () => ReadonlyMap<string, string>,
  ): Promise<NetboxSweep> {
    this.sweeps++;
    const held = heldNow();
    const missing = this.sweepMissesHeld ? [...held.keys()] : [];
    return Promise.resolve({ held, reclaimed: [], missing, returned: [] });
  }
}

/** One controller with fakes all around; `lead()` makes it leader until `stop()`. */
class Harness {
  readonly services = new MemoryCache<V1Service>();
  readonly groups = new MemoryCache<ServiceGroupObject>();
  readonly api = new FakeApi(this.services, this.groups);
  readonly events = new RecordingEvents();
  readonly netbox = new FakeNetbox();
  readonly metrics = new AllocatorMetrics();
  readonly clock = new ManualClock();
  // One worker: work is done in the order it was queued, which barrier() relies on.
  readonly controller = new AllocatorController({
    services: this.services,
    groups: this.groups,
    api: this.api,
    netbox: this.netbox,
    namespace: NAMESPACE,
    settings: { handleClasslessServices: true },
    events: this.events,
    metrics: this.metrics,
    workers: 1,
    clock: this.clock,
  });
  readonly #leadership = new AbortController();
  #leading: Promise<void> = Promise.resolve();
  #barriers = 0;

  addGroup(name: string, spec: unknown): void {
    this.groups.put({
      metadata: {
        name,
        namespace: NAMESPACE,
        uid: `uid-${name}`,
        generation: 1,
        creationTimestamp: new Date("2026-01-01T00:00:00Z"),
      },
      spec,
    });
  }

  lead(): void {
    this.#leading = this.controller.lead(this.#leadership.signal);
  }

  /** Ends the leadership; resolves once the workers stopped. */
  async stop(): Promise<void> {
    this.#leadership.abort();
    await this.#leading;
  }

  /**
   * Resolves once all work queued so far is done: a Service carrying our marks but no longer a
   * LoadBalancer is queued last and has its marks removed.
   */
  async barrier(): Promise<void> {
    const name = `b${this.#barriers++}`;
    this.services.put({
      metadata: { name, namespace: "barrier", annotations: ASSIGNED_MARKS },
      spec: { type: "ClusterIP" },
    });
    await until(() => this.api.patchesOf(`barrier/${name}`).length > 0, `barrier ${name}`);
  }

  async failures(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const { labels, value } of (await this.metrics.failed.get()).values) {
      counts[String(labels.reason)] = value;
    }
    return counts;
  }
}

async function withHarness(test: (h: Harness) => Promise<void>): Promise<void> {
  const harness = new Harness();
  try {
    await test(harness);
  } finally {
    await harness.stop();
  }
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

let created = 0;

/** A LoadBalancer Service in namespace `shop`; each is created a second after the previous. */
function loadBalancer(name: string, extra: Partial<V1Service> = {}): V1Service {
  return {
    metadata: {
      name,
      namespace: "shop",
      uid: `uid-${name}`,
      creationTimestamp: new Date(Date.UTC(2026, 0, 2, 0, 0, created++)),
      ...extra.metadata,
    },
    spec: { type: "LoadBalancer", ports: [{ port: 80, protocol: "TCP" }], ...extra.spec },
    ...(extra.status === undefined ? {} : { status: extra.status }),
  };
}

/** What the API holds for a Service (as the fake applied the patches). */
function ingressOf(h: Harness, name: string): string[] {
  return (h.services.get(name, "shop")?.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? "");
}

function assignedPatch(address: string, group: string): unknown {
  return {
    metadata: {
      annotations: {
        [Annotations.allocatedBy]: ALLOCATED_BY_PURELB,
        [Annotations.allocatedFrom]: group,
      },
    },
    status: { loadBalancer: { ingress: [{ ip: address, ipMode: "VIP" }] } },
  };
}

const CLEARED_PATCH = {
  metadata: { annotations: { [Annotations.allocatedBy]: null, [Annotations.allocatedFrom]: null } },
  status: { loadBalancer: { ingress: null } },
};

Deno.test("controller: a new LoadBalancer gets an address, and an unchanged one writes nothing", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    h.services.put(loadBalancer("web"));
    h.lead();
    await until(() => h.api.patchesOf("shop/web").length > 0, "web is patched");
    assert.deepEqual(h.api.patchesOf("shop/web"), [assignedPatch("192.0.2.10", "default")]);
    assert.deepEqual(h.events.of("shop/web", "AddressAssigned"), [
      "Assigned 192.0.2.10 from ServiceGroup default",
    ]);
    assert.equal((await h.metrics.assigned.get()).values[0]?.value, 1);
    // Synced again (the patch came back through the cache, then a port changed): the
    // allocation still fits and the status is right, so nothing is written.
    const web = h.services.get("web", "shop");
    h.services.put({ ...web, spec: { ...web?.spec, ports: [{ port: 443, protocol: "TCP" }] } });
    await h.barrier();
    assert.equal(h.api.patchesOf("shop/web").length, 1);
    assert.equal(h.events.of("shop/web", "AddressAssigned").length, 1);
  }));

Deno.test("controller: a Service that is not ours any more is released without a write", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    h.services.put(loadBalancer("web"));
    h.services.put(loadBalancer("api"));
    h.lead();
    await until(() => h.events.of("shop/api", "AllocationFailed").length > 0, "api waits");
    const web = h.services.get("web", "shop");
    h.services.put({ ...web, spec: { ...web?.spec, loadBalancerClass: "example.com/other" } });
    await until(() => ingressOf(h, "api").length > 0, "api gets the released address");
    assert.deepEqual(ingressOf(h, "api"), ["192.0.2.10"]);
    assert.equal(h.api.patchesOf("shop/web").length, 1, "only the first assignment");
    assert.deepEqual(h.events.of("shop/web", "AddressReleased"), []);
    assert.equal((await h.metrics.released.get()).values[0]?.value, 1);
  }));

Deno.test("controller: a Service that stops being a LoadBalancer has its ingress and marks cleared", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    h.services.put(loadBalancer("web"));
    h.lead();
    await until(() => ingressOf(h, "web").length > 0, "web is assigned");
    const web = h.services.get("web", "shop");
    h.services.put({ ...web, spec: { ...web?.spec, type: "ClusterIP" } });
    await until(() => h.api.patchesOf("shop/web").length === 2, "web is cleared");
    assert.deepEqual(h.api.patchesOf("shop/web")[1], CLEARED_PATCH);
    assert.deepEqual(h.events.of("shop/web", "AddressReleased"), ["Released 192.0.2.10"]);
  }));

Deno.test("controller: an invalid request clears the ingress, fails, and warns only once", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    h.services.put(loadBalancer("web", {
      spec: { loadBalancerIP: "banana" },
      status: { loadBalancer: { ingress: [{ ip: "192.0.2.99", ipMode: "VIP" }] } },
    }));
    h.lead();
    await until(() => h.api.patchesOf("shop/web").length > 0, "web is cleared");
    assert.deepEqual(h.api.patchesOf("shop/web"), [CLEARED_PATCH]);
    // Synced again with the same request (another port): nothing is reported twice.
    const web = h.services.get("web", "shop");
    h.services.put({ ...web, spec: { ...web?.spec, ports: [{ port: 81, protocol: "TCP" }] } });
    await h.barrier();
    assert.deepEqual(h.events.of("shop/web", "AllocationFailed"), [
      'spec.loadBalancerIP: "banana" is not an IP address',
    ]);
    assert.equal(h.events.of("shop/web", "DeprecationWarning").length, 1);
    assert.equal(h.api.patchesOf("shop/web").length, 1);
    assert.deepEqual(await h.failures(), { invalid_request: 1 });
  }));

Deno.test("controller: an exhausted pool fails the Service until another one releases", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    h.services.put(loadBalancer("web"));
    h.services.put(loadBalancer("api"));
    h.lead();
    await until(() => h.events.of("shop/api", "AllocationFailed").length > 0, "api fails");
    // No ipFamilies: either family will do, and the pool has neither left.
    assert.deepEqual(h.events.of("shop/api", "AllocationFailed"), [
      'ServiceGroup "default" has no IPv6 pool; no free IPv4 address in pool default',
    ]);
    assert.deepEqual(h.api.patchesOf("shop/api"), []);
    h.services.remove("web", "shop");
    await until(() => h.api.patchesOf("shop/api").length > 0, "api is assigned");
    assert.deepEqual(h.api.patchesOf("shop/api"), [assignedPatch("192.0.2.10", "default")]);
    assert.deepEqual(await h.failures(), { pool_exhausted: 1 });
  }));

Deno.test("controller: a new leader registers existing allocations before serving new Services", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    // The newcomer is older and listed first; the address is still the other's.
    h.services.put(loadBalancer("newcomer"));
    h.services.put(loadBalancer("holder", {
      metadata: {
        name: "holder",
        annotations: { ...ASSIGNED_MARKS, [Annotations.allocatedFrom]: "default" },
      },
      status: { loadBalancer: { ingress: [{ ip: "192.0.2.10", ipMode: "VIP" }] } },
    }));
    h.lead();
    await until(() => h.events.of("shop/newcomer", "AllocationFailed").length > 0, "it fails");
    await h.barrier();
    assert.deepEqual(h.api.patchesOf("shop/holder"), [], "the holder's status is already right");
    assert.deepEqual(h.api.patchesOf("shop/newcomer"), []);
  }));

Deno.test("controller: a lost leadership writes nothing more", () =>
  withHarness(async (h) => {
    h.addGroup("nb", NETBOX_SPEC);
    h.netbox.reserved.push("192.0.2.10");
    const answer = Promise.withResolvers<void>();
    h.netbox.takeGate = answer.promise;
    h.services.put(loadBalancer("web", { metadata: { name: "web", annotations: group("nb") } }));
    h.lead();
    await until(() => h.netbox.takes.length > 0, "web asks Netbox");
    const stopped = h.stop();
    answer.resolve();
    await stopped;
    assert.equal(h.controller.leading, false);
    h.services.put(loadBalancer("late", { metadata: { name: "late", annotations: group("nb") } }));
    assert.deepEqual(h.api.servicePatches, []);
    assert.deepEqual(h.events.of("shop/web", "AddressAssigned"), []);
    assert.deepEqual(h.netbox.takes, ["shop/web"], "nothing more is asked of Netbox");
  }));

Deno.test("controller: the group status is written at leadership and after an assignment", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    h.lead();
    await until(() => h.api.groupPatches.length > 0, "the group status is written");
    assert.deepEqual(usageOf(h.api.groupPatches[0]?.body), { size: "1", inUse: 0, free: "1" });
    h.services.put(loadBalancer("web"));
    await until(() => ingressOf(h, "web").length > 0, "web is assigned");
    await h.barrier();
    assert.equal(h.api.groupPatches.length, 1, "counts are written after a delay");
    h.clock.advance(GROUP_STATUS_DELAY_MS);
    await until(() => h.api.groupPatches.length === 2, "the counts are written");
    assert.deepEqual(usageOf(h.api.groupPatches[1]?.body), { size: "1", inUse: 1, free: "0" });
  }));

Deno.test("controller: failures are counted by the kind of reason", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    h.addGroup("broken", { local: { v4pools: [{ pool: "banana", subnet: "192.0.2.0/24" }] } });
    h.services.put(loadBalancer("web"));
    h.services.put(loadBalancer("full"));
    h.services.put(
      loadBalancer("lost", { metadata: { name: "lost", annotations: group("nope") } }),
    );
    h.services.put(
      loadBalancer("bad", { metadata: { name: "bad", annotations: group("broken") } }),
    );
    h.services.put(loadBalancer("v6", { spec: { ipFamilies: ["IPv6"] } }));
    h.services.put(loadBalancer("far", {
      metadata: { name: "far", annotations: { [Annotations.addresses]: "203.0.113.1" } },
    }));
    h.lead();
    await until(
      () => h.events.recorded.filter((e) => e.reason === "AllocationFailed").length === 5,
      "five fail",
    );
    assert.deepEqual(await h.failures(), {
      pool_exhausted: 1,
      group_not_found: 1,
      group_invalid: 1,
      family_unavailable: 1,
      address_outside_pools: 1,
    });
  }));

Deno.test("controller: a failed take is retried with backoff, and the group reports Netbox's health", () =>
  withHarness(async (h) => {
    h.addGroup("nb", NETBOX_SPEC);
    h.netbox.reserved.push("192.0.2.10");
    h.netbox.takeFailure = new NetboxError("unauthorized", "Netbox refused the token (403)");
    h.services.put(loadBalancer("web", { metadata: { name: "web", annotations: group("nb") } }));
    h.lead();
    await until(() => netboxCondition(h.api.groupPatches.at(-1))?.status === "False", "unhealthy");
    assert.deepEqual(netboxCondition(h.api.groupPatches.at(-1))?.reason, "Unauthorized");
    assert.deepEqual(h.netbox.takes, ["shop/web"]);
    h.clock.advance(4);
    await h.barrier();
    assert.equal(h.netbox.takes.length, 1, "not before the first backoff");
    h.clock.advance(1);
    await until(() => h.netbox.takes.length === 2, "the first retry");
    h.clock.advance(9);
    await h.barrier();
    assert.equal(h.netbox.takes.length, 2, "the backoff doubles");
    h.netbox.takeFailure = undefined;
    h.clock.advance(1);
    await until(() => ingressOf(h, "web").length > 0, "web is assigned");
    assert.deepEqual(h.api.patchesOf("shop/web"), [assignedPatch("192.0.2.10", "nb")]);
    await until(() => netboxCondition(h.api.groupPatches.at(-1))?.status === "True", "healthy");
    assert.equal(netboxCondition(h.api.groupPatches.at(-1))?.reason, "Answering");
    assert.deepEqual(await h.failures(), { netbox_error: 1 });
    const netboxFailures = (await h.metrics.netboxFailures.get()).values;
    assert.deepEqual(netboxFailures.map((v) => [v.labels.failure, v.value]), [["unauthorized", 2]]);
  }));

Deno.test("controller: an empty Netbox is asked again after a while", () =>
  withHarness(async (h) => {
    h.addGroup("nb", NETBOX_SPEC);
    h.services.put(loadBalancer("web", { metadata: { name: "web", annotations: group("nb") } }));
    h.lead();
    await until(() => h.events.of("shop/web", "AllocationFailed").length > 0, "web fails");
    h.netbox.reserved.push("192.0.2.10");
    h.clock.advance(NETBOX_EXHAUSTED_RETRY_MS - 1);
    await h.barrier();
    assert.equal(h.netbox.takes.length, 1);
    h.clock.advance(1);
    await until(() => ingressOf(h, "web").length > 0, "web is assigned");
    assert.deepEqual(ingressOf(h, "web"), ["192.0.2.10"]);
    assert.deepEqual(await h.failures(), { pool_exhausted: 1 });
  }));

Deno.test("controller: a take whose answer was lost schedules a sweep of the group", () =>
  withHarness(async (h) => {
    h.addGroup("nb", NETBOX_SPEC);
    h.netbox.takeFailure = new NetboxError("timeout", "Netbox did not answer within 5000 ms");
    h.services.put(loadBalancer("web", { metadata: { name: "web", annotations: group("nb") } }));
    h.lead();
    await until(() => h.netbox.takes.length > 0, "web asks Netbox");
    await h.barrier();
    assert.equal(h.netbox.sweeps, 1, "the sweep at leadership");
    h.netbox.takeFailure = undefined;
    h.netbox.reserved.push("192.0.2.10");
    h.clock.advance(5);
    await until(() => ingressOf(h, "web").length > 0, "web is assigned");
    h.clock.advance(NETBOX_UNCERTAIN_SWEEP_MS - 6);
    await h.barrier();
    assert.equal(h.netbox.sweeps, 1);
    h.clock.advance(1);
    await until(() => h.netbox.sweeps === 2, "the group is swept again");
  }));

Deno.test("controller: a released Netbox address is given back, again if that fails", () =>
  withHarness(async (h) => {
    h.addGroup("nb", NETBOX_SPEC);
    h.netbox.reserved.push("192.0.2.10");
    h.netbox.giveBackFailures = 1;
    h.services.put(loadBalancer("web", { metadata: { name: "web", annotations: group("nb") } }));
    h.lead();
    await until(() => ingressOf(h, "web").length > 0, "web is assigned");
    h.services.remove("web", "shop");
    await until(() => netboxCondition(h.api.groupPatches.at(-1))?.status === "False", "a failure");
    assert.deepEqual(h.netbox.givenBack, []);
    h.clock.advance(5);
    await until(() => h.netbox.givenBack.length > 0, "the address is given back");
    assert.deepEqual(h.netbox.givenBack, ["192.0.2.10"]);
  }));

Deno.test("controller: a held address Netbox does not list is reported on its Service", () =>
  withHarness(async (h) => {
    h.addGroup("nb", NETBOX_SPEC);
    h.netbox.sweepMissesHeld = true;
    h.services.put(loadBalancer("web", {
      metadata: {
        name: "web",
        annotations: { ...group("nb"), ...ASSIGNED_MARKS, [Annotations.allocatedFrom]: "nb" },
      },
      status: { loadBalancer: { ingress: [{ ip: "192.0.2.10", ipMode: "VIP" }] } },
    }));
    h.lead();
    await until(() => h.events.of("shop/web", "ConfigurationWarning").length > 0, "a warning");
    assert.match(
      h.events.of("shop/web", "ConfigurationWarning")[0] ?? "",
      /lists 192\.0\.2\.10 neither as active nor as reserved for tenant lab/,
    );
    await h.barrier();
    assert.deepEqual(h.netbox.takes, [], "the existing address is kept");
    assert.deepEqual(h.api.patchesOf("shop/web"), []);
  }));

function group(name: string): Record<string, string> {
  return { [Annotations.serviceGroup]: name };
}

function statusOf(body: unknown): Record<string, unknown> {
  const status = (body as { status?: Record<string, unknown> } | undefined)?.status;
  return status ?? {};
}

function usageOf(body: unknown): unknown {
  return statusOf(body)["ipv4"];
}

function netboxCondition(patch: Patch | undefined): { status: string; reason: string } | undefined {
  const conditions = statusOf(patch?.body)["conditions"] as
    | { type: string; status: string; reason: string }[]
    | undefined;
  const condition = conditions?.find((c) => c.type === "NetboxAvailable");
  return condition && { status: condition.status, reason: condition.reason };
}

// ---- Namespace rules (README "Tenancy: who may use a ServiceGroup") ---------------------------

const POOL_A = { v4pools: [{ pool: "198.51.100.10/31", subnet: "198.51.100.0/24" }] };
const POOL_DEFAULT = { v4pools: [{ pool: "192.0.2.10/31", subnet: "192.0.2.0/24" }] };

function inNamespace(namespace: string, name: string, extra: Partial<V1Service> = {}) {
  return loadBalancer(name, { ...extra, metadata: { name, namespace, ...extra.metadata } });
}

function ingressIn(h: Harness, namespace: string, name: string): string[] {
  return (h.services.get(name, namespace)?.status?.loadBalancer?.ingress ?? []).map((i) =>
    i.ip ?? ""
  );
}

Deno.test("controller: a fenced group is refused to other namespaces, and its namespace to other groups", () =>
  withHarness(async (h) => {
    h.addGroup("default", { local: POOL_DEFAULT });
    h.addGroup("a", { local: POOL_A, namespaces: ["team-a"], enforceNamespaces: true });
    h.services.put(inNamespace("team-a", "plain"));
    h.services.put(
      inNamespace("team-a", "elsewhere", { metadata: { annotations: group("default") } }),
    );
    h.services.put(inNamespace("shop", "intruder", { metadata: { annotations: group("a") } }));
    h.services.put(inNamespace("shop", "asks", {
      metadata: { annotations: { [Annotations.addresses]: "198.51.100.11" } },
    }));
    h.services.put(inNamespace("shop", "other"));
    h.lead();
    await until(() => ingressIn(h, "team-a", "plain").length > 0, "plain gets a's address");
    await until(() => ingressIn(h, "shop", "other").length > 0, "other gets default's");
    await until(
      () => h.events.recorded.filter((e) => e.reason === "AllocationFailed").length === 3,
      "three are refused",
    );
    assert.deepEqual(ingressIn(h, "team-a", "plain"), ["198.51.100.10"]);
    assert.deepEqual(ingressIn(h, "shop", "other"), ["192.0.2.10"]);
    assert.match(
      h.events.of("shop/intruder", "AllocationFailed")[0] ?? "",
      /ServiceGroup "a" .*not namespace "shop"/,
    );
    assert.match(
      h.events.of("shop/asks", "AllocationFailed")[0] ?? "",
      /198\.51\.100\.11: ServiceGroup "a" .*not namespace "shop"/,
    );
    assert.match(
      h.events.of("team-a/elsewhere", "AllocationFailed")[0] ?? "",
      /namespace "team-a" is fenced .*not ServiceGroup "default"/,
    );
    assert.deepEqual(await h.failures(), { namespace_refused: 3 });
    assert.deepEqual(h.api.patchesOf("shop/intruder"), [], "nothing written for a refusal");
  }));

Deno.test("controller: two namespaceDefault groups warn naming both and fall back to default", () =>
  withHarness(async (h) => {
    h.addGroup("default", { local: POOL_DEFAULT });
    h.addGroup("a1", { local: POOL_A, namespaces: ["team-a"], namespaceDefault: true });
    h.addGroup("a2", {
      local: { v4pools: [{ pool: "203.0.113.10/32", subnet: "203.0.113.0/24" }] },
      namespaces: ["team-a"],
      namespaceDefault: true,
    });
    h.services.put(inNamespace("team-a", "web"));
    h.lead();
    await until(() => ingressIn(h, "team-a", "web").length > 0, "web is assigned");
    assert.deepEqual(ingressIn(h, "team-a", "web"), ["192.0.2.10"]);
    assert.deepEqual(h.events.of("team-a/web", "ConfigurationWarning"), [
      'namespace "team-a" is served by ServiceGroups a1, a2 and more than one is marked ' +
      'namespaceDefault (a1, a2); using ServiceGroup "default"',
    ]);
  }));

Deno.test("controller: an edit that drops a namespace keeps its Services, counts them, and re-evaluate moves one", () =>
  withHarness(async (h) => {
    h.addGroup("default", { local: POOL_DEFAULT });
    h.addGroup("a", { local: POOL_A, namespaces: ["team-a"], enforceNamespaces: true });
    h.services.put(inNamespace("team-a", "web"));
    h.services.put(inNamespace("team-a", "db"));
    h.lead();
    await until(() => ingressIn(h, "team-a", "db").length > 0, "both are assigned");
    assert.deepEqual(ingressIn(h, "team-a", "web"), ["198.51.100.10"]);

    // team-a leaves the group's list: nothing moves, both are warned and counted.
    h.groups.put({
      metadata: {
        name: "a",
        namespace: NAMESPACE,
        uid: "uid-a",
        generation: 2,
        creationTimestamp: new Date("2026-01-01T00:00:00Z"),
      },
      spec: { local: POOL_A, namespaces: ["team-b"], enforceNamespaces: true },
    });
    await until(
      () => h.events.of("team-a/db", "ConfigurationWarning").length > 0,
      "db is warned",
    );
    await h.barrier();
    assert.deepEqual(ingressIn(h, "team-a", "web"), ["198.51.100.10"]);
    assert.deepEqual(ingressIn(h, "team-a", "db"), ["198.51.100.11"]);
    assert.match(
      h.events.of("team-a/web", "ConfigurationWarning")[0] ?? "",
      /keeps 198\.51\.100\.10 from ServiceGroup "a", .*choose ServiceGroup "default" for namespace "team-a".*purelb\.io\/re-evaluate/,
    );
    assert.equal(h.api.patchesOf("team-a/web").length, 1, "no write for the kept allocation");
    h.clock.advance(GROUP_STATUS_DELAY_MS);
    await until(
      () =>
        statusOf(h.api.groupPatches.findLast((p) => p.target === "a")?.body)["outOfScope"] === 2,
      "the group counts two out of scope",
    );
    assert.deepEqual(
      statusOf(h.api.groupPatches.findLast((p) => p.target === "a")?.body)["boundNamespaces"],
      ["team-b"],
    );

    // re-evaluate: web is decided again (default now), and the annotation is removed.
    const web = h.services.get("web", "team-a");
    h.services.put({
      ...web,
      metadata: {
        ...web?.metadata,
        annotations: { ...web?.metadata?.annotations, [Annotations.reEvaluate]: "true" },
      },
    });
    await until(() => ingressIn(h, "team-a", "web")[0] === "192.0.2.10", "web moves");
    const last = h.api.patchesOf("team-a/web").at(-1);
    assert.deepEqual(
      (last as { metadata: { annotations: Record<string, unknown> } }).metadata.annotations,
      {
        [Annotations.allocatedBy]: ALLOCATED_BY_PURELB,
        [Annotations.allocatedFrom]: "default",
        [Annotations.reEvaluate]: null,
      },
    );
    assert.equal(
      h.services.get("web", "team-a")?.metadata?.annotations?.[Annotations.reEvaluate],
      undefined,
    );
    assert.deepEqual(ingressIn(h, "team-a", "db"), ["198.51.100.11"], "db stays");
    h.clock.advance(GROUP_STATUS_DELAY_MS);
    await until(
      () =>
        statusOf(h.api.groupPatches.findLast((p) => p.target === "a")?.body)["outOfScope"] === 1,
      "the group counts one",
    );
  }));

Deno.test("controller: re-evaluate of an allocation the rules still give changes nothing but the annotation", () =>
  withHarness(async (h) => {
    h.addGroup("default", ONE_V4);
    h.services.put(loadBalancer("web"));
    h.lead();
    await until(() => ingressOf(h, "web").length > 0, "web is assigned");
    const web = h.services.get("web", "shop");
    h.services.put({
      ...web,
      metadata: {
        ...web?.metadata,
        annotations: { ...web?.metadata?.annotations, [Annotations.reEvaluate]: "" },
      },
    });
    await until(() => h.api.patchesOf("shop/web").length === 2, "the annotation is removed");
    assert.deepEqual(ingressOf(h, "web"), ["192.0.2.10"]);
    assert.deepEqual(h.events.of("shop/web", "AddressAssigned").length, 1);
    assert.equal(
      h.services.get("web", "shop")?.metadata?.annotations?.[Annotations.reEvaluate],
      undefined,
    );
  }));

Deno.test("controller: a new leader keeps allocations the rules no longer give, and counts them", () =>
  withHarness(async (h) => {
    h.addGroup("default", { local: POOL_DEFAULT });
    h.addGroup("a", { local: POOL_A, namespaces: ["team-b"], enforceNamespaces: true });
    h.services.put(inNamespace("team-a", "web", {
      metadata: { annotations: { ...ASSIGNED_MARKS, [Annotations.allocatedFrom]: "a" } },
      status: { loadBalancer: { ingress: [{ ip: "198.51.100.10", ipMode: "VIP" }] } },
    }));
    h.lead();
    await until(() => h.events.of("team-a/web", "ConfigurationWarning").length > 0, "warned");
    await h.barrier();
    assert.deepEqual(h.api.patchesOf("team-a/web"), [], "not moved, nothing written");
    h.clock.advance(GROUP_STATUS_DELAY_MS);
    await until(
      () =>
        statusOf(h.api.groupPatches.findLast((p) => p.target === "a")?.body)["outOfScope"] === 1,
      "counted",
    );
  }));
