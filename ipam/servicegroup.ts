/**
 * ServiceGroup spec parsing: every accepted form (v4pools/v6pools lists, legacy v4pool/v6pool
 * entries, legacy top-level pool/subnet/aggregation, netbox) into validated pool ranges, with
 * errors that name the field and the value; and overlap detection between groups.
 *
 * @module
 */
import { isRecord, jsonTypeName } from "../json/mod.ts";
import { addressBits, type IpFamily } from "./address.ts";
import { type AddressRange, type Cidr, parseCidr, parseRange, RangeParseError } from "./range.ts";
import { type Aggregation, createPoolRange, type LocalPoolSpec, type PoolRange } from "./pool.ts";

/**
 * Thrown when an aggregation text is neither `default`, empty, nor `/N` within the family.
 *
 * @example
 * ```ts
 * try { parseAggregation("24"); } catch (e) {
 *   if (e instanceof AggregationParseError) console.log(e.message);
 *   // "24" has no slash; write "/24" or "default"
 * }
 * ```
 */
export class AggregationParseError extends Error {
  /** The text that failed to parse. */
  readonly text: string;
  /** What is wrong, without the text itself. */
  readonly problem: string;

  /** Builds the error; the message is the quoted text followed by the problem. */
  constructor(text: string, problem: string) {
    super(`"${text}" ${problem}`);
    this.name = "AggregationParseError";
    this.text = text;
    this.problem = problem;
  }
}

/**
 * Parses an aggregation: empty or `default` is the subnet's prefix length, `/N` an explicit one
 * (N at most 32 for IPv4, 128 for IPv6; without a family, at most 128).
 * Throws {@link AggregationParseError}.
 *
 * @example
 * ```ts
 * parseAggregation(""); // { kind: "default" }
 * parseAggregation("/32", "IPv4"); // { kind: "prefix", prefixLength: 32 }
 * ```
 */
export function parseAggregation(text: string, family?: IpFamily): Aggregation {
  const trimmed = text.trim();
  if (trimmed === "" || trimmed === "default") return { kind: "default" };
  const bits = family === undefined ? 128 : addressBits(family);
  const allowed = `${family === undefined ? "" : `${family} allows `}/0 to /${bits}`;
  const slashed = /^\/([0-9]+)$/.exec(trimmed);
  if (slashed !== null) {
    const digits = slashed[1] ?? "";
    const prefixLength = Number(digits);
    if (digits.length > 1 && digits.startsWith("0")) {
      throw new AggregationParseError(text, `has a leading zero; write "/${prefixLength}"`);
    }
    if (prefixLength > bits) {
      throw new AggregationParseError(text, `is too long: ${allowed}`);
    }
    return { kind: "prefix", prefixLength };
  }
  if (/^[0-9]+$/.test(trimmed)) {
    throw new AggregationParseError(text, `has no slash; write "/${trimmed}" or "default"`);
  }
  throw new AggregationParseError(text, `is not an aggregation; write "default" or "/N"`);
}

/**
 * A validation failure: the field path, the offending value as text, and a message of the form
 * `field: problem` naming both.
 *
 * @example
 * ```ts
 * const error: FieldError = {
 *   field: "spec.local.v4pools[1].pool",
 *   value: "10.0.0.5",
 *   message: 'spec.local.v4pools[1].pool: "10.0.0.5" is a bare address; write a range A-B or a CIDR',
 * };
 * ```
 */
export interface FieldError {
  /** Path of the field, e.g. `spec.local.v4pools[1].pool`. */
  readonly field: string;
  /** The offending value as text (empty when the field is missing). */
  readonly value: string;
  /** `field: problem`, ready for a condition or an event. */
  readonly message: string;
}

/**
 * A pool range together with the field it was declared in, e.g. `spec.local.v4pools[0]`.
 *
 * @example
 * ```ts
 * import type { PoolRange } from "./pool.ts";
 *
 * declare const poolRange: PoolRange;
 * const declared: DeclaredPoolRange = { ...poolRange, field: "spec.local.v4pool" };
 * ```
 */
export interface DeclaredPoolRange extends PoolRange {
  /** Path of the entry, e.g. `spec.local.v4pools[0]` (`spec.local` for the top-level form). */
  readonly field: string;
}

/** A {@link LocalPoolSpec} whose ranges remember the field they were declared in. */
export interface DeclaredLocalPoolSpec extends LocalPoolSpec {
  /** Ranges in allocation order, each with its field. */
  readonly ranges: readonly DeclaredPoolRange[];
}

/**
 * A ServiceGroup's source of addresses: local ranges (ready for `new LocalPool`) or Netbox.
 *
 * @example
 * ```ts
 * const source: ServiceGroupSource = {
 *   kind: "netbox", url: "https://netbox.example/", tenant: "t", aggregation: { kind: "default" },
 * };
 * ```
 */
export type ServiceGroupSource =
  | {
    readonly kind: "local";
    readonly pool: DeclaredLocalPoolSpec;
  }
  | {
    readonly kind: "netbox";
    readonly url: string;
    readonly tenant: string;
    readonly aggregation: Aggregation;
  };

/**
 * Outcome of parsing a ServiceGroup spec: the source, or every error found.
 *
 * @example
 * ```ts
 * const result = parseServiceGroupSpec({ local: { v4pools: [{ pool: "10.0.0.5" }] } });
 * if (result.kind === "invalid") for (const e of result.errors) console.log(e.message);
 * ```
 */
export type ServiceGroupParseResult =
  | { readonly kind: "valid"; readonly source: ServiceGroupSource }
  | { readonly kind: "invalid"; readonly errors: readonly FieldError[] };

type Fields = Readonly<Record<string, unknown>>;

function describe(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "an object";
  return String(value);
}

class ErrorCollector {
  readonly errors: FieldError[] = [];

  add(field: string, value: unknown, problem: string): void {
    this.errors.push({ field, value: describe(value), message: `${field}: ${problem}` });
  }

  /** Reports a value that is present but not a string; returns it when it is one. */
  optionalString(fields: Fields, key: string, field: string): string | undefined {
    const value = fields[key];
    if (value === undefined) return undefined;
    if (typeof value !== "string") {
      this.add(field, value, `must be a string, not ${jsonTypeName(value)}`);
      return undefined;
    }
    return value;
  }
}

const FAMILY_BY_LIST: Readonly<Record<string, IpFamily>> = {
  v4pools: "IPv4",
  v6pools: "IPv6",
  v4pool: "IPv4",
  v6pool: "IPv6",
};

/**
 * Parses one {pool, subnet, aggregation} entry. `prefix` is the field path of the object
 * (`spec.local` for the legacy top-level form); `family` is the family the entry must have.
 */
function parsePoolEntry(
  entry: Fields,
  prefix: string,
  list: string | undefined,
  errors: ErrorCollector,
): DeclaredPoolRange | undefined {
  const expected = list === undefined ? undefined : FAMILY_BY_LIST[list];
  const poolField = `${prefix}.pool`;
  const subnetField = `${prefix}.subnet`;
  const aggregationField = `${prefix}.aggregation`;
  const poolText = errors.optionalString(entry, "pool", poolField);
  const subnetText = errors.optionalString(entry, "subnet", subnetField);
  const aggregationText = errors.optionalString(entry, "aggregation", aggregationField) ?? "";
  if (entry["pool"] === undefined) errors.add(poolField, "", "is required");
  if (entry["subnet"] === undefined) {
    errors.add(
      subnetField,
      "",
      `is required${list === undefined ? ` when ${poolField} is set` : ""}`,
    );
  }

  let range: AddressRange | undefined;
  if (poolText !== undefined) {
    try {
      range = parseRange(poolText);
    } catch (error) {
      if (!(error instanceof RangeParseError)) throw error;
      errors.add(poolField, poolText, error.message);
    }
  }
  // The subnet is compared with the pool's own family, so a pool in the wrong list with a
  // matching subnet is reported once.
  const family = range?.family ?? expected;
  if (range !== undefined && expected !== undefined && range.family !== expected) {
    errors.add(
      poolField,
      poolText,
      `"${poolText}" is ${range.family}; ${list} holds ${expected} ranges`,
    );
    range = undefined;
  }

  let subnet: Cidr | undefined;
  if (subnetText !== undefined) {
    try {
      subnet = parseCidr(subnetText);
    } catch (error) {
      if (!(error instanceof RangeParseError)) throw error;
      errors.add(subnetField, subnetText, error.message);
    }
  }
  if (subnet !== undefined && family !== undefined && subnet.family !== family) {
    errors.add(
      subnetField,
      subnetText,
      `"${subnetText}" is ${subnet.family}, but the pool is ${family}`,
    );
    subnet = undefined;
  }
  if (range !== undefined && subnet !== undefined && !subnet.network.containsRange(range)) {
    errors.add(
      poolField,
      poolText,
      `"${poolText}" is not inside subnet ${subnet} (${subnetField})`,
    );
    range = undefined;
  }

  let aggregation: Aggregation | undefined;
  try {
    aggregation = parseAggregation(aggregationText, family);
  } catch (error) {
    if (!(error instanceof AggregationParseError)) throw error;
    errors.add(aggregationField, aggregationText, error.message);
  }

  if (range === undefined || subnet === undefined || aggregation === undefined) return undefined;
  return { ...createPoolRange(range, subnet, aggregation), field: prefix };
}

function parseLocal(local: unknown, errors: ErrorCollector): ServiceGroupSource | undefined {
  if (!isRecord(local)) {
    errors.add("spec.local", local, `must be an object, not ${jsonTypeName(local)}`);
    return undefined;
  }
  const before = errors.errors.length;
  const ranges: DeclaredPoolRange[] = [];
  let declared = 0;
  const take = (entry: unknown, prefix: string, list: string | undefined): void => {
    declared++;
    if (!isRecord(entry)) {
      errors.add(
        prefix,
        entry,
        `must be an object with pool and subnet, not ${jsonTypeName(entry)}`,
      );
      return;
    }
    const parsed = parsePoolEntry(entry, prefix, list, errors);
    if (parsed !== undefined) ranges.push(parsed);
  };

  for (const list of ["v6pools", "v4pools"]) {
    const value = local[list];
    if (value === undefined) continue;
    if (!Array.isArray(value)) {
      errors.add(`spec.local.${list}`, value, `must be a list, not ${jsonTypeName(value)}`);
      continue;
    }
    value.forEach((entry: unknown, index) => take(entry, `spec.local.${list}[${index}]`, list));
  }
  for (const single of ["v6pool", "v4pool"]) {
    const value = local[single];
    if (value !== undefined) take(value, `spec.local.${single}`, single);
  }
  if (local["pool"] !== undefined) {
    take(local, "spec.local", undefined);
  } else {
    for (const key of ["subnet", "aggregation"]) {
      if (local[key] !== undefined) {
        errors.optionalString(local, key, `spec.local.${key}`);
        errors.add("spec.local.pool", "", `is required when spec.local.${key} is set`);
      }
    }
  }
  if (declared === 0) {
    errors.add(
      "spec.local",
      "",
      "has no address range; set v4pools, v6pools, v4pool, v6pool or pool",
    );
  }

  const avoidBuggyIPs = local["avoidBuggyIPs"];
  if (avoidBuggyIPs !== undefined && typeof avoidBuggyIPs !== "boolean") {
    errors.add(
      "spec.local.avoidBuggyIPs",
      avoidBuggyIPs,
      `must be true or false, not ${jsonTypeName(avoidBuggyIPs)}`,
    );
  }

  ranges.forEach((entry, index) => {
    const earlier = ranges.slice(0, index).find((other) => other.range.overlaps(entry.range));
    if (earlier !== undefined) {
      errors.add(
        `${entry.field}.pool`,
        entry.range.toString(),
        `range ${entry.range} overlaps ${earlier.field}.pool (${earlier.range})`,
      );
    }
  });

  if (errors.errors.length > before) return undefined;
  return {
    kind: "local",
    pool: typeof avoidBuggyIPs === "boolean" ? { ranges, avoidBuggyIPs } : { ranges },
  };
}

function parseNetbox(netbox: unknown, errors: ErrorCollector): ServiceGroupSource | undefined {
  if (!isRecord(netbox)) {
    errors.add("spec.netbox", netbox, `must be an object, not ${jsonTypeName(netbox)}`);
    return undefined;
  }
  const before = errors.errors.length;
  const url = errors.optionalString(netbox, "url", "spec.netbox.url");
  const tenant = errors.optionalString(netbox, "tenant", "spec.netbox.tenant");
  const aggregationText = errors.optionalString(netbox, "aggregation", "spec.netbox.aggregation");
  if (netbox["url"] === undefined) errors.add("spec.netbox.url", "", "is required");
  if (netbox["tenant"] === undefined) errors.add("spec.netbox.tenant", "", "is required");
  if (url !== undefined && !isHttpUrl(url)) {
    errors.add(
      "spec.netbox.url",
      url,
      `"${url}" is not an http(s) URL such as https://netbox.example/`,
    );
  }
  if (tenant !== undefined && tenant.trim() === "") {
    errors.add("spec.netbox.tenant", tenant, "must not be empty");
  }
  let aggregation: Aggregation = { kind: "default" };
  try {
    aggregation = parseAggregation(aggregationText ?? "");
  } catch (error) {
    if (!(error instanceof AggregationParseError)) throw error;
    errors.add("spec.netbox.aggregation", aggregationText, error.message);
  }
  if (errors.errors.length > before || url === undefined || tenant === undefined) return undefined;
  return { kind: "netbox", url, tenant, aggregation };
}

function isHttpUrl(text: string): boolean {
  if (!URL.canParse(text)) return false;
  const url = new URL(text);
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "";
}

/**
 * Who may use a ServiceGroup (README "Tenancy: who may use a ServiceGroup"): the namespaces it
 * serves, whether it fences them, and whether it is their default among several.
 */
export interface GroupTenancy {
  /** `spec.namespaces`; absent when the group lists none (it then serves no namespace). */
  readonly namespaces?: readonly string[];
  /** `spec.enforceNamespaces`: the listed namespaces are fenced (both ways). */
  readonly enforceNamespaces: boolean;
  /** `spec.namespaceDefault`: the default of its namespaces when several groups serve them. */
  readonly namespaceDefault: boolean;
}

/** Outcome of {@link parseServiceGroupTenancy}. */
export type GroupTenancyResult =
  | { readonly kind: "valid"; readonly tenancy: GroupTenancy }
  | { readonly kind: "invalid"; readonly errors: readonly FieldError[] };

/** At most this many entries in `spec.namespaces` (as the CRD says). */
export const MAX_GROUP_NAMESPACES = 1024;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/**
 * Reads `spec.namespaces`, `spec.enforceNamespaces` and `spec.namespaceDefault` of a ServiceGroup
 * spec (untyped JSON). Errors name the field: a namespace that is not a DNS label, more than
 * {@link MAX_GROUP_NAMESPACES} of them, a repeated one, a flag that is not a boolean, or a flag
 * set to true without `spec.namespaces`. A spec that is not an object has no tenancy fields.
 *
 * @example
 * ```ts
 * const result = parseServiceGroupTenancy({ enforceNamespaces: true });
 * if (result.kind === "invalid") console.log(result.errors[0]?.message);
 * // spec.enforceNamespaces: needs spec.namespaces (the namespaces to fence)
 * ```
 */
export function parseServiceGroupTenancy(spec: unknown): GroupTenancyResult {
  const errors = new ErrorCollector();
  if (!isRecord(spec)) {
    return { kind: "valid", tenancy: { enforceNamespaces: false, namespaceDefault: false } };
  }
  let namespaces: string[] | undefined;
  const listed = spec["namespaces"];
  if (listed !== undefined) {
    if (!Array.isArray(listed)) {
      errors.add("spec.namespaces", listed, `must be a list, not ${jsonTypeName(listed)}`);
    } else {
      if (listed.length > MAX_GROUP_NAMESPACES) {
        errors.add(
          "spec.namespaces",
          `${listed.length} entries`,
          `has ${listed.length} entries; at most ${MAX_GROUP_NAMESPACES} are allowed`,
        );
      }
      namespaces = [];
      const seen = new Set<string>();
      listed.forEach((entry: unknown, index) => {
        const field = `spec.namespaces[${index}]`;
        if (typeof entry !== "string") {
          errors.add(field, entry, `must be a namespace name, not ${jsonTypeName(entry)}`);
        } else if (!DNS_LABEL.test(entry)) {
          errors.add(
            field,
            entry,
            `"${entry}" is not a namespace name (a DNS label: at most 63 characters, ` +
              `lower case letters, digits and "-", starting and ending with a letter or digit)`,
          );
        } else if (seen.has(entry)) {
          errors.add(field, entry, `"${entry}" is listed twice`);
        } else {
          seen.add(entry);
          namespaces?.push(entry);
        }
      });
    }
  }
  const flag = (key: string, purpose: string): boolean => {
    const value = spec[key];
    if (value === undefined) return false;
    if (typeof value !== "boolean") {
      errors.add(`spec.${key}`, value, `must be true or false, not ${jsonTypeName(value)}`);
      return false;
    }
    if (value && listed === undefined) {
      errors.add(`spec.${key}`, value, `needs spec.namespaces (${purpose})`);
    }
    return value;
  };
  const enforceNamespaces = flag("enforceNamespaces", "the namespaces to fence");
  const namespaceDefault = flag("namespaceDefault", "the namespaces it is the default of");
  if (errors.errors.length > 0) return { kind: "invalid", errors: errors.errors };
  return {
    kind: "valid",
    tenancy: namespaces === undefined
      ? { enforceNamespaces, namespaceDefault }
      : { namespaces, enforceNamespaces, namespaceDefault },
  };
}

/**
 * Parses a ServiceGroup `spec` as it comes from the API (untyped JSON). Accepts
 * `spec.local.v6pools`/`v4pools` lists, the legacy single `v6pool`/`v4pool` entries and the
 * legacy top-level `pool`/`subnet`/`aggregation`, or `spec.netbox`; the tenancy fields are
 * checked too ({@link parseServiceGroupTenancy} reads them). Ranges come out in
 * allocation order: v6pools, v4pools, v6pool, v4pool, top-level pool. Every error is reported,
 * each naming its field and value.
 *
 * @example
 * ```ts
 * import { LocalPool } from "./pool.ts";
 *
 * const result = parseServiceGroupSpec({
 *   local: { v4pools: [{ pool: "192.0.2.0/28", subnet: "192.0.2.0/24", aggregation: "default" }] },
 * });
 * if (result.kind === "valid" && result.source.kind === "local") {
 *   const pool = new LocalPool("default", result.source.pool);
 * }
 * ```
 */
export function parseServiceGroupSpec(spec: unknown): ServiceGroupParseResult {
  const errors = new ErrorCollector();
  let source: ServiceGroupSource | undefined;
  if (!isRecord(spec)) {
    errors.add("spec", spec, `must be an object, not ${jsonTypeName(spec)}`);
  } else if (spec["local"] !== undefined && spec["netbox"] !== undefined) {
    errors.add(
      "spec",
      "local and netbox",
      "set exactly one of spec.local and spec.netbox, not both",
    );
  } else if (spec["local"] !== undefined) {
    source = parseLocal(spec["local"], errors);
  } else if (spec["netbox"] !== undefined) {
    source = parseNetbox(spec["netbox"], errors);
  } else {
    errors.add("spec", "", "set exactly one of spec.local and spec.netbox");
  }
  const tenancy = parseServiceGroupTenancy(spec);
  if (tenancy.kind === "invalid") errors.errors.push(...tenancy.errors);
  if (source === undefined || errors.errors.length > 0) {
    return { kind: "invalid", errors: errors.errors };
  }
  return { kind: "valid", source };
}

/**
 * A group's identity, age and ranges, as input to {@link findGroupOverlaps}.
 *
 * @example
 * ```ts
 * import type { PoolRange } from "./pool.ts";
 *
 * declare const ranges: readonly PoolRange[];
 * const group: GroupRanges = { name: "default", creationTimestamp: "2024-01-01T00:00:00Z", ranges };
 * ```
 */
export interface GroupRanges {
  /** Unique name (for namespaced groups, the caller may use `namespace/name`). */
  readonly name: string;
  /** `metadata.creationTimestamp`, as RFC 3339 text or a Date. */
  readonly creationTimestamp: string | Date;
  /** The group's ranges (from {@link parseServiceGroupSpec} or built by hand). */
  readonly ranges: readonly (PoolRange | DeclaredPoolRange)[];
}

/**
 * A group made invalid because one of its ranges overlaps a range of an older group.
 *
 * @example
 * ```ts
 * declare const groups: readonly GroupRanges[];
 * for (const overlap of findGroupOverlaps(groups)) console.log(overlap.name, overlap.message);
 * ```
 */
export interface GroupOverlap {
  /** The group that loses (created later, or same time and greater name). */
  readonly name: string;
  /** The older group it collides with. */
  readonly overlapsWith: string;
  /** The losing group's range. */
  readonly range: AddressRange;
  /** The older group's range it overlaps. */
  readonly otherRange: AddressRange;
  /** A sentence naming the field, both ranges and the older group. */
  readonly message: string;
}

function timeOf(timestamp: string | Date): number {
  const millis = timestamp instanceof Date ? timestamp.getTime() : Date.parse(timestamp);
  // An unreadable timestamp sorts last: such a group never pushes out a readable one.
  return Number.isNaN(millis) ? Number.POSITIVE_INFINITY : millis;
}

/**
 * Finds groups whose ranges overlap a range of an older group. Groups are taken oldest first
 * (creationTimestamp, then name); a group that overlaps an already accepted group is invalid
 * and its ranges do not count against younger groups. At most one overlap per losing group.
 *
 * @example
 * ```ts
 * import type { PoolRange } from "./pool.ts";
 *
 * declare const rangesOfA: readonly PoolRange[];
 * declare const rangesOfB: readonly PoolRange[];
 * const overlaps = findGroupOverlaps([
 *   { name: "b", creationTimestamp: "2024-02-01T00:00:00Z", ranges: rangesOfB },
 *   { name: "a", creationTimestamp: "2024-01-01T00:00:00Z", ranges: rangesOfA },
 * ]);
 * overlaps.map((o) => o.name); // ["b"] when they overlap
 * ```
 */
export function findGroupOverlaps(groups: readonly GroupRanges[]): readonly GroupOverlap[] {
  const ordered = [...groups].sort((a, b) => {
    const byTime = timeOf(a.creationTimestamp) - timeOf(b.creationTimestamp);
    if (byTime !== 0 && !Number.isNaN(byTime)) return byTime;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  const accepted: GroupRanges[] = [];
  const overlaps: GroupOverlap[] = [];
  for (const group of ordered) {
    const overlap = firstOverlap(group, accepted);
    if (overlap === undefined) accepted.push(group);
    else overlaps.push(overlap);
  }
  return overlaps;
}

function firstOverlap(
  group: GroupRanges,
  accepted: readonly GroupRanges[],
): GroupOverlap | undefined {
  for (const entry of group.ranges) {
    for (const older of accepted) {
      const other = older.ranges.find((candidate) => candidate.range.overlaps(entry.range));
      if (other === undefined) continue;
      const where = "field" in entry ? `${entry.field}.pool: ` : "";
      return {
        name: group.name,
        overlapsWith: older.name,
        range: entry.range,
        otherRange: other.range,
        message: `${where}range ${entry.range} overlaps range ${other.range} of ServiceGroup ` +
          `${older.name}, which is older`,
      };
    }
  }
  return undefined;
}
