/**
 * The allocator's memory: which ServiceGroups exist (and whether they are valid), and which
 * addresses each Service holds. A plain object with no client and no clock; the controller
 * feeds it what the caches say and writes what it answers.
 *
 * Rules it keeps (see "How it works" in the README): an allocation that still satisfies its
 * Service is never moved, not by a restart (existing allocations are registered first) and not
 * by pool edits; one that no longer does is released and replaced; a request is served in full
 * or not at all (RequireDualStack, specific addresses), except PreferDualStack, which takes what
 * exists now and adds the missing family later.
 *
 * @module
 */

import {
  type Aggregation,
  type Allocation,
  type AssignFailure,
  type AssignResult,
  createPoolRange,
  type FamilyStats,
  findGroupOverlaps,
  type IpFamily,
  LocalPool,
  parseCidr,
  parseRange,
  parseServiceGroupSpec,
  parseServiceGroupTenancy,
  type SharingRequest,
} from "../ipam/mod.ts";
import { type NetboxError, netboxSourceKey } from "../netbox/mod.ts";
import { DEFAULT_SERVICE_GROUP } from "../k8s/types.ts";
import type { AllocationRequest } from "./request.ts";
import { type GroupChoice, type TenancyGroup, TenancyRules } from "./tenancy.ts";

/** A ServiceGroup as the allocator needs it. */
export interface GroupInput {
  readonly name: string;
  /** RFC 3339; decides which of two overlapping groups is invalid (the later one). */
  readonly creationTimestamp: string;
  readonly spec: unknown;
}

/**
 * The tenancy part of a group's report, present once some group lists namespaces: the
 * namespaces it serves (if it lists any) and how many Services hold its addresses although the
 * namespace rules would not give them to them now.
 */
export interface TenancyReport {
  readonly boundNamespaces?: readonly string[];
  readonly outOfScope?: number;
}

/** What the allocator thinks of a ServiceGroup, for its status and events. */
export type GroupReport =
  & TenancyReport
  & (
    | {
      readonly name: string;
      readonly kind: "valid";
      readonly stats: Readonly<Record<IpFamily, FamilyStats>>;
      readonly families: readonly IpFamily[];
    }
    | {
      readonly name: string;
      readonly kind: "netbox";
      readonly source: NetboxSource;
      readonly inUse: Readonly<Record<IpFamily, number>>;
    }
    | { readonly name: string; readonly kind: "invalid"; readonly errors: readonly string[] }
  );

/** Where a Netbox group takes its addresses from. */
export interface NetboxSource {
  readonly url: string;
  readonly tenant: string;
  readonly aggregation: Aggregation;
}

/** One address a Service holds, and the group it came from ("" if no pool holds it any more). */
export interface HeldAddress {
  readonly address: string;
  readonly family: IpFamily;
  readonly group: string;
  /** Set for an address taken from Netbox: where to give it back. */
  readonly netbox?: NetboxSource;
}

/** An address taken from Netbox that no Service holds any more: it goes back to `reserved`. */
export interface FreedNetboxAddress {
  readonly address: string;
  readonly source: NetboxSource;
}

/**
 * What a request for a Netbox group needs from Netbox before {@linkcode Allocator.allocate}
 * can serve it: a new address of each of `families`, in order.
 */
export interface NetboxNeeds {
  readonly group: string;
  readonly source: NetboxSource;
  readonly families: readonly IpFamily[];
}

/** The controller's answer to {@linkcode NetboxNeeds}: addresses taken, or why a family failed. */
export interface NetboxOffer {
  readonly source: NetboxSource;
  readonly addresses: readonly { readonly address: string; readonly family: IpFamily }[];
  readonly failures: Partial<Readonly<Record<IpFamily, NetboxError>>>;
}

/**
 * Why a Service got no allocation: the `reason` label of the allocation failure metric (the
 * `AllocationFailed` event carries the text).
 */
export type AllocationFailure =
  | AssignFailure
  | "netbox_error"
  | "group_not_found"
  | "group_invalid"
  /** The namespace rules refuse the group (or the address's group) to the Service's namespace. */
  | "namespace_refused";

/** Part of every outcome that may let go of Netbox addresses. */
export interface FreedNetbox {
  /** Netbox addresses no Service holds any more: the controller gives them back to Netbox. */
  readonly freedNetbox: readonly FreedNetboxAddress[];
}

/** What {@linkcode Allocator.allocate} decided for the Service. */
export type AllocationChange =
  | { readonly kind: "unchanged"; readonly addresses: readonly HeldAddress[] }
  | {
    readonly kind: "assigned";
    readonly addresses: readonly HeldAddress[];
    /** Addresses the Service held before and gave up (a replaced allocation). */
    readonly released: readonly HeldAddress[];
  }
  | {
    readonly kind: "failed";
    readonly failure: AllocationFailure;
    readonly reason: string;
    readonly released: readonly HeldAddress[];
  };

/** The result of {@linkcode Allocator.allocate}. */
export type AllocateOutcome = AllocationChange & FreedNetbox & {
  /**
   * `ConfigurationWarning`s of the namespace rules: no single default among the groups serving
   * the namespace, or an allocation kept although the rules would not give it now.
   */
  readonly warnings: readonly string[];
};

/** The result of {@linkcode Allocator.release}. */
export interface ReleaseOutcome extends FreedNetbox {
  /** What the Service held. */
  readonly released: readonly HeldAddress[];
}

interface ServiceAllocation {
  /** The request as the Service made it (its group not yet chosen by the namespace rules). */
  readonly request: AllocationRequest;
  readonly addresses: readonly HeldAddress[];
  /** Set when the namespace rules would not give this allocation now: why. */
  readonly outOfScope?: string;
  /**
   * True when the namespace rules chose the group of a Service that names none (so that the
   * choice stands after they change, even when no group lists namespaces any more).
   */
  readonly byRules?: boolean;
}

/**
 * How the namespace rules apply to a request: their choice, whether the Service's earlier
 * decision stands (it holds what it asked for, and only the rules changed), and the group to
 * check its allocation against (`undefined`: refused, nothing to keep).
 */
interface Plan {
  readonly choice: GroupChoice;
  readonly standing: boolean;
  readonly group: string | undefined;
  /** When standing against the rules' choice: why the allocation is out of scope. */
  readonly outOfScope: string | undefined;
}

type GroupEntry =
  | { readonly kind: "valid"; readonly specText: string; readonly pool: LocalPool }
  | {
    readonly kind: "netbox";
    readonly specText: string;
    readonly source: NetboxSource;
    /** Holds only the addresses taken from Netbox; its ranges cover everything. */
    readonly pool: LocalPool;
  }
  | { readonly kind: "invalid"; readonly specText: string; readonly errors: readonly string[] };

/**
 * Address bookkeeping for all Services.
 *
 * @example
 * ```ts
 * import { Allocator } from "./allocator.ts";
 *
 * const allocator = new Allocator();
 * allocator.setGroups([{ name: "default", creationTimestamp: "2026-01-01T00:00:00Z",
 *   spec: { local: { v4pools: [{ pool: "192.0.2.0/30", subnet: "192.0.2.0/24" }] } } }]);
 * const outcome = allocator.allocate({
 *   key: "shop/web",
 *   families: ["IPv4"],
 *   policy: "SingleStack",
 *   specificAddresses: [],
 *   group: "default",
 *   sharingKey: "",
 *   ports: [{ protocol: "TCP", port: 443 }],
 *   localTrafficPolicy: false,
 * });
 * if (outcome.kind === "assigned") console.log(outcome.addresses[0]?.address); // 192.0.2.0
 * ```
 */
export class Allocator {
  readonly #groups = new Map<string, GroupEntry>();
  readonly #services = new Map<string, ServiceAllocation>();
  #tenancy = new TenancyRules([]);

  /** Replaces the set of groups; unchanged groups keep their pools and counts. */
  setGroups(inputs: readonly GroupInput[]): readonly GroupReport[] {
    this.#tenancy = new TenancyRules(inputs.flatMap((input): TenancyGroup[] => {
      const tenancy = parseServiceGroupTenancy(input.spec);
      return tenancy.kind === "valid" ? [{ name: input.name, tenancy: tenancy.tenancy }] : [];
    }));
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
      } else if (previous?.kind !== "invalid" && previous?.specText === specText) {
        next.set(input.name, previous);
      } else if (result.source.kind === "netbox") {
        const { url, tenant, aggregation } = result.source;
        next.set(input.name, {
          kind: "netbox",
          specText,
          source: { url, tenant, aggregation },
          pool: netboxPool(input.name, aggregation),
        });
        rebuilt.push(input.name);
      } else {
        next.set(input.name, {
          kind: "valid",
          specText,
          pool: new LocalPool(input.name, result.source.pool),
        });
        rebuilt.push(input.name);
      }
    }
    const netboxGroupGone = [...this.#groups].some(([name, entry]) =>
      entry.kind === "netbox" && next.get(name) !== entry
    );
    this.#groups.clear();
    for (const [name, entry] of next) this.#groups.set(name, entry);
    if (rebuilt.length > 0 || netboxGroupGone) this.#reattach(rebuilt);
    this.#rescope();
    return this.groupReports();
  }

  /** The current view of every group. */
  groupReports(): readonly GroupReport[] {
    return [...this.#groups.entries()].map(([name, entry]) => this.#reportOf(name, entry));
  }

  /** The report of one group, if it exists. */
  groupReport(name: string): GroupReport | undefined {
    const entry = this.#groups.get(name);
    return entry ? this.#reportOf(name, entry) : undefined;
  }

  #reportOf(name: string, entry: GroupEntry): GroupReport {
    const report = reportOf(name, entry);
    if (!this.#tenancy.active) return report;
    const bound = this.#tenancy.boundNamespaces(name);
    let outOfScope = 0;
    for (const allocation of this.#services.values()) {
      if (
        allocation.outOfScope !== undefined && allocation.addresses.some((a) => a.group === name)
      ) {
        outOfScope++;
      }
    }
    return { ...report, ...(bound === undefined ? {} : { boundNamespaces: bound }), outOfScope };
  }

  /** Why the Service's allocation is out of scope (kept against the namespace rules), if it is. */
  outOfScope(serviceKey: string): string | undefined {
    return this.#services.get(serviceKey)?.outOfScope;
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
    const pool = this.#entryContaining(address)?.entry.pool;
    return pool?.holdersOf(address).some((h) => h.serviceKey !== serviceKey) ?? false;
  }

  /**
   * What `request` needs from Netbox first, if its group is a Netbox group and neither its
   * current addresses nor its sharing key cover it. The controller takes the addresses and
   * passes them to {@linkcode allocate} as an offer.
   */
  netboxNeeds(asked: AllocationRequest): NetboxNeeds | undefined {
    if (asked.specificAddresses.length > 0) return undefined;
    const plan = this.#plan(asked);
    const current = this.#services.get(asked.key);
    const keeps = current !== undefined && plan.group !== undefined &&
      this.#sameShape(current, { ...asked, group: plan.group });
    const group = keeps ? plan.group : plan.choice.kind === "use" ? plan.choice.group : undefined;
    if (group === undefined) return undefined;
    const request = { ...asked, group };
    const entry = this.#groups.get(request.group);
    if (entry?.kind !== "netbox") return undefined;
    if (keeps && (request.policy !== "PreferDualStack" || plan.outOfScope !== undefined)) {
      return undefined;
    }
    const bound = (family: IpFamily) =>
      request.sharingKey !== "" &&
      entry.pool.addressOfSharingKey(request.sharingKey, family) !== undefined;
    if (request.policy === "AnyOne" && !keeps && request.families.some(bound)) return undefined;
    const families = request.families.filter((family) =>
      !bound(family) && !(keeps && current.addresses.some((a) => a.family === family))
    );
    return families.length === 0
      ? undefined
      : { group: request.group, source: entry.source, families };
  }

  /** Whether any Service holds `address`, from any group or source. */
  isHeld(address: string): boolean {
    for (const allocation of this.#services.values()) {
      if (allocation.addresses.some((a) => a.address === address)) return true;
    }
    return false;
  }

  /** The addresses held from a Netbox group, each with one Service holding it. */
  netboxHeld(group: string): ReadonlyMap<string, string> {
    const held = new Map<string, string>();
    for (const [key, allocation] of this.#services) {
      for (const address of allocation.addresses) {
        if (address.group === group && address.netbox) held.set(address.address, key);
      }
    }
    return held;
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
    const choice = this.#plan(request).choice;
    const chosen = choice.kind === "use" ? { ...request, group: choice.group } : request;
    for (const address of addresses) {
      const found = this.#entryContaining(address) ?? this.#netboxEntryOf(chosen);
      if (!found) {
        const family: IpFamily = address.includes(":") ? "IPv6" : "IPv4";
        held.push({ address, family, group: "" });
        continue;
      }
      const result = found.entry.pool.assignSpecific(request.key, address, sharingOf(request));
      if (result.kind === "ok") held.push(heldOf(result, found.name, found.entry));
      else problems.push(result.reason);
    }
    if (held.length > 0) {
      const byRules = this.#tenancy.active ? { byRules: true } : {};
      this.#services.set(request.key, { request, addresses: held, ...byRules });
      // Counted out of scope from the start, so that a new leader's first status is right.
      const { outOfScope } = this.#plan(request);
      if (outOfScope !== undefined) {
        this.#services.set(request.key, { request, addresses: held, outOfScope, ...byRules });
      }
    }
    return problems;
  }

  /**
   * Makes the Service hold what `request` asks for (see module doc for the rules). For a Netbox
   * group, `offer` holds the addresses the controller took from Netbox for
   * {@linkcode netboxNeeds}; those not used are in the outcome's `freedNetbox`, with those
   * released.
   */
  allocate(request: AllocationRequest, offer?: NetboxOffer): AllocateOutcome {
    const before = this.addressesOf(request.key);
    const change = this.#allocate(request, offer);
    const offered = offer === undefined
      ? []
      : offer.addresses.map(({ address }) => ({ address, netbox: offer.source }));
    const outOfScope = this.outOfScope(request.key);
    const holds = this.addressesOf(request.key);
    const warnings = outOfScope === undefined ? change.warnings : [
      ...change.warnings,
      `keeps ${holds.map((a) => a.address).join(", ")} from ServiceGroup ` +
      `"${holds.find((a) => a.group !== "")?.group ?? ""}", although the namespace ` +
      `rules would not give it now (${outOfScope}); annotate the Service with ` +
      `purelb.io/re-evaluate to decide again`,
    ];
    return {
      ...change,
      warnings,
      freedNetbox: this.#unheldNetbox([...before, ...offered]),
    };
  }

  /**
   * How the namespace rules apply to the request. An earlier decision stands while the Service
   * holds what it asks for (the addresses it names; the group it names; for a Service naming
   * neither, the group chosen for it before, once namespace rules are in use) and it did not
   * ask for `purelb.io/re-evaluate`: edits of the rules never move an allocation.
   */
  #plan(request: AllocationRequest): Plan {
    const namespace = request.key.slice(0, Math.max(0, request.key.indexOf("/")));
    const choice = request.specificAddresses.length > 0
      ? this.#specificChoice(namespace, request)
      : this.#tenancy.choose(namespace, namesGroup(request) ? request.group : undefined);
    const current = this.#services.get(request.key);
    const held = current === undefined ? undefined : singleGroupOf(current.addresses);
    const standing = current !== undefined && held !== undefined && request.reEvaluate !== true &&
      this.#earlierDecisionStands(current, held, request, choice);
    if (!standing) {
      return {
        choice,
        standing,
        group: choice.kind === "use" ? choice.group : undefined,
        outOfScope: undefined,
      };
    }
    const outOfScope = choice.kind === "refused"
      ? choice.reason
      : request.specificAddresses.length === 0 && choice.group !== held
      ? `they choose ServiceGroup "${choice.group}" for namespace "${namespace}"`
      : undefined;
    return { choice, standing, group: held, outOfScope };
  }

  /** For specific addresses: refused when the rules refuse the group of one of them. */
  #specificChoice(namespace: string, request: AllocationRequest): GroupChoice {
    for (const address of request.specificAddresses) {
      const found = this.#entryContaining(address);
      const reason = found === undefined ? undefined : this.#tenancy.refusal(namespace, found.name);
      if (reason !== undefined) {
        return { kind: "refused", reason: `requested address ${address}: ${reason}`, warnings: [] };
      }
    }
    return { kind: "use", group: request.group, warnings: [] };
  }

  #earlierDecisionStands(
    current: ServiceAllocation,
    held: string,
    request: AllocationRequest,
    choice: GroupChoice,
  ): boolean {
    if (request.specificAddresses.length > 0) {
      const holds = current.addresses.map((a) => a.address).sort().join(",");
      return holds === [...request.specificAddresses].sort().join(",");
    }
    if (current.request.specificAddresses.length > 0) return false;
    if (namesGroup(request)) return held === request.group;
    if (namesGroup(current.request)) return false;
    return this.#tenancy.active || current.byRules === true ||
      (choice.kind === "use" && choice.group === held);
  }

  #allocate(
    request: AllocationRequest,
    offer: NetboxOffer | undefined,
  ): AllocationChange & { readonly warnings: readonly string[] } {
    const current = this.#services.get(request.key);
    const plan = this.#plan(request);
    // Kept without the one-shot re-evaluation, which this call answers.
    const { reEvaluate: _answered, ...asked } = request;
    const warnings = plan.choice.warnings;
    const kept = plan.group === undefined ? undefined : { ...request, group: plan.group };
    const chosenByRules = (group: string) =>
      !namesGroup(request) && request.specificAddresses.length === 0 &&
      group !== DEFAULT_SERVICE_GROUP;
    if (current && kept && this.#stillSatisfies(current, kept)) {
      const added = plan.outOfScope === undefined
        ? this.#addMissingPreferredFamilies(current, kept, offer)
        : [];
      const scope = {
        ...(plan.outOfScope === undefined ? {} : { outOfScope: plan.outOfScope }),
        ...(current.byRules === true || chosenByRules(kept.group) ? { byRules: true } : {}),
      };
      if (added.length === 0) {
        this.#services.set(request.key, { request: asked, addresses: current.addresses, ...scope });
        return { kind: "unchanged", addresses: current.addresses, warnings };
      }
      const addresses = orderByFamilies([...current.addresses, ...added], request.families);
      this.#services.set(request.key, { request: asked, addresses, ...scope });
      return { kind: "assigned", addresses, released: [], warnings };
    }
    const released = this.#forget(request.key);
    if (plan.choice.kind === "refused") {
      return {
        kind: "failed",
        failure: "namespace_refused",
        reason: plan.choice.reason,
        released,
        warnings,
      };
    }
    const decided = request.specificAddresses.length > 0
      ? request
      : { ...request, group: plan.choice.group };
    const fresh = decided.specificAddresses.length > 0
      ? this.#takeSpecific(decided)
      : this.#takeFromGroup(decided, offer);
    if (fresh.kind === "failed") {
      this.#releaseFromPools(request.key, fresh.partial);
      return { kind: "failed", failure: fresh.failure, reason: fresh.reason, released, warnings };
    }
    const addresses = orderByFamilies(fresh.addresses, request.families);
    const byRules = chosenByRules(decided.group) ? { byRules: true } : {};
    this.#services.set(request.key, { request: asked, addresses, ...byRules });
    return { kind: "assigned", addresses, released, warnings };
  }

  /** Gives back everything the Service holds; returns what it held. */
  release(serviceKey: string): ReleaseOutcome {
    const released = this.#forget(serviceKey);
    return { released, freedNetbox: this.#unheldNetbox(released) };
  }

  /** Drops the Service's allocation from the pools; returns what it held. */
  #forget(serviceKey: string): readonly HeldAddress[] {
    const current = this.#services.get(serviceKey);
    if (!current) return [];
    this.#services.delete(serviceKey);
    this.#releaseFromPools(serviceKey, current.addresses);
    return current.addresses;
  }

  #stillSatisfies(current: ServiceAllocation, request: AllocationRequest): boolean {
    if (!this.#sameShape(current, request)) return false;
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

  /** Whether the held addresses still match the request's families, group and addresses. */
  #sameShape(current: ServiceAllocation, request: AllocationRequest): boolean {
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
    return true;
  }

  #addMissingPreferredFamilies(
    current: ServiceAllocation,
    request: AllocationRequest,
    offer: NetboxOffer | undefined,
  ): HeldAddress[] {
    if (request.policy !== "PreferDualStack" || request.specificAddresses.length > 0) return [];
    const entry = this.#groups.get(request.group);
    if (entry === undefined || entry.kind === "invalid") return [];
    const added: HeldAddress[] = [];
    for (const family of request.families) {
      if (current.addresses.some((a) => a.family === family)) continue;
      const result = takeFamily(entry, request, family, offer, this.#heldByOther(request.key));
      if (result.kind === "ok") added.push(heldOf(result, request.group, entry));
    }
    return added;
  }

  #takeSpecific(request: AllocationRequest): Taken {
    const taken: HeldAddress[] = [];
    for (const address of request.specificAddresses) {
      const found = this.#entryContaining(address);
      if (!found) {
        return {
          kind: "failed",
          failure: "address_outside_pools",
          reason: `requested address ${address} is not in any valid ServiceGroup pool`,
          partial: taken,
        };
      }
      const result = found.entry.pool.assignSpecific(request.key, address, sharingOf(request));
      if (result.kind === "error") return { ...result, kind: "failed", partial: taken };
      taken.push(heldOf(result, found.name, found.entry));
    }
    return { kind: "ok", addresses: taken };
  }

  #takeFromGroup(request: AllocationRequest, offer: NetboxOffer | undefined): Taken {
    const entry = this.#groups.get(request.group);
    if (!entry) {
      return {
        kind: "failed",
        failure: "group_not_found",
        reason: `ServiceGroup "${request.group}" not found`,
        partial: [],
      };
    }
    if (entry.kind === "invalid") {
      return {
        kind: "failed",
        failure: "group_invalid",
        reason: `ServiceGroup "${request.group}" is invalid: ${entry.errors.join("; ")}`,
        partial: [],
      };
    }
    const taken: HeldAddress[] = [];
    const refusals: Refusal[] = [];
    for (const family of request.families) {
      const result = takeFamily(entry, request, family, offer, this.#heldByOther(request.key));
      if (result.kind === "ok") taken.push(heldOf(result, request.group, entry));
      else refusals.push(result);
      if (request.policy === "AnyOne" && taken.length === 1) break;
      const allNeeded = request.policy === "SingleStack" || request.policy === "RequireDualStack";
      if (allNeeded && refusals.length > 0) return failedWith(refusals, taken);
    }
    return taken.length === 0 ? failedWith(refusals, taken) : { kind: "ok", addresses: taken };
  }

  #releaseFromPools(serviceKey: string, addresses: readonly HeldAddress[]): void {
    for (const group of new Set(addresses.map((a) => a.group))) {
      this.#poolOf(group)?.release(serviceKey);
    }
  }

  /**
   * Whether a Service other than `key` holds an address, from any group or source: an offered
   * Netbox address it holds is not given to a second Service.
   */
  #heldByOther(key: string): (address: string) => boolean {
    return (address) => {
      for (const [holder, allocation] of this.#services) {
        if (holder !== key && allocation.addresses.some((a) => a.address === address)) {
          return true;
        }
      }
      return false;
    };
  }

  /**
   * Of the given addresses, the Netbox ones no Service holds from that Netbox and tenant any
   * more (another group's Netbox may list the same address: that one is not ours to keep).
   */
  #unheldNetbox(
    candidates: readonly { readonly address: string; readonly netbox?: NetboxSource }[],
  ): FreedNetboxAddress[] {
    const freed = new Map<string, FreedNetboxAddress>();
    for (const { address, netbox: source } of candidates) {
      if (source === undefined) continue;
      const key = netboxSourceKey(source);
      const held = [...this.#services.values()].some((s) =>
        s.addresses.some((a) =>
          a.address === address && a.netbox !== undefined && netboxSourceKey(a.netbox) === key
        )
      );
      if (!held) freed.set(`${key} ${address}`, { address, source });
    }
    return [...freed.values()];
  }

  /** After pools were rebuilt, registers the current holders of their addresses again. */
  #reattach(rebuiltGroups: readonly string[]): void {
    for (const [key, allocation] of [...this.#services.entries()].sort(byRegistrationOrder)) {
      const addresses = allocation.addresses.map((held) => {
        const found = held.netbox
          ? this.#netboxEntryFrom(held.netbox, held.group)
          : this.#entryContaining(held.address);
        if (!found) return { ...held, group: "" };
        if (!rebuiltGroups.includes(found.name) && found.name === held.group) return held;
        const result = found.entry.pool.assignSpecific(
          key,
          held.address,
          sharingOf(allocation.request),
        );
        // A holder that the edited pool refuses keeps its address (never moved) unaccounted.
        return result.kind === "ok"
          ? heldOf(result, found.name, found.entry)
          : { ...held, group: "" };
      });
      this.#services.set(key, { ...allocation, addresses });
    }
  }

  /**
   * After the groups changed: which allocations the namespace rules would not give now (those
   * whose Service asks for something else are replaced by their next {@linkcode allocate}).
   */
  #rescope(): void {
    for (const [key, allocation] of this.#services) {
      const plan = this.#plan(allocation.request);
      if (!plan.standing || plan.outOfScope === allocation.outOfScope) continue;
      const { outOfScope: _, ...rest } = allocation;
      this.#services.set(
        key,
        plan.outOfScope === undefined ? rest : { ...rest, outOfScope: plan.outOfScope },
      );
    }
  }

  #poolOf(group: string): LocalPool | undefined {
    const entry = this.#groups.get(group);
    return entry?.kind === "invalid" ? undefined : entry?.pool;
  }

  /** The local pool whose ranges contain the address, or the Netbox group holding it. */
  #entryContaining(address: string): FoundEntry | undefined {
    for (const [name, entry] of this.#groups) {
      if (entry.kind === "valid" && entry.pool.contains(address)) return { name, entry };
    }
    for (const [name, entry] of this.#groups) {
      if (entry.kind === "netbox" && entry.pool.holdersOf(address).length > 0) {
        return { name, entry };
      }
    }
    return undefined;
  }

  /** The request's group, when it is a Netbox group (where its existing addresses came from). */
  #netboxEntryOf(request: AllocationRequest): FoundEntry | undefined {
    const entry = this.#groups.get(request.group);
    return entry?.kind === "netbox" && request.specificAddresses.length === 0
      ? { name: request.group, entry }
      : undefined;
  }

  /** The Netbox group with the same URL and tenant, `preferred` first. */
  #netboxEntryFrom(source: NetboxSource, preferred: string): FoundEntry | undefined {
    const candidates = [...this.#groups].sort(([a], [b]) =>
      Number(b === preferred) - Number(a === preferred)
    );
    for (const [name, entry] of candidates) {
      if (entry.kind === "netbox" && netboxSourceKey(entry.source) === netboxSourceKey(source)) {
        return { name, entry };
      }
    }
    return undefined;
  }
}

type UsableEntry = Exclude<GroupEntry, { readonly kind: "invalid" }>;

interface FoundEntry {
  readonly name: string;
  readonly entry: UsableEntry;
}

/**
 * One address of `family` for the request: from a local pool, the next free one; from a
 * Netbox group, the one its sharing key is bound to, else the one Netbox offered.
 */
function takeFamily(
  entry: UsableEntry,
  request: AllocationRequest,
  family: IpFamily,
  offer: NetboxOffer | undefined,
  heldByOther: (address: string) => boolean,
): AssignResult | Refusal {
  const sharing = sharingOf(request);
  if (entry.kind === "valid") {
    return entry.pool.hasFamily(family) ? entry.pool.assign(request.key, { family, ...sharing }) : {
      kind: "error",
      failure: "family_unavailable",
      reason: `ServiceGroup "${request.group}" has no ${family} pool`,
    };
  }
  const bound = request.sharingKey === ""
    ? undefined
    : entry.pool.addressOfSharingKey(request.sharingKey, family);
  const offered = offer?.addresses.find((a) =>
    a.family === family && entry.pool.holdersOf(a.address).length === 0 && !heldByOther(a.address)
  );
  const address = bound ?? offered?.address;
  if (address !== undefined) return entry.pool.assignSpecific(request.key, address, sharing);
  const error = offer?.failures[family];
  if (error === undefined) {
    return {
      kind: "error",
      failure: "netbox_error",
      reason: `no ${family} address taken from Netbox for ServiceGroup "${request.group}" yet`,
    };
  }
  return {
    kind: "error",
    failure: error.failure === "exhausted" ? "pool_exhausted" : "netbox_error",
    reason: error.message,
  };
}

/**
 * The pool of a Netbox group: it holds whatever Netbox handed out, so its ranges are the
 * whole of both families (it is never asked for a next free address).
 */
function netboxPool(name: string, aggregation: Aggregation): LocalPool {
  const everything = (cidr: string) =>
    createPoolRange(parseRange(cidr), parseCidr(cidr), aggregation);
  return new LocalPool(name, { ranges: [everything("0.0.0.0/0"), everything("::/0")] });
}

/** Why one family (or one specific address) could not be taken. */
interface Refusal {
  readonly kind: "error";
  readonly failure: AllocationFailure;
  readonly reason: string;
}

type Taken =
  | { readonly kind: "ok"; readonly addresses: readonly HeldAddress[] }
  | {
    readonly kind: "failed";
    readonly failure: AllocationFailure;
    readonly reason: string;
    readonly partial: readonly HeldAddress[];
  };

/** When families fail for different reasons, the metric counts the one listed first here. */
const FAILURE_PRECEDENCE: readonly AllocationFailure[] = [
  "pool_exhausted",
  "netbox_error",
  "address_outside_pools",
  "group_not_found",
  "group_invalid",
  "namespace_refused",
  "family_unavailable",
  "sharing_refused",
  "invalid_request",
  "other",
];

function failedWith(refusals: readonly Refusal[], partial: readonly HeldAddress[]): Taken {
  const failure = FAILURE_PRECEDENCE.find((f) => refusals.some((r) => r.failure === f)) ??
    "other";
  return { kind: "failed", failure, reason: refusals.map((r) => r.reason).join("; "), partial };
}

/** Whether the request names its group (absent flag: any group but `default` is named). */
function namesGroup(request: AllocationRequest): boolean {
  return request.groupAnnotated ?? request.group !== DEFAULT_SERVICE_GROUP;
}

/** The one group the addresses come from (`undefined` if none, or several). */
function singleGroupOf(addresses: readonly HeldAddress[]): string | undefined {
  const groups = new Set(addresses.map((a) => a.group).filter((g) => g !== ""));
  const [only] = groups;
  return groups.size === 1 ? only : undefined;
}

function sameSharing(a: AllocationRequest, b: AllocationRequest): boolean {
  return a.sharingKey === b.sharingKey && a.ports.length === b.ports.length &&
    a.ports.every((p, i) => p.protocol === b.ports[i]?.protocol && p.port === b.ports[i]?.port);
}

function sharingOf(request: AllocationRequest): SharingRequest {
  return { sharingKey: request.sharingKey, ports: request.ports };
}

function heldOf(allocation: Allocation, group: string, entry: UsableEntry): HeldAddress {
  const held = { address: allocation.address, family: allocation.family, group };
  return entry.kind === "netbox" ? { ...held, netbox: entry.source } : held;
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
    case "netbox":
      return {
        name,
        kind: "netbox",
        source: entry.source,
        inUse: { IPv4: entry.pool.inUse("IPv4"), IPv6: entry.pool.inUse("IPv6") },
      };
    case "invalid":
      return { name, kind: "invalid", errors: entry.errors };
  }
}
