/**
 * What a decision reads from the PureLB objects besides the Services: the applying
 * LBNodeAgent's settings, the ranges of the local ServiceGroups, and the explicit aggregations
 * of the Netbox ServiceGroups. Pure.
 *
 * @module
 */

import type { LBNodeAgent } from "../k8s/types.ts";
import { parseServiceGroupSpec, type PoolRange } from "../ipam/mod.ts";
import type { AnnounceSettings } from "./announce.ts";

/** The settings of the applying LBNodeAgent, and its name. */
export type AgentSettings = AnnounceSettings & { readonly from: string };

/**
 * The first LBNodeAgent (by name) that has `spec.local`, with defaults filled in; `undefined`
 * when there is none.
 *
 * @example
 * ```ts
 * import { applyingSettings } from "./settings.ts";
 *
 * applyingSettings([{ apiVersion: "purelb.io/v1", kind: "LBNodeAgent", metadata: { name: "default" },
 *   spec: { local: { sendgarp: true } } }]);
 * // { from: "default", localInterface: "default", dummyInterface: "kube-lb0", sendGarp: true }
 * ```
 */
export function applyingSettings(agents: readonly LBNodeAgent[]): AgentSettings | undefined {
  const sorted = [...agents].sort((a, b) =>
    a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0
  );
  const first = sorted.find((agent) => agent.spec.local !== undefined);
  const local = first?.spec.local;
  if (first === undefined || local === undefined) return undefined;
  return {
    from: first.metadata.name,
    localInterface: local.localint || "default",
    dummyInterface: local.extlbint || "kube-lb0",
    sendGarp: local.sendgarp ?? false,
  };
}

/**
 * Every range of every valid local ServiceGroup (invalid groups and Netbox groups add none).
 *
 * @example
 * ```ts
 * import { poolRangesOf } from "./settings.ts";
 *
 * poolRangesOf([{ spec: { local: { v4pools: [{ pool: "192.0.2.10/32", subnet: "192.0.2.0/24" }] } } }])
 *   .length; // 1
 * ```
 */
export function poolRangesOf(groups: readonly { readonly spec?: unknown }[]): readonly PoolRange[] {
  const ranges: PoolRange[] = [];
  for (const group of groups) {
    const parsed = parseServiceGroupSpec(group.spec);
    if (parsed.kind === "valid" && parsed.source.kind === "local") {
      ranges.push(...parsed.source.pool.ranges);
    }
  }
  return ranges;
}

/**
 * Per Netbox ServiceGroup whose aggregation is an explicit `/N`: N (for its virtual addresses).
 *
 * @example
 * ```ts
 * import { netboxAggregationsOf } from "./settings.ts";
 *
 * netboxAggregationsOf([{ metadata: { name: "nb" },
 *   spec: { netbox: { url: "https://nb/", tenant: "t", aggregation: "/24" } } }]); // Map { "nb" => 24 }
 * ```
 */
export function netboxAggregationsOf(
  groups: readonly { readonly metadata?: { readonly name?: string }; readonly spec?: unknown }[],
): ReadonlyMap<string, number> {
  const aggregations = new Map<string, number>();
  for (const group of groups) {
    const parsed = parseServiceGroupSpec(group.spec);
    const name = group.metadata?.name;
    if (
      name !== undefined && parsed.kind === "valid" && parsed.source.kind === "netbox" &&
      parsed.source.aggregation.kind === "prefix"
    ) {
      aggregations.set(name, parsed.source.aggregation.prefixLength);
    }
  }
  return aggregations;
}
