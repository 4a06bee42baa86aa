/**
 * An upstream router for a {@link Lan}: one more namespace on the LAN bridge as host .1 / ::1
 * (where the nodes' default routes already point), a second interface to a client network
 * (203.0.113.0/24, 2001:db8:2::/64) with a client namespace behind it, and FRR (zebra, bgpd,
 * bfdd) peering by eBGP with every node, ECMP on (`maximum-paths 8`) and the kernel hashing
 * multipath flows on layer 4, so one probe flow sticks to one node.
 *
 * The FRR daemons run in the foreground as tracked child processes, each instance with its
 * own vty sockets, pid files and zserv socket in a temporary directory, so the LAN's safety
 * net kills them when a run is cut short. Peers change with `vtysh` without restarting bgpd.
 *
 * What the tests read back: the router kernel's next hops for a prefix, mapped to node names
 * (for IPv6 FRR installs the nodes' link-local addresses, which are mapped too), and the BGP
 * summary per peer.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { parseCidr } from "../../ipam/mod.ts";
import { isRecord } from "../../json/mod.ts";
import { waitFor } from "../wait.ts";
import { type Daemon, type DaemonDir, makeDaemonDir, startDaemon } from "./daemon.ts";
import { runChecked, runCommand, testbedIpPath } from "./exec.ts";
import { type Lan, type LanHost, LanOptionsError, readMac, trackNamespace } from "./lan.ts";

/** Where Debian's frr package keeps its daemons. */
export const FRR_DAEMON_DIR = "/usr/lib/frr";
/** Where `vtysh` (package frr) is looked for. */
const VTYSH = "/usr/bin/vtysh";

/** The client network behind the router: subnets and the two hosts on it. */
export const CLIENT_NETWORK = {
  ipv4Subnet: "203.0.113.0/24",
  ipv6Subnet: "2001:db8:2::/64",
  routerIpv4: "203.0.113.1",
  routerIpv6: "2001:db8:2::1",
  clientIpv4: "203.0.113.100",
  clientIpv6: "2001:db8:2::100",
} as const;

/** Name of the BFD profile in the rendered config. */
const BFD_PROFILE = "testbed";

/** A BFD profile: how fast BFD packets flow and how many may be missed. */
export interface BfdProfile {
  /** Slowest rate we accept packets at, milliseconds. */
  readonly receiveIntervalMs: number;
  /** Fastest rate we send at, milliseconds. */
  readonly transmitIntervalMs: number;
  /** Packets missed before the session is down. */
  readonly detectMultiplier: number;
}

/** Per-peer choices of {@link Router.addPeer}. */
export interface PeerOptions {
  /** TCP MD5 password (printable, no spaces or quotes). */
  readonly password?: string;
  /** BFD for this peer; default: on when the router has a BFD profile. */
  readonly bfd?: boolean;
}

/** One BGP neighbour of the router. */
export interface RouterPeer extends PeerOptions {
  /** The neighbour's address (IPv4 peers are activated in ipv4 unicast, IPv6 in ipv6 unicast). */
  readonly address: string;
  /** Its AS number. */
  readonly asn: number;
}

/** Options of {@link createRouter}; every field has a default. */
export interface RouterOptions {
  /** The router's AS number (default 65000). */
  readonly asn?: number;
  /** BGP router id (default the router's IPv4 address on the LAN). */
  readonly routerId?: string;
  /** AS number of every node (default 65001: all nodes share one AS, eBGP to the router). */
  readonly nodeAsn?: number;
  /** TCP MD5 password for every node peer (default none). */
  readonly password?: string;
  /** BFD with this profile for every node peer (default no BFD). */
  readonly bfd?: BfdProfile;
  /** BGP keepalive, seconds (default 3). */
  readonly keepaliveSeconds?: number;
  /** BGP hold time, seconds (default 9). */
  readonly holdSeconds?: number;
  /** Seconds between connection attempts to a peer (default 2; FRR's own default is 120). */
  readonly connectRetrySeconds?: number;
  /** The neighbours (default: every node's IPv4 and IPv6 address, with the options above). */
  readonly peers?: readonly RouterPeer[];
}

/** Everything the FRR config is rendered from. */
export interface FrrSettings {
  readonly asn: number;
  readonly routerId: string;
  readonly keepaliveSeconds: number;
  readonly holdSeconds: number;
  readonly connectRetrySeconds: number;
  /** The BFD profile, when there is one. */
  readonly bfd: BfdProfile | undefined;
  readonly peers: readonly RouterPeer[];
}

/** One next hop of a kernel route in the router. */
export interface NextHop {
  /** The gateway (for IPv6 usually a node's link-local address). */
  readonly gateway: string;
  /** The router's interface it is reached on. */
  readonly interfaceName: string;
  /** The node that gateway belongs to; `undefined` when none matches. */
  readonly node: string | undefined;
}

/** One BGP session, from `show bgp summary json`. */
export interface BgpPeerSummary {
  /** The neighbour's address. */
  readonly address: string;
  /** The address family the session is listed under. */
  readonly family: "ipv4" | "ipv6";
  readonly remoteAs: number;
  /** `Established`, `Active`, `Connect`, `Idle`, `OpenSent`, ... */
  readonly state: string;
  /** Prefixes accepted from the peer (`pfxRcd`; 0 when not established). */
  readonly prefixesReceived: number;
  /** Milliseconds in the current state (`peerUptimeMsec`). */
  readonly uptimeMs: number;
}

/**
 * A running router. {@link Router.destroy} stops FRR and removes its namespaces and files;
 * call it before the LAN's own `destroy`.
 *
 * @example
 * ```ts
 * import { createLan } from "./lan.ts";
 * import { createRouter } from "./router.ts";
 *
 * const lan = await createLan({
 *   nodes: ["node-a", "node-b"],
 *   ipv4Subnet: "192.0.2.0/24",
 *   ipv6Subnet: "2001:db8:1::/64",
 * });
 * const router = await createRouter(lan, { bfd: { receiveIntervalMs: 100, transmitIntervalMs: 100, detectMultiplier: 3 } });
 * try {
 *   await router.waitForRoutes("192.0.2.200/32", (hops) => hops.length === 2, 10_000);
 *   await router.nextHopNodes("2001:db8:5::200/128"); // ["node-a", "node-b"]
 * } finally {
 *   await router.destroy();
 *   await lan.destroy();
 * }
 * ```
 */
export interface Router {
  /** The router's namespace. */
  readonly netns: string;
  /** Its IPv4 address on the LAN (host .1). */
  readonly ipv4: string;
  /** Its IPv6 address on the LAN (host ::1). */
  readonly ipv6: string;
  /** Its AS number. */
  readonly asn: number;
  /** The client on the client network (203.0.113.100, 2001:db8:2::100), routed via the router. */
  readonly client: LanHost;
  /** The temporary directory holding frr.conf, the sockets and the pid files. */
  readonly dir: string;
  /** The neighbours as configured now. */
  peers(): readonly RouterPeer[];
  /** The whole FRR config for the current neighbours, as {@link renderFrrConfig} writes it. */
  frrConfig(): string;
  /** Adds (or replaces) a neighbour, applied at once with vtysh. */
  addPeer(address: string, asn: number, options?: PeerOptions): Promise<void>;
  /** Removes a neighbour (`no neighbor`), applied at once. */
  removePeer(address: string): Promise<void>;
  /** Makes the neighbours exactly `peers`: removes, adds and re-creates changed ones. */
  reconfigure(peers: readonly RouterPeer[]): Promise<void>;
  /** The router kernel's next hops for exactly `prefix` (empty when there is no route). */
  routes(prefix: string): Promise<readonly NextHop[]>;
  /** The nodes behind the next hops of `prefix`, sorted (unknown gateways as themselves). */
  nextHopNodes(prefix: string): Promise<readonly string[]>;
  /** The node owning `address` (IPv4, IPv6 or the link-local of its eth0), if any. */
  nodeOfNextHop(address: string): string | undefined;
  /** Every BGP session, sorted by address. */
  bgpSummary(): Promise<readonly BgpPeerSummary[]>;
  /** Polls {@link Router.routes} until `predicate` holds; returns those next hops. */
  waitForRoutes(
    prefix: string,
    predicate: (hops: readonly NextHop[]) => boolean,
    deadlineMs: number,
    what?: string,
  ): Promise<readonly NextHop[]>;
  /** Runs vtysh commands (`-c` each) and returns the output. */
  vtysh(...commands: readonly string[]): Promise<string>;
  /** The output of the FRR daemons so far, for error messages. */
  logs(): string;
  /** Stops the FRR daemons with SIGTERM (bgpd closes its sessions with a Cease). */
  stop(): Promise<void>;
  /** Kills the FRR daemons with SIGKILL (routes zebra installed stay in the kernel). */
  kill(): Promise<void>;
  /** Stops FRR and removes both namespaces and the directory; safe to call twice. */
  destroy(): Promise<void>;
}

function canonicalAddress(address: string): string {
  return ipaddr.parse(address).toString();
}

function isIpv6(address: string): boolean {
  return ipaddr.parse(address).kind() === "ipv6";
}

function checkAsn(asn: number, what: string): void {
  if (!Number.isInteger(asn) || asn < 1 || asn > 4_294_967_295) {
    throw new LanOptionsError(`${what} ${asn} is not an AS number`);
  }
}

function checkWhole(value: number | undefined, lowest: number, highest: number, what: string) {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < lowest || value > highest) {
    throw new LanOptionsError(`${what} must be a whole number from ${lowest} to ${highest}`);
  }
}

function checkSettings(options: RouterOptions): void {
  if (options.routerId !== undefined && !ipaddr.IPv4.isValidFourPartDecimal(options.routerId)) {
    throw new LanOptionsError(`router id "${options.routerId}" is not an IPv4 address`);
  }
  checkWhole(options.keepaliveSeconds, 1, 65535, "keepaliveSeconds");
  checkWhole(options.holdSeconds, 3, 65535, "holdSeconds");
  checkWhole(options.connectRetrySeconds, 1, 65535, "connectRetrySeconds");
  checkWhole(options.bfd?.receiveIntervalMs, 10, 60000, "bfd.receiveIntervalMs");
  checkWhole(options.bfd?.transmitIntervalMs, 10, 60000, "bfd.transmitIntervalMs");
  checkWhole(options.bfd?.detectMultiplier, 2, 255, "bfd.detectMultiplier");
}

function checkPeer(peer: RouterPeer): RouterPeer {
  if (!ipaddr.isValid(peer.address)) {
    throw new LanOptionsError(`peer address "${peer.address}" is not an IP address`);
  }
  checkAsn(peer.asn, `peer ${peer.address}: AS`);
  if (peer.password !== undefined && !/^[\x21-\x7e]{1,80}$/.test(peer.password)) {
    throw new LanOptionsError(`peer ${peer.address}: the password must be 1-80 printable`);
  }
  if (peer.password !== undefined && /["'\\!#]/.test(peer.password)) {
    throw new LanOptionsError(`peer ${peer.address}: no quotes, backslashes, ! or # in passwords`);
  }
  return { ...peer, address: canonicalAddress(peer.address) };
}

function peerLines(peer: RouterPeer, settings: FrrSettings): string[] {
  const neighbor = ` neighbor ${peer.address}`;
  const bfd = peer.bfd ?? settings.bfd !== undefined;
  return [
    `${neighbor} remote-as ${peer.asn}`,
    `${neighbor} timers ${settings.keepaliveSeconds} ${settings.holdSeconds}`,
    `${neighbor} timers connect ${settings.connectRetrySeconds}`,
    ...(peer.password === undefined ? [] : [`${neighbor} password ${peer.password}`]),
    ...(bfd
      ? [settings.bfd === undefined ? `${neighbor} bfd` : `${neighbor} bfd profile ${BFD_PROFILE}`]
      : []),
  ];
}

function addressFamilyLines(
  peers: readonly RouterPeer[],
  withMaximumPaths: boolean,
): string[] {
  return (["ipv4", "ipv6"] as const).flatMap((family) => {
    const members = peers.filter((peer) => isIpv6(peer.address) === (family === "ipv6"));
    if (!withMaximumPaths && members.length === 0) return [];
    return [
      ` address-family ${family} unicast`,
      ...(withMaximumPaths ? ["  maximum-paths 8"] : []),
      ...members.map((peer) => `  neighbor ${peer.address} activate`),
      " exit-address-family",
    ];
  });
}

/**
 * Renders the whole frr.conf: the BFD profile when there is one, and `router bgp` with
 * `no bgp ebgp-requires-policy`, `no bgp default ipv4-unicast`, multipath-relax,
 * `maximum-paths 8` in both families, and each neighbour activated in its own family only.
 *
 * @example
 * ```ts
 * import { renderFrrConfig } from "./router.ts";
 *
 * const config = renderFrrConfig({
 *   asn: 65000, routerId: "192.0.2.1", keepaliveSeconds: 3, holdSeconds: 9,
 *   connectRetrySeconds: 2, bfd: undefined,
 *   peers: [{ address: "192.0.2.11", asn: 65001 }, { address: "2001:db8:1::11", asn: 65001 }],
 * });
 * config.includes(" neighbor 192.0.2.11 remote-as 65001"); // true
 * ```
 */
export function renderFrrConfig(settings: FrrSettings): string {
  const bfd = settings.bfd;
  const lines = [
    "frr defaults traditional",
    "!",
    ...(bfd === undefined ? [] : [
      "bfd",
      ` profile ${BFD_PROFILE}`,
      `  receive-interval ${bfd.receiveIntervalMs}`,
      `  transmit-interval ${bfd.transmitIntervalMs}`,
      `  detect-multiplier ${bfd.detectMultiplier}`,
      " exit",
      "exit",
      "!",
    ]),
    `router bgp ${settings.asn}`,
    ` bgp router-id ${settings.routerId}`,
    " no bgp ebgp-requires-policy",
    " no bgp default ipv4-unicast",
    " bgp bestpath as-path multipath-relax",
    ...settings.peers.flatMap((peer) => peerLines(peer, settings)),
    ...addressFamilyLines(settings.peers, true),
    "exit",
  ];
  return `${lines.join("\n")}\n`;
}

function samePeer(a: RouterPeer, b: RouterPeer): boolean {
  return a.asn === b.asn && a.password === b.password && a.bfd === b.bfd;
}

/**
 * Renders the vtysh input that turns the neighbours `before` into `settings.peers`: `no
 * neighbor` for those gone or changed, then the full lines of those new or changed. Empty
 * when nothing changes.
 *
 * @example
 * ```ts
 * import { renderPeerChanges } from "./router.ts";
 *
 * renderPeerChanges([{ address: "192.0.2.11", asn: 65001 }], {
 *   asn: 65000, routerId: "192.0.2.1", keepaliveSeconds: 3, holdSeconds: 9,
 *   connectRetrySeconds: 2, bfd: undefined, peers: [],
 * }); // "router bgp 65000\n no neighbor 192.0.2.11\nexit\n"
 * ```
 */
export function renderPeerChanges(before: readonly RouterPeer[], settings: FrrSettings): string {
  const after = new Map(settings.peers.map((peer) => [peer.address, peer]));
  const previous = new Map(before.map((peer) => [peer.address, peer]));
  const removed = before.filter((peer) => {
    const next = after.get(peer.address);
    return next === undefined || !samePeer(peer, next);
  });
  const added = settings.peers.filter((peer) => {
    const old = previous.get(peer.address);
    return old === undefined || !samePeer(old, peer);
  });
  if (removed.length === 0 && added.length === 0) return "";
  const lines = [
    `router bgp ${settings.asn}`,
    ...removed.map((peer) => ` no neighbor ${peer.address}`),
    ...added.flatMap((peer) => peerLines(peer, settings)),
    ...addressFamilyLines(added, false),
    "exit",
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * The gateways of `ip -json route show PREFIX` output, multipath `nexthops` included.
 *
 * @example
 * ```ts
 * import { parseRouteNextHops } from "./router.ts";
 *
 * parseRouteNextHops('[{"dst":"192.0.2.200","nexthops":[{"gateway":"192.0.2.11","dev":"eth0"}]}]');
 * // [{ gateway: "192.0.2.11", interfaceName: "eth0" }]
 * ```
 */
export function parseRouteNextHops(
  json: string,
): { gateway: string; interfaceName: string }[] {
  const parsed: unknown = JSON.parse(json.trim() === "" ? "[]" : json);
  if (!Array.isArray(parsed)) return [];
  const hops: { gateway: string; interfaceName: string }[] = [];
  for (const route of parsed) {
    if (!isRecord(route)) continue;
    const candidates: unknown[] = Array.isArray(route.nexthops) ? route.nexthops : [route];
    for (const hop of candidates) {
      if (!isRecord(hop) || typeof hop.gateway !== "string") continue;
      hops.push({
        gateway: hop.gateway,
        interfaceName: typeof hop.dev === "string" ? hop.dev : "",
      });
    }
  }
  return hops;
}

/**
 * The sessions in FRR's `show bgp summary json`, sorted by address, then family.
 *
 * @example
 * ```ts
 * import { parseBgpSummary } from "./router.ts";
 *
 * parseBgpSummary(JSON.stringify({
 *   ipv4Unicast: { peers: { "192.0.2.11": { remoteAs: 65001, state: "Established", pfxRcd: 1, peerUptimeMsec: 3000 } } },
 * }))[0]?.state; // "Established"
 * ```
 */
export function parseBgpSummary(json: string): BgpPeerSummary[] {
  const parsed: unknown = JSON.parse(json.trim() === "" ? "{}" : json);
  if (!isRecord(parsed)) return [];
  const sessions: BgpPeerSummary[] = [];
  for (const [key, family] of [["ipv4Unicast", "ipv4"], ["ipv6Unicast", "ipv6"]] as const) {
    const table = parsed[key];
    if (!isRecord(table) || !isRecord(table.peers)) continue;
    for (const [address, peer] of Object.entries(table.peers)) {
      if (!isRecord(peer)) continue;
      sessions.push({
        address,
        family,
        remoteAs: typeof peer.remoteAs === "number" ? peer.remoteAs : 0,
        state: typeof peer.state === "string" ? peer.state : "unknown",
        prefixesReceived: typeof peer.pfxRcd === "number" ? peer.pfxRcd : 0,
        uptimeMs: typeof peer.peerUptimeMsec === "number" ? peer.peerUptimeMsec : 0,
      });
    }
  }
  return sessions.sort((a, b) =>
    a.address === b.address ? a.family.localeCompare(b.family) : a.address.localeCompare(b.address)
  );
}

/** Host 1 of the subnet `address`/`prefixLength` is in (the LAN's gateway address). */
function firstHost(address: string, prefixLength: number): string {
  const parsed = ipaddr.parse(address);
  const network = parsed.kind() === "ipv4"
    ? ipaddr.IPv4.networkAddressFromCIDR(`${address}/${prefixLength}`)
    : ipaddr.IPv6.networkAddressFromCIDR(`${address}/${prefixLength}`);
  const bytes = network.toByteArray();
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) + 1;
  return ipaddr.fromByteArray(bytes).toString();
}

function overlaps(address: string, prefixLength: number, subnet: string): boolean {
  const lan = parseCidr(`${address}/${prefixLength}`);
  const other = parseCidr(subnet);
  return lan.family === other.family && lan.network.firstValue <= other.network.lastValue &&
    other.network.firstValue <= lan.network.lastValue;
}

async function readLinkLocal(netns: string, interfaceName: string): Promise<string> {
  let found: string | undefined;
  await waitFor(
    async () => {
      const json = await runChecked([
        testbedIpPath(),
        "-n",
        netns,
        "-json",
        "-6",
        "address",
        "show",
        "dev",
        interfaceName,
        "scope",
        "link",
      ]);
      const parsed: unknown = JSON.parse(json.trim() === "" ? "[]" : json);
      const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
      const infos: unknown = isRecord(first) ? first.addr_info : undefined;
      // Addresses the filter leaves out are printed as `{}`: look for the one with a `local`.
      const locals = (Array.isArray(infos) ? infos : []).flatMap((info: unknown) =>
        isRecord(info) && typeof info.local === "string" ? [info.local] : []
      );
      found = locals[0];
      return found !== undefined;
    },
    10_000,
    `a link-local address on ${interfaceName} in ${netns}`,
  );
  if (found === undefined) throw new Error(`no link-local address in ${netns}`);
  return canonicalAddress(found);
}

async function socketExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isSocket === true;
  } catch {
    return false;
  }
}

/**
 * Builds the router and its client network on `lan`, starts FRR and configures it (see
 * {@link RouterOptions} for the defaults). Resolves once the configuration is applied, not
 * once sessions are up: wait for those with {@link Router.bgpSummary} or
 * {@link Router.waitForRoutes}. On failure everything built so far is removed.
 *
 * @example
 * ```ts
 * import { createLan } from "./lan.ts";
 * import { createRouter } from "./router.ts";
 *
 * const lan = await createLan({ nodes: ["node-a"], ipv4Subnet: "192.0.2.0/24", ipv6Subnet: "2001:db8:1::/64" });
 * const router = await createRouter(lan, { asn: 64512, nodeAsn: 64513, password: "s3cret" });
 * await router.destroy();
 * await lan.destroy();
 * ```
 */
export async function createRouter(lan: Lan, options: RouterOptions = {}): Promise<Router> {
  const first = lan.nodes[0];
  if (first === undefined) throw new LanOptionsError("the LAN has no nodes");
  for (
    const [address, length, subnet] of [
      [first.ipv4, first.ipv4PrefixLength, CLIENT_NETWORK.ipv4Subnet],
      [first.ipv6, first.ipv6PrefixLength, CLIENT_NETWORK.ipv6Subnet],
    ] as const
  ) {
    if (overlaps(address, length, subnet)) {
      throw new LanOptionsError(`the LAN overlaps the client network ${subnet}`);
    }
  }
  const ipv4 = firstHost(first.ipv4, first.ipv4PrefixLength);
  const ipv6 = firstHost(first.ipv6, first.ipv6PrefixLength);
  const prefix = lan.lanNetns.slice(0, -"lan".length);
  const routerNetns = `${prefix}router`;
  const clientNetns = `${prefix}remote`;
  for (const netns of [routerNetns, clientNetns]) {
    if (lan.namespaces.includes(netns)) {
      throw new LanOptionsError(`namespace ${netns} is taken by a node of the LAN`);
    }
  }
  const asn = options.asn ?? 65000;
  const nodeAsn = options.nodeAsn ?? 65001;
  checkAsn(asn, "router AS");
  checkAsn(nodeAsn, "node AS");
  const nodePeer = (address: string): RouterPeer => ({
    address,
    asn: nodeAsn,
    ...(options.password === undefined ? {} : { password: options.password }),
  });
  let peers: readonly RouterPeer[] = (options.peers ??
    lan.nodes.flatMap((node) => [nodePeer(node.ipv4), nodePeer(node.ipv6)])).map(checkPeer);
  checkSettings(options);
  const settings = (): FrrSettings => ({
    asn,
    routerId: options.routerId ?? ipv4,
    keepaliveSeconds: options.keepaliveSeconds ?? 3,
    holdSeconds: options.holdSeconds ?? 9,
    connectRetrySeconds: options.connectRetrySeconds ?? 2,
    bfd: options.bfd,
    peers,
  });

  const ip = testbedIpPath();
  const forgetNamespaces: (() => void)[] = [];
  const daemons: Daemon[] = [];
  let dir: DaemonDir | undefined;
  let destroyed = false;
  const stopAll = async (how: "stop" | "kill") => {
    // bgpd first, so its Cease goes out while zebra still runs; zebra last.
    for (const daemon of [...daemons].reverse()) {
      await (how === "stop" ? daemon.stop() : daemon.kill());
    }
  };
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    await stopAll("stop");
    const failures: string[] = [];
    for (const netns of [routerNetns, clientNetns]) {
      const result = await runCommand([ip, "netns", "del", netns]);
      if (result.exitCode !== 0 && !/no such file/i.test(result.stderr)) {
        failures.push(`${netns}: ${result.stderr}`);
      }
    }
    for (const forget of forgetNamespaces) forget();
    await dir?.remove();
    if (failures.length > 0) throw new Error(`could not remove namespaces: ${failures.join("; ")}`);
  };

  try {
    for (const netns of [routerNetns, clientNetns]) {
      forgetNamespaces.push(trackNamespace(netns));
      await runChecked([ip, "netns", "add", netns]);
    }
    await runChecked([ip, "-n", lan.lanNetns, "-batch", "-"], {
      stdin: [
        `link add prouter type veth peer name eth0 netns ${routerNetns}`,
        `link set prouter master ${lan.bridgeName}`,
        "link set prouter up",
        "",
      ].join("\n"),
    });
    await runChecked([
      ip,
      "-n",
      routerNetns,
      "link",
      "add",
      "eth1",
      "type",
      "veth",
      "peer",
      "name",
      "eth0",
      "netns",
      clientNetns,
    ]);
    // Before any link is up: no duplicate detection, so link-local addresses (FRR's IPv6
    // next hops) are usable at once; forwarding; layer-4 multipath hashing.
    await runChecked([
      ip,
      "netns",
      "exec",
      routerNetns,
      "sysctl",
      "-q",
      "-w",
      "net.ipv6.conf.all.accept_dad=0",
      "net.ipv6.conf.default.accept_dad=0",
      "net.ipv6.conf.eth0.accept_dad=0",
      "net.ipv6.conf.eth1.accept_dad=0",
      "net.ipv4.ip_forward=1",
      "net.ipv6.conf.all.forwarding=1",
      "net.ipv4.fib_multipath_hash_policy=1",
      "net.ipv6.fib_multipath_hash_policy=1",
      "net.ipv4.nexthop_compat_mode=1",
    ]);
    await runChecked([
      ip,
      "netns",
      "exec",
      clientNetns,
      "sysctl",
      "-q",
      "-w",
      "net.ipv6.conf.all.accept_dad=0",
      "net.ipv6.conf.eth0.accept_dad=0",
    ]);
    const v4Length = first.ipv4PrefixLength;
    const v6Length = first.ipv6PrefixLength;
    await runChecked([ip, "-n", routerNetns, "-batch", "-"], {
      stdin: [
        "link set lo up",
        "link set eth0 up",
        "link set eth1 up",
        `address add ${ipv4}/${v4Length} dev eth0`,
        `address add ${ipv6}/${v6Length} dev eth0 nodad`,
        `address add ${CLIENT_NETWORK.routerIpv4}/24 dev eth1`,
        `address add ${CLIENT_NETWORK.routerIpv6}/64 dev eth1 nodad`,
        "",
      ].join("\n"),
    });
    await runChecked([ip, "-n", clientNetns, "-batch", "-"], {
      stdin: [
        "link set lo up",
        "link set eth0 up",
        `address add ${CLIENT_NETWORK.clientIpv4}/24 dev eth0`,
        `address add ${CLIENT_NETWORK.clientIpv6}/64 dev eth0 nodad`,
        `route add default via ${CLIENT_NETWORK.routerIpv4} dev eth0`,
        `route add ::/0 via ${CLIENT_NETWORK.routerIpv6} dev eth0`,
        "",
      ].join("\n"),
    });
    const clientMac = await readMac(clientNetns, "eth0");
    // Next hops are a node's IPv4, IPv6 or (what FRR prefers for IPv6) eth0 link-local.
    const nodeByAddress = new Map<string, string>();
    for (const node of lan.nodes) {
      nodeByAddress.set(canonicalAddress(node.ipv4), node.name);
      nodeByAddress.set(canonicalAddress(node.ipv6), node.name);
      nodeByAddress.set(await readLinkLocal(node.netns, "eth0"), node.name);
    }
    const nodeByMac = new Map(lan.nodes.map((node) => [node.mac, node.name]));

    const frrDir = await makeDaemonDir("purelb-frr-");
    dir = frrDir;
    const path = frrDir.path;
    const startFrrDaemon = async (name: string, extra: readonly string[]) => {
      const daemon = await startDaemon(routerNetns, [
        `${FRR_DAEMON_DIR}/${name}`,
        "-f",
        "/dev/null",
        "--log",
        "stdout",
        "-P",
        "0",
        "--vty_socket",
        path,
        "-i",
        `${path}/${name}.pid`,
        "-z",
        `${path}/zserv.api`,
        "-u",
        "frr",
        "-g",
        "frr",
        ...extra,
      ]);
      daemons.push(daemon);
      return daemon;
    };
    const waitForSockets = async (names: readonly string[]) => {
      const exitedDaemon = () => daemons.find((daemon) => daemon.hasExited());
      await waitFor(
        async () => {
          if (exitedDaemon() !== undefined) return true;
          for (const name of names) if (!(await socketExists(`${path}/${name}`))) return false;
          return true;
        },
        15_000,
        `FRR sockets ${names.join(", ")} in ${path}`,
        20,
      );
      const gone = exitedDaemon();
      if (gone !== undefined) {
        throw new Error(`${gone.command[0]} exited: ${gone.output().trim().slice(-800)}`);
      }
    };
    const vtysh = (...commands: readonly string[]) =>
      runChecked([VTYSH, "--vty_socket", path, ...commands.flatMap((command) => ["-c", command])]);

    // zebra first: a bgpd that starts without it misses interface information and then
    // rejects IPv6 routes with link-local next hops ("no peer interface information").
    await startFrrDaemon("zebra", []);
    await waitForSockets(["zserv.api", "zebra.vty"]);
    await startFrrDaemon("bfdd", ["--bfdctl", `${path}/bfdd.sock`]);
    await startFrrDaemon("bgpd", ["-p", "179"]);
    await waitForSockets(["bfdd.vty", "bgpd.vty"]);
    await waitFor(
      async () => {
        const clients = await vtysh("show zebra client summary");
        return /^bgp\s/m.test(clients) && /^bfd\s/m.test(clients);
      },
      15_000,
      "bgpd and bfdd connected to zebra",
    );
    await Deno.writeTextFile(`${path}/frr.conf`, renderFrrConfig(settings()));
    await runChecked([VTYSH, "--vty_socket", path, "-f", `${path}/frr.conf`]);

    let updates = 0;
    const reconfigure = async (next: readonly RouterPeer[]) => {
      const checked = next.map(checkPeer);
      const before = peers;
      peers = checked;
      const changes = renderPeerChanges(before, settings());
      if (changes === "") return;
      updates += 1;
      const file = `${path}/frr-update-${updates}.conf`;
      await Deno.writeTextFile(file, changes);
      try {
        await runChecked([VTYSH, "--vty_socket", path, "-f", file]);
      } catch (error) {
        peers = before;
        throw error;
      }
    };
    const nodeOfNextHop = (address: string): string | undefined =>
      ipaddr.isValid(address) ? nodeByAddress.get(canonicalAddress(address)) : undefined;
    const routes = async (routePrefix: string): Promise<readonly NextHop[]> => {
      const family = routePrefix.includes(":") ? "-6" : "-4";
      const json = await runChecked([
        ip,
        "-n",
        routerNetns,
        "-json",
        family,
        "route",
        "show",
        routePrefix,
      ]);
      const hops: NextHop[] = [];
      for (const hop of parseRouteNextHops(json)) {
        let node = nodeOfNextHop(hop.gateway);
        if (node === undefined && family === "-6") {
          node = nodeByMac.get(
            await neighbourMac(routerNetns, hop.gateway, hop.interfaceName) ?? "",
          );
        }
        hops.push({ ...hop, node });
      }
      return hops;
    };

    return {
      netns: routerNetns,
      ipv4,
      ipv6,
      asn,
      client: {
        name: "remote",
        netns: clientNetns,
        interfaceName: "eth0",
        mac: clientMac,
        ipv4: CLIENT_NETWORK.clientIpv4,
        ipv4PrefixLength: 24,
        ipv6: CLIENT_NETWORK.clientIpv6,
        ipv6PrefixLength: 64,
      },
      dir: path,
      peers: () => peers,
      frrConfig: () => renderFrrConfig(settings()),
      addPeer: (address, peerAsn, peerOptions = {}) => {
        const added = checkPeer({ ...peerOptions, address, asn: peerAsn });
        return reconfigure([...peers.filter((peer) => peer.address !== added.address), added]);
      },
      removePeer: (address) => {
        const gone = canonicalAddress(address);
        return reconfigure(peers.filter((peer) => peer.address !== gone));
      },
      reconfigure,
      routes,
      async nextHopNodes(routePrefix) {
        const hops = await routes(routePrefix);
        return hops.map((hop) => hop.node ?? hop.gateway).sort();
      },
      nodeOfNextHop,
      async bgpSummary() {
        return parseBgpSummary(await vtysh("show bgp summary json"));
      },
      async waitForRoutes(routePrefix, predicate, deadlineMs, what) {
        let last: readonly NextHop[] = [];
        await waitFor(
          async () => {
            last = await routes(routePrefix);
            return predicate(last);
          },
          deadlineMs,
          what ?? `next hops for ${routePrefix} in ${routerNetns}`,
          20,
        ).catch((error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          const seen = last.map((hop) => hop.node ?? hop.gateway).join(", ") || "none";
          throw new Error(`${message}; last next hops: ${seen}`, { cause: error });
        });
        return last;
      },
      vtysh,
      logs: () =>
        daemons.map((daemon) => `--- ${daemon.command[0]}\n${daemon.output()}`).join("\n"),
      stop: () => stopAll("stop"),
      kill: () => stopAll("kill"),
      destroy,
    };
  } catch (error) {
    await destroy().catch(() => {});
    throw error;
  }
}

/** The MAC the router's neighbour table holds for `address`, if any. */
async function neighbourMac(
  netns: string,
  address: string,
  interfaceName: string,
): Promise<string | undefined> {
  const json = await runChecked([
    testbedIpPath(),
    "-n",
    netns,
    "-json",
    "-6",
    "neigh",
    "show",
    address,
    ...(interfaceName === "" ? [] : ["dev", interfaceName]),
  ]);
  const parsed: unknown = JSON.parse(json.trim() === "" ? "[]" : json);
  const first: unknown = Array.isArray(parsed) ? parsed[0] : undefined;
  const mac = isRecord(first) ? first.lladdr : undefined;
  return typeof mac === "string" ? mac.toLowerCase() : undefined;
}
