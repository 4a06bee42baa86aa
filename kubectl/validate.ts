/**
 * `kubectl purelb validate -f FILE` (pure): every ServiceGroup of a YAML text through the
 * allocator's own parser, offline. A group's errors are the field messages the allocator puts
 * into its `ParseFailed` condition; groups of the file whose ranges overlap lose as they would
 * in the cluster (earlier in the file counts as older, unless they carry creation timestamps).
 *
 * @module
 */

import { parseAllDocuments } from "yaml";
import { isRecord } from "../json/mod.ts";
import { findGroupOverlaps, type GroupRanges, parseServiceGroupSpec } from "../ipam/mod.ts";
import { PURELB_API_VERSION, SERVICE_GROUP_KIND } from "../k8s/types.ts";
import type { OutputFormat } from "./status.ts";

/** The verdict on one ServiceGroup of the file. */
export interface GroupVerdict {
  readonly name: string;
  readonly namespace: string;
  /** 1-based position of its document in the file. */
  readonly document: number;
  readonly valid: boolean;
  /** Field errors, as in the allocator's `ParseFailed` condition (joined there with "; "). */
  readonly errors: readonly string[];
}

/** Everything found in the file. */
export interface ValidationReport {
  readonly groups: readonly GroupVerdict[];
  /** Problems of the file itself: YAML errors, no ServiceGroup at all (the command fails). */
  readonly problems: readonly string[];
  /** Documents of other kinds, left out (the command does not fail for them). */
  readonly skipped: readonly string[];
}

/**
 * Validates every ServiceGroup in `text` (one or more YAML documents; a `List` is opened).
 *
 * @example
 * ```ts
 * const report = validateServiceGroups(
 *   "apiVersion: purelb.io/v1\nkind: ServiceGroup\nmetadata: {name: x}\n" +
 *     "spec: {local: {v4pools: [{pool: 10.0.0.5, subnet: 10.0.0.0/24}]}}\n",
 *   "x.yaml",
 * );
 * report.groups[0]?.valid; // false
 * ```
 */
export function validateServiceGroups(text: string, source: string): ValidationReport {
  const problems: string[] = [];
  const skipped: string[] = [];
  const found: { object: Record<string, unknown>; document: number }[] = [];
  parseAllDocuments(text).forEach((document, index) => {
    const number = index + 1;
    if (document.errors.length > 0) {
      problems.push(
        `${source}: document ${number}: ${document.errors.map((e) => e.message).join("; ")}`,
      );
      return;
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return;
    const objects = isRecord(value) && value["kind"] === "List" && Array.isArray(value["items"])
      ? value["items"]
      : [value];
    for (const object of objects) {
      if (!isRecord(object)) {
        problems.push(`${source}: document ${number} is not an object`);
      } else if (object["kind"] !== SERVICE_GROUP_KIND) {
        skipped.push(
          `${source}: document ${number} is a ${String(object["kind"] ?? "(no kind)")}, ` +
            `not a ServiceGroup: skipped`,
        );
      } else {
        found.push({ object, document: number });
      }
    }
  });
  const parsed = found.map(({ object, document }, index) => {
    const metadata = isRecord(object["metadata"]) ? object["metadata"] : {};
    const name = typeof metadata["name"] === "string" ? metadata["name"] : "";
    const namespace = typeof metadata["namespace"] === "string" ? metadata["namespace"] : "";
    const errors: string[] = [];
    if (object["apiVersion"] !== PURELB_API_VERSION) {
      errors.push(
        `apiVersion: "${String(object["apiVersion"] ?? "")}" is not ${PURELB_API_VERSION}`,
      );
    }
    if (name === "") errors.push("metadata.name: missing");
    const result = parseServiceGroupSpec(object["spec"]);
    if (result.kind === "invalid") errors.push(...result.errors.map((e) => e.message));
    const stamp = typeof metadata["creationTimestamp"] === "string"
      ? metadata["creationTimestamp"]
      : new Date(index * 1000);
    const ranges: GroupRanges | undefined =
      result.kind === "valid" && result.source.kind === "local"
        ? {
          name: `${namespace}/${name}`,
          creationTimestamp: stamp,
          ranges: result.source.pool.ranges,
        }
        : undefined;
    return { name, namespace, document, errors, ranges };
  });
  const overlaps = new Map(
    findGroupOverlaps(parsed.flatMap((p) => p.ranges === undefined ? [] : [p.ranges])).map((o) => [
      o.name,
      o.message.replace(/ServiceGroup [^/]*\//, "ServiceGroup "),
    ]),
  );
  const groups = parsed.map((p): GroupVerdict => {
    const overlap = overlaps.get(`${p.namespace}/${p.name}`);
    const errors = overlap === undefined ? p.errors : [...p.errors, overlap];
    return {
      name: p.name,
      namespace: p.namespace,
      document: p.document,
      valid: errors.length === 0,
      errors,
    };
  });
  if (groups.length === 0 && problems.length === 0) {
    problems.push(`${source}: no ServiceGroup found`);
  }
  return { groups, problems, skipped };
}

/** True when the file has an invalid group or a problem (the command exits 1). */
export function hasErrors(report: ValidationReport): boolean {
  return report.problems.length > 0 || report.groups.some((g) => !g.valid);
}

/**
 * The report as text (one line per group, its errors indented below) or JSON.
 *
 * @example
 * ```ts
 * declare const report: ValidationReport;
 * console.log(renderValidation(report, "table"));
 * // servicegroup/default: valid
 * ```
 */
export function renderValidation(report: ValidationReport, format: OutputFormat): string {
  if (format === "json") return JSON.stringify(report, null, 2);
  const lines: string[] = [];
  for (const group of report.groups) {
    const where = format === "wide"
      ? ` (document ${group.document}${group.namespace ? `, namespace ${group.namespace}` : ""})`
      : "";
    const label = `servicegroup/${group.name || "(no name)"}${where}`;
    if (group.valid) {
      lines.push(`${label}: valid`);
    } else {
      lines.push(`${label}: invalid`);
      for (const error of group.errors) lines.push(`  ${error}`);
    }
  }
  if (format === "wide") lines.push(...report.skipped);
  for (const problem of report.problems) lines.push(problem);
  return lines.join("\n");
}
