/**
 * The install manifests against the real API server: `kubectl apply --dry-run=server` of the
 * kustomization and of the Helm chart's output, the chart compared with kustomize object by
 * object, Pod Security levels checked by admission, and the workloads' settings.
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { clusterTest, type TestCluster, testCluster } from "../tests/cluster.ts";
import {
  ensureBinaries,
  ensureHelm,
  helmUnavailable,
  KUBERNETES_VERSION,
} from "../tests/controlplane/binaries.ts";
import { FLAGS as ALLOCATOR_FLAGS, NETBOX_TOKEN_ENV } from "../allocator/config.ts";
import { FLAGS as AGENT_FLAGS } from "../agent/config.ts";
import { agentPermissions, allocatorPermissions } from "./permissions.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEPLOY = join(REPO_ROOT, "deploy");
const CHART = join(DEPLOY, "helm", "purelb");
const NAMESPACE = "purelb-system";
/** Labels only the chart sets (Helm's own); everything else must match kustomize exactly. */
const HELM_ONLY_LABELS = ["app.kubernetes.io/managed-by", "helm.sh/chart"] as const;

type Json = Record<string, unknown>;

const HELM_SKIP = await helmUnavailable();
if (HELM_SKIP !== undefined) console.error(`helm tests skipped: ${HELM_SKIP}`);

/** A cluster test that needs helm: ignored (with the reason printed) where helm cannot be had. */
function helmTest(name: string, fn: (cluster: TestCluster) => Promise<void>): void {
  Deno.test({
    name,
    ignore: HELM_SKIP !== undefined,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => fn(await testCluster()),
  });
}

interface Output {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function exec(program: string, args: readonly string[], stdin?: string): Promise<Output> {
  const child = new Deno.Command(program, {
    args: [...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

async function execOk(program: string, args: readonly string[], stdin?: string): Promise<string> {
  const out = await exec(program, args, stdin);
  assert.equal(
    out.code,
    0,
    `${program} ${args.join(" ")} exited ${out.code}:\n${out.stderr}${out.stdout}`,
  );
  return out.stdout;
}

let kubectlPath: Promise<string> | undefined;
function kubectl(): Promise<string> {
  kubectlPath ??= ensureBinaries({ log: (l) => console.error(`binaries: ${l}`) }).then((b) =>
    b.kubectl
  );
  return kubectlPath;
}

function kubectlAs(c: TestCluster, args: readonly string[], stdin?: string): Promise<string> {
  return kubectl().then((k) => execOk(k, ["--kubeconfig", c.kubeconfigPath, ...args], stdin));
}

/** The objects of a multi-document YAML stream (empty documents dropped). */
function parseObjects(text: string, source: string): Json[] {
  const objects: Json[] = [];
  for (const doc of parseAllDocuments(text)) {
    assert.deepEqual(doc.errors.map((e) => e.message), [], `${source} is valid YAML`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    assert.ok(isRecord(value), `${source}: a document is not an object`);
    objects.push(value);
  }
  return objects;
}

async function kustomize(): Promise<Json[]> {
  return parseObjects(await execOk(await kubectl(), ["kustomize", DEPLOY]), "kubectl kustomize");
}

let helmPath: Promise<string> | undefined;
async function helmTemplate(namespace: string, set: readonly string[] = []): Promise<Json[]> {
  helmPath ??= ensureHelm({ log: (l) => console.error(`helm: ${l}`) });
  const args = ["template", "purelb", CHART, "--namespace", namespace, "--include-crds"];
  args.push("--kube-version", KUBERNETES_VERSION, ...set.flatMap((s) => ["--set", s]));
  return parseObjects(await execOk(await helmPath, args), "helm template");
}

function key(o: Json): string {
  const meta = record(o.metadata);
  const ns = typeof meta.namespace === "string" ? meta.namespace : "";
  return `${String(o.apiVersion)}/${String(o.kind)}/${ns}/${String(meta.name)}`;
}

function byKey(objects: readonly Json[]): Map<string, Json> {
  const map = new Map<string, Json>();
  for (const o of objects) {
    assert.ok(!map.has(key(o)), `${key(o)} is defined once`);
    map.set(key(o), o);
  }
  return map;
}

function record(value: unknown): Json {
  return isRecord(value) ? value : {};
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function isRecord(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A copy without Helm's own labels (asserting the chart did set them). */
function withoutHelmLabels(o: Json): Json {
  const copy: Json = structuredClone(o);
  const meta = record(copy.metadata);
  const labels = record(meta.labels);
  if (o.kind !== "CustomResourceDefinition") {
    assert.equal(labels["app.kubernetes.io/managed-by"], "Helm", `${key(o)} carries Helm labels`);
  }
  for (const label of HELM_ONLY_LABELS) delete labels[label];
  if (Object.keys(labels).length === 0) delete meta.labels;
  return copy;
}

function find(objects: readonly Json[], kind: string, name: string): Json {
  const found = objects.find((o) => o.kind === kind && record(o.metadata).name === name);
  assert.ok(found, `${kind} ${name} is part of the install`);
  return found;
}

function podSpec(workload: Json): Json {
  return record(record(record(workload.spec).template).spec);
}

function onlyContainer(workload: Json): Json {
  const containers = list(podSpec(workload).containers);
  assert.equal(containers.length, 1);
  return record(containers[0]);
}

function envOf(container: Json): Map<string, Json> {
  return new Map(list(container.env).map((e) => [String(record(e).name), record(e)]));
}

function allowedEnv(permissions: readonly string[]): Set<string> {
  const flag = permissions.find((p) => p.startsWith("--allow-env=")) ?? "";
  return new Set(flag.slice("--allow-env=".length).split(","));
}

// ---------------------------------------------------------------------------------------------

clusterTest(
  "deploy: every file of the kustomization passes kubectl apply --dry-run=server",
  async (c) => {
    // Nothing in deploy/ is left out of `kubectl apply -k deploy/`.
    const text = await Deno.readTextFile(join(DEPLOY, "kustomization.yaml"));
    const [kustomization] = parseObjects(text, "kustomization.yaml");
    const resources = list(record(kustomization).resources).map(String).sort();
    const expected: string[] = [];
    for (const dir of ["", "crds", "rbac"]) {
      for await (const entry of Deno.readDir(join(DEPLOY, dir))) {
        if (entry.isFile && /\.ya?ml$/.test(entry.name) && entry.name !== "kustomization.yaml") {
          expected.push(dir === "" ? entry.name : `${dir}/${entry.name}`);
        }
      }
    }
    assert.deepEqual(resources, expected.sort());

    const out = await kubectlAs(c, ["apply", "--dry-run=server", "-k", DEPLOY]);
    const objects = await kustomize();
    assert.ok(objects.length >= 12, `kustomize renders the whole install (${objects.length})`);
    for (const o of objects) {
      const line = `${String(o.kind).toLowerCase()}`;
      assert.ok(
        out.includes(`${record(o.metadata).name}`) && out.toLowerCase().includes(line),
        `dry run reports ${key(o)}:\n${out}`,
      );
    }
    // Each file on its own too (what people do with -f).
    for (const file of resources) {
      await kubectlAs(c, ["apply", "--dry-run=server", "-f", join(DEPLOY, file)]);
    }
  },
);

clusterTest("deploy: the dry run refuses what the API server would refuse", async (c) => {
  // The check above can fail: a Deployment with an invalid field is refused by the same path.
  const objects = await kustomize();
  const broken = structuredClone(find(objects, "Deployment", "allocator"));
  record(broken.spec).replicas = -1;
  const out = await exec(await kubectl(), [
    "--kubeconfig",
    c.kubeconfigPath,
    "apply",
    "--dry-run=server",
    "-f",
    "-",
  ], JSON.stringify(broken));
  assert.notEqual(out.code, 0);
  assert.match(out.stderr, /replicas/);
});

helmTest("helm: the chart's output passes kubectl apply --dry-run=server", async (c) => {
  for (const set of [[], ["namespace.create=true"]]) {
    const objects = await helmTemplate(NAMESPACE, set);
    const stream = objects.map((o) => JSON.stringify(o)).join("\n");
    const out = await kubectlAs(c, ["apply", "--dry-run=server", "-f", "-"], stream);
    for (const o of objects) {
      assert.ok(out.includes(String(record(o.metadata).name)), `dry run reports ${key(o)}`);
    }
  }
});

helmTest("helm: the chart renders the same objects as kustomize", async () => {
  const fromKustomize = byKey(await kustomize());
  const fromHelm = byKey((await helmTemplate(NAMESPACE, ["namespace.create=true"])).map(
    withoutHelmLabels,
  ));
  assert.deepEqual([...fromHelm.keys()].sort(), [...fromKustomize.keys()].sort());
  for (const [k, o] of fromKustomize) assert.deepEqual(fromHelm.get(k), o, k);

  // With the defaults the chart leaves the Namespace to the user (helm install -n needs it first).
  const defaults = byKey(await helmTemplate(NAMESPACE));
  assert.deepEqual(
    [...fromKustomize.keys()].filter((k) => !defaults.has(k)),
    [`v1/Namespace//${NAMESPACE}`],
  );
});

helmTest("helm: helm lint --strict finds nothing", async () => {
  helmPath ??= ensureHelm({ log: (l) => console.error(`helm: ${l}`) });
  const out = await exec(await helmPath, [
    "lint",
    "--strict",
    "--kube-version",
    KUBERNETES_VERSION,
    CHART,
  ]);
  assert.equal(out.code, 0, out.stdout + out.stderr);
  assert.match(out.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

helmTest("helm: everything moves to the release namespace", async () => {
  const objects = await helmTemplate("lb", ["namespace.create=true"]);
  const namespaced = objects.filter((o) =>
    !["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"].includes(
      String(o.kind),
    )
  );
  assert.ok(namespaced.length >= 8);
  for (const o of namespaced) assert.equal(record(o.metadata).namespace, "lb", key(o));
  assert.equal(record(find(objects, "Namespace", "lb").metadata).name, "lb");
  const subjects = objects.flatMap((o) => list(o.subjects)).map(record);
  assert.ok(subjects.length >= 4);
  for (const s of subjects) assert.equal(s.namespace, "lb", JSON.stringify(s));
  assert.ok(!JSON.stringify(objects).includes(NAMESPACE), "no trace of purelb-system left");
});

clusterTest(
  "deploy: the allocator Pod passes Pod Security 'restricted'; the agent's is refused by 'baseline' and admitted by 'privileged'",
  async (c) => {
    const objects = await kustomize();
    const allocator = find(objects, "Deployment", "allocator");
    const agent = find(objects, "DaemonSet", "lbnodeagent");
    const ns = await c.createNamespace("deploy-psa");
    try {
      for (const account of ["allocator", "agent"]) {
        await kubectlAs(c, ["create", "serviceaccount", account, "-n", ns]);
      }
      const pod = (workload: Json, name: string) =>
        JSON.stringify({
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name, namespace: ns },
          spec: podSpec(workload),
        });
      const tryPod = async (level: string, workload: Json, name: string) => {
        await kubectlAs(c, [
          "label",
          "--overwrite",
          "namespace",
          ns,
          `pod-security.kubernetes.io/enforce=${level}`,
        ]);
        return exec(await kubectl(), [
          "--kubeconfig",
          c.kubeconfigPath,
          "create",
          "--dry-run=server",
          "-f",
          "-",
        ], pod(workload, name));
      };
      const restricted = await tryPod("restricted", allocator, "allocator");
      assert.equal(restricted.code, 0, `allocator under restricted: ${restricted.stderr}`);
      // Admission does enforce here: the agent (host network, NET_ADMIN) is refused by baseline...
      const baseline = await tryPod("baseline", agent, "agent");
      assert.notEqual(baseline.code, 0, "baseline refuses the agent");
      assert.match(baseline.stderr, /violates PodSecurity "baseline/);
      assert.match(baseline.stderr, /host namespaces|hostNetwork/);
      assert.match(baseline.stderr, /NET_ADMIN/);
      // ...which is why purelb-system is labelled privileged, where it is admitted.
      const privileged = await tryPod("privileged", agent, "agent");
      assert.equal(privileged.code, 0, `agent under privileged: ${privileged.stderr}`);
    } finally {
      await c.deleteNamespace(ns);
    }
    const namespace = find(objects, "Namespace", NAMESPACE);
    assert.equal(
      record(record(namespace.metadata).labels)["pod-security.kubernetes.io/enforce"],
      "privileged",
    );
  },
);

clusterTest("deploy: the allocator Deployment", async () => {
  const deployment = find(await kustomize(), "Deployment", "allocator");
  const spec = record(deployment.spec);
  assert.equal(spec.replicas, 2);
  const pod = podSpec(deployment);
  assert.equal(pod.serviceAccountName, "allocator");
  assert.equal(pod.hostNetwork, undefined);
  const podSecurity = record(pod.securityContext);
  assert.equal(podSecurity.runAsNonRoot, true);
  assert.ok(Number(podSecurity.runAsUser) > 0);
  assert.deepEqual(podSecurity.seccompProfile, { type: "RuntimeDefault" });
  const container = onlyContainer(deployment);
  assert.deepEqual(container.securityContext, {
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"] },
  });
  assertResources(container);
  const env = envOf(container);
  assert.equal(env.get("PURELB_LEADER_ELECTION")?.value, "on");
  assert.deepEqual(env.get("POD_NAME")?.valueFrom, { fieldRef: { fieldPath: "metadata.name" } });
  assert.equal(record(record(env.get("NETBOX_USER_TOKEN")?.valueFrom).secretKeyRef).optional, true);
  // Every variable set is a flag's fallback or the Netbox token, and the program may read it.
  const flagEnv = new Set<string>(Object.values(ALLOCATOR_FLAGS).map((f) => f.env));
  flagEnv.add(NETBOX_TOKEN_ENV);
  const readable = allowedEnv(allocatorPermissions(undefined));
  for (const name of env.keys()) {
    assert.ok(flagEnv.has(name), `${name} is an allocator flag's variable or the Netbox token`);
    assert.ok(readable.has(name), `the allocator may read ${name}`);
  }
  assertOperations(deployment, container, 7472);
});

clusterTest("deploy: the lbnodeagent DaemonSet", async () => {
  const daemonSet = find(await kustomize(), "DaemonSet", "lbnodeagent");
  const pod = podSpec(daemonSet);
  assert.equal(pod.serviceAccountName, "agent");
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.dnsPolicy, "ClusterFirstWithHostNet");
  assert.deepEqual(record(pod.securityContext).seccompProfile, { type: "RuntimeDefault" });
  assert.ok(
    list(pod.tolerations).map(record).some((t) =>
      t.key === "node-role.kubernetes.io/control-plane" && t.operator === "Exists" &&
      t.effect === "NoSchedule"
    ),
    "runs on control-plane nodes",
  );
  // Withdrawing addresses and deleting the node Lease must fit in the grace period.
  assert.ok(Number(pod.terminationGracePeriodSeconds) >= 15);
  const container = onlyContainer(daemonSet);
  assert.deepEqual(container.securityContext, {
    runAsUser: 0,
    runAsNonRoot: false,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_RAW"] },
  });
  assertResources(container);
  const env = envOf(container);
  assert.deepEqual(env.get("NODE_NAME")?.valueFrom, { fieldRef: { fieldPath: "spec.nodeName" } });
  const flagEnv = new Set<string>(Object.values(AGENT_FLAGS).map((f) => f.env));
  const readable = allowedEnv(agentPermissions(undefined));
  for (const name of env.keys()) {
    assert.ok(flagEnv.has(name), `${name} is an agent flag's variable`);
    assert.ok(readable.has(name), `the agent may read ${name}`);
  }
  assertOperations(daemonSet, container, 7473);
});

clusterTest(
  "deploy: the agent reads Nodes with get and watch only, never list or write",
  async () => {
    const role = find(await kustomize(), "ClusterRole", "purelb:agent");
    const nodeRules = list(role.rules).map(record).filter((rule) =>
      list(rule.resources).includes("nodes")
    );
    assert.equal(nodeRules.length, 1, JSON.stringify(role.rules));
    assert.deepEqual(nodeRules[0]?.apiGroups, [""]);
    assert.deepEqual(list(nodeRules[0]?.verbs).sort(), ["get", "watch"]);
    const namespaced = find(await kustomize(), "ClusterRole", "purelb:agent-namespaced");
    assert.ok(
      !list(namespaced.rules).map(record).some((rule) => list(rule.resources).includes("nodes")),
      "no other grant on nodes",
    );
  },
);

clusterTest("deploy: the default LBNodeAgent and the example ServiceGroup", async () => {
  const objects = await kustomize();
  const lbna = find(objects, "LBNodeAgent", "default");
  assert.deepEqual(lbna.spec, {
    local: { localint: "default", extlbint: "kube-lb0", sendgarp: false },
  });
  const sg = find(objects, "ServiceGroup", "example");
  // Documentation addresses only, and not the group every unannotated Service would use.
  const text = JSON.stringify(sg.spec);
  assert.match(text, /192\.0\.2\./);
  assert.match(text, /2001:db8:/);
  assert.equal(objects.filter((o) => o.kind === "ServiceGroup").length, 1);
});

function assertResources(container: Json): void {
  const resources = record(container.resources);
  for (const kind of ["requests", "limits"]) {
    const r = record(resources[kind]);
    assert.ok(r.cpu !== undefined && r.memory !== undefined, `${kind} has cpu and memory`);
  }
}

/** /healthz and /readyz probes, the listen address and the scrape port agree on one port. */
function assertOperations(workload: Json, container: Json, port: number): void {
  const ports = list(container.ports).map(record);
  assert.deepEqual(ports, [{ name: "monitoring", containerPort: port, protocol: "TCP" }]);
  assert.equal(envOf(container).get("PURELB_LISTEN")?.value, `0.0.0.0:${port}`);
  assert.deepEqual(record(container.livenessProbe).httpGet, {
    path: "/healthz",
    port: "monitoring",
  });
  assert.deepEqual(record(container.readinessProbe).httpGet, {
    path: "/readyz",
    port: "monitoring",
  });
  const annotations = record(record(record(record(workload.spec).template).metadata).annotations);
  assert.equal(annotations["prometheus.io/port"], String(port));
}
