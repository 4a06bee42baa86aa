/**
 * `kubectl purelb election ADDRESS` (pure): who announces an address and why every other node
 * does not, with the agents' own election code (live node Leases, published subnets, the
 * SHA-256 ranking).
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { candidatesFor, liveNodes, rankCandidates } from "../election/mod.ts";
import { canonicalAddress } from "../ipam/mod.ts";
import { nodeRecords, type OutputFormat } from "./status.ts";
import { alignedTable } from "./status.ts";

/** Why a node is or is not a candidate for the address. */
export type NodeVerdict =
  | "candidate"
  | "no-lease"
  | "expired"
  | "not-selected"
  | "subnet-mismatch";

/** One node's part in the election of an address. */
export interface ElectionNode {
  readonly node: string;
  /** `none` when the node has no Lease (it is known from the Node list). */
  readonly lease: "live" | "expired" | "none";
  /** Last renewal (RFC 3339), empty without a Lease. */
  readonly renewTime: string;
  readonly subnets: readonly string[];
  readonly verdict: NodeVerdict;
  /** Place in the ranking (1 = winner) for a candidate, 0 otherwise. */
  readonly rank: number;
  /** One sentence for a person. */
  readonly reason: string;
}

/** The election of one address. */
export interface ElectionReport {
  /** The address in canonical form (the election hashes this text). */
  readonly address: string;
  /** `local`: some node publishes a subnet with it, one node announces it; `virtual`: none does. */
  readonly kind: "local" | "virtual";
  /** Candidates in ranking order, the winner first. */
  readonly candidates: readonly string[];
  readonly winner: string | undefined;
  readonly runnerUp: string | undefined;
  /** Every node with a Lease, and nodes without one when the Node list was readable; by name. */
  readonly nodes: readonly ElectionNode[];
}

/** An ADDRESS argument that is not an IP address. */
export class AddressArgumentError extends Error {
  override name = "AddressArgumentError";
}

function secondsAgo(ms: number): string {
  return `${Math.max(0, Math.round(ms / 1000))} s`;
}

/**
 * The election of `address` given the Leases of the PureLB namespace at `nowMs`, and the
 * names of the cluster's Nodes when known (a Node without a Lease runs no agent).
 *
 * @example
 * ```ts
 * const now = Date.now();
 * const lease = (node: string) => ({
 *   metadata: { name: `purelb-node-${node}`, annotations: { "purelb.io/subnets": "192.0.2.0/24" } },
 *   spec: { holderIdentity: node, renewTime: new Date(now).toISOString() as never, leaseDurationSeconds: 10 },
 * });
 * const report = explainElection("192.0.2.10", [lease("node-a"), lease("node-b")], undefined, now);
 * report.winner; // "node-b"
 * ```
 */
export function explainElection(
  address: string,
  leases: readonly V1Lease[],
  nodeNames: readonly string[] | undefined,
  nowMs: number,
): ElectionReport {
  const canonical = canonicalAddress(address.trim());
  if (canonical === undefined) {
    throw new AddressArgumentError(`"${address}" is not an IPv4 or IPv6 address`);
  }
  const records = nodeRecords(leases);
  const live = liveNodes(records, nowMs);
  const candidates = rankCandidates(candidatesFor(canonical, live), canonical);
  const kind = candidatesFor(canonical, records).length > 0 ? "local" : "virtual";
  const nodes: ElectionNode[] = [];
  for (const record of records) {
    const isLive = live.includes(record);
    const base = {
      node: record.nodeName,
      lease: isLive ? "live" as const : "expired" as const,
      renewTime: new Date(record.renewTimeMs).toISOString(),
      subnets: record.subnets,
    };
    const rank = candidates.indexOf(record.nodeName) + 1;
    if (!isLive) {
      const ago = secondsAgo(nowMs - record.renewTimeMs - record.leaseDurationMs);
      nodes.push({
        ...base,
        verdict: "expired",
        rank: 0,
        reason: `Lease expired ${ago} ago (agent stopped or cut off from the API)`,
      });
    } else if (record.subnets.length === 0) {
      nodes.push({
        ...base,
        verdict: "not-selected",
        rank: 0,
        reason: "publishes no subnets: no LBNodeAgent selects this node (or it has no " +
          "interface to announce on); it announces nothing",
      });
    } else if (rank === 0) {
      nodes.push({
        ...base,
        verdict: "subnet-mismatch",
        rank: 0,
        reason: `${canonical} is in none of its subnets`,
      });
    } else {
      nodes.push({
        ...base,
        verdict: "candidate",
        rank,
        reason: rank === 1 ? "winner: lowest hash" : rank === 2 ? "runner-up" : "candidate",
      });
    }
  }
  const withLease = new Set(records.map((r) => r.nodeName));
  for (const name of nodeNames ?? []) {
    if (withLease.has(name)) continue;
    nodes.push({
      node: name,
      lease: "none",
      renewTime: "",
      subnets: [],
      verdict: "no-lease",
      rank: 0,
      reason: "no Lease: no PureLB agent runs on this node (or it stopped gracefully)",
    });
  }
  nodes.sort((a, b) => a.node.localeCompare(b.node));
  return {
    address: canonical,
    kind,
    candidates,
    winner: candidates[0],
    runnerUp: candidates[1],
    nodes,
  };
}

/**
 * The report as text: a summary line and one line per node (`wide` adds the renew time), or
 * JSON.
 *
 * @example
 * ```ts
 * declare const report: ElectionReport;
 * console.log(renderElection(report, "table"));
 * ```
 */
export function renderElection(report: ElectionReport, format: OutputFormat): string {
  if (format === "json") return JSON.stringify(report, null, 2);
  let summary: string;
  if (report.kind === "virtual") {
    const announcing = report.nodes.filter((n) => n.lease === "live" && n.subnets.length > 0);
    summary = `${report.address} is in no node's subnet: a virtual address, on the dummy ` +
      `interface of every announcing node (${announcing.map((n) => n.node).join(", ") || "none"})`;
  } else if (report.winner === undefined) {
    summary = `${report.address}: no live candidate, nobody announces it`;
  } else {
    summary =
      `${report.address}: winner ${report.winner}, runner-up ${report.runnerUp ?? "none"} ` +
      `(${report.candidates.length} candidate(s): ${report.candidates.join(", ")})`;
  }
  const header = ["NODE", "LEASE", "SUBNETS", "CANDIDATE", "RANK", "REASON"];
  const line = (n: ElectionNode) => [
    n.node,
    n.lease,
    n.subnets.join(","),
    n.verdict === "candidate" ? "yes" : "no",
    n.rank === 0 ? "" : String(n.rank),
  ];
  const table = format === "wide"
    ? alignedTable(
      [...header.slice(0, -1), "RENEWED", "REASON"],
      report.nodes.map((n) => [...line(n), n.renewTime, n.reason]),
    )
    : alignedTable(header, report.nodes.map((n) => [...line(n), n.reason]));
  return `${summary}\n\n${table}`;
}
