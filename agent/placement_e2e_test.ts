/**
 * End-to-end: which nodes announce (LBNodeAgent `spec.nodeSelector` against each node's Node
 * labels), with three real agents as the `agent` service account, a real API server with Node
 * objects, and a LAN of network namespaces.
 */

import assert from "node:assert/strict";
import { clusterTest, rootClusterTest } from "../tests/cluster.ts";
import { exec } from "../tests/netns/mod.ts";
import { waitFor } from "../tests/wait.ts";
import { winner } from "../election/mod.ts";
import { NODES, operations, type Scene, withScene } from "../tests/agent_scene.ts";
import { agentServiceAccount, removeAgentBinding } from "../tests/agent.ts";
import { CoreV1Api, typedApi } from "../k8s/client.ts";
import { loadClientConfig } from "../k8s/config.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { apiStatusCode } from "../k8s/errors.ts";

const LAN_POOL = { pool: "192.0.2.200-192.0.2.240", subnet: "192.0.2.0/24" };
const EDGE_POOL = { pool: "203.0.113.200-203.0.113.240", subnet: "203.0.113.0/24" };
const VIRTUAL_POOL = { pool: "198.51.100.10-198.51.100.50", subnet: "198.51.100.0/24" };
const GROUPS = { default: { v4pools: [LAN_POOL, EDGE_POOL, VIRTUAL_POOL] } };
const LB_LABEL = "example.com/purelb";

/** The first address of `a.b.c.first`.. that `nodes` elect `wanted` for. */
function addressWonBy(
  wanted: string,
  nodes: readonly string[],
  prefix: string,
  skip: readonly string[] = [],
): string {
  for (let last = 200; last <= 240; last++) {
    const address = `${prefix}.${last}`;
    if (!skip.includes(address) && winner([...nodes], address) === wanted) return address;
  }
  throw new Error(`no address of ${prefix}.200-240 goes to ${wanted} among ${nodes}`);
}

async function subnetsOf(scene: Scene, node: string): Promise<string | undefined> {
  const lease = await scene.api.coordination.readNamespacedLease({
    namespace: scene.namespace,
    name: `purelb-node-${node}`,
  });
  return lease.metadata?.annotations?.["purelb.io/subnets"];
}

async function waitForSubnets(scene: Scene, node: string, wanted: string): Promise<void> {
  let seen: string | undefined;
  await waitFor(
    async () => (seen = await subnetsOf(scene, node).catch(() => undefined)) === wanted,
    10_000,
    `${node}'s Lease to publish subnets "${wanted}" (last seen "${seen}")`,
  );
}

async function waitForReadiness(scene: Scene, node: string, says: RegExp): Promise<void> {
  let last = "";
  await waitFor(
    async () => {
      const ready = await operations(scene.agent(node), "/readyz");
      last = `${ready.status} ${ready.body}`;
      return says.test(last);
    },
    15_000,
    `${node}'s /readyz to match ${says} (last: ${last})`,
  );
}

rootClusterTest(
  "placement: an LBNodeAgent selecting two nodes: the third holds nothing and is no candidate; " +
    "labelled, it takes part within seconds; unlabelled while its agent is down, it withdraws on start",
  async (cluster) => {
    await withScene(
      cluster,
      "placement",
      {
        groups: GROUPS,
        nodeAgent: undefined,
        nodeAgents: {
          lb: {
            local: { localint: "default" },
            nodeSelector: { matchLabels: { [LB_LABEL]: "yes" } },
          },
        },
        nodeLabels: {
          "node-a": { [LB_LABEL]: "yes" },
          "node-b": { [LB_LABEL]: "yes", zone: "b" },
          "node-c": { zone: "c" },
        },
      },
      async (scene) => {
        const { api, waitForHolders, holders } = scene;
        const selected = ["node-a", "node-b"];
        // Addresses node-c would win if it took part, and ones node-a and node-b win anyway.
        const forC = addressWonBy("node-c", NODES, "192.0.2");
        const forC2 = addressWonBy("node-c", NODES, "192.0.2", [forC]);
        const forB = addressWonBy("node-b", NODES, "192.0.2");
        const vip = "198.51.100.10";
        for (const [name, address] of [["c1", forC], ["c2", forC2], ["b1", forB], ["vip", vip]]) {
          await api.createAllocatedService(name ?? "", [address ?? ""]);
        }
        for (const address of [forC, forC2, forB]) {
          const [held] = await waitForHolders(address, [winner(selected, address) ?? ""]);
          assert.equal(held?.held.interfaceName, "eth0");
        }
        await waitForHolders(vip, selected);
        await waitForReadiness(
          scene,
          "node-c",
          /^503 .*no LBNodeAgent selects node node-c \(LBNodeAgents in [^:]+: lb; node labels: zone=c\)/,
        );
        // Not a candidate: its Lease publishes no subnets; the others' do.
        await waitForSubnets(scene, "node-c", "");
        // (Once node-a is past the start-up settling, where nobody publishes subnets.)
        await waitForSubnets(scene, "node-a", "192.0.2.0/24,2001:db8:1::/64");
        const onC = (await Promise.all([forC, forC2, forB, vip].map(holders))).flat()
          .filter((h) => h.node === "node-c");
        assert.deepEqual(onC, [], "node-c holds none of the addresses");

        // The agents may read their own Node, and may not list nodes: they work without it.
        const access = loadClientConfig({ kubeconfig: scene.kubeconfig }).access;
        const connection = new ApiConnection(access);
        try {
          const core = typedApi(connection, CoreV1Api);
          const listed = await core.listNode().then(() => 200, (error) => apiStatusCode(error));
          assert.equal(listed, 403, "the agent's service account may not list nodes");
          assert.equal((await core.readNode({ name: "node-c" })).metadata?.labels?.zone, "c");
        } finally {
          connection.close();
        }

        // Labelled, node-c takes part within seconds: it takes what it wins and carries the VIP.
        const labelledAt = performance.now();
        await api.labelNode("node-c", { [LB_LABEL]: "yes" });
        await waitForHolders(forC, ["node-c"], 10_000);
        await waitForHolders(forC2, ["node-c"], 10_000);
        await waitForHolders(vip, NODES, 10_000);
        const joinMs = performance.now() - labelledAt;
        assert.ok(joinMs < 10_000, `node-c took part after ${joinMs} ms`);
        console.log(`node-c held its addresses ${Math.round(joinMs)} ms after being labelled`);
        await waitForHolders(forB, ["node-b"]);
        await waitForReadiness(scene, "node-c", /^200/);
        await waitForSubnets(scene, "node-c", "192.0.2.0/24,2001:db8:1::/64");

        // node-b's agent dies, node-b loses the label meanwhile, its agent comes back: it removes
        // what it held, stays out, and the others share its addresses.
        await scene.agent("node-b").kill();
        await api.labelNode("node-b", { [LB_LABEL]: null });
        scene.restart("node-b");
        const rest = ["node-a", "node-c"];
        await waitForHolders(forB, [winner(rest, forB) ?? ""], 20_000);
        await waitForHolders(vip, rest, 20_000);
        await waitForReadiness(scene, "node-b", /^503 .*no LBNodeAgent selects node node-b/);
        await waitForSubnets(scene, "node-b", "");
        for (const address of [forC, forC2]) await waitForHolders(address, ["node-c"]);
      },
    );
  },
);

rootClusterTest(
  "placement: two LBNodeAgents with different local interfaces for different node labels both " +
    "apply; a relabelled node moves over; a restart keeps every decision",
  async (cluster) => {
    await withScene(
      cluster,
      "placement-two",
      {
        groups: GROUPS,
        nodeAgent: undefined,
        nodeAgents: {
          lan: { local: { localint: "eth0" }, nodeSelector: { matchLabels: { tier: "lan" } } },
          edge: {
            local: { localint: "^edge0$" },
            nodeSelector: { matchExpressions: [{ key: "tier", operator: "In", values: ["edge"] }] },
          },
        },
        nodeLabels: {
          "node-a": { tier: "lan" },
          "node-b": { tier: "lan" },
          "node-c": { tier: "edge" },
        },
        // A second interface on every node, in 203.0.113.0/24: a veth pair inside the node.
        beforeAgents: async (lan) => {
          for (const [index, node] of NODES.entries()) {
            const netns = lan.node(node).netns;
            await exec(
              netns,
              "ip",
              "link",
              "add",
              "edge0",
              "type",
              "veth",
              "peer",
              "name",
              "edge0p",
            );
            await exec(netns, "ip", "link", "set", "edge0p", "up");
            await exec(netns, "ip", "link", "set", "edge0", "up");
            await exec(netns, "ip", "address", "add", `203.0.113.${11 + index}/24`, "dev", "edge0");
          }
        },
      },
      async (scene) => {
        const { api, waitForHolders } = scene;
        const lanNodes = ["node-a", "node-b"];
        const lanAddress = addressWonBy("node-b", lanNodes, "192.0.2");
        const edgeAddress = addressWonBy("node-b", ["node-b", "node-c"], "203.0.113");
        await api.createAllocatedService("lan", [lanAddress]);
        await api.createAllocatedService("edge", [edgeAddress]);

        /** Where each node carries `address`: `node:interface/prefix`, sorted. */
        const placement = async (address: string) =>
          (await scene.holders(address))
            .map(({ node, held }) => `${node}:${held.interfaceName}/${held.prefixLength}`)
            .sort();
        const waitForPlacement = async (address: string, wanted: readonly string[]) => {
          let seen: readonly string[] = [];
          await waitFor(
            async () => (seen = await placement(address)).join(" ") === wanted.join(" "),
            15_000,
            `${address} placed as [${wanted}] (last seen [${seen}])`,
          );
        };

        // node-a and node-b elect the LAN address on eth0; node-c's edge0 is in another subnet,
        // so there it is virtual (dummy interface). The edge address is local to node-c only.
        const lanPlaced = ["node-b:eth0/24", "node-c:kube-lb0/24"];
        const edgePlaced = ["node-a:kube-lb0/24", "node-b:kube-lb0/24", "node-c:edge0/24"];
        await waitForPlacement(lanAddress, lanPlaced);
        await waitForPlacement(edgeAddress, edgePlaced);
        await waitForSubnets(scene, "node-c", "203.0.113.0/24");
        await waitForSubnets(scene, "node-a", "192.0.2.0/24,2001:db8:1::/64");
        for (const node of NODES) await waitForReadiness(scene, node, /^200/);

        // Graceful restart of every agent: the same decisions.
        for (const node of NODES) {
          assert.equal((await scene.agent(node).stop()).code, 0);
          scene.restart(node);
        }
        await waitForPlacement(lanAddress, lanPlaced);
        await waitForPlacement(edgeAddress, edgePlaced);
        for (const node of NODES) await waitForReadiness(scene, node, /^200/);

        // node-b moves to the edge LBNodeAgent: it wins the edge address on edge0 and leaves the
        // LAN address to node-a.
        await api.labelNode("node-b", { tier: "edge" });
        await waitForPlacement(edgeAddress, ["node-a:kube-lb0/24", "node-b:edge0/24"]);
        await waitForPlacement(lanAddress, [
          "node-a:eth0/24",
          "node-b:kube-lb0/24",
          "node-c:kube-lb0/24",
        ]);
        await waitForSubnets(scene, "node-b", "203.0.113.0/24");
        await waitForHolders(edgeAddress, ["node-a", "node-b"]);
      },
    );
  },
);

clusterTest(
  "placement RBAC: the agent's account may get and watch one Node, not list nodes",
  async (c) => {
    const namespace = await c.createNamespace("placement-rbac");
    const dir = await Deno.makeTempDir({ prefix: "purelb-placement-" });
    try {
      const kubeconfig = await agentServiceAccount(c, namespace, dir);
      const connection = new ApiConnection(loadClientConfig({ kubeconfig }).access);
      try {
        const core = typedApi(connection, CoreV1Api);
        const status = (call: () => Promise<unknown>) =>
          call().then(() => 200, (error) => apiStatusCode(error));
        assert.equal(await status(() => core.listNode()), 403, "list nodes is refused");
        // An absent Node (as in every scene without Node objects): readable, and 404.
        assert.equal(await status(() => core.readNode({ name: "no-such-node" })), 404);
        const watch = await connection.fetch(
          "/api/v1/nodes?watch=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dno-such-node",
        );
        await watch.body?.cancel();
        assert.equal(watch.status, 200, "a watch of one Node by field selector is allowed");
        assert.equal(
          await status(() => core.patchNode({ name: "no-such-node", body: {} })),
          403,
          "the agent never writes Nodes",
        );
      } finally {
        connection.close();
      }
    } finally {
      await removeAgentBinding(c, namespace);
      await c.deleteNamespace(namespace).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
);
