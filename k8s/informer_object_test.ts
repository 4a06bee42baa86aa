import assert from "node:assert/strict";
import type { V1Node } from "@kubernetes/client-node";
import { CoreV1Api, mergePatch, typedApi } from "./client.ts";
import { apiStatusCode } from "./errors.ts";
import { ResilientInformer } from "./informer.ts";
import { slimMetadata } from "./slim.ts";
import { ApiConnection } from "./transport.ts";
import { clusterTest } from "../tests/cluster.ts";
import { waitFor } from "../tests/wait.ts";

/** Keeps the name and the labels only. */
function labelsOnly(node: V1Node): V1Node {
  return { metadata: { ...slimMetadata(node.metadata), labels: node.metadata?.labels ?? {} } };
}

clusterTest(
  "an informer with objectName follows one Node with get and watch only, from absent to deleted",
  async (c) => {
    const ns = await c.createNamespace("object-cache");
    const name = `cache-node-${crypto.randomUUID().slice(0, 8)}`;
    const admin = new ApiConnection(c.adminConfig());
    const core = typedApi(admin, CoreV1Api);
    await c.grant(ns, "reader", [{
      apiGroups: [""],
      resources: ["nodes"],
      verbs: ["get", "watch"],
    }]);
    const connection = new ApiConnection(await c.serviceAccountConfig(ns, "reader"));
    const cache = new ResilientInformer<V1Node>(connection, {
      name: "node",
      path: "/api/v1/nodes",
      objectName: name,
      transform: labelsOnly,
      initialBackoffMs: 50,
      maxBackoffMs: 500,
    });
    const seen: string[] = [];
    cache.onChange((type, node) => seen.push(`${type}:${JSON.stringify(node.metadata?.labels)}`));
    try {
      // The account may not list nodes: the cache does not need to.
      const listed = await typedApi(connection, CoreV1Api).listNode().then(
        () => 200,
        (error) => apiStatusCode(error),
      );
      assert.equal(listed, 403, "the reader may not list nodes");

      cache.start();
      await cache.synced;
      assert.equal(cache.get(name), undefined, "a Node that does not exist is an empty cache");
      assert.deepEqual(cache.list(), []);

      await core.createNode({ body: { metadata: { name, labels: { role: "edge" } } } });
      await waitFor(() => cache.get(name)?.metadata?.labels?.role === "edge", 10_000, "add");
      await core.patchNode(
        { name, body: { metadata: { labels: { role: "worker" } } } },
        mergePatch(),
      );
      await waitFor(() => cache.get(name)?.metadata?.labels?.role === "worker", 10_000, "relabel");
      // A change of anything else is no change of the cached view.
      const received = cache.received;
      await core.patchNode(
        { name, body: { metadata: { annotations: { "example.com/x": "y" } } } },
        mergePatch(),
      );
      await waitFor(() => cache.received > received, 10_000, "the annotation's watch event");
      await core.deleteNode({ name });
      await waitFor(() => cache.get(name) === undefined, 10_000, "delete");
      assert.deepEqual(seen, [
        'add:{"role":"edge"}',
        'update:{"role":"worker"}',
        'delete:{"role":"worker"}',
      ]);
      assert.equal(cache.get("another-node"), undefined);
      assert.equal(cache.lists, 1, "one GET, then the watch did the rest");
      assert.equal(cache.restarts, 0);
    } finally {
      await cache.stop();
      connection.close();
      await core.deleteNode({ name }).catch(() => {});
      admin.close();
      await c.revoke(ns, "reader");
      await c.deleteNamespace(ns);
    }
  },
);

clusterTest(
  "an informer of one object that may not read it retries and tells why",
  async (c) => {
    const ns = await c.createNamespace("object-cache-denied");
    const connection = new ApiConnection(await c.serviceAccountConfig(ns, "nobody"));
    const errors: string[] = [];
    const cache = new ResilientInformer<V1Node>(connection, {
      name: "node",
      path: "/api/v1/nodes",
      objectName: "denied-node",
      transform: labelsOnly,
      initialBackoffMs: 20,
      maxBackoffMs: 40,
      onError: (error) => errors.push(String(error)),
    });
    try {
      cache.start();
      await waitFor(() => errors.length >= 2, 10_000, "two failed reads");
      assert.equal(cache.hasSynced, false);
      assert.match(errors[0] ?? "", /403/);
    } finally {
      await cache.stop();
      connection.close();
      await c.deleteNamespace(ns);
    }
  },
);
