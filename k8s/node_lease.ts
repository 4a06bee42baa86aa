/**
 * Reading the agents' node Leases (`purelb-node-<node>`), for the agent's election and the
 * allocator's announcing annotations alike: the cached view of one (a transform) and its timing.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { slimMetadata } from "./slim.ts";
import { NODE_LEASE_PREFIX } from "./types.ts";

/** Who holds a node Lease and until when it is live. */
export interface NodeLeaseTiming {
  readonly nodeName: string;
  readonly renewTimeMs: number;
  readonly leaseDurationMs: number;
}

/**
 * A node Lease as cached: name, namespace, the holder, renew time and duration, and only the
 * annotation `annotation`; `undefined` for a Lease that is not a node Lease.
 *
 * @example
 * ```ts
 * nodeLeaseView({ metadata: { name: "purelb-allocator", namespace: "purelb-system" } }, "a/b");
 * // undefined
 * ```
 */
export function nodeLeaseView(lease: V1Lease, annotation: string): V1Lease | undefined {
  const metadata = slimMetadata(lease.metadata);
  if (!(metadata.name ?? "").startsWith(NODE_LEASE_PREFIX)) return undefined;
  const value = lease.metadata?.annotations?.[annotation];
  if (value !== undefined) metadata.annotations = { [annotation]: value };
  const spec: NonNullable<V1Lease["spec"]> = {};
  if (lease.spec?.holderIdentity !== undefined) spec.holderIdentity = lease.spec.holderIdentity;
  if (lease.spec?.renewTime !== undefined) spec.renewTime = lease.spec.renewTime;
  if (lease.spec?.leaseDurationSeconds !== undefined) {
    spec.leaseDurationSeconds = lease.spec.leaseDurationSeconds;
  }
  return { metadata, spec };
}

/**
 * The holder and timing of a node Lease, or `undefined` for a Lease that is not a node Lease or
 * has no renew time or duration. The node name is the holder identity, else the name after the
 * prefix.
 *
 * @example
 * ```ts
 * nodeLeaseTiming({
 *   metadata: { name: "purelb-node-a" },
 *   spec: { holderIdentity: "a", renewTime: "2024-01-01T00:00:00.000000Z" as never, leaseDurationSeconds: 6 },
 * }); // { nodeName: "a", renewTimeMs: 1704067200000, leaseDurationMs: 6000 }
 * ```
 */
export function nodeLeaseTiming(lease: V1Lease): NodeLeaseTiming | undefined {
  const name = lease.metadata?.name ?? "";
  if (!name.startsWith(NODE_LEASE_PREFIX)) return undefined;
  // Cached Leases hold renewTime as the API server's text (a MicroTime).
  const renewTimeMs = Date.parse(String(lease.spec?.renewTime ?? ""));
  const seconds = lease.spec?.leaseDurationSeconds;
  if (!Number.isFinite(renewTimeMs) || seconds === undefined || seconds <= 0) return undefined;
  return {
    nodeName: lease.spec?.holderIdentity || name.slice(NODE_LEASE_PREFIX.length),
    renewTimeMs,
    leaseDurationMs: seconds * 1000,
  };
}
