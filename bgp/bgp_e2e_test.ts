/**
 * BGP end to end, with real parts only: the agents as the `agent` service account under the
 * BGP component's RBAC and their Deno permission sets, BIRD 2 in every node namespace
 * configured by the agents, and an FRR router (the other implementation) on the LAN with ECMP
 * and a client network behind it.
 *
 * @module
 */

import assert from "node:assert/strict";
import { rootClusterTest } from "../tests/cluster.ts";
import { NODES, operations, withScene } from "../tests/agent_scene.ts";
import {
  applyBgpConfiguration,
  configLoads,
  crashNode,
  nodeStatus,
  routerOf,
  waitForNextHops,
  waitForSessions,
} from "../tests/bgp.ts";
import { metricValue } from "../tests/programs.ts";
import { ping, waitForPing } from "../tests/netns/reach.ts";
import { waitFor } from "../tests/wait.ts";
import { BGP_CONFIGURATION_PLURAL, BGP_GROUP, BGP_VERSION } from "./model.ts";

const VIRTUAL_POOL = {
  pool: "198.51.100.10-198.51.100.20",
  subnet: "198.51.100.0/24",
  aggregation: "/32",
};
const AGGREGATED_POOL = {
  pool: "198.51.100.32-198.51.100.47",
  subnet: "198.51.100.0/24",
  aggregation: "/28",
};
const VIRTUAL_V6_POOL = {
  pool: "2001:db8:5::10-2001:db8:5::20",
  subnet: "2001:db8:5::/64",
  aggregation: "/128",
};
const GROUPS = {
  default: { v4pools: [VIRTUAL_POOL], v6pools: [VIRTUAL_V6_POOL] },
  aggregated: { v4pools: [AGGREGATED_POOL] },
};
const NODE_AGENT = { extlbint: "kube-lb0", localint: "default" };
/** Fast timers, so that a lost session shows within seconds. */
const TIMERS = { config: { holdTime: 9, keepaliveInterval: 3, connectRetry: 2 } };

function routerNeighbors(extra: Record<string, unknown> = {}): Record<string, unknown>[] {
  return [
    { config: { neighborAddress: "192.0.2.1", peerAsn: 65000 }, timers: TIMERS, ...extra },
    { config: { neighborAddress: "2001:db8:1::1", peerAsn: 65000 }, timers: TIMERS, ...extra },
  ];
}

rootClusterTest(
  "BGP: the router learns each virtual address from every eligible node and the client reaches it",
  async (cluster) => {
    await withScene(cluster, "bgp-routes", {
      groups: GROUPS,
      nodeAgent: NODE_AGENT,
      bgp: {},
    }, async (scene) => {
      await applyBgpConfiguration(scene, {
        global: { asn: 65001, listenPort: 179, families: ["ipv4-unicast", "ipv6-unicast"] },
        netlinkImport: { enabled: true, interfaceList: ["kube-lb0"] },
        neighbors: routerNeighbors(),
      });
      await waitForSessions(scene, NODES);
      const status = await nodeStatus(scene, "node-a");
      assert.equal(status?.routerID, "192.0.2.11", "router ID: the default-route interface's IPv4");
      assert.equal(status?.asn, 65001);
      assert.deepEqual(status?.neighbors.map((n) => [n.address, n.state]), [
        ["192.0.2.1", "Established"],
        ["2001:db8:1::1", "Established"],
      ]);
      const loadsBefore = await Promise.all(NODES.map((node) => configLoads(scene, node)));

      // /32 and /128: every node announces, the router has three next hops, the client gets in.
      await scene.api.createAllocatedService("web", ["198.51.100.10"]);
      await scene.api.createAllocatedService("web6", ["2001:db8:5::10"], { family: "IPv6" });
      await waitForNextHops(scene, "198.51.100.10/32", NODES);
      await waitForNextHops(scene, "2001:db8:5::10/128", NODES);
      const client = routerOf(scene).client.netns;
      await waitForPing(client, "198.51.100.10", 10_000);
      await waitForPing(client, "2001:db8:5::10", 10_000);
      await waitFor(
        async () => (await nodeStatus(scene, "node-b"))?.neighbors[0]?.prefixesSent === 1,
        10_000,
        "node-b's BGPNodeStatus to count one prefix sent to the IPv4 router",
      );
      assert.equal(
        await metricValue(scene.agent("node-b"), "purelb_bgp_session_up", { peer: "192.0.2.1" }),
        1,
      );
      assert.equal(
        await metricValue(scene.agent("node-b"), "purelb_bgp_announced_prefixes", {
          peer: "192.0.2.1",
        }),
        1,
      );

      // Aggregation /28: one route for the block, once per node, not one per address.
      await scene.api.createAllocatedService("agg-1", ["198.51.100.33"], {
        annotations: { "purelb.io/service-group": "aggregated" },
      });
      await scene.api.createAllocatedService("agg-2", ["198.51.100.34"], {
        annotations: { "purelb.io/service-group": "aggregated" },
      });
      await waitForNextHops(scene, "198.51.100.32/28", NODES);
      assert.deepEqual(await routerOf(scene).routes("198.51.100.33/32"), []);
      assert.deepEqual(await routerOf(scene).routes("198.51.100.34/32"), []);
      await waitForPing(client, "198.51.100.34", 10_000);

      // externalTrafficPolicy Local: only the nodes with an endpoint, following the slices.
      await scene.api.createAllocatedService("local", ["198.51.100.11"], { local: true });
      await scene.api.putEndpointSlice("local-1", "local", [
        { address: "10.0.0.2", node: "node-b", ready: true },
      ]);
      await waitForNextHops(scene, "198.51.100.11/32", ["node-b"]);
      await scene.api.putEndpointSlice("local-1", "local", [
        { address: "10.0.0.3", node: "node-c", ready: true },
        { address: "10.0.0.4", node: "node-a", ready: false, serving: true },
      ]);
      await waitForNextHops(scene, "198.51.100.11/32", ["node-a", "node-c"]);

      // Deleting a Service withdraws its route.
      await scene.api.core.deleteNamespacedService({ namespace: scene.namespace, name: "local" });
      await waitForNextHops(scene, "198.51.100.11/32", []);

      // None of these address changes reloaded BIRD.
      assert.deepEqual(
        await Promise.all(NODES.map((node) => configLoads(scene, node))),
        loadsBefore,
        "address changes never reload the daemon",
      );

      // A new neighbour leaves the existing sessions alone: each was established as long ago
      // as before (FRR counts uptime in whole seconds; a reset would make it seconds younger).
      const before = await routerOf(scene).bgpSummary();
      const beforeAt = Date.now();
      const birdBefore = await scene.bird("node-a").birdc("show protocols");
      await applyBgpConfiguration(scene, {
        global: { asn: 65001, listenPort: 179, families: ["ipv4-unicast", "ipv6-unicast"] },
        netlinkImport: { enabled: true, interfaceList: ["kube-lb0"] },
        neighbors: [
          ...routerNeighbors(),
          { config: { neighborAddress: "192.0.2.250", peerAsn: 65000 }, timers: TIMERS },
        ],
      });
      await waitFor(
        async () =>
          (await nodeStatus(scene, "node-a"))?.neighbors.length === 3 &&
          Date.now() - beforeAt > 3_000,
        15_000,
        "node-a's BGPNodeStatus to list the new neighbour, 3 s on",
      );
      const after = await routerOf(scene).bgpSummary();
      const afterAt = Date.now();
      for (const session of before.filter((s) => s.state === "Established")) {
        const same = after.find((s) => s.address === session.address);
        assert.equal(same?.state, "Established", `${session.address} stays established`);
        const establishedBefore = beforeAt - session.uptimeMs;
        const establishedAfter = afterAt - (same?.uptimeMs ?? 0);
        assert.ok(
          Math.abs(establishedAfter - establishedBefore) < 2_000,
          `${session.address}'s session was not reset (up ${session.uptimeMs} ms, then ${same?.uptimeMs} ms ${
            afterAt - beforeAt
          } ms later)`,
        );
      }
      const sinceOf = (text: string, name: string) =>
        text.split("\n").find((line) => line.startsWith(name))?.split(/\s+/).slice(3, 5).join(" ");
      const birdAfter = await scene.bird("node-a").birdc("show protocols");
      assert.equal(sinceOf(birdAfter, "peer_192_0_2_1"), sinceOf(birdBefore, "peer_192_0_2_1"));

      // Graceful stop: that node's routes go, the client keeps reaching the address.
      await scene.agent("node-a").stop();
      await waitForNextHops(scene, "198.51.100.10/32", ["node-b", "node-c"], 10_000);
      await waitForNextHops(scene, "2001:db8:5::10/128", ["node-b", "node-c"], 10_000);
      const probe = await ping(client, "198.51.100.10", { count: 10, deadlineSeconds: 5 });
      assert.equal(probe.received, 10, probe.output);

      // A crash without BFD (agent and BIRD killed, links down): gone after the hold time only.
      // Links first: a killed BIRD on a live link would close its TCP sessions properly.
      const crashed = Date.now();
      await crashNode(scene, "node-c");
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      assert.deepEqual(
        await routerOf(scene).nextHopNodes("198.51.100.10/32"),
        ["node-b", "node-c"],
        "without BFD the router keeps the dead node until the hold time ends",
      );
      await waitForNextHops(scene, "198.51.100.10/32", ["node-b"], 15_000);
      const droppedAfterMs = Date.now() - crashed;
      console.log(`without BFD, the router dropped the crashed node after ${droppedAfterMs} ms`);
      assert.ok(droppedAfterMs >= 5_000, `hold time 9 s, dropped after ${droppedAfterMs} ms`);
      await waitForPing(client, "198.51.100.10", 5_000);
    });
  },
);

rootClusterTest(
  "BGP with BFD: a crashed node leaves the router's next hops within a second",
  async (cluster) => {
    const bfd = { receiveIntervalMs: 100, transmitIntervalMs: 100, detectMultiplier: 3 };
    await withScene(cluster, "bgp-bfd", {
      groups: GROUPS,
      nodeAgent: NODE_AGENT,
      bgp: { router: { bfd } },
    }, async (scene) => {
      await applyBgpConfiguration(scene, {
        global: { asn: 65001 },
        neighbors: routerNeighbors({
          bfd: { enabled: true, minRxMs: 100, minTxMs: 100, multiplier: 3 },
        }),
      });
      await waitForSessions(scene, NODES);
      await scene.api.createAllocatedService("web", ["198.51.100.10"]);
      await waitForNextHops(scene, "198.51.100.10/32", NODES);
      await waitFor(
        async () => /Up/.test(await scene.bird("node-a").birdc("show bfd sessions")),
        10_000,
        "node-a's BFD session with the router to be up",
      );
      const crashed = Date.now();
      await crashNode(scene, "node-a");
      await waitForNextHops(scene, "198.51.100.10/32", ["node-b", "node-c"], 3_000);
      const droppedAfterMs = Date.now() - crashed;
      console.log(
        `with BFD (100 ms x 3), the router dropped the crashed node after ${droppedAfterMs} ms`,
      );
      await waitForPing(routerOf(scene).client.netns, "198.51.100.10", 5_000);
    });
  },
);

rootClusterTest(
  "BGP bad input: each mistake is named where the user looks, nothing else is disturbed",
  async (cluster) => {
    await withScene(cluster, "bgp-bad", {
      groups: GROUPS,
      nodeAgent: NODE_AGENT,
      nodeLabels: { "node-a": { peer: "good" }, "node-b": { peer: "asn" }, "node-c": {} },
      // node-c's BIRD never starts: a sidecar without its binary.
      bgp: { router: { peers: [] }, birdsOn: ["node-a", "node-b"] },
    }, async (scene) => {
      const router = routerOf(scene);
      for (const node of NODES) {
        const host = scene.lan.node(node);
        await router.addPeer(host.ipv4, 65001, node === "node-a" ? { password: "right-one" } : {});
      }
      await scene.api.core.createNamespacedSecret({
        namespace: scene.namespace,
        body: {
          metadata: { name: "purelb-bgp-auth" },
          stringData: { good: "right-one", bad: "wrong-one" },
        },
      });
      const good = {
        config: {
          neighborAddress: "192.0.2.1",
          peerAsn: 65000,
          authPasswordSecretRef: { name: "purelb-bgp-auth", key: "good" },
        },
        timers: TIMERS,
        nodeSelector: { matchLabels: { peer: "good" } },
      };
      await applyBgpConfiguration(scene, {
        global: { asn: 65001, gracefulRestart: { enabled: true } },
        neighbors: [
          good,
          // node-b: the router's AS is 65000, not 65099.
          {
            config: { neighborAddress: "192.0.2.1", peerAsn: 65099 },
            timers: TIMERS,
            nodeSelector: { matchLabels: { peer: "asn" } },
          },
          // node-a too: nobody answers at .250.
          {
            config: { neighborAddress: "192.0.2.250", peerAsn: 65000 },
            timers: TIMERS,
            nodeSelector: { matchLabels: { peer: "good" } },
          },
        ],
      });

      // The good session comes up and carries the address, whatever else is wrong.
      await scene.api.createAllocatedService("web", ["198.51.100.10"]);
      await waitForNextHops(scene, "198.51.100.10/32", ["node-a"]);

      // Unsupported field: named in the BGPConfiguration's condition.
      await waitFor(
        async () => {
          const object = await scene.api.custom.getNamespacedCustomObject({
            group: BGP_GROUP,
            version: BGP_VERSION,
            namespace: scene.namespace,
            plural: BGP_CONFIGURATION_PLURAL,
            name: "default",
          }) as { status?: { conditions?: { type: string; status: string; message: string }[] } };
          const unsupported = object.status?.conditions?.find((c) =>
            c.type === "UnsupportedFields"
          );
          return unsupported?.status === "True" &&
            unsupported.message.includes("spec.global.gracefulRestart");
        },
        15_000,
        "the UnsupportedFields condition to name spec.global.gracefulRestart",
      );

      // Unreachable neighbour: its own state in node-a's status, the good one unaffected.
      await waitFor(
        async () => {
          const status = await nodeStatus(scene, "node-a");
          const states = new Map(status?.neighbors.map((n) => [n.address, n.state]));
          const sessions = status?.conditions.find((c) => c.type === "SessionsEstablished");
          return states.get("192.0.2.1") === "Established" &&
            states.get("192.0.2.250") !== "Established" &&
            (sessions?.message.includes("192.0.2.250") ?? false);
        },
        20_000,
        "node-a's status: 192.0.2.1 established, 192.0.2.250 named as not established",
      );

      // Wrong peer AS: the error BIRD got, in node-b's status.
      let nodeB: unknown;
      await waitFor(
        async () => {
          const status = await nodeStatus(scene, "node-b");
          nodeB = status;
          const neighbor = status?.neighbors[0];
          return neighbor?.state !== "Established" &&
            /bad peer AS/i.test(neighbor?.lastError ?? "");
        },
        20_000,
        "node-b's status to show the bad peer AS",
      ).catch((error: Error) => {
        throw new Error(`${error.message}; last ${JSON.stringify(nodeB)}`);
      });

      // Password mismatch: node-a switches to the wrong key; its session goes down, the others'
      // state does not change, and the status says the session is not established.
      // The BIRD daemon missing on node-c: /readyz and the status say so, L2 goes on.
      await waitFor(
        async () => {
          const ready = await operations(scene.agent("node-c"), "/readyz");
          return ready.status === 503 && /BGP: BIRD is not running/.test(ready.body);
        },
        15_000,
        "node-c's /readyz to name the missing BIRD",
      );
      const nodeC = await nodeStatus(scene, "node-c");
      assert.equal(
        nodeC?.conditions.find((c) => c.type === "DaemonReady")?.reason,
        "DaemonUnreachable",
      );
      assert.ok(
        (await scene.holders("198.51.100.10")).some((h) => h.node === "node-c"),
        "node-c still carries the virtual address on its dummy interface",
      );

      await applyBgpConfiguration(scene, {
        global: { asn: 65001 },
        neighbors: [{
          ...good,
          config: {
            ...good.config,
            authPasswordSecretRef: { name: "purelb-bgp-auth", key: "bad" },
          },
        }],
      });
      await waitForNextHops(scene, "198.51.100.10/32", [], 20_000);
      await waitFor(
        async () => {
          const status = await nodeStatus(scene, "node-a");
          return status?.healthy === false && status.neighbors[0]?.state !== "Established";
        },
        20_000,
        "node-a's status to show its session down after the password change",
      );
    });
  },
);
