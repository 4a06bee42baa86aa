import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { CustomObjectsApi, typedApi } from "./client.ts";
import {
  Annotations,
  asLBNodeAgent,
  EventReason,
  inspectLBNodeAgent,
  LB_NODE_AGENT_KIND,
  LB_NODE_AGENT_PLURAL,
  type LBNodeAgent,
  PURELB_API_VERSION,
  PURELB_GROUP,
  PURELB_VERSION,
  SERVICE_GROUP_KIND,
  SERVICE_GROUP_PLURAL,
  type ServiceGroup,
} from "./types.ts";
import { ApiConnection } from "./transport.ts";
import { clusterTest } from "../tests/cluster.ts";
import { parseServiceGroupSpec } from "../ipam/servicegroup.ts";

// Compile-time: our objects fit client-node's informer and list types.
const _serviceGroupIsKubernetesObject = (group: ServiceGroup): KubernetesObject => group;
const _lbNodeAgentIsKubernetesObject = (agent: LBNodeAgent): KubernetesObject => agent;

Deno.test("names match what PureLB users already rely on", () => {
  assert.equal(PURELB_API_VERSION, `${PURELB_GROUP}/${PURELB_VERSION}`);
  assert.deepEqual(Object.values(Annotations).sort(), [
    "purelb.io/addresses",
    "purelb.io/allocated-by",
    "purelb.io/allocated-from",
    "purelb.io/allow-local",
    "purelb.io/allow-shared-ip",
    "purelb.io/announcing-IPv4",
    "purelb.io/announcing-IPv6",
    "purelb.io/re-evaluate",
    "purelb.io/service-group",
  ]);
  for (const [key, value] of Object.entries(EventReason)) assert.equal(value, key);
  assert.equal(Object.keys(EventReason).length, 13);
});

Deno.test("the plurals and kinds match the CRD manifests", async () => {
  for (
    const [file, plural, kind] of [
      ["servicegroups.purelb.io.yaml", SERVICE_GROUP_PLURAL, SERVICE_GROUP_KIND],
      ["lbnodeagents.purelb.io.yaml", LB_NODE_AGENT_PLURAL, LB_NODE_AGENT_KIND],
    ] as const
  ) {
    const text = await Deno.readTextFile(new URL(`../deploy/crds/${file}`, import.meta.url));
    assert.match(text, new RegExp(`^\\s+group: ${PURELB_GROUP.replace(".", "\\.")}$`, "m"), file);
    assert.match(text, new RegExp(`^\\s+plural: ${plural}$`, "m"), file);
    assert.match(text, new RegExp(`^\\s+kind: ${kind}$`, "m"), file);
    assert.match(text, new RegExp(`^\\s+- name: ${PURELB_VERSION}$`, "m"), file);
  }
});

const metadata = { name: "default", namespace: "purelb-system" };

function agent(overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: "purelb.io/v1",
    kind: "LBNodeAgent",
    metadata,
    spec: { local: { localint: "default", extlbint: "kube-lb0", sendgarp: false } },
    ...overrides,
  };
}

const VALID_AGENTS: ReadonlyArray<{ readonly name: string; readonly value: unknown }> = [
  { name: "every field", value: agent({}) },
  { name: "empty local (defaults not applied)", value: agent({ spec: { local: {} } }) },
  { name: "no local (announce nothing)", value: agent({ spec: {} }) },
  { name: "free-form status", value: agent({ status: { anything: [1, "two"] } }) },
  {
    name: "a node selector",
    value: agent({
      spec: {
        local: {},
        nodeSelector: {
          matchLabels: { "example.com/edge": "true" },
          matchExpressions: [
            { key: "zone", operator: "In", values: ["a", "b"] },
            { key: "drain", operator: "DoesNotExist" },
          ],
        },
      },
    }),
  },
  { name: "an empty node selector", value: agent({ spec: { local: {}, nodeSelector: {} } }) },
  {
    // The operator's meaning is k8s/selector.ts's to check, with a message for the user.
    name: "an unknown operator (shape only)",
    value: agent({
      spec: { local: {}, nodeSelector: { matchExpressions: [{ key: "a", operator: "Is" }] } },
    }),
  },
];

const INVALID_AGENTS: ReadonlyArray<{ readonly value: unknown; readonly problem: string }> = [
  { value: undefined, problem: "object: must be an object, not undefined" },
  { value: agent({ kind: "ServiceGroup" }), problem: 'kind: must be "LBNodeAgent"' },
  { value: agent({ apiVersion: "v1" }), problem: 'apiVersion: must be "purelb.io/v1", not "v1"' },
  { value: agent({ metadata: { namespace: "x" } }), problem: "metadata.name: is required" },
  { value: agent({ spec: undefined }), problem: "spec: is required" },
  { value: agent({ spec: { local: true } }), problem: "spec.local: must be an object" },
  {
    value: agent({ spec: { local: { localint: 0 } } }),
    problem: "spec.local.localint: must be a string, not a number",
  },
  {
    value: agent({ spec: { local: { extlbint: ["kube-lb0"] } } }),
    problem: "spec.local.extlbint: must be a string, not a list",
  },
  {
    value: agent({ spec: { local: { sendgarp: "true" } } }),
    problem: "spec.local.sendgarp: must be a boolean, not a string",
  },
  { value: agent({ status: [] }), problem: "status: must be an object, not a list" },
  {
    value: agent({ spec: { nodeSelector: ["edge"] } }),
    problem: "spec.nodeSelector: must be an object, not a list",
  },
  {
    value: agent({ spec: { nodeSelector: { matchLabels: { edge: true } } } }),
    problem: 'spec.nodeSelector.matchLabels["edge"]: must be a string, not a boolean',
  },
  {
    value: agent({ spec: { nodeSelector: { matchExpressions: { key: "edge" } } } }),
    problem: "spec.nodeSelector.matchExpressions: must be a list, not an object",
  },
  {
    value: agent({ spec: { nodeSelector: { matchExpressions: [{ key: "edge" }] } } }),
    problem: "spec.nodeSelector.matchExpressions[0].operator: is required",
  },
  {
    value: agent({
      spec: {
        nodeSelector: { matchExpressions: [{ key: "edge", operator: "In", values: "a" }] },
      },
    }),
    problem: "spec.nodeSelector.matchExpressions[0].values: must be a list, not a string",
  },
];

Deno.test("asLBNodeAgent accepts every shape the CRD schema allows, as the same object", () => {
  for (const { name, value } of VALID_AGENTS) {
    assert.equal(asLBNodeAgent(value), value, name);
    assert.deepEqual(inspectLBNodeAgent(value), { kind: "valid", value }, name);
  }
});

Deno.test("asLBNodeAgent refuses wrong structure and names the first wrong field", () => {
  for (const { value, problem } of INVALID_AGENTS) {
    const result = inspectLBNodeAgent(value);
    assert.equal(result.kind, "invalid", `accepted ${JSON.stringify(value)}`);
    if (result.kind === "invalid") {
      assert.ok(
        result.problem.startsWith(problem),
        `expected a problem starting with ${JSON.stringify(problem)}, got ${
          JSON.stringify(result.problem)
        }`,
      );
    }
    assert.equal(asLBNodeAgent(value), undefined, problem);
  }
});

clusterTest("objects read back from the API server fit our types and readers", async (c) => {
  const ns = await c.createNamespace("types");
  const connection = new ApiConnection(c.adminConfig());
  try {
    const api = typedApi(connection, CustomObjectsApi);
    const where = { group: PURELB_GROUP, version: PURELB_VERSION, namespace: ns };
    const spec = {
      local: {
        v4pools: [{ pool: "192.0.2.0/30", subnet: "192.0.2.0/24", aggregation: "default" }],
        v6pool: { pool: "2001:db8::/126", subnet: "2001:db8::/64" },
        avoidBuggyIPs: true,
      },
    };
    await api.createNamespacedCustomObject({
      ...where,
      plural: SERVICE_GROUP_PLURAL,
      body: {
        apiVersion: PURELB_API_VERSION,
        kind: SERVICE_GROUP_KIND,
        metadata: { name: "sg" },
        spec,
      },
    });
    await api.patchNamespacedCustomObjectStatus({
      ...where,
      plural: SERVICE_GROUP_PLURAL,
      name: "sg",
      body: [{
        op: "add",
        path: "/status",
        value: {
          observedGeneration: 1,
          conditions: [{
            type: "Valid",
            status: "True",
            observedGeneration: 1,
            lastTransitionTime: "2024-01-01T00:00:00Z",
            reason: "Parsed",
            message: "ok",
          }],
          ipv4: { size: "4", inUse: 0, free: "4" },
        },
      }],
    });
    const groupJson: unknown = await api.getNamespacedCustomObject({
      ...where,
      plural: SERVICE_GROUP_PLURAL,
      name: "sg",
    });
    const sg = groupJson as ServiceGroup;
    assert.equal(parseServiceGroupSpec(sg.spec).kind, "valid", JSON.stringify(sg.spec));
    assert.deepEqual(sg.spec, spec);
    assert.equal(sg?.metadata.namespace, ns);
    assert.equal(sg?.status?.conditions?.[0]?.status, "True");
    assert.equal(sg?.status?.ipv4?.free, "4");

    await api.createNamespacedCustomObject({
      ...where,
      plural: LB_NODE_AGENT_PLURAL,
      body: {
        apiVersion: PURELB_API_VERSION,
        kind: LB_NODE_AGENT_KIND,
        metadata: { name: "lbna" },
        spec: { local: {} },
      },
    });
    const list: unknown = await api.listNamespacedCustomObject({
      ...where,
      plural: LB_NODE_AGENT_PLURAL,
    });
    const items = (list as { items?: unknown }).items;
    assert.ok(Array.isArray(items) && items.length === 1, JSON.stringify(list));
    const lbna = asLBNodeAgent(items[0]);
    assert.deepEqual(lbna?.spec, {
      local: { localint: "default", extlbint: "kube-lb0", sendgarp: false },
    });
  } finally {
    connection.close();
    await c.deleteNamespace(ns);
  }
});
