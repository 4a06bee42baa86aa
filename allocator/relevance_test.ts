import assert from "node:assert/strict";
import type { V1Service } from "@kubernetes/client-node";
import {
  allocatorServiceView,
  groupView,
  isOutOfScope,
  serviceChangeConcernsAllocator,
} from "./relevance.ts";
import { readServiceIntent } from "./request.ts";

const settings = { handleClasslessServices: true };
const view = allocatorServiceView(settings);

const lb = (overrides: Partial<NonNullable<V1Service["spec"]>> = {}, extra: {
  annotations?: Record<string, string>;
  ingress?: string[];
  resourceVersion?: string;
  labels?: Record<string, string>;
} = {}): V1Service => ({
  metadata: {
    name: "web",
    namespace: "shop",
    uid: "u-1",
    creationTimestamp: "2026-12-01T00:00:00Z" as never,
    resourceVersion: extra.resourceVersion ?? "1",
    labels: extra.labels ?? {},
    annotations: extra.annotations ?? {},
    managedFields: [{ manager: "kubectl" }],
  },
  spec: {
    type: "LoadBalancer",
    ports: [{ port: 80, protocol: "TCP", targetPort: 8080 as never }],
    ...overrides,
  },
  status: { loadBalancer: { ingress: (extra.ingress ?? []).map((ip) => ({ ip, ipMode: "VIP" })) } },
});

const clusterIp = (labels: Record<string, string> = {}): V1Service => ({
  metadata: { name: "db", namespace: "shop", labels },
  spec: { type: "ClusterIP", clusterIP: "10.0.0.5", ports: [{ port: 5432 }] },
});

Deno.test("isOutOfScope: table", async (t) => {
  const marked = { "purelb.io/allocated-by": "PureLB", "purelb.io/allocated-from": "default" };
  const cases: [string, V1Service, boolean][] = [
    ["ClusterIP", clusterIp(), true],
    ["LoadBalancer, no class", lb(), false],
    ["LoadBalancer, our class", lb({ loadBalancerClass: "purelb.io/purelb" }), false],
    ["LoadBalancer, another class", lb({ loadBalancerClass: "example.com/lb" }), true],
    [
      "ClusterIP still carrying our marks",
      lb({ type: "ClusterIP" }, { annotations: marked }),
      false,
    ],
    [
      "ClusterIP with an ingress address",
      lb({ type: "ClusterIP" }, { ingress: ["192.0.2.1"] }),
      false,
    ],
  ];
  for (const [name, service, expected] of cases) {
    await t.step(name, () => assert.equal(isOutOfScope(service, settings), expected));
  }
  assert.equal(isOutOfScope(lb(), { handleClasslessServices: false }), true);
});

Deno.test("serviceChangeConcernsAllocator: table", async (t) => {
  const cases: [string, V1Service | undefined, V1Service | undefined, boolean][] = [
    ["ClusterIP created", undefined, view(clusterIp()), false],
    ["ClusterIP deleted", view(clusterIp()), undefined, false],
    ["ClusterIP changed", view(clusterIp()), view(clusterIp({ a: "b" })), false],
    ["LoadBalancer created", undefined, view(lb()), true],
    ["LoadBalancer deleted", view(lb()), undefined, true],
    ["ClusterIP became a LoadBalancer", view(clusterIp()), view(lb()), true],
    ["LoadBalancer became ClusterIP", view(lb()), view(clusterIp()), true],
    [
      "our class changed to another",
      view(lb()),
      view(lb({ loadBalancerClass: "example.com/lb" })),
      true,
    ],
    [
      "another class, changed",
      view(lb({ loadBalancerClass: "example.com/lb" })),
      view(lb({
        loadBalancerClass: "example.com/lb",
        ipFamilies: ["IPv6"],
      })),
      false,
    ],
  ];
  for (const [name, before, after, expected] of cases) {
    await t.step(
      name,
      () => assert.equal(serviceChangeConcernsAllocator(before, after, settings), expected),
    );
  }
});

Deno.test("allocatorServiceView: the intent is read the same; churn-only fields are dropped", () => {
  const raw = lb({
    ipFamilies: ["IPv4", "IPv6"],
    ipFamilyPolicy: "RequireDualStack",
    externalTrafficPolicy: "Local",
    loadBalancerIP: "192.0.2.9",
  }, {
    annotations: {
      "purelb.io/allow-shared-ip": "k",
      "purelb.io/service-group": "g",
      "x.io/y": "z",
    },
    ingress: ["192.0.2.9"],
  });
  const slim = view(raw);
  assert.ok(slim !== undefined);
  assert.deepEqual(readServiceIntent(slim, settings), readServiceIntent(raw, settings));
  assert.equal(slim.metadata?.resourceVersion, undefined);
  assert.equal(slim.metadata?.managedFields, undefined);
  assert.equal(slim.metadata?.annotations?.["x.io/y"], undefined);
  assert.deepEqual(view(lb({}, { resourceVersion: "2", labels: { a: "b" } })), view(lb()));
  // Out of scope: not cached at all.
  assert.equal(view(lb({ loadBalancerClass: "example.com/lb" })), undefined);
  assert.equal(view(clusterIp()), undefined);
});

Deno.test("groupView keeps spec, status and generation; drops versions", () => {
  assert.deepEqual(
    groupView({
      metadata: {
        name: "g",
        namespace: "ns",
        uid: "u",
        generation: 3,
        resourceVersion: "7",
        managedFields: [],
      },
      spec: { local: {} },
      status: { conditions: [] },
    }),
    {
      metadata: { name: "g", namespace: "ns", uid: "u", generation: 3 },
      spec: { local: {} },
      status: { conditions: [] },
    },
  );
});

Deno.test("the allocator's views keep the re-evaluate annotation and the tenancy fields", () => {
  const view = allocatorServiceView({ handleClasslessServices: true });
  const kept = view({
    metadata: {
      name: "web",
      namespace: "team-a",
      annotations: { "purelb.io/re-evaluate": "true", "example.com/other": "x" },
    },
    spec: { type: "LoadBalancer" },
  });
  assert.deepEqual(kept?.metadata?.annotations, { "purelb.io/re-evaluate": "true" });
  assert.equal(kept?.metadata?.namespace, "team-a");
  const spec = {
    local: {},
    namespaces: ["team-a"],
    enforceNamespaces: true,
    namespaceDefault: false,
  };
  assert.deepEqual(groupView({ metadata: { name: "a" }, spec }).spec, spec);
});

Deno.test("serviceChangeConcernsAllocator: the announcing annotations alone ask for no allocation", () => {
  const marks = { "purelb.io/allocated-by": "PureLB", "purelb.io/allocated-from": "default" };
  const before = view(lb({}, { annotations: marks, ingress: ["192.0.2.10"] }));
  const announced = view(lb({}, {
    annotations: { ...marks, "purelb.io/announcing-IPv4": "node-a,eth0,192.0.2.10" },
    ingress: ["192.0.2.10"],
  }));
  assert.ok(announced?.metadata?.annotations?.["purelb.io/announcing-IPv4"], "the view keeps it");
  assert.equal(serviceChangeConcernsAllocator(before, announced, settings), false);
  assert.equal(serviceChangeConcernsAllocator(announced, before, settings), false);
  const regrouped = view(lb({}, {
    annotations: {
      ...marks,
      "purelb.io/announcing-IPv4": "node-b,eth0,192.0.2.10",
      "purelb.io/service-group": "other",
    },
    ingress: ["192.0.2.10"],
  }));
  assert.equal(serviceChangeConcernsAllocator(announced, regrouped, settings), true);
});
