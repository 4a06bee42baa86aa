/**
 * Reading a PureLB v0.16 `BGPConfiguration` (`bgp.purelb.io/v1`) into the checked shapes of
 * `model.ts`, and choosing the neighbours of one node. Pure: no I/O.
 *
 * What is read: `spec.global` (`asn`, `routerID`, `listenPort`, `families`, `nodeStatus`),
 * `spec.neighbors[]` (`config`, `nodeSelector`, `afiSafis`, `timers.config`, `ebgpMultihop`,
 * `transport`, and our own `bfd`) and `spec.netlinkImport`. Every other key, at any depth, is
 * listed by path in `unsupported` (the top-most unknown one: `spec.peerGroups`, not
 * `spec.peerGroups[0].config`), so nothing PureLB defines is dropped without a word. An unknown
 * key holding nothing (`""`, `null`, `[]`, `{}`, or an object of such) is not listed: PureLB's
 * tools write such empty defaults.
 *
 * Conventions, for every field read here:
 * - `null` is the same as absent; so is `""` for an optional text (`routerID`, `description`,
 *   `transport.localAddress`), and an empty `spec.global.families` list.
 * - Numbers must be JSON integers: `65000`, not `65000.5` or `"65000"`.
 * - A {@linkcode FieldProblem} names the exact field (`spec.neighbors[2].config.peerAsn`) and its
 *   message does not repeat it: print them as `${field}: ${message}`. The object itself, when it
 *   is not even a JSON object, is named `object`.
 *
 * @module
 */

import { isRecord, jsonTypeName } from "../json/mod.ts";
import { formatAddress, type IpAddress, tryParseAddress } from "../ipam/address.ts";
import {
  type CompiledSelector,
  compileLabelSelector,
  type LabelSelectorRequirement,
  selectorMatches,
} from "../k8s/selector.ts";
import {
  type BfdSettings,
  BGP_FAMILIES,
  BGP_GROUP,
  BGP_VERSION,
  type BgpConfigurationReading,
  type BgpFamily,
  type BgpNeighbor,
  type BgpSettings,
  type FieldProblem,
  type SecretKeyRef,
} from "./model.ts";

/** The `kind` of the objects {@linkcode readBgpConfiguration} reads. */
export const BGP_CONFIGURATION_KIND = "BGPConfiguration";

/** `apiVersion` of a `BGPConfiguration`: `bgp.purelb.io/v1`. */
export const BGP_API_VERSION = `${BGP_GROUP}/${BGP_VERSION}`;

type Fields = Readonly<Record<string, unknown>>;

/** The keys read at each level; any other key is unsupported. */
const KEYS = {
  object: ["apiVersion", "kind", "metadata", "spec", "status"],
  spec: ["global", "neighbors", "netlinkImport"],
  global: ["asn", "routerID", "listenPort", "families", "nodeStatus"],
  nodeStatus: ["enabled", "heartbeatSeconds"],
  netlinkImport: ["enabled", "interfaceList"],
  neighbor: ["config", "nodeSelector", "afiSafis", "timers", "ebgpMultihop", "transport", "bfd"],
  config: [
    "neighborAddress",
    "peerAsn",
    "localAsn",
    "description",
    "adminDown",
    "authPasswordSecretRef",
  ],
  secretRef: ["name", "key"],
  selector: ["matchLabels", "matchExpressions"],
  expression: ["key", "operator", "values"],
  afiSafi: ["family", "enabled"],
  timers: ["config"],
  timersConfig: ["holdTime", "keepaliveInterval", "connectRetry"],
  ebgpMultihop: ["enabled", "multihopTtl"],
  transport: ["localAddress", "passiveMode"],
  bfd: ["enabled", "minRxMs", "minTxMs", "multiplier"],
} as const satisfies Readonly<Record<string, readonly string[]>>;

/** An allowed integer range and how a message names what the number should be. */
interface IntegerRange {
  readonly min: number;
  readonly max: number;
  /** Completes "`N` is not ...", e.g. "an AS number (1 to 4294967295)". */
  readonly what: string;
}

const AS_NUMBER: IntegerRange = { min: 1, max: 4294967295, what: "an AS number (1 to 4294967295)" };
const PORT: IntegerRange = { min: 1, max: 65535, what: "a TCP port (1 to 65535)" };
const HEARTBEAT: IntegerRange = {
  min: 10,
  max: Number.MAX_SAFE_INTEGER,
  what: "a heartbeat (10 seconds or more)",
};
const HOLD_TIME: IntegerRange = {
  min: 0,
  max: 65535,
  what: "a hold time (0 for none, or 3 to 65535 seconds)",
};
const TIMER: IntegerRange = { min: 1, max: 65535, what: "a timer (1 to 65535 seconds)" };
const TTL: IntegerRange = { min: 1, max: 255, what: "a TTL (1 to 255)" };
const BFD_INTERVAL: IntegerRange = {
  min: 10,
  max: 60000,
  what: "a BFD interval (10 to 60000 milliseconds)",
};
const BFD_MULTIPLIER: IntegerRange = { min: 1, max: 255, what: "a BFD multiplier (1 to 255)" };

const DEFAULT_MULTIHOP_TTL = 255;
const DEFAULT_BFD: BfdSettings = { minRxMs: 300, minTxMs: 300, multiplier: 3 };

/** The path of `key` inside the object at `path` (`""` is the object itself). */
function at(path: string, key: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === "" ? key : `${path}.${key}`;
}

/** Absent, for a field: not there, or `null`. */
function isAbsent(value: unknown): boolean {
  return value === undefined || value === null;
}

/** Holds nothing at all: `""`, `null`, `[]`, `{}`, or an object whose values all hold nothing. */
function isEmpty(value: unknown): boolean {
  if (value === undefined || value === null || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return isRecord(value) && Object.values(value).every(isEmpty);
}

/** How a message names a value that has the wrong type: `a string ("65000")`, `a list`. */
function found(value: unknown): string {
  const type = jsonTypeName(value);
  const scalar = typeof value === "string" || typeof value === "number" ||
    typeof value === "boolean";
  return scalar ? `${type} (${JSON.stringify(value)})` : type;
}

/**
 * What was found in one part of the object: its problems, and (shared by all parts) the paths
 * of the unsupported keys. Each reader returns `undefined` for a field that is absent or has a
 * problem; the problem is recorded here.
 */
class Findings {
  readonly problems: FieldProblem[] = [];
  readonly unsupported: string[];

  constructor(unsupported: string[]) {
    this.unsupported = unsupported;
  }

  problem(field: string, message: string): void {
    this.problems.push({ field, message });
  }

  /** The object at `path`, its unknown keys listed as unsupported. */
  object(value: unknown, path: string, known: readonly string[]): Fields | undefined {
    if (isAbsent(value)) return undefined;
    if (!isRecord(value)) {
      this.problem(path === "" ? "object" : path, `must be an object, not ${found(value)}`);
      return undefined;
    }
    for (const [key, inner] of Object.entries(value)) {
      if (!known.includes(key) && !isEmpty(inner)) this.unsupported.push(at(path, key));
    }
    return value;
  }

  /** Like {@linkcode Findings.object}, and a problem when the object is absent. */
  requiredObject(
    fields: Fields,
    key: string,
    path: string,
    known: readonly string[],
    holds: string,
  ): Fields | undefined {
    const field = at(path, key);
    if (isAbsent(fields[key])) {
      this.problem(field, `is required (it holds ${holds})`);
      return undefined;
    }
    return this.object(fields[key], field, known);
  }

  list(fields: Fields, key: string, path: string): readonly unknown[] | undefined {
    const value = fields[key];
    if (isAbsent(value)) return undefined;
    if (!Array.isArray(value)) {
      this.problem(at(path, key), `must be a list, not ${found(value)}`);
      return undefined;
    }
    return value;
  }

  text(fields: Fields, key: string, path: string): string | undefined {
    const value = fields[key];
    if (isAbsent(value) || value === "") return undefined;
    if (typeof value !== "string") {
      this.problem(at(path, key), `must be a string, not ${found(value)}`);
      return undefined;
    }
    return value;
  }

  flag(fields: Fields, key: string, path: string): boolean | undefined {
    const value = fields[key];
    if (isAbsent(value)) return undefined;
    if (typeof value !== "boolean") {
      this.problem(at(path, key), `must be true or false, not ${found(value)}`);
      return undefined;
    }
    return value;
  }

  integer(fields: Fields, key: string, path: string, range: IntegerRange): number | undefined {
    const value = fields[key];
    if (isAbsent(value)) return undefined;
    const field = at(path, key);
    if (typeof value !== "number") {
      this.problem(field, `must be a whole number, not ${found(value)}`);
      return undefined;
    }
    if (!Number.isInteger(value)) {
      this.problem(field, `${value} is not a whole number; ${range.what} is wanted`);
      return undefined;
    }
    if (value < range.min || value > range.max) {
      this.problem(field, `${value} is not ${range.what}`);
      return undefined;
    }
    return value;
  }

  /** A required integer: a problem when it is absent. */
  requiredInteger(
    fields: Fields,
    key: string,
    path: string,
    range: IntegerRange,
  ): number | undefined {
    if (isAbsent(fields[key])) {
      this.problem(at(path, key), `is required: ${range.what}`);
      return undefined;
    }
    return this.integer(fields, key, path, range);
  }

  family(value: unknown, field: string): BgpFamily | undefined {
    if (typeof value !== "string") {
      this.problem(field, `must be a family name, not ${found(value)}`);
      return undefined;
    }
    const family = BGP_FAMILIES.find((known) => known === value);
    if (family === undefined) {
      this.problem(
        field,
        `${JSON.stringify(value)} is not a family carried here (${BGP_FAMILIES.join(" or ")})`,
      );
    }
    return family;
  }
}

/** `spec.global` and `spec.netlinkImport`: everything of {@linkcode BgpSettings} but neighbours. */
type GlobalSettings = Omit<BgpSettings, "neighbors">;

/**
 * Reads a `BGPConfiguration` object (untyped JSON, as the API returns it) and checks it.
 *
 * - `invalid` when the object, `spec`, `spec.global`, `spec.neighbors` (as a list) or
 *   `spec.netlinkImport` has a problem; `problems` lists every one found.
 * - Otherwise `valid`: each neighbour with a problem is left out and each of its problems is in
 *   `rejectedNeighbors`; so is a neighbour whose address an earlier entry already has.
 * - Both list in `unsupported` the paths of the fields read but not acted on (see the module
 *   documentation), and of families a neighbour cannot carry (`ipv6-unicast` in the
 *   `afiSafis` of an IPv4 neighbour), which are left out of its families.
 *
 * Problems name their field; print them as `${field}: ${message}`.
 *
 * @example
 * ```ts
 * import { readBgpConfiguration } from "./configuration.ts";
 *
 * const reading = readBgpConfiguration({
 *   apiVersion: "bgp.purelb.io/v1",
 *   kind: "BGPConfiguration",
 *   spec: {
 *     global: { asn: 0 },
 *     neighbors: [{ config: { neighborAddress: "192.0.2.1", peerAsn: 65001 } }],
 *   },
 * });
 * if (reading.kind === "invalid") {
 *   for (const { field, message } of reading.problems) console.log(`${field}: ${message}`);
 *   // spec.global.asn: 0 is not an AS number (1 to 4294967295)
 * }
 * ```
 */
export function readBgpConfiguration(object: unknown): BgpConfigurationReading {
  const unsupported: string[] = [];
  const findings = new Findings(unsupported);
  if (!isRecord(object)) {
    const problem = { field: "object", message: `must be an object, not ${found(object)}` };
    return { kind: "invalid", problems: [problem], unsupported };
  }
  const fields = findings.object(object, "", KEYS.object) ?? {};

  expectText(findings, fields, "apiVersion", BGP_API_VERSION);
  expectText(findings, fields, "kind", BGP_CONFIGURATION_KIND);
  const spec = findings.requiredObject(fields, "spec", "", KEYS.spec, "global and neighbors");
  const global = spec === undefined ? undefined : readGlobalSettings(findings, spec);
  const entries = spec === undefined ? undefined : findings.list(spec, "neighbors", "spec");
  const neighbors = readNeighbors(entries ?? [], global, unsupported);
  if (global === undefined || findings.problems.length > 0) {
    return { kind: "invalid", problems: findings.problems, unsupported };
  }
  return {
    kind: "valid",
    settings: { ...global, neighbors: neighbors.kept },
    rejectedNeighbors: neighbors.rejected,
    unsupported,
  };
}

/**
 * The neighbours of `settings` whose `nodeSelector` matches a node's `labels`, in spec order;
 * a neighbour without a `nodeSelector` is a neighbour of every node. When two selected entries
 * have the same address, the first is `selected` and the later one `shadowed`.
 *
 * @example
 * ```ts
 * import { neighborsForNode, readBgpConfiguration } from "./configuration.ts";
 *
 * const reading = readBgpConfiguration({
 *   spec: {
 *     global: { asn: 65000 },
 *     neighbors: [{
 *       config: { neighborAddress: "192.0.2.1", peerAsn: 65001 },
 *       nodeSelector: { matchLabels: { rack: "r1" } },
 *     }],
 *   },
 * });
 * if (reading.kind === "valid") {
 *   neighborsForNode(reading.settings, { rack: "r1" }).selected.length; // 1
 *   neighborsForNode(reading.settings, { rack: "r2" }).selected.length; // 0
 * }
 * ```
 */
export function neighborsForNode(
  settings: BgpSettings,
  labels: Readonly<Record<string, string>>,
): { readonly selected: readonly BgpNeighbor[]; readonly shadowed: readonly BgpNeighbor[] } {
  const selected: BgpNeighbor[] = [];
  const shadowed: BgpNeighbor[] = [];
  for (const neighbor of settings.neighbors) {
    if (neighbor.nodeSelector !== undefined && !selectorMatches(neighbor.nodeSelector, labels)) {
      continue;
    }
    if (selected.some((earlier) => earlier.address === neighbor.address)) shadowed.push(neighbor);
    else selected.push(neighbor);
  }
  return { selected, shadowed };
}

/** A problem when `fields[key]` is present but not `expected`. */
function expectText(findings: Findings, fields: Fields, key: string, expected: string): void {
  const value = fields[key];
  if (isAbsent(value) || value === expected) return;
  findings.problem(key, `must be ${JSON.stringify(expected)}, not ${found(value)}`);
}

/** `spec.global` and `spec.netlinkImport`; `undefined` when either has a problem. */
function readGlobalSettings(findings: Findings, spec: Fields): GlobalSettings | undefined {
  const before = findings.problems.length;
  const global = findings.requiredObject(spec, "global", "spec", KEYS.global, "asn");
  const netlinkImport = readNetlinkImport(findings, spec["netlinkImport"]);
  if (global === undefined) return undefined;
  const path = "spec.global";
  const asn = findings.requiredInteger(global, "asn", path, AS_NUMBER);
  const routerId = readRouterId(findings, global);
  const listenPort = findings.integer(global, "listenPort", path, PORT);
  const families = readGlobalFamilies(findings, global);
  const heartbeatSeconds = readNodeStatus(findings, global["nodeStatus"]);
  if (asn === undefined || netlinkImport === undefined || findings.problems.length > before) {
    return undefined;
  }
  return { asn, routerId, listenPort, families, netlinkImport, heartbeatSeconds };
}

/**
 * `spec.global.nodeStatus`: its `heartbeatSeconds`. The agent always writes its BGPNodeStatus, so
 * `enabled: false` is not acted on and is listed as unsupported.
 */
function readNodeStatus(findings: Findings, value: unknown): number | undefined {
  const path = "spec.global.nodeStatus";
  const nodeStatus = findings.object(value, path, KEYS.nodeStatus) ?? {};
  const enabled = findings.flag(nodeStatus, "enabled", path);
  if (enabled === false) findings.unsupported.push(`${path}.enabled`);
  return findings.integer(nodeStatus, "heartbeatSeconds", path, HEARTBEAT);
}

function readRouterId(findings: Findings, global: Fields): string | undefined {
  const field = "spec.global.routerID";
  const text = findings.text(global, "routerID", "spec.global");
  if (text === undefined) return undefined;
  const address = tryParseAddress(text);
  if (address === undefined) {
    findings.problem(field, `${JSON.stringify(text)} is not an IPv4 address such as 192.0.2.1`);
    return undefined;
  }
  if (address.family !== "IPv4") {
    findings.problem(field, `${text} is an IPv6 address; a router ID is an IPv4 address`);
    return undefined;
  }
  if (address.value === 0n) {
    findings.problem(field, "0.0.0.0 is not a router ID; it must not be zero");
    return undefined;
  }
  return formatAddress(address);
}

/** `spec.global.families`; an empty list is the same as none (no restriction). */
function readGlobalFamilies(findings: Findings, global: Fields): readonly BgpFamily[] | undefined {
  const path = "spec.global.families";
  const list = findings.list(global, "families", "spec.global");
  if (list === undefined || list.length === 0) return undefined;
  const families = list.map((value, index) => findings.family(value, `${path}[${index}]`));
  return BGP_FAMILIES.filter((family) => families.includes(family));
}

/** The interface names Linux accepts: 1 to 15 bytes, no "/", ":" or white space, not "." or "..". */
function isInterfaceName(name: string): boolean {
  const bytes = new TextEncoder().encode(name).length;
  return bytes >= 1 && bytes <= 15 && /^[^/:\s]+$/.test(name) && name !== "." && name !== "..";
}

/** `spec.netlinkImport`; absent is `{ enabled: true, interfaces: [] }`. */
function readNetlinkImport(
  findings: Findings,
  value: unknown,
): BgpSettings["netlinkImport"] | undefined {
  const path = "spec.netlinkImport";
  const before = findings.problems.length;
  const fields = findings.object(value, path, KEYS.netlinkImport) ?? {};
  const enabled = findings.flag(fields, "enabled", path) ?? true;
  const interfaces: string[] = [];
  const list = findings.list(fields, "interfaceList", path) ?? [];
  list.forEach((name, index) => {
    const field = `${path}.interfaceList[${index}]`;
    if (typeof name !== "string") {
      findings.problem(field, `must be an interface name, not ${found(name)}`);
    } else if (!isInterfaceName(name)) {
      findings.problem(
        field,
        `${JSON.stringify(name)} is not an interface name (1 to 15 characters, ` +
          `no "/", ":" or white space)`,
      );
    } else if (!interfaces.includes(name)) {
      interfaces.push(name);
    }
  });
  if (findings.problems.length > before) return undefined;
  return { enabled, interfaces };
}

/** The neighbours of `spec.neighbors`: those kept, and the problems of those left out. */
interface NeighborReadings {
  readonly kept: BgpNeighbor[];
  readonly rejected: FieldProblem[];
}

function readNeighbors(
  entries: readonly unknown[],
  global: GlobalSettings | undefined,
  unsupported: string[],
): NeighborReadings {
  const readings: NeighborReadings = { kept: [], rejected: [] };
  // Entries with the same address may select different nodes; one that selects every node
  // clashes with any other.
  const withAddress = new Map<string, { path: string; everyNode: boolean }[]>();
  entries.forEach((entry, index) => {
    const path = `spec.neighbors[${index}]`;
    const findings = new Findings(unsupported);
    const neighbor = readNeighbor(findings, entry, path, global);
    const address = neighbor.address;
    if (address !== undefined) {
      const everyNode = neighbor.settings?.nodeSelector === undefined;
      const earlier = withAddress.get(address) ?? [];
      const clash = earlier.find((other) => other.everyNode || everyNode);
      if (clash !== undefined) {
        findings.problem(
          `${path}.config.neighborAddress`,
          `${address} is already the address of ${clash.path}, and one of them selects every ` +
            "node (give both a nodeSelector to configure this neighbour differently per node)",
        );
      } else {
        withAddress.set(address, [...earlier, { path, everyNode }]);
      }
    }
    if (neighbor.settings !== undefined && findings.problems.length === 0) {
      readings.kept.push(neighbor.settings);
    }
    readings.rejected.push(...findings.problems);
  });
  return readings;
}

/** One neighbour read: its canonical address when that could be read, its settings when usable. */
interface NeighborReading {
  readonly address: string | undefined;
  readonly settings: BgpNeighbor | undefined;
}

/** The neighbour's address, canonical, and its family. */
interface NeighborAddress {
  readonly address: string;
  readonly addressFamily: "ipv4" | "ipv6";
}

/** The `config` of one neighbour; `where` and `peerAsn` are `undefined` when unusable. */
interface PeerConfig {
  readonly where: NeighborAddress | undefined;
  readonly peerAsn: number | undefined;
  readonly localAsn: number | undefined;
  readonly description: string | undefined;
  readonly adminDown: boolean;
  readonly passwordRef: SecretKeyRef | undefined;
}

function readNeighbor(
  findings: Findings,
  entry: unknown,
  path: string,
  global: GlobalSettings | undefined,
): NeighborReading {
  const unusable: NeighborReading = { address: undefined, settings: undefined };
  if (!isRecord(entry)) {
    findings.problem(path, `must be an object, not ${found(entry)}`);
    return unusable;
  }
  const fields = findings.object(entry, path, KEYS.neighbor) ?? {};
  const config = findings.requiredObject(
    fields,
    "config",
    path,
    KEYS.config,
    "neighborAddress and peerAsn",
  );
  const peer = config === undefined ? undefined : readPeerConfig(findings, config, path);
  const where = peer?.where;
  const nodeSelector = readNodeSelector(findings, fields["nodeSelector"], `${path}.nodeSelector`);
  const timers = readTimers(findings, fields["timers"], `${path}.timers`);
  const multihopTtl = readMultihop(findings, fields["ebgpMultihop"], `${path}.ebgpMultihop`);
  const transport = readTransport(findings, fields["transport"], `${path}.transport`, where);
  const bfd = readBfd(findings, fields["bfd"], `${path}.bfd`);
  const families = where === undefined
    ? undefined
    : readNeighborFamilies(findings, fields, path, where, global);
  if (
    peer === undefined || where === undefined || peer.peerAsn === undefined ||
    families === undefined
  ) {
    return { address: where?.address, settings: undefined };
  }
  return {
    address: where.address,
    settings: {
      address: where.address,
      addressFamily: where.addressFamily,
      peerAsn: peer.peerAsn,
      localAsn: peer.localAsn,
      description: peer.description,
      adminDown: peer.adminDown,
      passwordRef: peer.passwordRef,
      nodeSelector,
      families,
      holdTimeSeconds: timers.holdTimeSeconds,
      keepaliveSeconds: timers.keepaliveSeconds,
      connectRetrySeconds: timers.connectRetrySeconds,
      multihopTtl,
      localAddress: transport.localAddress,
      passive: transport.passive,
      bfd,
    },
  };
}

/** `config` of the neighbour at `neighborPath`. */
function readPeerConfig(findings: Findings, config: Fields, neighborPath: string): PeerConfig {
  const path = `${neighborPath}.config`;
  return {
    where: readNeighborAddress(findings, config, path),
    peerAsn: findings.requiredInteger(config, "peerAsn", path, AS_NUMBER),
    localAsn: findings.integer(config, "localAsn", path, AS_NUMBER),
    description: findings.text(config, "description", path),
    adminDown: findings.flag(config, "adminDown", path) ?? false,
    passwordRef: readSecretRef(findings, config["authPasswordSecretRef"], path),
  };
}

/** The IP family of an address, as {@linkcode BgpNeighbor.addressFamily} spells it. */
function familyOf(address: IpAddress): "ipv4" | "ipv6" {
  return address.family === "IPv4" ? "ipv4" : "ipv6";
}

function readNeighborAddress(
  findings: Findings,
  config: Fields,
  configPath: string,
): NeighborAddress | undefined {
  const field = `${configPath}.neighborAddress`;
  if (isAbsent(config["neighborAddress"]) || config["neighborAddress"] === "") {
    if (isEmpty(config["neighborInterface"])) {
      findings.problem(field, "is required: the neighbour's IPv4 or IPv6 address");
    } else {
      findings.problem(
        `${configPath}.neighborInterface`,
        "unnumbered BGP is not supported; give config.neighborAddress",
      );
    }
    return undefined;
  }
  const text = findings.text(config, "neighborAddress", configPath);
  if (text === undefined) return undefined;
  const address = tryParseAddress(text);
  if (address === undefined) {
    findings.problem(field, `${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
    return undefined;
  }
  return { address: formatAddress(address), addressFamily: familyOf(address) };
}

/** `config.authPasswordSecretRef`; one holding nothing (`{ name: "" }`) is the same as none. */
function readSecretRef(
  findings: Findings,
  value: unknown,
  configPath: string,
): SecretKeyRef | undefined {
  if (isEmpty(value)) return undefined;
  const path = `${configPath}.authPasswordSecretRef`;
  const fields = findings.object(value, path, KEYS.secretRef);
  if (fields === undefined) return undefined;
  const name = findings.text(fields, "name", path);
  const key = findings.text(fields, "key", path);
  if (isEmpty(fields["name"])) {
    findings.problem(`${path}.name`, "is required: the name of a Secret in the agent's namespace");
  }
  if (isEmpty(fields["key"])) {
    findings.problem(`${path}.key`, "is required: the key of the password in that Secret");
  }
  return name === undefined || key === undefined ? undefined : { name, key };
}

/** `nodeSelector`: its shape is checked here, its meaning by `compileLabelSelector`. */
function readNodeSelector(
  findings: Findings,
  value: unknown,
  path: string,
): CompiledSelector | undefined {
  if (isEmpty(value)) return undefined;
  const fields = findings.object(value, path, KEYS.selector);
  if (fields === undefined) return undefined;
  const before = findings.problems.length;
  const matchLabels = readMatchLabels(findings, fields["matchLabels"], `${path}.matchLabels`);
  const matchExpressions = readMatchExpressions(findings, fields, path);
  if (findings.problems.length > before) return undefined;
  const reading = compileLabelSelector({ matchLabels, matchExpressions }, path);
  if (reading.kind === "valid") return reading.selector;
  findings.problems.push(splitSelectorProblem(reading.problem, path, Object.keys(matchLabels)));
  return undefined;
}

/** `matchLabels`: an object of label values (its keys are labels, never unsupported fields). */
function readMatchLabels(
  findings: Findings,
  value: unknown,
  path: string,
): Readonly<Record<string, string>> {
  const labels: Record<string, string> = {};
  if (isAbsent(value)) return labels;
  if (!isRecord(value)) {
    findings.problem(path, `must be an object, not ${found(value)}`);
    return labels;
  }
  for (const [key, label] of Object.entries(value)) {
    if (typeof label === "string") labels[key] = label;
    else findings.problem(at(path, key), `must be a string, not ${found(label)}`);
  }
  return labels;
}

function readMatchExpressions(
  findings: Findings,
  selector: Fields,
  selectorPath: string,
): LabelSelectorRequirement[] {
  const expressions: LabelSelectorRequirement[] = [];
  const list = findings.list(selector, "matchExpressions", selectorPath) ?? [];
  list.forEach((entry, index) => {
    const path = `${selectorPath}.matchExpressions[${index}]`;
    if (!isRecord(entry)) {
      findings.problem(path, `must be an object, not ${found(entry)}`);
      return;
    }
    const fields = findings.object(entry, path, KEYS.expression) ?? {};
    const key = requiredString(findings, fields, "key", path);
    const operator = requiredString(findings, fields, "operator", path);
    const values: string[] = [];
    (findings.list(fields, "values", path) ?? []).forEach((item, at) => {
      if (typeof item === "string") values.push(item);
      else findings.problem(`${path}.values[${at}]`, `must be a string, not ${found(item)}`);
    });
    if (key !== undefined && operator !== undefined) expressions.push({ key, operator, values });
  });
  return expressions;
}

/** A string field that must be there (it may be empty). */
function requiredString(
  findings: Findings,
  fields: Fields,
  key: string,
  path: string,
): string | undefined {
  const value = fields[key];
  if (typeof value === "string") return value;
  const problem = isAbsent(value) ? "is required" : `must be a string, not ${found(value)}`;
  findings.problem(at(path, key), problem);
  return undefined;
}

/**
 * Turns a `compileLabelSelector` problem (`<field>: <message>`, the field under `path`) into a
 * {@linkcode FieldProblem}. Only a `matchLabels` key can hold ": ", so those fields are matched
 * whole; any other field ends at the first ": ".
 */
function splitSelectorProblem(
  problem: string,
  path: string,
  labelKeys: readonly string[],
): FieldProblem {
  const labelFields = labelKeys.map((key) => `${path}.matchLabels[${JSON.stringify(key)}]`);
  const labelField = labelFields.find((field) => problem.startsWith(`${field}: `));
  const end = problem.indexOf(": ");
  const field = labelField ?? (end === -1 ? path : problem.slice(0, end));
  const message = problem.startsWith(`${field}: `) ? problem.slice(field.length + 2) : problem;
  return { field, message };
}

/** `timers.config`, each `undefined` when absent. */
type Timers = Pick<BgpNeighbor, "holdTimeSeconds" | "keepaliveSeconds" | "connectRetrySeconds">;

function readTimers(findings: Findings, value: unknown, path: string): Timers {
  const timers = findings.object(value, path, KEYS.timers) ?? {};
  const configPath = `${path}.config`;
  const config = findings.object(timers["config"], configPath, KEYS.timersConfig) ?? {};
  const holdTimeSeconds = readHoldTime(findings, config, configPath);
  const keepaliveSeconds = findings.integer(config, "keepaliveInterval", configPath, TIMER);
  if (
    holdTimeSeconds !== undefined && holdTimeSeconds > 0 && keepaliveSeconds !== undefined &&
    keepaliveSeconds >= holdTimeSeconds
  ) {
    findings.problem(
      `${configPath}.keepaliveInterval`,
      `${keepaliveSeconds} seconds is not shorter than the hold time (${holdTimeSeconds} ` +
        `seconds); a third of it is usual`,
    );
  }
  const connectRetrySeconds = findings.integer(config, "connectRetry", configPath, TIMER);
  return { holdTimeSeconds, keepaliveSeconds, connectRetrySeconds };
}

/** `holdTime`: 0 (no keepalives at all) or 3 to 65535 seconds, as BGP allows. */
function readHoldTime(findings: Findings, config: Fields, configPath: string): number | undefined {
  const holdTime = findings.integer(config, "holdTime", configPath, HOLD_TIME);
  if (holdTime === 1 || holdTime === 2) {
    findings.problem(`${configPath}.holdTime`, `${holdTime} is not ${HOLD_TIME.what}`);
    return undefined;
  }
  return holdTime;
}

/** `ebgpMultihop`: the TTL when enabled (default 255), `undefined` otherwise. */
function readMultihop(findings: Findings, value: unknown, path: string): number | undefined {
  const fields = findings.object(value, path, KEYS.ebgpMultihop) ?? {};
  const enabled = findings.flag(fields, "enabled", path) ?? false;
  const ttl = findings.integer(fields, "multihopTtl", path, TTL);
  if (!enabled) return undefined;
  return ttl ?? DEFAULT_MULTIHOP_TTL;
}

/** `transport`: `localAddress` (canonical, of the neighbour's family) and `passiveMode`. */
function readTransport(
  findings: Findings,
  value: unknown,
  path: string,
  neighbor: NeighborAddress | undefined,
): Pick<BgpNeighbor, "localAddress" | "passive"> {
  const fields = findings.object(value, path, KEYS.transport) ?? {};
  const passive = findings.flag(fields, "passiveMode", path) ?? false;
  const text = findings.text(fields, "localAddress", path);
  if (text === undefined) return { localAddress: undefined, passive };
  const field = `${path}.localAddress`;
  const address = tryParseAddress(text);
  if (address === undefined) {
    findings.problem(field, `${JSON.stringify(text)} is not an IPv4 or IPv6 address`);
    return { localAddress: undefined, passive };
  }
  const localAddress = formatAddress(address);
  if (neighbor !== undefined && familyOf(address) !== neighbor.addressFamily) {
    findings.problem(
      field,
      `${localAddress} is ${address.family}, but the neighbour ${neighbor.address} is ` +
        (neighbor.addressFamily === "ipv4" ? "IPv4" : "IPv6"),
    );
  }
  return { localAddress, passive };
}

/** `bfd`: the settings, defaults filled in, when `enabled: true`; `undefined` otherwise. */
function readBfd(findings: Findings, value: unknown, path: string): BfdSettings | undefined {
  const fields = findings.object(value, path, KEYS.bfd) ?? {};
  const enabled = findings.flag(fields, "enabled", path) ?? false;
  const minRxMs = findings.integer(fields, "minRxMs", path, BFD_INTERVAL);
  const minTxMs = findings.integer(fields, "minTxMs", path, BFD_INTERVAL);
  const multiplier = findings.integer(fields, "multiplier", path, BFD_MULTIPLIER);
  if (!enabled) return undefined;
  return {
    minRxMs: minRxMs ?? DEFAULT_BFD.minRxMs,
    minTxMs: minTxMs ?? DEFAULT_BFD.minTxMs,
    multiplier: multiplier ?? DEFAULT_BFD.multiplier,
  };
}

/** The unicast family of an address family. */
function unicastOf(addressFamily: "ipv4" | "ipv6"): BgpFamily {
  return addressFamily === "ipv4" ? "ipv4-unicast" : "ipv6-unicast";
}

/**
 * The families of one neighbour. A neighbour carries the unicast family of its own address
 * only: when `afiSafis` enables it (or there is no `afiSafis`) and `spec.global.families`, when
 * given, has it. A problem, and `undefined`, when that leaves nothing.
 */
function readNeighborFamilies(
  findings: Findings,
  fields: Fields,
  path: string,
  neighbor: NeighborAddress,
  global: GlobalSettings | undefined,
): readonly BgpFamily[] | undefined {
  const own = unicastOf(neighbor.addressFamily);
  const afiSafis = findings.list(fields, "afiSafis", path);
  const listed = afiSafis !== undefined && afiSafis.length > 0;
  const enabled = listed ? readAfiSafis(findings, afiSafis, `${path}.afiSafis`, own) : true;
  if (enabled === undefined) return undefined;
  const allowed = global?.families ?? BGP_FAMILIES;
  if (enabled && allowed.includes(own)) return [own];
  const kind = neighbor.addressFamily === "ipv4" ? "IPv4" : "IPv6";
  if (!enabled) {
    findings.problem(
      `${path}.afiSafis`,
      `enables no family that ${neighbor.address} can carry (${kind}: ${own})`,
    );
  } else {
    findings.problem(
      listed ? `${path}.afiSafis` : `${path}.config.neighborAddress`,
      `${neighbor.address} is ${kind}, but spec.global.families (${allowed.join(", ")}) ` +
        `leaves out ${own}`,
    );
  }
  return undefined;
}

/**
 * Whether `afiSafis` enables `own`, the family of the neighbour's address (an entry without
 * `enabled` is enabled). The other family, enabled, is listed as unsupported. `undefined` when an
 * entry has a problem.
 */
function readAfiSafis(
  findings: Findings,
  afiSafis: readonly unknown[],
  path: string,
  own: BgpFamily,
): boolean | undefined {
  const before = findings.problems.length;
  let ownEnabled = false;
  afiSafis.forEach((entry, index) => {
    const entryPath = `${path}[${index}]`;
    if (!isRecord(entry)) {
      findings.problem(entryPath, `must be an object, not ${found(entry)}`);
      return;
    }
    const fields = findings.object(entry, entryPath, KEYS.afiSafi) ?? {};
    const enabled = findings.flag(fields, "enabled", entryPath) ?? true;
    const familyPath = `${entryPath}.family`;
    if (isAbsent(fields["family"])) {
      findings.problem(familyPath, `is required: ${BGP_FAMILIES.join(" or ")}`);
      return;
    }
    const family = findings.family(fields["family"], familyPath);
    if (family === undefined || !enabled) return;
    if (family === own) ownEnabled = true;
    else findings.unsupported.push(familyPath);
  });
  return findings.problems.length > before ? undefined : ownEnabled;
}
