import assert from "node:assert/strict";
import { merged } from "../tests/merge_patch.ts";
import type { V1Lease, V1Service } from "@kubernetes/client-node";
import { type EventSink, MemoryCache } from "../k8s/mod.ts";
import { ALLOCATED_BY_PURELB, Annotations, ANNOUNCING_ANNOTATION } from "../k8s/types.ts";
import { formatAnnouncingAnnotation, parseAnnouncingAnnotation } from "../election/mod.ts";
import {
  AddressIndex,
  announcerRecord,
  announcingLeaseView,
  announcingValues,
  changedAddresses,
  nextExpiryMs,
} from "./announcing.ts";
import { type AllocatorApi, AllocatorController, type NetboxBrokerApi } from "./controller.ts";
import type { ServiceGroupObject } from "./groupstatus.ts";
import { AllocatorMetrics } from "./metrics.ts";

const NAMESPACE = "purelb-system";
const V4 = Annotations.announcingIPv4;
const V6 = Annotations.announcingIPv6;

function record(node: string, entries: string, renewTimeMs = 1_000, leaseDurationMs = 6_000) {
  return {
    nodeName: node,
    renewTimeMs,
    leaseDurationMs,
    entries: parseAnnouncingAnnotation(entries),
  };
}

Deno.test("the Lease annotation: sorted, canonical, each once; malformed entries skipped", () => {
  const text = formatAnnouncingAnnotation([
    { interfaceName: "eth0", address: "2001:DB8::5" },
    { interfaceName: "eth0", address: "192.0.2.5" },
    { interfaceName: "eth0", address: "192.0.2.5" },
    { interfaceName: "bad,name", address: "192.0.2.6" },
    { interfaceName: "eth1", address: "not-an-address" },
  ]);
  assert.equal(text, "eth0,192.0.2.5 eth0,2001:db8::5");
  assert.equal(formatAnnouncingAnnotation(parseAnnouncingAnnotation(text)), text);
  assert.deepEqual(parseAnnouncingAnnotation(" x ,192.0.2.1 eth0,192.0.2.300  eth2,192.0.2.7 "), [
    { interfaceName: "eth2", address: "192.0.2.7" },
  ]);
  assert.equal(formatAnnouncingAnnotation([]), "");
});

Deno.test("announcingValues: per family, PureLB's wire form, sorted; expired Leases and other addresses ignored", () => {
  const now = 2_000;
  const records = [
    record("node-b", "eth0,192.0.2.5 eth0,2001:db8::5 eth0,192.0.2.99"),
    record("node-a", "eth1,192.0.2.5"),
    record("node-c", "eth0,192.0.2.5", now - 6_000), // expired exactly now
  ];
  assert.deepEqual(announcingValues(records, ["192.0.2.5", "2001:DB8::5"], now), {
    [V4]: "node-a,eth1,192.0.2.5 node-b,eth0,192.0.2.5",
    [V6]: "node-b,eth0,2001:db8::5",
  });
  assert.deepEqual(announcingValues(records, ["198.51.100.1"], now), {
    [V4]: undefined,
    [V6]: undefined,
  });
  assert.deepEqual(announcingValues(records, [], now), { [V4]: undefined, [V6]: undefined });
});

Deno.test("changedAddresses: only the addresses whose announcer changed; liveness counts", () => {
  const now = 2_000;
  const a = record("node-a", "eth0,192.0.2.5 eth0,192.0.2.6");
  assert.deepEqual([...changedAddresses(a, a, now)], [], "a renewal changes nothing");
  assert.deepEqual(
    [...changedAddresses(a, record("node-a", "eth0,192.0.2.6 eth0,192.0.2.7"), now)].sort(),
    ["192.0.2.5", "192.0.2.7"],
  );
  assert.deepEqual([...changedAddresses(a, undefined, now)].sort(), ["192.0.2.5", "192.0.2.6"]);
  assert.deepEqual([...changedAddresses(undefined, a, now)].sort(), ["192.0.2.5", "192.0.2.6"]);
  const expired = record("node-a", "eth0,192.0.2.5", now - 7_000);
  assert.deepEqual([...changedAddresses(expired, record("node-a", "eth0,192.0.2.5"), now)], [
    "192.0.2.5",
  ]);
  assert.deepEqual(
    [...changedAddresses(a, record("node-a", "eth1,192.0.2.5 eth0,192.0.2.6"), now)],
    ["192.0.2.5"],
    "an interface change",
  );
});

Deno.test("nextExpiryMs: the next live Lease that lists addresses", () => {
  assert.equal(
    nextExpiryMs([record("a", "eth0,192.0.2.5", 0), record("b", "", -5_000)], 1_000),
    5_000,
  );
  assert.equal(nextExpiryMs([record("a", "eth0,192.0.2.5", -9_000)], 1_000), undefined);
});

Deno.test("announcingLeaseView: node Leases keep what is read; the leader Lease is not cached", () => {
  const lease: V1Lease = {
    metadata: {
      name: "purelb-node-a",
      namespace: NAMESPACE,
      resourceVersion: "7",
      annotations: {
        [ANNOUNCING_ANNOTATION]: "eth0,192.0.2.5",
        "purelb.io/subnets": "192.0.2.0/24",
        "purelb.io/local-addresses": "192.0.2.5",
      },
    },
    spec: { holderIdentity: "a", renewTime: isoTime(1_000), leaseDurationSeconds: 6 },
  };
  const view = announcingLeaseView(lease);
  assert.deepEqual(view, {
    metadata: {
      name: "purelb-node-a",
      namespace: NAMESPACE,
      annotations: { [ANNOUNCING_ANNOTATION]: "eth0,192.0.2.5" },
    },
    spec: lease.spec,
  });
  assert.deepEqual(view && announcerRecord(view), record("a", "eth0,192.0.2.5"));
  assert.equal(announcingLeaseView({ metadata: { name: "purelb-allocator" } }), undefined);
});

// ---- the controller ----

/** Lease times travel as RFC 3339 text (MicroTime), whatever the generated type says. */
function isoTime(ms: number): Date {
  return new Date(ms).toISOString() as unknown as Date;
}

class Harness {
  readonly services = new MemoryCache<V1Service>();
  readonly groups = new MemoryCache<ServiceGroupObject>();
  readonly leases = new MemoryCache<V1Lease>({ synced: false });
  readonly patches: { target: string; body: unknown }[] = [];
  readonly metrics = new AllocatorMetrics();
  readonly controller: AllocatorController;
  readonly #leadership = new AbortController();
  #leading: Promise<void> = Promise.resolve();

  constructor() {
    const services = this.services;
    const patches = this.patches;
    const api: AllocatorApi = {
      patchNamespacedServiceStatus(param) {
        patches.push({ target: `${param.namespace}/${param.name}`, body: param.body });
        const current = services.get(param.name, param.namespace);
        const updated = merged(current, param.body) as V1Service;
        if (current !== undefined) services.put(updated);
        return Promise.resolve(updated);
      },
      patchNamespacedCustomObjectStatus: () => Promise.resolve({}),
    };
    const events: EventSink = { record: () => Promise.resolve() };
    const refuse = () => Promise.reject(new Error("no Netbox here"));
    const netbox: NetboxBrokerApi = {
      take: refuse,
      settle: () => {},
      giveBack: refuse,
      sweep: refuse,
    };
    this.groups.put({
      metadata: { name: "default", namespace: NAMESPACE, uid: "g", generation: 1 },
      spec: { local: { v4pools: [{ pool: "192.0.2.10-192.0.2.19", subnet: "192.0.2.0/24" }] } },
    });
    this.controller = new AllocatorController({
      services,
      groups: this.groups,
      leases: this.leases,
      api,
      netbox,
      namespace: NAMESPACE,
      settings: { handleClasslessServices: true },
      events,
      metrics: this.metrics,
      workers: 2,
    });
  }

  lead(): void {
    this.#leading = this.controller.lead(this.#leadership.signal);
  }

  async stop(): Promise<void> {
    this.#leadership.abort();
    await this.#leading;
  }

  putLease(node: string, entries: string, renewTimeMs = Date.now(), seconds = 6): void {
    this.leases.put({
      metadata: {
        name: `purelb-node-${node}`,
        namespace: NAMESPACE,
        annotations: { [ANNOUNCING_ANNOTATION]: entries },
      },
      spec: {
        holderIdentity: node,
        renewTime: isoTime(renewTimeMs),
        leaseDurationSeconds: seconds,
      },
    });
  }

  annotation(name: string, key: string = V4): string | undefined {
    return this.services.get(name, "shop")?.metadata?.annotations?.[key];
  }

  ingress(name: string): string[] {
    return (this.services.get(name, "shop")?.status?.loadBalancer?.ingress ?? []).map((i) =>
      i.ip ?? ""
    );
  }

  patchesOf(name: string): unknown[] {
    return this.patches.filter((p) => p.target === `shop/${name}`).map((p) => p.body);
  }

  async reconciles(kind: string): Promise<number> {
    const values = (await this.metrics.reconciles.get()).values;
    return values.find((v) => v.labels.kind === kind)?.value ?? 0;
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

async function until(condition: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

function loadBalancer(name: string, annotations: Record<string, string> = {}): V1Service {
  return {
    metadata: { name, namespace: "shop", uid: `uid-${name}`, annotations },
    spec: { type: "LoadBalancer", ports: [{ port: 80, protocol: "TCP" }] },
  };
}

Deno.test("controller: announcing sent with the allocation when the announcer is known; follows a hand-over", () =>
  withHarness(async (h) => {
    h.putLease("node-b", "eth0,192.0.2.10");
    h.leases.markSynced();
    h.lead();
    h.services.put(loadBalancer("web"));
    await until(() => h.annotation("web") === "node-b,eth0,192.0.2.10", "announced by node-b");
    assert.deepEqual(h.ingress("web"), ["192.0.2.10"]);
    assert.equal(h.patchesOf("web").length, 1, "one patch: the allocation carried it");
    assert.equal(h.annotation("web", V6), undefined);
    const serviceReconciles = await h.reconciles("service");

    // A graceful stop deletes the Lease; the next node lists the address.
    h.leases.remove("purelb-node-node-b", NAMESPACE);
    await until(() => h.annotation("web") === undefined, "removed: nobody announces");
    h.putLease("node-c", "eth0,192.0.2.10");
    await until(() => h.annotation("web") === "node-c,eth0,192.0.2.10", "announced by node-c");
    assert.deepEqual(h.patchesOf("web").slice(1), [
      { metadata: { annotations: { [V4]: null } } },
      { metadata: { annotations: { [V4]: "node-c,eth0,192.0.2.10" } } },
    ]);
    assert.equal(
      await h.reconciles("service"),
      serviceReconciles,
      "announcing writes are no allocation work",
    );

    // Renewals and other nodes' addresses queue nothing for this Service.
    const announcingWork = await h.reconciles("announcing");
    h.putLease("node-c", "eth0,192.0.2.10", Date.now() + 1);
    h.putLease("node-a", "eth0,192.0.2.77");
    h.services.put(loadBalancer("db"));
    await until(() => h.ingress("db").length === 1, "db allocated");
    assert.equal(h.patchesOf("web").length, 3);
    assert.equal(await h.reconciles("announcing"), announcingWork);
  }));

Deno.test("controller: a crashed node's Lease expiry removes its entries at the expiry moment", () =>
  withHarness(async (h) => {
    h.leases.markSynced();
    h.lead();
    h.services.put(loadBalancer("web"));
    await until(() => h.ingress("web").length === 1, "allocated");
    // Renewed 5.7 s ago for 6 s: expires in 300 ms, and nothing else will happen.
    const renewedAt = Date.now() - 5_700;
    h.putLease("node-b", "eth0,192.0.2.10", renewedAt);
    await until(() => h.annotation("web") === "node-b,eth0,192.0.2.10", "announced by node-b");
    await until(() => h.annotation("web") === undefined, "removed at expiry", 2_000);
    const late = Date.now() - (renewedAt + 6_000);
    assert.ok(late >= 0 && late < 500, `removed ${late} ms after the expiry`);
  }));

Deno.test("controller: only our Services get the annotations; a stale copy is corrected, one that stops being ours loses it", () =>
  withHarness(async (h) => {
    h.putLease("node-b", "eth0,192.0.2.10 eth0,192.0.2.11");
    h.lead();
    // Nothing is written before the Lease cache is full, not even with the allocation.
    h.services.put(loadBalancer("web"));
    await until(() => h.ingress("web").length === 1, "allocated");
    assert.equal(h.annotation("web"), undefined);
    h.leases.markSynced();
    await until(() => h.annotation("web") === "node-b,eth0,192.0.2.10", "announced");

    // Someone writes a wrong value: it is put right.
    const svc = h.services.get("web", "shop");
    assert.ok(svc);
    h.services.put({
      ...svc,
      metadata: { ...svc.metadata, annotations: { ...svc.metadata?.annotations, [V4]: "x" } },
    });
    await until(() => h.annotation("web") === "node-b,eth0,192.0.2.10", "corrected");

    // Not a LoadBalancer any more: the allocation and the announcing annotations go together.
    const current = h.services.get("web", "shop");
    assert.ok(current);
    h.services.put({ ...current, spec: { ...current.spec, type: "ClusterIP" } });
    await until(() => h.ingress("web").length === 0, "released");
    assert.equal(h.annotation("web"), undefined);
    assert.equal(h.annotation("web", Annotations.allocatedBy), undefined);

    // A Service that is not ours (no allocated-by mark) never gets them.
    h.services.put({
      metadata: { name: "other", namespace: "shop", annotations: {} },
      spec: { type: "LoadBalancer", loadBalancerClass: "example.com/lb" },
      status: { loadBalancer: { ingress: [{ ip: "192.0.2.11" }] } },
    });
    h.putLease("node-b", "eth0,192.0.2.11", Date.now() + 1);
    h.services.put(loadBalancer("db"));
    await until(() => h.ingress("db").length === 1, "db allocated");
    assert.deepEqual(h.patchesOf("other"), []);
    assert.equal(ALLOCATED_BY_PURELB, h.annotation("db", Annotations.allocatedBy));
  }));

Deno.test("AddressIndex finds the keys of an address after any sequence of sets", () => {
  const index = new AddressIndex();
  index.set("a", ["192.0.2.1", "192.0.2.2"]);
  index.set("b", ["192.0.2.2"]);
  assert.deepEqual([...index.keysOf("192.0.2.2")].sort(), ["a", "b"]);
  index.set("a", ["192.0.2.3"]);
  assert.deepEqual([...index.keysOf("192.0.2.1")], []);
  assert.deepEqual([...index.keysOf("192.0.2.2")], ["b"]);
  assert.deepEqual([...index.keysOf("192.0.2.3")], ["a"]);
  index.set("b", []);
  assert.deepEqual([...index.keysOf("192.0.2.2")], []);
  index.clear();
  assert.deepEqual([...index.keysOf("192.0.2.3")], []);
});
