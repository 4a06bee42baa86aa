/**
 * Which node announces each local address of a Service, from the agents' node Leases, in
 * PureLB's wire form for the `purelb.io/announcing-IPv4` / `-IPv6` Service annotations. Pure:
 * the controller feeds it cached Leases and the clock.
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { type NodeLeaseTiming, nodeLeaseTiming, nodeLeaseView } from "../k8s/node_lease.ts";
import { Annotations, ANNOUNCING_ANNOTATION } from "../k8s/types.ts";
import { type AnnouncedAddress, parseAnnouncingAnnotation } from "../election/mod.ts";
import { canonicalAddress, tryParseAddress } from "../ipam/mod.ts";

/** What the allocator reads of one node Lease. */
export interface AnnouncerRecord extends NodeLeaseTiming {
  /** The local addresses the node carries, with their interfaces. */
  readonly entries: readonly AnnouncedAddress[];
}

/** The two Service annotations: their wanted text, `undefined` for none. */
export type AnnouncingValues = Readonly<
  Record<typeof Annotations.announcingIPv4 | typeof Annotations.announcingIPv6, string | undefined>
>;

/**
 * The allocator's view of a Lease of its namespace: for a node Lease, its name, holder, renew
 * time, duration and `purelb.io/announcing` annotation; nothing of any other (the leader Lease
 * is not cached, so its renewals cost nothing).
 *
 * @example
 * ```ts
 * announcingLeaseView({ metadata: { name: "purelb-allocator", namespace: "purelb-system" } });
 * // undefined
 * ```
 */
export function announcingLeaseView(lease: V1Lease): V1Lease | undefined {
  return nodeLeaseView(lease, ANNOUNCING_ANNOTATION);
}

/**
 * The record of a node Lease, or `undefined` for another Lease or one without renew time or
 * duration. The node is the holder identity, else the name after the prefix.
 *
 * @example
 * ```ts
 * announcerRecord({
 *   metadata: { name: "purelb-node-a", annotations: { "purelb.io/announcing": "eth0,192.0.2.5" } },
 *   spec: { holderIdentity: "a", renewTime: "2024-01-01T00:00:00.000000Z" as never, leaseDurationSeconds: 6 },
 * })?.entries; // [{ interfaceName: "eth0", address: "192.0.2.5" }]
 * ```
 */
export function announcerRecord(lease: V1Lease): AnnouncerRecord | undefined {
  const timing = nodeLeaseTiming(lease);
  if (timing === undefined) return undefined;
  const announcing = lease.metadata?.annotations?.[ANNOUNCING_ANNOTATION] ?? "";
  return { ...timing, entries: parseAnnouncingAnnotation(announcing) };
}

/** True while the record's Lease is live: renewTime + duration > now. */
export function isLive(record: AnnouncerRecord, nowMs: number): boolean {
  return record.renewTimeMs + record.leaseDurationMs > nowMs;
}

/**
 * The two annotation values for a Service with `addresses`: per family, the space-separated
 * `node,interface,address` entries of live records naming one of the addresses, sorted;
 * `undefined` when there are none.
 *
 * @example
 * ```ts
 * const now = Date.parse("2024-01-01T00:00:01Z");
 * const record = { nodeName: "b", renewTimeMs: now, leaseDurationMs: 6000,
 *   entries: [{ interfaceName: "eth0", address: "192.0.2.5" }] };
 * announcingValues([record], ["192.0.2.5", "2001:db8::5"], now);
 * // { "purelb.io/announcing-IPv4": "b,eth0,192.0.2.5", "purelb.io/announcing-IPv6": undefined }
 * ```
 */
export function announcingValues(
  records: Iterable<AnnouncerRecord>,
  addresses: readonly string[],
  nowMs: number,
): AnnouncingValues {
  const wanted = new Set(addresses.flatMap((a) => canonicalAddress(a) ?? []));
  const v4: string[] = [];
  const v6: string[] = [];
  if (wanted.size > 0) {
    for (const record of records) {
      if (!isLive(record, nowMs)) continue;
      for (const { interfaceName, address } of record.entries) {
        if (!wanted.has(address)) continue;
        const entry = `${record.nodeName},${interfaceName},${address}`;
        (tryParseAddress(address)?.family === "IPv6" ? v6 : v4).push(entry);
      }
    }
  }
  const text = (entries: string[]) =>
    entries.length === 0 ? undefined : [...new Set(entries)].sort().join(" ");
  return {
    [Annotations.announcingIPv4]: text(v4),
    [Annotations.announcingIPv6]: text(v6),
  };
}

/**
 * The addresses whose announcers may differ between two states of one Lease (either may be
 * absent), both judged live or not at `nowMs`: all entries of a side that is live on one side
 * only, else the entries that differ.
 *
 * @example
 * ```ts
 * const now = 1_000;
 * const at = (entries: { interfaceName: string; address: string }[]) =>
 *   ({ nodeName: "a", renewTimeMs: now, leaseDurationMs: 6000, entries });
 * [...changedAddresses(at([{ interfaceName: "eth0", address: "192.0.2.5" }]), at([]), now)];
 * // ["192.0.2.5"]
 * ```
 */
export function changedAddresses(
  before: AnnouncerRecord | undefined,
  after: AnnouncerRecord | undefined,
  nowMs: number,
): ReadonlySet<string> {
  const side = (record: AnnouncerRecord | undefined) =>
    record !== undefined && isLive(record, nowMs)
      ? new Set(record.entries.map((e) => `${record.nodeName},${e.interfaceName},${e.address}`))
      : new Set<string>();
  const a = side(before);
  const b = side(after);
  const changed = new Set<string>();
  for (const [from, to] of [[a, b], [b, a]] as const) {
    for (const entry of from) {
      if (!to.has(entry)) changed.add(entry.slice(entry.lastIndexOf(",") + 1));
    }
  }
  return changed;
}

/**
 * Milliseconds from `nowMs` until the next live record that lists addresses expires, or
 * `undefined` when none will.
 *
 * @example
 * ```ts
 * nextExpiryMs([{ nodeName: "a", renewTimeMs: 0, leaseDurationMs: 6000,
 *   entries: [{ interfaceName: "eth0", address: "192.0.2.5" }] }], 1000); // 5000
 * ```
 */
export function nextExpiryMs(
  records: Iterable<AnnouncerRecord>,
  nowMs: number,
): number | undefined {
  let soonest: number | undefined;
  for (const record of records) {
    if (record.entries.length === 0 || !isLive(record, nowMs)) continue;
    const ms = record.renewTimeMs + record.leaseDurationMs - nowMs;
    if (soonest === undefined || ms < soonest) soonest = ms;
  }
  return soonest;
}

/**
 * Which keys (Services, node Leases) list which addresses, looked up both ways: the Services an
 * announcer change concerns, and the Leases that announce a Service's addresses.
 *
 * @example
 * ```ts
 * const index = new AddressIndex();
 * index.set("shop/web", ["192.0.2.5", "2001:db8::5"]);
 * index.set("shop/api", ["192.0.2.5"]);
 * index.set("shop/web", []);
 * if ([...index.keysOf("192.0.2.5")].join() !== "shop/api") throw new Error("unexpected");
 * ```
 */
export class AddressIndex {
  readonly #addressesOf = new Map<string, readonly string[]>();
  readonly #keysOf = new Map<string, Set<string>>();

  /** Replaces the addresses `key` lists (none: forgets `key`). */
  set(key: string, addresses: readonly string[]): void {
    for (const address of this.#addressesOf.get(key) ?? []) {
      const keys = this.#keysOf.get(address);
      keys?.delete(key);
      if (keys?.size === 0) this.#keysOf.delete(address);
    }
    if (addresses.length === 0) {
      this.#addressesOf.delete(key);
      return;
    }
    this.#addressesOf.set(key, addresses);
    for (const address of addresses) {
      let keys = this.#keysOf.get(address);
      if (keys === undefined) this.#keysOf.set(address, keys = new Set());
      keys.add(key);
    }
  }

  /** The keys that list `address`. */
  keysOf(address: string): ReadonlySet<string> {
    return this.#keysOf.get(address) ?? new Set();
  }

  clear(): void {
    this.#addressesOf.clear();
    this.#keysOf.clear();
  }
}
