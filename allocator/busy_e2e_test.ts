/**
 * End-to-end on a busy cluster: the real allocator (its service account, its permission set)
 * while Services that are not its concern churn. Its own counters show the work it did.
 */

import assert from "node:assert/strict";
import { clusterTest } from "../tests/cluster.ts";
import { withAllocator } from "../tests/allocator.ts";
import { metricValue, type ProgramProcess } from "../tests/programs.ts";
import { waitFor, waitUntilSteady } from "../tests/wait.ts";
import { mergePatch } from "../k8s/client.ts";

const LOAD_BALANCERS = 10;
const UNRELATED = 50;
const ROUNDS = 16;

async function work(allocator: ProgramProcess) {
  return {
    serviceSyncs: await metricValue(allocator, "purelb_allocator_reconciles_total", {
      kind: "service",
    }),
    received: await metricValue(allocator, "purelb_watch_objects_received_total", {
      informer: "services",
    }),
  };
}

clusterTest(
  "busy cluster: 1,000+ updates of Services that are not the allocator's concern cause no work; an edit of ours is acted on",
  async (c) => {
    await withAllocator(
      c,
      "alloc-busy",
      { default: { v4pools: [{ pool: "192.0.2.10-192.0.2.40", subnet: "192.0.2.0/24" }] } },
      async ({ api, allocator }) => {
        for (let i = 0; i < LOAD_BALANCERS; i++) await api.createService(`lb-${i}`);
        await waitFor(
          async () => (await api.ingress(`lb-${LOAD_BALANCERS - 1}`)).length === 1,
          15_000,
          "the LoadBalancer Services to be addressed",
        );
        const before = await waitUntilSteady(
          () => work(allocator),
          (w) => w.serviceSyncs,
          20_000,
          "the allocator to settle",
          1_000,
        );

        let writes = 0;
        const patch = (name: string, metadata: Record<string, unknown>) =>
          api.core.patchNamespacedService(
            { namespace: api.namespace, name, body: { metadata } },
            mergePatch(),
          );
        for (let i = 0; i < UNRELATED; i++) {
          await api.createService(`db-${i}`, { type: "ClusterIP" });
          writes++;
        }
        // Another controller's LoadBalancer Service: never ours.
        await api.createService("other-lb", { loadBalancerClass: "example.com/lb" });
        writes++;
        for (let round = 0; round < ROUNDS; round++) {
          await Promise.all([
            ...Array.from(
              { length: UNRELATED },
              (_, i) => patch(`db-${i}`, { labels: { round: String(round) } }),
            ),
            // Ours, but only fields the allocator does not read.
            ...Array.from({ length: LOAD_BALANCERS }, (_, i) =>
              patch(`lb-${i}`, {
                labels: { round: String(round) },
                annotations: { "example.com/build": String(round) },
              })),
            patch("other-lb", { labels: { round: String(round) } }),
          ]);
          writes += UNRELATED + LOAD_BALANCERS + 1;
        }
        assert.ok(writes >= 1_000, `${writes} writes`);
        await waitFor(
          async () => (await work(allocator)).received - before.received >= writes,
          30_000,
          "the allocator to receive every write",
        );
        const afterChurn = await work(allocator);
        assert.equal(
          afterChurn.serviceSyncs - before.serviceSyncs,
          0,
          "Service syncs during churn",
        );

        // An edit that matters: lb-0 asks for a specific address and gets it.
        await patch("lb-0", { annotations: { "purelb.io/addresses": "192.0.2.40" } });
        await api.waitForIngress("lb-0", ["192.0.2.40"]);
        const afterEdit = await work(allocator);
        assert.ok(afterEdit.serviceSyncs > afterChurn.serviceSyncs, "the edit was synced");
        // The edit and the allocator's own status write: nothing for the other Services.
        assert.ok(
          afterEdit.serviceSyncs - afterChurn.serviceSyncs <= 3,
          `${afterEdit.serviceSyncs - afterChurn.serviceSyncs} syncs for one edit`,
        );
      },
    );
  },
);
