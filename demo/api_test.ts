import assert from "node:assert/strict";
import { collectionPath, parseManifests } from "./api.ts";

Deno.test("parseManifests + collectionPath: the demo's YAML files", async () => {
  const read = (name: string) => Deno.readTextFile(new URL(`./${name}`, import.meta.url));
  const paths = (name: string, text: string) => parseManifests(text, name).map(collectionPath);
  assert.deepEqual(paths("lbnodeagent.yaml", await read("lbnodeagent.yaml")), [
    "/apis/purelb.io/v1/namespaces/purelb-system/lbnodeagents",
  ]);
  assert.deepEqual(paths("servicegroups.yaml", await read("servicegroups.yaml")), [
    "/apis/purelb.io/v1/namespaces/purelb-system/servicegroups",
    "/apis/purelb.io/v1/namespaces/purelb-system/servicegroups",
  ]);
  assert.deepEqual(paths("bgpconfiguration.yaml", await read("bgpconfiguration.yaml")), [
    "/apis/bgp.purelb.io/v1/namespaces/purelb-system/configs",
  ]);
  const rbac = new URL("../deploy/components/bgp/rbac.yaml", import.meta.url);
  assert.deepEqual(paths("rbac.yaml", await Deno.readTextFile(rbac)), [
    "/apis/rbac.authorization.k8s.io/v1/namespaces/purelb-system/roles",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/purelb-system/rolebindings",
    "/apis/rbac.authorization.k8s.io/v1/clusterroles",
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
  ]);
  const services = paths("services.yaml", await read("services.yaml"));
  assert.equal(services[0], "/api/v1/namespaces");
  assert.ok(services.slice(1).every((p) => p === "/api/v1/namespaces/demo/services"));
});

Deno.test("parseManifests: the IPv6 pool stays text; bad documents are refused with the file", async () => {
  const text = await Deno.readTextFile(new URL("./servicegroups.yaml", import.meta.url));
  const [group] = parseManifests(text, "servicegroups.yaml") as unknown as {
    spec: { local: { v6pools: { pool: string }[] } };
  }[];
  assert.equal(group?.spec.local.v6pools[0]?.pool, "2001:db8:1::240-2001:db8:1::250");
  assert.throws(() => parseManifests("kind: Service\n", "x.yaml"), /x\.yaml: a document lacks/);
  assert.throws(() => parseManifests("a: [\n", "y.yaml"), /^Error: y\.yaml: /);
  assert.throws(
    () => collectionPath({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "x" } }),
    /cannot create apps\/v1 Deployment/,
  );
});
