import assert from "node:assert/strict";
import type { V1Service } from "@kubernetes/client-node";
import { CoreV1Api, typedApi } from "./client.ts";
import { parseKubeconfig } from "./config.ts";
import { ResilientInformer } from "./informer.ts";
import { mergePatch } from "./patch.ts";
import { ApiConnection } from "./transport.ts";
import { clusterTest } from "../tests/cluster.ts";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { ensureBinaries } from "../tests/controlplane/binaries.ts";
import { waitFor } from "../tests/wait.ts";

function service(name: string, port = 80): V1Service {
  return { metadata: { name }, spec: { ports: [{ port, protocol: "TCP" }] } };
}

function serviceInformer(
  connection: ApiConnection,
  namespace: string,
  listCalls: { count: number },
) {
  const core = typedApi(connection, CoreV1Api);
  return new ResilientInformer<V1Service>(connection, {
    name: "services",
    path: `/api/v1/namespaces/${namespace}/services`,
    list: () => {
      listCalls.count++;
      return core.listNamespacedService({ namespace });
    },
    initialBackoffMs: 50,
    maxBackoffMs: 500,
  });
}

clusterTest("informer sees adds, updates and deletes of Services", async (c) => {
  const ns = await c.createNamespace("informer");
  const connection = new ApiConnection(c.adminConfig());
  const core = typedApi(connection, CoreV1Api);
  await core.createNamespacedService({ namespace: ns, body: service("before-start") });

  const informer = serviceInformer(connection, ns, { count: 0 });
  const seen: string[] = [];
  informer.onChange((type, svc) => seen.push(`${type}:${svc.metadata?.name}`));
  informer.start();
  try {
    await informer.synced;
    assert.ok(informer.hasSynced);
    assert.deepEqual(informer.list().map((s) => s.metadata?.name), ["before-start"]);

    await core.createNamespacedService({ namespace: ns, body: service("a") });
    await waitFor(() => informer.get("a", ns) !== undefined, 10_000, "add of a");
    await core.patchNamespacedService(
      { namespace: ns, name: "a", body: { metadata: { labels: { changed: "yes" } } } },
      mergePatch(),
    );
    await waitFor(
      () => informer.get("a", ns)?.metadata?.labels?.changed === "yes",
      10_000,
      "update of a",
    );
    await core.deleteNamespacedService({ namespace: ns, name: "a" });
    await waitFor(() => informer.get("a", ns) === undefined, 10_000, "delete of a");

    assert.deepEqual(seen, ["add:before-start", "add:a", "update:a", "delete:a"]);
  } finally {
    await informer.stop();
    connection.close();
    await c.deleteNamespace(ns);
  }
});

Deno.test({
  name: "informer survives the API server stopping and restarting mid-watch, and converges",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // A control plane of its own: stopping the shared one would disturb other tests.
    const cp = await ControlPlane.start({ binaries: await ensureBinaries() });
    const access =
      parseKubeconfig(Deno.readTextFileSync(cp.kubeconfigPath), cp.kubeconfigPath).access;
    const connection = new ApiConnection(access);
    const NS = "watched";
    const listCalls = { count: 0 };
    const watched = serviceInformer(connection, NS, listCalls);
    const core = typedApi(connection, CoreV1Api);
    try {
      await core.createNamespace({ body: { metadata: { name: NS } } });
      await core.createNamespacedService({ namespace: NS, body: service("old") });
      watched.start();
      await watched.synced;
      await waitFor(() => watched.get("old", NS) !== undefined, 10_000, "old in cache");

      await cp.stopApiServer();
      await cp.compactEtcd();
      // History before now is compacted away: resuming the watch gets 410 Gone -> relist.
      await cp.startApiServer();
      await core.createNamespacedService({ namespace: NS, body: service("new") });
      await core.deleteNamespacedService({ namespace: NS, name: "old" });

      await waitFor(
        () => watched.get("new", NS) !== undefined && !watched.get("old", NS),
        30_000,
        "the cache to hold new and not old after the restart",
      );
      assert.ok(watched.restarts >= 1, `restarted ${watched.restarts} times`);
      assert.equal(watched.lists, listCalls.count);
      const names = watched.list(NS).map((s) => s.metadata?.name);
      assert.deepEqual(names, ["new"]);
      assert.ok(listCalls.count >= 2, `relisted after 410 Gone (lists: ${listCalls.count})`);
    } finally {
      await watched.stop();
      connection.close();
      await cp.stop();
    }
  },
});
