/**
 * `kubectl purelb status` (pure): Services, their `AllocationFailed` events, the node Leases
 * and the LBNodeAgents in, status rows out. A local address is where the allocator's
 * `purelb.io/announcing-IPv4`/`-IPv6` annotations say (`-` while they are absent); a virtual
 * address is on the dummy interface of every node that stands in the election. The demo calls
 * the same function and passes what `ip` shows in its node namespaces instead.
 *
 * @module
 */

import type { CoreV1Event, V1Lease, V1Service } from "@kubernetes/client-node";
import { leaseRecord } from "../agent/membership.ts";
import { candidatesFor, liveNodes, type NodeLeaseRecord, winner } from "../election/mod.ts";
import { canonicalAddress } from "../ipam/mod.ts";
import { Annotations } from "../k8s/types.ts";
import type { LBNodeAgentItem } from "./api.ts";
import {
  buildRows,
  COLUMNS,
  type Holding,
  renderTable,
  type Row,
  type ServiceView,
} from "./table.ts";

/** Service annotations (written by the allocator) naming the node and interface of each local address. */
export const ANNOUNCING_ANNOTATIONS = ["purelb.io/announcing-IPv4", "purelb.io/announcing-IPv6"];

/** The dummy interface an LBNodeAgent uses when it names none. */
const DEFAULT_DUMMY = "kube-lb0";

/** Everything status is computed from. */
export interface StatusInput {
  readonly services: readonly V1Service[];
  readonly failures: readonly CoreV1Event[];
  readonly leases: readonly V1Lease[];
  readonly nodeAgents: readonly LBNodeAgentItem[];
  /** Services are named `namespace/name` unless all were read from one namespace. */
  readonly qualifyNames: boolean;
  readonly nowMs: number;
}

/** Whether an address is on the node network (one elected node) or virtual (every node). */
export type AddressKind = "local" | "virtual";

/** A status row with what the election says about its address. */
export interface StatusRow extends Row {
  /** Empty when the service has no address. */
  readonly kind: AddressKind | "";
  /** For a local address: the node the election picks among the live candidates (may be empty). */
  readonly elected: string;
}

/**
 * The `node,interface,address` entries of an announcing annotation (space separated); entries
 * of another shape are skipped.
 *
 * @example
 * ```ts
 * parseAnnouncing("node-b,eth0,192.0.2.240 node-a,eth0,2001:db8:1::240");
 * // [{ node: "node-b", interfaceName: "eth0", address: "192.0.2.240" }, {...}]
 * ```
 */
export function parseAnnouncing(text: string): Holding[] {
  const holdings: Holding[] = [];
  for (const entry of text.split(/\s+/)) {
    const parts = entry.split(",");
    if (parts.length !== 3) continue;
    const [node = "", interfaceName = "", address = ""] = parts.map((p) => p.trim());
    const canonical = canonicalAddress(address);
    if (node === "" || interfaceName === "" || canonical === undefined) continue;
    holdings.push({ node, interfaceName, address: canonical });
  }
  return holdings;
}

function timeOf(event: CoreV1Event): number {
  const when = event.lastTimestamp ?? event.eventTime ?? event.firstTimestamp;
  return when === undefined ? 0 : Date.parse(String(when));
}

function keyOf(namespace: string | undefined, name: string | undefined): string {
  return `${namespace ?? ""}/${name ?? ""}`;
}

/** LoadBalancer Services, each with its addresses, group and latest allocation failure. */
function serviceViews(input: StatusInput): ServiceView[] {
  const latestFailure = new Map<string, CoreV1Event>();
  for (const event of input.failures) {
    if (event.involvedObject.kind !== undefined && event.involvedObject.kind !== "Service") {
      continue;
    }
    const key = keyOf(
      event.involvedObject.namespace ?? event.metadata.namespace,
      event.involvedObject.name,
    );
    const seen = latestFailure.get(key);
    if (seen === undefined || timeOf(event) >= timeOf(seen)) latestFailure.set(key, event);
  }
  return input.services
    .filter((svc) => svc.spec?.type === undefined || svc.spec.type === "LoadBalancer")
    .map((svc): ServiceView => {
      const namespace = svc.metadata?.namespace ?? "";
      const name = svc.metadata?.name ?? "";
      const addresses = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? "")
        .filter(Boolean);
      return {
        name: input.qualifyNames ? `${namespace}/${name}` : name,
        addresses,
        pool: svc.metadata?.annotations?.[Annotations.allocatedFrom],
        // A failure older than the address it got is history.
        failure: addresses.length > 0
          ? undefined
          : latestFailure.get(keyOf(namespace, name))?.message,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The election records of the node Leases (other Leases are left out). */
export function nodeRecords(leases: readonly V1Lease[]): NodeLeaseRecord[] {
  return leases.flatMap((lease) => {
    const record = leaseRecord(lease);
    return record === undefined ? [] : [record];
  });
}

/** The dummy interface names of the LBNodeAgents that configure announcing. */
function dummyInterfaces(agents: readonly LBNodeAgentItem[]): string[] {
  const names = agents.flatMap((agent) =>
    agent.spec?.local === undefined ? [] : [agent.spec.local.extlbint || DEFAULT_DUMMY]
  );
  return [...new Set(names)].sort();
}

/**
 * Where each address is, from the API: local addresses from the announcing annotations,
 * virtual addresses on every live node that publishes subnets (a node no LBNodeAgent selects
 * publishes none and announces nothing).
 */
function announcedHoldings(input: StatusInput, records: readonly NodeLeaseRecord[]): Holding[] {
  const holdings: Holding[] = [];
  for (const svc of input.services) {
    for (const annotation of ANNOUNCING_ANNOTATIONS) {
      holdings.push(...parseAnnouncing(svc.metadata?.annotations?.[annotation] ?? ""));
    }
  }
  const dummies = dummyInterfaces(input.nodeAgents);
  const announcing = liveNodes(records, input.nowMs).filter((r) => r.subnets.length > 0);
  for (const svc of input.services) {
    for (const ingress of svc.status?.loadBalancer?.ingress ?? []) {
      const address = canonicalAddress(ingress.ip ?? "");
      if (address === undefined || candidatesFor(address, records).length > 0) continue;
      for (const record of dummies.length === 0 ? [] : announcing) {
        holdings.push({ node: record.nodeName, interfaceName: dummies.join(","), address });
      }
    }
  }
  // One holding per node, interface and address (shared addresses appear on several Services).
  const unique = new Map(holdings.map((h) => [`${h.node}|${h.interfaceName}|${h.address}`, h]));
  return [...unique.values()];
}

/** Options of {@linkcode statusRows}. */
export interface StatusOptions {
  /**
   * What the nodes really carry (the demo reads it with `ip` in each node's namespace); when
   * given it replaces the annotations and the virtual-address rule.
   */
  readonly observed?: readonly Holding[];
}

/**
 * The status rows: one per Service address (Services sorted by name), or one per Service
 * without an address.
 *
 * @example
 * ```ts
 * const rows = statusRows({
 *   services: [{
 *     metadata: { name: "web", namespace: "shop", annotations: {
 *       "purelb.io/allocated-from": "default",
 *       "purelb.io/announcing-IPv4": "node-b,eth0,192.0.2.240",
 *     } },
 *     spec: { type: "LoadBalancer" },
 *     status: { loadBalancer: { ingress: [{ ip: "192.0.2.240" }] } },
 *   }],
 *   failures: [], leases: [], nodeAgents: [], qualifyNames: true, nowMs: Date.now(),
 * });
 * rows[0]?.nodes; // ["node-b"]
 * ```
 */
export function statusRows(input: StatusInput, options: StatusOptions = {}): StatusRow[] {
  const records = nodeRecords(input.leases);
  const live = liveNodes(records, input.nowMs);
  const holdings = options.observed ?? announcedHoldings(input, records);
  const canonicalHoldings = holdings.map((h) => ({
    ...h,
    address: canonicalAddress(h.address) ?? h.address,
  }));
  const views = serviceViews(input).map((view) => ({
    ...view,
    addresses: view.addresses.map((a) => canonicalAddress(a) ?? a),
  }));
  return buildRows(views, canonicalHoldings).map((row): StatusRow => {
    if (row.address === "") return { ...row, kind: "", elected: "" };
    const local = candidatesFor(row.address, records).length > 0;
    return {
      ...row,
      kind: local ? "local" : "virtual",
      elected: local ? winner(candidatesFor(row.address, live), row.address) ?? "" : "",
    };
  });
}

/** Output formats of the plugin's commands. */
export type OutputFormat = "table" | "wide" | "json";

/** Aligned columns, two spaces apart, `-` for an empty cell, header first; no trailing spaces. */
export function alignedTable(
  header: readonly string[],
  lines: readonly (readonly string[])[],
): string {
  const flat = (text: string) => {
    const one = text.replace(/\s+/g, " ").trim();
    return one === "" ? "-" : one;
  };
  const table = [[...header], ...lines.map((line) => line.map(flat))];
  const widths = header.map((_, i) => Math.max(...table.map((line) => (line[i] ?? "").length)));
  return table.map((line) =>
    line.map((cell, i) => i === line.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 2))
      .join("").trimEnd()
  ).join("\n");
}

/**
 * The rows as text: the demo's table (`table`), with the address kind and the election's pick
 * (`wide`), or JSON (`json`).
 *
 * @example
 * ```ts
 * declare const rows: readonly StatusRow[];
 * console.log(renderStatus(rows, "wide"));
 * ```
 */
export function renderStatus(rows: readonly StatusRow[], format: OutputFormat): string {
  if (format === "json") {
    return JSON.stringify(
      rows.map((r) => ({
        service: r.service,
        address: r.address,
        pool: r.pool,
        kind: r.kind,
        nodes: r.nodes,
        interface: r.interfaceName,
        state: r.state,
        reason: r.reason,
        elected: r.elected,
      })),
      null,
      2,
    );
  }
  const header = [...COLUMNS];
  const line = (r: StatusRow) => [
    r.service,
    r.address,
    r.pool,
    r.nodes.join(","),
    r.interfaceName,
    r.state,
  ];
  if (format === "wide") {
    return alignedTable(
      [...header.slice(0, -1), "KIND", "ELECTED", "REASON"],
      rows.map((r) => [...line(r), r.kind, r.elected, r.reason]),
    );
  }
  return renderTable(rows);
}
