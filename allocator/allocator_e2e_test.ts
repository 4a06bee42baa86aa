/**
 * End-to-end: the real allocator process, as its own service account under the deploy/ RBAC,
 * against the real API server. Each test owns a namespace that holds its ServiceGroups and
 * Services, and deletes its Services at the end (nothing else would).
 */

import assert from "node:assert/strict";
import { clusterTest } from "../tests/cluster.ts";
import { withAllocator } from "../tests/allocator.ts";
import { waitFor } from "../tests/wait.ts";
import { mergePatch } from "../k8s/client.ts";

const V4 = (pool: string, subnet = "192.0.2.0/24") => ({ pool, subnet });
const V6 = (pool: string, subnet = "2001:db8::/64") => ({ pool, subnet });

clusterTest(
  "one-address pool: the second service waits, then gets the freed address",
  async (c) => {
    await withAllocator(
      c,
      "alloc-one",
      { default: { v4pools: [V4("192.0.2.10/32")] } },
      async ({ api, allocator }) => {
        await api.createService("first");
        await api.waitForIngress("first", ["192.0.2.10"]);
        await api.waitForEvent(
          "first",
          "AddressAssigned",
          /192\.0\.2\.10 from ServiceGroup default/,
        );
        const svc = await api.core.readNamespacedService({
          namespace: api.namespace,
          name: "first",
        });
        assert.equal(svc.metadata?.annotations?.["purelb.io/allocated-by"], "PureLB");
        assert.equal(svc.metadata?.annotations?.["purelb.io/allocated-from"], "default");
        assert.deepEqual(
          (svc.status?.loadBalancer?.ingress ?? []).map((i) => ({ ip: i.ip, ipMode: i.ipMode })),
          [{ ip: "192.0.2.10", ipMode: "VIP" }],
        );

        const port = await allocator.port();
        const base = `http://127.0.0.1:${port}`;
        for (const path of ["/healthz", "/readyz"]) {
          const response = await fetch(base + path);
          assert.equal(response.status, 200, `${path}: ${await response.text()}`);
        }
        await waitFor(
          async () => {
            const metrics = await (await fetch(`${base}/metrics`)).text();
            return metrics.includes('purelb_address_pool_size{pool="default"} 1') &&
              metrics.includes('purelb_address_pool_addresses_in_use{pool="default"} 1');
          },
          10_000,
          "pool metrics",
        );

        await api.createService("second");
        await api.waitForEvent("second", "AllocationFailed", /no free IPv4 address/);
        assert.deepEqual(await api.ingress("second"), []);

        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "first" });
        await api.waitForIngress("second", ["192.0.2.10"]);

        // Turning the holder into a ClusterIP service frees the address as well.
        await api.createService("third");
        await api.waitForEvent("third", "AllocationFailed", /no free IPv4 address/);
        await api.core.patchNamespacedService({
          namespace: api.namespace,
          name: "second",
          body: { spec: { type: "ClusterIP" } },
        }, mergePatch());
        await api.waitForIngress("third", ["192.0.2.10"]);
        await api.waitForIngress("second", []);
        const second = await api.core.readNamespacedService({
          namespace: api.namespace,
          name: "second",
        });
        assert.equal(second.metadata?.annotations?.["purelb.io/allocated-by"], undefined);
        await api.waitForEvent("second", "AddressReleased", /192\.0\.2\.10/);
      },
    );
  },
);

clusterTest("dual stack: RequireDualStack waits for both; PreferDualStack grows", async (c) => {
  await withAllocator(
    c,
    "alloc-dual",
    { default: { v4pools: [V4("192.0.2.20-192.0.2.29")] } },
    async ({ api }) => {
      await api.createService("require", {
        ipFamilyPolicy: "RequireDualStack",
        ipFamilies: ["IPv4", "IPv6"],
      });
      await api.createService("prefer", {
        ipFamilyPolicy: "PreferDualStack",
        ipFamilies: ["IPv6", "IPv4"],
      });
      await api.waitForEvent("require", "AllocationFailed", /no IPv6 pool/);
      assert.deepEqual(await api.ingress("require"), [], "never half");
      await api.waitForIngress("prefer", ["192.0.2.20"]);

      await api.replaceGroupSpec("default", {
        local: {
          v4pools: [V4("192.0.2.20-192.0.2.29")],
          v6pools: [V6("2001:db8::20-2001:db8::29")],
        },
      });
      await api.waitForIngress("prefer", ["2001:db8::20", "192.0.2.20"]);
      await api.waitForIngress("require", ["192.0.2.21", "2001:db8::21"]);
    },
  );
});

clusterTest("sharing: allowed with one key and distinct ports, refused otherwise", async (c) => {
  await withAllocator(
    c,
    "alloc-share",
    { default: { v4pools: [V4("192.0.2.30/32")] } },
    async ({ api }) => {
      const key = { "purelb.io/allow-shared-ip": "web" };
      await api.createService("http", {}, key);
      await api.waitForIngress("http", ["192.0.2.30"]);
      await api.createService("https", { ports: [{ port: 443, protocol: "TCP" }] }, key);
      await api.waitForIngress("https", ["192.0.2.30"]);

      await api.createService("same-port", {}, key);
      await api.waitForEvent("same-port", "AllocationFailed", /already uses TCP\/80/);
      // Asking for the shared address itself shows why it is refused.
      const shared = { "purelb.io/addresses": "192.0.2.30" };
      await api.createService("other-key", { ports: [{ port: 8080 }] }, {
        ...shared,
        "purelb.io/allow-shared-ip": "db",
      });
      await api.waitForEvent("other-key", "AllocationFailed", /sharing keys differ/);
      await api.createService("no-key", { ports: [{ port: 8081 }] }, shared);
      await api.waitForEvent("no-key", "AllocationFailed", /has no sharing key/);
      await api.createService("pool-full", { ports: [{ port: 8082 }] });
      await api.waitForEvent("pool-full", "AllocationFailed", /no free IPv4 address/);
      for (const name of ["same-port", "other-key", "no-key", "pool-full"]) {
        assert.deepEqual(await api.ingress(name), [], name);
      }
    },
  );
});

clusterTest("bad requests fail with the reason and never stop the allocator", async (c) => {
  await withAllocator(c, "alloc-bad", {
    default: { v4pools: [V4("192.0.2.40-192.0.2.49")] },
  }, async ({ api }) => {
    await api.createService("outside", {}, { "purelb.io/addresses": "198.51.100.7" });
    await api.waitForEvent("outside", "AllocationFailed", /198\.51\.100\.7 is not in any/);
    await api.createService("garbage", {}, { "purelb.io/addresses": "not-an-ip" });
    await api.waitForEvent("garbage", "AllocationFailed", /"not-an-ip" is not an IP address/);
    await api.createService("unknown-group", {}, { "purelb.io/service-group": "nope" });
    await api.waitForEvent("unknown-group", "AllocationFailed", /ServiceGroup "nope" not found/);
    await api.createService("wrong-family", { ipFamilies: ["IPv4"] }, {
      "purelb.io/addresses": "2001:db8::1",
    });
    await api.waitForEvent("wrong-family", "AllocationFailed", /is IPv6/);
    await api.createService("deprecated", { loadBalancerIP: "192.0.2.45" });
    await api.waitForIngress("deprecated", ["192.0.2.45"]);
    await api.waitForEvent("deprecated", "DeprecationWarning", /loadBalancerIP is deprecated/);
    await api.createService("fine");
    await api.waitForIngress("fine", ["192.0.2.40"]);
    // Fixing the annotation is picked up.
    await api.core.patchNamespacedService({
      namespace: api.namespace,
      name: "garbage",
      body: { metadata: { annotations: { "purelb.io/addresses": "192.0.2.47" } } },
    }, mergePatch());
    await api.waitForIngress("garbage", ["192.0.2.47"]);
  });
});

clusterTest("a group edited to be invalid is marked so; other groups keep working", async (c) => {
  await withAllocator(c, "alloc-groups", {
    default: { v4pools: [V4("192.0.2.50-192.0.2.59")] },
    other: { v4pools: [V4("198.51.100.1-198.51.100.9", "198.51.100.0/24")] },
  }, async ({ api }) => {
    await waitFor(
      async () => {
        const sg = await api.group("default");
        const conditions = (sg.status?.conditions ?? []) as { type: string; status: string }[];
        return conditions.some((x) => x.type === "Valid" && x.status === "True");
      },
      15_000,
      "default to be Valid",
    );
    await api.createService("a");
    await api.waitForIngress("a", ["192.0.2.50"]);

    // Schema-valid, semantically wrong: the pool is outside its subnet.
    await api.replaceGroupSpec("default", { local: { v4pools: [V4("203.0.113.1-203.0.113.9")] } });
    await waitFor(
      async () => {
        const sg = await api.group("default");
        const conditions = (sg.status?.conditions ?? []) as {
          type: string;
          status: string;
          message: string;
        }[];
        return conditions.some((x) =>
          x.type === "Valid" && x.status === "False" && /v4pools\[0\]/.test(x.message)
        );
      },
      15_000,
      "default to be marked invalid naming the field",
    );
    const events = await api.core.listNamespacedEvent({
      namespace: api.namespace,
      fieldSelector: "involvedObject.name=default,reason=ParseFailed",
    });
    assert.ok(events.items.length >= 1, "ParseFailed event on the group");

    await api.createService("b", {}, { "purelb.io/service-group": "other" });
    await api.waitForIngress("b", ["198.51.100.1"]);
    await api.createService("c");
    await api.waitForEvent("c", "AllocationFailed", /"default" is invalid/);
    assert.deepEqual(await api.ingress("a"), ["192.0.2.50"], "existing allocation kept");
  });
});

clusterTest("class filtering: another class is ignored completely", async (c) => {
  await withAllocator(
    c,
    "alloc-class",
    { default: { v4pools: [V4("192.0.2.60/31")] } },
    async ({ api }) => {
      await api.createService("foreign", { loadBalancerClass: "example.com/other" });
      await api.createService("ours", { loadBalancerClass: "purelb.io/purelb" });
      await api.waitForIngress("ours", ["192.0.2.60"]);
      await api.createService("classless");
      await api.waitForIngress("classless", ["192.0.2.61"]);
      assert.deepEqual(await api.ingress("foreign"), []);
      const events = await api.core.listNamespacedEvent({
        namespace: api.namespace,
        fieldSelector: "involvedObject.name=foreign",
      });
      assert.deepEqual(events.items, []);
    },
  );
});

clusterTest("restart: existing allocations are registered first and never move", async (c) => {
  await withAllocator(c, "alloc-restart", {
    default: { v4pools: [V4("192.0.2.70-192.0.2.79")] },
  }, async ({ api, allocator, namespace, spawn }) => {
    for (const name of ["a", "b", "c"]) {
      await api.createService(name);
      await waitFor(async () => (await api.ingress(name)).length === 1, 15_000, `${name} address`);
    }
    assert.deepEqual(await api.ingress("c"), ["192.0.2.72"]);
    await api.core.deleteNamespacedService({ namespace, name: "a" });
    await allocator.kill();
    await api.createService("d");
    const restarted = spawn();
    await api.waitForIngress("d", ["192.0.2.70"]);
    assert.deepEqual(await api.ingress("b"), ["192.0.2.71"]);
    assert.deepEqual(await api.ingress("c"), ["192.0.2.72"]);
    assert.match(restarted.logs(), /2 existing allocations registered/);
  });
});
