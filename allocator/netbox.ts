/**
 * The allocator's side of Netbox: takes reserved addresses (reserved -> active), gives them back
 * (active -> reserved), and lists what is active, for every Netbox group. One client per Netbox
 * URL (so the read cache is shared); takes and sweeps for one URL and tenant run one at a time,
 * so that two Services never pick the same reserved address.
 *
 * Each address taken is marked in its Netbox `description` with the ServiceGroup's uid and the
 * Service, which is how addresses left active by a crash are found and given back later.
 *
 * @module
 */
import {
  type IpFamily,
  type NetboxAddress,
  NetboxClient,
  NetboxError,
  type NetboxFailure,
} from "../ipam/mod.ts";
import type { FamilyPolicy } from "./request.ts";
import type { NetboxOffer, NetboxSource } from "./allocator.ts";

/** Settings of {@linkcode NetboxBroker}. */
export interface NetboxBrokerOptions {
  /** `NETBOX_USER_TOKEN`; `undefined` makes every Netbox call fail with a message. */
  readonly token: string | undefined;
  readonly timeoutMs?: number;
  readonly cacheTtlMs?: number;
}

/** What the broker writes into `description`, and how it recognises its own addresses. */
export interface NetboxMarker {
  /** The ServiceGroup's uid. */
  readonly groupUid: string;
  /** `namespace/name` of the Service the address is taken for. */
  readonly service: string;
}

/** The outcome of one Netbox call, for the group's `NetboxAvailable` condition. */
export type NetboxCallResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: NetboxError };

/** What a sweep found. */
export interface NetboxSweep {
  /** Addresses held from the group when Netbox was asked, each with one Service holding it. */
  readonly held: ReadonlyMap<string, string>;
  /** Held addresses that Netbox listed as reserved again, and that were made active again. */
  readonly reclaimed: readonly string[];
  /** Held addresses Netbox does not list as active or reserved for the tenant. */
  readonly missing: readonly string[];
  /** Active addresses marked with this group that nobody held: given back. */
  readonly returned: readonly string[];
}

const DESCRIPTION_PREFIX = "purelb:";
const DESCRIPTION_MAX = 200;
/** Failures after which a write may or may not have happened. */
const UNCERTAIN: ReadonlySet<NetboxFailure> = new Set([
  "timeout",
  "network",
  "serverError",
  "contentType",
  "body",
]);
/** A reserved address that Netbox refuses to activate is skipped; this many times at most. */
const MAX_REFUSED = 3;

/** The description written on an address taken for `marker.service`. */
export function markerDescription(marker: NetboxMarker): string {
  return `${DESCRIPTION_PREFIX}${marker.groupUid} ${marker.service}`.slice(0, DESCRIPTION_MAX);
}

function isMarkedBy(address: NetboxAddress, groupUid: string): boolean {
  return address.description.startsWith(`${DESCRIPTION_PREFIX}${groupUid} `);
}

/** See the module documentation. */
export class NetboxBroker {
  readonly #options: NetboxBrokerOptions;
  readonly #clients = new Map<string, NetboxClient>();
  readonly #locks = new Map<string, Promise<void>>();
  /** Addresses made active for an offer that the allocator has not recorded yet. */
  readonly #inFlight = new Set<string>();

  /** Builds the broker; it makes no call until asked. */
  constructor(options: NetboxBrokerOptions) {
    this.#options = options;
  }

  /**
   * Takes one reserved address of each family in `families` (in order) for `marker.service`.
   * `AnyOne` stops at the first family that succeeds; `SingleStack` and `RequireDualStack` stop
   * at the first failure. Failures are returned per family, never thrown. Call
   * {@linkcode settle} once the allocator has the offer.
   */
  async take(
    source: NetboxSource,
    families: readonly IpFamily[],
    policy: FamilyPolicy,
    marker: NetboxMarker,
    signal?: AbortSignal,
  ): Promise<{ readonly offer: NetboxOffer; readonly result: NetboxCallResult }> {
    const addresses: { address: string; family: IpFamily }[] = [];
    const failures: Partial<Record<IpFamily, string>> = {};
    let result: NetboxCallResult = { ok: true };
    await this.#exclusive(source, async () => {
      for (const family of families) {
        try {
          const taken = await this.#takeOne(source, family, marker, signal);
          this.#inFlight.add(taken.address);
          addresses.push({ address: taken.address, family });
          if (policy === "AnyOne") break;
        } catch (error) {
          if (!(error instanceof NetboxError)) throw error;
          failures[family] = error.message;
          if (error.failure !== "exhausted") result = { ok: false, error };
          if (policy === "SingleStack" || policy === "RequireDualStack") break;
        }
      }
    });
    return { offer: { source, addresses, failures }, result };
  }

  /** The allocator has recorded (or dropped) the offer: sweeps may judge its addresses now. */
  settle(offer: NetboxOffer): void {
    for (const { address } of offer.addresses) this.#inFlight.delete(address);
  }

  /**
   * Gives an address back (active -> reserved) and clears our description. An address that is
   * already reserved, or that Netbox no longer lists for the tenant, needs nothing.
   * Throws {@linkcode NetboxError}.
   */
  async giveBack(source: NetboxSource, address: string, signal?: AbortSignal): Promise<void> {
    const client = this.#client(source.url);
    const found = await client.list({ tenant: source.tenant, address }, signal);
    for (const record of found) {
      if (record.address !== address || record.status !== "active") continue;
      const description = record.description.startsWith(DESCRIPTION_PREFIX)
        ? { description: "" }
        : {};
      await client.update(record.id, { status: "reserved", ...description }, signal);
    }
  }

  /**
   * Compares what Netbox lists as active for the tenant with what the allocator holds from the
   * group: held addresses that went back to reserved are made active again, active addresses
   * marked with this group and held by nobody are given back. Throws {@linkcode NetboxError}.
   */
  async sweep(
    source: NetboxSource,
    groupUid: string,
    heldNow: () => ReadonlyMap<string, string>,
    signal?: AbortSignal,
  ): Promise<NetboxSweep> {
    return await this.#exclusive(source, async () => {
      const client = this.#client(source.url);
      const activeList = await client.list({ tenant: source.tenant, status: "active" }, signal);
      // Read after the list: an address taken before it is either held now or still in flight.
      const held = heldNow();
      const inFlight = new Set(this.#inFlight);
      const active = new Set(activeList.map((a) => a.address));
      const reclaimed: string[] = [];
      const missing: string[] = [];
      for (const [address, service] of held) {
        if (active.has(address)) continue;
        const [record] = (await client.list({ tenant: source.tenant, address }, signal))
          .filter((r) => r.address === address && r.status === "reserved");
        if (record === undefined) {
          missing.push(address);
          continue;
        }
        const description = markerDescription({ groupUid, service });
        await client.update(record.id, { status: "active", description }, signal);
        reclaimed.push(address);
      }
      const returned: string[] = [];
      for (const record of activeList) {
        if (
          held.has(record.address) || inFlight.has(record.address) ||
          !isMarkedBy(record, groupUid)
        ) {
          continue;
        }
        await client.update(record.id, { status: "reserved", description: "" }, signal);
        returned.push(record.address);
      }
      return { held, reclaimed, missing, returned };
    });
  }

  async #takeOne(
    source: NetboxSource,
    family: IpFamily,
    marker: NetboxMarker,
    signal?: AbortSignal,
  ): Promise<NetboxAddress> {
    const client = this.#client(source.url);
    const refused = new Set<number>();
    for (;;) {
      const candidate = await client.first(
        { tenant: source.tenant, status: "reserved", family },
        (a) =>
          a.family === family && a.status === "reserved" && !refused.has(a.id) &&
          !this.#inFlight.has(a.address),
        signal,
      );
      if (candidate === undefined) {
        throw new NetboxError(
          "exhausted",
          `Netbox at ${client.baseUrl} has no reserved ${family} address left for tenant ` +
            `${source.tenant}`,
        );
      }
      try {
        const taken = await client.update(
          candidate.id,
          { status: "active", description: markerDescription(marker) },
          signal,
        );
        if (taken.status !== "active" || taken.address !== candidate.address) {
          throw new NetboxError(
            "body",
            `Netbox answered the activation of ${candidate.address} with ${taken.address} ` +
              `in status ${taken.status}`,
          );
        }
        return taken;
      } catch (error) {
        if (!(error instanceof NetboxError)) throw error;
        if (error.failure === "refused" && refused.size < MAX_REFUSED) {
          // Someone else took it between our read and our write: try the next one.
          refused.add(candidate.id);
          continue;
        }
        if (UNCERTAIN.has(error.failure)) await this.#undoUncertain(client, candidate);
        throw error;
      }
    }
  }

  /** A write whose answer was lost may have happened: put the address back, best effort. */
  async #undoUncertain(client: NetboxClient, candidate: NetboxAddress): Promise<void> {
    try {
      await client.update(candidate.id, { status: "reserved", description: candidate.description });
    } catch {
      // The sweep at the next leadership finds it by its description.
    }
  }

  #client(url: string): NetboxClient {
    let client = this.#clients.get(url);
    if (client === undefined) {
      client = new NetboxClient({
        url,
        token: this.#options.token,
        ...(this.#options.timeoutMs === undefined ? {} : { timeoutMs: this.#options.timeoutMs }),
        ...(this.#options.cacheTtlMs === undefined ? {} : { cacheTtlMs: this.#options.cacheTtlMs }),
      });
      this.#clients.set(url, client);
    }
    return client;
  }

  async #exclusive<T>(source: NetboxSource, work: () => Promise<T>): Promise<T> {
    const key = `${source.url}\n${source.tenant}`;
    const before = this.#locks.get(key) ?? Promise.resolve();
    let release = () => {};
    const mine = new Promise<void>((resolve) => release = resolve);
    const chained = before.then(() => mine);
    this.#locks.set(key, chained);
    await before;
    try {
      return await work();
    } finally {
      release();
      if (this.#locks.get(key) === chained) this.#locks.delete(key);
    }
  }
}
