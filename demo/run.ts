/**
 * The demo itself (root only; `demo/main.ts` checks that first): a real control plane, a LAN
 * of three node namespaces and a client, an upstream router (FRR) on the LAN with a second
 * client behind it, the real allocator and one real agent per node (each as its service
 * account, under its production permission set, with BGP: BIRD in every node namespace), the
 * sample Services, a live table with the router's next hops, and a hand-over measured from the
 * client.
 *
 * @module
 */

import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { BinaryBuildError, ensureBinaries } from "../tests/controlplane/binaries.ts";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { createLan, type Lan, testbedIpPath, tryExec } from "../tests/netns/mod.ts";
import { addressesIn, type AgentProcess, startAgent } from "../tests/agent.ts";
import { type AllocatorProcess, startAllocator } from "../tests/allocator.ts";
import { NetboxTestServer } from "../tests/netbox/mod.ts";
import { whichCommand } from "../tests/system.ts";
import { waitFor } from "../tests/wait.ts";
import { type ClusterAccess, kubeconfigText, parseKubeconfig } from "../k8s/config.ts";
import { collectionPath, DemoApi, type ManifestObject } from "./api.ts";
import { measureGap, PROBE_INTERVAL_MS } from "../tests/netns/probe.ts";
import { createRouter, type Router } from "../tests/netns/router.ts";
import { type Bird, startBird } from "../tests/netns/bird.ts";
import { ping } from "../tests/netns/reach.ts";
import {
  DEMO_NAMESPACE,
  describeExpectation,
  EXPECTED,
  HANDOVER_SERVICE,
  LAN_IPV4,
  LAN_IPV6,
  NETBOX_COUNT,
  NETBOX_FIRST,
  NETBOX_SERVICE,
  NETBOX_TENANT,
  NODE_ASN,
  NODES,
  PURELB_NAMESPACE,
  ROUTER_ASN,
  unmetExpectations,
} from "./scenario.ts";
import { type DemoRow, type Holding, renderDemoTable, withNextHops } from "./table.ts";
import { PluginReader } from "../kubectl/api.ts";
import { statusRows } from "../kubectl/status.ts";

/** How the demo runs. */
export interface DemoOptions {
  /** Non-interactive: set up, wait, print the table once, hand over, clean up, exit. */
  readonly once: boolean;
  /** How long the sample services may take to reach their expected state. */
  readonly timeoutMs: number;
  /** Where to write the programs' logs at the end (kept); none when absent. */
  readonly logsDir: string | undefined;
}

/** Commands the demo runs inside the namespaces, and the Debian package of each. */
const PACKAGES_BY_COMMAND: Readonly<Record<string, string>> = {
  ip: "iproute2",
  ping: "iputils-ping",
  arping: "iputils-arping",
  na6: "ipv6toolkit",
  bird: "bird2",
  birdc: "bird2",
  vtysh: "frr",
};
const SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

const DEMO_DIR = fileURLToPath(new URL(".", import.meta.url));
/** The BGP component's RBAC for the agent, applied as it is (the demo runs in purelb-system). */
const BGP_RBAC_FILES = ["rbac.yaml", "secrets-rbac.yaml"].map((file) =>
  fileURLToPath(new URL(`../deploy/components/bgp/${file}`, import.meta.url))
);
const TOKEN_SECONDS = 24 * 3600;
/** The interactive live table stops by itself after this long. */
const LIVE_LIMIT_MS = 3_600_000;
const REFRESH_MS = 1_000;
/**
 * Before the hand-over, nothing may have moved for this long. While agents start, the first
 * ones take addresses that later ones win; the gratuitous ARP bursts of the first ones (three
 * packets a second apart) go on for a while, and the client must not learn from them.
 */
const QUIET_MS = 3_000;
const STOP_GRACE_MS = 10_000;
const CLEAR_SCREEN = "\x1b[H\x1b[2J";

const say = (line: string) => console.error(`demo: ${line}`);

async function hasCommand(command: string): Promise<boolean> {
  if (await whichCommand(command)) return true;
  for (const dir of SBIN) {
    try {
      if ((await Deno.stat(`${dir}/${command}`)).isFile) return true;
    } catch { /* not here */ }
  }
  return false;
}

/** Installs what is missing with apt-get; returns what is still missing afterwards. */
async function ensureCommands(): Promise<string[]> {
  const missing = async () => {
    const out: string[] = [];
    for (const [command, pkg] of Object.entries(PACKAGES_BY_COMMAND)) {
      if (!(await hasCommand(command))) out.push(`${command} (Debian package ${pkg})`);
    }
    return out;
  };
  const before = await missing();
  if (before.length === 0) return [];
  const packages = [
    ...new Set(
      Object.entries(PACKAGES_BY_COMMAND).filter(([c]) => before.some((m) => m.startsWith(`${c} `)))
        .map(([, p]) => p),
    ),
  ];
  if (!(await hasCommand("apt-get"))) return before;
  say(`installing ${packages.join(", ")} with apt-get`);
  for (const args of [["update"], ["install", "-y", "--no-install-recommends", ...packages]]) {
    const out = await new Deno.Command("apt-get", {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(600_000),
    }).output();
    if (!out.success) {
      say(`apt-get ${args[0]} failed: ${new TextDecoder().decode(out.stderr).trim().slice(-500)}`);
      break;
    }
  }
  return await missing();
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rows of the known samples first, in scenario order (a service's rows stay together). */
function inScenarioOrder<T extends DemoRow>(rows: readonly T[]): T[] {
  const order = [...EXPECTED.keys()];
  const rank = (name: string) => {
    const i = order.indexOf(name);
    return i < 0 ? order.length : i;
  };
  return [...rows].sort((a, b) => rank(a.service) - rank(b.service));
}

/** Everything the demo started, for the orderly and the emergency clean-up. */
class Stage {
  controlPlane: ControlPlane | undefined;
  lan: Lan | undefined;
  router: Router | undefined;
  api: DemoApi | undefined;
  allocator: AllocatorProcess | undefined;
  netbox: NetboxTestServer | undefined;
  readonly agents = new Map<string, AgentProcess>();
  readonly birds = new Map<string, Bird>();
  tmpDir: string | undefined;

  constructor(readonly logsDir: string | undefined) {}

  readonly #exited = new Set<number>();

  /** Registers a started program. */
  track<T extends AllocatorProcess | AgentProcess>(process: T): T {
    void process.exited.then(() => this.#exited.add(process.pid));
    return process;
  }

  processes(): { name: string; process: AllocatorProcess | AgentProcess }[] {
    return [
      ...(this.allocator ? [{ name: "allocator", process: this.allocator }] : []),
      ...[...this.agents].map(([node, process]) => ({ name: `agent-${node}`, process })),
    ];
  }

  /** Every log the demo keeps: the programs', each node's BIRD's and the router's FRR's. */
  logs(): { name: string; text: () => string }[] {
    const router = this.router;
    return [
      ...this.processes().map(({ name, process }) => ({ name, text: () => process.logs() })),
      ...[...this.birds].map(([node, bird]) => ({
        name: `bird-${node}`,
        text: () => bird.stderrText(),
      })),
      ...(router ? [{ name: "frr-router", text: () => router.logs() }] : []),
    ];
  }

  /** Every namespace the demo made: the LAN's, the router's and the one behind it. */
  namespaces(): string[] {
    const router = this.router;
    return [
      ...(this.lan?.namespaces ?? []),
      ...(router ? [router.netns, router.client.netns] : []),
    ];
  }

  writeLogsSync(): void {
    if (this.logsDir === undefined) return;
    try {
      Deno.mkdirSync(this.logsDir, { recursive: true });
      for (const { name, text } of this.logs()) {
        Deno.writeTextFileSync(join(this.logsDir, `${name}.log`), text());
      }
    } catch (error) {
      say(`could not write logs to ${this.logsDir}: ${error}`);
    }
  }

  printLogTails(): void {
    for (const { name, text } of this.logs()) {
      const tail = text().trimEnd().split("\n").slice(-15).join("\n");
      console.error(`--- ${name} (last lines) ---\n${tail}`);
    }
  }

  /** For signals and exit: kill everything at once, synchronously. */
  killSync(): void {
    this.writeLogsSync();
    for (const { process } of this.processes()) {
      // Never signal a pid whose process has exited: the number may belong to another by now.
      if (this.#exited.has(process.pid)) continue;
      try {
        Deno.kill(process.pid, "SIGKILL");
      } catch { /* already gone */ }
    }
    this.controlPlane?.killSync();
    void this.netbox?.close();
    const ip = testbedIpPath();
    for (const netns of this.namespaces()) {
      try {
        // BIRD and FRR run inside the namespaces: the pids there now are the demo's daemons.
        const listed = new Deno.Command(ip, { args: ["netns", "pids", netns], stderr: "null" })
          .outputSync();
        for (const pid of new TextDecoder().decode(listed.stdout).split(/\s+/).filter(Boolean)) {
          try {
            Deno.kill(Number(pid), "SIGKILL");
          } catch { /* exited meanwhile */ }
        }
        new Deno.Command(ip, { args: ["netns", "del", netns], stdout: "null", stderr: "null" })
          .outputSync();
      } catch { /* gone already */ }
    }
    for (const dir of [this.tmpDir, this.router?.dir]) {
      if (dir === undefined) continue;
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch { /* already gone */ }
    }
  }

  /**
   * Orderly: agents withdraw (their addresses and so their routes), BIRD and the allocator
   * stop, then the router, the LAN and the control plane go.
   */
  async stop(): Promise<void> {
    this.writeLogsSync();
    const stopOne = async (process: AllocatorProcess | AgentProcess) => {
      const timer = setTimeout(() => void process.kill(), STOP_GRACE_MS);
      await process.stop();
      clearTimeout(timer);
    };
    await Promise.all([...this.agents.values()].map(stopOne));
    await Promise.all([...this.birds.values()].map((bird) => bird.stop()));
    if (this.allocator) await stopOne(this.allocator);
    await this.netbox?.close();
    this.api?.close();
    await this.router?.destroy().catch((error) => say(`removing the router: ${error}`));
    await this.lan?.destroy().catch((error) => say(`removing the namespaces: ${error}`));
    await this.controlPlane?.stop();
    if (this.tmpDir !== undefined) await Deno.remove(this.tmpDir, { recursive: true });
  }
}

/** One look at the scene: the table's rows and which of their addresses are virtual. */
interface Observation {
  readonly rows: DemoRow[];
  /** The virtual addresses (in no node's subnet: routed by BGP), in table order. */
  readonly virtual: readonly string[];
}

/** The host-route prefix of an address (the virtual pool's aggregation is /32). */
function hostPrefix(address: string): string {
  return `${address}/${address.includes(":") ? 128 : 32}`;
}

/**
 * What the demo reads every refresh: the plugin's status (`kubectl purelb status`, the same
 * reads and the same rows), with what `ip` shows in each node's namespace as the holders, and
 * for each virtual address the nodes behind the router's next hops.
 */
async function observe(api: DemoApi, lan: Lan, router: Router): Promise<Observation> {
  const reader = new PluginReader((path) => api.request("GET", path), api.access.server);
  const [services, failures, leases, nodeAgents, held] = await Promise.all([
    reader.services(DEMO_NAMESPACE),
    reader.allocationFailures(DEMO_NAMESPACE),
    reader.leases(PURELB_NAMESPACE),
    reader.nodeAgents(PURELB_NAMESPACE),
    Promise.all(
      lan.nodes.map(async (node): Promise<Holding[]> =>
        (await addressesIn(node.netns)).map((h) => ({
          node: node.name,
          interfaceName: h.interfaceName,
          address: h.address,
        }))
      ),
    ),
  ]);
  const status = statusRows(
    { services, failures, leases, nodeAgents, qualifyNames: false, nowMs: Date.now() },
    { observed: held.flat() },
  );
  const rows = await Promise.all(status.map(async (row) =>
    withNextHops(
      row,
      row.kind === "virtual" ? await router.nextHopNodes(hostPrefix(row.address)) : [],
    )
  ));
  const virtual = new Set(status.filter((r) => r.kind === "virtual").map((r) => r.address));
  const ordered = inScenarioOrder(rows);
  return {
    rows: ordered,
    virtual: [...new Set(ordered.map((r) => r.address))].filter((a) => virtual.has(a)),
  };
}

/** The addresses that answer one ping (1 s at most) from `netns`. */
async function answering(netns: string, addresses: readonly string[]): Promise<Set<string>> {
  const results = await Promise.all(addresses.map(async (address) => {
    const result = await ping(netns, address, { count: 1, deadlineSeconds: 1 });
    return result.received > 0 ? [address] : [];
  }));
  return new Set(results.flat());
}

/** Shows the table: redrawn in a terminal, printed when it changes otherwise. */
class Display {
  #last = "";
  readonly #terminal = Deno.stdout.isTerminal();

  constructor(readonly quiet: boolean) {}

  show(title: string, rows: readonly DemoRow[], footer: readonly string[]): void {
    if (this.quiet) return;
    const table = renderDemoTable(rows);
    const text = `${title}\n\n${table}\n\n${footer.join("\n")}`.trimEnd() + "\n";
    if (this.#terminal) {
      const stamp = new Date().toLocaleTimeString();
      console.log(`${CLEAR_SCREEN}${text}\n(${stamp}, refreshed every second)`);
    } else if (text !== this.#last) {
      console.log(text);
    }
    this.#last = text;
  }
}

async function serviceAccountKubeconfig(
  api: DemoApi,
  admin: ClusterAccess,
  name: string,
  dir: string,
): Promise<string> {
  const token = await api.serviceAccountToken(PURELB_NAMESPACE, name, TOKEN_SECONDS);
  const path = join(dir, `${name}.kubeconfig`);
  await Deno.writeTextFile(
    path,
    kubeconfigText({ ...admin, bearerToken: () => token }, PURELB_NAMESPACE),
    {
      mode: 0o600,
    },
  );
  return path;
}

/** Runs the demo; returns the exit code. */
export async function runDemo(options: DemoOptions): Promise<number> {
  const missing = await ensureCommands();
  if (missing.length > 0) {
    say(`missing: ${missing.join(", ")}; install them (apt-get install ...) and run again`);
    return 1;
  }
  const stage = new Stage(options.logsDir);
  const onSignal = () => {
    say(
      "interrupted: stopping the agents, BIRD, the allocator, the router and the control plane; " +
        "removing the network namespaces",
    );
    stage.killSync();
    Deno.exit(130);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, onSignal);
  const onUnload = () => stage.killSync();
  globalThis.addEventListener("unload", onUnload);
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  let code = 1;
  try {
    say(
      "starting a Kubernetes control plane (etcd + kube-apiserver on 127.0.0.1); the first " +
        "run builds kube-apiserver with Go and fetches etcd: several minutes, later runs seconds",
    );
    const log = (line: string) => console.error(`controlplane: ${line}`);
    const binaries = await ensureBinaries({ log });
    const tmpDir = await Deno.makeTempDir({ prefix: "purelb-demo-" });
    stage.tmpDir = tmpDir;
    stage.controlPlane = await ControlPlane.start({ binaries, log });
    const cp = stage.controlPlane;
    say(
      `control plane ready (${elapsed()}), kubeconfig ${cp.kubeconfigPath}; CRDs, namespace ` +
        `${PURELB_NAMESPACE} and RBAC applied from deploy/`,
    );

    const lan = await createLan({ nodes: [...NODES], ipv4Subnet: LAN_IPV4, ipv6Subnet: LAN_IPV6 });
    stage.lan = lan;
    const router = await createRouter(lan, { asn: ROUTER_ASN, nodeAsn: NODE_ASN });
    stage.router = router;
    const remote = router.client;
    const hosts = [...lan.nodes, lan.client].map((h) => `${h.name} ${h.ipv4} ${h.ipv6}`);
    say(
      `LAN ${LAN_IPV4} ${LAN_IPV6} built: ${hosts.join(", ")}, router ${router.ipv4} ` +
        `${router.ipv6} (FRR, AS ${ROUTER_ASN}, a BGP neighbour of every node) and behind it ` +
        `${remote.name} ${remote.ipv4} ${remote.ipv6} (network namespaces ` +
        `${stage.namespaces().join(" ")})`,
    );

    const admin = parseKubeconfig(await Deno.readTextFile(cp.kubeconfigPath), cp.kubeconfigPath)
      .access;
    const api = new DemoApi(admin);
    stage.api = api;
    const manifests = [
      ...["lbnodeagent.yaml", "servicegroups.yaml", "bgpconfiguration.yaml"].map((file) =>
        join(DEMO_DIR, file)
      ),
      ...BGP_RBAC_FILES,
    ];
    for (const path of manifests) {
      const objects = await api.createFromYaml(path);
      const shown = relative(join(DEMO_DIR, ".."), path);
      say(`applied ${shown}: ${objects.map((o) => `${o.kind} ${o.metadata.name}`).join(", ")}`);
    }
    // The netbox group is made here, not in servicegroups.yaml: its URL has the test server's port.
    const netbox = await NetboxTestServer.start({ tenants: [NETBOX_TENANT] });
    stage.netbox = netbox;
    const reserved = netbox.addRange(NETBOX_FIRST, NETBOX_COUNT, {
      tenant: NETBOX_TENANT,
      status: "reserved",
    }).map((r) => r.address.replace(/\/\d+$/, ""));
    const group: ManifestObject & { readonly spec: unknown } = {
      apiVersion: "purelb.io/v1",
      kind: "ServiceGroup",
      metadata: { name: "netbox", namespace: PURELB_NAMESPACE },
      spec: { netbox: { url: netbox.url, tenant: NETBOX_TENANT } },
    };
    await api.request("POST", collectionPath(group), group);
    say(
      `started a Netbox test server at ${netbox.url} (${reserved[0]}-${reserved.at(-1)} reserved ` +
        `for tenant ${NETBOX_TENANT}); created ServiceGroup netbox with that URL and tenant`,
    );
    const allocatorConfig = await serviceAccountKubeconfig(api, admin, "allocator", stage.tmpDir);
    const agentConfig = await serviceAccountKubeconfig(api, admin, "agent", stage.tmpDir);
    stage.allocator = stage.track(
      startAllocator(allocatorConfig, PURELB_NAMESPACE, ["--log-level", "info"], {
        NETBOX_USER_TOKEN: netbox.token,
      }),
    );
    const bgpDir = (node: string) => join(tmpDir, `bgp-${node}`);
    for (const node of lan.nodes) {
      await Deno.mkdir(bgpDir(node.name));
      stage.agents.set(
        node.name,
        stage.track(startAgent({
          kubeconfig: agentConfig,
          namespace: PURELB_NAMESPACE,
          node: node.name,
          netns: node.netns,
          extraArgs: ["--log-level", "info"],
          bgpDir: bgpDir(node.name),
        })),
      );
    }
    say(
      `started the allocator and agents on ${NODES.join(", ")} (service accounts allocator ` +
        `and agent, their production permission sets; the agents with --bgp-dir)`,
    );
    // Each BIRD starts once its agent has written bird.conf from the BGPConfiguration.
    const birds = await Promise.allSettled(lan.nodes.map(async (node) => {
      stage.birds.set(node.name, await startBird({ netns: node.netns, dir: bgpDir(node.name) }));
    }));
    const birdFailure = birds.find((r): r is PromiseRejectedResult => r.status === "rejected");
    if (birdFailure !== undefined) throw birdFailure.reason;
    say(
      `started BIRD in every node namespace (AS ${NODE_ASN}; bird.conf written by the agent, ` +
        `control socket bird.ctl, in ${join(tmpDir, "bgp-NODE")})`,
    );
    const created = await api.createFromYaml(join(DEMO_DIR, "services.yaml"));
    say(
      `created ${created.filter((o) => o.kind === "Service").length} sample Services in ` +
        `namespace ${DEMO_NAMESPACE} (demo/services.yaml)`,
    );

    const display = new Display(options.once);
    const deadline = Date.now() + options.timeoutMs;
    let rows: DemoRow[] = [];
    let virtual: readonly string[] = [];
    /** Reads the scene into `rows` and `virtual`; pings the virtual addresses from behind the router. */
    const look = async (): Promise<Set<string>> => {
      ({ rows, virtual } = await observe(api, lan, router));
      return await answering(remote.netns, virtual);
    };
    let lastUnmet = "";
    let lastTable = "";
    let unchangedSince = Date.now();
    for (;;) {
      let unreadable = "";
      let answered = new Set<string>();
      try {
        answered = await look();
      } catch (error) {
        unreadable = `could not read the scene (retrying): ${errorText(error)}`;
      }
      const unmet = unreadable ? [unreadable] : unmetExpectations(rows, NODES.length, { answered });
      const table = renderDemoTable(rows);
      if (table !== lastTable) {
        lastTable = table;
        unchangedSince = Date.now();
      }
      const quiet = Date.now() - unchangedSince >= QUIET_MS;
      display.show("PureLB demo: sample services (waiting for every one to settle)", rows, [
        ...unmet.map((u) => `waiting: ${u}`),
        ...(unmet.length === 0 && !quiet
          ? [
            `every sample service is in its expected state; waiting until nothing has moved ` +
            `for ${QUIET_MS / 1000} s`,
          ]
          : []),
        "Ctrl-C stops everything and cleans up",
      ]);
      if (unmet.length === 0 && quiet) break;
      if (unmet.length > 0 && unmet.join("\n") !== lastUnmet && options.once) {
        lastUnmet = unmet.join("\n");
        say(`waiting for ${unmet.length} service(s): ${unmet.join("; ")}`);
      }
      if (Date.now() > deadline) {
        console.log(renderDemoTable(rows));
        say(
          `not every sample service reached its expected state within ` +
            `${options.timeoutMs / 1000} s:\n  ${unmet.join("\n  ")}`,
        );
        stage.printLogTails();
        return 1;
      }
      await sleep(500);
    }
    say(`every sample service reached its expected state (${elapsed()})`);
    console.log(`Every sample service is in its expected state:\n\n${renderDemoTable(rows)}\n`);
    console.log(
      [...EXPECTED].map(([name, e]) => `  ${name}: ${describeExpectation(e)}`).join("\n") + "\n",
    );
    const sessions = await router.bgpSummary();
    const established = sessions.filter((s) => s.state === "Established");
    console.log(
      `BGP: the router (${router.netns}, AS ${ROUTER_ASN}) has ${established.length} of ` +
        `${sessions.length} sessions with the nodes (AS ${NODE_ASN}) established; the client ` +
        `${remote.ipv4} behind it (${remote.netns}) got answers from ${virtual.join(", ")}\n`,
    );
    const nextHopsOf = (of: readonly DemoRow[]) =>
      virtual.map((a) => {
        const hops = of.find((r) => r.address === a)?.routerNextHops ?? [];
        return `${a} via ${hops.join(",") || "nothing"}`;
      }).join("; ");
    const routedBefore = nextHopsOf(rows);
    const netboxLine = () => {
      const address = rows.find((r) => r.service === NETBOX_SERVICE)?.address ?? "";
      const record = netbox.find(address);
      return `Netbox lists ${address} of ${NETBOX_SERVICE} as ${record?.status ?? "absent"} for ` +
        `tenant ${record?.tenant ?? "none"} (it was reserved until the allocator took it)`;
    };
    console.log(`${netboxLine()}\n`);

    const target = rows.find((r) => r.service === HANDOVER_SERVICE);
    const from = target?.nodes[0];
    const address = target?.address;
    const agent = from === undefined ? undefined : stage.agents.get(from);
    if (target === undefined || from === undefined || !address || agent === undefined) {
      throw new Error(`${HANDOVER_SERVICE} has no announcing node`);
    }
    console.log(
      `hand-over: stopping the agent of ${from} (SIGTERM), which announces ${address} of ` +
        `${HANDOVER_SERVICE}; the client pings ${address} every ${PROBE_INTERVAL_MS} ms`,
    );
    let stopping: Promise<Deno.CommandStatus> | undefined;
    const holders = async () =>
      (await observe(api, lan, router)).rows.find((r) => r.address === address)?.nodes ?? [];
    const gap = await measureGap(lan.client.netns, address, () => {
      stopping = agent.stop();
      return Promise.resolve();
    }, async () => {
      const now = await holders();
      return now.length === 1 && now[0] !== from;
    }, async () => {
      const lines = [`client ${lan.client.netns} neighbours:`];
      lines.push((await tryExec(lan.client.netns, "ip", "neigh", "show")).stdout.trim());
      for (const node of lan.nodes) {
        const addresses = await tryExec(node.netns, "ip", "-br", "address", "show");
        lines.push(`${node.name} (${node.mac}):\n${addresses.stdout.trim()}`);
      }
      return lines.join("\n");
    });
    await stopping;
    const to = (await holders()).join(",");
    const result = `hand-over: ${address} moved from ${from} to ${to}; the client got no ` +
      `answer for ${gap.gapMs} ms (longest gap between answered pings, one sent every ` +
      `${PROBE_INTERVAL_MS} ms; ${gap.answered} answered)`;
    console.log(`${result}\n`);

    // Every other address of the stopped node moves too; the virtual ones stay on the others,
    // and the router drops the stopped node as a next hop for them.
    const remaining = NODES.length - 1;
    let unmetAfter: string[] = [];
    await waitFor(
      async () => {
        const answered = await look();
        unmetAfter = unmetExpectations(rows, remaining, { answered });
        return unmetAfter.length === 0 && rows.every((r) => !r.nodes.includes(from));
      },
      20_000,
      `the other addresses of ${from} to move and the router to drop it`,
    ).catch((error: unknown) => {
      throw new Error(`${errorText(error)}; still: ${unmetAfter.join("; ") || "none"}`, {
        cause: error,
      });
    });
    const routed = `the router's next hops: ${routedBefore} before the hand-over; ` +
      `${nextHopsOf(rows)} after it, and the client behind the router still gets answers`;
    console.log(
      `After the hand-over (the agent of ${from} is stopped; ${routed}):\n\n` +
        `${renderDemoTable(rows)}\n`,
    );

    const tryPlugin = [
      "Try the plugin against this control plane (in another terminal, in this checkout):",
      `  npx -y deno@2.8.3 task kubectl-purelb -- status --kubeconfig ${cp.kubeconfigPath}`,
      `  npx -y deno@2.8.3 task kubectl-purelb -- election ${address} --kubeconfig ` +
      cp.kubeconfigPath,
      `  npx -y deno@2.8.3 task kubectl-purelb -- pools -o wide --kubeconfig ${cp.kubeconfigPath}`,
      "and the routing daemons (as root): the router's FRR, a node's BIRD:",
      `  vtysh --vty_socket ${router.dir} -c "show bgp summary" -c "show ip route bgp"`,
      `  birdc -s ${join(bgpDir(NODES[0]), "bird.ctl")} show protocols`,
    ];
    if (!options.once) {
      const liveUntil = Date.now() + LIVE_LIMIT_MS;
      while (Date.now() < liveUntil) {
        let unreadable = "";
        try {
          ({ rows, virtual } = await observe(api, lan, router));
        } catch (error) {
          unreadable = `could not read the scene (retrying): ${errorText(error)}`;
        }
        display.show("PureLB demo: sample services (live)", rows, [
          ...(unreadable ? [unreadable] : []),
          result,
          netboxLine(),
          `The agent of ${from} is stopped; its addresses moved to the other nodes, and the ` +
          `router forwards ${virtual.join(", ")} to the others only (ROUTER NEXT HOPS).`,
          ...tryPlugin,
          "Ctrl-C stops everything and cleans up",
        ]);
        await sleep(REFRESH_MS);
      }
      say("an hour has passed: stopping");
    }
    code = 0;
  } catch (error) {
    if (error instanceof BinaryBuildError) {
      say(
        `could not get the control plane's binaries: ${error.message}\nThe first run needs Go ` +
          `(go on PATH) and network access to the Go module proxy and Debian's archive; or set ` +
          `KUBEBUILDER_ASSETS to a folder with prebuilt kube-apiserver and etcd`,
      );
    } else {
      say(`failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
    }
    stage.printLogTails();
    code = 1;
  } finally {
    // A Ctrl-C during the orderly clean-up still cleans up, at once.
    say(
      "cleaning up: agents withdraw, BIRD, the allocator, the router and the control plane " +
        "stop, namespaces go",
    );
    await stage.stop();
    globalThis.removeEventListener("unload", onUnload);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.removeSignalListener(signal, onSignal);
    }
    say(`done (${elapsed()}); nothing left behind`);
  }
  return code;
}
