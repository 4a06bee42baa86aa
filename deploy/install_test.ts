/**
 * Installing on an empty cluster, the way the README says: each test starts a fresh control
 * plane of its own (no namespace, CRDs or RBAC applied), installs, and checks every object exists.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { ensureHelm, helmUnavailable } from "../tests/controlplane/binaries.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEPLOY = join(REPO_ROOT, "deploy");
const CHART = join(DEPLOY, "helm", "purelb");

const HELM_SKIP = await helmUnavailable();
if (HELM_SKIP !== undefined) console.error(`helm tests skipped: ${HELM_SKIP}`);

interface Output {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function exec(
  program: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<Output> {
  const out = await new Deno.Command(program, {
    args: [...args],
    env,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

async function execOk(
  program: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<string> {
  const out = await exec(program, args, env);
  assert.equal(out.code, 0, `${program} ${args.join(" ")} exited ${out.code}:\n${out.stderr}`);
  return out.stdout;
}

/** Runs `fn` against a fresh control plane with nothing applied; always stops it. */
async function withEmptyCluster(
  fn: (kubectl: (...args: string[]) => Promise<string>, cp: ControlPlane) => Promise<void>,
): Promise<void> {
  const cp = await ControlPlane.start({
    manifestDirs: [],
    log: (line) => console.error(`controlplane: ${line}`),
  });
  try {
    await fn(
      (...args) => execOk(cp.binaries.kubectl, ["--kubeconfig", cp.kubeconfigPath, ...args]),
      cp,
    );
  } finally {
    await cp.stop();
  }
}

/** The container names of the agent DaemonSet, space-separated. */
function agentContainers(kubectl: (...args: string[]) => Promise<string>): Promise<string> {
  return kubectl(
    "get",
    "daemonset",
    "lbnodeagent",
    "-n",
    "purelb-system",
    "-o",
    "jsonpath={.spec.template.spec.containers[*].name}",
  );
}

/** `kind/name` of every object in a List printed by `kubectl get -o json`. */
function names(listJson: string): string[] {
  const parsed: unknown = JSON.parse(listJson);
  const items = typeof parsed === "object" && parsed !== null && "items" in parsed &&
      Array.isArray(parsed.items)
    ? parsed.items
    : [];
  return items.map((item: unknown) => {
    const o = typeof item === "object" && item !== null ? item : {};
    const kind = "kind" in o ? String(o.kind) : "?";
    const meta = "metadata" in o && typeof o.metadata === "object" && o.metadata !== null
      ? o.metadata
      : {};
    return `${kind}/${"name" in meta ? String(meta.name) : "?"}`;
  }).sort();
}

function manifestNames(text: string): string[] {
  const out: string[] = [];
  for (const doc of parseAllDocuments(text)) {
    const value: unknown = doc.toJS();
    if (typeof value !== "object" || value === null) continue;
    const kind = "kind" in value ? String(value.kind) : "?";
    const meta = "metadata" in value && typeof value.metadata === "object" &&
        value.metadata !== null
      ? value.metadata
      : {};
    out.push(`${kind}/${"name" in meta ? String(meta.name) : "?"}`);
  }
  return out.sort();
}

Deno.test({
  name: "install: on an empty cluster, CRDs first, then kubectl apply -k deploy/ installs all",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withEmptyCluster(async (kubectl) => {
      const crds = join(DEPLOY, "crds");
      await kubectl("apply", "-f", crds);
      await kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", crds);
      const applied = await kubectl("apply", "-k", DEPLOY);
      const expected = manifestNames(await kubectl("kustomize", DEPLOY));
      assert.ok(expected.length >= 12);
      assert.deepEqual(names(await kubectl("get", "-k", DEPLOY, "-o", "json")), expected);
      assert.ok(applied.includes("lbnodeagent.purelb.io/default created"), applied);
      assert.ok(applied.includes("servicegroup.purelb.io/example created"), applied);
      // A second apply (an upgrade with nothing new) changes nothing.
      const again = (await kubectl("apply", "-k", DEPLOY)).trim().split("\n");
      assert.equal(again.length, expected.length);
      for (const line of again) assert.match(line, / unchanged$/);
      // Turning BGP on later: the component's RBAC is created, the DaemonSet changes, nothing
      // else does.
      const withBgp = join(DEPLOY, "with-bgp");
      const bgp = (await kubectl("apply", "-k", withBgp)).trim().split("\n");
      assert.deepEqual(bgp.filter((line) => !/ unchanged$/.test(line)).sort(), [
        "clusterrole.rbac.authorization.k8s.io/purelb:agent-bgp created",
        "clusterrolebinding.rbac.authorization.k8s.io/purelb:agent-bgp created",
        "daemonset.apps/lbnodeagent configured",
        "role.rbac.authorization.k8s.io/purelb:agent-bgp created",
        "role.rbac.authorization.k8s.io/purelb:agent-bgp-secrets created",
        "rolebinding.rbac.authorization.k8s.io/purelb:agent-bgp created",
        "rolebinding.rbac.authorization.k8s.io/purelb:agent-bgp-secrets created",
      ]);
      assert.deepEqual(
        names(await kubectl("get", "-k", withBgp, "-o", "json")),
        manifestNames(await kubectl("kustomize", withBgp)),
      );
      assert.equal(await agentContainers(kubectl), "lbnodeagent bird");
    }),
});

Deno.test({
  name: "install: on an empty cluster, the namespace then helm install installs all",
  ignore: HELM_SKIP !== undefined,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const helm = await ensureHelm({ log: (l) => console.error(`helm: ${l}`) });
    const home = await Deno.makeTempDir({ prefix: "purelb-helm-" });
    const helmEnv = {
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_DATA_HOME: join(home, "data"),
    };
    try {
      await withEmptyCluster(async (kubectl, cp) => {
        await kubectl("apply", "-f", join(DEPLOY, "namespace.yaml"));
        const helmArgs = ["--kubeconfig", cp.kubeconfigPath, "--namespace", "purelb-system"];
        await execOk(helm, ["install", "purelb", CHART, ...helmArgs], helmEnv);
        const manifest = await execOk(helm, ["get", "manifest", "purelb", ...helmArgs], helmEnv);
        const expected = manifestNames(manifest);
        assert.ok(expected.length >= 10, manifest);
        const present: string[] = [];
        for (const name of expected) {
          const [kind = "", objectName = ""] = name.split("/");
          const got = await kubectl(
            "get",
            kind.toLowerCase() +
              (kind === "LBNodeAgent" || kind === "ServiceGroup" ? ".purelb.io" : ""),
            objectName,
            "-n",
            "purelb-system",
            "-o",
            "name",
          );
          if (got.trim() !== "") present.push(name);
        }
        assert.deepEqual(present, expected);
        // The CRDs came from the chart's crds/ folder, installed before the templates.
        const crds = await kubectl("get", "crd", "-o", "name");
        assert.match(crds, /servicegroups\.purelb\.io/);
        assert.match(crds, /lbnodeagents\.purelb\.io/);
        assert.match(crds, /configs\.bgp\.purelb\.io/);
        assert.match(crds, /bgpnodestatuses\.bgp\.purelb\.io/);
        // One value turns BGP on: the sidecar and its RBAC arrive with an upgrade.
        await execOk(
          helm,
          ["upgrade", "purelb", CHART, ...helmArgs, "--set", "bgp.enabled=true"],
          helmEnv,
        );
        const roles = await kubectl("get", "role", "-n", "purelb-system", "-o", "name");
        assert.match(roles, /role\.rbac\.authorization\.k8s\.io\/purelb:agent-bgp\n/);
        assert.match(roles, /purelb:agent-bgp-secrets/);
        assert.equal(await agentContainers(kubectl), "lbnodeagent bird");
      });
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});
