/**
 * The demo's scene (pure data): the LAN, the namespaces, the BGP side (an upstream router and
 * the client behind it), and the state every sample Service of `demo/services.yaml` must
 * reach, with the check that says which have not yet.
 *
 * @module
 */

import type { DemoRow } from "./table.ts";

/** The "nodes": one network namespace each, on one LAN. */
export const NODES = ["node-a", "node-b", "node-c"] as const;
/** The LAN's subnets (documentation addresses); the local pools lie inside them. */
export const LAN_IPV4 = "192.0.2.0/24";
export const LAN_IPV6 = "2001:db8:1::/64";
/** Where PureLB's own objects live (ServiceGroups, LBNodeAgent, Leases). */
export const PURELB_NAMESPACE = "purelb-system";
/** Where the sample Services live. */
export const DEMO_NAMESPACE = "demo";
/** Each node's LAN interface (local addresses go there) and the dummy for virtual ones. */
export const LAN_INTERFACE = "eth0";
export const DUMMY_INTERFACE = "kube-lb0";
/**
 * BGP: the upstream router (host .1 / ::1 of the LAN, where the nodes' default routes point)
 * is in AS 65000, every node in AS 65001 (`demo/bgpconfiguration.yaml` says the same).
 */
export const ROUTER_ASN = 65000;
export const NODE_ASN = 65001;
/** The Service whose address changes node in the hand-over. */
export const HANDOVER_SERVICE = "web-ipv4";
/**
 * The Netbox test server's tenant and the addresses reserved for it: inside the LAN's IPv4 subnet
 * (so local, announced by one elected node) and outside the `default` pool. A take gets the
 * first reserved one.
 */
export const NETBOX_TENANT = "demo";
export const NETBOX_FIRST = "192.0.2.200/24";
export const NETBOX_COUNT = 4;
/** The Service of the netbox group. */
export const NETBOX_SERVICE = "web-netbox";

/** One address a Service must get. */
export interface AddressExpectation {
  readonly family: "IPv4" | "IPv6";
  /**
   * `local`: one node carries it on the LAN interface. `virtual`: every node, on the dummy;
   * the router has each of those nodes as a next hop for it, and the client behind the router
   * gets an answer from it.
   */
  readonly placement: "local" | "virtual";
  /** This exact address, when the Service asks for one. */
  readonly address?: string;
}

/** The state a sample Service must reach. */
export type Expectation =
  | {
    readonly kind: "announced";
    readonly pool: string;
    readonly addresses: readonly AddressExpectation[];
    /** Must hold the same address as this other Service. */
    readonly sharesWith?: string;
  }
  | { readonly kind: "failed"; readonly reason: RegExp };

/** Every sample Service of `demo/services.yaml`, in table order, with its expected state. */
export const EXPECTED: ReadonlyMap<string, Expectation> = new Map<string, Expectation>([
  ["web-ipv4", {
    kind: "announced",
    pool: "default",
    addresses: [{ family: "IPv4", placement: "local" }],
  }],
  ["web-ipv6", {
    kind: "announced",
    pool: "default",
    addresses: [{ family: "IPv6", placement: "local" }],
  }],
  ["web-dual", {
    kind: "announced",
    pool: "default",
    addresses: [{ family: "IPv4", placement: "local" }, { family: "IPv6", placement: "local" }],
  }],
  ["shared-http", {
    kind: "announced",
    pool: "default",
    addresses: [{ family: "IPv4", placement: "local" }],
  }],
  ["shared-https", {
    kind: "announced",
    pool: "default",
    addresses: [{ family: "IPv4", placement: "local" }],
    sharesWith: "shared-http",
  }],
  ["specific", {
    kind: "announced",
    pool: "default",
    addresses: [{ family: "IPv4", placement: "local", address: "192.0.2.250" }],
  }],
  ["virtual", {
    kind: "announced",
    pool: "virtual",
    addresses: [{ family: "IPv4", placement: "virtual" }],
  }],
  ["web-netbox", {
    kind: "announced",
    pool: "netbox",
    addresses: [{ family: "IPv4", placement: "local", address: "192.0.2.200" }],
  }],
  ["bad-annotation", { kind: "failed", reason: /192\.0\.2\.300.*not an IP address/ }],
]);

/**
 * The expected state in words, for people.
 *
 * @example
 * ```ts
 * describeExpectation({ kind: "failed", reason: /x/ }); // "no address; AllocationFailed ..."
 * ```
 */
export function describeExpectation(expectation: Expectation): string {
  if (expectation.kind === "failed") {
    return `no address; AllocationFailed with a reason matching ${expectation.reason}`;
  }
  const parts = expectation.addresses.map((a) => {
    const which = a.address ?? `an ${a.family} address`;
    return a.placement === "local"
      ? `${which} on ${LAN_INTERFACE} of one node`
      : `${which} on ${DUMMY_INTERFACE} of every node`;
  });
  const shared = expectation.sharesWith ? `, the same as ${expectation.sharesWith}` : "";
  const routed = expectation.addresses.some((a) => a.placement === "virtual")
    ? "; the router has each of those nodes as a next hop for it, and the client behind the " +
      "router gets answers"
    : "";
  return `${parts.join(" and ")} from ${expectation.pool}${shared}${routed}`;
}

function familyOf(address: string): "IPv4" | "IPv6" {
  return address.includes(":") ? "IPv6" : "IPv4";
}

/** What {@linkcode unmetExpectations} checks besides the table. */
export interface ExpectationOptions {
  /**
   * The virtual addresses that answered a ping from the client behind the router; when
   * absent, reachability is not checked (the table does not show it).
   */
  readonly answered?: ReadonlySet<string>;
  /** The expectations (default {@linkcode EXPECTED}). */
  readonly expected?: ReadonlyMap<string, Expectation>;
}

/** Why `rows` of one service do not (yet) meet `expectation`; undefined when they do. */
function mismatch(
  rows: readonly DemoRow[],
  expectation: Expectation,
  allRows: readonly DemoRow[],
  nodeCount: number,
  answered: ReadonlySet<string> | undefined,
): string | undefined {
  if (rows.length === 0) return "not in the table";
  if (expectation.kind === "failed") {
    const row = rows[0];
    if (rows.length !== 1 || row === undefined || row.state !== "failed") {
      return `state ${rows.map((r) => r.state).join(",")}, expected failed`;
    }
    return expectation.reason.test(row.reason)
      ? undefined
      : `reason "${row.reason}" does not match ${expectation.reason}`;
  }
  if (rows.length !== expectation.addresses.length) {
    return `${
      rows.filter((r) => r.address !== "").length
    } address(es), expected ${expectation.addresses.length}`;
  }
  for (const [i, want] of expectation.addresses.entries()) {
    const row = rows[i];
    if (row === undefined) return "missing row";
    if (row.state !== "announced") return `${row.address || "no address"}: ${row.state}`;
    if (familyOf(row.address) !== want.family) return `${row.address} is not ${want.family}`;
    if (want.address !== undefined && row.address !== want.address) {
      return `${row.address}, expected ${want.address}`;
    }
    if (row.pool !== expectation.pool) return `pool ${row.pool}, expected ${expectation.pool}`;
    if (want.placement === "local") {
      if (row.nodes.length !== 1 || row.interfaceName !== LAN_INTERFACE) {
        return `${row.address} on [${row.nodes}] ${row.interfaceName}, expected one node, ${LAN_INTERFACE}`;
      }
    } else if (row.nodes.length !== nodeCount || row.interfaceName !== DUMMY_INTERFACE) {
      return `${row.address} on [${row.nodes}] ${row.interfaceName}, expected ${nodeCount} nodes, ${DUMMY_INTERFACE}`;
    } else if (row.routerNextHops.join(",") !== row.nodes.join(",")) {
      return `${row.address}: the router's next hops are [${row.routerNextHops}], expected [${row.nodes}]`;
    } else if (answered !== undefined && !answered.has(row.address)) {
      return `${row.address}: no answer to a ping from the client behind the router`;
    }
  }
  if (expectation.sharesWith !== undefined) {
    const other = allRows.filter((r) => r.service === expectation.sharesWith).map((r) => r.address);
    const mine = rows.map((r) => r.address);
    if (other.join(",") !== mine.join(",")) {
      return `[${mine}] differs from ${expectation.sharesWith}'s [${other}]`;
    }
  }
  return undefined;
}

/**
 * Every sample service that has not reached its expected state, with why (empty: all have).
 * `nodeCount` is the number of nodes whose agent runs (each carries every virtual address).
 *
 * @example
 * ```ts
 * import type { DemoRow } from "./table.ts";
 * declare const rows: readonly DemoRow[];
 *
 * const unmet = unmetExpectations(rows, 3, { answered: new Set(["198.51.100.10"]) });
 * if (unmet.length === 0) console.log("all sample services are in their expected state");
 * ```
 */
export function unmetExpectations(
  rows: readonly DemoRow[],
  nodeCount: number,
  options: ExpectationOptions = {},
): string[] {
  const unmet: string[] = [];
  for (const [service, expectation] of options.expected ?? EXPECTED) {
    const why = mismatch(
      rows.filter((r) => r.service === service),
      expectation,
      rows,
      nodeCount,
      options.answered,
    );
    if (why !== undefined) unmet.push(`${service}: ${why}`);
  }
  return unmet;
}
