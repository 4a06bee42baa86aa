/**
 * The allocator's memory: which ServiceGroups exist (and whether they are valid), and which
 * addresses each Service holds. A plain object with no client and no clock; the controller
 * feeds it what the caches say and writes what it answers.
 *
 * Rules it keeps (SPEC 3.1): an allocation that still satisfies its Service is never moved, not
 * by a restart (existing allocations are registered first) and not by pool edits; one that no
 * longer does is released and replaced; a request is served in full or not at all
 * (RequireDualStack, specific addresses), except PreferDualStack, which takes what exists now and
 * adds the missing family later.
 *
 * @module
 */

import {
  type Allocation,
  type FamilyStats,
  findGroupOverlaps,
  type IpFamily,
  LocalPool,
  parseServiceGroupSpec,
  type SharingRequest,
} from "../ipam/mod.ts";
import type { AllocationRequest } from "./request.ts";

/** A ServiceGroup as the allocator needs it. */
export interface GroupInput {
  readonly name: string;
  /** RFC 3339; decides which of two overlapping groups is invalid (the later one). */
  readonly creationTimestamp: string;
  readonly spec: unknown;
}

/** What the allocator thinks of a ServiceGroup, for its status and events. */
export type GroupReport =
  | {
    readonly name: string;
    readonly kind: "valid";
    readonly stats: Readonly<Record<IpFamily, FamilyStats>>;
    readonly families: readonly IpFamily[];
  }
  | { readonly name: string; readonly kind: "invalid"; readonly errors: readonly string[] }
  | { readonly name: string; readonly kind: "unsupported"; readonly message: string };

/** One address a Service holds, and the group it came from ("" if no pool holds it any more). */
export interface HeldAddress {
  readonly address: string;
  readonly family: IpFamily;
  readonly group: string;
}

/** The result of {@linkcode Allocator.allocate}. */
export type AllocateOutcome =
  | { readonly kind: "unchanged"; readonly addresses: readonly HeldAddress[] }
  | {
    readonly kind: "assigned";
    readonly addresses: readonly HeldAddress[];
    /** Addresses the Service held before and gave up (a replaced allocation). */
    readonly released: readonly HeldAddress[];
  }
  | {
    readonly kind: "failed";
    readonly reason: string;
    readonly released: readonly HeldAddress[];
  };

interface ServiceAllocation {
  readonly request: AllocationRequest;
  readonly addresses: readonly HeldAddress[];
}

type GroupEntry =
  | { readonly kind: "valid"; readonly specText: string; readonly pool: LocalPool }
  | { readonly kind: "invalid"; readonly specText: string; readonly errors: readonly string[] }
  | { readonly kind: "unsupported"; readonly specText: string; readonly message: string };

/**
 * Address bookkeeping for all Services.
 *
 * @example
 * ```ts
 * const allocator = new Allocator();
 * allocator.setGroups([{ name: "default", creationTimestamp: "2026-01-01T00:00:00Z",
 *   spec: { local: { v4pools: [{ pool: "192.0.2.0/30", subnet: "192.0.2.0/24" }] } } }]);
 * const outcome = allocator.allocate(request);
 * ```
 */
export class Allocator {
  readonly #groups = new Map<string, GroupEntry>();
  readonly #services = new Map<string, ServiceAllocation>();

  /** Replaces the set of groups; unchanged groups keep their pools and counts. */
  setGroups(inputs: readonly GroupInput[]): readonly GroupReport[] {
    const parsed = inputs.map((input) => ({
      input,
      specText: JSON.stringify(input.spec ?? null),
      result: parseServiceGroupSpec(input.spec),
    }));
    const overlapLosers = new Map(
      findGroupOverlaps(
        parsed.flatMap(({ input, result }) =>
          result.kind === "valid" && result.source.kind === "local"
            ? [{
              name: input.name,
              creationTimestamp: input.creationTimestamp,
              ranges: result.source.pool.ranges,
            }]
            : []
        ),
      ).map((overlap) => [overlap.name, overlap.message]),
    );

    const next = new Map<string, GroupEntry>();
    const rebuilt: string[] = [];
    for (const { input, specText, result } of parsed) {
      const previous = this.#groups.get(input.name);
      const overlap = overlapLosers.get(input.name);
      if (result.kind === "invalid") {
        next.set(input.name, {
          kind: "invalid",
          specText,
          errors: result.errors.map((e) => e.message),
        });
      } else if (overlap !== undefined) {
        next.set(input.name, { kind: "invalid", specText, errors: [overlap] });
      } else if (result.source.kind === "netbox") {
        next.set(input.name, {
          kind: "unsupported",
          specText,
          message: "Netbox groups are not supported by this allocator yet",
        });
      } else if (previous?.kind === "valid" && previous.specText === specText) {
        next.set(input.name, previous);
      } else {
        next.set(input.name, {
          kind: "valid",
          specText,
          pool: new LocalPool(input.name, result.source.pool),
        });
        rebuilt.push(input.name);
      }
    }
    this.#groups.clear();
    for (const [name, entry] of next) this.#groups.set(name, entry);
    this.#reattach(rebuilt);
    return this.groupReports();
  }

  /** The current view of every group. */
  groupReports(): readonly GroupReport[] {
    return [...this.#groups.entries()].map(([name, entry]) => reportOf(name, entry));
  }

  /** The report of one group, if it exists. */
  groupReport(name: string): GroupReport | undefined {
    const entry = this.#groups.get(name);
    return entry ? reportOf(name, entry) : undefined;
  }

  /** What a Service holds now. */
  addressesOf(serviceKey: string): readonly HeldAddress[] {
    return this.#services.get(serviceKey)?.addresses ?? [];
  }

  /** Keys of every Service holding something. */
  serviceKeys(): readonly string[] {
    return [...this.#services.keys()];
  }

  /** True when some other Service holds `address` too. */
  isShared(serviceKey: string, address: string): boolean {
    const pool = this.#poolContaining(address);
    return pool?.holdersOf(address).some((h) => h.serviceKey !== serviceKey) ?? false;
  }

  /**
   * Records an allocation that exists in the cluster (status of a Service at start-up), before
   * any new allocation is made. Addresses no pool contains are kept as they are (never moved)
   * with group "". Returns a reason for each address that could not be registered (e.g. the
   * same address held by two Services that may not share it): those are left to
   * {@linkcode allocate}, which will replace them.
   */
  register(request: AllocationRequest, addresses: readonly string[]): readonly string[] {
    const problems: string[] = [];
    const held: HeldAddress[] = [];
    for (const address of addresses) {
      const pool = this.#poolContaining(address);
      if (!pool) {
        const family: IpFamily = address.includes(":") ? "IPv6" : "IPv4";
        held.push({ address, family, group: "" });
        continue;
      }
      const result = pool.assignSpecific(request.key, address, sharingOf(request));
      if (result.kind === "ok") {
        held.push({ address: result.address, family: result.family, group: pool.name });
      } else {
        problems.push(result.reason);
      }
    }
    if (held.length > 0) this.#services.set(request.key, { request, addresses: held });
    return problems;
  }

  /** Makes the Service hold what `request` asks for (see module doc for the rules). */
  allocate(request: AllocationRequest): AllocateOutcome {
    const current = this.#services.get(request.key);
    if (current && this.#stillSatisfies(current, request)) {
      const added = this.#addMissingPreferredFamilies(current, request);
      if (added.length === 0) {
        this.#services.set(request.key, { request, addresses: current.addresses });
        return { kind: "unchanged", addresses: current.addresses };
      }
      const addresses = orderByFamilies([...current.addresses, ...added], request.families);
      this.#services.set(request.key, { request, addresses });
      return { kind: "assigned", addresses, released: [] };
    }
    const released = this.release(request.key);
    const fresh = request.specificAddresses.length > 0
      ? this.#takeSpecific(request)
      : this.#takeFromGroup(request);
    if (fresh.kind === "failed") {
      this.#releaseFromPools(request.key, fresh.partial);
      return { kind: "failed", reason: fresh.reason, released };
    }
    const addresses = orderByFamilies(fresh.addresses, request.families);
    this.#services.set(request.key, { request, addresses });
    return { kind: "assigned", addresses, released };
  }

  /** Gives back everything the Service holds; returns what it held. */
  release(serviceKey: string): readonly HeldAddress[] {
    const current = this.#services.get(serviceKey);
    if (!current) return [];
    this.#services.delete(serviceKey);
    this.#releaseFromPools(serviceKey, current.addresses);
    return current.addresses;
  }

  #stillSatisfies(current: ServiceAllocation, request: AllocationRequest): boolean {
    const families = current.addresses.map((a) => a.family);
    if (new Set(families).size !== families.length) return false;
    if (!families.every((f) => request.families.includes(f))) return false;
    if (request.specificAddresses.length > 0) {
      const held = current.addresses.map((a) => a.address).sort();
      if (held.join(",") !== [...request.specificAddresses].sort().join(",")) return false;
    } else {
      if (!current.addresses.every((a) => a.group === "" || a.group === request.group)) {
        return false;
      }
      if (current.request.specificAddresses.length > 0) return false;
      const complete = request.families.every((f) => families.includes(f));
      if (request.policy === "AnyOne" && families.length !== 1) return false;
      if (
        (request.policy === "SingleStack" || request.policy === "RequireDualStack") && !complete
      ) {
        return false;
      }
    }
    // Sharing is re-checked when the key or ports changed; the pool updates them if allowed.
    if (sameSharing(current.request, request)) return true;
    for (const held of current.addresses) {
      const pool = held.group === "" ? undefined : this.#poolOf(held.group);
      if (!pool) continue;
      if (pool.assignSpecific(request.key, held.address, sharingOf(request)).kind !== "ok") {
        return false;
      }
    }
    return true;
  }

  #addMissingPreferredFamilies(
    current: ServiceAllocation,
    request: AllocationRequest,
  ): HeldAddress[] {
    if (request.policy !== "PreferDualStack" || request.specificAddresses.length > 0) return [];
    const pool = this.#poolOf(request.group);
    if (!pool) return [];
    const added: HeldAddress[] = [];
    for (const family of request.families) {
      if (current.addresses.some((a) => a.family === family) || !pool.hasFamily(family)) continue;
      const result = pool.assign(request.key, { family, ...sharingOf(request) });
      if (result.kind === "ok") added.push(heldOf(result, pool.name));
    }
    return added;
  }

  #takeSpecific(request: AllocationRequest): Taken {
    const taken: HeldAddress[] = [];
    for (const address of request.specificAddresses) {
      const pool = this.#poolContaining(address);
      if (!pool) {
        return {
          kind: "failed",
          reason: `requested address ${address} is not in any valid ServiceGroup pool`,
          partial: taken,
        };
      }
      const result = pool.assignSpecific(request.key, address, sharingOf(request));
      if (result.kind === "error") return { kind: "failed", reason: result.reason, partial: taken };
      taken.push(heldOf(result, pool.name));
    }
    return { kind: "ok", addresses: taken };
  }

  #takeFromGroup(request: AllocationRequest): Taken {
    const entry = this.#groups.get(request.group);
    if (!entry) {
      return { kind: "failed", reason: `ServiceGroup "${request.group}" not found`, partial: [] };
    }
    if (entry.kind === "invalid") {
      return {
        kind: "failed",
        reason: `ServiceGroup "${request.group}" is invalid: ${entry.errors.join("; ")}`,
        partial: [],
      };
    }
    if (entry.kind === "unsupported") {
      return {
        kind: "failed",
        reason: `ServiceGroup "${request.group}": ${entry.message}`,
        partial: [],
      };
    }
    const pool = entry.pool;
    const taken: HeldAddress[] = [];
    const reasons: string[] = [];
    for (const family of request.families) {
      if (!pool.hasFamily(family)) {
        reasons.push(`ServiceGroup "${request.group}" has no ${family} pool`);
      } else {
        const result = pool.assign(request.key, { family, ...sharingOf(request) });
        if (result.kind === "ok") taken.push(heldOf(result, pool.name));
        else reasons.push(result.reason);
      }
      if (request.policy === "AnyOne" && taken.length === 1) break;
      const allNeeded = request.policy === "SingleStack" || request.policy === "RequireDualStack";
      if (allNeeded && reasons.length > 0) {
        return { kind: "failed", reason: reasons.join("; "), partial: taken };
      }
    }
    if (taken.length === 0) {
      return { kind: "failed", reason: reasons.join("; "), partial: taken };
    }
    return { kind: "ok", addresses: taken };
  }

  #releaseFromPools(serviceKey: string, addresses: readonly HeldAddress[]): void {
    for (const group of new Set(addresses.map((a) => a.group))) {
      this.#poolOf(group)?.release(serviceKey);
    }
  }

  /** After pools were rebuilt, registers the current holders of their addresses again. */
  #reattach(rebuiltGroups: readonly string[]): void {
    if (rebuiltGroups.length === 0) return;
    for (const [key, allocation] of [...this.#services.entries()].sort(byRegistrationOrder)) {
      const addresses = allocation.addresses.map((held) => {
        const pool = this.#poolContaining(held.address);
        if (!pool) return { ...held, group: "" };
        if (!rebuiltGroups.includes(pool.name)) return held;
        const result = pool.assignSpecific(key, held.address, sharingOf(allocation.request));
        // A holder that the edited pool refuses keeps its address (never moved) unaccounted.
        return { ...held, group: result.kind === "ok" ? pool.name : "" };
      });
      this.#services.set(key, { request: allocation.request, addresses });
    }
  }

  #poolOf(group: string): LocalPool | undefined {
    const entry = this.#groups.get(group);
    return entry?.kind === "valid" ? entry.pool : undefined;
  }

  #poolContaining(address: string): LocalPool | undefined {
    for (const entry of this.#groups.values()) {
      if (entry.kind === "valid" && entry.pool.contains(address)) return entry.pool;
    }
    return undefined;
  }
}

type Taken =
  | { readonly kind: "ok"; readonly addresses: readonly HeldAddress[] }
  | { readonly kind: "failed"; readonly reason: string; readonly partial: readonly HeldAddress[] };

function sameSharing(a: AllocationRequest, b: AllocationRequest): boolean {
  return a.sharingKey === b.sharingKey && a.ports.length === b.ports.length &&
    a.ports.every((p, i) => p.protocol === b.ports[i]?.protocol && p.port === b.ports[i]?.port);
}

function sharingOf(request: AllocationRequest): SharingRequest {
  return { sharingKey: request.sharingKey, ports: request.ports };
}

function heldOf(allocation: Allocation, group: string): HeldAddress {
  return { address: allocation.address, family: allocation.family, group };
}

function orderByFamilies(
  addresses: readonly HeldAddress[],
  families: readonly IpFamily[],
): HeldAddress[] {
  return [...addresses].sort((a, b) => families.indexOf(a.family) - families.indexOf(b.family));
}

function byRegistrationOrder(
  [a]: readonly [string, ServiceAllocation],
  [b]: readonly [string, ServiceAllocation],
): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function reportOf(name: string, entry: GroupEntry): GroupReport {
  switch (entry.kind) {
    case "valid":
      return {
        name,
        kind: "valid",
        stats: { IPv4: entry.pool.stats("IPv4"), IPv6: entry.pool.stats("IPv6") },
        families: (["IPv4", "IPv6"] as const).filter((f) => entry.pool.hasFamily(f)),
      };
    case "invalid":
      return { name, kind: "invalid", errors: entry.errors };
    case "unsupported":
      return { name, kind: "unsupported", message: entry.message };
  }
}
