/**
 * Cluster membership from per-node Leases, as plain records: which nodes are live, which of
 * them can announce an address (their published subnets contain it), the `purelb.io/subnets`
 * annotation text, and when a node must stop announcing because it could not renew.
 * Pure: the agent maps Lease objects to {@link NodeLeaseRecord}s.
 *
 * @module
 */
import { type Cidr, parseCidr, tryParseAddress } from "../ipam/mod.ts";

/**
 * What the election needs from one node's Lease.
 *
 * @example
 * ```ts
 * const record: NodeLeaseRecord = {
 *   nodeName: "node-a",
 *   renewTimeMs: Date.parse("2024-01-01T00:00:00Z"),
 *   leaseDurationMs: 15_000,
 *   subnets: ["192.0.2.0/24", "2001:db8:1::/64"],
 * };
 * ```
 */
export interface NodeLeaseRecord {
  /** The node that holds the Lease. */
  readonly nodeName: string;
  /** Last renewal, milliseconds since the epoch. */
  readonly renewTimeMs: number;
  /** How long a renewal keeps the node live, in milliseconds. */
  readonly leaseDurationMs: number;
  /** CIDRs the node published (see {@link parseSubnetsAnnotation}). */
  readonly subnets: readonly string[];
}

/**
 * The records whose Lease is live at `nowMs`: renewTime + duration > now.
 *
 * @example
 * ```ts
 * liveNodes([{ nodeName: "a", renewTimeMs: 0, leaseDurationMs: 10, subnets: [] }], 5).length; // 1
 * liveNodes([{ nodeName: "a", renewTimeMs: 0, leaseDurationMs: 10, subnets: [] }], 10).length; // 0
 * ```
 */
export function liveNodes<T extends NodeLeaseRecord>(
  records: readonly T[],
  nowMs: number,
): readonly T[] {
  return records.filter((record) => record.renewTimeMs + record.leaseDurationMs > nowMs);
}

/**
 * Names of the nodes (sorted, each once) whose published subnets contain `address`. Entries
 * that are not CIDRs and addresses that are not addresses match nothing.
 *
 * @example
 * ```ts
 * candidatesFor("192.0.2.10", [
 *   { nodeName: "a", renewTimeMs: 0, leaseDurationMs: 10, subnets: ["192.0.2.0/24"] },
 *   { nodeName: "b", renewTimeMs: 0, leaseDurationMs: 10, subnets: ["198.51.100.0/24"] },
 * ]); // ["a"]
 * ```
 */
export function candidatesFor(
  address: string,
  liveRecords: readonly NodeLeaseRecord[],
): readonly string[] {
  const parsed = tryParseAddress(address);
  if (parsed === undefined) return [];
  const names = new Set<string>();
  for (const record of liveRecords) {
    for (const subnet of record.subnets) {
      const cidr = tryParseCidr(subnet);
      if (
        cidr !== undefined && cidr.family === parsed.family &&
        cidr.network.firstValue <= parsed.value && parsed.value <= cidr.network.lastValue
      ) {
        names.add(record.nodeName);
        break;
      }
    }
  }
  return [...names].sort();
}

function tryParseCidr(text: string): Cidr | undefined {
  const known = recentCidrs.get(text);
  if (known !== undefined) return known ?? undefined;
  let cidr: Cidr | undefined;
  try {
    cidr = parseCidr(text);
  } catch {
    cidr = undefined;
  }
  if (recentCidrs.size >= RECENT_CIDRS_LIMIT) recentCidrs.clear();
  recentCidrs.set(text, cidr ?? null);
  return cidr;
}

/**
 * Subnet texts parsed lately (`null`: not a CIDR). Every decision matches every address with
 * every node's published subnets; the nodes publish the same few subnets.
 */
const recentCidrs = new Map<string, Cidr | null>();
const RECENT_CIDRS_LIMIT = 1_024;

/** The subnets of a `purelb.io/subnets` annotation, and the entries that were not CIDRs. */
export interface ParsedSubnets {
  /** Canonical network CIDRs (host bits cleared), sorted, each once. */
  readonly subnets: readonly string[];
  /** Entries that are not CIDRs, as written (trimmed). */
  readonly invalid: readonly string[];
}

/**
 * Parses the comma separated `purelb.io/subnets` annotation. Whitespace around entries and
 * empty entries are ignored; the result is canonical and sorted.
 *
 * @example
 * ```ts
 * parseSubnetsAnnotation(" 2001:DB8:1::5/64,192.0.2.7/24 ,x");
 * // { subnets: ["192.0.2.0/24", "2001:db8:1::/64"], invalid: ["x"] }
 * ```
 */
export function parseSubnetsAnnotation(text: string): ParsedSubnets {
  const subnets = new Set<string>();
  const invalid: string[] = [];
  for (const entry of text.split(",")) {
    const trimmed = entry.trim();
    if (trimmed === "") continue;
    const cidr = tryParseCidr(trimmed);
    if (cidr === undefined) invalid.push(trimmed);
    else subnets.add(cidr.toString());
  }
  return { subnets: [...subnets].sort(), invalid };
}

/**
 * Thrown by {@link formatSubnetsAnnotation} when an entry is not a CIDR.
 *
 * @example
 * ```ts
 * try { formatSubnetsAnnotation(["x"]); } catch (e) {
 *   if (e instanceof SubnetsAnnotationError) console.log(e.invalid); // ["x"]
 * }
 * ```
 */
export class SubnetsAnnotationError extends Error {
  /** The entries that are not CIDRs. */
  readonly invalid: readonly string[];

  /** Builds the error; the message lists the entries. */
  constructor(invalid: readonly string[]) {
    super(`not CIDRs, cannot publish them in purelb.io/subnets: ${invalid.join(", ")}`);
    this.name = "SubnetsAnnotationError";
    this.invalid = invalid;
  }
}

/**
 * The `purelb.io/subnets` annotation text for `cidrs`: canonical network CIDRs, sorted,
 * each once, comma separated. Throws {@link SubnetsAnnotationError} listing entries that are
 * not CIDRs.
 *
 * @example
 * ```ts
 * formatSubnetsAnnotation(["2001:db8:1::11/64", "192.0.2.11/24"]); // "192.0.2.0/24,2001:db8:1::/64"
 * ```
 */
export function formatSubnetsAnnotation(cidrs: readonly string[]): string {
  const parsed = parseSubnetsAnnotation(cidrs.join(","));
  const invalid = cidrs.filter((cidr) => tryParseCidr(cidr) === undefined);
  if (invalid.length > 0) throw new SubnetsAnnotationError(invalid);
  return parsed.subnets.join(",");
}

/**
 * True when the node has not renewed its own Lease for a full duration: it may be cut off
 * from the API, others may already have taken its addresses, so it must withdraw them.
 *
 * @example
 * ```ts
 * shouldSelfFence(1_000, 15_000, 15_999); // false
 * shouldSelfFence(1_000, 15_000, 16_000); // true
 * ```
 */
export function shouldSelfFence(
  lastSuccessfulRenewMs: number,
  leaseDurationMs: number,
  nowMs: number,
): boolean {
  return nowMs - lastSuccessfulRenewMs >= leaseDurationMs;
}
