/**
 * ServiceGroup status (beyond PureLB): a `Valid` condition with the reason, and the addresses in
 * use and free per family. Pure: computes the status and whether it differs from what is stored.
 *
 * @module
 */

import type { KubernetesObject } from "@kubernetes/client-node";
import type { FamilyStats } from "../ipam/mod.ts";
import type { GroupReport } from "./allocator.ts";
import type { Condition, FamilyUsage, ServiceGroupStatus } from "../k8s/types.ts";

/** The status the allocator writes: `null` removes a family the group no longer has. */
export type ServiceGroupStatusPatch = Omit<ServiceGroupStatus, "ipv4" | "ipv6"> & {
  readonly ipv4: FamilyUsage | null;
  readonly ipv6: FamilyUsage | null;
};

/** A ServiceGroup as read from the API. */
export type ServiceGroupObject = KubernetesObject & {
  readonly spec?: unknown;
  readonly status?: ServiceGroupStatus;
};

/**
 * The status `report` calls for, whether it differs from `sg.status`, and whether the group has
 * just become invalid (worth a `ParseFailed` event).
 */
export function groupStatusOf(
  sg: ServiceGroupObject,
  report: GroupReport,
  now: Date,
): { status: ServiceGroupStatusPatch; changed: boolean; becameInvalid: boolean } {
  const generation = sg.metadata?.generation;
  const previous = sg.status?.conditions?.find((c) => c.type === "Valid");
  const [conditionStatus, reason, message] = report.kind === "valid"
    ? ["True", "Valid", validMessage(report)] as const
    : report.kind === "invalid"
    ? ["False", "ParseFailed", report.errors.join("; ")] as const
    : ["False", "Unsupported", report.message] as const;
  const transitioned = previous?.status !== conditionStatus;
  const condition: Condition = {
    type: "Valid",
    status: conditionStatus,
    reason,
    message,
    lastTransitionTime: transitioned || !previous
      ? now.toISOString().replace(/\.\d+Z$/, "Z")
      : previous.lastTransitionTime,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  const usage = (stats: FamilyStats, present: boolean): FamilyUsage | null =>
    present
      ? { size: stats.size.toString(), inUse: stats.inUse, free: stats.free.toString() }
      : null;
  const status: ServiceGroupStatusPatch = {
    ...(generation === undefined ? {} : { observedGeneration: generation }),
    conditions: [condition],
    ipv4: report.kind === "valid"
      ? usage(report.stats.IPv4, report.families.includes("IPv4"))
      : null,
    ipv6: report.kind === "valid"
      ? usage(report.stats.IPv6, report.families.includes("IPv6"))
      : null,
  };
  const stored = sg.status ?? {};
  const changed = JSON.stringify(comparable(stored)) !== JSON.stringify(comparable(status));
  const becameInvalid = conditionStatus === "False" &&
    (previous?.status !== "False" || previous.message !== message);
  return { status, changed, becameInvalid };
}

function validMessage(report: Extract<GroupReport, { kind: "valid" }>): string {
  return report.families.length === 0
    ? "no ranges"
    : `serving ${report.families.join(" and ")} addresses`;
}

function comparable(status: ServiceGroupStatus | ServiceGroupStatusPatch) {
  const condition = status.conditions?.find((c) => c.type === "Valid");
  return {
    observedGeneration: status.observedGeneration ?? null,
    condition: condition
      ? [
        condition.status,
        condition.reason,
        condition.message,
        condition.observedGeneration ?? null,
      ]
      : null,
    ipv4: status.ipv4 ?? null,
    ipv6: status.ipv6 ?? null,
  };
}
