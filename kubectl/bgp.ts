/**
 * `kubectl purelb bgp` (pure): what each node's BGP sessions do, from the `BGPNodeStatus` its
 * agent writes, and what is wrong with the `BGPConfiguration`s of the PureLB namespace. One row
 * per node and neighbour; a node without neighbours gets one row saying why (its failing
 * condition); a node whose status has not been written for three heartbeats is `stale`.
 *
 * @module
 */

import { type Condition, conditionsOf, type NeighborStatus } from "../bgp/status.ts";
import { isRecord } from "../json/mod.ts";
import type { BgpConfigurationItem, BgpNodeStatusItem } from "./api.ts";
import { alignedTable, type OutputFormat } from "./status.ts";

/** The heartbeat assumed when a status names none (the agent's default). */
const DEFAULT_HEARTBEAT_SECONDS = 60;

/** A status older than this many heartbeats is stale: its agent stopped writing it. */
export const STALE_HEARTBEATS = 3;

/** The order in which a node's conditions explain a node without neighbours. */
const CONDITION_ORDER = ["Configured", "DaemonReady", "SessionsEstablished"];

/** One line of the table: a neighbour of a node, or a node that has none. */
export interface BgpRow {
  readonly node: string;
  /** Empty while the node has no usable configuration. */
  readonly routerID: string;
  /** The neighbour's address; empty on the row of a node without neighbours. */
  readonly peer: string;
  readonly peerAS: number | undefined;
  readonly localAS: number | undefined;
  /** The BGP state as the agent reported it (`Established`, `Active`, ...); empty without a neighbour. */
  readonly state: string;
  /** When the session came up (RFC 3339), only while it is `Established`. */
  readonly sessionUpSince: string | undefined;
  /** How long it has been up (`5m`), empty while it is down or its status is stale. */
  readonly upFor: string;
  readonly prefixesSent: number | undefined;
  readonly prefixesReceived: number | undefined;
  readonly description: string;
  /** When the agent last wrote the status (RFC 3339), empty before it first did. */
  readonly lastUpdated: string;
  /** How long ago that was (`40s`), empty before the first write. */
  readonly updatedAgo: string;
  /** Not written for {@linkcode STALE_HEARTBEATS} heartbeats: the agent is not running. */
  readonly stale: boolean;
  /** Why the session is not up, or the node has none; empty when nothing is wrong. */
  readonly reason: string;
}

/** A BGPConfiguration that is refused or carries fields that have no effect. */
export interface BgpConfigurationProblem {
  readonly name: string;
  /** Its `Accepted` condition when `False`, its `UnsupportedFields` condition when `True`. */
  readonly conditions: readonly Condition[];
}

/** What `kubectl purelb bgp` shows. */
export interface BgpReport {
  /** By configuration name. */
  readonly configurations: readonly BgpConfigurationProblem[];
  /** By node name; a node's neighbours in the order its agent reported them. */
  readonly rows: readonly BgpRow[];
}

/**
 * A duration in the largest unit that keeps two digits or less of detail, the way `kubectl get`
 * prints ages: `45s`, `5m`, `3h`, `12d`. A negative duration (clocks apart) is `0s`.
 *
 * @example
 * ```ts
 * age(300_000); // "5m"
 * ```
 */
export function age(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

function parseTime(text: string | undefined): number | undefined {
  if (text === undefined || text === "") return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The condition that says why a node has no neighbour row: `False` before `Unknown`, then by order. */
function failingCondition(conditions: readonly Condition[]): Condition | undefined {
  const rank = (c: Condition) => {
    const index = CONDITION_ORDER.indexOf(c.type);
    return (c.status === "False" ? 0 : 100) + (index === -1 ? CONDITION_ORDER.length : index);
  };
  return conditions.filter((c) => c.status !== "True").sort((a, b) => rank(a) - rank(b))[0];
}

function neighborsOf(item: BgpNodeStatusItem): readonly NeighborStatus[] {
  const list: unknown = item.status?.neighbors;
  if (!Array.isArray(list)) return [];
  // The CRD's schema requires every field the table shows; a hand-written object may lack some.
  return (list as unknown[]).filter((n): n is NeighborStatus =>
    isRecord(n) && typeof n["address"] === "string"
  );
}

function nodeRows(item: BgpNodeStatusItem, nowMs: number): BgpRow[] {
  const status = item.status;
  const node = status?.nodeName || item.metadata?.name || "";
  const conditions = conditionsOf(item) ?? [];
  const lastUpdated = status?.lastUpdated ?? "";
  const updatedMs = parseTime(lastUpdated);
  const heartbeat = typeof status?.heartbeatSeconds === "number" && status.heartbeatSeconds > 0
    ? status.heartbeatSeconds
    : DEFAULT_HEARTBEAT_SECONDS;
  const stale = updatedMs !== undefined &&
    nowMs - updatedMs > STALE_HEARTBEATS * heartbeat * 1000;
  const staleReason = updatedMs === undefined
    ? ""
    : `status not updated for ${
      age(nowMs - updatedMs)
    } (written every ${heartbeat}s): is the agent running?`;
  // In the order of the columns (JSON prints the keys in this order).
  const head = { node, routerID: status?.routerID ?? "" };
  const tail = {
    lastUpdated,
    updatedAgo: updatedMs === undefined ? "" : age(nowMs - updatedMs),
    stale,
  };
  const neighbors = neighborsOf(item);
  if (neighbors.length === 0) {
    const failing = failingCondition(conditions);
    const reason = stale
      ? staleReason
      : status === undefined || updatedMs === undefined
      ? "no status written yet: is the agent running with BGP?"
      : failing?.message ?? "no neighbours";
    return [{
      ...head,
      peer: "",
      peerAS: undefined,
      localAS: undefined,
      state: "",
      sessionUpSince: undefined,
      upFor: "",
      prefixesSent: undefined,
      prefixesReceived: undefined,
      description: "",
      ...tail,
      reason,
    }];
  }
  // A daemon that is down, or refused its config, explains every session without its own error.
  const daemon = conditions.find((c) => c.type === "DaemonReady" && c.status !== "True");
  return neighbors.map((neighbor): BgpRow => {
    const upMs = neighbor.state === "Established" ? parseTime(neighbor.sessionUpSince) : undefined;
    return {
      ...head,
      peer: neighbor.address,
      peerAS: neighbor.peerASN,
      localAS: neighbor.localASN,
      state: neighbor.state,
      sessionUpSince: upMs === undefined ? undefined : neighbor.sessionUpSince,
      // A stale status cannot say the session is still up.
      upFor: upMs === undefined || stale ? "" : age(nowMs - upMs),
      prefixesSent: neighbor.prefixesSent,
      prefixesReceived: neighbor.prefixesReceived,
      description: neighbor.description ?? "",
      ...tail,
      reason: stale ? staleReason : neighbor.lastError ?? daemon?.message ?? "",
    };
  });
}

/**
 * The report at `nowMs`: one row per node and neighbour, and the BGPConfigurations whose
 * `Accepted` is `False` or `UnsupportedFields` is `True`.
 *
 * @example
 * ```ts
 * const report = bgpRows([{
 *   metadata: { name: "node-a" },
 *   status: {
 *     nodeName: "node-a", routerID: "192.0.2.11", asn: 65001, heartbeatSeconds: 60,
 *     lastUpdated: "2026-01-01T00:00:00Z", conditions: [],
 *     neighbors: [{ address: "192.0.2.1", peerASN: 65000, localASN: 65001, state: "Active",
 *       prefixesSent: 0, prefixesReceived: 0, lastError: "Socket: Connection refused" }],
 *   },
 * }], [], Date.parse("2026-01-01T00:00:30Z"));
 * report.rows[0]?.reason; // "Socket: Connection refused"
 * ```
 */
export function bgpRows(
  statuses: readonly BgpNodeStatusItem[],
  configurations: readonly BgpConfigurationItem[],
  nowMs: number,
): BgpReport {
  const rows = statuses.flatMap((item) => nodeRows(item, nowMs))
    // A stable sort: each node's neighbours keep the agent's order.
    .sort((a, b) => a.node.localeCompare(b.node));
  const problems = configurations.flatMap((item): BgpConfigurationProblem[] => {
    const conditions = (conditionsOf(item) ?? []).filter((c) =>
      (c.type === "Accepted" && c.status === "False") ||
      (c.type === "UnsupportedFields" && c.status === "True")
    );
    return conditions.length === 0 ? [] : [{ name: item.metadata?.name ?? "", conditions }];
  }).sort((a, b) => a.name.localeCompare(b.name));
  return { configurations: problems, rows };
}

/** The text shown instead of a table when no node has a BGPNodeStatus. */
export const NO_BGP_NODES = "no BGPNodeStatus: no node agent runs BGP (turn it on with " +
  "kubectl apply -k deploy/with-bgp, or the Helm chart with --set bgp.enabled=true)";

function configurationLine(problem: BgpConfigurationProblem): string {
  const parts = problem.conditions.map((c) => `${c.type} ${c.status} (${c.reason}): ${c.message}`);
  return `BGPConfiguration ${problem.name}: ${parts.join("; ")}`;
}

const text = (value: number | undefined) => value === undefined ? "" : String(value);

/**
 * The report as text: a line per BGPConfiguration problem, then the table (`wide` adds the
 * local AS, prefixes received, description and the age of the status); `json` is the rows only.
 *
 * @example
 * ```ts
 * declare const report: BgpReport;
 * console.log(renderBgp(report, "table"));
 * // NODE    ROUTER-ID   PEER       PEER-AS  STATE        UP-SINCE  SENT  REASON
 * // node-a  192.0.2.11  192.0.2.1  65000    Established  5m        2     -
 * ```
 */
export function renderBgp(report: BgpReport, format: OutputFormat): string {
  if (format === "json") return JSON.stringify(report.rows, null, 2);
  const head = report.configurations.map(configurationLine);
  const state = (r: BgpRow) => r.stale ? "stale" : r.state;
  let table: string;
  if (report.rows.length === 0) {
    table = NO_BGP_NODES;
  } else if (format === "wide") {
    table = alignedTable(
      [
        "NODE",
        "ROUTER-ID",
        "PEER",
        "PEER-AS",
        "LOCAL-AS",
        "STATE",
        "UP-SINCE",
        "SENT",
        "RECEIVED",
        "DESCRIPTION",
        "LAST-UPDATED",
        "REASON",
      ],
      report.rows.map((r) => [
        r.node,
        r.routerID,
        r.peer,
        text(r.peerAS),
        text(r.localAS),
        state(r),
        r.upFor,
        text(r.prefixesSent),
        text(r.prefixesReceived),
        r.description,
        r.updatedAgo,
        r.reason,
      ]),
    );
  } else {
    table = alignedTable(
      ["NODE", "ROUTER-ID", "PEER", "PEER-AS", "STATE", "UP-SINCE", "SENT", "REASON"],
      report.rows.map((r) => [
        r.node,
        r.routerID,
        r.peer,
        text(r.peerAS),
        state(r),
        r.upFor,
        text(r.prefixesSent),
        r.reason,
      ]),
    );
  }
  return head.length === 0 ? table : `${head.join("\n")}\n\n${table}`;
}
