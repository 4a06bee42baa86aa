/**
 * The allocator's side of Netbox: takes reserved addresses (reserved -> active), gives them back
 * (active -> reserved), and lists what is active, for every Netbox group. One client per
 * normalised Netbox origin (so the read cache is shared, whatever the spelling of the URL).
 *
 * Safe against every other writer: NetBox accepts any valid status change (last write wins), so
 * every change is conditional: `If-Match` with the record's ETag (412: someone else changed it,
 * try the next address); a NetBox that sends no ETag (before 4.6) has each activation read back
 * and kept only when our marker is still there. Takes for one origin and tenant run in parallel
 * (bounded by the controller's workers): a shared candidate list per origin, tenant and family
 * hands each take a different reserved address, so a backlog costs NetBox's latency a few times,
 * not once per Service. A take never offers an address the allocator holds from any group.
 *
 * Each address taken is marked in its Netbox `description` with the ServiceGroup's uid and the
 * Service, which is how addresses left active by a crash are found and given back later.
 *
 * @module
 */
import { type IpFamily } from "../ipam/mod.ts";
import {
  type NetboxAddress,
  NetboxClient,
  NetboxError,
  type NetboxFailure,
  netboxOrigin,
  netboxSourceKey,
} from "../netbox/mod.ts";
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
/**
 * Whether a failure leaves it open whether the write happened: a write may land after its
 * answer was lost, so the controller compares the group with Netbox again soon.
 */
export function isUncertain(failure: NetboxFailure): boolean {
  return UNCERTAIN.has(failure);
}

/** A reserved address that Netbox refuses to activate is skipped; this many times at most. */
const MAX_REFUSED = 3;
/** Addresses another writer took under a take's hands before it gives up (for now). */
const MAX_LOST = 50;

/** The description written on an address taken for `marker.service`. */
export function markerDescription(marker: NetboxMarker): string {
  return `${DESCRIPTION_PREFIX}${marker.groupUid} ${marker.service}`.slice(0, DESCRIPTION_MAX);
}

function isMarkedBy(address: NetboxAddress, groupUid: string): boolean {
  return address.description.startsWith(`${DESCRIPTION_PREFIX}${groupUid} `);
}

/** Takes or gives back in bulk at most this many addresses in one request. */
const MAX_BATCH = 25;
/** Batches of one Netbox and tenant at Netbox at the same time (NetBox has several workers). */
const LANES = 2;
/** How long a batch waits for requests that arrive together (workers finishing together). */
const GATHER_MS = 15;

/** A take waiting for the next batch of its Netbox, tenant and family. */
interface TakeRequest {
  readonly usable: (address: NetboxAddress) => boolean;
  readonly description: string;
  readonly signal: AbortSignal | undefined;
  readonly resolve: (address: NetboxAddress) => void;
  readonly reject: (error: unknown) => void;
}

interface TakeQueue {
  readonly pending: TakeRequest[];
  /** Lanes draining the queue, and those of them with a batch at Netbox. */
  running: number;
  busy: number;
}

/** A take and the candidate it was given. */
interface Assigned {
  readonly request: TakeRequest;
  readonly candidate: NetboxAddress;
}

/** Bulk activations of one batch before its takes go on one by one. */
const BULK_ATTEMPTS = 3;

/** A give-back waiting for the next batch of its Netbox and tenant. */
interface GiveRequest {
  readonly address: string;
  readonly signal: AbortSignal | undefined;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface GiveQueue {
  readonly pending: GiveRequest[];
  /** Lanes draining the queue, and those of them with a batch at Netbox. */
  running: number;
  busy: number;
}

/** How a conditional change of one record went. */
type ChangeOutcome =
  | { readonly kind: "changed"; readonly record: NetboxAddress }
  /** Someone else changed the record first; it is not what we expected any more. */
  | { readonly kind: "lost" };

/**
 * Reserved addresses of one origin, tenant and family, read a page at a time and handed out
 * one by one: concurrent takes never get the same candidate.
 */
class Candidates {
  readonly #client: NetboxClient;
  readonly #tenant: string;
  readonly #family: IpFamily;
  #buffer: NetboxAddress[] = [];
  #refill: Promise<void> | undefined;

  constructor(client: NetboxClient, tenant: string, family: IpFamily) {
    this.#client = client;
    this.#tenant = tenant;
    this.#family = family;
  }

  /**
   * The next reserved address for which `usable` holds, or undefined when Netbox lists none.
   * Reads Netbox again (from the first page) whenever what it read is used up.
   */
  async next(
    usable: (address: NetboxAddress) => boolean,
    signal?: AbortSignal,
  ): Promise<NetboxAddress | undefined> {
    for (let reads = 0;; reads++) {
      const index = this.#buffer.findIndex(usable);
      if (index >= 0) return this.#buffer.splice(index, 1)[0];
      if (reads >= 2) return undefined;
      this.#refill ??= this.#read(usable, signal).finally(() => this.#refill = undefined);
      await this.#refill;
    }
  }

  /** Reads pages from the first until one has a usable address; keeps every usable one. */
  async #read(usable: (address: NetboxAddress) => boolean, signal?: AbortSignal): Promise<void> {
    const filter = { tenant: this.#tenant, status: "reserved", family: this.#family } as const;
    const found: NetboxAddress[] = [];
    for await (const page of this.#client.pages(filter, signal)) {
      found.push(
        ...page.filter((a) => a.family === this.#family && a.status === "reserved" && usable(a)),
      );
      if (found.length > 0) break;
    }
    this.#buffer = found;
  }
}

/** See the module documentation. */
export class NetboxBroker {
  readonly #options: NetboxBrokerOptions;
  readonly #clients = new Map<string, NetboxClient>();
  readonly #candidates = new Map<string, Candidates>();
  readonly #locks = new Map<string, Promise<void>>();
  /** Addresses being taken, or made active for an offer the allocator has not recorded yet. */
  readonly #inFlight = new Set<string>();
  readonly #takeQueues = new Map<string, TakeQueue>();
  readonly #giveQueues = new Map<string, GiveQueue>();
  /** Per origin: whether a bulk PATCH honours If-Match for every record. */
  readonly #bulk = new Map<string, Promise<boolean>>();
  /** The record (id and ETag after our last write) of addresses we changed, per source. */
  readonly #known = new Map<string, { readonly id: number; readonly etag: string | undefined }>();

  /** Builds the broker; it makes no call until asked. */
  constructor(options: NetboxBrokerOptions) {
    this.#options = options;
  }

  /**
   * Takes one reserved address of each family in `families` (in order) for `marker.service`.
   * `AnyOne` stops at the first family that succeeds; `SingleStack` and `RequireDualStack` stop
   * at the first failure. Addresses for which `avoid` holds (held by the allocator through any
   * group) are never taken. Failures are returned per family, never thrown. Call
   * {@linkcode settle} once the allocator has the offer.
   */
  async take(
    source: NetboxSource,
    families: readonly IpFamily[],
    policy: FamilyPolicy,
    marker: NetboxMarker,
    signal?: AbortSignal,
    avoid: (address: string) => boolean = () => false,
  ): Promise<{ readonly offer: NetboxOffer; readonly result: NetboxCallResult }> {
    const addresses: { address: string; family: IpFamily }[] = [];
    const failures: Partial<Record<IpFamily, NetboxError>> = {};
    let result: NetboxCallResult = { ok: true };
    for (const family of families) {
      try {
        const taken = await this.#takeOne(source, family, marker, avoid, signal);
        addresses.push({ address: taken.address, family });
        if (policy === "AnyOne") break;
      } catch (error) {
        if (!(error instanceof NetboxError)) throw error;
        failures[family] = error;
        if (error.failure !== "exhausted") result = { ok: false, error };
        if (policy === "SingleStack" || policy === "RequireDualStack") break;
      }
    }
    return { offer: { source, addresses, failures }, result };
  }

  /** The allocator has recorded (or dropped) the offer: sweeps may judge its addresses now. */
  settle(offer: NetboxOffer): void {
    for (const { address } of offer.addresses) this.#inFlight.delete(address);
  }

  /**
   * Gives an address back (active -> reserved), conditionally, and clears our description. An
   * address that is already reserved, or that Netbox no longer lists for the tenant, needs
   * nothing. Throws {@linkcode NetboxError}.
   */
  giveBack(source: NetboxSource, address: string, signal?: AbortSignal): Promise<void> {
    const key = netboxSourceKey(source);
    let queue = this.#giveQueues.get(key);
    if (queue === undefined) {
      queue = { pending: [], running: 0, busy: 0 };
      this.#giveQueues.set(key, queue);
    }
    const pending = queue.pending;
    const promise = new Promise<void>((resolve, reject) => {
      pending.push({ address, signal, resolve, reject });
    });
    if (queue.running < LANES) void this.#drainGives(queue, source);
    return promise;
  }

  async #drainGives(queue: GiveQueue, source: NetboxSource): Promise<void> {
    await this.#drain(queue, (batch) => this.#giveBatch(source, batch));
  }

  /**
   * Runs a queue's requests in batches, in up to {@linkcode LANES} lanes: a lane waits
   * {@linkcode GATHER_MS} for requests arriving together, then takes its share of what is
   * pending; requests arriving while batches are at Netbox form the next ones.
   */
  async #drain<R extends { readonly reject: (error: unknown) => void }>(
    queue: { readonly pending: R[]; running: number; busy: number },
    run: (batch: readonly R[]) => Promise<void>,
  ): Promise<void> {
    queue.running++;
    try {
      await new Promise((resolve) => setTimeout(resolve, GATHER_MS));
      while (queue.pending.length > 0) {
        const free = Math.max(1, LANES - queue.busy);
        const share = Math.min(MAX_BATCH, Math.ceil(queue.pending.length / free));
        const batch = queue.pending.splice(0, share);
        queue.busy++;
        try {
          await run(batch);
        } catch (error) {
          for (const request of batch) request.reject(error);
        } finally {
          queue.busy--;
        }
      }
    } finally {
      queue.running--;
    }
  }

  /**
   * Addresses whose record we wrote last go back in one conditional bulk PATCH; the others, and
   * all of them if one changed meanwhile, one by one.
   */
  async #giveBatch(source: NetboxSource, batch: readonly GiveRequest[]): Promise<void> {
    const client = this.#client(source);
    const sourceKey = netboxSourceKey(source);
    const unique = new Map<string, GiveRequest[]>();
    for (const request of batch) {
      unique.set(request.address, [...(unique.get(request.address) ?? []), request]);
    }
    const known = [...unique.keys()].flatMap((address) => {
      const record = this.#known.get(`${sourceKey} ${address}`);
      return record?.etag === undefined ? [] : [{ address, id: record.id, etag: record.etag }];
    });
    const settle = (address: string, error?: unknown) => {
      for (const request of unique.get(address) ?? []) {
        if (error === undefined) request.resolve();
        else request.reject(error);
      }
      unique.delete(address);
    };
    if (known.length > 0 && await this.#bulkConditional(client, known[0]?.id)) {
      try {
        await client.updateMany(
          known.map(({ id }) => ({ id, status: "reserved", description: "" })),
          { ifMatch: known.map((k) => k.etag), signal: batch[0]?.signal },
        );
        for (const { address } of known) {
          this.#known.delete(`${sourceKey} ${address}`);
          settle(address);
        }
      } catch (error) {
        if (!(error instanceof NetboxError)) throw error;
        if (error.failure !== "conflict" && error.failure !== "refused") {
          for (const address of [...unique.keys()]) settle(address, error);
          return;
        }
        // One of them changed: each on its own.
      }
    }
    await Promise.all(
      [...unique.keys()].map((address) =>
        this.#giveBackOne(client, source, address, unique.get(address)?.[0]?.signal).then(
          () => settle(address),
          (error) => settle(address, error),
        )
      ),
    );
  }

  async #giveBackOne(
    client: NetboxClient,
    source: NetboxSource,
    address: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const key = `${netboxSourceKey(source)} ${address}`;
    const known = this.#known.get(key);
    const records = known === undefined
      ? (await client.list({ tenant: source.tenant, address }, signal))
        .filter((r) => r.address === address)
      : [await this.#knownRecord(client, known, signal)];
    for (const record of records) {
      if (record === undefined) continue;
      const outcome = await this.#change(
        client,
        record,
        // A record we wrote that now carries someone else's words is theirs now.
        (r) =>
          r.address === address && r.status === "active" &&
          (known === undefined || r.description === "" ||
            r.description.startsWith(DESCRIPTION_PREFIX)),
        (r) => ({
          status: "reserved",
          ...(r.description.startsWith(DESCRIPTION_PREFIX) ? { description: "" } : {}),
        }),
        signal,
      );
      if (outcome.kind === "changed") this.#known.delete(key);
    }
    this.#known.delete(key);
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
      const client = this.#client(source);
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
        const outcome = await this.#change(
          client,
          record,
          (r) => r.status === "reserved",
          () => ({ status: "active", description }),
          signal,
        );
        if (outcome.kind === "changed") {
          this.#remember(source, outcome.record);
          reclaimed.push(address);
        } else missing.push(address);
      }
      const returned: string[] = [];
      for (const record of activeList) {
        if (
          held.has(record.address) || inFlight.has(record.address) ||
          !isMarkedBy(record, groupUid)
        ) {
          continue;
        }
        const outcome = await this.#change(
          client,
          record,
          (r) => r.status === "active" && r.description === record.description,
          () => ({ status: "reserved", description: "" }),
          signal,
        );
        if (outcome.kind === "changed") returned.push(record.address);
      }
      return { held, reclaimed, missing, returned };
    });
  }

  /** Queues a take; takes queued while one batch is at Netbox go together in the next. */
  #takeOne(
    source: NetboxSource,
    family: IpFamily,
    marker: NetboxMarker,
    avoid: (address: string) => boolean,
    signal?: AbortSignal,
  ): Promise<NetboxAddress> {
    const key = `${netboxSourceKey(source)} ${family}`;
    let queue = this.#takeQueues.get(key);
    if (queue === undefined) {
      queue = { pending: [], running: 0, busy: 0 };
      this.#takeQueues.set(key, queue);
    }
    const description = markerDescription(marker);
    const promise = new Promise<NetboxAddress>((resolve, reject) => {
      queue.pending.push({
        usable: (a) => !this.#inFlight.has(a.address) && !avoid(a.address),
        description,
        signal,
        resolve,
        reject,
      });
    });
    if (queue.running < LANES) void this.#drainTakes(queue, source, family);
    return promise;
  }

  async #drainTakes(queue: TakeQueue, source: NetboxSource, family: IpFamily): Promise<void> {
    await this.#drain(queue, (batch) => this.#takeBatch(source, family, batch));
  }

  /**
   * One candidate per request, all activated in one conditional bulk PATCH; if any changed
   * meanwhile (412) or Netbox refuses one, each goes on alone (conditional, next candidate).
   */
  async #takeBatch(
    source: NetboxSource,
    family: IpFamily,
    batch: readonly TakeRequest[],
  ): Promise<void> {
    const client = this.#client(source);
    const candidates = this.#candidatesOf(source, family, client);
    let assigned: Assigned[] = [];
    // Once Netbox has nothing left for one take of the batch, it has nothing for the others.
    let exhausted = false;
    for (const request of batch) {
      let candidate: NetboxAddress | undefined;
      try {
        candidate = exhausted ? undefined : await candidates.next(request.usable, request.signal);
      } catch (error) {
        request.reject(error);
        continue;
      }
      if (candidate === undefined) {
        exhausted = true;
        request.reject(this.#exhausted(client, source, family));
        continue;
      }
      this.#inFlight.add(candidate.address);
      assigned.push({ request, candidate });
    }
    for (let attempt = 0; attempt < BULK_ATTEMPTS && assigned.length > 0; attempt++) {
      const etags = assigned.flatMap(({ candidate }) => candidate.etag ?? []);
      if (
        assigned.length < 2 || etags.length !== assigned.length ||
        !(await this.#bulkConditional(client, assigned[0]?.candidate.id))
      ) {
        break;
      }
      try {
        const changed = await client.updateMany(
          assigned.map(({ request, candidate }) => ({
            id: candidate.id,
            status: "active",
            description: request.description,
          })),
          { ifMatch: etags, signal: batch[0]?.signal },
        );
        const byId = new Map(changed.map((r) => [r.id, r]));
        for (const { request, candidate } of assigned) {
          const record = byId.get(candidate.id);
          if (
            record === undefined || record.status !== "active" ||
            record.address !== candidate.address || record.description !== request.description
          ) {
            this.#inFlight.delete(candidate.address);
            request.reject(
              new NetboxError(
                "body",
                `Netbox answered the activation of ${candidate.address} with something else`,
              ),
            );
            continue;
          }
          this.#remember(source, record);
          request.resolve(record);
        }
        return;
      } catch (error) {
        if (!(error instanceof NetboxError)) throw error;
        if (UNCERTAIN.has(error.failure)) {
          await Promise.all(
            assigned.map(({ request, candidate }) =>
              this.#afterUncertain(source, client, candidate, request, error)
            ),
          );
          return;
        }
        if (error.failure === "refused") break; // Netbox refuses one of them: each on its own.
        if (error.failure !== "conflict") {
          for (const { request, candidate } of assigned) {
            this.#inFlight.delete(candidate.address);
            request.reject(error);
          }
          return;
        }
        // Someone changed one of them: read them again in one list, keep those still reserved
        // (with their new ETags), give the others another candidate, and try once more.
        try {
          assigned = await this.#replaceChanged(client, source, family, candidates, assigned);
        } catch (readError) {
          for (const { request, candidate } of assigned) {
            this.#inFlight.delete(candidate.address);
            request.reject(readError);
          }
          return;
        }
      }
    }
    await Promise.all(
      assigned.map(({ request, candidate }) =>
        this.#takeSingle(source, family, client, candidates, request, candidate)
          .then(request.resolve, request.reject)
      ),
    );
  }

  /** After a 412: the batch's records as they are now; a taken one is replaced by a new candidate. */
  async #replaceChanged(
    client: NetboxClient,
    source: NetboxSource,
    family: IpFamily,
    candidates: Candidates,
    assigned: readonly Assigned[],
  ): Promise<Assigned[]> {
    const fresh = new Map<number, NetboxAddress>();
    const ids = assigned.map(({ candidate }) => candidate.id);
    for await (const page of client.pages({ tenant: source.tenant, ids })) {
      for (const record of page) fresh.set(record.id, record);
    }
    const next: Assigned[] = [];
    for (const { request, candidate } of assigned) {
      const now = fresh.get(candidate.id);
      if (now !== undefined && now.status === "reserved" && now.address === candidate.address) {
        next.push({ request, candidate: now });
        continue;
      }
      this.#inFlight.delete(candidate.address);
      const replacement = await candidates.next(
        (a) => a.id !== candidate.id && request.usable(a),
        request.signal,
      );
      if (replacement === undefined) {
        request.reject(this.#exhausted(client, source, family));
        continue;
      }
      this.#inFlight.add(replacement.address);
      next.push({ request, candidate: replacement });
    }
    return next;
  }

  /** A bulk activation whose answer was lost: each record tells whether it happened. */
  async #afterUncertain(
    source: NetboxSource,
    client: NetboxClient,
    candidate: NetboxAddress,
    request: TakeRequest,
    error: NetboxError,
  ): Promise<void> {
    try {
      const current = await client.get(candidate.id, request.signal);
      if (current.status === "active" && current.description === request.description) {
        this.#remember(source, current);
        request.resolve(current);
        return;
      }
    } catch {
      // Unknown: the sweep gives it back if it shows up marked and held by nobody.
    }
    this.#inFlight.delete(candidate.address);
    request.reject(error);
  }

  /** Whether this Netbox checks `If-Match` per record in a bulk PATCH (asked once per origin). */
  #bulkConditional(client: NetboxClient, probeId: number | undefined): Promise<boolean> {
    if (probeId === undefined) return Promise.resolve(false);
    let known = this.#bulk.get(client.baseUrl);
    if (known === undefined) {
      known = this.#probeBulk(client, probeId);
      this.#bulk.set(client.baseUrl, known);
      // A failed probe (Netbox down) is asked again next time.
      known.then((ok) => {
        if (!ok && this.#bulk.get(client.baseUrl) === known) this.#bulk.delete(client.baseUrl);
      });
    }
    return known;
  }

  async #probeBulk(client: NetboxClient, probeId: number): Promise<boolean> {
    try {
      // An empty change under an ETag no record has: 412 where If-Match is honoured.
      await client.updateMany([{ id: probeId }], { ifMatch: ['W/"purelb-probe"'] });
      return false;
    } catch (error) {
      if (!(error instanceof NetboxError)) throw error;
      return error.failure === "conflict";
    }
  }

  #exhausted(client: NetboxClient, source: NetboxSource, family: IpFamily): NetboxError {
    return new NetboxError(
      "exhausted",
      `Netbox at ${client.baseUrl} has no reserved ${family} address left for tenant ` +
        `${source.tenant}`,
    );
  }

  /** One take on its own: conditional activation, the next candidate while others win. */
  async #takeSingle(
    source: NetboxSource,
    family: IpFamily,
    client: NetboxClient,
    candidates: Candidates,
    request: TakeRequest,
    first: NetboxAddress,
  ): Promise<NetboxAddress> {
    const skipped = new Set<number>();
    const { description, signal } = request;
    let refused = 0;
    let candidate: NetboxAddress | undefined = first;
    for (let lost = 0;;) {
      if (candidate === undefined) {
        candidate = await candidates.next(
          (a) => !skipped.has(a.id) && request.usable(a),
          signal,
        );
        if (candidate === undefined || lost >= MAX_LOST) {
          throw this.#exhausted(client, source, family);
        }
        this.#inFlight.add(candidate.address);
      }
      const current: NetboxAddress = candidate;
      candidate = undefined;
      let outcome: ChangeOutcome;
      try {
        outcome = await this.#change(
          client,
          current,
          (r) => r.status === "reserved" && r.address === current.address,
          () => ({ status: "active", description }),
          signal,
          (r) => r.status === "active" && r.description === description,
        );
      } catch (error) {
        this.#inFlight.delete(current.address);
        if (!(error instanceof NetboxError)) throw error;
        if (error.failure === "refused" && refused < MAX_REFUSED) {
          // Netbox will not activate this one (a validation rule): try the next.
          refused++;
          skipped.add(current.id);
          continue;
        }
        if (UNCERTAIN.has(error.failure)) {
          await this.#undoUncertain(client, current, description);
        }
        throw error;
      }
      if (outcome.kind === "lost") {
        // Another writer took it between our read and our write: try the next one.
        this.#inFlight.delete(current.address);
        skipped.add(current.id);
        lost++;
        continue;
      }
      if (outcome.record.address !== current.address) {
        this.#inFlight.delete(current.address);
        throw new NetboxError(
          "body",
          `Netbox answered the activation of ${current.address} with ${outcome.record.address}`,
        );
      }
      this.#remember(source, outcome.record);
      return outcome.record;
    }
  }

  /**
   * Changes `record` only if nobody else did first. With an ETag (given or derived from the
   * list), `If-Match`; on 412 the record is read again and, if `expect` still holds, changed
   * with its fresh ETag. Without If-Match support, the change is read back and kept only if
   * `confirm` (default: the status written) holds.
   */
  async #change(
    client: NetboxClient,
    record: NetboxAddress,
    expect: (record: NetboxAddress) => boolean,
    change: (record: NetboxAddress) => { status: string; description?: string },
    signal?: AbortSignal,
    confirm?: (record: NetboxAddress) => boolean,
  ): Promise<ChangeOutcome> {
    if (!expect(record)) return { kind: "lost" };
    let current = record;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (current.etag === undefined) {
        current = await client.get(current.id, signal);
        if (!expect(current)) return { kind: "lost" };
      }
      const wanted = change(current);
      let changed: NetboxAddress;
      try {
        changed = await client.update(current.id, wanted, { signal, ifMatch: current.etag });
      } catch (error) {
        if (!(error instanceof NetboxError) || error.failure !== "conflict") throw error;
        current = await client.get(current.id, signal);
        if (!expect(current)) return { kind: "lost" };
        continue;
      }
      if (client.conditional === false) {
        // This Netbox ignores If-Match: keep the change only if it is still ours.
        const back = await client.get(current.id, signal);
        const ours = confirm ?? ((r: NetboxAddress) => r.status === wanted.status);
        if (!ours(back)) return { kind: "lost" };
        changed = back;
      }
      return { kind: "changed", record: changed };
    }
    return { kind: "lost" };
  }

  /** A write whose answer was lost may have happened: put the address back, if it is ours. */
  async #undoUncertain(
    client: NetboxClient,
    candidate: NetboxAddress,
    description: string,
  ): Promise<void> {
    try {
      const current = await client.get(candidate.id);
      if (current.status !== "active" || current.description !== description) return;
      await client.update(
        candidate.id,
        { status: "reserved", description: candidate.description },
        { ifMatch: current.etag },
      );
    } catch {
      // The sweep at the next leadership finds it by its description.
    }
  }

  async #knownRecord(
    client: NetboxClient,
    known: { readonly id: number; readonly etag: string | undefined },
    signal?: AbortSignal,
  ): Promise<NetboxAddress | undefined> {
    try {
      return await client.get(known.id, signal);
    } catch (error) {
      if (error instanceof NetboxError && error.status === 404) return undefined;
      throw error;
    }
  }

  #remember(source: NetboxSource, record: NetboxAddress): void {
    this.#known.set(`${netboxSourceKey(source)} ${record.address}`, {
      id: record.id,
      etag: record.etag,
    });
  }

  #candidatesOf(source: NetboxSource, family: IpFamily, client: NetboxClient): Candidates {
    const key = `${netboxSourceKey(source)} ${family}`;
    let candidates = this.#candidates.get(key);
    if (candidates === undefined) {
      candidates = new Candidates(client, source.tenant, family);
      this.#candidates.set(key, candidates);
    }
    return candidates;
  }

  #client(source: NetboxSource): NetboxClient {
    const origin = netboxOrigin(source.url);
    let client = this.#clients.get(origin);
    if (client === undefined) {
      client = new NetboxClient({
        url: origin,
        token: this.#options.token,
        ...(this.#options.timeoutMs === undefined ? {} : { timeoutMs: this.#options.timeoutMs }),
        ...(this.#options.cacheTtlMs === undefined ? {} : { cacheTtlMs: this.#options.cacheTtlMs }),
      });
      this.#clients.set(origin, client);
    }
    return client;
  }

  async #exclusive<T>(source: NetboxSource, work: () => Promise<T>): Promise<T> {
    const key = netboxSourceKey(source);
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
