/**
 * This node's membership in the election: it holds the Lease `purelb-node-<node>`,
 * renews it every `renewMs`, publishes the CIDRs it can announce in as the `purelb.io/subnets`
 * annotation (written at once when they change), knows when it must fence itself (no
 * successful renewal for a full duration), and deletes the Lease on a graceful stop. It also
 * keeps in the Lease (`purelb.io/local-addresses`) which local addresses the agent may have
 * put on the node's interfaces, and reads back at start what a previous run recorded there
 * ({@link RecordedLocalAddresses}), and which local addresses it carries now, on which
 * interface (`purelb.io/announcing`, read by the allocator).
 *
 * @module
 */

import type { V1Lease } from "@kubernetes/client-node";
import { getLogger } from "@logtape/logtape";
import { type CoordinationApi, MicroTime } from "../k8s/api.ts";
import { apiStatusCode, errorMessage } from "../k8s/errors.ts";
import { nodeLeaseTiming } from "../k8s/node_lease.ts";
import {
  ANNOUNCING_ANNOTATION,
  LOCAL_ADDRESSES_ANNOTATION,
  NODE_LEASE_PREFIX,
  SUBNETS_ANNOTATION,
} from "../k8s/types.ts";
import { canonicalAddress } from "../ipam/mod.ts";
import {
  type AnnouncedAddress,
  formatAnnouncingAnnotation,
  formatSubnetsAnnotation,
  type NodeLeaseRecord,
  parseSubnetsAnnotation,
} from "../election/mod.ts";

const log = getLogger(["purelb", "agent"]);

/** The Lease calls membership makes. */
export type LeaseClient = Pick<
  CoordinationApi,
  | "createNamespacedLease"
  | "readNamespacedLease"
  | "replaceNamespacedLease"
  | "deleteNamespacedLease"
>;

/**
 * Options of {@link NodeMembership}.
 */
export interface MembershipOptions {
  readonly api: LeaseClient;
  /** Where the Lease lives. */
  readonly namespace: string;
  /** This node. */
  readonly nodeName: string;
  /** How long one renewal keeps the node live. */
  readonly leaseDurationMs: number;
  /** Time between renewals. */
  readonly renewMs: number;
  /** Called when this node becomes fenced or stops being fenced. */
  readonly onFenceChange?: (fenced: boolean) => void;
  /** Called after every successful write of the Lease. */
  readonly onRenewed?: () => void;
  /** Told about every failed Lease call. */
  readonly onError?: (message: string) => void;
}

/**
 * The name of a node's Lease.
 *
 * @example
 * ```ts
 * nodeLeaseName("node-a"); // "purelb-node-node-a"
 * ```
 */
export function nodeLeaseName(nodeName: string): string {
  return `${NODE_LEASE_PREFIX}${nodeName}`;
}

/**
 * The `purelb.io/local-addresses` annotation text for `addresses`: canonical addresses,
 * sorted, each once, comma separated; entries that are not addresses are left out.
 *
 * @example
 * ```ts
 * formatLocalAddressesAnnotation(["192.0.2.50", "2001:DB8::1", "192.0.2.50"]); // "192.0.2.50,2001:db8::1"
 * ```
 */
export function formatLocalAddressesAnnotation(addresses: Iterable<string>): string {
  const canonical = new Set<string>();
  for (const text of addresses) {
    const address = canonicalAddress(text.trim());
    if (address !== undefined) canonical.add(address);
  }
  return [...canonical].sort().join(",");
}

/**
 * The addresses of a `purelb.io/local-addresses` annotation (canonical; anything that is not
 * an address is skipped).
 *
 * @example
 * ```ts
 * parseLocalAddressesAnnotation(" 192.0.2.50,x,,2001:DB8::1"); // Set { "192.0.2.50", "2001:db8::1" }
 * ```
 */
export function parseLocalAddressesAnnotation(text: string): ReadonlySet<string> {
  const result = new Set<string>();
  for (const part of text.split(",")) {
    const address = canonicalAddress(part.trim());
    if (address !== undefined) result.add(address);
  }
  return result;
}

/**
 * The election record of a node Lease, or `undefined` for a Lease that is not a node Lease
 * or has no renew time. The node name is the holder identity, else the name after the prefix.
 *
 * @example
 * ```ts
 * leaseRecord({
 *   metadata: { name: "purelb-node-a", annotations: { "purelb.io/subnets": "192.0.2.0/24" } },
 *   spec: { holderIdentity: "a", renewTime: "2024-01-01T00:00:00.000000Z" as never, leaseDurationSeconds: 6 },
 * }); // { nodeName: "a", renewTimeMs: 1704067200000, leaseDurationMs: 6000, subnets: ["192.0.2.0/24"] }
 * ```
 */
export function leaseRecord(lease: V1Lease): NodeLeaseRecord | undefined {
  const timing = nodeLeaseTiming(lease);
  if (timing === undefined) return undefined;
  const subnets = lease.metadata?.annotations?.[SUBNETS_ANNOTATION] ?? "";
  return { ...timing, subnets: parseSubnetsAnnotation(subnets).subnets };
}

/**
 * See the module documentation.
 *
 * @example
 * ```ts
 * declare const api: LeaseClient;
 * const membership = new NodeMembership({
 *   api, namespace: "purelb-system", nodeName: "node-a", leaseDurationMs: 6_000, renewMs: 2_000,
 * });
 * membership.setSubnets(["192.0.2.0/24"]);
 * const running = membership.run();
 * // ... on SIGTERM, after withdrawing every address:
 * await membership.stop();
 * await membership.release();
 * await running;
 * ```
 */
export class NodeMembership {
  readonly #options: MembershipOptions;
  readonly #leaseName: string;
  #subnets = "";
  /** `undefined` until first set: the Lease keeps the text a previous run wrote. */
  #localAddresses: string | undefined;
  #previousLocalAddresses: ReadonlySet<string> | undefined;
  /** `undefined` until first set: the Lease keeps the text a previous run wrote. */
  #announcing: string | undefined;
  #written: V1Lease | undefined;
  /** `performance.now()` when the last successful renewal was sent. */
  #lastRenewAt = -Infinity;
  #fenced = true;
  #fenceTimer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;
  readonly #stopping = new AbortController();
  #running: Promise<void> | undefined;
  #renewals = 0;
  #failures = 0;

  /** Builds a member; nothing happens until {@link NodeMembership.run}. */
  constructor(options: MembershipOptions) {
    this.#options = options;
    this.#leaseName = nodeLeaseName(options.nodeName);
  }

  /** The Lease name. */
  get leaseName(): string {
    return this.#leaseName;
  }

  /** True until the first renewal, and whenever no renewal succeeded for a full duration. */
  get fenced(): boolean {
    return this.#fenced;
  }

  /** Successful Lease writes so far. */
  get renewals(): number {
    return this.#renewals;
  }

  /** Failed Lease calls so far. */
  get failures(): number {
    return this.#failures;
  }

  /** The annotation text last asked for. */
  get subnets(): string {
    return this.#subnets;
  }

  /**
   * The local addresses a previous run of the agent recorded in the Lease (empty when there
   * was no Lease); `undefined` until the Lease has been read or created (before the first
   * renewal).
   */
  get previousLocalAddresses(): ReadonlySet<string> | undefined {
    return this.#previousLocalAddresses;
  }

  /** The local addresses annotation text last asked for (`undefined`: never set). */
  get localAddresses(): string | undefined {
    return this.#localAddresses;
  }

  /**
   * Sets the local addresses the agent may have put on interfaces; a change is written at once
   * (not at the next renewal). Until the first call the Lease keeps what a previous run wrote.
   */
  setLocalAddresses(addresses: Iterable<string>): void {
    const text = formatLocalAddressesAnnotation(addresses);
    if (text === this.#localAddresses) return;
    this.#localAddresses = text;
    this.#wake?.();
  }

  /** The announcing annotation text last asked for (`undefined`: never set). */
  get announcing(): string | undefined {
    return this.#announcing;
  }

  /**
   * Sets the local addresses this node carries now and their interfaces; a change is written
   * at once (not at the next renewal).
   */
  setAnnouncing(entries: Iterable<AnnouncedAddress>): void {
    const text = formatAnnouncingAnnotation(entries);
    if (text === this.#announcing) return;
    this.#announcing = text;
    this.#wake?.();
  }

  /**
   * Sets the CIDRs to publish; a change is written at once (not at the next renewal). Entries
   * that are not CIDRs throw a `SubnetsAnnotationError`.
   */
  setSubnets(cidrs: readonly string[]): void {
    const text = formatSubnetsAnnotation(cidrs);
    if (text === this.#subnets) return;
    this.#subnets = text;
    this.#wake?.();
  }

  /** Renews until {@link NodeMembership.stop}. */
  run(): Promise<void> {
    this.#running ??= this.#loop();
    return this.#running;
  }

  /** Stops renewing (the Lease stays until it expires or {@link NodeMembership.release}). */
  async stop(): Promise<void> {
    this.#stopping.abort();
    this.#wake?.();
    await this.#running;
    clearTimeout(this.#fenceTimer);
  }

  /** Deletes this node's Lease so that other nodes take over at once. Never throws. */
  async release(): Promise<boolean> {
    try {
      await this.#options.api.deleteNamespacedLease({
        namespace: this.#options.namespace,
        name: this.#leaseName,
      });
      return true;
    } catch (error) {
      if (apiStatusCode(error) === 404) return true;
      this.#options.onError?.(`deleting Lease ${this.#leaseName}: ${errorMessage(error)}`);
      return false;
    }
  }

  async #loop(): Promise<void> {
    const stop = this.#stopping.signal;
    while (!stop.aborted) {
      const startedAt = performance.now();
      // A change asked for while this write is under way is written right after it.
      const wantedBefore = this.#wanted();
      try {
        await this.#renew();
        this.#renewed(startedAt);
      } catch (error) {
        this.#failures++;
        this.#options.onError?.(`renewing Lease ${this.#leaseName}: ${errorMessage(error)}`);
      }
      if (stop.aborted) break;
      const elapsed = performance.now() - startedAt;
      // After a failure, retry sooner (but not in a tight loop).
      const waitMs = this.#written === undefined
        ? Math.min(this.#options.renewMs, 500)
        : this.#options.renewMs - elapsed;
      if (this.#wanted() === wantedBefore) await this.#sleep(Math.max(0, waitMs));
    }
  }

  /** What a write must carry beyond the renewal itself, to notice changes. */
  #wanted(): string {
    return `${this.#subnets}\n${this.#localAddresses ?? "-"}\n${this.#announcing ?? "-"}`;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = () => {
        this.#wake = undefined;
        done();
      };
    });
  }

  #renewed(startedAt: number): void {
    this.#renewals++;
    this.#lastRenewAt = startedAt;
    clearTimeout(this.#fenceTimer);
    const deadline = this.#lastRenewAt + this.#options.leaseDurationMs - performance.now();
    this.#fenceTimer = setTimeout(() => this.#setFenced(true), Math.max(0, deadline));
    this.#setFenced(false);
    this.#options.onRenewed?.();
  }

  #setFenced(fenced: boolean): void {
    if (fenced === this.#fenced) return;
    this.#fenced = fenced;
    this.#options.onFenceChange?.(fenced);
  }

  #body(base: V1Lease | undefined): V1Lease {
    const { namespace, nodeName, leaseDurationMs } = this.#options;
    const now = new MicroTime();
    return {
      ...(base ?? {}),
      metadata: {
        ...(base?.metadata ?? { name: this.#leaseName, namespace }),
        annotations: {
          ...(base?.metadata?.annotations ?? {}),
          [SUBNETS_ANNOTATION]: this.#subnets,
          ...(this.#localAddresses === undefined
            ? {}
            : { [LOCAL_ADDRESSES_ANNOTATION]: this.#localAddresses }),
          ...(this.#announcing === undefined ? {} : { [ANNOUNCING_ANNOTATION]: this.#announcing }),
        },
      },
      spec: {
        ...(base?.spec ?? {}),
        holderIdentity: nodeName,
        leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
        renewTime: now,
        ...(base === undefined || base.spec?.holderIdentity !== nodeName
          ? { acquireTime: now }
          : {}),
      },
    };
  }

  async #renew(): Promise<void> {
    const { api, namespace } = this.#options;
    const name = this.#leaseName;
    if (this.#written === undefined) {
      try {
        this.#written = await api.readNamespacedLease({ namespace, name });
        // Only the first read tells what a previous run left (later ones read our own writes).
        this.#previousLocalAddresses ??= parseLocalAddressesAnnotation(
          this.#written.metadata?.annotations?.[LOCAL_ADDRESSES_ANNOTATION] ?? "",
        );
      } catch (error) {
        if (apiStatusCode(error) !== 404) throw error;
        this.#written = await api.createNamespacedLease({ namespace, body: this.#body(undefined) });
        this.#previousLocalAddresses ??= new Set();
        return;
      }
    }
    try {
      this.#written = await api.replaceNamespacedLease({
        namespace,
        name,
        body: this.#body(this.#written),
      });
    } catch (error) {
      // Changed or deleted behind our back: read (or create) it again next time round.
      const status = apiStatusCode(error);
      if (status === 409 || status === 404) this.#written = undefined;
      throw error;
    }
  }
}

/**
 * The local addresses this agent may have put on the node's interfaces, in this run or (as
 * recorded in the Lease) a previous one: its own to remove when not won, even when no Service
 * or pool names them any more (a Netbox address, an address of a deleted pool). Every change
 * is written to the Lease through {@link NodeMembership.setLocalAddresses}.
 */
export class RecordedLocalAddresses {
  readonly #membership: Pick<NodeMembership, "previousLocalAddresses" | "setLocalAddresses">;
  /** `undefined` until the Lease has been read. */
  #addresses: Set<string> | undefined;

  constructor(membership: Pick<NodeMembership, "previousLocalAddresses" | "setLocalAddresses">) {
    this.#membership = membership;
  }

  /**
   * The addresses, or `undefined` while the Lease has not been read. The first call after it
   * has starts from what the previous run recorded and `carried` (what this run carries).
   */
  current(carried: Iterable<string>): ReadonlySet<string> | undefined {
    if (this.#addresses === undefined) {
      const previous = this.#membership.previousLocalAddresses;
      if (previous === undefined) return undefined;
      this.#addresses = new Set([...previous, ...carried]);
      if (previous.size > 0) {
        log.info("a previous run recorded local addresses {addresses}", {
          addresses: [...previous].join(", "),
        });
      }
    }
    return this.#addresses;
  }

  /** Records addresses before they are added, so that a crash right after still knows them. */
  adding(addresses: readonly string[]): void {
    const known = this.#addresses;
    if (known === undefined) return;
    const unknown = addresses.filter((address) => !known.has(address));
    for (const address of unknown) known.add(address);
    if (unknown.length > 0) this.#membership.setLocalAddresses(known);
  }

  /**
   * After an apply, what stays ours: the addresses carried now, and those of `failedDeletes`
   * that were recorded (still on an interface).
   */
  keep(carried: Iterable<string>, failedDeletes: readonly string[]): void {
    const known = this.#addresses;
    if (known === undefined) return;
    const kept = new Set(carried);
    for (const address of failedDeletes) if (known.has(address)) kept.add(address);
    this.#addresses = kept;
    this.#membership.setLocalAddresses(kept);
  }
}
