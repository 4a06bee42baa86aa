/**
 * A local address pool: the ranges of one ServiceGroup and who holds which address.
 * Plain object, no I/O; the allocator controller feeds it services and registers existing
 * allocations at start-up with {@link LocalPool.assignSpecific}.
 *
 * @module
 */
import {
  addressBits,
  formatAddress,
  type IpAddress,
  type IpFamily,
  maxAddressValue,
  tryParseAddress,
} from "./address.ts";
import { DeferredDeleteMap } from "./deferred_delete_map.ts";
import { IntervalSet } from "./interval_set.ts";
import type { AddressRange, Cidr } from "./range.ts";
import {
  type AddressHolder,
  checkSharing,
  type ServicePort,
  type SharingRequest,
} from "./sharing.ts";

/**
 * How the node agent aggregates a virtual address: with the subnet's prefix length
 * (`default`) or with an explicit one (`/N`).
 */
export type Aggregation =
  | { readonly kind: "default" }
  | { readonly kind: "prefix"; readonly prefixLength: number };

/**
 * Text form of an aggregation as written in a ServiceGroup: `default` or `/N`.
 *
 * @example
 * ```ts
 * formatAggregation({ kind: "prefix", prefixLength: 24 }); // "/24"
 * ```
 */
export function formatAggregation(aggregation: Aggregation): string {
  return aggregation.kind === "default" ? "default" : `/${aggregation.prefixLength}`;
}

/**
 * Thrown when a pool is built from ranges that contradict each other (mixed families between
 * a range and its subnet, a range outside its subnet, overlapping ranges).
 *
 * @example
 * ```ts
 * try { new LocalPool("p", { ranges: [] }); } catch (e) {
 *   if (e instanceof PoolConfigurationError) console.log(e.message);
 * }
 * ```
 */
export class PoolConfigurationError extends Error {
  /** Builds the error with a message that says which ranges clash and why. */
  constructor(message: string) {
    super(message);
    this.name = "PoolConfigurationError";
  }
}

/**
 * One range of a pool with the network facts the node agent needs for its addresses.
 *
 * @example
 * ```ts
 * import { parseCidr, parseRange } from "./range.ts";
 *
 * const entry = createPoolRange(parseRange("192.0.2.10-192.0.2.19"), parseCidr("192.0.2.0/24"),
 *   { kind: "default" });
 * entry.aggregationPrefixLength; // 24
 * ```
 */
export interface PoolRange {
  /** The addresses handed out. */
  readonly range: AddressRange;
  /** The network they live in; decides local (on a node's network) or virtual. */
  readonly subnet: Cidr;
  /** How a virtual address is announced, as configured. */
  readonly aggregation: Aggregation;
  /** The prefix length to announce with: the subnet's for `default`, else the explicit one. */
  readonly aggregationPrefixLength: number;
}

/**
 * Builds a {@link PoolRange}, checking that range, subnet and aggregation agree.
 * Throws {@link PoolConfigurationError} otherwise.
 *
 * @example
 * ```ts
 * import { parseCidr, parseRange } from "./range.ts";
 *
 * createPoolRange(parseRange("2001:db8::/120"), parseCidr("2001:db8::/64"),
 *   { kind: "prefix", prefixLength: 128 }).aggregationPrefixLength; // 128
 * ```
 */
export function createPoolRange(
  range: AddressRange,
  subnet: Cidr,
  aggregation: Aggregation,
): PoolRange {
  if (subnet.family !== range.family) {
    throw new PoolConfigurationError(
      `range ${range} is ${range.family} but its subnet ${subnet} is ${subnet.family}`,
    );
  }
  if (!subnet.network.containsRange(range)) {
    throw new PoolConfigurationError(`range ${range} is not inside its subnet ${subnet}`);
  }
  const bits = addressBits(range.family);
  if (
    aggregation.kind === "prefix" &&
    (!Number.isInteger(aggregation.prefixLength) || aggregation.prefixLength < 0 ||
      aggregation.prefixLength > bits)
  ) {
    throw new PoolConfigurationError(
      `aggregation /${aggregation.prefixLength} is too long for ${range.family} (at most /${bits})`,
    );
  }
  return {
    range,
    subnet,
    aggregation,
    aggregationPrefixLength: aggregation.kind === "default"
      ? subnet.prefixLength
      : aggregation.prefixLength,
  };
}

/** What makes up a local pool: its ranges in allocation order and its options. */
export interface LocalPoolSpec {
  /** Ranges in allocation order; they must not overlap. */
  readonly ranges: readonly PoolRange[];
  /**
   * Beyond PureLB: never hand out an IPv4 address ending in .0 or .255 as the next free one
   * (some old firmware mistakes them for network or broadcast addresses). A specific request
   * for such an address is still honoured.
   */
  readonly avoidBuggyIPs?: boolean;
}

/** A request for the next free address of one family. */
export interface AssignRequest extends SharingRequest {
  /** The family of the address wanted. */
  readonly family: IpFamily;
}

/**
 * An address held by a service, with the range it came from.
 *
 * @example
 * ```ts
 * declare const pool: LocalPool;
 * const result = pool.assign("ns/web", { family: "IPv4", sharingKey: "", ports: [] });
 * if (result.kind === "ok") console.log(result.address, result.poolRange.subnet.toString());
 * ```
 */
export interface Allocation {
  /** Canonical text of the address. */
  readonly address: string;
  /** Family of the address. */
  readonly family: IpFamily;
  /** The range the address belongs to, with its subnet and aggregation. */
  readonly poolRange: PoolRange;
}

/**
 * Why an assignment failed, as a code for metrics (the `reason` text says it for people):
 * no free address left, the sharing rules refused, the address is not in the pool, the pool has
 * no range of the family, the address is not one, or the service holds another one already.
 */
export type AssignFailure =
  | "pool_exhausted"
  | "sharing_refused"
  | "address_outside_pools"
  | "family_unavailable"
  | "invalid_request"
  | "other";

/**
 * Outcome of an assignment: the allocation, or why there is none. Expected failures are
 * results, never exceptions.
 */
export type AssignResult =
  | ({ readonly kind: "ok" } & Allocation)
  | { readonly kind: "error"; readonly failure: AssignFailure; readonly reason: string };

/**
 * An address a service gave up; `freed` tells whether nobody holds it any more.
 *
 * @example
 * ```ts
 * declare const pool: LocalPool;
 * for (const r of pool.release("ns/web")) console.log(r.address, r.freed);
 * ```
 */
export interface ReleasedAddress {
  /** Canonical text of the address. */
  readonly address: string;
  /** Family of the address. */
  readonly family: IpFamily;
  /** True when no other service holds it: it is free again. */
  readonly freed: boolean;
}

/**
 * Address counts of one family.
 *
 * @example
 * ```ts
 * declare const pool: LocalPool;
 * const { size, inUse, free } = pool.stats("IPv4");
 * ```
 */
export interface FamilyStats {
  /** Addresses in the pool's ranges of this family. */
  readonly size: bigint;
  /** Addresses held by at least one service (a shared address counts once). */
  readonly inUse: number;
  /** Addresses {@link LocalPool.assign} can still hand out (excludes avoided ones). */
  readonly free: bigint;
}

/**
 * Maps address values to positions in the sequence of addresses the pool may hand out as
 * "next free", so the used-address set can jump over avoided addresses in O(log n).
 */
interface AddressNumbering {
  /** Position of the lowest eligible address >= value, or undefined when there is none. */
  ceiling(value: bigint): bigint | undefined;
  /** Position of the highest eligible address <= value, or undefined when there is none. */
  floor(value: bigint): bigint | undefined;
  /** Position of an eligible address, undefined for an avoided one. */
  positionOf(value: bigint): bigint | undefined;
  valueAt(position: bigint): bigint;
}

const IDENTITY_NUMBERING: AddressNumbering = {
  ceiling: (value) => value,
  floor: (value) => value,
  positionOf: (value) => value,
  valueAt: (position) => position,
};

/** IPv4 addresses whose last octet is 1..254, numbered densely: 254 per /24. */
const AVOID_BUGGY_NUMBERING: AddressNumbering = {
  ceiling(value) {
    const lastOctet = value & 0xffn;
    const eligible = lastOctet === 0n ? value + 1n : lastOctet === 0xffn ? value + 2n : value;
    return eligible > maxAddressValue("IPv4") ? undefined : this.positionOf(eligible);
  },
  floor(value) {
    const lastOctet = value & 0xffn;
    const eligible = lastOctet === 0n ? value - 2n : lastOctet === 0xffn ? value - 1n : value;
    return eligible < 0n ? undefined : this.positionOf(eligible);
  },
  positionOf(value) {
    const lastOctet = value & 0xffn;
    if (lastOctet === 0n || lastOctet === 0xffn) return undefined;
    return (value >> 8n) * 254n + lastOctet - 1n;
  },
  valueAt(position) {
    return ((position / 254n) << 8n) | (position % 254n + 1n);
  },
};

interface AddressState {
  readonly value: bigint;
  readonly poolRange: PoolRange;
  /** Shared by every holder: all holders of a shared address carry the same key. */
  sharingKey: string;
  readonly portsByService: Map<string, readonly ServicePort[]>;
}

interface FamilyState {
  readonly family: IpFamily;
  readonly ranges: readonly PoolRange[];
  readonly numbering: AddressNumbering;
  /** Positions (see AddressNumbering) of eligible addresses that are held. */
  readonly usedPositions: IntervalSet;
  readonly addresses: DeferredDeleteMap<bigint, AddressState>;
  /** Non-empty sharing key -> the address it is bound to in this family. */
  readonly addressByKey: DeferredDeleteMap<string, bigint>;
}

/**
 * The allocation state of one ServiceGroup's local ranges.
 *
 * - {@link LocalPool.assign} gives the lowest free address (ranges in declaration order), or the
 *   address the service or its sharing key already holds in that family.
 * - {@link LocalPool.assignSpecific} takes one named address (also how existing allocations are
 *   registered at start-up).
 * - {@link LocalPool.release} gives a service's addresses back; a shared address stays in use
 *   while another service holds it.
 *
 * A service holds at most one address per family; a non-empty sharing key is bound to at most
 * one address per family.
 *
 * @example
 * ```ts
 * import { parseCidr, parseRange } from "./range.ts";
 *
 * const pool = new LocalPool("default", {
 *   ranges: [createPoolRange(parseRange("192.0.2.10-192.0.2.19"), parseCidr("192.0.2.0/24"),
 *     { kind: "default" })],
 * });
 * const web = { sharingKey: "web", ports: [{ protocol: "TCP", port: 80 }] } as const;
 * pool.assign("ns/http", { family: "IPv4", ...web }); // ok, 192.0.2.10
 * pool.assign("ns/https", { family: "IPv4", sharingKey: "web",
 *   ports: [{ protocol: "TCP", port: 443 }] }); // ok, 192.0.2.10 too
 * pool.release("ns/http"); // 192.0.2.10 stays with ns/https
 * ```
 */
export class LocalPool {
  /** Name used in messages (usually the ServiceGroup's). */
  readonly name: string;
  /** Every range, in allocation order. */
  readonly ranges: readonly PoolRange[];
  /** See {@link LocalPoolSpec.avoidBuggyIPs}. */
  readonly avoidBuggyIPs: boolean;
  readonly #families: Readonly<Record<IpFamily, FamilyState>>;
  /** Service key -> family -> address value. */
  readonly #addressesByService = new DeferredDeleteMap<string, Map<IpFamily, bigint>>();

  /** Builds an empty pool. Throws {@link PoolConfigurationError} when two ranges overlap. */
  constructor(name: string, spec: LocalPoolSpec) {
    this.name = name;
    this.ranges = [...spec.ranges];
    this.avoidBuggyIPs = spec.avoidBuggyIPs ?? false;
    this.ranges.forEach((entry, index) => {
      for (const earlier of this.ranges.slice(0, index)) {
        if (earlier.range.overlaps(entry.range)) {
          throw new PoolConfigurationError(
            `pool ${name}: range ${entry.range} overlaps range ${earlier.range}`,
          );
        }
      }
    });
    const familyState = (family: IpFamily): FamilyState => ({
      family,
      ranges: this.ranges.filter((entry) => entry.range.family === family),
      numbering: family === "IPv4" && this.avoidBuggyIPs
        ? AVOID_BUGGY_NUMBERING
        : IDENTITY_NUMBERING,
      usedPositions: new IntervalSet(),
      addresses: new DeferredDeleteMap(),
      addressByKey: new DeferredDeleteMap(),
    });
    this.#families = { IPv4: familyState("IPv4"), IPv6: familyState("IPv6") };
  }

  /** The range holding the address, if the pool has it. */
  rangeFor(address: IpAddress | string): PoolRange | undefined {
    const parsed = typeof address === "string" ? tryParseAddress(address) : address;
    if (parsed === undefined) return undefined;
    return this.#families[parsed.family].ranges.find((entry) => entry.range.contains(parsed));
  }

  /** Whether the address lies in one of the pool's ranges. */
  contains(address: IpAddress | string): boolean {
    return this.rangeFor(address) !== undefined;
  }

  /** Whether any range of this pool overlaps the given range or any range of the given pool. */
  overlaps(other: LocalPool | AddressRange): boolean {
    const otherRanges = other instanceof LocalPool
      ? other.ranges.map((entry) => entry.range)
      : [other];
    return this.ranges.some((entry) => otherRanges.some((range) => entry.range.overlaps(range)));
  }

  /** Whether the pool has at least one range of the family. */
  hasFamily(family: IpFamily): boolean {
    return this.#families[family].ranges.length > 0;
  }

  /** Number of addresses in the pool's ranges of the family. */
  size(family: IpFamily): bigint {
    return this.#families[family].ranges.reduce((sum, entry) => sum + entry.range.size, 0n);
  }

  /** Number of addresses of the family held by at least one service. */
  inUse(family: IpFamily): number {
    return this.#families[family].addresses.size;
  }

  /** Size, in-use and free counts of the family. */
  stats(family: IpFamily): FamilyStats {
    const state = this.#families[family];
    let eligible = 0n;
    for (const entry of state.ranges) {
      const low = state.numbering.ceiling(entry.range.firstValue);
      const high = state.numbering.floor(entry.range.lastValue);
      if (low !== undefined && high !== undefined && low <= high) eligible += high - low + 1n;
    }
    return {
      size: this.size(family),
      inUse: this.inUse(family),
      free: eligible - BigInt(state.usedPositions.size),
    };
  }

  /** The addresses a service holds, IPv4 first. */
  allocationsOf(serviceKey: string): readonly Allocation[] {
    const held = this.#addressesByService.get(serviceKey);
    if (held === undefined) return [];
    const allocations: Allocation[] = [];
    for (const state of [this.#families.IPv4, this.#families.IPv6]) {
      const value = held.get(state.family);
      const address = value === undefined ? undefined : state.addresses.get(value);
      if (address !== undefined) allocations.push(this.#allocation(state, address));
    }
    return allocations;
  }

  /** The services holding an address, in the order they took it. */
  holdersOf(address: IpAddress | string): readonly AddressHolder[] {
    const parsed = typeof address === "string" ? tryParseAddress(address) : address;
    if (parsed === undefined) return [];
    const state = this.#families[parsed.family].addresses.get(parsed.value);
    if (state === undefined) return [];
    return [...state.portsByService].map(([serviceKey, ports]) => ({
      serviceKey,
      sharingKey: state.sharingKey,
      ports,
    }));
  }

  /** The address a non-empty sharing key is bound to in the family, if any. */
  addressOfSharingKey(sharingKey: string, family: IpFamily): string | undefined {
    const value = this.#families[family].addressByKey.get(sharingKey);
    return value === undefined ? undefined : formatAddress({ family, value });
  }

  /**
   * Gives the service an address of `request.family`: the one it already holds there, else the
   * one its sharing key is bound to there, else the lowest free address (ranges in declaration
   * order). Holding an address again with a changed key or ports re-checks the sharing rules.
   */
  assign(serviceKey: string, request: AssignRequest): AssignResult {
    const state = this.#families[request.family];
    const held = this.#addressesByService.get(serviceKey)?.get(request.family);
    if (held !== undefined) return this.#take(state, serviceKey, held, request);
    if (request.sharingKey !== "") {
      const bound = state.addressByKey.get(request.sharingKey);
      if (bound !== undefined) return this.#take(state, serviceKey, bound, request);
    }
    if (state.ranges.length === 0) {
      return {
        kind: "error",
        failure: "family_unavailable",
        reason: `pool ${this.name} has no ${request.family} range`,
      };
    }
    for (const entry of state.ranges) {
      const low = state.numbering.ceiling(entry.range.firstValue);
      const high = state.numbering.floor(entry.range.lastValue);
      if (low === undefined || high === undefined || low > high) continue;
      const position = state.usedPositions.nextAbsent(low);
      if (position <= high) {
        return this.#take(state, serviceKey, state.numbering.valueAt(position), request);
      }
    }
    return {
      kind: "error",
      failure: "pool_exhausted",
      reason: `no free ${request.family} address in pool ${this.name}`,
    };
  }

  /**
   * Gives the service one named address. Fails when the address is not in the pool, when the
   * service already holds another address of that family here, when the sharing key is bound
   * to another address of that family, or when the sharing rules refuse it.
   */
  assignSpecific(
    serviceKey: string,
    address: IpAddress | string,
    request: SharingRequest,
  ): AssignResult {
    const parsed = typeof address === "string" ? tryParseAddress(address.trim()) : address;
    if (parsed === undefined) {
      return {
        kind: "error",
        failure: "invalid_request",
        reason: `"${address}" is not an IP address`,
      };
    }
    const text = formatAddress(parsed);
    if (!this.contains(parsed)) return this.#outside(text);
    const state = this.#families[parsed.family];
    const held = this.#addressesByService.get(serviceKey)?.get(parsed.family);
    if (held !== undefined && held !== parsed.value) {
      const heldText = formatAddress({ family: parsed.family, value: held });
      return {
        kind: "error",
        failure: "other",
        reason: `${serviceKey} already holds ${heldText} in pool ${this.name}; ` +
          `release it before taking ${text}`,
      };
    }
    return this.#take(state, serviceKey, parsed.value, request);
  }

  /**
   * Gives back what the service holds (in one family, or in both). A shared address stays in
   * use while another service holds it; an address nobody holds becomes free at once.
   */
  release(serviceKey: string, family?: IpFamily): readonly ReleasedAddress[] {
    const held = this.#addressesByService.get(serviceKey);
    if (held === undefined) return [];
    const released: ReleasedAddress[] = [];
    for (const state of [this.#families.IPv4, this.#families.IPv6]) {
      if (family !== undefined && family !== state.family) continue;
      const value = held.get(state.family);
      if (value === undefined) continue;
      held.delete(state.family);
      const address = state.addresses.get(value);
      if (address === undefined) continue;
      address.portsByService.delete(serviceKey);
      const freed = address.portsByService.size === 0;
      if (freed) this.#forget(state, address);
      released.push({
        address: formatAddress({ family: state.family, value }),
        family: state.family,
        freed,
      });
    }
    if (held.size === 0) this.#addressesByService.delete(serviceKey);
    return released;
  }

  #take(
    state: FamilyState,
    serviceKey: string,
    value: bigint,
    request: SharingRequest,
  ): AssignResult {
    const text = formatAddress({ family: state.family, value });
    const existing = state.addresses.get(value);
    const others = existing === undefined
      ? []
      : [...existing.portsByService].filter(([holder]) => holder !== serviceKey);
    if (request.sharingKey !== "") {
      const bound = state.addressByKey.get(request.sharingKey);
      if (bound !== undefined && bound !== value) {
        const boundText = formatAddress({ family: state.family, value: bound });
        return {
          kind: "error",
          failure: "sharing_refused",
          reason: `sharing key "${request.sharingKey}" already holds ${boundText} ` +
            `in ${state.family}; services with this key share that address, not ${text}`,
        };
      }
    }
    if (existing !== undefined && others.length > 0) {
      const holders = others.map(([holder, ports]) => ({
        serviceKey: holder,
        sharingKey: existing.sharingKey,
        ports,
      }));
      const verdict = checkSharing(text, holders, serviceKey, request);
      if (verdict.kind === "refused") {
        return { kind: "error", failure: "sharing_refused", reason: verdict.reason };
      }
    }
    const poolRange = existing?.poolRange ??
      state.ranges.find((entry) => entry.range.contains({ family: state.family, value }));
    if (poolRange === undefined) return this.#outside(text);
    const address: AddressState = existing ?? {
      value,
      poolRange,
      sharingKey: request.sharingKey,
      portsByService: new Map(),
    };
    if (existing === undefined) {
      state.addresses.set(value, address);
      const position = state.numbering.positionOf(value);
      if (position !== undefined) state.usedPositions.add(position);
    }
    if (others.length === 0 && address.sharingKey !== request.sharingKey) {
      // The only holder changed its key: move the key binding along.
      state.addressByKey.delete(address.sharingKey);
      address.sharingKey = request.sharingKey;
    }
    if (address.sharingKey !== "") state.addressByKey.set(address.sharingKey, value);
    address.portsByService.set(serviceKey, [...request.ports]);
    let held = this.#addressesByService.get(serviceKey);
    if (held === undefined) {
      held = new Map();
      this.#addressesByService.set(serviceKey, held);
    }
    held.set(state.family, value);
    return { kind: "ok", ...this.#allocation(state, address) };
  }

  #outside(address: string): AssignResult {
    return {
      kind: "error",
      failure: "address_outside_pools",
      reason: `address ${address} is not in pool ${this.name}`,
    };
  }

  #forget(state: FamilyState, address: AddressState): void {
    state.addresses.delete(address.value);
    const position = state.numbering.positionOf(address.value);
    if (position !== undefined) state.usedPositions.remove(position);
    if (address.sharingKey !== "") state.addressByKey.delete(address.sharingKey);
  }

  #allocation(state: FamilyState, address: AddressState): Allocation {
    return {
      address: formatAddress({ family: state.family, value: address.value }),
      family: state.family,
      poolRange: address.poolRange,
    };
  }
}
