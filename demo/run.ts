/**
 * The demo itself (root only; `demo/main.ts` checks that first): a real control plane, a LAN
 * of three node namespaces and a client, the real allocator and one real agent per node (each
 * as its service account, under its production permission set), the sample Services, a live
 * table, and a hand-over measured from the client.
 *
 * @module
 */

import { join } from "node:path";
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
  NODES,
  PURELB_NAMESPACE,
  unmetExpectations,
} from "./scenario.ts";
import { type Holding, renderTable, type Row } from "./table.ts";
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
};
const SBIN = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

const DEMO_DIR = fileURLToPath(new URL(".", import.meta.url));
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
function inScenarioOrder(rows: readonly Row[]): Row[] {
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
  api: DemoApi | undefined;
  allocator: AllocatorProcess | undefined;
  netbox: NetboxTestServer | undefined;
  readonly agents = new Map<string, AgentProcess>();
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

  writeLogsSync(): void {
    if (this.logsDir === undefined) return;
    try {
      Deno.mkdirSync(this.logsDir, { recursive: true });
      for (const { name, process } of this.processes()) {
        Deno.writeTextFileSync(join(this.logsDir, `${name}.log`), process.logs());
      }
    } catch (error) {
      say(`could not write logs to ${this.logsDir}: ${error}`);
    }
  }

  printLogTails(): void {
    for (const { name, process } of this.processes()) {
      const tail = process.logs().trimEnd().split("\n").slice(-15).join("\n");
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
    for (const netns of this.lan?.namespaces ?? []) {
      try {
        new Deno.Command(testbedIpPath(), {
          args: ["netns", "del", netns],
          stdout: "null",
          stderr: "null",
        }).outputSync();
      } catch { /* gone already */ }
    }
    if (this.tmpDir !== undefined) {
      try {
        Deno.removeSync(this.tmpDir, { recursive: true });
      } catch { /* already gone */ }
    }
  }

  /** Orderly: agents withdraw, then the allocator, the LAN and the control plane go. */
  async stop(): Promise<void> {
    this.writeLogsSync();
    const stopOne = async (process: AllocatorProcess | AgentProcess) => {
      const timer = setTimeout(() => void process.kill(), STOP_GRACE_MS);
      await process.stop();
      clearTimeout(timer);
    };
    await Promise.all([...this.agents.values()].map(stopOne));
    if (this.allocator) await stopOne(this.allocator);
    await this.netbox?.close();
    this.api?.close();
    await this.lan?.destroy().catch((error) => say(`removing the namespaces: ${error}`));
    await this.controlPlane?.stop();
    if (this.tmpDir !== undefined) await Deno.remove(this.tmpDir, { recursive: true });
  }
}

/**
 * What the demo reads every refresh: the plugin's status (`kubectl purelb status`, the same
 * reads and the same rows), with what `ip` shows in each node's namespace as the holders.
 */
async function observe(api: DemoApi, lan: Lan): Promise<Row[]> {
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
  const rows = statusRows(
    { services, failures, leases, nodeAgents, qualifyNames: false, nowMs: Date.now() },
    { observed: held.flat() },
  );
  return inScenarioOrder(rows);
}

/** Shows the table: redrawn in a terminal, printed when it changes otherwise. */
class Display {
  #last = "";
  readonly #terminal = Deno.stdout.isTerminal();

  constructor(readonly quiet: boolean) {}

  show(title: string, rows: readonly Row[], footer: readonly string[]): void {
    if (this.quiet) return;
    const table = renderTable(rows);
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
      "interrupted: stopping the agents, the allocator and the control plane; removing the " +
        "network namespaces",
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
    stage.tmpDir = await Deno.makeTempDir({ prefix: "purelb-demo-" });
    stage.controlPlane = await ControlPlane.start({ binaries, log });
    const cp = stage.controlPlane;
    say(
      `control plane ready (${elapsed()}), kubeconfig ${cp.kubeconfigPath}; CRDs, namespace ` +
        `${PURELB_NAMESPACE} and RBAC applied from deploy/`,
    );

    const lan = await createLan({ nodes: [...NODES], ipv4Subnet: LAN_IPV4, ipv6Subnet: LAN_IPV6 });
    stage.lan = lan;
    const hosts = [...lan.nodes, lan.client].map((h) => `${h.name} ${h.ipv4} ${h.ipv6}`);
    say(
      `LAN ${LAN_IPV4} ${LAN_IPV6} built: ${hosts.join(", ")} (network namespaces ` +
        `${lan.namespaces.join(" ")})`,
    );

    const admin = parseKubeconfig(await Deno.readTextFile(cp.kubeconfigPath), cp.kubeconfigPath)
      .access;
    const api = new DemoApi(admin);
    stage.api = api;
    for (const file of ["lbnodeagent.yaml", "servicegroups.yaml"]) {
      const objects = await api.createFromYaml(join(DEMO_DIR, file));
      say(`applied demo/${file}: ${objects.map((o) => `${o.kind} ${o.metadata.name}`).join(", ")}`);
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
    for (const node of lan.nodes) {
      stage.agents.set(
        node.name,
        stage.track(startAgent({
          kubeconfig: agentConfig,
          namespace: PURELB_NAMESPACE,
          node: node.name,
          netns: node.netns,
          extraArgs: ["--log-level", "info"],
        })),
      );
    }
    say(
      `started the allocator and agents on ${NODES.join(", ")} (service accounts allocator ` +
        `and agent, their production permission sets)`,
    );
    const created = await api.createFromYaml(join(DEMO_DIR, "services.yaml"));
    say(
      `created ${created.filter((o) => o.kind === "Service").length} sample Services in ` +
        `namespace ${DEMO_NAMESPACE} (demo/services.yaml)`,
    );

    const display = new Display(options.once);
    const deadline = Date.now() + options.timeoutMs;
    let rows: Row[] = [];
    let lastUnmet = "";
    let lastTable = "";
    let unchangedSince = Date.now();
    for (;;) {
      let unreadable = "";
      try {
        rows = await observe(api, lan);
      } catch (error) {
        unreadable = `could not read the scene (retrying): ${errorText(error)}`;
      }
      const unmet = unreadable ? [unreadable] : unmetExpectations(rows, NODES.length);
      const table = renderTable(rows);
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
        console.log(renderTable(rows));
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
    console.log(`Every sample service is in its expected state:\n\n${renderTable(rows)}\n`);
    console.log(
      [...EXPECTED].map(([name, e]) => `  ${name}: ${describeExpectation(e)}`).join("\n") + "\n",
    );
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
      (await observe(api, lan)).find((r) => r.address === address)?.nodes ?? [];
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

    // Every other address of the stopped node moves too; the virtual ones stay on the others.
    const remaining = NODES.length - 1;
    const settledAfter = (now: readonly Row[]) =>
      unmetExpectations(now, remaining).length === 0 && now.every((r) => !r.nodes.includes(from));
    await waitFor(
      async () => settledAfter(rows = await observe(api, lan)),
      20_000,
      "the other " +
        `addresses of ${from} to move`,
    );
    console.log(`After the hand-over (the agent of ${from} is stopped):\n\n${renderTable(rows)}\n`);

    const tryPlugin = [
      "Try the plugin against this control plane (in another terminal, in this checkout):",
      `  npx -y deno@2.8.3 task kubectl-purelb -- status --kubeconfig ${cp.kubeconfigPath}`,
      `  npx -y deno@2.8.3 task kubectl-purelb -- election ${address} --kubeconfig ` +
      cp.kubeconfigPath,
      `  npx -y deno@2.8.3 task kubectl-purelb -- pools -o wide --kubeconfig ${cp.kubeconfigPath}`,
    ];
    if (!options.once) {
      const liveUntil = Date.now() + LIVE_LIMIT_MS;
      while (Date.now() < liveUntil) {
        let unreadable = "";
        try {
          rows = await observe(api, lan);
        } catch (error) {
          unreadable = `could not read the scene (retrying): ${errorText(error)}`;
        }
        display.show("PureLB demo: sample services (live)", rows, [
          ...(unreadable ? [unreadable] : []),
          result,
          netboxLine(),
          `The agent of ${from} is stopped; its addresses moved to the other nodes.`,
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
    say("cleaning up: agents withdraw, allocator and control plane stop, namespaces go");
    await stage.stop();
    globalThis.removeEventListener("unload", onUnload);
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      Deno.removeSignalListener(signal, onSignal);
    }
    say(`done (${elapsed()}); nothing left behind`);
  }
  return code;
}
