/**
 * End to end: namespace rules of ServiceGroups (README "Tenancy: who may use a ServiceGroup")
 * with the real allocator process under its deploy/ RBAC, against the real API server. Tenants
 * are namespaces of their own; the ServiceGroups live in the allocator's namespace.
 */

import assert from "node:assert/strict";
import { clusterTest, type TestCluster } from "../tests/cluster.ts";
import { type AllocatorProcess, TestApi, withAllocator } from "../tests/allocator.ts";
import { waitFor } from "../tests/wait.ts";
import { mergePatch } from "../k8s/client.ts";

const DEFAULT = { v4pools: [{ pool: "192.0.2.60-192.0.2.63", subnet: "192.0.2.0/24" }] };
const POOL_A = { v4pools: [{ pool: "198.51.100.60-198.51.100.63", subnet: "198.51.100.0/24" }] };
const POOL_B1 = { v4pools: [{ pool: "203.0.113.60/32", subnet: "203.0.113.0/24" }] };
const POOL_B2 = { v4pools: [{ pool: "203.0.113.61/32", subnet: "203.0.113.0/24" }] };
const POOL_C1 = { v4pools: [{ pool: "203.0.113.62/32", subnet: "203.0.113.0/24" }] };
const POOL_C2 = { v4pools: [{ pool: "203.0.113.63/32", subnet: "203.0.113.0/24" }] };

const ELECTION = [
  "--leader-election",
  "on",
  "--lease-duration",
  "3",
  "--renew-deadline",
  "2",
  "--retry-period",
  "0.5",
];

/** A namespace with its own API helper; its Services are deleted at the end. */
async function tenants(
  c: TestCluster,
  prefixes: readonly string[],
  body: (apis: TestApi[]) => Promise<void>,
): Promise<void> {
  const apis: TestApi[] = [];
  try {
    for (const prefix of prefixes) apis.push(new TestApi(c, await c.createNamespace(prefix)));
    await body(apis);
  } finally {
    for (const api of apis) {
      await api.deleteAllServices();
      api.close();
    }
  }
}

async function outOfScope(api: TestApi, group: string): Promise<unknown> {
  return (await api.group(group)).status?.["outOfScope"];
}

async function waitForOutOfScope(api: TestApi, group: string, count: number): Promise<void> {
  await waitFor(
    async () => await outOfScope(api, group) === count,
    15_000,
    `ServiceGroup ${group} to count ${count} out of scope`,
  );
}

function isLeading(p: AllocatorProcess): boolean {
  const became = p.logs().lastIndexOf("became leader");
  return became >= 0 && p.logs().lastIndexOf("lost leadership") < became;
}

async function leaderOf(replicas: readonly AllocatorProcess[]): Promise<AllocatorProcess> {
  let leader: AllocatorProcess | undefined;
  await waitFor(() => (leader = replicas.find(isLeading)) !== undefined, 15_000, "a leader");
  if (leader === undefined) throw new Error("no leader");
  return leader;
}

clusterTest(
  "tenancy: a fenced group and namespace refuse each other; namespaceDefault",
  async (c) => {
    const prefixes = ["tn-fenced", "tn-shared", "tn-other", "tn-closed"];
    await tenants(c, prefixes, async ([fenced, shared, other, closed]) => {
      if (!fenced || !shared || !other || !closed) throw new Error("four namespaces");
      await withAllocator(c, "tn-groups", {}, async ({ api }) => {
        await api.createGroup("default", { local: DEFAULT });
        await api.createGroup("a", {
          local: POOL_A,
          namespaces: [fenced.namespace],
          enforceNamespaces: true,
        });
        for (const [name, local] of [["b1", POOL_B1], ["b2", POOL_B2]] as const) {
          await api.createGroup(name, {
            local,
            namespaces: [shared.namespace],
            namespaceDefault: true,
          });
        }
        // Two defaults for a fenced namespace.
        await api.createGroup("c1", {
          local: POOL_C1,
          namespaces: [closed.namespace],
          enforceNamespaces: true,
          namespaceDefault: true,
        });
        await api.createGroup("c2", {
          local: POOL_C2,
          namespaces: [closed.namespace],
          namespaceDefault: true,
        });

        // The fenced namespace's unannotated Service gets its group.
        await fenced.createService("plain");
        await fenced.waitForIngress("plain", ["198.51.100.60"]);
        // Another namespace naming the fenced group, or asking for one of its addresses.
        await other.createService("intruder", {}, { "purelb.io/service-group": "a" });
        await other.waitForEvent(
          "intruder",
          "AllocationFailed",
          new RegExp(`ServiceGroup "a" .*not namespace "${other.namespace}"`),
        );
        await other.createService("asks", {}, { "purelb.io/addresses": "198.51.100.61" });
        await other.waitForEvent(
          "asks",
          "AllocationFailed",
          new RegExp(`198\\.51\\.100\\.61: ServiceGroup "a" .*not namespace "${other.namespace}"`),
        );
        // The fenced namespace naming a group that does not serve it.
        await fenced.createService("elsewhere", {}, { "purelb.io/service-group": "default" });
        await fenced.waitForEvent(
          "elsewhere",
          "AllocationFailed",
          new RegExp(`namespace "${fenced.namespace}" is fenced .*not ServiceGroup "default"`),
        );
        // Two defaults for one namespace: a warning naming both, and default's address.
        await shared.createService("web");
        await shared.waitForEvent(
          "web",
          "ConfigurationWarning",
          /ServiceGroups b1, b2 and more than one is marked namespaceDefault \(b1, b2\)/,
        );
        await shared.waitForIngress("web", ["192.0.2.60"]);
        // ...but no address at all when the namespace is fenced.
        await closed.createService("web");
        await closed.waitForEvent("web", "ConfigurationWarning", /ServiceGroups c1, c2 and more/);
        await closed.waitForEvent("web", "AllocationFailed", /the namespace is fenced/);
        // Nothing else changes: another namespace's plain Service gets default's next address.
        await other.createService("plain");
        await other.waitForIngress("plain", ["192.0.2.61"]);

        assert.deepEqual(await other.ingress("intruder"), []);
        assert.deepEqual(await other.ingress("asks"), []);
        assert.deepEqual(await fenced.ingress("elsewhere"), []);
        assert.deepEqual(await closed.ingress("web"), []);
        assert.deepEqual(await fenced.ingress("plain"), ["198.51.100.60"]);
        await waitFor(
          async () => {
            const status = (await api.group("a")).status ?? {};
            return JSON.stringify(status["boundNamespaces"]) ===
                JSON.stringify([fenced.namespace]) && status["outOfScope"] === 0;
          },
          15_000,
          "group a's status to show its namespace",
        );
        // What `kubectl get sg` shows: the printer columns of the CRD.
        const response = await api.connection.fetch(
          `/apis/purelb.io/v1/namespaces/${api.namespace}/servicegroups/a`,
          { headers: { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" } },
        );
        const table = await response.json() as {
          columnDefinitions: { name: string }[];
          rows: { cells: unknown[] }[];
        };
        const cell = (column: string) =>
          table.rows[0]?.cells[table.columnDefinitions.findIndex((d) => d.name === column)];
        assert.match(String(cell("Namespaces")), new RegExp(fenced.namespace));
        assert.equal(cell("Out of scope"), 0);
      });
    });
  },
);

clusterTest(
  "tenancy: an edit keeps what it disallows, re-evaluate moves it; restarts and leader changes keep all",
  async (c) => {
    await tenants(c, ["tn-team", "tn-probe"], async ([team, probe]) => {
      if (!team || !probe) throw new Error("two namespaces");
      await withAllocator(c, "tn-edit", {}, async ({ api, allocator, spawn }) => {
        await api.createGroup("default", { local: DEFAULT });
        await api.createGroup("a", {
          local: POOL_A,
          namespaces: [team.namespace],
          enforceNamespaces: true,
        });
        await team.createService("web");
        await team.waitForIngress("web", ["198.51.100.60"]);
        await team.createService("db");
        await team.waitForIngress("db", ["198.51.100.61"]);

        // The namespace leaves the group: both keep their addresses, are warned and counted.
        await api.replaceGroupSpec("a", {
          local: POOL_A,
          namespaces: ["somebody-else"],
          enforceNamespaces: true,
        });
        for (const name of ["web", "db"]) {
          await team.waitForEvent(
            name,
            "ConfigurationWarning",
            /from ServiceGroup "a", although the namespace rules would not give it now/,
          );
        }
        await waitForOutOfScope(api, "a", 2);
        assert.deepEqual(await team.ingress("web"), ["198.51.100.60"]);
        assert.deepEqual(await team.ingress("db"), ["198.51.100.61"]);

        // re-evaluate moves web to default's address and disappears; db stays.
        await team.core.patchNamespacedService({
          namespace: team.namespace,
          name: "web",
          body: { metadata: { annotations: { "purelb.io/re-evaluate": "true" } } },
        }, mergePatch());
        await team.waitForIngress("web", ["192.0.2.60"]);
        await waitFor(
          async () => {
            const web = await team.core.readNamespacedService({
              namespace: team.namespace,
              name: "web",
            });
            return web.metadata?.annotations?.["purelb.io/re-evaluate"] === undefined;
          },
          15_000,
          "the re-evaluate annotation to be removed",
        );
        await waitForOutOfScope(api, "a", 1);
        assert.deepEqual(await team.ingress("db"), ["198.51.100.61"]);

        // A leader change: the standby takes over and moves nothing.
        const standby = spawn(ELECTION);
        const leader = await leaderOf([allocator, standby]);
        await leader.kill();
        const next = leader === allocator ? standby : allocator;
        await probe.createService("after-failover");
        await probe.waitForIngress("after-failover", ["192.0.2.61"], 20_000);
        assert.ok(isLeading(next));
        assert.deepEqual(await team.ingress("web"), ["192.0.2.60"]);
        assert.deepEqual(await team.ingress("db"), ["198.51.100.61"]);
        assert.equal(await outOfScope(api, "a"), 1);

        // A restart: the last replica stops and a new one starts; still nothing moves.
        await next.stop();
        const restarted = spawn(ELECTION);
        await probe.createService("after-restart");
        await probe.waitForIngress("after-restart", ["192.0.2.62"], 20_000);
        assert.ok(isLeading(restarted));
        assert.deepEqual(await team.ingress("web"), ["192.0.2.60"]);
        assert.deepEqual(await team.ingress("db"), ["198.51.100.61"]);
        await waitForOutOfScope(api, "a", 1);
      }, ELECTION);
    });
  },
);
