/**
 * The shapes the BGP parts share (pure, no I/O): a `BGPConfiguration` as read and checked,
 * the input of the BIRD config renderer, and BIRD's protocol state as its CLI prints it.
 *
 * The routing daemon is BIRD 2: the agent renders its whole config, BIRD speaks BGP and BFD,
 * and BIRD's `protocol direct` on the dummy interface announces exactly the addresses the
 * kernel carries there.
 *
 * @module
 */

import type { CompiledSelector } from "../k8s/selector.ts";

/** API group, version and resource names, as PureLB v0.16 defines them. */
export const BGP_GROUP = "bgp.purelb.io";
/** The version of {@linkcode BGP_GROUP}. */
export const BGP_VERSION = "v1";
/** Plural of kind `BGPConfiguration` (PureLB's CRD is `configs.bgp.purelb.io`); namespaced. */
export const BGP_CONFIGURATION_PLURAL = "configs";
/** Plural of kind `BGPNodeStatus`; cluster-scoped, one per node, named after the node. */
export const BGP_NODE_STATUS_PLURAL = "bgpnodestatuses";

/** An address family BGP carries here. */
export type BgpFamily = "ipv4-unicast" | "ipv6-unicast";

/** Every {@linkcode BgpFamily}. */
export const BGP_FAMILIES: readonly BgpFamily[] = ["ipv4-unicast", "ipv6-unicast"];

/** A Secret key holding a neighbour's TCP MD5 password (in the agent's namespace). */
export interface SecretKeyRef {
  readonly name: string;
  readonly key: string;
}

/** BFD for one neighbour (beyond PureLB); absent or disabled means no BFD. */
export interface BfdSettings {
  /** Slowest rate we want to receive at, milliseconds (default 300). */
  readonly minRxMs: number;
  /** Fastest rate we send at, milliseconds (default 300). */
  readonly minTxMs: number;
  /** Missed packets before the session is declared down (default 3). */
  readonly multiplier: number;
}

/** One `spec.neighbors[]` entry, checked, defaults not yet applied unless said. */
export interface BgpNeighbor {
  /** `config.neighborAddress`, in canonical text (ipaddr.js `toString()`). */
  readonly address: string;
  /** The family of {@linkcode BgpNeighbor.address}. */
  readonly addressFamily: "ipv4" | "ipv6";
  /** `config.peerAsn`. */
  readonly peerAsn: number;
  /** `config.localAsn`; `spec.global.asn` when absent. */
  readonly localAsn: number | undefined;
  /** `config.description`. */
  readonly description: string | undefined;
  /** `config.adminDown`: configured but not connecting. */
  readonly adminDown: boolean;
  /** `config.authPasswordSecretRef`. */
  readonly passwordRef: SecretKeyRef | undefined;
  /** `nodeSelector` on the Node's labels; `undefined` selects every node. */
  readonly nodeSelector: CompiledSelector | undefined;
  /**
   * The families enabled by `afiSafis[]` (`enabled: true`) and also in `spec.global.families`
   * when that is given. Without `afiSafis`, the family of the neighbour's address.
   */
  readonly families: readonly BgpFamily[];
  /** `timers.config`, seconds; each `undefined` leaves the daemon's default. */
  readonly holdTimeSeconds: number | undefined;
  readonly keepaliveSeconds: number | undefined;
  readonly connectRetrySeconds: number | undefined;
  /** `ebgpMultihop` when enabled: the TTL (default 255); `undefined` for a direct peer. */
  readonly multihopTtl: number | undefined;
  /** `transport.localAddress`, canonical text. */
  readonly localAddress: string | undefined;
  /** `transport.passiveMode`: wait for the peer to connect. */
  readonly passive: boolean;
  /** `bfd` when `enabled: true`, defaults filled in. */
  readonly bfd: BfdSettings | undefined;
}

/** A `BGPConfiguration` spec, checked. */
export interface BgpSettings {
  /** `spec.global.asn`. */
  readonly asn: number;
  /** `spec.global.routerID` (an IPv4 address); `undefined` when absent or empty. */
  readonly routerId: string | undefined;
  /** `spec.global.listenPort`; `undefined` = 179. */
  readonly listenPort: number | undefined;
  /** `spec.global.families`; `undefined` when absent (then no global restriction). */
  readonly families: readonly BgpFamily[] | undefined;
  /** The neighbours that passed their checks, in spec order. */
  readonly neighbors: readonly BgpNeighbor[];
  /**
   * `spec.netlinkImport`: `enabled: false` announces nothing; `interfaces` empty means the
   * LBNodeAgent's dummy interface (`extlbint`).
   */
  readonly netlinkImport: { readonly enabled: boolean; readonly interfaces: readonly string[] };
  /** `spec.global.nodeStatus.heartbeatSeconds`: the longest a BGPNodeStatus goes unwritten. */
  readonly heartbeatSeconds: number | undefined;
}

/** A finding on a `BGPConfiguration`, naming the field (`spec.neighbors[1].config.peerAsn`). */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/**
 * A `BGPConfiguration` object read and checked.
 * - `invalid`: the global part is unusable (e.g. no `spec.global.asn`); nothing is configured.
 * - `valid`: usable; `rejectedNeighbors` were left out (each problem names its field) and
 *   `unsupported` lists PureLB fields that are accepted but not acted on (`spec.peerGroups`,
 *   `spec.neighbors[0].gracefulRestart`, ...), so they are never silently ignored.
 */
export type BgpConfigurationReading =
  | {
    readonly kind: "valid";
    readonly settings: BgpSettings;
    readonly rejectedNeighbors: readonly FieldProblem[];
    readonly unsupported: readonly string[];
  }
  | {
    readonly kind: "invalid";
    readonly problems: readonly FieldProblem[];
    readonly unsupported: readonly string[];
  };

/** One neighbour as the renderer gets it: chosen for this node, password resolved. */
export interface RenderedNeighbor extends Omit<BgpNeighbor, "nodeSelector" | "passwordRef"> {
  /** The TCP MD5 password read from the Secret; `undefined` for none. */
  readonly password: string | undefined;
}

/** Everything BIRD's config is made from, for one node. */
export interface BirdConfigInput {
  /** The router ID actually used (an IPv4 address). */
  readonly routerId: string;
  /** The node's AS number (`spec.global.asn`). */
  readonly asn: number;
  /** `undefined` = 179. */
  readonly listenPort: number | undefined;
  /** Interfaces whose addresses are announced (`protocol direct`); empty = announce nothing. */
  readonly interfaces: readonly string[];
  /** The neighbours of this node, in spec order. */
  readonly neighbors: readonly RenderedNeighbor[];
}

/** One BIRD channel (address family) of a BGP protocol, from `show protocols all`. */
export interface BirdChannelState {
  readonly family: "ipv4" | "ipv6";
  /** `UP`, `DOWN`, ... as printed. */
  readonly state: string;
  readonly imported: number;
  readonly exported: number;
}

/** One BGP protocol (= one neighbour) from `birdc show protocols all`. */
export interface BirdBgpState {
  /** The protocol name (see `birdProtocolName`). */
  readonly name: string;
  /** `BGP state:` - `Established`, `Active`, `Connect`, `Idle`, `OpenSent`, `Down`, ... */
  readonly bgpState: string;
  /** The `Since` column as printed (with `timeformat protocol iso long`: `YYYY-MM-DD hh:mm:ss`). */
  readonly since: string;
  readonly neighborAddress: string | undefined;
  readonly neighborAs: number | undefined;
  readonly localAs: number | undefined;
  /** `Last error:` line, e.g. `Received: Bad peer AS`; `undefined` when none is printed. */
  readonly lastError: string | undefined;
  readonly channels: readonly BirdChannelState[];
}

/** Where `birdc` (BIRD's CLI, Debian package bird2) is looked for, in order. */
export const BIRDC_PATHS: readonly string[] = ["/usr/sbin/birdc", "/usr/bin/birdc"];

/** In the BGP directory (`--bgp-dir`): the config the agent writes and BIRD reads. */
export const BIRD_CONFIG_FILE = "bird.conf";
/** In the BGP directory: BIRD's control socket (`bird -s`). */
export const BIRD_SOCKET_FILE = "bird.ctl";
