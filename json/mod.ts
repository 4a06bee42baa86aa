/**
 * Narrowing untyped JSON (API objects, `ip -json` output, Netbox answers) without casts: is it an
 * object, and what to call it in an error message when it is not what was expected.
 *
 * @example
 * ```ts
 * import { isRecord, jsonTypeName } from "./mod.ts";
 *
 * const parsed: unknown = JSON.parse('{"spec": [1]}');
 * if (!isRecord(parsed) || isRecord(parsed.spec)) throw new Error("unexpected");
 * if (jsonTypeName(parsed.spec) !== "a list") throw new Error(jsonTypeName(parsed.spec));
 * ```
 *
 * @module
 */

/** True for a JSON object (not null, not a list). */
export function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The JSON type of `value` as a message says it: "an object", "a list", "a string", "null". */
export function jsonTypeName(value: unknown): string {
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
