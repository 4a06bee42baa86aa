import assert from "node:assert/strict";
import type { KubernetesObject } from "@kubernetes/client-node";
import { CustomObjectsApi, typedApi } from "./client.ts";
import {
  Annotations,
  asLBNodeAgent,
  asServiceGroup,
  EventReason,
  inspectLBNodeAgent,
  inspectServiceGroup,
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
    "purelb.io/service-group",
  ]);
  for (const [key, value] of Object.entries(EventReason)) assert.equal(value, key);
  assert.equal(Object.keys(EventReason).length, 9);
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

function group(overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: "purelb.io/v1",
    kind: "ServiceGroup",
    metadata,
    spec: { local: { v4pools: [{ pool: "192.0.2.0/30", subnet: "192.0.2.0/24" }] } },
    ...overrides,
  };
}

function agent(overrides: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: "purelb.io/v1",
    kind: "LBNodeAgent",
    metadata,
    spec: { local: { localint: "default", extlbint: "kube-lb0", sendgarp: false } },
    ...overrides,
  };
}

const pool = { pool: "2001:db8::/126", subnet: "2001:db8::/64", aggregation: "/128" };

const VALID_GROUPS: ReadonlyArray<{ readonly name: string; readonly value: unknown }> = [
  { name: "v4pools", value: group({}) },
  {
    name: "every local field, with unknown extra fields",
    value: group({
      metadata: {
        ...metadata,
        uid: "0b3d",
        resourceVersion: "12",
        generation: 3,
        labels: { team: "net" },
        annotations: { note: "x" },
        creationTimestamp: "2024-01-01T00:00:00Z",
        managedFields: [],
      },
      spec: {
        local: {
          v4pools: [],
          v6pools: [pool],
          v4pool: { pool: "192.0.2.0/30", subnet: "192.0.2.0/24" },
          v6pool: pool,
          pool: "198.51.100.1-198.51.100.9",
          subnet: "198.51.100.0/24",
          aggregation: "default",
          avoidBuggyIPs: true,
          futureField: 1,
        },
      },
    }),
  },
  { name: "netbox", value: group({ spec: { netbox: { url: "https://nb/", tenant: "t" } } }) },
  { name: "neither local nor netbox (the IPAM parser says so)", value: group({ spec: {} }) },
  {
    name: "full status",
    value: group({
      status: {
        observedGeneration: 3,
        conditions: [{
          type: "Valid",
          status: "False",
          observedGeneration: 3,
          lastTransitionTime: "2024-01-01T00:00:00Z",
          reason: "ParseFailed",
          message: "spec.local.v4pools[0].pool: bad",
        }],
        ipv4: { size: "4", inUse: 1, free: "3" },
        ipv6: { size: "18446744073709551616", inUse: 0, free: "18446744073709551616" },
      },
    }),
  },
];

const INVALID_GROUPS: ReadonlyArray<{ readonly value: unknown; readonly problem: string }> = [
  { value: null, problem: "object: must be an object, not null" },
  { value: "ServiceGroup", problem: "object: must be an object, not a string" },
  { value: [group({})], problem: "object: must be an object, not a list" },
  {
    value: group({ kind: "LBNodeAgent" }),
    problem: 'kind: must be "ServiceGroup", not "LBNodeAgent"',
  },
  { value: group({ apiVersion: "purelb.io/v2" }), problem: "apiVersion: must be" },
  { value: group({ apiVersion: undefined }), problem: "apiVersion: is required" },
  { value: group({ metadata: undefined }), problem: "metadata: is required" },
  { value: group({ metadata: {} }), problem: "metadata.name: is required" },
  { value: group({ metadata: { name: "" } }), problem: "metadata.name: must not be empty" },
  { value: group({ metadata: { name: 7 } }), problem: "metadata.name: must be a string" },
  {
    value: group({ metadata: { name: "a", generation: "3" } }),
    problem: "metadata.generation: must be an integer, not a string",
  },
  {
    value: group({ metadata: { name: "a", labels: { team: 1 } } }),
    problem: 'metadata.labels["team"]: must be a string, not a number',
  },
  { value: group({ spec: undefined }), problem: "spec: is required" },
  { value: group({ spec: [] }), problem: "spec: must be an object, not a list" },
  { value: group({ spec: { local: "x" } }), problem: "spec.local: must be an object" },
  {
    value: group({ spec: { local: { v4pools: { pool: "a", subnet: "b" } } } }),
    problem: "spec.local.v4pools: must be a list, not an object",
  },
  {
    value: group({ spec: { local: { v6pools: [pool, { pool: "a" }] } } }),
    problem: "spec.local.v6pools[1].subnet: is required",
  },
  {
    value: group({ spec: { local: { v4pools: [{ pool: 1, subnet: "b" }] } } }),
    problem: "spec.local.v4pools[0].pool: must be a string, not a number",
  },
  {
    value: group({ spec: { local: { v4pool: { ...pool, aggregation: 24 } } } }),
    problem: "spec.local.v4pool.aggregation: must be a string, not a number",
  },
  {
    value: group({ spec: { local: { v6pool: [pool] } } }),
    problem: "spec.local.v6pool: must be an object, not a list",
  },
  {
    value: group({ spec: { local: { pool: ["a"], subnet: "b" } } }),
    problem: "spec.local.pool: must be a string, not a list",
  },
  {
    value: group({ spec: { local: { pool: "a", subnet: null } } }),
    problem: "spec.local.subnet: must be a string, not null",
  },
  {
    value: group({ spec: { local: { aggregation: false } } }),
    problem: "spec.local.aggregation: must be a string, not a boolean",
  },
  {
    value: group({ spec: { local: { avoidBuggyIPs: "true" } } }),
    problem: "spec.local.avoidBuggyIPs: must be a boolean, not a string",
  },
  {
    value: group({ spec: { netbox: { url: "https://nb/" } } }),
    problem: "spec.netbox.tenant: is required",
  },
  {
    value: group({ spec: { netbox: { url: 5, tenant: "t" } } }),
    problem: "spec.netbox.url: must be a string, not a number",
  },
  {
    value: group({ spec: { netbox: { url: "u", tenant: "t", aggregation: {} } } }),
    problem: "spec.netbox.aggregation: must be a string, not an object",
  },
  { value: group({ status: "ok" }), problem: "status: must be an object, not a string" },
  {
    value: group({ status: { observedGeneration: 1.5 } }),
    problem: "status.observedGeneration: must be an integer, not a number",
  },
  {
    value: group({
      status: {
        conditions: [{
          type: "Valid",
          status: "true",
          lastTransitionTime: "t",
          reason: "r",
          message: "m",
        }],
      },
    }),
    problem: 'status.conditions[0].status: must be one of True, False, Unknown, not "true"',
  },
  {
    value: group({ status: { conditions: [{ type: "Valid", status: "True" }] } }),
    problem: "status.conditions[0].lastTransitionTime: is required",
  },
  {
    value: group({ status: { ipv4: { inUse: "1" } } }),
    problem: "status.ipv4.inUse: must be an integer, not a string",
  },
  {
    value: group({ status: { ipv6: { size: 4 } } }),
    problem: "status.ipv6.size: must be a string, not a number",
  },
];

Deno.test("asServiceGroup accepts every shape the CRD schema allows, as the same object", () => {
  for (const { name, value } of VALID_GROUPS) {
    assert.equal(asServiceGroup(value), value, name);
    assert.deepEqual(inspectServiceGroup(value), { kind: "valid", value }, name);
  }
});

Deno.test("asServiceGroup refuses wrong structure and names the first wrong field", () => {
  for (const { value, problem } of INVALID_GROUPS) {
    const result = inspectServiceGroup(value);
    assert.equal(result.kind, "invalid", `accepted ${JSON.stringify(value)}`);
    if (result.kind === "invalid") {
      assert.ok(
        result.problem.startsWith(problem),
        `expected a problem starting with ${JSON.stringify(problem)}, got ${
          JSON.stringify(result.problem)
        }`,
      );
    }
    assert.equal(asServiceGroup(value), undefined, problem);
  }
});

const VALID_AGENTS: ReadonlyArray<{ readonly name: string; readonly value: unknown }> = [
  { name: "every field", value: agent({}) },
  { name: "empty local (defaults not applied)", value: agent({ spec: { local: {} } }) },
  { name: "no local (announce nothing)", value: agent({ spec: {} }) },
  { name: "free-form status", value: agent({ status: { anything: [1, "two"] } }) },
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

clusterTest("objects read back from the API server narrow to our types", async (c) => {
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
    const narrowedGroup = inspectServiceGroup(groupJson);
    assert.equal(narrowedGroup.kind, "valid", JSON.stringify(narrowedGroup));
    const sg = asServiceGroup(groupJson);
    assert.deepEqual(sg?.spec, spec);
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
