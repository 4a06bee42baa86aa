import assert from "node:assert/strict";
import { CustomObjectsApi, typedApi } from "../k8s/client.ts";
import { clusterTest } from "./cluster.ts";
import { errorMessage } from "../k8s/errors.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { asLBNodeAgent } from "../k8s/types.ts";
import { applyingSettings } from "../agent/settings.ts";
import { parseAllDocuments } from "yaml";

const GROUP = "purelb.io";
const LOCAL = { local: { v4pools: [{ pool: "192.0.2.0/28", subnet: "192.0.2.0/24" }] } };
const VERSION = "v1";

async function createExpectingRejection(
  api: CustomObjectsApi,
  namespace: string,
  plural: string,
  kind: string,
  spec: unknown,
): Promise<string> {
  try {
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { generateName: "bad-" }, spec },
    });
  } catch (error) {
    return errorMessage(error);
  }
  assert.fail(`the API server accepted ${kind} spec ${JSON.stringify(spec)}`);
}

clusterTest("ServiceGroup shape errors are refused at admission, naming the field", async (c) => {
  const ns = await c.createNamespace("crd-sg");
  const api = typedApi(new ApiConnection(c.adminConfig()), CustomObjectsApi);
  const cases: ReadonlyArray<{ spec: unknown; field: string; says: RegExp }> = [
    {
      spec: { local: { v4pools: [{ pool: "192.0.2.5", subnet: "192.0.2.0/24" }] } },
      field: "spec.local.v4pools[0].pool",
      says: /bare address is not a pool/,
    },
    {
      spec: { local: { v6pools: [{ pool: "not an address", subnet: "2001:db8::/64" }] } },
      field: "spec.local.v6pools[0].pool",
      says: /range "A-B" or a CIDR/,
    },
    {
      spec: {
        local: { v4pools: [{ pool: "192.0.2.0/28", subnet: "192.0.2.0/24", aggregation: "24" }] },
      },
      field: "spec.local.v4pools[0].aggregation",
      says: /"\/N" with the slash/,
    },
    {
      spec: {
        local: { pool: "192.0.2.0/28", subnet: "192.0.2.0/24" },
        netbox: { url: "https://netbox.example/", tenant: "t" },
      },
      field: "spec",
      says: /exactly one of spec.local and spec.netbox/,
    },
    { spec: {}, field: "spec", says: /exactly one of spec.local and spec.netbox/ },
    {
      spec: { local: { v4pool: { pool: "192.0.2.0/28", subnet: "192.0.2.0" } } },
      field: "spec.local.v4pool.subnet",
      says: /must be a CIDR/,
    },
    {
      spec: { local: { pool: "192.0.2.0/28" } },
      field: "spec.local",
      says: /pool and spec.local.subnet must be set together/,
    },
    {
      spec: { netbox: { url: "netbox.example", tenant: "t" } },
      field: "spec.netbox.url",
      says: /http\(s\) URL/,
    },
    {
      spec: { ...LOCAL, enforceNamespaces: true },
      field: "spec.enforceNamespaces",
      says: /needs spec.namespaces/,
    },
    {
      spec: { ...LOCAL, namespaceDefault: true },
      field: "spec.namespaceDefault",
      says: /needs spec.namespaces/,
    },
    {
      spec: { ...LOCAL, namespaces: ["team-a", "Team_B"] },
      field: "spec.namespaces[1]",
      says: /should match/,
    },
    {
      spec: { ...LOCAL, namespaces: ["x".repeat(64)] },
      field: "spec.namespaces[0]",
      says: /at most 63|may not be more than 63|Too long/,
    },
    {
      spec: { ...LOCAL, namespaces: ["team-a", "team-a"] },
      field: "spec.namespaces[1]",
      says: /Duplicate value/,
    },
    {
      spec: { ...LOCAL, namespaces: Array.from({ length: 1025 }, (_, i) => `ns-${i}`) },
      field: "spec.namespaces",
      says: /must have at most 1024 items|Too many/,
    },
  ];
  for (const { spec, field, says } of cases) {
    const message = await createExpectingRejection(api, ns, "servicegroups", "ServiceGroup", spec);
    assert.ok(message.includes(`${field}:`), `message names ${field}: ${message}`);
    assert.match(message, says);
  }
  await c.deleteNamespace(ns);
});

clusterTest("valid ServiceGroups in every accepted form are admitted unchanged", async (c) => {
  const ns = await c.createNamespace("crd-sg-ok");
  const api = typedApi(new ApiConnection(c.adminConfig()), CustomObjectsApi);
  const specs = [
    {
      local: {
        v4pools: [{
          pool: " 192.0.2.10 - 192.0.2.20 ",
          subnet: "192.0.2.0/24",
          aggregation: "/32",
        }],
        v6pools: [{ pool: "2001:db8::1/112", subnet: "2001:db8::/64", aggregation: "default" }],
      },
    },
    { local: { v4pool: { pool: "198.51.100.0/30", subnet: "198.51.100.0/24" } } },
    { local: { pool: "203.0.113.1-203.0.113.2", subnet: "203.0.113.0/24", aggregation: "" } },
    { netbox: { url: "https://netbox.example/", tenant: "lab", aggregation: "/128" } },
    { ...LOCAL, namespaces: ["team-a", "b2"], enforceNamespaces: true, namespaceDefault: true },
    { ...LOCAL, namespaces: [], enforceNamespaces: false, namespaceDefault: false },
    { ...LOCAL, enforceNamespaces: false },
  ];
  for (const [i, spec] of specs.entries()) {
    const name = `ok-${i}`;
    await api.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: "servicegroups",
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: "ServiceGroup", metadata: { name }, spec },
    });
    const stored = await api.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: ns,
      plural: "servicegroups",
      name,
    }) as { spec: unknown };
    assert.deepEqual(stored.spec, spec);
  }
  await c.deleteNamespace(ns);
});

clusterTest("LBNodeAgent gets defaults and refuses a bad interface name", async (c) => {
  const ns = await c.createNamespace("crd-lbna");
  const api = typedApi(new ApiConnection(c.adminConfig()), CustomObjectsApi);
  await api.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: "lbnodeagents",
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: "LBNodeAgent",
      metadata: { name: "default" },
      spec: { local: {} },
    },
  });
  const stored = await api.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace: ns,
    plural: "lbnodeagents",
    name: "default",
  }) as { spec: unknown };
  assert.deepEqual(stored.spec, {
    local: { localint: "default", extlbint: "kube-lb0", sendgarp: false },
  });
  const message = await createExpectingRejection(api, ns, "lbnodeagents", "LBNodeAgent", {
    local: { extlbint: "name/with/slash" },
  });
  assert.ok(message.includes("spec.local.extlbint:"), message);
  await c.deleteNamespace(ns);
});

clusterTest(
  "LBNodeAgent nodeSelector: a label selector, checked at admission naming the field",
  async (c) => {
    const ns = await c.createNamespace("crd-lbna-selector");
    const api = typedApi(new ApiConnection(c.adminConfig()), CustomObjectsApi);
    const where = { group: GROUP, version: VERSION, namespace: ns, plural: "lbnodeagents" };
    const nodeSelector = {
      matchLabels: { "example.com/role": "edge", "node-role.kubernetes.io/edge": "" },
      matchExpressions: [
        { key: "zone", operator: "In", values: ["a", "b"] },
        { key: "zone", operator: "NotIn", values: ["c"] },
        { key: "example.com/drain", operator: "DoesNotExist" },
        { key: "example.com/edge", operator: "Exists", values: [] },
      ],
    };
    await api.createNamespacedCustomObject({
      ...where,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: "LBNodeAgent",
        metadata: { name: "edge" },
        spec: { local: {}, nodeSelector },
      },
    });
    const stored = await api.getNamespacedCustomObject({ ...where, name: "edge" }) as {
      spec: { nodeSelector: unknown };
    };
    assert.deepEqual(stored.spec.nodeSelector, nodeSelector);

    const cases: ReadonlyArray<{ nodeSelector: unknown; field: string; says: RegExp }> = [
      {
        nodeSelector: { matchExpressions: [{ key: "zone", operator: "Equals", values: ["a"] }] },
        field: "spec.nodeSelector.matchExpressions[0].operator",
        says: /"In", "NotIn", "Exists", "DoesNotExist"/,
      },
      {
        nodeSelector: { matchExpressions: [{ key: "zone", operator: "In" }] },
        field: "spec.nodeSelector.matchExpressions[0].values",
        says: /must list values for operator In or NotIn/,
      },
      {
        nodeSelector: { matchExpressions: [{ key: "zone", operator: "NotIn", values: [] }] },
        field: "spec.nodeSelector.matchExpressions[0].values",
        says: /must list values for operator In or NotIn/,
      },
      {
        nodeSelector: {
          matchExpressions: [
            { key: "zone", operator: "Exists" },
            { key: "zone", operator: "DoesNotExist", values: ["a"] },
          ],
        },
        field: "spec.nodeSelector.matchExpressions[1].values",
        says: /must not list values for operator Exists or DoesNotExist/,
      },
      {
        nodeSelector: { matchExpressions: [{ operator: "Exists" }] },
        field: "spec.nodeSelector.matchExpressions[0].key",
        says: /Required value/,
      },
      {
        nodeSelector: { matchLabels: { zone: 1 } },
        field: "spec.nodeSelector.matchLabels.zone",
        says: /must be of type string/,
      },
      {
        nodeSelector: { matchLabels: { "Example.COM/zone": "a" } },
        field: "spec.nodeSelector.matchLabels",
        says: /keys must be a label key/,
      },
      {
        nodeSelector: { matchLabels: { zone: "a b" } },
        field: "spec.nodeSelector.matchLabels[zone]",
        says: /must be a label value/,
      },
      {
        nodeSelector: { matchExpressions: [{ key: "bad key!", operator: "Exists" }] },
        field: "spec.nodeSelector.matchExpressions[0].key",
        says: /must be a label key/,
      },
      {
        nodeSelector: {
          matchExpressions: [{ key: "zone", operator: "In", values: ["ok", "-no"] }],
        },
        field: "spec.nodeSelector.matchExpressions[0].values[1]",
        says: /must be a label value/,
      },
    ];
    for (const { nodeSelector, field, says } of cases) {
      const message = await createExpectingRejection(api, ns, "lbnodeagents", "LBNodeAgent", {
        local: {},
        nodeSelector,
      });
      assert.ok(message.includes(`${field}:`), `message names ${field}: ${message}`);
      assert.match(message, says);
    }
    await c.deleteNamespace(ns);
  },
);

clusterTest(
  "the README's LBNodeAgent examples are admitted and select what they say",
  async (c) => {
    const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));
    const examples = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
      .flatMap((match) => parseAllDocuments(match[1] ?? ""))
      .map((document): unknown => document.toJS())
      .flatMap((value) => {
        const agent = asLBNodeAgent(value);
        return agent?.spec.nodeSelector === undefined ? [] : [agent];
      });
    assert.ok(examples.length > 0, "the README shows an LBNodeAgent with a nodeSelector");
    const ns = await c.createNamespace("crd-readme");
    const api = typedApi(new ApiConnection(c.adminConfig()), CustomObjectsApi);
    for (const example of examples) {
      await api.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: ns,
        plural: "lbnodeagents",
        body: { ...example, metadata: { name: example.metadata.name } },
      });
      const edge = applyingSettings([example], { "example.com/edge": "true" });
      assert.equal(edge.kind, "selected", example.metadata.name);
      assert.equal(applyingSettings([example], {}).kind, "notSelected", example.metadata.name);
    }
    await c.deleteNamespace(ns);
  },
);
