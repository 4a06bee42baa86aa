/**
 * A LAN of network namespaces for agent tests and the demo: a "lan" namespace holding a
 * bridge, one namespace per node and one for a client, each joined to the bridge by a veth
 * pair (`eth0` inside). Only documentation addresses are used, and only inside namespaces
 * created here. Names carry a random id so parallel runs never collide; everything is
 * removed by {@link Lan.destroy}, and by an exit / SIGINT / SIGTERM safety net when a run is
 * cut short.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { parseCidr } from "../../ipam/mod.ts";
import { runChecked, runCommand, testbedIpPath } from "./exec.ts";

/**
 * Options of {@link createLan}.
 *
 * @example
 * ```ts
 * const options: LanOptions = {
 *   nodes: ["node-a", "node-b", "node-c"],
 *   ipv4Subnet: "192.0.2.0/24",
 *   ipv6Subnet: "2001:db8:1::/64",
 * };
 * ```
 */
export interface LanOptions {
  /** Node names; each gets a namespace and host number 11, 12, ... in order. */
  readonly nodes: readonly string[];
  /** IPv4 subnet of the LAN; must be inside 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24. */
  readonly ipv4Subnet: string;
  /** IPv6 subnet of the LAN; must be inside 2001:db8::/32. */
  readonly ipv6Subnet: string;
  /** Name of the pre-created stand-in for the dummy interface in each node (default kube-lb0). */
  readonly dummyInterfaceName?: string;
  /**
   * Give nodes default routes via host .1 / ::1 of the subnets (default true). Nothing
   * answers there: the routes only let the agent find its default interface.
   */
  readonly defaultRoutes?: boolean;
}

/**
 * One machine on the LAN.
 *
 * @example
 * ```ts
 * const host: LanHost = {
 *   name: "node-a", netns: "plb1a2b3-node-a", interfaceName: "eth0", mac: "02:00:00:00:00:11",
 *   ipv4: "192.0.2.11", ipv4PrefixLength: 24, ipv6: "2001:db8:1::11", ipv6PrefixLength: 64,
 * };
 * ```
 */
export interface LanHost {
  /** Node name (or "client"). */
  readonly name: string;
  /** Its network namespace. */
  readonly netns: string;
  /** Its interface on the LAN, inside its namespace. */
  readonly interfaceName: string;
  /** MAC address of that interface, lowercase. */
  readonly mac: string;
  /** IPv4 address on the LAN. */
  readonly ipv4: string;
  /** Prefix length of the IPv4 subnet. */
  readonly ipv4PrefixLength: number;
  /** IPv6 address on the LAN (added with nodad). */
  readonly ipv6: string;
  /** Prefix length of the IPv6 subnet. */
  readonly ipv6PrefixLength: number;
}

/**
 * A running LAN. {@link Lan.destroy} removes every namespace (and with them every link).
 *
 * @example
 * ```ts
 * const lan = await createLan({ nodes: ["node-a"], ipv4Subnet: "192.0.2.0/24", ipv6Subnet: "2001:db8:1::/64" });
 * try {
 *   lan.node("node-a").ipv4; // "192.0.2.11"
 * } finally {
 *   await lan.destroy();
 * }
 * ```
 */
export interface Lan {
  /** The random id in every name of this LAN. */
  readonly id: string;
  /** The namespace holding the bridge. */
  readonly lanNetns: string;
  /** The bridge in {@link Lan.lanNetns}. */
  readonly bridgeName: string;
  /** The nodes, in the order given. */
  readonly nodes: readonly LanHost[];
  /** The client (host number 100). */
  readonly client: LanHost;
  /** Name of the pre-created dummy stand-in (a bridge) in every node namespace. */
  readonly dummyInterfaceName: string;
  /** Every namespace of this LAN. */
  readonly namespaces: readonly string[];
  /** The node called `name`; throws when there is none. */
  node(name: string): LanHost;
  /** Removes every namespace of this LAN; safe to call twice. */
  destroy(): Promise<void>;
}

/** Thrown for options that would leave the documentation ranges or break naming. */
export class LanOptionsError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "LanOptionsError";
  }
}

const DOCUMENTATION_IPV4 = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"];
const DOCUMENTATION_IPV6 = "2001:db8::/32";
const NODE_NAME = /^[a-z0-9][a-z0-9-]{0,19}$/;
const FIRST_NODE_HOST = 11;
const CLIENT_HOST = 100;
const GATEWAY_HOST = 1;
const OWNER_DIR = "/tmp/purelb-testbed";
const NETNS_PREFIX = "plb";

/** Namespaces created by this process and not yet removed, for the safety net. */
const liveNamespaces = new Set<string>();
/** Processes started in those namespaces (e.g. tcpdump), killed before the namespaces go. */
const liveProcesses = new Set<Deno.ChildProcess>();
let safetyNet: { readonly onSignal: () => void; readonly onUnload: () => void } | undefined;

/**
 * Registers a process running in a testbed namespace so the safety net kills it on exit;
 * returns the function that unregisters it.
 *
 * @example
 * ```ts
 * const child = new Deno.Command("/usr/sbin/ip", { args: ["netns", "list"] }).spawn();
 * const forget = trackProcess(child);
 * try { await child.status; } finally { forget(); }
 * ```
 */
export function trackProcess(child: Deno.ChildProcess): () => void {
  liveProcesses.add(child);
  return () => {
    liveProcesses.delete(child);
    disarmSafetyNetIfIdle();
  };
}

/**
 * Registers a namespace created next to a LAN (a router, a client beyond it) so the safety
 * net deletes it on exit or interrupt; returns the function to call once it is deleted. Name
 * it `<lan.lanNetns without "lan"><suffix>` so {@link removeOrphanedNamespaces} finds it too.
 *
 * @example
 * ```ts
 * const forget = trackNamespace("plb1a2b3-router");
 * // ... ip netns add, use, ip netns del ...
 * forget();
 * ```
 */
export function trackNamespace(netns: string): () => void {
  armSafetyNet();
  liveNamespaces.add(netns);
  return () => {
    liveNamespaces.delete(netns);
    disarmSafetyNetIfIdle();
  };
}

function removeEverythingSync(): void {
  for (const child of liveProcesses) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
  liveProcesses.clear();
  const ip = testbedIpPath();
  for (const netns of liveNamespaces) {
    try {
      new Deno.Command(ip, { args: ["netns", "del", netns], stdout: "null", stderr: "null" })
        .outputSync();
    } catch { /* best effort at exit */ }
  }
  liveNamespaces.clear();
}

function armSafetyNet(): void {
  if (safetyNet !== undefined) return;
  const onSignal = () => {
    console.error("testbed: interrupted, removing network namespaces");
    removeEverythingSync();
    Deno.exit(130);
  };
  const onUnload = () => removeEverythingSync();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  globalThis.addEventListener("unload", onUnload);
  safetyNet = { onSignal, onUnload };
}

// Signal listeners are pending operations: disarm when nothing is left, so a test that
// cleans up leaves no operation behind for Deno's test sanitizers.
function disarmSafetyNetIfIdle(): void {
  if (safetyNet === undefined || liveNamespaces.size > 0 || liveProcesses.size > 0) return;
  Deno.removeSignalListener("SIGINT", safetyNet.onSignal);
  Deno.removeSignalListener("SIGTERM", safetyNet.onSignal);
  globalThis.removeEventListener("unload", safetyNet.onUnload);
  safetyNet = undefined;
}

function isProcessAlive(pid: number): boolean {
  try {
    return Deno.statSync(`/proc/${pid}`).isDirectory;
  } catch {
    return false;
  }
}

/**
 * Removes namespaces left by earlier runs that were killed outright (SIGKILL skips every
 * clean-up): each LAN records its owner's pid, and a LAN whose owner is gone is deleted.
 * Returns the namespaces removed.
 *
 * @example
 * ```ts
 * const removed = await removeOrphanedNamespaces();
 * ```
 */
export async function removeOrphanedNamespaces(): Promise<readonly string[]> {
  let owners: Deno.DirEntry[];
  try {
    owners = [...Deno.readDirSync(OWNER_DIR)];
  } catch {
    return [];
  }
  const listed = await runChecked([testbedIpPath(), "netns", "list"]);
  const existing = listed.split("\n").map((line) => line.split(" ")[0] ?? "").filter(Boolean);
  const removed: string[] = [];
  for (const owner of owners) {
    const pid = Number((() => {
      try {
        return Deno.readTextFileSync(`${OWNER_DIR}/${owner.name}`).trim();
      } catch {
        return "";
      }
    })());
    if (Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) continue;
    for (
      const netns of existing.filter((name) => name.startsWith(`${NETNS_PREFIX}${owner.name}-`))
    ) {
      await runCommand([testbedIpPath(), "netns", "del", netns]);
      removed.push(netns);
    }
    await Deno.remove(`${OWNER_DIR}/${owner.name}`).catch(() => {});
  }
  return removed;
}

function hostAddress(subnet: string, host: number): string {
  const cidr = parseCidr(subnet);
  const bits = cidr.family === "IPv4" ? 32 : 128;
  // IPv6 hosts read like their IPv4 twins: host 11 is ::11, host 100 is ::100.
  const hostValue = cidr.family === "IPv4" ? BigInt(host) : BigInt(`0x${host}`);
  const value = cidr.network.firstValue + hostValue;
  if (value > cidr.network.lastValue) {
    throw new LanOptionsError(`host ${host} does not fit in ${subnet}`);
  }
  if (cidr.family === "IPv4") {
    const n = Number(value);
    return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
  }
  const parts: number[] = [];
  for (let shift = BigInt(bits - 16); shift >= 0n; shift -= 16n) {
    parts.push(Number((value >> shift) & 0xffffn));
  }
  return new ipaddr.IPv6(parts).toString();
}

function validate(options: LanOptions): void {
  const v4 = parseCidr(options.ipv4Subnet);
  const v6 = parseCidr(options.ipv6Subnet);
  const inside = (inner: typeof v4, outer: string) => {
    const range = parseCidr(outer).network;
    return inner.family === range.family && range.firstValue <= inner.network.firstValue &&
      inner.network.lastValue <= range.lastValue;
  };
  if (!DOCUMENTATION_IPV4.some((outer) => inside(v4, outer))) {
    throw new LanOptionsError(
      `${options.ipv4Subnet} is not inside a documentation range (${
        DOCUMENTATION_IPV4.join(", ")
      })`,
    );
  }
  if (!inside(v6, DOCUMENTATION_IPV6)) {
    throw new LanOptionsError(`${options.ipv6Subnet} is not inside ${DOCUMENTATION_IPV6}`);
  }
  if (v4.prefixLength > 24 || v6.prefixLength > 120) {
    throw new LanOptionsError("subnets must be /24 (IPv4) and /120 (IPv6) or larger");
  }
  if (options.nodes.length === 0 || options.nodes.length > 80) {
    throw new LanOptionsError("a LAN has 1 to 80 nodes");
  }
  for (const node of options.nodes) {
    if (!NODE_NAME.test(node) || node === "client" || node === "lan") {
      throw new LanOptionsError(`"${node}" is not a usable node name (a-z, 0-9, -, <= 20)`);
    }
  }
  if (new Set(options.nodes).size !== options.nodes.length) {
    throw new LanOptionsError("node names must be unique");
  }
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("").slice(0, 5);
}

/** The MAC address of `interfaceName` in `netns`, lowercase. */
export async function readMac(netns: string, interfaceName: string): Promise<string> {
  const json = await runChecked([
    testbedIpPath(),
    "-n",
    netns,
    "-json",
    "link",
    "show",
    "dev",
    interfaceName,
  ]);
  const parsed: unknown = JSON.parse(json);
  const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
  const mac = typeof first === "object" && first !== null && "address" in first
    ? first.address
    : undefined;
  if (typeof mac !== "string") throw new Error(`no MAC address for ${interfaceName} in ${netns}`);
  return mac.toLowerCase();
}

/**
 * Builds the LAN (about ten `ip` processes in all, whatever the number of nodes, thanks to
 * `ip -batch`). On failure everything created so far is removed before the error is thrown.
 * Needs root.
 *
 * @example
 * ```ts
 * import { runChecked, testbedIpPath } from "./exec.ts";
 *
 * const lan = await createLan({
 *   nodes: ["node-a", "node-b", "node-c"],
 *   ipv4Subnet: "192.0.2.0/24",
 *   ipv6Subnet: "2001:db8:1::/64",
 * });
 * try {
 *   await runChecked([testbedIpPath(), "netns", "exec", lan.client.netns, "ping", "-c", "1", "-W", "2", lan.node("node-b").ipv4]);
 * } finally {
 *   await lan.destroy();
 * }
 * ```
 */
export async function createLan(options: LanOptions): Promise<Lan> {
  validate(options);
  await removeOrphanedNamespaces();
  const ip = testbedIpPath();
  const id = randomId();
  const dummyInterfaceName = options.dummyInterfaceName ?? "kube-lb0";
  const lanNetns = `${NETNS_PREFIX}${id}-lan`;
  const bridgeName = "br0";
  const v4 = parseCidr(options.ipv4Subnet);
  const v6 = parseCidr(options.ipv6Subnet);
  const plans = [
    ...options.nodes.map((name, index) => ({ name, host: FIRST_NODE_HOST + index, isNode: true })),
    { name: "client", host: CLIENT_HOST, isNode: false },
  ].map((plan, index) => ({
    ...plan,
    netns: `${NETNS_PREFIX}${id}-${plan.name}`,
    bridgePort: `p${index}`,
    ipv4: hostAddress(options.ipv4Subnet, plan.host),
    ipv6: hostAddress(options.ipv6Subnet, plan.host),
  }));
  const namespaces = [lanNetns, ...plans.map((plan) => plan.netns)];

  armSafetyNet();
  await Deno.mkdir(OWNER_DIR, { recursive: true });
  await Deno.writeTextFile(`${OWNER_DIR}/${id}`, String(Deno.pid));
  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    const failures: string[] = [];
    for (const netns of namespaces) {
      if (!liveNamespaces.has(netns)) continue;
      const result = await runCommand([ip, "netns", "del", netns]);
      if (result.exitCode !== 0 && !/no such file/i.test(result.stderr)) {
        failures.push(`${netns}: ${result.stderr}`);
      }
      liveNamespaces.delete(netns);
    }
    await Deno.remove(`${OWNER_DIR}/${id}`).catch(() => {});
    disarmSafetyNetIfIdle();
    if (failures.length > 0) throw new Error(`could not remove namespaces: ${failures.join("; ")}`);
  };

  try {
    for (const netns of namespaces) liveNamespaces.add(netns);
    await runChecked([ip, "-batch", "-"], {
      stdin: namespaces.map((netns) => `netns add ${netns}\n`).join(""),
    });
    const lanLines = [
      `link add ${bridgeName} type bridge`,
      `link set ${bridgeName} up`,
      "link set lo up",
      ...plans.flatMap((plan) => [
        `link add ${plan.bridgePort} type veth peer name eth0 netns ${plan.netns}`,
        `link set ${plan.bridgePort} master ${bridgeName}`,
        `link set ${plan.bridgePort} up`,
      ]),
    ];
    await runChecked([ip, "-n", lanNetns, "-batch", "-"], { stdin: `${lanLines.join("\n")}\n` });
    for (const plan of plans) {
      const hostLines = [
        "link set lo up",
        "link set eth0 up",
        `address add ${plan.ipv4}/${v4.prefixLength} dev eth0`,
        `address add ${plan.ipv6}/${v6.prefixLength} dev eth0 nodad`,
        ...(plan.isNode
          ? [`link add ${dummyInterfaceName} type bridge`, `link set ${dummyInterfaceName} up`]
          : []),
        ...(plan.isNode && options.defaultRoutes !== false
          ? [
            `route add default via ${hostAddress(options.ipv4Subnet, GATEWAY_HOST)} dev eth0`,
            `route add ::/0 via ${hostAddress(options.ipv6Subnet, GATEWAY_HOST)} dev eth0`,
          ]
          : []),
      ];
      await runChecked([ip, "-n", plan.netns, "-batch", "-"], {
        stdin: `${hostLines.join("\n")}\n`,
      });
    }
    const hosts: LanHost[] = [];
    for (const plan of plans) {
      hosts.push({
        name: plan.name,
        netns: plan.netns,
        interfaceName: "eth0",
        mac: await readMac(plan.netns, "eth0"),
        ipv4: plan.ipv4,
        ipv4PrefixLength: v4.prefixLength,
        ipv6: plan.ipv6,
        ipv6PrefixLength: v6.prefixLength,
      });
    }
    const nodes = hosts.slice(0, -1);
    const client = hosts.at(-1);
    if (client === undefined) throw new Error("no client host was built");
    return {
      id,
      lanNetns,
      bridgeName,
      nodes,
      client,
      dummyInterfaceName,
      namespaces,
      node(name: string): LanHost {
        const found = nodes.find((node) => node.name === name);
        if (found === undefined) throw new RangeError(`no node "${name}" on LAN ${id}`);
        return found;
      },
      destroy,
    };
  } catch (error) {
    await destroy().catch(() => {});
    throw error;
  }
}
