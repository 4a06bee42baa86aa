import assert from "node:assert/strict";
import type { V1Service } from "@kubernetes/client-node";
import { CoreV1Api, typedApi } from "./client.ts";
import { parseKubeconfig } from "./config.ts";
import { ResilientInformer } from "./informer.ts";
import { mergePatch } from "./client.ts";
import { slimMetadata, withoutVersion } from "./slim.ts";
import { ApiConnection } from "./transport.ts";
import { clusterTest } from "../tests/cluster.ts";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { ensureBinaries } from "../tests/controlplane/binaries.ts";
import { waitFor } from "../tests/wait.ts";

function service(name: string, port = 80): V1Service {
  return { metadata: { name }, spec: { ports: [{ port, protocol: "TCP" }] } };
}

function serviceInformer(connection: ApiConnection, namespace: string) {
  return new ResilientInformer<V1Service>(connection, {
    name: "services",
    path: `/api/v1/namespaces/${namespace}/services`,
    transform: withoutVersion,
    initialBackoffMs: 50,
    maxBackoffMs: 500,
  });
}

clusterTest("informer sees adds, updates and deletes of Services", async (c) => {
  const ns = await c.createNamespace("informer");
  const connection = new ApiConnection(c.adminConfig());
  const core = typedApi(connection, CoreV1Api);
  await core.createNamespacedService({ namespace: ns, body: service("before-start") });

  const informer = serviceInformer(connection, ns);
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

clusterTest(
  "informer lists in pages and caches transformed objects: an update of a dropped field is no change",
  async (c) => {
    const ns = await c.createNamespace("informer-slim");
    const connection = new ApiConnection(c.adminConfig());
    const core = typedApi(connection, CoreV1Api);
    const names = ["p0", "p1", "p2", "p3", "p4"];
    for (const name of names) {
      await core.createNamespacedService({ namespace: ns, body: service(name) });
    }
    // Keeps name, namespace and the "kept" label only.
    const informer = new ResilientInformer<V1Service>(connection, {
      name: "services",
      path: `/api/v1/namespaces/${ns}/services`,
      pageSize: 2,
      transform: (svc) => ({
        metadata: slimMetadata(svc.metadata, { labels: ["kept"] }),
      }),
    });
    const seen: string[] = [];
    informer.onChange((type, svc, previous) =>
      seen.push(`${type}:${svc.metadata?.name}:${previous?.metadata?.labels?.kept ?? "-"}`)
    );
    informer.start();
    try {
      await informer.synced;
      assert.deepEqual(informer.list().map((s) => s.metadata?.name).sort(), names);
      assert.deepEqual(informer.get("p0", ns), { metadata: { name: "p0", namespace: ns } });

      const label = (name: string, labels: Record<string, string>) =>
        core.patchNamespacedService(
          { namespace: ns, name, body: { metadata: { labels } } },
          mergePatch(),
        );
      for (let i = 0; i < 5; i++) await label("p0", { dropped: String(i) });
      await label("p1", { kept: "one" });
      await label("p1", { kept: "two" });
      await waitFor(
        () => informer.get("p1", ns)?.metadata?.labels?.kept === "two",
        10_000,
        "second update of p1",
      );
      assert.deepEqual(seen.filter((e) => !e.startsWith("add:")), [
        "update:p1:-",
        "update:p1:one",
      ]);
      assert.equal(informer.get("p0", ns)?.metadata?.labels, undefined);
    } finally {
      await informer.stop();
      connection.close();
      await c.deleteNamespace(ns);
    }
  },
);

clusterTest(
  "informer: a transform that keeps nothing leaves no entry; an object that stops mattering reads as deleted; reload brings what came to matter",
  async (c) => {
    const ns = await c.createNamespace("informer-keep");
    const connection = new ApiConnection(c.adminConfig());
    const core = typedApi(connection, CoreV1Api);
    const label = (name: string, labels: Record<string, string | null>) =>
      core.patchNamespacedService(
        { namespace: ns, name, body: { metadata: { labels } } },
        mergePatch(),
      );
    // What matters: Services labelled keep=yes, or named in `wanted`.
    const wanted = new Set<string>();
    const informer = new ResilientInformer<V1Service>(connection, {
      name: "services",
      path: `/api/v1/namespaces/${ns}/services`,
      transform: (svc) =>
        svc.metadata?.labels?.keep === "yes" || wanted.has(svc.metadata?.name ?? "")
          ? { metadata: slimMetadata(svc.metadata, { labels: ["keep"] }) }
          : undefined,
    });
    const seen: string[] = [];
    informer.onChange((type, svc) => seen.push(`${type}:${svc.metadata?.name}`));
    await core.createNamespacedService({ namespace: ns, body: service("kept") });
    await label("kept", { keep: "yes" });
    await core.createNamespacedService({ namespace: ns, body: service("other") });
    informer.start();
    try {
      await informer.synced;
      assert.deepEqual(informer.list().map((s) => s.metadata?.name), ["kept"]);
      await label("kept", { keep: null });
      await waitFor(() => informer.get("kept", ns) === undefined, 10_000, "kept to be dropped");
      wanted.add("other");
      await informer.reload({ fieldSelector: "metadata.name=other" });
      assert.ok(informer.get("other", ns) !== undefined, "other reloaded");
      await core.deleteNamespacedService({ namespace: ns, name: "other" });
      await waitFor(() => informer.get("other", ns) === undefined, 10_000, "other deleted");
      assert.deepEqual(seen, ["add:kept", "delete:kept", "add:other", "delete:other"]);
      assert.ok(informer.unchanged >= 1, "the dropped object counted as unchanged");
    } finally {
      await informer.stop();
      connection.close();
      await c.deleteNamespace(ns);
    }
  },
);

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
    const watched = serviceInformer(connection, NS);
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
      const names = watched.list(NS).map((s) => s.metadata?.name);
      assert.deepEqual(names, ["new"]);
      assert.ok(watched.lists >= 2, `relisted after 410 Gone (lists: ${watched.lists})`);
    } finally {
      await watched.stop();
      connection.close();
      await cp.stop();
    }
  },
});
