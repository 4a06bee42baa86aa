/**
 * ServiceGroup status (beyond PureLB): a `Valid` condition with the reason, and the addresses in
 * use and free per family. Pure: computes the status and whether it differs from what is stored.
 *
 * @module
 */

import type { KubernetesObject } from "@kubernetes/client-node";
import type { FamilyStats, IpFamily } from "../ipam/mod.ts";
import type { GroupReport } from "./allocator.ts";
import type { Condition, FamilyUsage, ServiceGroupStatus } from "../k8s/types.ts";

/**
 * The usage of one family as written: `null` removes a field (a Netbox group has no size and no
 * free count) or, for the whole family, a family the group no longer has.
 */
export type FamilyUsagePatch = {
  readonly [K in keyof FamilyUsage]-?: FamilyUsage[K] | null;
};

/** The status the allocator writes (a JSON merge patch). */
export type ServiceGroupStatusPatch =
  & Omit<ServiceGroupStatus, "ipv4" | "ipv6" | "boundNamespaces" | "outOfScope">
  & {
    readonly ipv4: FamilyUsagePatch | null;
    readonly ipv6: FamilyUsagePatch | null;
    /** Present when the report or the stored status has it (`null` removes it). */
    readonly boundNamespaces?: readonly string[] | null;
    readonly outOfScope?: number | null;
  };

/** A ServiceGroup as read from the API. */
export type ServiceGroupObject = KubernetesObject & {
  readonly spec?: unknown;
  readonly status?: ServiceGroupStatus;
};

/** How the last call to a Netbox group's Netbox went: the `NetboxAvailable` condition. */
export interface NetboxHealth {
  readonly available: boolean;
  /** CamelCase, e.g. `Answering`, `Timeout`, `Unauthorized`. */
  readonly reason: string;
  readonly message: string;
}

/** The condition type that reports a Netbox group's last call to Netbox. */
export const NETBOX_CONDITION = "NetboxAvailable";

/**
 * The status `report` calls for, whether it differs from `sg.status`, and whether the group has
 * just become invalid (worth a `ParseFailed` event). For a Netbox group, `netbox` adds the
 * `NetboxAvailable` condition.
 */
export function groupStatusOf(
  sg: ServiceGroupObject,
  report: GroupReport,
  now: Date,
  netbox?: NetboxHealth,
): { status: ServiceGroupStatusPatch; changed: boolean; becameInvalid: boolean } {
  const generation = sg.metadata?.generation;
  const condition = (type: string, status: "True" | "False", reason: string, message: string) => {
    const previous = sg.status?.conditions?.find((c) => c.type === type);
    const result: Condition = {
      type,
      status,
      reason,
      message,
      lastTransitionTime: previous?.status !== status || !previous
        ? now.toISOString().replace(/\.\d+Z$/, "Z")
        : previous.lastTransitionTime,
      ...(generation === undefined ? {} : { observedGeneration: generation }),
    };
    return result;
  };
  const valid = report.kind === "invalid"
    ? condition("Valid", "False", "ParseFailed", report.errors.join("; "))
    : condition("Valid", "True", "Valid", validMessage(report));
  const conditions = [valid];
  if (report.kind === "netbox" && netbox !== undefined) {
    conditions.push(
      condition(
        NETBOX_CONDITION,
        netbox.available ? "True" : "False",
        netbox.reason,
        netbox.message,
      ),
    );
  }
  const usage = (family: IpFamily): FamilyUsagePatch | null => {
    if (report.kind === "netbox") return { size: null, inUse: report.inUse[family], free: null };
    if (report.kind !== "valid" || !report.families.includes(family)) return null;
    const stats: FamilyStats = report.stats[family];
    return { size: stats.size.toString(), inUse: stats.inUse, free: stats.free.toString() };
  };
  const stored = sg.status ?? {};
  // The tenancy fields appear only in clusters that use namespace rules (and leave with them).
  const tenancy = (key: "boundNamespaces" | "outOfScope") =>
    report[key] !== undefined
      ? { [key]: report[key] }
      : stored[key] === undefined
      ? {}
      : { [key]: null };
  const status: ServiceGroupStatusPatch = {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions,
    ipv4: usage("IPv4"),
    ipv6: usage("IPv6"),
    ...tenancy("boundNamespaces"),
    ...tenancy("outOfScope"),
  };
  const changed = JSON.stringify(comparable(stored)) !== JSON.stringify(comparable(status));
  const previousValid = sg.status?.conditions?.find((c) => c.type === "Valid");
  const becameInvalid = valid.status === "False" &&
    (previousValid?.status !== "False" || previousValid.message !== valid.message);
  return { status, changed, becameInvalid };
}

function validMessage(report: Exclude<GroupReport, { kind: "invalid" }>): string {
  if (report.kind === "netbox") {
    return `taking addresses from Netbox at ${report.source.url} for tenant ${report.source.tenant}`;
  }
  return report.families.length === 0
    ? "no ranges"
    : `serving ${report.families.join(" and ")} addresses`;
}

function comparable(status: ServiceGroupStatus | ServiceGroupStatusPatch) {
  return {
    observedGeneration: status.observedGeneration ?? null,
    conditions: (status.conditions ?? []).map((c) => [
      c.type,
      c.status,
      c.reason,
      c.message,
      c.observedGeneration ?? null,
    ]),
    ipv4: comparableUsage(status.ipv4),
    ipv6: comparableUsage(status.ipv6),
    boundNamespaces: status.boundNamespaces ?? null,
    outOfScope: status.outOfScope ?? null,
  };
}

/** Usage with absent and `null` fields alike (a merge patch's `null` removes the field). */
function comparableUsage(usage: FamilyUsage | FamilyUsagePatch | null | undefined) {
  if (usage === null || usage === undefined) return null;
  return [usage.size ?? null, usage.inUse ?? null, usage.free ?? null];
}
