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
import { ApiConnection, KubeApiError, type RequestOptions } from "../k8s/transport.ts";
import { FLAGS as AGENT_FLAGS } from "../agent/config.ts";
import { agentPermissions, allocatorPermissions, DEFAULT_BGP_DIR } from "./permissions.ts";
import {
  BGP_CONFIGURATION_PLURAL,
  BGP_GROUP,
  BGP_NODE_STATUS_PLURAL,
  BIRD_CONFIG_FILE,
  BIRD_SOCKET_FILE,
} from "../bgp/model.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const DEPLOY = join(REPO_ROOT, "deploy");
const CHART = join(DEPLOY, "helm", "purelb");
/** The whole install with BGP: deploy/ plus the component deploy/components/bgp. */
const WITH_BGP = join(DEPLOY, "with-bgp");
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

async function kustomize(dir: string = DEPLOY): Promise<Json[]> {
  return parseObjects(await execOk(await kubectl(), ["kustomize", dir]), "kubectl kustomize");
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
  for (const set of [[], ["namespace.create=true"], ["bgp.enabled=true"]]) {
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

// ---------------------------------------------------------------------------------------------
// BGP: deploy/with-bgp (deploy/ plus deploy/components/bgp) and the chart's bgp.enabled.

/** The objects deploy/components/bgp adds (its RBAC), by kind and name. */
const BGP_RBAC = [
  "Role/purelb:agent-bgp",
  "RoleBinding/purelb:agent-bgp",
  "ClusterRole/purelb:agent-bgp",
  "ClusterRoleBinding/purelb:agent-bgp",
  "Role/purelb:agent-bgp-secrets",
  "RoleBinding/purelb:agent-bgp-secrets",
].sort();

function kindName(o: Json): string {
  return `${String(o.kind)}/${String(record(o.metadata).name)}`;
}

function container(workload: Json, name: string): Json {
  const found = list(podSpec(workload).containers).map(record).find((c) => c.name === name);
  assert.ok(found, `${key(workload)} has a container ${name}`);
  return found;
}

clusterTest("deploy/with-bgp: passes kubectl apply --dry-run=server", async (c) => {
  const out = await kubectlAs(c, ["apply", "--dry-run=server", "-k", WITH_BGP]);
  for (const o of await kustomize(WITH_BGP)) {
    assert.ok(out.includes(String(record(o.metadata).name)), `dry run reports ${key(o)}`);
  }
});

clusterTest(
  "deploy/with-bgp: the base install plus the BGP RBAC and the agent's BIRD sidecar, nothing else",
  async () => {
    const base = byKey(await kustomize());
    const withBgp = byKey(await kustomize(WITH_BGP));
    // The base grants nothing for BGP; its CRDs are there either way (Helm's crds/ are too).
    for (const crd of ["configs.bgp.purelb.io", "bgpnodestatuses.bgp.purelb.io"]) {
      assert.ok(find([...base.values()], "CustomResourceDefinition", crd));
    }
    assert.ok(
      !JSON.stringify([...base.values()].filter((o) => /Role/.test(String(o.kind)))).includes(
        BGP_GROUP,
      ),
      "no base role names bgp.purelb.io",
    );
    const added = [...withBgp.values()].filter((o) => !base.has(key(o))).map(kindName).sort();
    assert.deepEqual(added, BGP_RBAC);
    const changed = [...base.entries()]
      .filter(([k, o]) => JSON.stringify(withBgp.get(k)) !== JSON.stringify(o))
      .map(([k]) => k);
    assert.deepEqual(changed, [`apps/v1/DaemonSet/${NAMESPACE}/lbnodeagent`]);
  },
);

clusterTest("deploy/with-bgp: the agent shares /run/purelb-bgp with a BIRD container", async () => {
  const objects = await kustomize(WITH_BGP);
  const daemonSet = find(objects, "DaemonSet", "lbnodeagent");
  const pod = podSpec(daemonSet);
  assert.deepEqual(list(pod.containers).map((c) => record(c).name), ["lbnodeagent", "bird"]);
  const volume = list(pod.volumes).map(record).find((v) => v.name === "bgp");
  assert.deepEqual(volume, { name: "bgp", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } });

  const agent = container(daemonSet, "lbnodeagent");
  const env = envOf(agent);
  assert.equal(env.get("PURELB_BGP_DIR")?.value, DEFAULT_BGP_DIR);
  // The agent may read that variable and write that folder (and only that folder).
  const permissions = agentPermissions(undefined);
  const readable = allowedEnv(permissions);
  const flagEnv = new Set<string>([
    ...Object.values(AGENT_FLAGS).map((f) => f.env),
  ]);
  for (const name of env.keys()) {
    assert.ok(flagEnv.has(name), `${name} is an agent flag's variable`);
    assert.ok(readable.has(name), `the agent may read ${name}`);
  }
  assert.ok(permissions.includes(`--allow-write=${DEFAULT_BGP_DIR}`));
  const mount = { name: "bgp", mountPath: DEFAULT_BGP_DIR };
  assert.deepEqual(list(agent.volumeMounts).map(record).find((m) => m.name === "bgp"), mount);
  // The agent container itself is unchanged otherwise.
  const baseAgent = onlyContainer(find(await kustomize(), "DaemonSet", "lbnodeagent"));
  assert.deepEqual(agent.securityContext, baseAgent.securityContext);
  assert.deepEqual(agent.resources, baseAgent.resources);

  const bird = container(daemonSet, "bird");
  assert.equal(bird.image, agent.image, "BIRD comes with the agent's image");
  assert.deepEqual(bird.volumeMounts, [mount]);
  assert.deepEqual(bird.securityContext, {
    runAsUser: 0,
    runAsNonRoot: false,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ["ALL"], add: ["NET_ADMIN", "NET_BIND_SERVICE", "NET_RAW"] },
  });
  assertResources(bird);
  assert.deepEqual(bird.resources, {
    requests: { cpu: "10m", memory: "32Mi" },
    limits: { cpu: "500m", memory: "128Mi" },
  });
  assert.equal(bird.ports, undefined);
  const command = list(bird.command).map(String);
  assert.deepEqual(command.slice(0, 2), ["/bin/sh", "-c"]);
  const script = command[2] ?? "";
  const conf = `${DEFAULT_BGP_DIR}/${BIRD_CONFIG_FILE}`;
  const socket = `${DEFAULT_BGP_DIR}/${BIRD_SOCKET_FILE}`;
  assert.match(script, new RegExp(`until \\[ -s ${conf} \\]`), "waits for a non-empty config");
  assert.ok(script.includes(`exec bird -f -c ${conf} -s ${socket}\n`), script);
});

clusterTest("deploy/with-bgp: the script of the BIRD container runs as written", async () => {
  // The container's shell script, run here against a stand-in `bird`: it waits while the config
  // is missing or empty, then replaces itself with `bird -f -c CONF -s SOCKET`.
  const daemonSet = find(await kustomize(WITH_BGP), "DaemonSet", "lbnodeagent");
  const script = String(list(container(daemonSet, "bird").command)[2]);
  const dir = await Deno.makeTempDir({ prefix: "purelb-bird-script-" });
  try {
    const bgpDir = join(dir, "bgp");
    const bin = join(dir, "bin");
    await Deno.mkdir(bgpDir);
    await Deno.mkdir(bin);
    await Deno.writeTextFile(join(bin, "bird"), '#!/bin/sh\necho "bird $*"\n', { mode: 0o755 });
    const child = new Deno.Command("/bin/sh", {
      args: ["-c", script.replaceAll(DEFAULT_BGP_DIR, bgpDir)],
      env: { PATH: `${bin}:/usr/bin:/bin` },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const conf = join(bgpDir, BIRD_CONFIG_FILE);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await Deno.writeTextFile(conf, ""); // empty: still waiting
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await Deno.writeTextFile(conf, "router id 192.0.2.1;\n");
    const out = await child.output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.equal(
      new TextDecoder().decode(out.stdout),
      `bird -f -c ${conf} -s ${join(bgpDir, BIRD_SOCKET_FILE)}\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

helmTest("helm: bgp.enabled=true renders the same objects as deploy/with-bgp", async () => {
  const fromKustomize = byKey(await kustomize(WITH_BGP));
  const fromHelm = byKey(
    (await helmTemplate(NAMESPACE, ["namespace.create=true", "bgp.enabled=true"])).map(
      withoutHelmLabels,
    ),
  );
  assert.deepEqual([...fromHelm.keys()].sort(), [...fromKustomize.keys()].sort());
  for (const [k, o] of fromKustomize) assert.deepEqual(fromHelm.get(k), o, k);
});

helmTest("helm: bgp.passwordSecrets are the only Secrets the agent may read", async () => {
  const secretsRole = (objects: readonly Json[]) =>
    objects.find((o) =>
      o.kind === "Role" && record(o.metadata).name === "purelb:agent-bgp-secrets"
    );
  const two = await helmTemplate(NAMESPACE, [
    "bgp.enabled=true",
    "bgp.passwordSecrets={peer-a,peer-b}",
  ]);
  assert.deepEqual(list(secretsRole(two)?.rules).map(record), [{
    apiGroups: [""],
    resources: ["secrets"],
    resourceNames: ["peer-a", "peer-b"],
    verbs: ["get", "list", "watch"],
  }]);
  // None listed: neither the Role nor its binding.
  const none = await helmTemplate(NAMESPACE, ["bgp.enabled=true", "bgp.passwordSecrets=null"]);
  assert.equal(secretsRole(none), undefined);
  assert.ok(!none.some((o) => record(o.metadata).name === "purelb:agent-bgp-secrets"));
  assert.ok(find(none, "Role", "purelb:agent-bgp"));
  // No Role anywhere grants Secrets otherwise, with or without BGP.
  for (const objects of [none, await helmTemplate(NAMESPACE)]) {
    for (const o of objects.filter((o) => /Role$/.test(String(o.kind)))) {
      assert.ok(!JSON.stringify(o.rules).includes("secrets"), key(o));
    }
  }
  // The bird image follows the agent's unless set.
  const image = (objects: readonly Json[]) =>
    container(find(objects, "DaemonSet", "lbnodeagent"), "bird").image;
  assert.equal(
    image(await helmTemplate(NAMESPACE, ["bgp.enabled=true", "lbnodeagent.image.tag=9.9"])),
    "ghcr.io/purelb-deno/lbnodeagent:9.9",
  );
  assert.equal(
    image(
      await helmTemplate(NAMESPACE, [
        "bgp.enabled=true",
        "bgp.bird.image.repository=example.org/bird",
        "bgp.bird.image.tag=2.17",
      ]),
    ),
    "example.org/bird:2.17",
  );
});

clusterTest(
  "deploy/with-bgp: the agent's BGP RBAC allows what the agent does and nothing more",
  async (c) => {
    // The component's RBAC, moved to a namespace of its own (cluster-wide names made unique),
    // tried with a real token of that namespace's `agent` service account, request by request
    // as the agent makes them.
    const ns = await c.createNamespace("bgp-rbac");
    const other = await c.createNamespace("bgp-rbac-other");
    const unique = (name: unknown) => `${String(name)}:${ns}`;
    const rbac = (await kustomize(WITH_BGP))
      .filter((o) => BGP_RBAC.includes(kindName(o)))
      .map((o) => {
        const copy: Json = structuredClone(o);
        const meta = record(copy.metadata);
        if (String(o.kind).startsWith("Cluster")) meta.name = unique(meta.name);
        else meta.namespace = ns;
        const roleRef = record(copy.roleRef);
        if (roleRef.kind === "ClusterRole") roleRef.name = unique(roleRef.name);
        for (const subject of list(copy.subjects)) record(subject).namespace = ns;
        return copy;
      });
    assert.equal(rbac.length, BGP_RBAC.length);
    const nodeStatus = `node-${ns}`;
    const admin = new ApiConnection(c.adminConfig());
    try {
      await kubectlAs(c, ["apply", "-f", "-"], rbac.map((o) => JSON.stringify(o)).join("\n"));
      const agent = new ApiConnection(await c.serviceAccountConfig(ns, "agent"));
      for (const secret of ["purelb-bgp-auth", "other"]) {
        await admin.request("POST", `/api/v1/namespaces/${ns}/secrets`, {
          body: { metadata: { name: secret }, stringData: { password: "s3cret" } },
        });
      }
      await admin.request("POST", `/api/v1/namespaces/${other}/secrets`, {
        body: { metadata: { name: "purelb-bgp-auth" }, stringData: { password: "s3cret" } },
      });
      const configsOf = (namespace: string) =>
        `/apis/${BGP_GROUP}/v1/namespaces/${namespace}/${BGP_CONFIGURATION_PLURAL}`;
      for (const namespace of [ns, other]) {
        await admin.request("POST", configsOf(namespace), {
          body: {
            apiVersion: `${BGP_GROUP}/v1`,
            kind: "BGPConfiguration",
            metadata: { name: "default" },
            spec: { global: { asn: 65000 } },
          },
        });
      }
      const configs = configsOf(ns);
      const statuses = `/apis/${BGP_GROUP}/v1/${BGP_NODE_STATUS_PLURAL}`;
      const secrets = `/api/v1/namespaces/${ns}/secrets`;
      const merge = "application/merge-patch+json";
      const byName = { fieldSelector: "metadata.name=purelb-bgp-auth" };
      const watch = { watch: "true", timeoutSeconds: "1" };
      type Call = readonly [what: string, method: string, path: string, options?: RequestOptions];
      const allowed: readonly Call[] = [
        ["get a config", "GET", `${configs}/default`],
        ["list configs", "GET", configs],
        ["watch configs", "GET", configs, { query: watch }],
        ["patch a config's status", "PATCH", `${configs}/default/status`, {
          contentType: merge,
          body: { status: { observedGeneration: 1 } },
        }],
        ["create its BGPNodeStatus", "POST", statuses, {
          body: {
            apiVersion: `${BGP_GROUP}/v1`,
            kind: "BGPNodeStatus",
            metadata: { name: nodeStatus },
          },
        }],
        ["get it", "GET", `${statuses}/${nodeStatus}`],
        ["patch its status", "PATCH", `${statuses}/${nodeStatus}/status`, {
          contentType: merge,
          body: { status: { nodeName: nodeStatus, healthy: true } },
        }],
        ["patch it", "PATCH", `${statuses}/${nodeStatus}`, {
          contentType: merge,
          body: { metadata: { labels: { "example.com/x": "y" } } },
        }],
        ["get the named Secret", "GET", `${secrets}/purelb-bgp-auth`],
        ["list it by name", "GET", secrets, { query: byName }],
        ["watch it by name", "GET", secrets, { query: { ...byName, ...watch } }],
      ];
      for (const [what, method, path, options] of allowed) {
        try {
          await agent.request(method, path, options);
        } catch (error) {
          assert.fail(`the agent may ${what}: ${errorText(error)}`);
        }
      }
      const forbidden: readonly Call[] = [
        ["read configs elsewhere", "GET", configsOf(other)],
        ["change a config", "PATCH", `${configs}/default`, {
          contentType: merge,
          body: { spec: { global: { asn: 1 } } },
        }],
        ["read a config's status", "GET", `${configs}/default/status`],
        ["delete a config", "DELETE", `${configs}/default`],
        ["create a config", "POST", configs, {
          body: {
            apiVersion: `${BGP_GROUP}/v1`,
            kind: "BGPConfiguration",
            metadata: { name: "x" },
          },
        }],
        ["list BGPNodeStatuses", "GET", statuses],
        ["watch BGPNodeStatuses", "GET", statuses, { query: watch }],
        ["replace a BGPNodeStatus", "PUT", `${statuses}/${nodeStatus}`, {
          body: {
            apiVersion: `${BGP_GROUP}/v1`,
            kind: "BGPNodeStatus",
            metadata: { name: nodeStatus },
          },
        }],
        ["delete a BGPNodeStatus", "DELETE", `${statuses}/${nodeStatus}`],
        ["read another Secret", "GET", `${secrets}/other`],
        ["list Secrets", "GET", secrets],
        ["watch Secrets", "GET", secrets, { query: watch }],
        ["change the Secret", "PATCH", `${secrets}/purelb-bgp-auth`, {
          contentType: merge,
          body: { stringData: { password: "x" } },
        }],
        ["read the Secret elsewhere", "GET", `/api/v1/namespaces/${other}/secrets/purelb-bgp-auth`],
      ];
      for (const [what, method, path, options] of forbidden) {
        const error = await agent.request(method, path, options).then(() => undefined, (e) => e);
        assert.ok(error instanceof KubeApiError, `the agent may not ${what}`);
        assert.equal(error.code, 403, `${what}: ${error.message}`);
      }
      // The status patch landed, and on the status only.
      const written = record(await admin.request("GET", `${statuses}/${nodeStatus}`));
      assert.deepEqual(written.status, { nodeName: nodeStatus, healthy: true });
      agent.close();
    } finally {
      await admin.request("DELETE", `/apis/${BGP_GROUP}/v1/${BGP_NODE_STATUS_PLURAL}/${nodeStatus}`)
        .catch(() => undefined);
      for (const o of rbac.filter((o) => String(o.kind).startsWith("Cluster"))) {
        const plural = String(o.kind).toLowerCase() + "s";
        await admin.request(
          "DELETE",
          `/apis/rbac.authorization.k8s.io/v1/${plural}/${String(record(o.metadata).name)}`,
        );
      }
      admin.close();
      await c.deleteNamespace(ns);
      await c.deleteNamespace(other);
    }
  },
);

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
