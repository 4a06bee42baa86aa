/**
 * End-to-end: three real agents (as the `agent` service account under deploy/rbac/agent.yaml,
 * under their Deno permission set), a real API server, and a LAN of network namespaces with
 * a client. Services are written the way the allocator writes them (status ingress and
 * `purelb.io/allocated-by`), so these tests exercise the agent alone.
 */

import assert from "node:assert/strict";
import { clusterTest, rootClusterTest } from "../tests/cluster.ts";
import { exec, startCapture, tryExec } from "../tests/netns/mod.ts";
import { waitFor } from "../tests/wait.ts";
import { winner } from "../election/mod.ts";
import { NODES, operations, withScene } from "../tests/agent_scene.ts";
import { agentServiceAccount, AgentTestApi, removeAgentBinding } from "../tests/agent.ts";
import { CoordinationV1Api, CoreV1Api, RbacAuthorizationV1Api, typedApi } from "../k8s/client.ts";
import { loadClientConfig } from "../k8s/config.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { apiStatusCode } from "../k8s/errors.ts";
import { mergePatch } from "../k8s/client.ts";

const LOCAL_V4_POOL = { pool: "192.0.2.200-192.0.2.220", subnet: "192.0.2.0/24" };
const LOCAL_V6_POOL = { pool: "2001:db8:1::200-2001:db8:1::2ff", subnet: "2001:db8:1::/64" };
const VIRTUAL_POOL = { pool: "198.51.100.10-198.51.100.50", subnet: "198.51.100.0/24" };
const HOST_POOL = {
  pool: "203.0.113.10-203.0.113.20",
  subnet: "203.0.113.0/24",
  aggregation: "/32",
};

const GROUPS = {
  default: { v4pools: [LOCAL_V4_POOL, VIRTUAL_POOL, HOST_POOL], v6pools: [LOCAL_V6_POOL] },
};

rootClusterTest(
  "local addresses: one elected node holds each, the client reaches its MAC, GARP and NA on the wire",
  async (cluster) => {
    await withScene(
      cluster,
      "agent-local",
      { groups: GROUPS, nodeAgent: { localint: "default", extlbint: "kube-lb0", sendgarp: true } },
      async ({ api, lan, holders, waitForHolders, agent }) => {
        const arp = await startCapture(lan.client.netns, "eth0", "arp");
        const na = await startCapture(lan.client.netns, "eth0", "icmp6 and ip6[40] == 136");
        try {
          await api.createAllocatedService("web4", ["192.0.2.200"]);
          await api.createAllocatedService("web6", ["2001:db8:1::200"]);
          for (const address of ["192.0.2.200", "2001:db8:1::200"]) {
            const expected = winner([...NODES], address);
            assert.ok(expected !== undefined);
            const [held] = await waitForHolders(address, [expected]);
            assert.equal(held?.held.interfaceName, "eth0");
            assert.equal(held?.held.prefixLength, address.includes(":") ? 64 : 24);
            const mac = lan.node(expected).mac;
            if (address.includes(":")) {
              await na.waitForPacket(
                (p) =>
                  p.kind === "neighbor-advertisement" && p.target === address && p.unsolicited &&
                  p.sourceMac === mac,
                10_000,
                `an unsolicited NA for ${address} from ${mac}`,
              );
              await exec(lan.client.netns, "ping", "-6", "-c", "1", "-W", "2", address);
            } else {
              await arp.waitForPacket(
                (p) =>
                  p.kind === "arp-request" && p.gratuitous && p.senderAddress === address &&
                  p.sourceMac === mac,
                10_000,
                `a gratuitous ARP for ${address} from ${mac}`,
              );
              await exec(lan.client.netns, "ping", "-c", "1", "-W", "2", address);
            }
            const neighbours = await exec(lan.client.netns, "ip", "neigh", "show", address);
            assert.match(neighbours, new RegExp(`lladdr ${mac}`), `client sees ${expected}'s MAC`);
            await api.waitForEvent(
              address.includes(":") ? "web6" : "web4",
              "AnnouncingLocal",
              new RegExp(`${address.replaceAll(".", "\\.")} from node ${expected} interface eth0`),
            );
            const metrics = await operations(agent(expected), "/metrics");
            assert.match(
              metrics.body,
              new RegExp(`purelb_lbnodeagent_announced\\{[^}]*ip="${address}"[^}]*\\} 1`),
            );
          }
          // Each node publishes the subnets of its default-route interface (once it has read
          // the LBNodeAgent and its interfaces; the first renewal may still carry none).
          let published: string | undefined;
          await waitFor(
            async () => {
              const lease = await api.coordination.readNamespacedLease({
                namespace: api.namespace,
                name: "purelb-node-node-b",
              });
              published = lease.metadata?.annotations?.["purelb.io/subnets"];
              assert.equal(lease.spec?.leaseDurationSeconds, 6);
              return published === "192.0.2.0/24,2001:db8:1::/64";
            },
            10_000,
            `node-b's published subnets (last seen "${published}")`,
          );
          // Still exactly one holder after a few resyncs.
          await new Promise((resolve) => setTimeout(resolve, 3_500));
          assert.equal((await holders("192.0.2.200")).length, 1);

          // Withdrawn when the Service goes.
          await api.core.deleteNamespacedService({ namespace: api.namespace, name: "web4" });
          await waitForHolders("192.0.2.200", []);
        } finally {
          await arp.stop();
          await na.stop();
        }
      },
    );
  },
);

rootClusterTest(
  "virtual addresses: on every eligible dummy interface; ETP Local follows healthy endpoints; " +
    "shared addresses stay while one service needs them",
  async (cluster) => {
    await withScene(
      cluster,
      "agent-virtual",
      { groups: GROUPS, nodeAgent: { localint: "default", extlbint: "kube-lb0" } },
      async ({ api, waitForHolders }) => {
        await api.createAllocatedService("cluster", ["198.51.100.10"]);
        await api.createAllocatedService("host", ["203.0.113.10"]);
        for (const held of await waitForHolders("198.51.100.10", NODES)) {
          assert.deepEqual([held.held.interfaceName, held.held.prefixLength], ["kube-lb0", 24]);
        }
        for (const held of await waitForHolders("203.0.113.10", NODES)) {
          assert.deepEqual([held.held.interfaceName, held.held.prefixLength], ["kube-lb0", 32]);
        }
        await api.waitForEvent("cluster", "AnnouncingVirtual", /198\.51\.100\.10 from node node-a/);

        // ETP Local: only nodes with a Ready or Serving endpoint.
        await api.createAllocatedService("local", ["198.51.100.11"], { local: true });
        await waitForHolders("198.51.100.11", []);
        await api.putEndpointSlice("local-1", "local", [
          { address: "10.0.0.1", node: "node-b", ready: true },
        ]);
        await waitForHolders("198.51.100.11", ["node-b"]);
        // node-b stops serving, node-c is terminating but still serving; a slice from another
        // manager adds node-a.
        await api.putEndpointSlice("local-1", "local", [
          { address: "10.0.0.1", node: "node-b", ready: false, serving: false },
          { address: "10.0.0.2", node: "node-c", ready: false, serving: true },
        ]);
        await api.putEndpointSlice("local-2", "local", [
          { address: "10.0.0.3", node: "node-a", ready: true },
        ], "someone-else.example");
        await waitForHolders("198.51.100.11", ["node-a", "node-c"]);
        // An address unhealthy in one slice is unhealthy, even if healthy in another.
        await api.putEndpointSlice("local-2", "local", [
          { address: "10.0.0.3", node: "node-a", ready: true },
          { address: "10.0.0.2", node: "node-c", ready: false, serving: false },
        ], "someone-else.example");
        await waitForHolders("198.51.100.11", ["node-a"]);
        await api.waitForEvent("local", "Withdrawn", /198\.51\.100\.11 from node node-c/);

        // Shared: withdrawn only when no service needs it.
        await api.createAllocatedService("share-1", ["198.51.100.12"]);
        await api.createAllocatedService("share-2", ["198.51.100.12"]);
        await waitForHolders("198.51.100.12", NODES);
        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "share-1" });
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        await waitForHolders("198.51.100.12", NODES, 1_000);
        await api.setIngress("share-2", []);
        await waitForHolders("198.51.100.12", []);
      },
    );
  },
);

rootClusterTest(
  "ETP Local on a local address: without allow-local announced as Cluster with a warning; " +
    "with it, only nodes with endpoints are candidates",
  async (cluster) => {
    await withScene(
      cluster,
      "agent-allowlocal",
      { groups: GROUPS, nodeAgent: { localint: "default", extlbint: "kube-lb0" } },
      async ({ api, waitForHolders }) => {
        const address = "192.0.2.202";
        await api.createAllocatedService("plain", [address], { local: true });
        await waitForHolders(address, [winner([...NODES], address) ?? ""]);
        await api.waitForEvent("plain", "ConfigurationWarning", /announced as Cluster/);
        const svc = await api.core.readNamespacedService({
          namespace: api.namespace,
          name: "plain",
        });
        assert.equal(svc.spec?.externalTrafficPolicy, "Local", "the spec is never rewritten");
        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "plain" });
        await waitForHolders(address, []);

        // allow-local: the winner among the nodes with endpoints only.
        const others = NODES.filter((n) => n !== winner([...NODES], address));
        const endpointNode = others[0] ?? "";
        await api.createAllocatedService("allowed", [address], {
          local: true,
          annotations: { "purelb.io/allow-local": "true" },
        });
        await waitForHolders(address, []);
        await api.putEndpointSlice("allowed-1", "allowed", [
          { address: "10.0.0.9", node: endpointNode, ready: true },
        ]);
        await waitForHolders(address, [endpointNode]);
      },
    );
  },
);

rootClusterTest(
  "no LBNodeAgent: nothing announced, /readyz says why; one appears: announced",
  async (cluster) => {
    await withScene(
      cluster,
      "agent-nolbna",
      { groups: GROUPS, nodeAgent: undefined, startOn: ["node-a"] },
      async ({ api, agent, waitForHolders }) => {
        await api.createAllocatedService("cluster", ["198.51.100.20"]);
        let ready = { status: 0, body: "" };
        await waitFor(
          async () => {
            ready = await operations(agent("node-a"), "/readyz");
            return /no LBNodeAgent/.test(ready.body);
          },
          20_000,
          "/readyz to say there is no LBNodeAgent",
        );
        assert.equal(ready.status, 503);
        assert.match(agent("node-a").logs(), /no LBNodeAgent with spec\.local/);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        await waitForHolders("198.51.100.20", [], 1_000);
        await api.createNodeAgent("default", { localint: "default", extlbint: "kube-lb0" });
        await waitForHolders("198.51.100.20", ["node-a"]);
        await waitFor(
          async () => (await operations(agent("node-a"), "/readyz")).status === 200,
          10_000,
          "/readyz to answer 200",
        );
        assert.equal((await operations(agent("node-a"), "/healthz")).status, 200);
      },
    );
  },
);

rootClusterTest(
  "failover: graceful stop and crash hand the address over; nothing stranded on return",
  async (cluster) => {
    await withScene(
      cluster,
      "agent-failover",
      { groups: GROUPS, nodeAgent: { localint: "default", extlbint: "kube-lb0", sendgarp: true } },
      async ({ api, lan, agent, restart, holders, waitForHolders }) => {
        const address = "192.0.2.203";
        const first = winner([...NODES], address) ?? "";
        const second = winner(NODES.filter((n) => n !== first), address) ?? "";
        await api.createAllocatedService("web", [address]);
        await waitForHolders(address, [first]);

        // Graceful: withdraw, delete the Lease; the next winner takes over at once.
        const stoppedAt = performance.now();
        const stopping = agent(first).stop();
        await waitForHolders(address, [second], 5_000);
        const gracefulMs = performance.now() - stoppedAt;
        assert.equal((await stopping).code, 0);
        assert.ok(gracefulMs < 2_000, `graceful hand-over took ${gracefulMs} ms`);
        const leases = await api.coordination.listNamespacedLease({ namespace: api.namespace });
        assert.ok(
          !leases.items.some((l) => l.metadata?.name === `purelb-node-${first}`),
          "the stopped node's Lease is deleted",
        );
        restart(first);
        await waitForHolders(address, [first]);

        // Crash: the agent is killed and its node drops off the LAN (power loss).
        await agent(first).kill();
        await exec(lan.node(first).netns, "ip", "link", "set", "eth0", "down");
        const crashedAt = performance.now();
        await waitFor(
          async () => (await holders(address)).some((h) => h.node === second),
          15_000,
          `${second} to take ${address}`,
        );
        const crashMs = performance.now() - crashedAt;
        assert.ok(crashMs < 6_000 + 2_000, `crash hand-over took ${crashMs} ms`);
        await exec(lan.client.netns, "ping", "-c", "1", "-W", "2", address);
        const neighbours = await exec(lan.client.netns, "ip", "neigh", "show", address);
        assert.match(neighbours, new RegExp(`lladdr ${lan.node(second).mac}`));

        // The node comes back (link and default route): one holder again, nothing stranded.
        await exec(lan.node(first).netns, "ip", "link", "set", "eth0", "up");
        await exec(lan.node(first).netns, "ip", "route", "add", "default", "via", "192.0.2.1");
        restart(first);
        await waitForHolders(address, [first]);
        await new Promise((resolve) => setTimeout(resolve, 3_000));
        await waitForHolders(address, [first], 1_000);
      },
    );
  },
);

rootClusterTest(
  "restart after a crash: a local address in no pool range, recorded in the Lease, is withdrawn " +
    "when no longer won; one still won is kept",
  async (cluster) => {
    await withScene(
      cluster,
      "agent-remember",
      { groups: GROUPS, nodeAgent: { localint: "default", extlbint: "kube-lb0" } },
      async ({ api, agent, restart, waitForHolders }) => {
        // Outside every pool range (like a Netbox address): only the record makes it ours.
        const gone = "192.0.2.230";
        const node = winner([...NODES], gone) ?? "";
        const kept = Array.from({ length: 20 }, (_, i) => `192.0.2.${231 + i}`)
          .find((address) => winner([...NODES], address) === node) ?? "";
        await api.createAllocatedService("gone", [gone]);
        await api.createAllocatedService("kept", [kept]);
        await waitForHolders(gone, [node]);
        await waitForHolders(kept, [node]);
        const recorded = [gone, kept].sort().join(",");
        let seen: string | undefined;
        await waitFor(
          async () => {
            const lease = await api.coordination.readNamespacedLease({
              namespace: api.namespace,
              name: `purelb-node-${node}`,
            });
            seen = lease.metadata?.annotations?.["purelb.io/local-addresses"];
            return seen === recorded;
          },
          10_000,
          `${node}'s recorded local addresses (last seen "${seen}")`,
        );

        // Crash; the Service goes while the agent is down; the agent comes back.
        await agent(node).kill();
        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "gone" });
        await waitForHolders(gone, [node], 1_000);
        restart(node);
        await waitForHolders(gone, [], 10_000);
        await waitForHolders(kept, [node]);
        await new Promise((resolve) => setTimeout(resolve, 2_000));
        await waitForHolders(gone, [], 1_000);
        await waitForHolders(kept, [node], 1_000);
      },
    );
  },
);

rootClusterTest(
  "start-up sweep removes planted leftovers; drift is repaired within seconds",
  async (cluster) => {
    await withScene(
      cluster,
      "agent-sweep",
      {
        groups: GROUPS,
        nodeAgent: { localint: "default", extlbint: "kube-lb0" },
        beforeAgents: async (lan) => {
          const netns = lan.node("node-b").netns;
          await exec(netns, "ip", "address", "add", "198.51.100.44/24", "dev", "kube-lb0");
          await exec(netns, "ip", "address", "add", "192.0.2.219/24", "dev", "eth0");
          // Not in any pool and not on the dummy interface: not ours, never touched.
          await exec(netns, "ip", "address", "add", "192.0.2.99/24", "dev", "eth0");
        },
      },
      async ({ api, lan, waitForHolders }) => {
        await waitForHolders("198.51.100.44", []);
        await waitForHolders("192.0.2.219", []);
        await api.createAllocatedService("cluster", ["198.51.100.30"]);
        await waitForHolders("198.51.100.30", NODES);
        assert.deepEqual(
          (await waitForHolders("192.0.2.99", ["node-b"])).map((h) => h.node),
          ["node-b"],
        );

        // Drift: deleted by hand -> back; added by hand -> gone.
        const netns = lan.node("node-c").netns;
        await exec(netns, "ip", "address", "del", "198.51.100.30/24", "dev", "kube-lb0");
        await exec(netns, "ip", "address", "add", "198.51.100.45/24", "dev", "kube-lb0");
        const repairStarted = performance.now();
        await waitForHolders("198.51.100.30", NODES, 8_000);
        await waitForHolders("198.51.100.45", [], 8_000);
        const repairMs = performance.now() - repairStarted;
        assert.ok(repairMs < 6_000, `drift repaired in ${repairMs} ms`);
        const result = await tryExec(netns, "ip", "link", "show", "kube-lb0");
        assert.equal(result.exitCode, 0);
      },
    );
  },
);

rootClusterTest(
  "self-fencing: agents that cannot renew their Leases withdraw local addresses, keep virtual ones",
  async (cluster) => {
    await withScene(
      cluster,
      "agent-fence",
      { groups: GROUPS, nodeAgent: { localint: "default", extlbint: "kube-lb0" } },
      async ({ api, namespace, waitForHolders }) => {
        const address = "192.0.2.204";
        await api.createAllocatedService("local", [address]);
        await api.createAllocatedService("virtual", ["198.51.100.40"]);
        await waitForHolders(address, [winner([...NODES], address) ?? ""]);
        await waitForHolders("198.51.100.40", NODES);
        const rbac = typedApi(api.connection, RbacAuthorizationV1Api);
        const binding = await rbac.readNamespacedRoleBinding({ namespace, name: "purelb:agent" });
        await rbac.deleteNamespacedRoleBinding({ namespace, name: "purelb:agent" });
        try {
          // Lease duration 6 s: no renewal for a full duration -> fenced.
          await waitForHolders(address, [], 12_000);
          await waitForHolders("198.51.100.40", NODES, 1_000);
        } finally {
          await rbac.createNamespacedRoleBinding({
            namespace,
            body: {
              metadata: { name: "purelb:agent" },
              roleRef: binding.roleRef,
              subjects: binding.subjects ?? [],
            },
          });
        }
        await waitForHolders(address, [winner([...NODES], address) ?? ""], 15_000);
      },
    );
  },
);

clusterTest("RBAC: the agent's token may not write Services or read Secrets (403)", async (c) => {
  const namespace = await c.createNamespace("agent-rbac");
  const dir = await Deno.makeTempDir({ prefix: "purelb-agent-rbac-" });
  const admin = new AgentTestApi(c, namespace);
  try {
    await admin.createAllocatedService("web", ["198.51.100.10"]);
    await admin.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: "secret" }, stringData: { key: "value" } },
    });
    const kubeconfig = await agentServiceAccount(c, namespace, dir);
    const access = loadClientConfig({ kubeconfig }).access;
    const connection = new ApiConnection(access);
    try {
      const core = typedApi(connection, CoreV1Api);
      const refused = async (what: string, call: () => Promise<unknown>) => {
        const status = await call().then(() => 200, (error) => apiStatusCode(error));
        assert.equal(status, 403, `${what} must be refused`);
      };
      await refused("patch services", () =>
        core.patchNamespacedService({
          namespace,
          name: "web",
          body: { metadata: { labels: { x: "y" } } },
        }, mergePatch()));
      await refused("patch services/status", () =>
        core.patchNamespacedServiceStatus({
          namespace,
          name: "web",
          body: { status: { loadBalancer: { ingress: null } } },
        }, mergePatch()));
      await refused(
        "delete services",
        () => core.deleteNamespacedService({ namespace, name: "web" }),
      );
      await refused("read secrets", () => core.readNamespacedSecret({ namespace, name: "secret" }));
      await refused("list secrets", () => core.listNamespacedSecret({ namespace }));
      await refused(
        "leases outside its namespace",
        () => typedApi(connection, CoordinationV1Api).listNamespacedLease({ namespace: "default" }),
      );
      // What it needs works.
      assert.equal(
        (await core.readNamespacedService({ namespace, name: "web" })).metadata?.name,
        "web",
      );
      const coordination = typedApi(connection, CoordinationV1Api);
      await coordination.createNamespacedLease({
        namespace,
        body: { metadata: { name: "purelb-node-x" }, spec: { holderIdentity: "x" } },
      });
      await coordination.deleteNamespacedLease({ namespace, name: "purelb-node-x" });
    } finally {
      connection.close();
    }
  } finally {
    await admin.deleteAll();
    admin.close();
    await removeAgentBinding(c, namespace);
    await c.deleteNamespace(namespace).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
