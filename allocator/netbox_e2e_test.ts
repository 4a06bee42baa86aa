/**
 * End-to-end with Netbox: the real allocator process, as its own service account, against the
 * real API server and the Netbox test server (tests/netbox). Addresses go reserved -> active
 * when a Service gets one and back when it lets go; a restart recognises them; Netbox failures
 * become events, conditions and retries.
 */

import assert from "node:assert/strict";
import { clusterTest } from "../tests/cluster.ts";
import { type TestApi, withAllocator } from "../tests/allocator.ts";
import { NetboxTestServer } from "../tests/netbox/mod.ts";
import { waitFor } from "../tests/wait.ts";

const GROUP_ANNOTATION = { "purelb.io/service-group": "nb" };

async function withNetbox(body: (netbox: NetboxTestServer) => Promise<void>): Promise<void> {
  const netbox = await NetboxTestServer.start({ tenants: ["lab", "other"], pageSize: 2 });
  try {
    await body(netbox);
  } finally {
    await netbox.close();
  }
}

function statusOf(netbox: NetboxTestServer, address: string): string | undefined {
  return netbox.find(address)?.status;
}

async function waitForStatus(netbox: NetboxTestServer, address: string, status: string) {
  await waitFor(
    () => statusOf(netbox, address) === status,
    15_000,
    `${address} to be ${status} in Netbox (it is ${statusOf(netbox, address)})`,
  );
}

async function condition(api: TestApi, group: string, type: string) {
  const status = (await api.group(group)).status as
    | { conditions?: { type: string; status: string; reason: string; message: string }[] }
    | undefined;
  return status?.conditions?.find((c) => c.type === type);
}

clusterTest(
  "netbox: addresses come from Netbox, go back on delete, and are recognised after a restart",
  async (c) => {
    await withNetbox(async (netbox) => {
      netbox.addRange("192.0.2.10/24", 2, { tenant: "lab", status: "reserved" });
      netbox.add("192.0.2.5/24", { tenant: "other", status: "reserved" });
      netbox.add("192.0.2.6/24", { tenant: "lab", status: "deprecated" });
      netbox.add("2001:db8::10/64", { tenant: "lab", status: "reserved" });
      await withAllocator(
        c,
        "nb-e2e",
        {},
        async ({ api, allocator, spawn }) => {
          await api.createGroup("nb", { netbox: { url: netbox.url, tenant: "lab" } });
          await api.createService("a", {}, GROUP_ANNOTATION);
          await api.waitForIngress("a", ["192.0.2.10"]);
          await api.waitForEvent("a", "AddressAssigned", /192\.0\.2\.10 from ServiceGroup nb/);
          assert.equal(statusOf(netbox, "192.0.2.10"), "active");
          assert.match(netbox.find("192.0.2.10")?.description ?? "", /^purelb:\S+ \S+\/a$/);

          await api.createService("dual", {
            ipFamilyPolicy: "RequireDualStack",
            ipFamilies: ["IPv4", "IPv6"],
          }, GROUP_ANNOTATION);
          await api.waitForIngress("dual", ["192.0.2.11", "2001:db8::10"]);

          await api.createService("shared-80", {}, {
            ...GROUP_ANNOTATION,
            "purelb.io/allow-shared-ip": "web",
          });
          await api.waitForEvent("shared-80", "AllocationFailed", /no reserved IPv4 address left/);
          assert.equal(statusOf(netbox, "192.0.2.5"), "reserved", "another tenant's is untouched");
          assert.equal(statusOf(netbox, "192.0.2.6"), "deprecated");

          await waitFor(
            async () => {
              const valid = await condition(api, "nb", "Valid");
              const available = await condition(api, "nb", "NetboxAvailable");
              const usage = (await api.group("nb")).status?.["ipv4"] as
                | { inUse?: number }
                | undefined;
              return valid?.status === "True" && available?.status === "True" && usage?.inUse === 2;
            },
            15_000,
            "group nb: Valid, NetboxAvailable and 2 IPv4 in use",
          );

          // Deleting a Service gives its address back; the waiting one gets it.
          await api.core.deleteNamespacedService({ namespace: api.namespace, name: "a" });
          await api.waitForIngress("shared-80", ["192.0.2.10"]);
          await api.createService("shared-443", { ports: [{ port: 443, protocol: "TCP" }] }, {
            ...GROUP_ANNOTATION,
            "purelb.io/allow-shared-ip": "web",
          });
          await api.waitForIngress("shared-443", ["192.0.2.10"]);

          // Restart: what is held is recognised, not taken again; an address a crash left active
          // (marked with this group) goes back.
          await allocator.stop();
          const uid = ((await api.group("nb")) as { metadata?: { uid?: string } }).metadata?.uid;
          netbox.add("192.0.2.20/24", {
            tenant: "lab",
            status: "active",
            description: `purelb:${uid} ${api.namespace}/ghost`,
          });
          netbox.add("192.0.2.21/24", { tenant: "lab", status: "active", description: "router" });
          const patchesBefore = netbox.requests.filter((r) => r.method === "PATCH").length;
          const restarted = spawn();
          await restarted.port();
          await waitForStatus(netbox, "192.0.2.20", "reserved");
          assert.equal(statusOf(netbox, "192.0.2.21"), "active", "not ours: left alone");
          for (const address of ["192.0.2.10", "192.0.2.11", "2001:db8::10"]) {
            assert.equal(statusOf(netbox, address), "active", `${address} is still active`);
          }
          const patches = netbox.requests.filter((r) => r.method === "PATCH").slice(patchesBefore);
          assert.deepEqual(patches.map((r) => r.body), [{ status: "reserved", description: "" }]);
          assert.deepEqual(await api.ingress("shared-80"), ["192.0.2.10"]);
          assert.deepEqual(await api.ingress("dual"), ["192.0.2.11", "2001:db8::10"]);

          // After the restart, the last holder's delete still gives the address back.
          await api.core.deleteNamespacedService({ namespace: api.namespace, name: "shared-80" });
          await api.core.deleteNamespacedService({ namespace: api.namespace, name: "shared-443" });
          await api.core.deleteNamespacedService({ namespace: api.namespace, name: "dual" });
          for (const address of ["192.0.2.10", "192.0.2.11", "2001:db8::10"]) {
            await waitForStatus(netbox, address, "reserved");
          }
          assert.equal(netbox.find("192.0.2.10")?.description, "");
        },
        [],
        { NETBOX_USER_TOKEN: netbox.token },
      );
    });
  },
);

clusterTest(
  "netbox: failures become events and a condition with the reason, and are retried",
  async (c) => {
    await withNetbox(async (netbox) => {
      netbox.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
      await withAllocator(
        c,
        "nb-fail",
        {},
        async ({ api, allocator }) => {
          await api.createGroup("nb", { netbox: { url: netbox.url, tenant: "lab" } });
          // The group's first comparison with Netbox is done before the faults are queued.
          await waitFor(
            async () => (await condition(api, "nb", "NetboxAvailable"))?.status === "True",
            15_000,
            "NetboxAvailable True",
          );
          const get = { method: "GET" };
          netbox.failNext({ kind: "status", status: 500 }, 1, get);
          netbox.failNext({ kind: "redirect" }, 1, get);
          netbox.failNext({ kind: "html" }, 1, get);
          netbox.failNext({ kind: "timeout" }, 1, get);
          netbox.failNext({ kind: "wrongShape" }, 1, get);
          await api.createService("svc", {}, GROUP_ANNOTATION);
          await api.waitForIngress("svc", ["192.0.2.10"]);
          const failures = (await api.events("svc", "AllocationFailed")).join("\n");
          for (
            const expected of [
              /\(500\): Server Error/,
              /redirect \(302\) to http:\/\/127\.0\.0\.1:\d+\/login\//,
              /text\/html.* instead of JSON/,
              /did not answer .* within 500 ms/,
              /not what the API returns/,
            ]
          ) {
            assert.match(failures, expected);
          }
          const metrics = await (await fetch(`http://127.0.0.1:${await allocator.port()}/metrics`))
            .text();
          for (const failure of ["serverError", "redirect", "contentType", "timeout", "body"]) {
            assert.match(
              metrics,
              new RegExp(`purelb_allocator_netbox_failures_total\\{failure="${failure}"\\} 1`),
            );
          }
          await waitFor(
            async () => (await condition(api, "nb", "NetboxAvailable"))?.status === "True",
            15_000,
            "NetboxAvailable back to True",
          );
        },
        ["--netbox-timeout", "0.5"],
        { NETBOX_USER_TOKEN: netbox.token },
      );
    });
  },
);

clusterTest("netbox: without a token the group says how to set one", async (c) => {
  await withNetbox(async (netbox) => {
    netbox.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
    await withAllocator(c, "nb-token", {}, async ({ api }) => {
      await api.createGroup("nb", { netbox: { url: netbox.url, tenant: "lab" } });
      await api.createService("svc", {}, GROUP_ANNOTATION);
      await api.waitForEvent("svc", "AllocationFailed", /NETBOX_USER_TOKEN is not set/);
      await waitFor(
        async () => {
          const available = await condition(api, "nb", "NetboxAvailable");
          return available?.status === "False" && available.reason === "NoToken" &&
            /netbox-client/.test(available.message);
        },
        15_000,
        "NetboxAvailable False with reason NoToken",
      );
      assert.equal(netbox.requests.length, 0, "nothing was sent to Netbox");
      assert.deepEqual(await api.ingress("svc"), []);
    });
  });
});
