/**
 * What a decision reads from the PureLB objects besides the Services: the settings of the
 * LBNodeAgent that applies to this node, the ranges of the local ServiceGroups, and the
 * explicit aggregations of the Netbox ServiceGroups. Pure.
 *
 * @module
 */

import type { LBNodeAgent } from "../k8s/types.ts";
import { parseServiceGroupSpec, type PoolRange } from "../ipam/mod.ts";
import {
  compileLabelSelector,
  type Labels,
  selectorMatches,
  selectsEverything,
} from "../k8s/selector.ts";
import type { AnnounceSettings } from "./announce.ts";

/** The settings of the applying LBNodeAgent, and its name. */
export type AgentSettings = AnnounceSettings & { readonly from: string };

/** An LBNodeAgent whose node selector cannot be used: it selects no node. */
export interface SelectorProblem {
  /** The LBNodeAgent's name. */
  readonly agent: string;
  /** What is wrong, naming the field. */
  readonly problem: string;
}

/**
 * Which LBNodeAgent a node uses: `selected` (with its settings), `notSelected` (LBNodeAgents
 * with `spec.local` exist but none selects the node) or `none` (there is no LBNodeAgent with
 * `spec.local`). `problems` lists the LBNodeAgents left out for a malformed selector.
 */
export type NodeAgentChoice =
  & (
    | { readonly kind: "selected"; readonly settings: AgentSettings }
    | { readonly kind: "notSelected"; readonly candidates: readonly string[] }
    | { readonly kind: "none" }
  )
  & { readonly problems: readonly SelectorProblem[] };

/**
 * The LBNodeAgent a node with `nodeLabels` uses, with defaults filled in: of those with
 * `spec.local` whose `spec.nodeSelector` selects the node, one with a specific selector before
 * one without a selector (or with an empty one), then the first by name. The list's order does
 * not matter. A malformed selector selects no node (and is reported in `problems`).
 *
 * @example
 * ```ts
 * import { applyingSettings } from "./settings.ts";
 * import type { LBNodeAgent } from "../k8s/types.ts";
 *
 * const lbna = (name: string, spec: LBNodeAgent["spec"]): LBNodeAgent => ({
 *   apiVersion: "purelb.io/v1", kind: "LBNodeAgent", metadata: { name }, spec,
 * });
 * const agents = [
 *   lbna("all", { local: {} }),
 *   lbna("edge", { local: { localint: "eth1" }, nodeSelector: { matchLabels: { role: "edge" } } }),
 * ];
 * applyingSettings(agents, { role: "edge" }); // kind "selected", settings.from "edge"
 * applyingSettings(agents, {}); // kind "selected", settings.from "all"
 * applyingSettings(agents.slice(1), {}); // kind "notSelected", candidates ["edge"]
 * ```
 */
export function applyingSettings(
  agents: readonly LBNodeAgent[],
  nodeLabels: Labels,
): NodeAgentChoice {
  const problems: SelectorProblem[] = [];
  const matching: { readonly agent: LBNodeAgent; readonly specific: boolean }[] = [];
  const candidates: string[] = [];
  for (const agent of agents) {
    if (agent.spec.local === undefined) continue;
    candidates.push(agent.metadata.name);
    const reading = compileLabelSelector(agent.spec.nodeSelector, "spec.nodeSelector");
    if (reading.kind === "invalid") {
      problems.push({ agent: agent.metadata.name, problem: reading.problem });
      continue;
    }
    if (selectorMatches(reading.selector, nodeLabels)) {
      matching.push({ agent, specific: !selectsEverything(reading.selector) });
    }
  }
  const byName = (a: string, b: string) => a < b ? -1 : a > b ? 1 : 0;
  problems.sort((a, b) => byName(a.agent, b.agent));
  matching.sort((a, b) =>
    a.specific !== b.specific
      ? (a.specific ? -1 : 1)
      : byName(a.agent.metadata.name, b.agent.metadata.name)
  );
  const first = matching[0]?.agent;
  const local = first?.spec.local;
  if (first === undefined || local === undefined) {
    return candidates.length === 0
      ? { kind: "none", problems }
      : { kind: "notSelected", candidates: candidates.sort(byName), problems };
  }
  return {
    kind: "selected",
    settings: {
      from: first.metadata.name,
      localInterface: local.localint || "default",
      dummyInterface: local.extlbint || "kube-lb0",
      sendGarp: local.sendgarp ?? false,
    },
    problems,
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
