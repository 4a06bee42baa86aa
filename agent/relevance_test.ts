import assert from "node:assert/strict";
import type { V1EndpointSlice, V1Lease, V1Service } from "@kubernetes/client-node";
import {
  agentLeaseView,
  agentServiceView,
  agentSliceView,
  leaseChangeMatters,
  nodeLabelsView,
  serviceChangeMatters,
  sliceChangeMatters,
  specView,
} from "./relevance.ts";
import { serviceAnnouncement } from "./announce.ts";

const ours = (overrides: {
  ip?: string;
  etp?: "Local" | "Cluster";
  type?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  resourceVersion?: string;
} = {}): V1Service => ({
  metadata: {
    name: "web",
    namespace: "shop",
    uid: "u-1",
    resourceVersion: overrides.resourceVersion ?? "1",
    labels: overrides.labels ?? {},
    annotations: {
      "purelb.io/allocated-by": "PureLB",
      "purelb.io/allocated-from": "default",
      ...overrides.annotations,
    },
    managedFields: [{ manager: "kubectl", operation: "Update" }],
  },
  spec: {
    type: overrides.type ?? "LoadBalancer",
    externalTrafficPolicy: overrides.etp ?? "Cluster",
    selector: { app: "web" },
    ports: [{ port: 80 }],
  },
  status: { loadBalancer: { ingress: [{ ip: overrides.ip ?? "192.0.2.10", ipMode: "VIP" }] } },
});

const clusterIp = (labels: Record<string, string> = {}): V1Service => ({
  metadata: { name: "db", namespace: "shop", labels, annotations: { "other.io/x": "y" } },
  spec: { type: "ClusterIP", clusterIP: "10.0.0.5", ports: [{ port: 5432 }] },
});

const view = agentServiceView;

Deno.test("serviceChangeMatters: table", async (t) => {
  const cases: [string, V1Service | undefined, V1Service | undefined, boolean][] = [
    ["a ClusterIP Service (not cached) changed", undefined, view(clusterIp({ a: "b" })), false],
    ["a ClusterIP Service, raw, relabelled", clusterIp(), clusterIp({ a: "b" }), false],
    ["our Service created", undefined, view(ours()), true],
    ["our Service deleted", view(ours()), undefined, true],
    [
      "resourceVersion, labels, foreign annotations only",
      view(ours()),
      view(ours({
        resourceVersion: "2",
        labels: { team: "a" },
        annotations: { "example.com/note": "x" },
      })),
      false,
    ],
    ["ingress address changed", view(ours()), view(ours({ ip: "192.0.2.11" })), true],
    ["traffic policy changed", view(ours()), view(ours({ etp: "Local" })), true],
    [
      "allow-local set",
      view(ours()),
      view(ours({ annotations: { "purelb.io/allow-local": "true" } })),
      true,
    ],
    ["left type LoadBalancer", view(ours()), view(ours({ type: "ClusterIP" })), true],
    [
      "not ours before and after, type changed",
      view(clusterIp()),
      view({
        ...clusterIp(),
        spec: { type: "LoadBalancer" },
      }),
      false,
    ],
  ];
  for (const [name, before, after, expected] of cases) {
    await t.step(name, () => assert.equal(serviceChangeMatters(before, after), expected));
  }
});

Deno.test("agentServiceView keeps what the announcement reads and nothing that churns", () => {
  const raw = ours({
    etp: "Local",
    annotations: { "purelb.io/allow-local": "yes", "x.io/y": "z" },
  });
  const slim = view(raw);
  assert.ok(slim !== undefined);
  assert.deepEqual(serviceAnnouncement(slim), serviceAnnouncement(raw));
  assert.equal(slim.metadata?.resourceVersion, undefined);
  assert.equal(slim.metadata?.managedFields, undefined);
  assert.equal(slim.metadata?.annotations?.["x.io/y"], undefined);
  assert.equal(slim.metadata?.uid, "u-1");
  // A Service that is not ours is not cached at all.
  assert.equal(view(clusterIp()), undefined);
});

const slice = (
  service: string,
  endpoints: NonNullable<V1EndpointSlice["endpoints"]>,
  resourceVersion = "1",
): V1EndpointSlice => ({
  metadata: {
    name: `${service}-abc`,
    namespace: "shop",
    resourceVersion,
    labels: {
      "kubernetes.io/service-name": service,
      "endpointslice.kubernetes.io/managed-by": "x",
    },
  },
  addressType: "IPv4",
  endpoints,
  ports: [{ port: 8080 }],
});

Deno.test("sliceChangeMatters: only slices of our ETP Local Services", async (t) => {
  const local = serviceAnnouncement(ours({ etp: "Local" }));
  const cluster = serviceAnnouncement(ours());
  const lookup = (key: string) =>
    key === "shop/web-local" ? local : key === "shop/web-cluster" ? cluster : undefined;
  const ep = (node: string, ready: boolean) => [{
    addresses: ["10.1.0.1"],
    nodeName: node,
    conditions: { ready },
  }];
  const cases: [string, V1EndpointSlice | undefined, V1EndpointSlice | undefined, boolean][] = [
    [
      "slice of a Service not ours",
      slice("db", ep("n1", true)),
      slice("db", ep("n2", true)),
      false,
    ],
    [
      "slice of an ETP Cluster Service",
      slice("web-cluster", ep("n1", true)),
      slice("web-cluster", ep("n1", false)),
      false,
    ],
    [
      "slice of an ETP Local Service",
      slice("web-local", ep("n1", true)),
      slice("web-local", ep("n1", false)),
      true,
    ],
    ["new slice of an ETP Local Service", undefined, slice("web-local", ep("n1", true)), true],
    ["deleted slice of an ETP Local Service", slice("web-local", ep("n1", true)), undefined, true],
    ["slice without a service label", undefined, {
      metadata: { name: "x", namespace: "shop" },
      addressType: "IPv4",
      endpoints: [],
    }, false],
  ];
  for (const [name, before, after, expected] of cases) {
    await t.step(name, () => assert.equal(sliceChangeMatters(before, after, lookup), expected));
  }
});

Deno.test("agentSliceView drops ports, zones, hints, targetRef and versions", () => {
  const raw = slice("web", [{
    addresses: ["10.1.0.1"],
    nodeName: "n1",
    zone: "z",
    targetRef: { kind: "Pod", name: "p", resourceVersion: "77" },
    conditions: { ready: true, serving: true, terminating: false },
  }], "5");
  const again = slice("web", [{
    addresses: ["10.1.0.1"],
    nodeName: "n1",
    zone: "other",
    targetRef: { kind: "Pod", name: "p", resourceVersion: "78" },
    conditions: { ready: true, serving: true, terminating: false },
  }], "6");
  assert.deepEqual(agentSliceView(raw), agentSliceView(again));
  assert.deepEqual(agentSliceView(raw), {
    metadata: {
      name: "web-abc",
      namespace: "shop",
      labels: { "kubernetes.io/service-name": "web" },
    },
    addressType: "IPv4",
    endpoints: [{
      addresses: ["10.1.0.1"],
      nodeName: "n1",
      conditions: { ready: true, serving: true },
    }],
  });
});

const lease = (
  name: string,
  renewTime: string,
  subnets = "192.0.2.0/24",
  seconds = 6,
): V1Lease => ({
  metadata: {
    name,
    namespace: "purelb-system",
    resourceVersion: renewTime,
    annotations: { "purelb.io/subnets": subnets },
  },
  spec: {
    holderIdentity: name.replace("purelb-node-", ""),
    renewTime: renewTime as never,
    leaseDurationSeconds: seconds,
  },
});

Deno.test("leaseChangeMatters: table", async (t) => {
  const t0 = "2026-12-01T00:00:00.000000Z";
  const t1 = "2026-12-01T00:00:02.000000Z";
  const v = agentLeaseView;
  const cases: [string, V1Lease | undefined, V1Lease | undefined, boolean, boolean][] = [
    [
      "renewal of a live node Lease",
      v(lease("purelb-node-a", t0)),
      v(lease("purelb-node-a", t1)),
      true,
      false,
    ],
    [
      "renewal of an expired node Lease",
      v(lease("purelb-node-a", t0)),
      v(lease("purelb-node-a", t1)),
      false,
      true,
    ],
    ["new node", undefined, v(lease("purelb-node-b", t0)), false, true],
    ["node gone", v(lease("purelb-node-b", t0)), undefined, true, true],
    [
      "subnets changed",
      v(lease("purelb-node-a", t0)),
      v(lease("purelb-node-a", t1, "192.0.2.0/24,2001:db8::/64")),
      true,
      true,
    ],
    [
      "duration changed",
      v(lease("purelb-node-a", t0)),
      v(lease("purelb-node-a", t1, undefined, 10)),
      true,
      true,
    ],
    [
      "the allocator's leader Lease renewed",
      v(lease("purelb-allocator", t0)),
      v(lease("purelb-allocator", t1)),
      false,
      false,
    ],
  ];
  for (const [name, before, after, wasLive, expected] of cases) {
    await t.step(name, () => assert.equal(leaseChangeMatters(before, after, wasLive), expected));
  }
});

Deno.test("specView drops status and versions", () => {
  assert.deepEqual(
    specView({
      apiVersion: "purelb.io/v1",
      kind: "LBNodeAgent",
      metadata: {
        name: "default",
        namespace: "purelb-system",
        generation: 4,
        resourceVersion: "9",
      },
      spec: { local: { v4pools: [] } },
      status: { conditions: [{ type: "Valid" }] },
    } as { metadata: { name: string }; spec: unknown; status: unknown }),
    {
      apiVersion: "purelb.io/v1",
      kind: "LBNodeAgent",
      metadata: { name: "default", namespace: "purelb-system" },
      spec: { local: { v4pools: [] } },
    },
  );
});

Deno.test("nodeLabelsView keeps the name and every label, nothing that changes with heartbeats", () => {
  const node = {
    metadata: {
      name: "node-a",
      resourceVersion: "41",
      uid: "u",
      labels: { zone: "a", "example.com/edge": "" },
      annotations: { "node.alpha.kubernetes.io/ttl": "0" },
    },
    status: { conditions: [{ type: "Ready", status: "True" }] },
  };
  assert.deepEqual(nodeLabelsView(node), {
    metadata: { name: "node-a", labels: { zone: "a", "example.com/edge": "" } },
  });
  assert.deepEqual(nodeLabelsView({ metadata: { name: "bare" } }), {
    metadata: { name: "bare", labels: {} },
  });
});

Deno.test("agentServiceView: the allocator's announcing annotations are no change for agents", () => {
  const plain = agentServiceView(ours());
  const announced = agentServiceView(ours({
    annotations: {
      "purelb.io/announcing-IPv4": "node-a,eth0,192.0.2.10",
      "purelb.io/announcing-IPv6": "node-a,eth0,2001:db8::10",
    },
  }));
  assert.deepEqual(announced, plain);
  assert.equal(serviceChangeMatters(plain, announced), false);
});
