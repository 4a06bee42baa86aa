/**
 * End-to-end: `kubectl purelb` as a subprocess under the permission set its launcher grants,
 * against the real API server: election and status against three real agents in network
 * namespaces, validate against the real allocator's `ParseFailed` conditions, a user whose
 * RBAC does not cover Leases, and bgp against BGPNodeStatuses and a BGPConfiguration written
 * through their status subresources.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { clusterTest, rootClusterTest, type TestCluster } from "../tests/cluster.ts";
import { NODES, withScene } from "../tests/agent_scene.ts";
import { allocatorServiceAccount, startAllocator, withAllocator } from "../tests/allocator.ts";
import { waitFor } from "../tests/wait.ts";
import { rankCandidates } from "../election/mod.ts";
import { kubeconfigText } from "../k8s/config.ts";
import { MicroTime } from "../k8s/api.ts";
import { pluginCommand } from "./launch.ts";
import { BAD_SPECS, GOOD_SPECS, groupsYaml } from "./testdata.ts";
import type { ElectionReport } from "./election.ts";
import { apiStatusCode } from "../k8s/errors.ts";
import { CustomObjectsApi, mergePatch, typedApi } from "../k8s/client.ts";
import { ApiConnection } from "../k8s/transport.ts";
import {
  BGP_CONFIGURATION_PLURAL,
  BGP_GROUP,
  BGP_NODE_STATUS_PLURAL,
  BGP_VERSION,
} from "../bgp/model.ts";
import type { Condition, NeighborStatus, NodeBgpStatus } from "../bgp/status.ts";
import type { BgpRow } from "./bgp.ts";

/** The bad groups that the CRD's OpenAPI schema refuses before the allocator sees them. */
const SCHEMA_REFUSES = ["bare", "both", "aggregation", "fence"];

interface PluginRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the plugin exactly as `deno task kubectl-purelb` does (same launcher arguments). */
async function plugin(args: readonly string[]): Promise<PluginRun> {
  const env = { HOME: Deno.env.get("HOME") };
  const readText = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return undefined;
    }
  };
  const out = await new Deno.Command(Deno.execPath(), {
    args: pluginCommand(args, env, readText),
    clearEnv: true,
    env: { HOME: Deno.env.get("HOME") ?? "/root", PATH: Deno.env.get("PATH") ?? "" },
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function json<T>(args: readonly string[]): Promise<T> {
  const run = await plugin([...args, "-o", "json"]);
  assert.equal(run.code, 0, `kubectl purelb ${args.join(" ")}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

interface StatusJson {
  readonly service: string;
  readonly address: string;
  readonly kind: string;
  readonly nodes: readonly string[];
  readonly interface: string;
  readonly state: string;
  readonly elected: string;
}

const LOCAL = ["192.0.2.200", "192.0.2.201", "192.0.2.202", "192.0.2.203", "2001:db8:1::200"];
const VIRTUAL = "198.51.100.10";
const SELECTED = ["node-a", "node-b"];

rootClusterTest(
  "kubectl purelb election and status name the nodes and interfaces that ip shows",
  async (cluster) => {
    await withScene(
      cluster,
      "kubectl-election",
      {
        groups: {
          default: {
            v4pools: [
              { pool: "192.0.2.200-192.0.2.220", subnet: "192.0.2.0/24" },
              { pool: "198.51.100.10-198.51.100.20", subnet: "198.51.100.0/24" },
            ],
            v6pools: [{ pool: "2001:db8:1::200-2001:db8:1::2ff", subnet: "2001:db8:1::/64" }],
          },
        },
        nodeAgent: undefined,
        // node-c is selected by no LBNodeAgent: it holds a Lease but publishes no subnets.
        nodeAgents: {
          announcers: {
            local: { localint: "default", extlbint: "kube-lb0" },
            nodeSelector: { matchLabels: { announce: "yes" } },
          },
        },
        nodeLabels: { "node-a": { announce: "yes" }, "node-b": { announce: "yes" }, "node-c": {} },
      },
      async ({ api, namespace, holders, waitForHolders, agent }) => {
        const kubeconfig = ["--kubeconfig", cluster.kubeconfigPath, "-n", namespace];
        for (const [i, address] of [...LOCAL, VIRTUAL].entries()) {
          // Asked for by address, in its family: the allocator started below keeps them.
          await api.createAllocatedService(`svc-${i}`, [address], {
            annotations: { "purelb.io/addresses": address },
            family: address.includes(":") ? "IPv6" : "IPv4",
          });
        }
        await waitForHolders(VIRTUAL, SELECTED);
        for (const address of LOCAL) {
          const expected = rankCandidates(SELECTED, address)[0] ?? "";
          const [held] = await waitForHolders(address, [expected]);
          const report = await json<ElectionReport>(["election", address, ...kubeconfig]);
          assert.equal(report.winner, held?.node, `winner of ${address}`);
          assert.deepEqual(report.candidates, rankCandidates(SELECTED, address));
          assert.equal(report.runnerUp, report.candidates[1]);
          const c = report.nodes.find((n) => n.node === "node-c");
          assert.equal(c?.verdict, "not-selected", JSON.stringify(c));
          assert.equal(c?.lease, "live");
        }

        // status: a virtual address on kube-lb0 of the announcing nodes, the election's pick of
        // each local address, and the announcing annotations' node and interface.
        let rows = await json<StatusJson[]>([
          "status",
          ...kubeconfig,
          "--service-namespace",
          namespace,
        ]);
        assert.equal(rows.length, LOCAL.length + 1);
        for (const row of rows) {
          const seen = await holders(row.address);
          assert.ok(seen.length > 0, `${row.address} is held somewhere`);
          if (row.address === VIRTUAL) {
            assert.deepEqual(row.nodes, seen.map((h) => h.node).sort());
            assert.deepEqual([row.interface, row.kind, row.state], [
              seen[0]?.held.interfaceName,
              "virtual",
              "announced",
            ]);
          } else {
            assert.equal(row.kind, "local");
            assert.equal(row.elected, seen[0]?.node, `elected for ${row.address}`);
          }
        }
        // The real allocator writes purelb.io/announcing-* from the agents' Leases: status then
        // shows, for each local address, the node and interface that ip shows.
        const dir = await Deno.makeTempDir({ prefix: "purelb-kubectl-" });
        const allocator = startAllocator(
          await allocatorServiceAccount(cluster, namespace, dir),
          namespace,
        );
        const statusMatchesIp = async () => {
          rows = await json<StatusJson[]>([
            "status",
            ...kubeconfig,
            "--service-namespace",
            namespace,
          ]);
          const compared = await Promise.all(
            rows.filter((r) => r.kind === "local").map(async (row) => {
              const seen = await holders(row.address);
              return {
                shown: [row.nodes, row.interface, row.state],
                ip: [seen.map((h) => h.node), seen[0]?.held.interfaceName, "announced"],
              };
            }),
          );
          return compared;
        };
        try {
          await waitFor(
            async () =>
              (await statusMatchesIp()).every(({ shown, ip }) =>
                JSON.stringify(shown) === JSON.stringify(ip)
              ),
            30_000,
            "status to show the nodes and interfaces of ip, from the allocator's annotations",
          );
          for (const { shown, ip } of await statusMatchesIp()) assert.deepEqual(shown, ip);
        } finally {
          await allocator.stop();
          await Deno.remove(dir, { recursive: true });
        }
        const table = await plugin(["status", ...kubeconfig, "--service-namespace", namespace]);
        assert.equal(table.code, 0, table.stderr);
        assert.match(
          table.stdout,
          /^SERVICE\s+ADDRESS\s+POOL\s+NODE\s+INTERFACE\s+STATE\s+REASON\n/,
        );

        // An expired Lease and a live node in another subnet are explained.
        const lease = (node: string, renewTime: Date, subnets: string) =>
          api.coordination.createNamespacedLease({
            namespace,
            body: {
              metadata: {
                name: `purelb-node-${node}`,
                annotations: { "purelb.io/subnets": subnets },
              },
              spec: {
                holderIdentity: node,
                leaseDurationSeconds: 3600,
                renewTime: new MicroTime(renewTime.getTime()),
              },
            },
          });
        await lease("node-x", new Date(Date.now() - 7_200_000), "192.0.2.0/24");
        await lease("node-y", new Date(), "203.0.113.0/24");
        const address = LOCAL[0] ?? "";
        let report = await json<ElectionReport>(["election", address, ...kubeconfig]);
        const verdicts = new Map(report.nodes.map((n) => [n.node, n]));
        assert.equal(verdicts.get("node-x")?.verdict, "expired");
        assert.match(verdicts.get("node-x")?.reason ?? "", /^Lease expired \d+ s ago/);
        assert.equal(verdicts.get("node-y")?.verdict, "subnet-mismatch");
        assert.equal(verdicts.get("node-y")?.reason, `${address} is in none of its subnets`);
        assert.deepEqual(report.candidates, rankCandidates(SELECTED, address));

        // A graceful stop deletes the Lease: the Node has none, the other node wins everything.
        await agent("node-b").stop();
        for (const local of LOCAL) await waitForHolders(local, ["node-a"]);
        await waitFor(
          async () =>
            (await json<ElectionReport>(["election", address, ...kubeconfig])).nodes.find((n) =>
              n.node === "node-b"
            )?.verdict === "no-lease",
          15_000,
          "node-b to have no Lease",
        );
        for (const local of LOCAL) {
          report = await json<ElectionReport>(["election", local, ...kubeconfig]);
          assert.deepEqual([report.winner, report.runnerUp], ["node-a", undefined]);
        }
        const text = await plugin(["election", address, ...kubeconfig]);
        assert.equal(text.code, 0, text.stderr);
        assert.match(
          text.stdout,
          new RegExp(`^${address.replaceAll(".", "\\.")}: winner node-a, runner-up none`),
        );
        assert.match(text.stdout, /\nnode-b\s+none\s+-\s+no\s+-\s+no Lease: /);
        assert.ok(NODES.every((node) => text.stdout.includes(`\n${node} `)));
      },
    );
  },
);

async function viewerKubeconfig(
  cluster: TestCluster,
  namespace: string,
  dir: string,
): Promise<string> {
  const access = await cluster.serviceAccountConfig(namespace, "viewer");
  const path = join(dir, "viewer.kubeconfig");
  await Deno.writeTextFile(path, kubeconfigText(access, namespace), { mode: 0o600 });
  return path;
}

clusterTest("a user who may not read Leases gets a clear message and exit 1", async (cluster) => {
  const namespace = await cluster.createNamespace("kubectl-rbac");
  const dir = await Deno.makeTempDir({ prefix: "purelb-kubectl-" });
  try {
    const kubeconfig = await viewerKubeconfig(cluster, namespace, dir);
    await cluster.grant(namespace, "viewer", [
      { apiGroups: [""], resources: ["services", "events"], verbs: ["list"] },
      { apiGroups: ["purelb.io"], resources: ["servicegroups", "lbnodeagents"], verbs: ["list"] },
    ]);
    try {
      for (const args of [["status"], ["election", "192.0.2.10"]]) {
        const run = await plugin([...args, "--kubeconfig", kubeconfig, "-n", namespace]);
        assert.equal(run.code, 1, run.stdout);
        assert.match(
          run.stderr.trim(),
          new RegExp(
            `^kubectl purelb: access denied: cannot list leases in ${namespace} \\(.*\\)$`,
          ),
        );
        assert.doesNotMatch(run.stderr, /\n\s+at /, "no stack trace");
      }
      // What it may read works.
      const pools = await plugin(["pools", "--kubeconfig", kubeconfig, "-n", namespace]);
      assert.equal(pools.code, 0, pools.stderr);
      assert.equal(pools.stdout.trim(), "NAME  SOURCE  VALID  IPV4  IPV6  BOUND  OUT-OF-SCOPE");
    } finally {
      await cluster.revoke(namespace, "viewer");
    }
    const denied = await plugin(["pools", "--kubeconfig", kubeconfig, "-n", namespace]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /^kubectl purelb: access denied: cannot list servicegroups in /);
  } finally {
    await cluster.deleteNamespace(namespace).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});

const ago = (seconds: number) => new Date(Date.now() - seconds * 1000).toISOString();

function bgpCondition(
  type: string,
  status: Condition["status"],
  reason: string,
  message: string,
): Condition {
  return { type, status, reason, message, lastTransitionTime: ago(3600) };
}

function bgpStatus(
  nodeName: string,
  neighbors: readonly NeighborStatus[],
  conditions: readonly Condition[],
  lastUpdated: string,
): NodeBgpStatus {
  return {
    nodeName,
    routerID: "192.0.2.21",
    asn: 65001,
    neighbors,
    neighborCount: neighbors.length,
    healthy: false,
    conditions,
    heartbeatSeconds: 60,
    lastUpdated,
  };
}

const UNSUPPORTED = "these fields are not supported and have no effect: spec.peerGroups";

clusterTest(
  "bgp shows each node's neighbours, why they are down, stale nodes and configuration problems",
  async (cluster) => {
    const namespace = await cluster.createNamespace("kubectl-bgp");
    const connection = new ApiConnection(cluster.adminConfig());
    const api = typedApi(connection, CustomObjectsApi);
    const where = { group: BGP_GROUP, version: BGP_VERSION, plural: BGP_NODE_STATUS_PLURAL };
    // BGPNodeStatuses are cluster-wide: names of this test only, other tests may add their own.
    const prefix = `kbgp-${crypto.randomUUID().slice(0, 6)}`;
    const [up, idle, stale, fresh] = [
      `${prefix}-up`,
      `${prefix}-idle`,
      `${prefix}-stale`,
      `${prefix}-new`,
    ];
    const created: string[] = [];
    const dir = await Deno.makeTempDir({ prefix: "purelb-kubectl-" });
    try {
      const statuses: [string, NodeBgpStatus | undefined][] = [
        [
          up,
          bgpStatus(up, [
            {
              address: "192.0.2.1",
              peerASN: 65000,
              localASN: 65001,
              state: "Established",
              sessionUpSince: ago(300),
              prefixesSent: 2,
              prefixesReceived: 0,
              description: "router",
            },
            {
              address: "2001:db8:1::1",
              peerASN: 65000,
              localASN: 65001,
              state: "Active",
              prefixesSent: 0,
              prefixesReceived: 0,
              lastError: "Received: Bad peer AS",
            },
          ], [
            bgpCondition("DaemonReady", "True", "Running", "BIRD runs the config"),
            bgpCondition("Configured", "True", "Configured", "2 neighbours configured"),
            bgpCondition("SessionsEstablished", "False", "SessionsDown", "1 of 2 not established"),
          ], ago(20)),
        ],
        [
          idle,
          bgpStatus(idle, [], [
            bgpCondition("DaemonReady", "False", "DaemonUnreachable", "BIRD does not answer"),
            bgpCondition(
              "Configured",
              "False",
              "NoConfiguration",
              `no BGPConfiguration in namespace ${namespace}: BGP is idle`,
            ),
          ], ago(20)),
        ],
        [stale, bgpStatus(stale, [], [], ago(1200))],
        [fresh, undefined],
      ];
      for (const [name, status] of statuses) {
        await api.createClusterCustomObject({
          ...where,
          body: {
            apiVersion: `${BGP_GROUP}/${BGP_VERSION}`,
            kind: "BGPNodeStatus",
            metadata: { name },
          },
        });
        created.push(name);
        if (status !== undefined) {
          await api.patchClusterCustomObjectStatus(
            { ...where, name, body: { status } },
            mergePatch(),
          );
        }
      }
      // A BGPConfiguration with a field the agent does not act on, its conditions written as the
      // agent writes them (through the status subresource).
      const config = {
        group: BGP_GROUP,
        version: BGP_VERSION,
        namespace,
        plural: BGP_CONFIGURATION_PLURAL,
      };
      await api.createNamespacedCustomObject({
        ...config,
        body: {
          apiVersion: `${BGP_GROUP}/${BGP_VERSION}`,
          kind: "BGPConfiguration",
          metadata: { name: "default" },
          spec: {
            global: { asn: 65001 },
            neighbors: [{ config: { neighborAddress: "192.0.2.1", peerAsn: 65000 } }],
            peerGroups: [{ config: { peerGroupName: "spines", peerAsn: 65000 } }],
          },
        },
      });
      await api.patchNamespacedCustomObjectStatus({
        ...config,
        name: "default",
        body: {
          status: {
            conditions: [
              bgpCondition("Accepted", "True", "Valid", "1 neighbours"),
              bgpCondition("UnsupportedFields", "True", "FieldsIgnored", UNSUPPORTED),
            ],
          },
        },
      }, mergePatch());

      const kubeconfig = ["--kubeconfig", cluster.kubeconfigPath, "-n", namespace];
      const text = await plugin(["bgp", ...kubeconfig]);
      assert.deepEqual([text.code, text.stderr], [0, ""]);
      const lines = text.stdout.trimEnd().split("\n");
      // The cells of this test's rows (columns are two spaces apart or more, cells have one).
      const ourLines = (stdout: string) =>
        stdout.split("\n").filter((line) => line.startsWith(`${prefix}-`)).map((line) =>
          line.split(/ {2,}/)
        );
      assert.deepEqual(lines.slice(0, 2), [
        `BGPConfiguration default: UnsupportedFields True (FieldsIgnored): ${UNSUPPORTED}`,
        "",
      ]);
      assert.match(
        lines[2] ?? "",
        /^NODE +ROUTER-ID +PEER +PEER-AS +STATE +UP-SINCE +SENT +REASON$/,
      );
      const ours = ourLines(text.stdout);
      assert.deepEqual(ours, [
        [
          idle,
          "192.0.2.21",
          "-",
          "-",
          "-",
          "-",
          "-",
          "no BGPConfiguration in namespace " +
          `${namespace}: BGP is idle`,
        ],
        [
          fresh,
          "-",
          "-",
          "-",
          "-",
          "-",
          "-",
          "no status written yet: is the agent running with BGP?",
        ],
        [
          stale,
          "192.0.2.21",
          "-",
          "-",
          "stale",
          "-",
          "-",
          "status not updated for 20m (written every 60s): is the agent running?",
        ],
        [up, "192.0.2.21", "192.0.2.1", "65000", "Established", "5m", "2", "-"],
        [up, "192.0.2.21", "2001:db8:1::1", "65000", "Active", "-", "0", "Received: Bad peer AS"],
      ]);

      const wide = await plugin(["bgp", ...kubeconfig, "-o", "wide"]);
      assert.equal(wide.code, 0, wide.stderr);
      assert.match(
        wide.stdout,
        /\nNODE +ROUTER-ID +PEER +PEER-AS +LOCAL-AS +STATE +UP-SINCE +SENT +RECEIVED +DESCRIPTION +LAST-UPDATED +REASON\n/,
      );
      assert.match(
        wide.stdout,
        new RegExp(
          `\\n${up} +192\\.0\\.2\\.21 +192\\.0\\.2\\.1 +65000 +65001 +Established +5m +2 +0 +router +\\d+s +-\\n`,
        ),
      );

      const rows = (await json<BgpRow[]>(["bgp", ...kubeconfig])).filter((r) =>
        r.node.startsWith(`${prefix}-`)
      );
      assert.deepEqual(
        rows.map((r) => [r.node, r.peer, r.state, r.stale, r.prefixesSent ?? null]),
        [
          [idle, "", "", false, null],
          [fresh, "", "", false, null],
          [stale, "", "", true, null],
          [up, "192.0.2.1", "Established", false, 2],
          [up, "2001:db8:1::1", "Active", false, 0],
        ],
      );

      // The documented reads are enough: list bgpnodestatuses (cluster) and configs (namespace).
      const viewer = await viewerKubeconfig(cluster, namespace, dir);
      await cluster.grant(namespace, "viewer", [
        { apiGroups: [BGP_GROUP], resources: [BGP_NODE_STATUS_PLURAL], verbs: ["list"] },
      ]);
      try {
        const denied = await plugin(["bgp", "--kubeconfig", viewer, "-n", namespace]);
        assert.equal(denied.code, 1, denied.stdout);
        assert.match(
          denied.stderr.trim(),
          new RegExp(
            `^kubectl purelb: access denied: cannot list configs in ${namespace} \\(.*\\)$`,
          ),
        );
      } finally {
        await cluster.revoke(namespace, "viewer");
      }
      await cluster.grant(namespace, "viewer", [{
        apiGroups: [BGP_GROUP],
        resources: [BGP_NODE_STATUS_PLURAL, BGP_CONFIGURATION_PLURAL],
        verbs: ["list"],
      }]);
      try {
        const allowed = await plugin(["bgp", "--kubeconfig", viewer, "-n", namespace]);
        assert.equal(allowed.code, 0, allowed.stderr);
        assert.deepEqual(ourLines(allowed.stdout), ours);
      } finally {
        await cluster.revoke(namespace, "viewer");
      }
    } finally {
      for (const name of created) await api.deleteClusterCustomObject({ ...where, name });
      connection.close();
      await cluster.deleteNamespace(namespace).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
);

clusterTest(
  "validate -f gives the allocator's ParseFailed messages for bad groups, exit 0 for good ones",
  async (cluster) => {
    const dir = await Deno.makeTempDir({ prefix: "purelb-kubectl-" });
    try {
      const good = join(dir, "good.yaml");
      const bad = join(dir, "bad.yaml");
      await Deno.writeTextFile(good, groupsYaml(GOOD_SPECS));
      await Deno.writeTextFile(bad, groupsYaml(BAD_SPECS));
      const ok = await plugin(["validate", "-f", good]);
      assert.deepEqual([ok.code, ok.stderr], [0, ""]);
      assert.equal(ok.stdout.trim().split("\n").length, Object.keys(GOOD_SPECS).length);
      const failed = await plugin(["validate", "-f", bad, "-o", "json"]);
      assert.equal(failed.code, 1, failed.stderr);
      const report = JSON.parse(failed.stdout) as {
        groups: { name: string; errors: string[] }[];
      };
      await withAllocator(cluster, "kubectl-validate", {}, async ({ api, namespace }) => {
        // The CRD's schema refuses some faults itself; the allocator judges the rest.
        const refused: string[] = [];
        for (const [name, spec] of Object.entries(BAD_SPECS)) {
          await api.createGroup(name, spec).catch((error) => {
            if (apiStatusCode(error) !== 422) throw error;
            refused.push(name);
          });
        }
        assert.deepEqual(refused, SCHEMA_REFUSES);
        report.groups = report.groups.filter((g) => !refused.includes(g.name));
        const kubeconfig = ["--kubeconfig", cluster.kubeconfigPath, "-n", namespace];
        for (const group of report.groups) {
          let message = "";
          await waitFor(
            async () => {
              const sg = await api.group(group.name);
              const conditions = (sg.status?.["conditions"] ?? []) as {
                type: string;
                status: string;
                reason: string;
                message: string;
              }[];
              const valid = conditions.find((c) => c.type === "Valid");
              message = valid?.reason === "ParseFailed" ? valid.message : "";
              return message !== "";
            },
            15_000,
            `ParseFailed on ${group.name}`,
          );
          assert.equal(message, group.errors.join("; "), group.name);
        }
        const pools = await json<{ name: string; valid: string; message: string }[]>([
          "pools",
          ...kubeconfig,
        ]);
        assert.deepEqual(
          pools.map((p) => [p.name, p.valid, p.message]),
          report.groups.map((g) => [g.name, "False", g.errors.join("; ")]).sort((a, b) =>
            String(a[0]).localeCompare(String(b[0]))
          ),
        );
      });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test({
  name: "the CRDs missing and an unreachable server are one line each",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "purelb-kubectl-" });
  try {
    // A server that answers 404 to everything, like an API server without our CRDs.
    const server = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen: () => {} },
      () =>
        Response.json({
          kind: "Status",
          message: "the server could not find the requested resource",
        }, {
          status: 404,
        }),
    );
    const kubeconfig = join(dir, "kubeconfig");
    const write = (url: string) =>
      Deno.writeTextFile(
        kubeconfig,
        JSON.stringify({
          apiVersion: "v1",
          kind: "Config",
          "current-context": "c",
          contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
          clusters: [{ name: "c", cluster: { server: url } }],
          users: [{ name: "u", user: { token: "t" } }],
        }),
      );
    try {
      await write(`http://127.0.0.1:${server.addr.port}`);
      const missing = await plugin(["pools", "--kubeconfig", kubeconfig]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^kubectl purelb: the PureLB CRDs are not installed: /);
      const noBgp = await plugin(["bgp", "--kubeconfig", kubeconfig]);
      assert.equal(noBgp.code, 1);
      assert.match(
        noBgp.stderr,
        /^kubectl purelb: BGP is not installed: the API server has no bgp(nodestatuses|configs)\.bgp\.purelb\.io\/v1 .*kubectl apply -k deploy\/with-bgp.*--set bgp\.enabled=true/,
      );
      assert.equal(noBgp.stderr.trim().split("\n").length, 1);
    } finally {
      await server.shutdown();
    }
    await write(`http://127.0.0.1:${server.addr.port}`);
    const gone = await plugin(["status", "--kubeconfig", kubeconfig]);
    assert.equal(gone.code, 1);
    assert.match(
      gone.stderr,
      /^kubectl purelb: cannot reach the API server at http:\/\/127\.0\.0\.1:\d+: /,
    );
    assert.equal(gone.stderr.trim().split("\n").length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "the installed kubectl-purelb wrapper runs the plugin: exit 0 for good groups, 1 for bad",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "purelb-kubectl-" });
  try {
    const repo = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
    const install = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-env",
        join(repo, "kubectl/install.ts"),
        "--dir",
        dir,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(install.success, new TextDecoder().decode(install.stderr));
    const wrapper = join(dir, "kubectl-purelb");
    assert.equal(((await Deno.stat(wrapper)).mode ?? 0) & 0o777, 0o755);
    await Deno.writeTextFile(join(dir, "good.yaml"), groupsYaml(GOOD_SPECS));
    await Deno.writeTextFile(join(dir, "bad.yaml"), groupsYaml(BAD_SPECS));
    const run = async (file: string) => {
      const out = await new Deno.Command(wrapper, {
        args: ["validate", "-f", join(dir, file)],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(120_000),
      }).output();
      return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
    };
    const good = await run("good.yaml");
    assert.equal(good.code, 0, good.stdout);
    assert.match(good.stdout, /^servicegroup\/default: valid\n/);
    const bad = await run("bad.yaml");
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stdout, /^servicegroup\/bare: invalid\n/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
