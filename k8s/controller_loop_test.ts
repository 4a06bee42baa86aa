import assert from "node:assert/strict";
import type { V1Service } from "@kubernetes/client-node";
import { CoreV1Api, typedApi } from "./client.ts";
import { ResilientInformer } from "./informer.ts";
import { withoutVersion } from "./slim.ts";
import { mergePatch } from "./client.ts";
import { ApiConnection } from "./transport.ts";
import { runWorkers, WorkQueue } from "./workqueue.ts";
import { clusterTest } from "../tests/cluster.ts";
import { waitFor } from "../tests/wait.ts";

clusterTest(
  "informer -> queue -> 4 workers: concurrent Service events never run one key twice at once",
  async (c) => {
    const ns = await c.createNamespace("loop");
    const connection = new ApiConnection(c.adminConfig());
    const core = typedApi(connection, CoreV1Api);
    const names = ["s0", "s1", "s2", "s3", "s4"];
    const rounds = 15;
    for (const name of names) {
      await core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name }, spec: { ports: [{ port: 80 }] } },
      });
    }
    const informer = new ResilientInformer<V1Service>(connection, {
      name: "services",
      path: `/api/v1/namespaces/${ns}/services`,
      transform: withoutVersion,
    });
    const queue = new WorkQueue<string>();
    informer.onChange((_type, svc) => queue.add(svc.metadata?.name ?? ""));

    const inFlight = new Map<string, number>();
    let maxConcurrentPerKey = 0;
    let maxConcurrentOverall = 0;
    const lastRoundSeen = new Map<string, number>();
    const workers = runWorkers(queue, 4, async (key) => {
      const now = (inFlight.get(key) ?? 0) + 1;
      inFlight.set(key, now);
      maxConcurrentPerKey = Math.max(maxConcurrentPerKey, now);
      maxConcurrentOverall = Math.max(
        maxConcurrentOverall,
        [...inFlight.values()].reduce((a, b) => a + b, 0),
      );
      // Level-triggered: read the cache, not the event.
      const round = Number(informer.get(key, ns)?.metadata?.labels?.round ?? "-1");
      await new Promise((resolve) => setTimeout(resolve, 15));
      lastRoundSeen.set(key, round);
      inFlight.set(key, (inFlight.get(key) ?? 1) - 1);
      return { kind: "done" };
    });

    informer.start();
    try {
      await informer.synced;
      await Promise.all(names.map(async (name) => {
        for (let round = 0; round < rounds; round++) {
          await core.patchNamespacedService({
            namespace: ns,
            name,
            body: { metadata: { labels: { round: String(round) } } },
          }, mergePatch());
        }
      }));
      await waitFor(
        () => names.every((n) => lastRoundSeen.get(n) === rounds - 1),
        15_000,
        "every key processed after its last change",
      );
      console.log(`max concurrent per key ${maxConcurrentPerKey}, overall ${maxConcurrentOverall}`);
      assert.equal(maxConcurrentPerKey, 1);
      assert.ok(maxConcurrentOverall > 1, "workers ran in parallel on different keys");
    } finally {
      queue.shutDown();
      await workers;
      await informer.stop();
      connection.close();
      await c.deleteNamespace(ns);
    }
  },
);
