/**
 * End-to-end with Netbox faults a real NetBox cannot be made to produce (hung requests, server
 * errors, login pages, misshapen JSON): the real allocator process, as its own service account,
 * against the real API server and the Netbox test server (tests/netbox). Failures become events,
 * conditions and retries. The behaviour against a real NetBox is in netbox_real_e2e_test.ts.
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

async function condition(api: TestApi, group: string, type: string) {
  const status = (await api.group(group)).status as
    | { conditions?: { type: string; status: string; reason: string; message: string }[] }
    | undefined;
  return status?.conditions?.find((c) => c.type === type);
}

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
              /\(500\) and a text\/html page/,
              /redirect \(302\) to \/login\/\?next=/,
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
