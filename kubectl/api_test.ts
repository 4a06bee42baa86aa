import assert from "node:assert/strict";
import { KubeApiError } from "../k8s/transport.ts";
import { describeListError, PluginError, PluginReader } from "./api.ts";

const forbidden = new KubeApiError(
  403,
  { kind: "Status", message: 'leases.coordination.k8s.io is forbidden: User "u" cannot list' },
  "GET /apis/...: HTTP 403",
);

Deno.test("describeListError: denied, unauthenticated, CRDs missing, unreachable, other", () => {
  assert.equal(
    describeListError(forbidden, { resource: "leases", namespace: "purelb-system" }),
    'access denied: cannot list leases in purelb-system (leases.coordination.k8s.io is forbidden: User "u" cannot list)',
  );
  assert.equal(
    describeListError(forbidden, { resource: "services" }),
    'access denied: cannot list services in any namespace (leases.coordination.k8s.io is forbidden: User "u" cannot list)',
  );
  assert.match(
    describeListError(forbidden, { resource: "bgpnodestatuses", clusterScoped: true }),
    /^access denied: cannot list bgpnodestatuses \(leases/,
  );
  assert.match(
    describeListError(new KubeApiError(401, { message: "Unauthorized" }, "x"), {
      resource: "services",
    }),
    /^not authenticated: .*\(Unauthorized\)$/,
  );
  const notFound = new KubeApiError(404, { message: "not found" }, "x");
  assert.match(
    describeListError(notFound, { resource: "servicegroups", namespace: "p", crd: "purelb" }),
    /^the PureLB CRDs are not installed: the API server has no servicegroups\.purelb\.io\/v1 /,
  );
  const bgp = describeListError(notFound, {
    resource: "bgpnodestatuses",
    clusterScoped: true,
    crd: "bgp",
  });
  assert.match(
    bgp,
    /^BGP is not installed: the API server has no bgpnodestatuses\.bgp\.purelb\.io\/v1 /,
  );
  assert.match(bgp, /kubectl apply -k deploy\/with-bgp/);
  assert.match(bgp, /--set bgp\.enabled=true/);
  assert.equal(
    describeListError(new KubeApiError(404, { message: "nope" }, "x"), {
      resource: "leases",
      namespace: "p",
    }),
    "cannot list leases in p: HTTP 404 (nope)",
  );
  assert.equal(
    describeListError(
      new TypeError("connection refused"),
      { resource: "leases", namespace: "p" },
      "https://k:6443",
    ),
    "cannot reach the API server at https://k:6443: connection refused",
  );
});

Deno.test("PluginReader: lists come back as items, failures as one PluginError", async () => {
  const paths: string[] = [];
  const reader = new PluginReader((path) => {
    paths.push(path);
    if (path.includes("leases")) return Promise.reject(forbidden);
    return Promise.resolve({ items: [{ metadata: { name: "x" } }] });
  });
  assert.deepEqual(await reader.serviceGroups("purelb-system"), [{ metadata: { name: "x" } }]);
  await assert.rejects(
    reader.leases("purelb-system"),
    (e: unknown) =>
      e instanceof PluginError && /^access denied: cannot list leases/.test(e.message),
  );
  assert.equal((await reader.services(undefined)).length, 1);
  assert.equal((await reader.bgpNodeStatuses()).length, 1);
  assert.equal((await reader.bgpConfigurations("purelb-system")).length, 1);
  assert.deepEqual(paths, [
    "/apis/purelb.io/v1/namespaces/purelb-system/servicegroups",
    "/apis/coordination.k8s.io/v1/namespaces/purelb-system/leases",
    "/api/v1/services",
    "/apis/bgp.purelb.io/v1/bgpnodestatuses",
    "/apis/bgp.purelb.io/v1/namespaces/purelb-system/configs",
  ]);
  // Nodes only add lines: a user who may not list them gets none, not a failure.
  const denied = new PluginReader(() => Promise.reject(forbidden));
  assert.equal(await denied.nodes(), undefined);
});
