/**
 * `deno task dev`: the flags (pure), and both programs against the test cluster, with the agent
 * configuring a node namespace, stopped together by one SIGINT.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { planDev } from "./dev.ts";
import { DemoApi } from "./api.ts";
import { addressesIn } from "../tests/agent.ts";
import { testCluster } from "../tests/cluster.ts";
import { createLan } from "../tests/netns/mod.ts";
import { assertRoot, rootTestOptions } from "../tests/system.ts";
import { waitFor } from "../tests/wait.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const noEnv = () => undefined;

Deno.test("planDev: the allocator alone, under its permission set, logging text", () => {
  const plan = planDev(["--", "--kubeconfig", "/tmp/k"], noEnv, false);
  assert.equal(plan.kind, "run");
  if (plan.kind !== "run") return;
  assert.deepEqual(plan.programs.map((p) => p.name), ["allocator"]);
  const args = plan.programs[0]?.args ?? [];
  assert.ok(args.includes("--deny-run"), "the allocator may run nothing");
  assert.ok(args.includes("--allow-read=/var/run/secrets/kubernetes.io/serviceaccount,/tmp/k"));
  const tail = args.slice(args.findIndex((a) => a.endsWith("allocator/main.ts")) + 1);
  assert.deepEqual(tail, [
    "--kubeconfig",
    "/tmp/k",
    "--log-format",
    "text",
    "--log-level",
    "debug",
    "--namespace",
    "purelb-system",
    "--listen",
    "127.0.0.1:7472",
  ]);
});

Deno.test("planDev: --agent adds the agent for the node (root only), with --netns", () => {
  const env = (name: string) => ({ KUBECONFIG: "/tmp/env-k", NODE_NAME: "n1" })[name];
  const plan = planDev(["--agent", "--netns", "ns1", "--namespace", "lb"], env, true);
  assert.equal(plan.kind, "run");
  if (plan.kind !== "run") return;
  const agent = plan.programs[1];
  assert.equal(agent?.name, "agent");
  const args = agent?.args ?? [];
  assert.ok(args.some((a) => a.startsWith("--allow-run=")), "the agent may run ip");
  const tail = args.slice(args.findIndex((a) => a.endsWith("agent/main.ts")) + 1);
  assert.deepEqual(tail, [
    "--kubeconfig",
    "/tmp/env-k",
    "--log-format",
    "text",
    "--log-level",
    "debug",
    "--namespace",
    "lb",
    "--node-name",
    "n1",
    "--listen",
    "127.0.0.1:7473",
    "--netns",
    "ns1",
  ]);
});

Deno.test("planDev: refusals say what is missing", () => {
  const message = (args: string[], root = true) => {
    const plan = planDev(args, noEnv, root);
    return plan.kind === "error" ? plan.message : `no error but ${plan.kind}`;
  };
  assert.match(message([]), /--kubeconfig PATH is required/);
  assert.match(message(["--kubeconfig", "k", "--agent"]), /--agent needs --node-name/);
  assert.match(message(["--kubeconfig", "k", "--agent", "--node-name", "a"], false), /needs root/);
  assert.match(message(["--kubeconfig", "k", "--node-name", "a"]), /only go with --agent/);
  assert.match(message(["--kubeconfig", "k", "--what"]), /--what/);
  assert.equal(planDev(["-h"], noEnv, false).kind, "help");
});

Deno.test({
  name: "deno task dev --agent: allocator and agent serve a Service; one SIGINT stops both",
  ...rootTestOptions(),
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assertRoot();
    const cluster = await testCluster();
    const namespace = await cluster.createNamespace("dev");
    const api = new DemoApi(cluster.adminConfig());
    const lan = await createLan({
      nodes: ["node-a"],
      ipv4Subnet: "192.0.2.0/24",
      ipv6Subnet: "2001:db8:1::/64",
    });
    let child: Deno.ChildProcess | undefined;
    let output = "";
    try {
      const base = `/apis/purelb.io/v1/namespaces/${namespace}`;
      await api.request("POST", `${base}/lbnodeagents`, {
        apiVersion: "purelb.io/v1",
        kind: "LBNodeAgent",
        metadata: { name: "default" },
        spec: { local: { localint: "default", extlbint: "kube-lb0" } },
      });
      await api.request("POST", `${base}/servicegroups`, {
        apiVersion: "purelb.io/v1",
        kind: "ServiceGroup",
        metadata: { name: "default" },
        spec: { local: { v4pools: [{ pool: "192.0.2.230-192.0.2.235", subnet: "192.0.2.0/24" }] } },
      });
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "task",
          "dev",
          "--",
          "--kubeconfig",
          cluster.kubeconfigPath,
          "--namespace",
          namespace,
          "--log-level",
          "info",
          "--allocator-listen",
          "127.0.0.1:0",
          "--agent",
          "--node-name",
          "node-a",
          "--netns",
          lan.node("node-a").netns,
          "--agent-listen",
          "127.0.0.1:0",
        ],
        cwd: REPO,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const decoder = new TextDecoder();
      const collect = async (stream: ReadableStream<Uint8Array>) => {
        for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
      };
      const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);

      await api.request("POST", `/api/v1/namespaces/${namespace}/services`, {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: "web" },
        spec: {
          type: "LoadBalancer",
          ipFamilyPolicy: "SingleStack",
          ipFamilies: ["IPv4"],
          ports: [{ port: 80, protocol: "TCP" }],
        },
      });
      let address = "";
      await waitFor(
        async () => {
          const [svc] = await api.services(namespace);
          address = svc?.status?.loadBalancer?.ingress?.[0]?.ip ?? "";
          return address !== "";
        },
        30_000,
        "the allocator to give web an address",
      );
      assert.match(address, /^192\.0\.2\.23[0-5]$/);
      const held = async () =>
        (await addressesIn(lan.node("node-a").netns)).some((h) =>
          h.address === address && h.interfaceName === "eth0"
        );
      await waitFor(held, 30_000, `the agent to put ${address} on eth0 of node-a`);

      const lines = output.split("\n");
      assert.ok(lines.some((l) => /^allocator \| .*\[INF\]/.test(l)), "allocator text logs");
      assert.ok(lines.some((l) => /^agent {5}\| .*\[INF\]/.test(l)), "agent text logs");
      assert.ok(!lines.some((l) => /^\w+ +\| \{/.test(l)), "no JSON log lines");

      child.kill("SIGINT");
      const status = await Promise.race([
        child.status,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 30_000)),
      ]);
      assert.ok(status, `dev stopped within 30 s after SIGINT\n${output}`);
      await reading;
      assert.equal(status.code, 0, output);
      assert.match(output, /dev: stopped \(allocator code 0, agent code 0\)/);
      assert.equal(await held(), false, "the agent withdrew the address when it stopped");
      child = undefined;
    } catch (error) {
      console.error(`--- deno task dev ---\n${output.slice(-6000)}`);
      throw error;
    } finally {
      if (child !== undefined) {
        // SIGINT first: dev stops its programs; SIGKILL only if that does not end it.
        const running = child;
        const kill = (signal: Deno.Signal) => {
          try {
            running.kill(signal);
          } catch { /* exited */ }
        };
        kill("SIGINT");
        const timer = setTimeout(() => kill("SIGKILL"), 20_000);
        await running.status;
        clearTimeout(timer);
      }
      await api.request("DELETE", `/api/v1/namespaces/${namespace}/services/web`).catch(() => {});
      api.close();
      await lan.destroy();
      await cluster.deleteNamespace(namespace).catch(() => {});
    }
  },
});
