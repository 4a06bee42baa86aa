import assert from "node:assert/strict";
import {
  type ClientConfigEnvironment,
  ClientConfigError,
  isInCluster,
  kubeconfigCandidates,
  loadClientConfig,
  SERVICE_ACCOUNT_DIR,
} from "./config.ts";

const KUBECONFIG_TEXT = JSON.stringify({
  apiVersion: "v1",
  kind: "Config",
  clusters: [{ name: "c", cluster: { server: "https://127.0.0.1:6443" } }],
  users: [{ name: "u", user: { token: "t" } }],
  contexts: [{ name: "x", context: { cluster: "c", user: "u", namespace: "team" } }],
  "current-context": "x",
});

function environment(
  vars: Record<string, string>,
  files: Record<string, string>,
): ClientConfigEnvironment {
  return {
    env: (name) => vars[name],
    fileExists: (path) => path in files,
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`no file ${path}`);
      return text;
    },
  };
}

Deno.test("an explicit --kubeconfig wins, even inside a cluster", () => {
  const env = environment(
    { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBECONFIG: "/other" },
    { "/given": KUBECONFIG_TEXT, [`${SERVICE_ACCOUNT_DIR}/token`]: "x" },
  );
  const config = loadClientConfig({ kubeconfig: "/given" }, env);
  assert.deepEqual(config.source, { kind: "kubeconfig", path: "/given" });
  assert.equal(config.namespace, "team");
  assert.equal(config.access.server, "https://127.0.0.1:6443");
  assert.equal(config.access.bearerToken(), "t");
});

Deno.test("KUBECONFIG is used outside a cluster; the first existing file of the list", () => {
  const env = environment({ KUBECONFIG: "/missing:/present", HOME: "/home/me" }, {
    "/present": KUBECONFIG_TEXT,
  });
  assert.deepEqual(loadClientConfig({}, env).source, { kind: "kubeconfig", path: "/present" });
});

Deno.test("~/.kube/config is the last resort", () => {
  const env = environment({ HOME: "/home/me" }, { "/home/me/.kube/config": KUBECONFIG_TEXT });
  assert.deepEqual(loadClientConfig({}, env).source, {
    kind: "kubeconfig",
    path: "/home/me/.kube/config",
  });
});

Deno.test("in-cluster needs both the service host variable and the token file", () => {
  const token = { [`${SERVICE_ACCOUNT_DIR}/token`]: "x" };
  assert.equal(isInCluster(environment({ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, token)), true);
  assert.equal(isInCluster(environment({ KUBERNETES_SERVICE_HOST: "10.0.0.1" }, {})), false);
  assert.equal(isInCluster(environment({}, token)), false);
});

Deno.test("no configuration at all says what was tried", () => {
  assert.throws(
    () => loadClientConfig({}, environment({ HOME: "/home/me" }, {})),
    (e: unknown) =>
      e instanceof ClientConfigError && e.message.includes("/home/me/.kube/config") &&
      e.message.includes("--kubeconfig"),
  );
});

Deno.test("a kubeconfig that is not one is reported with its path", () => {
  assert.throws(
    () => loadClientConfig({ kubeconfig: "/bad" }, environment({}, { "/bad": "{}" })),
    (e: unknown) => e instanceof ClientConfigError && e.message.includes("/bad"),
  );
});

Deno.test("kubeconfig candidates: the flag, else KUBECONFIG, else ~/.kube/config", () => {
  assert.deepEqual(kubeconfigCandidates("/x", { KUBECONFIG: "/y" }), ["/x"]);
  assert.deepEqual(kubeconfigCandidates(undefined, { KUBECONFIG: "/a::/b" }), ["/a", "/b"]);
  assert.deepEqual(kubeconfigCandidates(undefined, { HOME: "/home/me" }), [
    "/home/me/.kube/config",
  ]);
  assert.deepEqual(kubeconfigCandidates(undefined, {}), []);
});
