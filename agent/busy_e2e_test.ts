/**
 * End-to-end on a busy cluster: one real agent in a node namespace (as its service account,
 * under its permission set) while unrelated Services and EndpointSlices churn. The agent's own
 * counters (`/metrics`) show the work it did; the network namespace shows the result.
 */

import assert from "node:assert/strict";
import { rootClusterTest } from "../tests/cluster.ts";
import { waitFor, waitUntilSteady } from "../tests/wait.ts";
import { mergePatch } from "../k8s/client.ts";
import { withScene } from "../tests/agent_scene.ts";
import { metricValue } from "../tests/programs.ts";
import type { AgentProcess } from "../tests/agent.ts";

const GROUPS = {
  default: {
    v4pools: [
      { pool: "192.0.2.200-192.0.2.230", subnet: "192.0.2.0/24" },
      { pool: "198.51.100.10-198.51.100.50", subnet: "198.51.100.0/24", aggregation: "/32" },
    ],
  },
};
const LOCAL_SERVICES = 19;
const VIRTUAL_ADDRESS = "198.51.100.10";
const LATER_ADDRESS = "198.51.100.11";
const UNRELATED_SERVICES = 50;
/** Rewrites of each unrelated slice, and of each unrelated Service. */
const SLICE_ROUNDS = 12;
const SERVICE_ROUNDS = 6;

interface Work {
  readonly reconciles: number;
  readonly ipProcesses: number;
  readonly servicesReceived: number;
  readonly slicesReceived: number;
}

async function work(agent: AgentProcess): Promise<Work> {
  const received = (informer: string) =>
    metricValue(agent, "purelb_watch_objects_received_total", { informer });
  return {
    reconciles: await metricValue(agent, "purelb_lbnodeagent_reconciles_total"),
    ipProcesses: await metricValue(agent, "purelb_lbnodeagent_ip_processes_total"),
    servicesReceived: await received("services"),
    slicesReceived: await received("endpointslices"),
  };
}

rootClusterTest(
  "busy cluster: 1,000+ updates of unrelated Services and EndpointSlices cause no reconcile and no ip process; an ETP Local endpoint change causes one; a Service turning ETP Local has its slices read",
  async (cluster) => {
    await withScene(cluster, "agent-busy", {
      groups: GROUPS,
      nodeAgent: { localint: "default", extlbint: "kube-lb0" },
      startOn: ["node-a"],
      // No periodic resync: every reconcile in this test comes from an event.
      agentArgs: ["--resync", "3600"],
    }, async (scene) => {
      const { api } = scene;
      const agent = scene.agent("node-a");
      for (let i = 0; i < LOCAL_SERVICES; i++) {
        await api.createAllocatedService(`web-${i}`, [`192.0.2.${200 + i}`]);
      }
      await api.createAllocatedService("virtual-local", [VIRTUAL_ADDRESS], { local: true });
      await api.putEndpointSlice("virtual-local-1", "virtual-local", [
        { address: "10.9.0.1", node: "node-a", ready: true },
      ]);
      // An ETP Cluster LoadBalancer Service of ours: its endpoints never matter.
      await api.putEndpointSlice("web-0-1", "web-0", [{ address: "10.9.1.1", node: "node-a" }]);
      await scene.waitForHolders("192.0.2.218", ["node-a"], 30_000);
      await scene.waitForHolders(VIRTUAL_ADDRESS, ["node-a"]);

      // Settled: nothing left to do (the Lease renewals of start-up are behind us).
      const before = await waitUntilSteady(
        () => work(agent),
        (w) => w.reconciles,
        20_000,
        "the agent to stop reconciling after start-up",
        1_500,
      );

      let writes = 0;
      for (let i = 0; i < UNRELATED_SERVICES; i++) {
        await api.core.createNamespacedService({
          namespace: scene.namespace,
          body: { metadata: { name: `db-${i}` }, spec: { ports: [{ port: 5432 }] } },
        });
        writes++;
      }
      const endpoints = (round: number) => [
        { address: `10.8.${round}.1`, node: "node-a", ready: round % 2 === 0 },
        { address: `10.8.${round}.2`, node: "node-b" },
      ];
      for (let round = 0; round < SLICE_ROUNDS; round++) {
        await Promise.all(
          Array.from(
            { length: UNRELATED_SERVICES },
            (_, i) => api.putEndpointSlice(`db-${i}-1`, `db-${i}`, endpoints(round)),
          ),
        );
        await api.putEndpointSlice("web-0-1", "web-0", [
          { address: "10.9.1.1", node: "node-a", ready: round % 2 === 0 },
        ]);
      }
      const sliceWrites = SLICE_ROUNDS * (UNRELATED_SERVICES + 1);
      for (let round = 0; round < SERVICE_ROUNDS; round++) {
        await Promise.all(
          Array.from({ length: UNRELATED_SERVICES }, (_, i) =>
            api.core.patchNamespacedService({
              namespace: scene.namespace,
              name: `db-${i}`,
              body: { metadata: { labels: { round: String(round) } } },
            }, mergePatch())),
        );
        writes += UNRELATED_SERVICES;
        // Our own LoadBalancer Services: fields the agent does not read.
        await Promise.all(
          Array.from({ length: LOCAL_SERVICES }, (_, i) =>
            api.core.patchNamespacedService({
              namespace: scene.namespace,
              name: `web-${i}`,
              body: {
                metadata: {
                  labels: { round: String(round) },
                  annotations: { "example.com/build": String(round) },
                },
              },
            }, mergePatch())),
        );
        writes += LOCAL_SERVICES;
      }
      assert.ok(writes + sliceWrites >= 1_000, `${writes + sliceWrites} writes`);

      // Every write reached the agent's caches...
      await waitFor(
        async () => {
          const now = await work(agent);
          return now.servicesReceived - before.servicesReceived >= writes &&
            now.slicesReceived - before.slicesReceived >= sliceWrites;
        },
        30_000,
        "the agent to receive every write",
      );
      const afterChurn = await work(agent);
      // ...and none of them made it work.
      assert.equal(afterChurn.reconciles - before.reconciles, 0, "reconciles during churn");
      assert.equal(afterChurn.ipProcesses - before.ipProcesses, 0, "ip processes during churn");
      // The slices of Services whose endpoints do not matter are not even cached.
      const unchanged = (informer: string) =>
        metricValue(agent, "purelb_watch_objects_unchanged_total", { informer });
      assert.ok(
        await unchanged("endpointslices") >= sliceWrites,
        `${await unchanged("endpointslices")} slices left the cache as it was`,
      );

      // The only endpoint of an ETP Local virtual address goes unready: withdrawn, in one go.
      await api.putEndpointSlice("virtual-local-1", "virtual-local", [
        { address: "10.9.0.1", node: "node-a", ready: false },
      ]);
      await scene.waitForHolders(VIRTUAL_ADDRESS, []);
      await waitFor(
        async () => (await work(agent)).reconciles > afterChurn.reconciles,
        10_000,
        "the reconcile of the endpoint change",
      );
      const afterChange = await work(agent);
      assert.equal(afterChange.reconciles - afterChurn.reconciles, 1, "reconciles for one change");
      assert.ok(afterChange.ipProcesses > afterChurn.ipProcesses, "the change ran ip");
      // Nothing else moved.
      assert.deepEqual(
        (await scene.holders("192.0.2.218")).map((h) => h.node),
        ["node-a"],
      );

      // A Service whose slices the agent kept nothing of (ETP Cluster) turns ETP Local: its
      // slices are read then, so the address stays where its endpoint is.
      await api.createAllocatedService("turns-local", [LATER_ADDRESS]);
      await api.putEndpointSlice("turns-local-1", "turns-local", [
        { address: "10.9.2.1", node: "node-a", ready: true },
      ]);
      await scene.waitForHolders(LATER_ADDRESS, ["node-a"]);
      const beforeSwitch = await work(agent);
      await api.core.patchNamespacedService({
        namespace: scene.namespace,
        name: "turns-local",
        body: { spec: { externalTrafficPolicy: "Local" } },
      }, mergePatch());
      await waitFor(
        async () =>
          await metricValue(agent, "purelb_watch_objects_received_total", {
            informer: "endpointslices",
          }) > beforeSwitch.slicesReceived,
        10_000,
        "the agent to read the slices of turns-local",
      );
      await waitFor(
        async () => (await work(agent)).reconciles > beforeSwitch.reconciles,
        10_000,
        "the reconcile of the switch",
      );
      assert.deepEqual((await scene.holders(LATER_ADDRESS)).map((h) => h.node), ["node-a"]);
      await api.putEndpointSlice("turns-local-1", "turns-local", [
        { address: "10.9.2.1", node: "node-a", ready: false },
      ]);
      await scene.waitForHolders(LATER_ADDRESS, []);
    });
  },
);
