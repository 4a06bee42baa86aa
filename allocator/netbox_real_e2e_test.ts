/**
 * End-to-end with a real NetBox (tests/netbox/real.ts: NetBox from PyPI, PostgreSQL and Redis on
 * loopback): the real allocator process, as its own service account, against the real API
 * server. Addresses go reserved -> active when a Service gets one and back when it lets go; a
 * restart recognises them; and no address is ever held by two Services, whatever else writes to
 * NetBox and however the URL is spelled.
 */

import assert from "node:assert/strict";
import { type TestApi, withAllocator } from "../tests/allocator.ts";
import { realNetboxClusterTest } from "../tests/netbox/e2e.ts";
import type { NetboxScratch, SeenRecord } from "../tests/netbox/seed.ts";
import { waitFor } from "../tests/wait.ts";

const inGroup = (group: string) => ({ "purelb.io/service-group": group });

async function waitForStatus(
  scratch: NetboxScratch,
  tenant: string,
  address: string,
  status: string,
  timeoutMs = 30_000,
) {
  let seen: SeenRecord | undefined;
  await waitFor(
    async () => {
      seen = (await scratch.byAddress(tenant)).get(address);
      return seen?.status === status;
    },
    timeoutMs,
    `${address} to be ${status} in NetBox (it is ${seen?.status})`,
    200,
  );
}

async function condition(api: TestApi, group: string, type: string) {
  const status = (await api.group(group)).status as
    | { conditions?: { type: string; status: string; reason: string; message: string }[] }
    | undefined;
  return status?.conditions?.find((c) => c.type === type);
}

/** Ingress of every Service of the namespace, by name. */
async function ingressByService(api: TestApi): Promise<Map<string, string[]>> {
  const list = await api.core.listNamespacedService({ namespace: api.namespace });
  return new Map(
    list.items.map((svc) => [
      svc.metadata?.name ?? "",
      (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? ""),
    ]),
  );
}

realNetboxClusterTest(
  "real netbox: addresses from NetBox with a v2 token, dual stack, exhaustion, give back, restart sweep",
  "basic",
  async ({ cluster, access, scratch }) => {
    const lab = await scratch.tenant("lab");
    const other = await scratch.tenant("other");
    const vrf = await scratch.vrf("basic");
    await scratch.addRange("192.0.2.10/24", 2, { tenant: lab, status: "reserved", vrf });
    await scratch.addRange("192.0.2.5/24", 1, { tenant: other, status: "reserved", vrf });
    await scratch.addRange("192.0.2.6/24", 1, { tenant: lab, status: "deprecated", vrf });
    await scratch.addRange("2001:db8::10/64", 1, { tenant: lab, status: "reserved", vrf });
    await withAllocator(
      cluster,
      "nb-real",
      {},
      async ({ api, allocator, spawn }) => {
        await api.createGroup("nb", { netbox: { url: access.url, tenant: lab } });
        await api.createService("a", {}, inGroup("nb"));
        await api.waitForIngress("a", ["192.0.2.10"], 30_000);
        await api.waitForEvent("a", "AddressAssigned", /192\.0\.2\.10 from ServiceGroup nb/);
        let records = await scratch.byAddress(lab);
        assert.equal(records.get("192.0.2.10")?.status, "active");
        assert.match(records.get("192.0.2.10")?.description ?? "", /^purelb:\S+ \S+\/a$/);

        await api.createService("dual", {
          ipFamilyPolicy: "RequireDualStack",
          ipFamilies: ["IPv4", "IPv6"],
        }, inGroup("nb"));
        await api.waitForIngress("dual", ["192.0.2.11", "2001:db8::10"], 30_000);

        await api.createService("waiting", {}, inGroup("nb"));
        await api.waitForEvent(
          "waiting",
          "AllocationFailed",
          /no reserved IPv4 address left/,
          30_000,
        );
        assert.equal((await scratch.byAddress(other)).get("192.0.2.5")?.status, "reserved");
        assert.equal((await scratch.byAddress(lab)).get("192.0.2.6")?.status, "deprecated");
        await waitFor(
          async () => (await condition(api, "nb", "NetboxAvailable"))?.status === "True",
          30_000,
          "NetboxAvailable True",
        );

        // Deleting a Service gives its address back; the waiting one gets it.
        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "a" });
        await api.waitForIngress("waiting", ["192.0.2.10"], 60_000);

        // Restart: what is held is recognised, not taken again; what a crash left active
        // (marked with this group) goes back; someone else's active address is left alone.
        await allocator.stop();
        const uid = ((await api.group("nb")) as { metadata?: { uid?: string } }).metadata?.uid;
        await scratch.addRange("192.0.2.20/24", 1, {
          tenant: lab,
          status: "active",
          vrf,
          description: `purelb:${uid} ${api.namespace}/ghost`,
        });
        await scratch.addRange("192.0.2.21/24", 1, {
          tenant: lab,
          status: "active",
          vrf,
          description: "router",
        });
        const restarted = spawn();
        await restarted.port();
        await waitForStatus(scratch, lab, "192.0.2.20", "reserved");
        records = await scratch.byAddress(lab);
        assert.equal(records.get("192.0.2.21")?.status, "active", "not ours: left alone");
        for (const address of ["192.0.2.10", "192.0.2.11", "2001:db8::10"]) {
          assert.equal(records.get(address)?.status, "active", `${address} is still active`);
        }
        assert.deepEqual(await api.ingress("waiting"), ["192.0.2.10"]);
        assert.deepEqual(await api.ingress("dual"), ["192.0.2.11", "2001:db8::10"]);

        await api.deleteAllServices();
        for (const address of ["192.0.2.10", "192.0.2.11", "2001:db8::10"]) {
          await waitForStatus(scratch, lab, address, "reserved");
        }
        assert.equal((await scratch.byAddress(lab)).get("192.0.2.10")?.description, "");
      },
      [],
      { NETBOX_USER_TOKEN: access.tokenV2 },
    );
  },
);

realNetboxClusterTest(
  "real netbox: two spellings of one URL, 2 x 50 Services at once and a second writer: never one address for two Services",
  "race",
  async ({ cluster, access, scratch }) => {
    const tenant = await scratch.tenant("shared");
    const vrf = await scratch.vrf("race");
    const total = 120;
    await scratch.addRange("198.51.100.1/24", total, { tenant, status: "reserved", vrf });
    const perGroup = 50;
    await withAllocator(
      cluster,
      "nb-race",
      {},
      async ({ api }) => {
        const slashless = access.url.replace(/\/$/, "");
        await api.createGroup("ra", { netbox: { url: access.url, tenant } });
        await api.createGroup("rb", { netbox: { url: slashless, tenant } });
        await waitFor(
          async () =>
            (await condition(api, "ra", "Valid"))?.status === "True" &&
            (await condition(api, "rb", "Valid"))?.status === "True",
          30_000,
          "both groups valid",
        );

        // A second writer (another cluster sharing the tenant, careful as we are: If-Match)
        // activates reserved addresses while the Services are being created.
        const writerTook: string[] = [];
        const writer = (async () => {
          for (let round = 0; round < 10; round++) {
            const reserved = (await scratch.records(tenant)).filter((r) => r.status === "reserved");
            const pick = reserved[Math.floor(Math.random() * reserved.length)];
            if (pick === undefined) return;
            const { record, etag } = await scratch.get(pick.id);
            if (record.status !== "reserved") continue;
            const status = await scratch.patch(
              pick.id,
              { status: "active", description: `other-cluster ${round}` },
              etag,
            );
            if (status === 200) writerTook.push(record.address);
          }
        })();
        const started = performance.now();
        const names = Array.from({ length: perGroup }, (_, i) => i);
        await Promise.all([
          ...names.map((i) => api.createService(`ra${i}`, {}, inGroup("ra"))),
          ...names.map((i) => api.createService(`rb${i}`, {}, inGroup("rb"))),
          writer,
        ]);
        let ingress = new Map<string, string[]>();
        await waitFor(
          async () => {
            ingress = await ingressByService(api);
            return [...ingress.values()].filter((ips) => ips.length === 1).length === 2 * perGroup;
          },
          120_000,
          `all ${2 * perGroup} Services addressed`,
          200,
        );
        console.error(
          `race: ${2 * perGroup} Services addressed in ${
            ((performance.now() - started) / 1000).toFixed(1)
          } s; the second writer took ${writerTook.length}`,
        );
        const holders = new Map<string, string[]>();
        for (const [name, ips] of ingress) {
          for (const ip of ips) holders.set(ip, [...(holders.get(ip) ?? []), name]);
        }
        const doubles = [...holders].filter(([, names]) => names.length > 1);
        assert.deepEqual(doubles, [], "no address on two Services");
        assert.ok(writerTook.length > 0, "the second writer got some addresses");

        const records = await scratch.byAddress(tenant);
        for (const [ip, [name]] of holders) {
          const record = records.get(ip);
          assert.equal(record?.status, "active", `${ip} active`);
          assert.match(
            record?.description ?? "",
            new RegExp(`^purelb:\\S+ ${api.namespace}/${name}$`),
            `${ip}'s description names ${name}`,
          );
        }
        for (const ip of writerTook) {
          assert.equal(holders.get(ip), undefined, `the writer's ${ip} is on no Service`);
          assert.match(records.get(ip)?.description ?? "", /^other-cluster \d+$/);
        }
        // A write whose answer was lost may land later; the allocator gives such strays back.
        let activeByNobody: string[] = [];
        await waitFor(
          async () => {
            activeByNobody = [...(await scratch.byAddress(tenant)).values()].filter((r) =>
              r.status === "active" && !holders.has(r.address) && !writerTook.includes(r.address)
            ).map((r) => r.address);
            return activeByNobody.length === 0;
          },
          60_000,
          "nothing active by nobody",
          500,
        ).catch((error) => {
          throw new Error(`${error.message}: ${activeByNobody}`);
        });

        await api.deleteAllServices();
        await waitFor(
          async () => {
            const now = await scratch.records(tenant);
            return now.filter((r) => r.status === "active").length === writerTook.length;
          },
          120_000,
          "every Service's address reserved again",
          250,
        );
        const after = await scratch.byAddress(tenant);
        for (const ip of writerTook) assert.equal(after.get(ip)?.status, "active");
      },
      ["--workers", "16"],
      { NETBOX_USER_TOKEN: access.tokenV1 },
    );
  },
);

realNetboxClusterTest(
  "real netbox: two groups whose NetBoxes list the same address: one Service gets it, each goes back where it came from",
  "overlap",
  async ({ cluster, access, scratch }) => {
    // Two VRFs stand for two NetBoxes: the same addresses, each with its own tenant.
    const ta = await scratch.tenant("a");
    const tb = await scratch.tenant("b");
    const va = await scratch.vrf("a");
    const vb = await scratch.vrf("b");
    await scratch.addRange("203.0.113.10/24", 2, { tenant: ta, status: "reserved", vrf: va });
    await scratch.addRange("203.0.113.10/24", 2, { tenant: tb, status: "reserved", vrf: vb });
    await withAllocator(
      cluster,
      "nb-overlap",
      {},
      async ({ api }) => {
        await api.createGroup("ga", { netbox: { url: access.url, tenant: ta } });
        await api.createGroup("gb", { netbox: { url: access.url, tenant: tb } });
        await api.createService("a", {}, inGroup("ga"));
        await api.waitForIngress("a", ["203.0.113.10"], 30_000);
        await api.createService("b", {}, inGroup("gb"));
        await api.waitForIngress("b", ["203.0.113.11"], 30_000);
        const inA = await scratch.byAddress(ta);
        const inB = await scratch.byAddress(tb);
        assert.equal(inA.get("203.0.113.10")?.status, "active");
        assert.equal(inA.get("203.0.113.11")?.status, "reserved");
        assert.equal(inB.get("203.0.113.10")?.status, "reserved", "held through ga: not taken");
        assert.equal(inB.get("203.0.113.11")?.status, "active");

        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "a" });
        await waitForStatus(scratch, ta, "203.0.113.10", "reserved");
        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "b" });
        await waitForStatus(scratch, tb, "203.0.113.11", "reserved");
        for (const tenant of [ta, tb]) {
          const records = await scratch.records(tenant);
          assert.deepEqual(records.map((r) => r.status), ["reserved", "reserved"], tenant);
        }
      },
      [],
      { NETBOX_USER_TOKEN: access.tokenV2 },
    );
  },
);

realNetboxClusterTest(
  "real netbox: a wrong URL and a wrong token give stable events with the hint",
  "faults",
  async ({ cluster, access, scratch }) => {
    const lab = await scratch.tenant("lab");
    await withAllocator(
      cluster,
      "nb-real-fault",
      {},
      async ({ api }) => {
        await api.createGroup("wrong-url", {
          netbox: { url: `${access.url}netbox/`, tenant: lab },
        });
        await api.createService("svc", {}, inGroup("wrong-url"));
        await api.waitForEvent(
          "svc",
          "AllocationFailed",
          /404 and a text\/html page, not the API: check spec\.netbox\.url/,
          30_000,
        );
        await waitFor(
          async () => {
            const available = await condition(api, "wrong-url", "NetboxAvailable");
            return available?.status === "False" && available.reason === "NotFound";
          },
          30_000,
          "NetboxAvailable False with reason NotFound",
        );
        // Retries repeat one message: the Event is counted up, not written anew.
        const list = await api.core.listNamespacedEvent({
          namespace: api.namespace,
          fieldSelector: "involvedObject.name=svc,reason=AllocationFailed",
        });
        assert.equal(new Set(list.items.map((e) => e.message)).size, 1);
      },
      [],
      { NETBOX_USER_TOKEN: access.tokenV1 },
    );
    await withAllocator(
      cluster,
      "nb-real-token",
      {},
      async ({ api }) => {
        await api.createGroup("nb", { netbox: { url: access.url, tenant: lab } });
        await api.createService("svc", {}, inGroup("nb"));
        await api.waitForEvent("svc", "AllocationFailed", /\(403\): Invalid v2 token/, 30_000);
      },
      [],
      { NETBOX_USER_TOKEN: "nbt_wrongkey1234.wrongsecret" },
    );
  },
);
