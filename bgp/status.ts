/**
 * What the agent publishes about BGP (pure): a node's `BGPNodeStatus` status from the
 * neighbours it configured and BIRD's session states, and the conditions of a
 * `BGPConfiguration`. Field names are PureLB's.
 *
 * @module
 */

import type { BirdBgpState, RenderedNeighbor } from "./model.ts";

/** A status condition (`metav1.Condition`). */
export interface Condition {
  readonly type: string;
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

/** A condition before its transition time is known. */
export type ConditionFinding = Omit<Condition, "lastTransitionTime">;

/** One entry of `status.neighbors` of a `BGPNodeStatus`. */
export interface NeighborStatus {
  readonly address: string;
  readonly peerASN: number;
  readonly localASN: number;
  /** BIRD's BGP state (`Established`, `Active`, ...), `Disabled` for adminDown, or `NotConfigured`. */
  readonly state: string;
  readonly sessionUpSince?: string;
  readonly prefixesSent: number;
  readonly prefixesReceived: number;
  readonly lastError?: string;
  readonly description?: string;
}

/** A neighbour this node should have but could not configure (e.g. its Secret is missing). */
export interface UnconfiguredNeighbor {
  readonly address: string;
  readonly peerAsn: number;
  readonly localAsn: number;
  readonly problem: string;
}

/** The `status` of a `BGPNodeStatus`. */
export interface NodeBgpStatus {
  readonly nodeName: string;
  readonly routerID: string;
  readonly asn: number;
  readonly neighbors: readonly NeighborStatus[];
  readonly neighborCount: number;
  readonly healthy: boolean;
  readonly conditions: readonly Condition[];
  readonly heartbeatSeconds: number;
  readonly lastUpdated: string;
}

/**
 * BIRD's `Since` column (`timeformat protocol iso long`: `2026-12-02 02:34:05`, the daemon's
 * local time, which is this process's: they share the node) as RFC 3339 UTC.
 *
 * @example
 * ```ts
 * birdSinceToRfc3339("not a time"); // undefined
 * ```
 */
export function birdSinceToRfc3339(since: string): string | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})/.exec(since.trim());
  if (match === null) return undefined;
  const [, year, month, day, hour, minute, second] = match.map(Number);
  if (year === undefined || month === undefined || day === undefined) return undefined;
  const local = new Date(year, month - 1, day, hour ?? 0, minute ?? 0, second ?? 0);
  return Number.isNaN(local.getTime()) ? undefined : `${local.toISOString().slice(0, 19)}Z`;
}

/**
 * Each configured neighbour with its session as BIRD reports it (by protocol name), then the
 * neighbours that could not be configured.
 */
export function neighborStatuses(
  configured: readonly { readonly neighbor: RenderedNeighbor; readonly protocol: string }[],
  globalAsn: number,
  sessions: readonly BirdBgpState[] | undefined,
  unconfigured: readonly UnconfiguredNeighbor[],
): readonly NeighborStatus[] {
  const byName = new Map((sessions ?? []).map((session) => [session.name, session]));
  const statuses: NeighborStatus[] = configured.map(({ neighbor, protocol }) => {
    const session = byName.get(protocol);
    const established = session?.bgpState === "Established";
    const since = established && session !== undefined
      ? birdSinceToRfc3339(session.since)
      : undefined;
    const lastError = session?.lastError;
    return {
      address: neighbor.address,
      peerASN: neighbor.peerAsn,
      localASN: neighbor.localAsn ?? globalAsn,
      state: neighbor.adminDown ? "Disabled" : session?.bgpState ?? "Unknown",
      ...(since === undefined ? {} : { sessionUpSince: since }),
      prefixesSent: prefixesOf(session, "exported"),
      prefixesReceived: prefixesOf(session, "imported"),
      ...(lastError === undefined || established ? {} : { lastError }),
      ...(neighbor.description === undefined ? {} : { description: neighbor.description }),
    };
  });
  for (const neighbor of unconfigured) {
    statuses.push({
      address: neighbor.address,
      peerASN: neighbor.peerAsn,
      localASN: neighbor.localAsn,
      state: "NotConfigured",
      prefixesSent: 0,
      prefixesReceived: 0,
      lastError: neighbor.problem,
    });
  }
  return statuses;
}

/** The prefixes a session sends (`exported`) or received (`imported`), over its channels. */
export function prefixesOf(
  session: BirdBgpState | undefined,
  field: "imported" | "exported",
): number {
  return (session?.channels ?? []).reduce((total, channel) => total + channel[field], 0);
}

/** The `SessionsEstablished` finding: every neighbour not administratively down is up. */
export function sessionsFinding(neighbors: readonly NeighborStatus[]): ConditionFinding {
  const wanted = neighbors.filter((neighbor) => neighbor.state !== "Disabled");
  const down = wanted.filter((neighbor) => neighbor.state !== "Established");
  if (wanted.length === 0) {
    return {
      type: "SessionsEstablished",
      status: "False",
      reason: "NoNeighbors",
      message: "no BGP neighbour applies to this node: nothing is announced by BGP",
    };
  }
  if (down.length === 0) {
    return {
      type: "SessionsEstablished",
      status: "True",
      reason: "AllEstablished",
      message: `${wanted.length} of ${wanted.length} sessions established`,
    };
  }
  return {
    type: "SessionsEstablished",
    status: "False",
    reason: "SessionsDown",
    message: `${down.length} of ${wanted.length} sessions not established: ${
      down.map((neighbor) =>
        `${neighbor.address} ${neighbor.state}${
          neighbor.lastError === undefined ? "" : ` (${neighbor.lastError})`
        }`
      ).join("; ")
    }`,
  };
}

/**
 * The conditions with their transition times: a condition whose status is unchanged keeps
 * the time it last changed; a new or changed one gets `now`.
 */
export function withTransitionTimes(
  previous: readonly Condition[] | undefined,
  findings: readonly ConditionFinding[],
  now: string,
): readonly Condition[] {
  return findings.map((finding) => {
    const before = previous?.find((condition) => condition.type === finding.type);
    const lastTransitionTime = before !== undefined && before.status === finding.status
      ? before.lastTransitionTime
      : now;
    return { ...finding, lastTransitionTime };
  });
}

/**
 * Whether two condition lists say the same (type, status, reason, message, generation),
 * whatever their transition times.
 */
export function sameFindings(
  a: readonly ConditionFinding[] | undefined,
  b: readonly ConditionFinding[],
): boolean {
  if (a === undefined || a.length !== b.length) return false;
  return a.every((x, index) => {
    const y = b[index];
    return y !== undefined && x.type === y.type && x.status === y.status &&
      x.reason === y.reason && x.message === y.message &&
      x.observedGeneration === y.observedGeneration;
  });
}

/** Reads `status.conditions` of an object as listed; anything malformed is left out. */
export function conditionsOf(object: unknown): readonly Condition[] | undefined {
  if (typeof object !== "object" || object === null || !("status" in object)) return undefined;
  const status = object.status;
  if (typeof status !== "object" || status === null || !("conditions" in status)) {
    return undefined;
  }
  const list = status.conditions;
  if (!Array.isArray(list)) return undefined;
  return list.filter((item): item is Condition =>
    typeof item === "object" && item !== null && typeof item.type === "string" &&
    typeof item.status === "string" && typeof item.reason === "string" &&
    typeof item.message === "string" && typeof item.lastTransitionTime === "string"
  );
}
