import assert from "node:assert/strict";
import type { V1Lease } from "@kubernetes/client-node";
import {
  formatLocalAddressesAnnotation,
  type LeaseClient,
  leaseRecord,
  nodeLeaseName,
  NodeMembership,
  parseLocalAddressesAnnotation,
} from "./membership.ts";
import { waitFor } from "../tests/wait.ts";

/** An in-memory Lease store that can be told to fail, standing in for the API. */
class FakeLeases implements LeaseClient {
  readonly leases = new Map<string, V1Lease>();
  failing = false;
  writes = 0;
  #version = 0;

  #check(): void {
    if (this.failing) throw Object.assign(new Error("unavailable"), { code: 503 });
  }

  #store(body: V1Lease): V1Lease {
    const stored = {
      ...body,
      metadata: { ...body.metadata, resourceVersion: String(++this.#version) },
      spec: {
        ...body.spec,
        // The API sends times back as text.
        renewTime: String(body.spec?.renewTime?.toISOString?.() ?? body.spec?.renewTime) as never,
      },
    };
    this.leases.set(body.metadata?.name ?? "", stored);
    this.writes++;
    return stored;
  }

  createNamespacedLease(param: { namespace: string; body: V1Lease }): Promise<V1Lease> {
    this.#check();
    const name = param.body.metadata?.name ?? "";
    if (this.leases.has(name)) throw Object.assign(new Error("exists"), { code: 409 });
    return Promise.resolve(this.#store(param.body));
  }

  readNamespacedLease(param: { name: string; namespace: string }): Promise<V1Lease> {
    this.#check();
    const lease = this.leases.get(param.name);
    if (lease === undefined) throw Object.assign(new Error("not found"), { code: 404 });
    return Promise.resolve(lease);
  }

  replaceNamespacedLease(
    param: { name: string; namespace: string; body: V1Lease },
  ): Promise<V1Lease> {
    this.#check();
    const current = this.leases.get(param.name);
    if (current === undefined) throw Object.assign(new Error("not found"), { code: 404 });
    if (current.metadata?.resourceVersion !== param.body.metadata?.resourceVersion) {
      throw Object.assign(new Error("conflict"), { code: 409 });
    }
    return Promise.resolve(this.#store(param.body));
  }

  deleteNamespacedLease(param: { name: string; namespace: string }): Promise<never> {
    this.#check();
    if (!this.leases.delete(param.name)) {
      throw Object.assign(new Error("not found"), { code: 404 });
    }
    return Promise.resolve(undefined as never);
  }
}

function member(api: FakeLeases, events: boolean[] = []) {
  return new NodeMembership({
    api: api as unknown as LeaseClient,
    namespace: "purelb-system",
    nodeName: "node-a",
    leaseDurationMs: 300,
    renewMs: 100,
    onFenceChange: (fenced) => events.push(fenced),
  });
}

Deno.test("membership: creates and renews its Lease with the subnets; release deletes it", async () => {
  const api = new FakeLeases();
  const membership = member(api);
  assert.equal(membership.fenced, true, "fenced until the first renewal");
  membership.setSubnets(["2001:db8:1::11/64", "192.0.2.11/24"]);
  const running = membership.run();
  try {
    await waitFor(() => api.writes >= 3, 2_000, "three writes");
    assert.equal(membership.fenced, false);
    const lease = api.leases.get(nodeLeaseName("node-a"));
    assert.ok(lease !== undefined);
    const record = leaseRecord(lease);
    assert.deepEqual(record?.subnets, ["192.0.2.0/24", "2001:db8:1::/64"]);
    assert.equal(record?.nodeName, "node-a");
    assert.equal(record?.leaseDurationMs, 1_000, "duration rounded up to whole seconds");
    // A change of subnets is written at once, not at the next renewal.
    const before = api.writes;
    membership.setSubnets(["198.51.100.0/24"]);
    await waitFor(
      () =>
        api.leases.get(nodeLeaseName("node-a"))?.metadata?.annotations?.["purelb.io/subnets"] ===
          "198.51.100.0/24",
      90,
      "the new subnets",
      5,
    );
    assert.ok(api.writes > before);
  } finally {
    await membership.stop();
    await running;
  }
  assert.equal(await membership.release(), true);
  assert.equal(api.leases.size, 0);
  assert.equal(await membership.release(), true, "already gone is fine");
});

Deno.test("membership: fenced after a full duration without renewal, unfenced on recovery", async () => {
  const api = new FakeLeases();
  const events: boolean[] = [];
  const membership = member(api, events);
  const running = membership.run();
  try {
    await waitFor(() => !membership.fenced, 2_000, "first renewal");
    api.failing = true;
    const failedAt = performance.now();
    await waitFor(() => membership.fenced, 2_000, "fenced");
    const fencedAfter = performance.now() - failedAt;
    assert.ok(fencedAfter <= 300 + 50, `fenced ${fencedAfter} ms after the last renewal`);
    assert.ok(membership.failures > 0);
    api.failing = false;
    await waitFor(() => !membership.fenced, 2_000, "unfenced");
    assert.deepEqual(events, [false, true, false]);
  } finally {
    await membership.stop();
    await running;
  }
});

Deno.test("membership: a Lease changed behind its back is read again (409) and renewed", async () => {
  const api = new FakeLeases();
  const membership = member(api);
  const running = membership.run();
  try {
    await waitFor(() => api.writes >= 1, 2_000, "first write");
    const name = nodeLeaseName("node-a");
    const lease = api.leases.get(name);
    assert.ok(lease !== undefined);
    api.leases.set(name, { ...lease, metadata: { ...lease.metadata, resourceVersion: "999" } });
    const renewals = membership.renewals;
    await waitFor(() => membership.renewals >= renewals + 2, 2_000, "renewals after the conflict");
    api.leases.delete(name);
    await waitFor(() => api.leases.has(name), 2_000, "the Lease created again");
  } finally {
    await membership.stop();
    await running;
  }
});

Deno.test("leaseRecord: only node Leases with a renew time", () => {
  assert.equal(leaseRecord({ metadata: { name: "purelb-allocator" }, spec: {} }), undefined);
  assert.equal(leaseRecord({ metadata: { name: "purelb-node-a" }, spec: {} }), undefined);
  assert.deepEqual(
    leaseRecord({
      metadata: { name: "purelb-node-b", annotations: { "purelb.io/subnets": "x,192.0.2.0/24" } },
      spec: { renewTime: "2024-01-01T00:00:00.000000Z" as never, leaseDurationSeconds: 6 },
    }),
    {
      nodeName: "b",
      renewTimeMs: Date.parse("2024-01-01T00:00:00Z"),
      leaseDurationMs: 6_000,
      subnets: ["192.0.2.0/24"],
    },
  );
});

Deno.test("local addresses annotation: canonical, sorted, each once; parse skips junk", () => {
  assert.equal(
    formatLocalAddressesAnnotation([
      "2001:DB8:0::1",
      "192.0.2.50",
      " 192.0.2.7",
      "x",
      "192.0.2.50",
    ]),
    "192.0.2.50,192.0.2.7,2001:db8::1",
  );
  assert.equal(formatLocalAddressesAnnotation([]), "");
  assert.deepEqual(
    [...parseLocalAddressesAnnotation("192.0.2.50, 2001:DB8::1,,x,192.0.2.0/24")],
    ["192.0.2.50", "2001:db8::1"],
  );
  assert.equal(parseLocalAddressesAnnotation("").size, 0);
  const text = formatLocalAddressesAnnotation(["2001:db8::1", "192.0.2.50"]);
  assert.equal(formatLocalAddressesAnnotation(parseLocalAddressesAnnotation(text)), text);
});

Deno.test("membership: no Lease -> no previous local addresses; setLocalAddresses is written at once", async () => {
  const api = new FakeLeases();
  const membership = member(api);
  assert.equal(membership.previousLocalAddresses, undefined, "unknown before the Lease is read");
  const running = membership.run();
  const name = nodeLeaseName("node-a");
  try {
    await waitFor(() => membership.renewals >= 1, 2_000, "first renewal");
    assert.deepEqual([...membership.previousLocalAddresses ?? ["unset"]], []);
    assert.equal(
      api.leases.get(name)?.metadata?.annotations?.["purelb.io/local-addresses"],
      undefined,
      "not written before it is set",
    );
    membership.setLocalAddresses(["192.0.2.50", "2001:db8:1::5"]);
    await waitFor(
      () =>
        api.leases.get(name)?.metadata?.annotations?.["purelb.io/local-addresses"] ===
          "192.0.2.50,2001:db8:1::5",
      90,
      "the local addresses",
      5,
    );
  } finally {
    await membership.stop();
    await running;
  }
});

Deno.test("membership: reads what a previous run recorded and keeps it until told otherwise", async () => {
  const api = new FakeLeases();
  const name = nodeLeaseName("node-a");
  api.leases.set(name, {
    metadata: {
      name,
      resourceVersion: "1",
      annotations: { "purelb.io/local-addresses": "192.0.2.230,2001:db8:1::230" },
    },
    spec: { holderIdentity: "node-a", leaseDurationSeconds: 1 },
  });
  const membership = member(api);
  const running = membership.run();
  const annotation = () =>
    api.leases.get(name)?.metadata?.annotations?.["purelb.io/local-addresses"];
  try {
    await waitFor(() => membership.renewals >= 2, 2_000, "two renewals");
    assert.deepEqual([...membership.previousLocalAddresses ?? []].sort(), [
      "192.0.2.230",
      "2001:db8:1::230",
    ]);
    assert.equal(annotation(), "192.0.2.230,2001:db8:1::230", "kept while nothing is set");
    membership.setLocalAddresses([]);
    await waitFor(() => annotation() === "", 90, "the record cleared", 5);
    // Read again after a conflict: still what the previous run left, not our own writes.
    const lease = api.leases.get(name);
    assert.ok(lease !== undefined);
    api.leases.set(name, { ...lease, metadata: { ...lease.metadata, resourceVersion: "999" } });
    const renewals = membership.renewals;
    await waitFor(() => membership.renewals >= renewals + 2, 2_000, "renewals after the conflict");
    assert.equal(membership.previousLocalAddresses?.size, 2);
  } finally {
    await membership.stop();
    await running;
  }
});

Deno.test("membership: the addresses carried go into purelb.io/announcing at once; other annotations are kept", async () => {
  const api = new FakeLeases();
  const membership = new NodeMembership({
    api: api as unknown as LeaseClient,
    namespace: "purelb-system",
    nodeName: "node-a",
    leaseDurationMs: 6_000,
    renewMs: 5_000,
  });
  membership.setSubnets(["192.0.2.11/24"]);
  membership.setLocalAddresses(["192.0.2.50"]);
  const running = membership.run();
  const annotations = () => api.leases.get(nodeLeaseName("node-a"))?.metadata?.annotations ?? {};
  try {
    await waitFor(() => api.writes >= 1, 2_000, "the Lease created");
    assert.equal(annotations()["purelb.io/announcing"], undefined, "not set: not written");
    membership.setAnnouncing([{ interfaceName: "eth0", address: "192.0.2.50" }]);
    // Well before the next renewal (5 s).
    await waitFor(
      () => annotations()["purelb.io/announcing"] === "eth0,192.0.2.50",
      1_000,
      "the announcing entry",
    );
    assert.equal(annotations()["purelb.io/subnets"], "192.0.2.0/24");
    assert.equal(annotations()["purelb.io/local-addresses"], "192.0.2.50");
    const writes = api.writes;
    membership.setAnnouncing([{ interfaceName: "eth0", address: "192.0.2.50" }]);
    membership.setAnnouncing([]);
    await waitFor(() => annotations()["purelb.io/announcing"] === "", 1_000, "emptied");
    assert.equal(api.writes, writes + 1, "one write for the change, none for the repeat");
  } finally {
    await membership.stop();
    await running;
  }
});

Deno.test("membership: a change asked for while a Lease write is under way is written right after it", async () => {
  class SlowLeases extends FakeLeases {
    gate: Promise<void> = Promise.resolve();
    started = 0;
    override async replaceNamespacedLease(
      param: { name: string; namespace: string; body: V1Lease },
    ): Promise<V1Lease> {
      this.started++;
      await this.gate;
      return super.replaceNamespacedLease(param);
    }
  }
  const api = new SlowLeases();
  const membership = new NodeMembership({
    api: api as unknown as LeaseClient,
    namespace: "purelb-system",
    nodeName: "node-a",
    leaseDurationMs: 6_000,
    renewMs: 5_000,
  });
  const subnets = () =>
    api.leases.get(nodeLeaseName("node-a"))?.metadata?.annotations?.["purelb.io/subnets"];
  membership.setSubnets(["192.0.2.11/24"]);
  const running = membership.run();
  try {
    await waitFor(() => api.writes >= 1, 2_000, "the Lease created");
    let open = () => {};
    api.gate = new Promise((resolve) => open = resolve);
    membership.setSubnets(["198.51.100.11/24"]);
    await waitFor(() => api.started >= 1, 1_000, "a write under way");
    membership.setSubnets(["203.0.113.11/24"]);
    open();
    // Well before the next renewal (5 s).
    await waitFor(() => subnets() === "203.0.113.0/24", 1_000, "the later change written");
  } finally {
    await membership.stop();
    await running;
  }
});
