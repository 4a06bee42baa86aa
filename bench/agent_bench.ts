/**
 * Node agent benchmarks (issue 5).
 *
 * - `Deno.bench`: the pure decision and change plan for 1,000 services.
 * - The scenario (root only; a real API server and network namespaces), printed as figures:
 *   failover time seen by a client pinging every 10 ms (graceful stop and crash, default lease
 *   settings), one agent with 1,000 virtual addresses (cold start to all configured, and a
 *   no-change resync: wall time and `ip` processes), and the agent's peak RSS.
 *
 * Run: `deno task bench` (the scenario runs once, inside the bench named "agent scenario"), or
 * `deno run -A bench/agent_bench.ts` for the scenario alone. Uses `PURELB_TEST_KUBECONFIG` when
 * set, else starts a private control plane.
 *
 * @module
 */

import { measureGap } from "../tests/netns/probe.ts";
import { type AnnounceInput, decideAnnouncements } from "../agent/announce.ts";
import { parseServiceGroupSpec, type PoolRange } from "../ipam/mod.ts";
import { type NetworkState, parseAddressShow, planChanges } from "../netlink/mod.ts";
import { winner } from "../election/mod.ts";
import { NODES, withScene } from "../tests/agent_scene.ts";
import { metricValue } from "../tests/programs.ts";
import { testCluster } from "../tests/cluster.ts";
import { exec } from "../tests/netns/mod.ts";
import { waitFor } from "../tests/wait.ts";
import { isRoot } from "../tests/system.ts";
import { inParallel } from "./support.ts";

const SERVICES = 1_000;
/** The whole scenario must finish within this. */
const SCENARIO_DEADLINE_MS = 300_000;

function virtualAddress(index: number): string {
  return `2001:db8:100::${(0x1000 + index).toString(16)}`;
}

const SCALE_GROUP = {
  v6pools: [{
    pool: "2001:db8:100::1000-2001:db8:100::1fff",
    subnet: "2001:db8:100::/64",
    aggregation: "/128",
  }],
};

function scalePools(): readonly PoolRange[] {
  const parsed = parseServiceGroupSpec({ local: SCALE_GROUP });
  if (parsed.kind !== "valid" || parsed.source.kind !== "local") throw new Error("bad group");
  return parsed.source.pool.ranges;
}

function scaleInput(): AnnounceInput {
  const network: NetworkState = {
    links: parseAddressShow(JSON.stringify([
      {
        ifindex: 2,
        ifname: "eth0",
        flags: ["UP"],
        addr_info: [{ family: "inet", local: "192.0.2.11", prefixlen: 24 }],
      },
      {
        ifindex: 3,
        ifname: "kube-lb0",
        flags: ["UP"],
        addr_info: Array.from({ length: SERVICES }, (_, i) => ({
          family: "inet6",
          local: virtualAddress(i),
          prefixlen: 128,
        })),
      },
    ])),
    defaultRoutes: [{ family: "IPv4", interfaceName: "eth0" }],
  };
  return {
    nodeName: "node-a",
    settings: { localInterface: "default", dummyInterface: "kube-lb0", sendGarp: false },
    services: Array.from({ length: SERVICES }, (_, i) => ({
      key: `bench/svc-${i}`,
      addresses: [i % 2 === 0 ? virtualAddress(i) : `192.0.2.${100 + (i % 100)}`],
      localTrafficPolicy: i % 3 === 0,
      allowLocal: false,
    })),
    endpointNodes: new Map(),
    pools: scalePools(),
    network,
    liveNodes: NODES.map((nodeName) => ({
      nodeName,
      renewTimeMs: Date.now(),
      leaseDurationMs: 6_000,
      subnets: ["192.0.2.0/24"],
    })),
    fenced: false,
  };
}

Deno.bench("decideAnnouncements: 1,000 services (half local, half virtual)", (b) => {
  const input = scaleInput();
  b.start();
  decideAnnouncements(input);
  b.end();
});

Deno.bench("decide + planChanges: 500 virtual addresses present, no change", (b) => {
  // The virtual half, all with ETP Cluster, and exactly their addresses on kube-lb0.
  const full = scaleInput();
  const services = full.services
    .filter((_, i) => i % 2 === 0)
    .map((service) => ({ ...service, localTrafficPolicy: false }));
  const carried = new Set(services.flatMap((service) => service.addresses));
  const links = full.network.links.map((link) =>
    link.name === "kube-lb0"
      ? { ...link, addresses: link.addresses.filter((a) => carried.has(a.local)) }
      : link
  );
  const input = { ...full, services, network: { ...full.network, links } };
  b.start();
  const plan = decideAnnouncements(input);
  const changes = planChanges(input.network, {
    assignments: plan.assignments,
    isOwned: (e) => e.interfaceName === "kube-lb0",
  });
  b.end();
  if (changes.length !== 0) throw new Error(`expected no change, got ${changes.length}`);
});

async function peakRssMb(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

const LOCAL_GROUP = {
  v4pools: [{ pool: "192.0.2.200-192.0.2.220", subnet: "192.0.2.0/24" }],
};

async function failoverFigures(): Promise<readonly string[]> {
  const cluster = await testCluster();
  const lines: string[] = [];
  await withScene(
    cluster,
    "bench-failover",
    {
      groups: { default: LOCAL_GROUP },
      nodeAgent: { localint: "default", extlbint: "kube-lb0", sendgarp: true },
      agentArgs: ["--log-level", "info"],
    },
    async (scene) => {
      const address = "192.0.2.205";
      const first = winner([...NODES], address) ?? "";
      const second = winner(NODES.filter((n) => n !== first), address) ?? "";
      await scene.api.createAllocatedService("web", [address]);
      await scene.waitForHolders(address, [first]);
      const heldBy = async (node: string) =>
        (await scene.holders(address)).some((h) => h.node === node);

      const graceful = await measureGap(scene.lan.client.netns, address, async () => {
        void scene.agent(first).stop();
        await Promise.resolve();
      }, () => heldBy(second));
      await scene.waitForHolders(address, [second]);
      lines.push(
        `failover, graceful stop (SIGTERM): client outage ${graceful.gapMs} ms ` +
          `(longest gap between answered pings sent every 10 ms; ${graceful.answered} answered)`,
      );

      scene.restart(first);
      await scene.waitForHolders(address, [first]);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const crash = await measureGap(scene.lan.client.netns, address, async () => {
        await scene.agent(first).kill();
        await exec(scene.lan.node(first).netns, "ip", "link", "set", "eth0", "down");
      }, () => heldBy(second));
      lines.push(
        `failover, crash (SIGKILL + node off the LAN), lease 6 s / renew 2 s: client outage ` +
          `${crash.gapMs} ms (longest gap between answered pings; ${crash.answered} answered)`,
      );
      await exec(scene.lan.node(first).netns, "ip", "link", "set", "eth0", "up");
    },
  );
  return lines;
}

async function scaleFigures(): Promise<readonly string[]> {
  const cluster = await testCluster();
  const lines: string[] = [];
  await withScene(
    cluster,
    "bench-scale",
    {
      groups: { default: SCALE_GROUP },
      nodeAgent: { localint: "default", extlbint: "kube-lb0" },
      agentArgs: ["--log-level", "info"],
      startOn: [],
    },
    async (scene) => {
      const indexes = Array.from({ length: SERVICES }, (_, i) => i);
      await inParallel(indexes, 16, async (i) => {
        await scene.api.createAllocatedService(`svc-${i}`, [virtualAddress(i)]);
      });
      const netns = scene.lan.node("node-a").netns;
      const countOnDummy = async () => {
        const output = await exec(netns, "ip", "-6", "address", "show", "dev", "kube-lb0");
        return (output.match(/inet6 2001:db8:100::/g) ?? []).length;
      };
      const started = performance.now();
      const agent = scene.restart("node-a");
      await waitFor(async () => (await countOnDummy()) === SERVICES, 60_000, "1000 addresses");
      const coldMs = performance.now() - started;
      const coldProcesses = await metricValue(agent, "purelb_lbnodeagent_ip_processes_total");
      lines.push(
        `1,000 virtual addresses, cold start (process start -> all on kube-lb0): ` +
          `${(coldMs / 1000).toFixed(2)} s, ${coldProcesses} ip processes in total`,
      );
      const before = {
        reconciles: await metricValue(agent, "purelb_lbnodeagent_reconciles_total"),
        ip: await metricValue(agent, "purelb_lbnodeagent_ip_processes_total"),
        seconds: await metricValue(agent, "purelb_lbnodeagent_reconcile_seconds_sum"),
      };
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      const after = {
        reconciles: await metricValue(agent, "purelb_lbnodeagent_reconciles_total"),
        ip: await metricValue(agent, "purelb_lbnodeagent_ip_processes_total"),
        seconds: await metricValue(agent, "purelb_lbnodeagent_reconcile_seconds_sum"),
      };
      const reconciles = after.reconciles - before.reconciles;
      lines.push(
        `1,000 virtual addresses, no-change resync: ${reconciles} resyncs in 10 s, ` +
          `${((after.seconds - before.seconds) / reconciles * 1000).toFixed(1)} ms each, ` +
          `${((after.ip - before.ip) / reconciles).toFixed(1)} ip processes each`,
      );
      const drifted = virtualAddress(500);
      await exec(netns, "ip", "address", "del", `${drifted}/128`, "dev", "kube-lb0");
      const driftStarted = performance.now();
      await waitFor(async () => (await countOnDummy()) === SERVICES, 15_000, "drift repaired");
      lines.push(
        `1,000 virtual addresses, one deleted by hand: back after ` +
          `${((performance.now() - driftStarted) / 1000).toFixed(2)} s (resync every 3 s)`,
      );
      const status = await Deno.readTextFile(`/proc/${agent.pid}/status`);
      const rssMb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
      lines.push(
        `agent peak RSS with 1,000 services: ${(await peakRssMb(agent.pid)).toFixed(0)} MB ` +
          `(now ${rssMb.toFixed(0)} MB)`,
      );
      await inParallel(indexes, 16, async (i) => {
        await scene.api.core.deleteNamespacedService({
          namespace: scene.namespace,
          name: `svc-${i}`,
        });
      });
    },
  );
  return lines;
}

async function scenario(): Promise<void> {
  const timeout = setTimeout(() => {
    console.error(`agent scenario: over ${SCENARIO_DEADLINE_MS / 1000} s, giving up`);
    Deno.exit(1);
  }, SCENARIO_DEADLINE_MS);
  try {
    const lines = [...await failoverFigures(), ...await scaleFigures()];
    console.log(["agent scenario:", ...lines.map((line) => `  ${line}`)].join("\n"));
  } finally {
    clearTimeout(timeout);
  }
}

let scenarioRun: Promise<void> | undefined;

Deno.bench({
  name: "agent scenario (figures printed above the table; runs once)",
  ignore: !isRoot(),
  n: 1,
  warmup: 0,
  fn: async () => {
    scenarioRun ??= scenario();
    await scenarioRun;
  },
});

if (import.meta.main) {
  await scenario();
  Deno.exit(0);
}
