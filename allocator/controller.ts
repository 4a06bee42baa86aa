/**
 * The allocator controller: reads the Service and ServiceGroup caches, runs one work queue, and
 * asks the {@linkcode Allocator} for every decision. Only the leader runs workers; on becoming
 * leader it rebuilds its memory from the caches (every existing allocation registered before any
 * new one), and it stops writing the moment leadership is lost.
 *
 * @module
 */

import type { V1Lease, V1Service } from "@kubernetes/client-node";
import type { CoreApi, CustomObjectsLiteApi } from "../k8s/api.ts";
import { getLogger } from "@logtape/logtape";
import {
  type Cache,
  type Clock,
  errorMessage,
  type Outcome,
  runWorkers,
  WorkQueue,
} from "../k8s/mod.ts";
import {
  type AllocateOutcome,
  type AllocationFailure,
  Allocator,
  type FreedNetboxAddress,
  type GroupReport,
  type HeldAddress,
  type NetboxOffer,
  type NetboxSource,
} from "./allocator.ts";
import type { AllocationRequest } from "./request.ts";
import { NetboxError, netboxSourceKey } from "../netbox/mod.ts";
import { isUncertain, type NetboxBroker, type NetboxCallResult } from "./netbox.ts";
import {
  readServiceIntent,
  type RequestSettings,
  type RequestWarning,
  serviceKey,
} from "./request.ts";
import {
  ALLOCATED_BY_PURELB,
  Annotations,
  EventReason,
  PURELB_API_VERSION,
  PURELB_GROUP,
  PURELB_VERSION,
  SERVICE_GROUP_KIND,
  SERVICE_GROUP_PLURAL,
} from "../k8s/types.ts";
import type { EventSink, EventType } from "../k8s/events.ts";
import type { AllocatorMetrics } from "./metrics.ts";
import { groupStatusOf, type NetboxHealth, type ServiceGroupObject } from "./groupstatus.ts";
import { serviceChangeConcernsAllocator } from "./relevance.ts";
import { type Work, workKey, workOfKey } from "./work.ts";
import {
  AddressIndex,
  type AnnouncerRecord,
  announcerRecord,
  type AnnouncingValues,
  announcingValues,
  changedAddresses,
  nextExpiryMs,
} from "./announcing.ts";
import { canonicalAddress } from "../ipam/mod.ts";

/** The API writes the controller makes: Service status, ServiceGroup status. */
export type AllocatorApi =
  & Pick<CoreApi, "patchNamespacedServiceStatus">
  & Pick<CustomObjectsLiteApi, "patchNamespacedCustomObjectStatus">;

/** What the controller asks of Netbox ({@linkcode NetboxBroker} is the real one). */
export type NetboxBrokerApi = Pick<NetboxBroker, "take" | "settle" | "giveBack" | "sweep">;

/** Options for {@linkcode AllocatorController}. */
export interface AllocatorControllerOptions {
  /** Services, in the allocator's view (`allocatorServiceView`). */
  readonly services: Cache<V1Service>;
  /** The ServiceGroups of `namespace`. */
  readonly groups: Cache<ServiceGroupObject>;
  /**
   * The node Leases of `namespace` (`announcingLeaseView`): the source of the Services'
   * announcing annotations. Without it those annotations are not written.
   */
  readonly leases?: Cache<V1Lease>;
  readonly api: AllocatorApi;
  /** Takes and gives back addresses of Netbox ServiceGroups. */
  readonly netbox: NetboxBrokerApi;
  /** The namespace whose ServiceGroups are the pools (e.g. `purelb-system`). */
  readonly namespace: string;
  readonly settings: RequestSettings;
  readonly events: EventSink;
  readonly metrics: AllocatorMetrics;
  /** Concurrent workers (each does at most one API write at a time). Default 16. */
  readonly workers?: number;
  /** Time for the work queue's delays and backoff. Default: the system's. */
  readonly clock?: Clock;
}

/**
 * How often a Netbox group is compared with Netbox (addresses someone set back to reserved,
 * addresses left active by a crash).
 */
const NETBOX_SWEEP_INTERVAL_MS = 300_000;
/** After a Netbox write whose answer was lost, the group is compared with Netbox this much later. */
export const NETBOX_UNCERTAIN_SWEEP_MS = 15_000;
/** A Service that Netbox has no address for retries this often (other users may free some). */
export const NETBOX_EXHAUSTED_RETRY_MS = 30_000;
/** ServiceGroup status is written at most this often per group (counts change constantly). */
export const GROUP_STATUS_DELAY_MS = 1_000;

const DONE: Outcome = { kind: "done" };

/** The announcing annotations, in the order they are compared. */
const ANNOUNCING_KEYS = [Annotations.announcingIPv4, Annotations.announcingIPv6] as const;
/** A Lease is looked at again this long after the moment it expires. */
const EXPIRY_MARGIN_MS = 5;

const log = getLogger(["purelb", "allocator"]);

/** See the module documentation. */
export class AllocatorController {
  readonly #options: AllocatorControllerOptions;
  #queue: WorkQueue<string> | undefined;
  #allocator = new Allocator();
  /** Services that could not get what they asked for; retried when something is released. */
  readonly #waiting = new Set<string>();
  /** Per Service: the warnings last reported, so that a resync does not repeat them. */
  readonly #reportedWarnings = new Map<string, string>();
  /** Per Service: the reason of the `AllocationFailed` event last reported. */
  readonly #reportedFailures = new Map<string, string>();
  #leading = false;
  /** Last seen `metadata.generation` per ServiceGroup, to ignore status-only updates. */
  readonly #groupGenerations = new Map<string, number | undefined>();
  /** Netbox addresses waiting to go back to `reserved`, by the id of their return. */
  readonly #netboxReturns = new Map<string, FreedNetboxAddress>();
  /** Per Netbox group: how its last Netbox call went. */
  readonly #netboxHealth = new Map<string, NetboxHealth>();
  /** Per node Lease name: what it says about announcing. */
  readonly #announcers = new Map<string, AnnouncerRecord>();
  /** The (canonical) addresses each node Lease lists. */
  readonly #announcedAddresses = new AddressIndex();
  /** The (canonical) ingress addresses of each Service. */
  readonly #serviceAddresses = new AddressIndex();
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Lease expiries up to this time have been acted on. */
  #expiryCheckedAt = 0;

  /** Subscribes to the caches (they may be started before or after). */
  constructor(options: AllocatorControllerOptions) {
    this.#options = options;
    options.services.onChange((type, svc, previous) => {
      const deleted = type === "delete";
      const concerns = serviceChangeConcernsAllocator(
        deleted ? svc : previous,
        deleted ? undefined : svc,
        options.settings,
      );
      options.metrics.watchEvents.inc({ kind: "services", relevant: String(concerns) });
      const key = serviceKey(svc);
      if (concerns) this.#add({ kind: "service", key });
      if (options.leases === undefined) return;
      this.#indexService(key, deleted ? undefined : svc);
      if (!deleted && this.#announcingDiffers(svc)) this.#add({ kind: "announcing", key });
    });
    options.leases?.onChange((type, lease, previous) => {
      const name = lease.metadata?.name ?? "";
      const before = type === "add"
        ? undefined
        : announcerRecordOf(type === "delete" ? lease : previous);
      const after = type === "delete" ? undefined : announcerRecordOf(lease);
      this.#indexAnnouncer(name, after);
      const changed = changedAddresses(before, after, Date.now());
      options.metrics.watchEvents.inc({ kind: "leases", relevant: String(changed.size > 0) });
      this.#queueAnnouncingOf(changed);
      if (this.#leading) this.#armExpiryCheck();
    });
    options.groups.onChange((type, sg) => {
      // Our own status writes come back as updates; only spec changes (generation) matter.
      const name = sg.metadata?.name ?? "";
      const generation = sg.metadata?.generation;
      const specChanged = type !== "update" || this.#groupGenerations.get(name) !== generation;
      options.metrics.watchEvents.inc({ kind: "servicegroups", relevant: String(specChanged) });
      if (!specChanged) return;
      if (type === "delete") this.#groupGenerations.delete(name);
      else this.#groupGenerations.set(name, generation);
      this.#add({ kind: "groups" });
    });
    options.metrics.observePools(() => this.#leading ? this.#allocator.groupReports() : []);
  }

  /** True while this replica leads and writes. */
  get leading(): boolean {
    return this.#leading;
  }

  /**
   * Runs the allocator until `leadership` aborts: waits for both caches, rebuilds its memory
   * from them, then processes events. Resolves once the workers have stopped.
   */
  async lead(leadership: AbortSignal): Promise<void> {
    const { services, groups } = this.#options;
    await Promise.all([services.synced, groups.synced]);
    if (leadership.aborted) return;
    this.#allocator = new Allocator();
    this.#waiting.clear();
    this.#reportedWarnings.clear();
    this.#reportedFailures.clear();
    this.#netboxReturns.clear();
    const registered = this.#rebuildFromCaches();
    log.info("leading: {groups} ServiceGroups, {registered} existing allocations registered", {
      groups: groups.list().length,
      registered,
    });
    const queue = new WorkQueue<string>(
      this.#options.clock === undefined ? {} : { clock: this.#options.clock },
    );
    this.#queue = queue;
    this.#leading = true;
    this.#queueGroupWork(this.#allocator.groupReports());
    this.#queueEveryService();
    leadership.addEventListener("abort", () => queue.shutDown(), { once: true });
    this.#startAnnouncing(leadership);
    await runWorkers(queue, this.#options.workers ?? 16, (key) => {
      if (leadership.aborted) return DONE;
      const work = workOfKey(key);
      this.#options.metrics.reconciles.inc({ kind: work.kind });
      return this.#process(work, leadership);
    }, {
      onError: (key, error) => log.warn("{key}: {error}", { key, error: errorMessage(error) }),
    });
    this.#leading = false;
    this.#queue = undefined;
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    log.info("stopped leading");
  }

  #process(work: Work, leadership: AbortSignal): Outcome | Promise<Outcome> {
    switch (work.kind) {
      case "service":
        return this.#syncService(work.key, leadership);
      case "groups":
        return this.#syncGroups();
      case "group_status":
        return this.#writeGroupStatus(work.group, leadership);
      case "netbox_return":
        return this.#returnToNetbox(work.id, leadership);
      case "netbox_sweep":
        return this.#sweepNetbox(work.group, leadership);
      case "announcing":
        return this.#syncAnnouncing(work.key, leadership);
      default: {
        const unknown: never = work;
        throw new TypeError(`unknown work ${JSON.stringify(unknown)}`);
      }
    }
  }

  #add(work: Work): void {
    this.#queue?.add(workKey(work));
  }

  #addAfter(work: Work, ms: number): void {
    this.#queue?.addAfter(workKey(work), ms);
  }

  /** Every group's status, and a sweep of every Netbox group. */
  #queueGroupWork(reports: readonly GroupReport[]): void {
    for (const report of reports) {
      this.#add({ kind: "group_status", group: report.name });
      if (report.kind === "netbox") this.#add({ kind: "netbox_sweep", group: report.name });
    }
  }

  #queueEveryService(): void {
    for (const svc of this.#options.services.list()) {
      this.#add({ kind: "service", key: serviceKey(svc) });
    }
  }

  #groupInputs() {
    return this.#options.groups.list().map((sg) => ({
      name: sg.metadata?.name ?? "",
      creationTimestamp: String(sg.metadata?.creationTimestamp ?? ""),
      spec: sg.spec,
    }));
  }

  /** Registers every allocation the caches show, oldest Service first. Returns the count. */
  #rebuildFromCaches(): number {
    this.#allocator.setGroups(this.#groupInputs());
    const services = [...this.#options.services.list()].sort((a, b) =>
      String(a.metadata?.creationTimestamp ?? "").localeCompare(
        String(b.metadata?.creationTimestamp ?? ""),
      ) || serviceKey(a).localeCompare(serviceKey(b))
    );
    let registered = 0;
    for (const svc of services) {
      const ips = ingressIps(svc);
      if (ips.length === 0) continue;
      const intent = readServiceIntent(svc, this.#options.settings);
      if (intent.kind !== "allocate") continue;
      const problems = this.#allocator.register(intent.request, ips);
      for (const problem of problems) {
        log.warn("{service}: existing allocation not kept: {problem}", {
          service: serviceKey(svc),
          problem,
        });
      }
      if (problems.length < ips.length) registered++;
    }
    return registered;
  }

  #syncGroups(): Outcome {
    const reports = this.#allocator.setGroups(this.#groupInputs());
    for (const name of this.#netboxHealth.keys()) {
      if (!reports.some((r) => r.name === name && r.kind === "netbox")) {
        this.#netboxHealth.delete(name);
      }
    }
    this.#queueGroupWork(reports);
    // Pools changed: waiting Services may fit now, PreferDualStack ones may grow.
    this.#queueEveryService();
    return DONE;
  }

  async #syncService(key: string, leadership: AbortSignal): Promise<Outcome> {
    const svc = this.#serviceByKey(key);
    if (svc === undefined) return this.#forget(key);
    const intent = readServiceIntent(svc, this.#options.settings);
    switch (intent.kind) {
      case "foreign":
        return this.#forget(key);
      case "notLoadBalancer": {
        const released = this.#release(key);
        if (hasOurMarks(svc)) await this.#writeAllocation(svc, [], "", leadership);
        this.#afterRelease(svc, released);
        this.#waiting.delete(key);
        return DONE;
      }
      case "invalid": {
        const released = this.#release(key);
        this.#reportWarnings(svc, intent.warnings);
        if (ingressIps(svc).length > 0 || asksReEvaluation(svc)) {
          await this.#writeAllocation(svc, [], "", leadership);
        }
        this.#afterRelease(svc, released);
        this.#fail(svc, "invalid_request", intent.reason);
        return DONE;
      }
      case "allocate":
        return await this.#allocate(svc, intent.request, intent.warnings, leadership);
    }
  }

  async #allocate(
    svc: V1Service,
    request: AllocationRequest,
    requestWarnings: readonly RequestWarning[],
    leadership: AbortSignal,
  ): Promise<Outcome> {
    const taken = await this.#takeFromNetbox(request, leadership);
    const key = request.key;
    const scopeBefore = this.#allocator.outOfScope(key);
    const heldBefore = this.#allocator.addressesOf(key);
    const outcome = this.#allocator.allocate(request, taken?.offer);
    if (taken) this.#options.netbox.settle(taken.offer);
    this.#queueNetboxReturns(outcome.freedNetbox);
    if (leadership.aborted) return DONE;
    if ((scopeBefore === undefined) !== (this.#allocator.outOfScope(key) === undefined)) {
      // The group's outOfScope count changed.
      const groups = [...heldBefore, ...this.#allocator.addressesOf(key)].map((a) => a.group);
      for (const group of new Set(groups)) {
        if (group !== "") this.#addAfter({ kind: "group_status", group }, GROUP_STATUS_DELAY_MS);
      }
    }
    const tenancyWarnings = outcome.warnings.map((message): RequestWarning => ({
      reason: "ConfigurationWarning",
      message,
    }));
    this.#reportWarnings(svc, [
      ...requestWarnings,
      ...tenancyWarnings,
      ...this.#sharingWarnings(request, outcome),
    ]);
    const applied = await this.#apply(svc, outcome, leadership);
    if (taken !== undefined && !taken.result.ok && isUncertain(taken.result.error.failure)) {
      // A lost answer may hide a write that lands later: the sweep gives such strays back.
      this.#addAfter({ kind: "netbox_sweep", group: request.group }, NETBOX_UNCERTAIN_SWEEP_MS);
    }
    if (outcome.kind !== "failed" || taken === undefined) return applied;
    // Netbox trouble is retried with backoff; an empty Netbox is asked again now and then.
    return taken.result.ok
      ? { kind: "requeueAfter", ms: NETBOX_EXHAUSTED_RETRY_MS }
      : { kind: "retry", error: taken.result.error };
  }

  /** Releases what the Service holds and queues the return of freed Netbox addresses. */
  #release(key: string): readonly HeldAddress[] {
    const { released, freedNetbox } = this.#allocator.release(key);
    this.#queueNetboxReturns(freedNetbox);
    return released;
  }

  /** For a Netbox group: takes from Netbox what the request needs before it is allocated. */
  async #takeFromNetbox(
    request: AllocationRequest,
    leadership: AbortSignal,
  ): Promise<{ offer: NetboxOffer; result: NetboxCallResult } | undefined> {
    const needs = this.#allocator.netboxNeeds(request);
    if (needs === undefined) return undefined;
    const group = this.#options.groups.get(needs.group, this.#options.namespace);
    const marker = { groupUid: group?.metadata?.uid ?? needs.group, service: request.key };
    const taken = await this.#options.netbox.take(
      needs.source,
      needs.families,
      request.policy,
      marker,
      leadership,
      (address) => this.#allocator.isHeld(address),
    );
    this.#noteNetbox(needs.source, taken.result);
    return taken;
  }

  /** Queues Netbox addresses the allocator let go of for their return to `reserved`. */
  #queueNetboxReturns(freedNetbox: readonly FreedNetboxAddress[]): void {
    for (const freed of freedNetbox) {
      const id = `${netboxSourceKey(freed.source)} ${freed.address}`;
      this.#netboxReturns.set(id, freed);
      this.#add({ kind: "netbox_return", id });
    }
  }

  async #returnToNetbox(id: string, leadership: AbortSignal): Promise<Outcome> {
    const freed = this.#netboxReturns.get(id);
    if (freed === undefined) return DONE;
    const address = freed.address;
    try {
      await this.#options.netbox.giveBack(freed.source, address, leadership);
    } catch (error) {
      if (!(error instanceof NetboxError)) throw error;
      this.#noteNetbox(freed.source, { ok: false, error });
      return { kind: "retry", error };
    }
    this.#netboxReturns.delete(id);
    this.#noteNetbox(freed.source, { ok: true });
    this.#retryWaitingNow();
    log.info("gave {address} back to Netbox at {url}", { address, url: freed.source.url });
    return DONE;
  }

  /** Reconciles a Netbox group's addresses with Netbox (at leadership and on group changes). */
  async #sweepNetbox(name: string, leadership: AbortSignal): Promise<Outcome> {
    const report = this.#allocator.groupReport(name);
    const group = this.#options.groups.get(name, this.#options.namespace);
    if (report?.kind !== "netbox" || group === undefined) return DONE;
    try {
      const sweep = await this.#options.netbox.sweep(
        report.source,
        group.metadata?.uid ?? name,
        () => this.#allocator.netboxHeld(name),
        leadership,
      );
      const held = sweep.held;
      this.#noteNetbox(report.source, { ok: true });
      if (sweep.returned.length > 0) this.#retryWaitingNow();
      if (sweep.reclaimed.length + sweep.returned.length + sweep.missing.length > 0) {
        log.info(
          "Netbox group {group}: {held} held, {reclaimed} made active again, {returned} " +
            "left active by nobody given back, {missing} not listed by Netbox",
          {
            group: name,
            held: held.size,
            reclaimed: sweep.reclaimed.length,
            returned: sweep.returned.length,
            missing: sweep.missing.length,
          },
        );
      }
      for (const address of sweep.missing) {
        const service = this.#serviceByKey(held.get(address) ?? "");
        if (!service) continue;
        this.#event(
          service,
          "Warning",
          "ConfigurationWarning",
          `Netbox at ${report.source.url} lists ${address} neither as active nor as reserved ` +
            `for tenant ${report.source.tenant}; the Service keeps it, check Netbox`,
        );
      }
      return { kind: "requeueAfter", ms: NETBOX_SWEEP_INTERVAL_MS };
    } catch (error) {
      if (!(error instanceof NetboxError)) throw error;
      this.#noteNetbox(report.source, { ok: false, error });
      return { kind: "retry", error };
    }
  }

  /** Records how a Netbox call went on every group using that Netbox and tenant; logs changes. */
  #noteNetbox(source: NetboxSource, result: NetboxCallResult): void {
    if (!result.ok) this.#options.metrics.netboxFailures.inc({ failure: result.error.failure });
    const health: NetboxHealth = result.ok
      ? { available: true, reason: "Answering", message: "the last call to Netbox succeeded" }
      : {
        available: false,
        reason: result.error.failure.charAt(0).toUpperCase() + result.error.failure.slice(1),
        message: result.error.message,
      };
    for (const report of this.#allocator.groupReports()) {
      if (report.kind !== "netbox" || netboxSourceKey(report.source) !== netboxSourceKey(source)) {
        continue;
      }
      const previous = this.#netboxHealth.get(report.name);
      if (previous?.available === health.available && previous.message === health.message) {
        continue;
      }
      this.#netboxHealth.set(report.name, health);
      this.#add({ kind: "group_status", group: report.name });
      // Changes only: each failed Service, return or sweep is logged by its retry.
      if (health.available) {
        log.info("Netbox group {group}: Netbox answers", { group: report.name });
      } else {log.warn("Netbox group {group}: {error}", {
          group: report.name,
          error: health.message,
        });}
    }
  }

  #serviceByKey(key: string): V1Service | undefined {
    const [namespace = "", name = ""] = key.split("/");
    return this.#options.services.get(name, namespace);
  }

  async #apply(
    svc: V1Service,
    outcome: AllocateOutcome,
    leadership: AbortSignal,
  ): Promise<Outcome> {
    const key = serviceKey(svc);
    if (outcome.kind === "failed") {
      if (ingressIps(svc).length > 0 || asksReEvaluation(svc)) {
        await this.#writeAllocation(svc, [], "", leadership);
      }
      this.#afterRelease(svc, outcome.released);
      this.#fail(svc, outcome.failure, outcome.reason);
      return DONE;
    }
    this.#waiting.delete(key);
    const group = outcome.addresses.find((a) => a.group !== "")?.group ??
      svc.metadata?.annotations?.[Annotations.allocatedFrom] ?? "";
    await this.#writeAllocation(svc, outcome.addresses, group, leadership);
    if (outcome.kind === "assigned") {
      const list = outcome.addresses.map((a) => a.address).join(", ");
      this.#options.metrics.assigned.inc();
      this.#event(svc, "Normal", "AddressAssigned", `Assigned ${list} from ServiceGroup ${group}`);
      this.#afterRelease(svc, outcome.released);
      this.#addAfter({ kind: "group_status", group }, GROUP_STATUS_DELAY_MS);
    }
    return DONE;
  }

  #fail(svc: V1Service, failure: AllocationFailure, reason: string): void {
    const key = serviceKey(svc);
    const already = this.#waiting.has(key) && this.#reportedFailures.get(key) === reason;
    this.#waiting.add(key);
    if (already) return;
    this.#reportedFailures.set(key, reason);
    this.#options.metrics.failed.inc({ reason: failure });
    this.#event(svc, "Warning", "AllocationFailed", reason);
  }

  /** After a Service let go of addresses: report it, and give waiting Services a chance. */
  #afterRelease(svc: V1Service, released: readonly HeldAddress[]): void {
    if (released.length === 0) return;
    this.#options.metrics.released.inc();
    const list = released.map((a) => a.address).join(", ");
    this.#event(svc, "Normal", "AddressReleased", `Released ${list}`);
    this.#retryWaiting(released);
  }

  /** A Service is gone (or not ours): its addresses are free, waiting Services retry at once. */
  #forget(key: string): Outcome {
    const released = this.#release(key);
    this.#waiting.delete(key);
    this.#reportedWarnings.delete(key);
    this.#reportedFailures.delete(key);
    if (released.length > 0) {
      this.#options.metrics.released.inc();
      this.#retryWaiting(released);
    }
    return DONE;
  }

  /** An address went back to Netbox: Services waiting for one may get it now. */
  #retryWaitingNow(): void {
    for (const key of this.#waiting) this.#add({ kind: "service", key });
  }

  #retryWaiting(released: readonly HeldAddress[]): void {
    this.#retryWaitingNow();
    for (const group of new Set(released.map((a) => a.group))) {
      if (group !== "") this.#addAfter({ kind: "group_status", group }, GROUP_STATUS_DELAY_MS);
    }
  }

  #sharingWarnings(
    request: { readonly key: string; readonly localTrafficPolicy: boolean },
    outcome: AllocateOutcome,
  ): RequestWarning[] {
    if (!request.localTrafficPolicy || outcome.kind === "failed") return [];
    return outcome.addresses
      .filter((a) => this.#allocator.isShared(request.key, a.address))
      .map((a) => ({
        reason: "ConfigurationWarning" as const,
        message: `address ${a.address} is shared, so externalTrafficPolicy Local is treated as ` +
          `Cluster for it`,
      }));
  }

  #reportWarnings(svc: V1Service, warnings: readonly RequestWarning[]): void {
    const key = serviceKey(svc);
    const fingerprint = warnings.map((w) => `${w.reason}:${w.message}`).join("\n");
    if (this.#reportedWarnings.get(key) === fingerprint) return;
    this.#reportedWarnings.set(key, fingerprint);
    for (const warning of warnings) this.#event(svc, "Warning", warning.reason, warning.message);
  }

  #event(svc: V1Service, type: EventType, reason: EventReason, message: string): void {
    const subject = { apiVersion: "v1", kind: "Service", metadata: svc.metadata };
    void this.#options.events.record(subject, type, reason, message);
  }

  /**
   * Writes ingress and our annotations in one merge patch of the status subresource; removes a
   * `purelb.io/re-evaluate` annotation (the Service has just been decided again).
   */
  async #writeAllocation(
    svc: V1Service,
    addresses: readonly HeldAddress[],
    group: string,
    leadership: AbortSignal,
  ): Promise<void> {
    const wanted = addresses.map((a) => a.address);
    const annotations = svc.metadata?.annotations ?? {};
    const ingressCurrent = (svc.status?.loadBalancer?.ingress ?? []).map((i) =>
      `${i.ip ?? i.hostname ?? ""}/${i.ipMode ?? ""}`
    );
    const ingressWanted = wanted.map((ip) => `${ip}/VIP`);
    const marksWanted: Record<string, string | null> = wanted.length > 0
      ? { [Annotations.allocatedBy]: ALLOCATED_BY_PURELB, [Annotations.allocatedFrom]: group }
      : { [Annotations.allocatedBy]: null, [Annotations.allocatedFrom]: null };
    if (asksReEvaluation(svc)) marksWanted[Annotations.reEvaluate] = null;
    const announcing = this.#announcingWanted(wanted);
    if (announcing !== undefined) {
      // Sent with the allocation whenever it is written anyway.
      for (const name of ANNOUNCING_KEYS) marksWanted[name] = announcing[name] ?? null;
    }
    const marksMatch = Object.entries(marksWanted).every(([k, v]) =>
      (annotations[k] ?? null) === v
    );
    if (marksMatch && ingressCurrent.join(",") === ingressWanted.join(",")) return;
    if (leadership.aborted) return;
    const [namespace = "", name = ""] = serviceKey(svc).split("/");
    await this.#options.api.patchNamespacedServiceStatus({
      namespace,
      name,
      body: {
        metadata: { annotations: marksWanted },
        status: {
          loadBalancer: wanted.length > 0
            ? { ingress: wanted.map((ip) => ({ ip, ipMode: "VIP" })) }
            : { ingress: null },
        },
      },
    });
  }

  /**
   * Once the Lease cache is full: every Service whose announcing annotations are not as wanted
   * gets them, and Lease expiries are watched for.
   */
  #startAnnouncing(leadership: AbortSignal): void {
    const leases = this.#options.leases;
    if (leases === undefined) return;
    const services = this.#options.services;
    // The caches may have been filled before this controller subscribed.
    this.#serviceAddresses.clear();
    for (const svc of services.list()) this.#indexService(serviceKey(svc), svc);
    void leases.synced.then(() => {
      if (leadership.aborted) return;
      this.#announcers.clear();
      this.#announcedAddresses.clear();
      for (const lease of leases.list()) {
        this.#indexAnnouncer(lease.metadata?.name ?? "", announcerRecordOf(lease));
      }
      this.#expiryCheckedAt = Date.now();
      for (const svc of services.list()) {
        if (this.#announcingDiffers(svc)) this.#add({ kind: "announcing", key: serviceKey(svc) });
      }
      this.#armExpiryCheck();
    });
  }

  #indexService(key: string, svc: V1Service | undefined): void {
    this.#serviceAddresses.set(key, svc === undefined ? [] : canonicalIps(svc));
  }

  #indexAnnouncer(name: string, record: AnnouncerRecord | undefined): void {
    if (record === undefined) this.#announcers.delete(name);
    else this.#announcers.set(name, record);
    this.#announcedAddresses.set(name, record?.entries.map((e) => e.address) ?? []);
  }

  #queueAnnouncingOf(addresses: Iterable<string>): void {
    for (const address of addresses) {
      for (const key of this.#serviceAddresses.keysOf(address)) {
        this.#add({ kind: "announcing", key });
      }
    }
  }

  /**
   * The announcing annotations wanted for a Service given `addresses`, or `undefined` while
   * they are not known (no Lease cache, or not full yet).
   */
  #announcingWanted(addresses: readonly string[]): AnnouncingValues | undefined {
    if (this.#options.leases?.hasSynced !== true) return undefined;
    const records = new Set<AnnouncerRecord>();
    for (const address of addresses) {
      const canonical = canonicalAddress(address) ?? address;
      for (const name of this.#announcedAddresses.keysOf(canonical)) {
        const record = this.#announcers.get(name);
        if (record !== undefined) records.add(record);
      }
    }
    return announcingValues(records, addresses, Date.now());
  }

  /** The announcing annotations a Service should carry now; `undefined`: not known yet. */
  #announcingFor(svc: V1Service): AnnouncingValues | undefined {
    const ours = svc.metadata?.annotations?.[Annotations.allocatedBy] === ALLOCATED_BY_PURELB;
    return this.#announcingWanted(ours ? ingressIps(svc) : []);
  }

  #announcingDiffers(svc: V1Service): boolean {
    const wanted = this.#announcingFor(svc);
    if (wanted === undefined) return false;
    const annotations = svc.metadata?.annotations ?? {};
    return ANNOUNCING_KEYS.some((name) => annotations[name] !== wanted[name]);
  }

  /** Writes a Service's announcing annotations when they differ from what is wanted. */
  async #syncAnnouncing(key: string, leadership: AbortSignal): Promise<Outcome> {
    const svc = this.#serviceByKey(key);
    if (svc === undefined) return DONE;
    const wanted = this.#announcingFor(svc);
    if (wanted === undefined || leadership.aborted) return DONE;
    const annotations = svc.metadata?.annotations ?? {};
    const patch: Record<string, string | null> = {};
    for (const name of ANNOUNCING_KEYS) {
      if (annotations[name] !== wanted[name]) patch[name] = wanted[name] ?? null;
    }
    if (Object.keys(patch).length === 0) return DONE;
    const [namespace = "", name = ""] = key.split("/");
    await this.#options.api.patchNamespacedServiceStatus({
      namespace,
      name,
      body: { metadata: { annotations: patch } },
    });
    return DONE;
  }

  /**
   * The announcing annotations are looked at again the moment the next Lease that lists
   * addresses expires (a node that stopped without deleting its Lease).
   */
  #armExpiryCheck(): void {
    clearTimeout(this.#expiryTimer);
    this.#expiryTimer = undefined;
    if (this.#options.leases?.hasSynced !== true) return;
    const ms = nextExpiryMs(this.#announcers.values(), Date.now());
    if (ms === undefined) return;
    this.#expiryTimer = setTimeout(() => {
      this.#expiryTimer = undefined;
      const now = Date.now();
      for (const record of this.#announcers.values()) {
        const expiry = record.renewTimeMs + record.leaseDurationMs;
        if (expiry > this.#expiryCheckedAt && expiry <= now) {
          this.#queueAnnouncingOf(record.entries.map((e) => e.address));
        }
      }
      this.#expiryCheckedAt = now;
      if (this.#leading) this.#armExpiryCheck();
    }, ms + EXPIRY_MARGIN_MS);
  }

  async #writeGroupStatus(name: string, leadership: AbortSignal): Promise<Outcome> {
    const sg = this.#options.groups.get(name, this.#options.namespace);
    const report = this.#allocator.groupReport(name);
    if (!sg || !report) return DONE;
    const { status, changed, becameInvalid } = groupStatusOf(
      sg,
      report,
      new Date(),
      this.#netboxHealth.get(name),
    );
    if (becameInvalid) {
      const subject = {
        apiVersion: PURELB_API_VERSION,
        kind: SERVICE_GROUP_KIND,
        metadata: sg.metadata,
      };
      void this.#options.events.record(subject, "Warning", "ParseFailed", invalidMessage(report));
    }
    if (!changed || leadership.aborted) return DONE;
    await this.#options.api.patchNamespacedCustomObjectStatus({
      group: PURELB_GROUP,
      version: PURELB_VERSION,
      namespace: this.#options.namespace,
      plural: SERVICE_GROUP_PLURAL,
      name,
      body: { status },
    });
    return DONE;
  }
}

function ingressIps(svc: V1Service): string[] {
  return (svc.status?.loadBalancer?.ingress ?? []).flatMap((i) => i.ip ? [i.ip] : []);
}

/** The ingress addresses, canonical. */
function canonicalIps(svc: V1Service): string[] {
  return ingressIps(svc).flatMap((ip) => canonicalAddress(ip) ?? []);
}

function announcerRecordOf(lease: V1Lease | undefined): AnnouncerRecord | undefined {
  return lease === undefined ? undefined : announcerRecord(lease);
}

function asksReEvaluation(svc: V1Service): boolean {
  return svc.metadata?.annotations?.[Annotations.reEvaluate] !== undefined;
}

function hasOurMarks(svc: V1Service): boolean {
  const annotations = svc.metadata?.annotations ?? {};
  return annotations[Annotations.allocatedBy] === ALLOCATED_BY_PURELB ||
    ingressIps(svc).length > 0 &&
      annotations[Annotations.allocatedFrom] !== undefined;
}

function invalidMessage(report: GroupReport): string {
  return report.kind === "invalid" ? report.errors.join("; ") : "";
}
