/**
 * `kubectl purelb pools` (pure): the ServiceGroups of the PureLB namespace with the status the
 * allocator writes: validity, addresses in use, size and free per family, bound namespaces and
 * allocations outside the namespace rules.
 *
 * @module
 */

import { isRecord } from "../json/mod.ts";
import type { FamilyUsage } from "../k8s/types.ts";
import type { ServiceGroupItem } from "./api.ts";
import { alignedTable, type OutputFormat } from "./status.ts";

/** One ServiceGroup's line. */
export interface PoolRow {
  readonly name: string;
  /** `local`, `netbox`, or empty when the spec has neither. */
  readonly source: string;
  /** `True`, `False`, or `Unknown` before the allocator has looked at the group. */
  readonly valid: "True" | "False" | "Unknown";
  /** The Valid condition's message (the field errors of an invalid group). */
  readonly message: string;
  readonly ipv4: FamilyUsage | undefined;
  readonly ipv6: FamilyUsage | undefined;
  readonly boundNamespaces: readonly string[];
  readonly outOfScope: number;
}

/**
 * The rows, by group name.
 *
 * @example
 * ```ts
 * const rows = poolRows([{
 *   metadata: { name: "default" },
 *   spec: { local: {} },
 *   status: { ipv4: { inUse: 2, size: "11", free: "9" } },
 * }]);
 * rows[0]?.valid; // "Unknown"
 * ```
 */
export function poolRows(groups: readonly ServiceGroupItem[]): PoolRow[] {
  return groups.map((group): PoolRow => {
    const spec = group.spec;
    const source = isRecord(spec)
      ? spec["local"] !== undefined ? "local" : spec["netbox"] !== undefined ? "netbox" : ""
      : "";
    const condition = group.status?.conditions?.find((c) => c.type === "Valid");
    const valid = condition?.status === "True" || condition?.status === "False"
      ? condition.status
      : "Unknown";
    return {
      name: group.metadata?.name ?? "",
      source,
      valid,
      message: condition?.message ?? "",
      ipv4: group.status?.ipv4,
      ipv6: group.status?.ipv6,
      boundNamespaces: group.status?.boundNamespaces ?? [],
      outOfScope: group.status?.outOfScope ?? 0,
    };
  }).sort((a, b) => a.name.localeCompare(b.name));
}

/** `inUse/size`, with `?` for a size nobody knows (Netbox); empty for a family the group lacks. */
function usage(family: FamilyUsage | undefined): string {
  if (family === undefined) return "";
  return `${family.inUse ?? 0}/${family.size ?? "?"}`;
}

/**
 * The rows as a table (`wide` adds free counts and the Valid message) or JSON.
 *
 * @example
 * ```ts
 * declare const rows: readonly PoolRow[];
 * console.log(renderPools(rows, "table"));
 * // NAME     SOURCE  VALID  IPV4   IPV6   BOUND  OUT-OF-SCOPE
 * // default  local   True   2/11   0/11   -      0
 * ```
 */
export function renderPools(rows: readonly PoolRow[], format: OutputFormat): string {
  if (format === "json") return JSON.stringify(rows, null, 2);
  const header = ["NAME", "SOURCE", "VALID", "IPV4", "IPV6", "BOUND", "OUT-OF-SCOPE"];
  const line = (r: PoolRow) => [
    r.name,
    r.source,
    r.valid,
    usage(r.ipv4),
    usage(r.ipv6),
    r.boundNamespaces.join(","),
    String(r.outOfScope),
  ];
  if (format === "wide") {
    return alignedTable(
      [...header, "IPV4-FREE", "IPV6-FREE", "MESSAGE"],
      rows.map((r) => [...line(r), r.ipv4?.free ?? "", r.ipv6?.free ?? "", r.message]),
    );
  }
  return alignedTable(header, rows.map(line));
}
