/**
 * The allocator controller: informers on Services and ServiceGroups, one work queue, and the
 * {@linkcode Allocator} as the single source of decisions. Only the leader runs workers; on
 * becoming leader it rebuilds its memory from the caches (every existing allocation registered
 * before any new one), and it stops writing the moment leadership is lost.
 *
 * @module
 */

import type { V1Service } from "@kubernetes/client-node";
import { CoreApi, CustomObjectsLiteApi } from "../k8s/api.ts";
import { getLogger } from "@logtape/logtape";
import {
  type ApiConnection,
  errorMessage,
  type Outcome,
  ResilientInformer,
  runWorkers,
  WorkQueue,
} from "../k8s/mod.ts";
import {
  type AllocateOutcome,
  Allocator,
  type FreedNetboxAddress,
  type GroupReport,
  type HeldAddress,
  type NetboxOffer,
  type NetboxSource,
} from "./allocator.ts";
import type { AllocationRequest } from "./request.ts";
import { NetboxError, netboxSourceKey } from "../ipam/mod.ts";
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
import { allocatorServiceView, groupView, serviceChangeConcernsAllocator } from "./relevance.ts";

/** Options for {@linkcode AllocatorController}. */
export interface AllocatorControllerOptions {
  readonly connection: ApiConnection;
  /** The namespace whose ServiceGroups are the pools (e.g. `purelb-system`). */
  readonly namespace: string;
  readonly settings: RequestSettings;
  readonly events: EventSink;
  readonly metrics: AllocatorMetrics;
  /** Concurrent workers (each does at most one API write at a time). Default 16. */
  readonly workers?: number;
  /** Takes and gives back addresses of Netbox ServiceGroups. */
  readonly netbox: NetboxBroker;
}

const GROUPS_KEY = "groups";
const SERVICE_PREFIX = "svc:";
const GROUP_STATUS_PREFIX = "sg:";
/** Gives one Netbox address back (key: the source's key, a space, the address). */
const NETBOX_RETURN_PREFIX = "nbreturn:";
/** Compares a Netbox group's addresses with Netbox (key: the group). */
const NETBOX_SWEEP_PREFIX = "nbsweep:";
/**
 * How often a Netbox group is compared with Netbox (addresses someone set back to reserved,
 * addresses left active by a crash).
 */
const NETBOX_SWEEP_INTERVAL_MS = 300_000;
/** After a Netbox write whose answer was lost, the group is compared with Netbox this much later. */
const NETBOX_UNCERTAIN_SWEEP_MS = 15_000;
/** A Service that Netbox has no address for retries this often (other users may free some). */
const NETBOX_EXHAUSTED_RETRY_MS = 30_000;
/** ServiceGroup status is written at most this often per group (counts change constantly). */
const GROUP_STATUS_DELAY_MS = 1_000;

const log = getLogger(["purelb", "allocator"]);

/** See the module documentation. */
export class AllocatorController {
  readonly #options: AllocatorControllerOptions;
  readonly #core: CoreApi;
  readonly #custom: CustomObjectsLiteApi;
  readonly services: ResilientInformer<V1Service>;
  readonly groups: ResilientInformer<ServiceGroupObject>;
  #queue: WorkQueue<string> | undefined;
  #allocator = new Allocator();
  /** Services that could not get what they asked for; retried when something is released. */
  readonly #waiting = new Set<string>();
  /** The warnings last reported per Service, so that a resync does not repeat them. */
  readonly #warned = new Map<string, string>();
  #leading = false;
  /** Last seen `metadata.generation` per ServiceGroup, to ignore status-only updates. */
  readonly #groupGenerations = new Map<string, number | undefined>();
  /** Netbox addresses waiting to go back to `reserved`. */
  readonly #netboxReturns = new Map<string, FreedNetboxAddress>();
  /** Per Netbox group: how its last Netbox call went. */
  readonly #netboxHealth = new Map<string, NetboxHealth>();

  constructor(options: AllocatorControllerOptions) {
    this.#options = options;
    const { connection, namespace } = options;
    this.#core = new CoreApi(connection);
    this.#custom = new CustomObjectsLiteApi(connection);
    const onError = (what: string) => (error: unknown, retryInMs: number) =>
      log.warn("{what} watch failed, retrying in {retryInMs} ms: {error}", {
        what,
        retryInMs,
        error: errorMessage(error),
      });
    this.services = new ResilientInformer<V1Service>(connection, {
      name: "services",
      path: "/api/v1/services",
      transform: allocatorServiceView(options.settings),
      onError: onError("services"),
    });
    this.groups = new ResilientInformer<ServiceGroupObject>(connection, {
      name: "servicegroups",
      path:
        `/apis/${PURELB_GROUP}/${PURELB_VERSION}/namespaces/${namespace}/${SERVICE_GROUP_PLURAL}`,
      transform: groupView,
      onError: onError("servicegroups"),
    });
    this.services.onChange((type, svc, previous) => {
      const deleted = type === "delete";
      const concerns = serviceChangeConcernsAllocator(
        deleted ? svc : previous,
        deleted ? undefined : svc,
        options.settings,
      );
      options.metrics.watchEvents.inc({ kind: "services", relevant: String(concerns) });
      if (concerns) this.#queue?.add(SERVICE_PREFIX + serviceKey(svc));
    });
    this.groups.onChange((type, sg) => {
      // Our own status writes come back as updates; only spec changes (generation) matter.
      const name = sg.metadata?.name ?? "";
      const generation = sg.metadata?.generation;
      const specChanged = type !== "update" || this.#groupGenerations.get(name) !== generation;
      options.metrics.watchEvents.inc({ kind: "servicegroups", relevant: String(specChanged) });
      if (!specChanged) return;
      if (type === "delete") this.#groupGenerations.delete(name);
      else this.#groupGenerations.set(name, generation);
      this.#queue?.add(GROUPS_KEY);
    });
    options.metrics.observePools(() => this.#leading ? this.#allocator.groupReports() : []);
  }

  /** Starts the informers (every replica keeps warm caches, leader or not). */
  start(): void {
    this.services.start();
    this.groups.start();
  }

  /** True once both caches hold a full list. */
  get synced(): boolean {
    return this.services.hasSynced && this.groups.hasSynced;
  }

  /** True while this replica leads and writes. */
  get leading(): boolean {
    return this.#leading;
  }

  /**
   * Runs the allocator until `leadership` aborts: rebuilds its memory from the caches, then
   * processes events. Resolves once the workers have stopped.
   */
  async lead(leadership: AbortSignal): Promise<void> {
    await Promise.all([this.services.synced, this.groups.synced]);
    if (leadership.aborted) return;
    this.#allocator = new Allocator();
    this.#waiting.clear();
    this.#warned.clear();
    this.#netboxReturns.clear();
    const registered = this.#rebuildFromCaches();
    log.info("leading: {groups} ServiceGroups, {registered} existing allocations registered", {
      groups: this.groups.list().length,
      registered,
    });
    const queue = new WorkQueue<string>();
    this.#queue = queue;
    this.#leading = true;
    for (const report of this.#allocator.groupReports()) {
      queue.add(GROUP_STATUS_PREFIX + report.name);
      if (report.kind === "netbox") queue.add(NETBOX_SWEEP_PREFIX + report.name);
    }
    for (const svc of this.services.list()) queue.add(SERVICE_PREFIX + serviceKey(svc));
    leadership.addEventListener("abort", () => queue.shutDown(), { once: true });
    await runWorkers(queue, this.#options.workers ?? 16, async (key) => {
      if (leadership.aborted) return { kind: "done" };
      this.#options.metrics.reconciles.inc({ kind: workKind(key) });
      if (key === GROUPS_KEY) return this.#syncGroups();
      if (key.startsWith(GROUP_STATUS_PREFIX)) {
        return await this.#writeGroupStatus(key.slice(GROUP_STATUS_PREFIX.length), leadership);
      }
      if (key.startsWith(NETBOX_RETURN_PREFIX)) {
        return await this.#returnToNetbox(key.slice(NETBOX_RETURN_PREFIX.length), leadership);
      }
      if (key.startsWith(NETBOX_SWEEP_PREFIX)) {
        return await this.#sweepNetbox(key.slice(NETBOX_SWEEP_PREFIX.length), leadership);
      }
      return await this.#syncService(key.slice(SERVICE_PREFIX.length), leadership);
    }, {
      onError: (key, error) => log.warn("{key}: {error}", { key, error: errorMessage(error) }),
    });
    this.#leading = false;
    this.#queue = undefined;
    log.info("stopped leading");
  }

  /** Stops the informers. */
  async stop(): Promise<void> {
    this.#queue?.shutDown();
    await Promise.all([this.services.stop(), this.groups.stop()]);
  }

  #groupInputs() {
    return this.groups.list().map((sg) => ({
      name: sg.metadata?.name ?? "",
      creationTimestamp: String(sg.metadata?.creationTimestamp ?? ""),
      spec: sg.spec,
    }));
  }

  /** Registers every allocation the caches show, oldest Service first. Returns the count. */
  #rebuildFromCaches(): number {
    this.#allocator.setGroups(this.#groupInputs());
    const services = [...this.services.list()].sort((a, b) =>
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

  #syncGroups(): { kind: "done" } {
    const reports = this.#allocator.setGroups(this.#groupInputs());
    this.#queueNetboxReturns();
    for (const name of this.#netboxHealth.keys()) {
      if (!reports.some((r) => r.name === name && r.kind === "netbox")) {
        this.#netboxHealth.delete(name);
      }
    }
    for (const report of reports) {
      this.#queue?.add(GROUP_STATUS_PREFIX + report.name);
      if (report.kind === "netbox") this.#queue?.add(NETBOX_SWEEP_PREFIX + report.name);
    }
    // Pools changed: waiting Services may fit now, PreferDualStack ones may grow.
    for (const svc of this.services.list()) this.#queue?.add(SERVICE_PREFIX + serviceKey(svc));
    return { kind: "done" };
  }

  async #syncService(key: string, leadership: AbortSignal): Promise<Outcome> {
    const [namespace = "", name = ""] = key.split("/");
    const svc = this.services.get(name, namespace);
    if (!svc) {
      this.#forget(key, this.#allocator.release(key));
      this.#queueNetboxReturns();
      return { kind: "done" };
    }
    const intent = readServiceIntent(svc, this.#options.settings);
    switch (intent.kind) {
      case "foreign":
        this.#forget(key, this.#allocator.release(key));
        this.#queueNetboxReturns();
        return { kind: "done" };
      case "notLoadBalancer": {
        const released = this.#allocator.release(key);
        this.#queueNetboxReturns();
        if (hasOurMarks(svc)) await this.#writeAllocation(svc, [], "", leadership);
        this.#afterRelease(svc, released);
        this.#waiting.delete(key);
        return { kind: "done" };
      }
      case "invalid": {
        const released = this.#allocator.release(key);
        this.#queueNetboxReturns();
        this.#reportWarnings(svc, intent.warnings);
        if (ingressIps(svc).length > 0) await this.#writeAllocation(svc, [], "", leadership);
        this.#afterRelease(svc, released);
        this.#fail(svc, intent.reason);
        return { kind: "done" };
      }
      case "allocate": {
        const taken = await this.#takeFromNetbox(intent.request, leadership);
        const outcome = this.#allocator.allocate(intent.request, taken?.offer);
        if (taken) this.#options.netbox.settle(taken.offer);
        this.#queueNetboxReturns();
        if (leadership.aborted) return { kind: "done" };
        const warnings = [...intent.warnings, ...this.#sharingWarnings(intent.request, outcome)];
        this.#reportWarnings(svc, warnings);
        const applied = await this.#apply(svc, outcome, leadership);
        if (taken !== undefined && !taken.result.ok && isUncertain(taken.result.error.failure)) {
          // A lost answer may hide a write that lands later: the sweep gives such strays back.
          this.#queue?.addAfter(
            NETBOX_SWEEP_PREFIX + intent.request.group,
            NETBOX_UNCERTAIN_SWEEP_MS,
          );
        }
        if (outcome.kind !== "failed" || taken === undefined) return applied;
        // Netbox trouble is retried with backoff; an empty Netbox is asked again now and then.
        return taken.result.ok
          ? { kind: "requeueAfter", ms: NETBOX_EXHAUSTED_RETRY_MS }
          : { kind: "retry", error: taken.result.error };
      }
    }
  }

  /** For a Netbox group: takes from Netbox what the request needs before it is allocated. */
  async #takeFromNetbox(
    request: AllocationRequest,
    leadership: AbortSignal,
  ): Promise<{ offer: NetboxOffer; result: NetboxCallResult } | undefined> {
    const needs = this.#allocator.netboxNeeds(request);
    if (needs === undefined) return undefined;
    const group = this.groups.get(needs.group, this.#options.namespace);
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

  /** Queues every Netbox address the allocator let go of for its return to `reserved`. */
  #queueNetboxReturns(): void {
    for (const freed of this.#allocator.drainFreedNetbox()) {
      const key = `${netboxSourceKey(freed.source)} ${freed.address}`;
      this.#netboxReturns.set(key, freed);
      this.#queue?.add(NETBOX_RETURN_PREFIX + key);
    }
  }

  async #returnToNetbox(key: string, leadership: AbortSignal): Promise<Outcome> {
    const freed = this.#netboxReturns.get(key);
    if (freed === undefined) return { kind: "done" };
    const address = freed.address;
    try {
      await this.#options.netbox.giveBack(freed.source, address, leadership);
    } catch (error) {
      if (!(error instanceof NetboxError)) throw error;
      this.#noteNetbox(freed.source, { ok: false, error });
      return { kind: "retry", error };
    }
    this.#netboxReturns.delete(key);
    this.#noteNetbox(freed.source, { ok: true });
    this.#retryWaitingNow();
    log.info("gave {address} back to Netbox at {url}", { address, url: freed.source.url });
    return { kind: "done" };
  }

  /** Reconciles a Netbox group's addresses with Netbox (at leadership and on group changes). */
  async #sweepNetbox(name: string, leadership: AbortSignal): Promise<Outcome> {
    const report = this.#allocator.groupReport(name);
    const group = this.groups.get(name, this.#options.namespace);
    if (report?.kind !== "netbox" || group === undefined) return { kind: "done" };
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
      this.#queue?.add(GROUP_STATUS_PREFIX + report.name);
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
    return this.services.get(name, namespace);
  }

  async #apply(
    svc: V1Service,
    outcome: AllocateOutcome,
    leadership: AbortSignal,
  ): Promise<Outcome> {
    const key = serviceKey(svc);
    if (outcome.kind === "failed") {
      if (ingressIps(svc).length > 0) await this.#writeAllocation(svc, [], "", leadership);
      this.#afterRelease(svc, outcome.released);
      this.#fail(svc, outcome.reason);
      return { kind: "done" };
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
      this.#queue?.addAfter(GROUP_STATUS_PREFIX + group, GROUP_STATUS_DELAY_MS);
    }
    return { kind: "done" };
  }

  #fail(svc: V1Service, reason: string): void {
    const key = serviceKey(svc);
    const already = this.#waiting.has(key) && this.#warned.get(`fail:${key}`) === reason;
    this.#waiting.add(key);
    if (already) return;
    this.#warned.set(`fail:${key}`, reason);
    this.#options.metrics.failed.inc({ reason: failureKind(reason) });
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

  /** A Service is gone: its addresses are free, waiting Services retry at once. */
  #forget(key: string, released: readonly HeldAddress[]): void {
    this.#waiting.delete(key);
    this.#warned.delete(key);
    this.#warned.delete(`fail:${key}`);
    if (released.length === 0) return;
    this.#options.metrics.released.inc();
    this.#retryWaiting(released);
  }

  /** An address went back to Netbox: Services waiting for one may get it now. */
  #retryWaitingNow(): void {
    for (const waiting of this.#waiting) this.#queue?.add(SERVICE_PREFIX + waiting);
  }

  #retryWaiting(released: readonly HeldAddress[]): void {
    this.#retryWaitingNow();
    for (const group of new Set(released.map((a) => a.group))) {
      if (group !== "") this.#queue?.addAfter(GROUP_STATUS_PREFIX + group, GROUP_STATUS_DELAY_MS);
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
    if (this.#warned.get(key) === fingerprint) return;
    this.#warned.set(key, fingerprint);
    for (const warning of warnings) this.#event(svc, "Warning", warning.reason, warning.message);
  }

  #event(svc: V1Service, type: EventType, reason: EventReason, message: string): void {
    const subject = { apiVersion: "v1", kind: "Service", metadata: svc.metadata };
    void this.#options.events.record(subject, type, reason, message);
  }

  /** Writes ingress and our annotations in one merge patch of the status subresource. */
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
    const marksWanted = wanted.length > 0
      ? { [Annotations.allocatedBy]: ALLOCATED_BY_PURELB, [Annotations.allocatedFrom]: group }
      : { [Annotations.allocatedBy]: null, [Annotations.allocatedFrom]: null };
    const marksMatch = Object.entries(marksWanted).every(([k, v]) =>
      (annotations[k] ?? null) === v
    );
    if (marksMatch && ingressCurrent.join(",") === ingressWanted.join(",")) return;
    if (leadership.aborted) return;
    const [namespace = "", name = ""] = serviceKey(svc).split("/");
    await this.#core.patchNamespacedServiceStatus({
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

  async #writeGroupStatus(name: string, leadership: AbortSignal): Promise<Outcome> {
    const sg = this.groups.get(name, this.#options.namespace);
    const report = this.#allocator.groupReport(name);
    if (!sg || !report) return { kind: "done" };
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
    if (!changed || leadership.aborted) return { kind: "done" };
    await this.#custom.patchNamespacedCustomObjectStatus({
      group: PURELB_GROUP,
      version: PURELB_VERSION,
      namespace: this.#options.namespace,
      plural: SERVICE_GROUP_PLURAL,
      name,
      body: { status },
    });
    return { kind: "done" };
  }
}

/** The metric label of a work key. */
function workKind(key: string): string {
  if (key === GROUPS_KEY) return "groups";
  if (key.startsWith(GROUP_STATUS_PREFIX)) return "group_status";
  if (key.startsWith(NETBOX_RETURN_PREFIX)) return "netbox_return";
  if (key.startsWith(NETBOX_SWEEP_PREFIX)) return "netbox_sweep";
  return "service";
}

function ingressIps(svc: V1Service): string[] {
  return (svc.status?.loadBalancer?.ingress ?? []).flatMap((i) => i.ip ? [i.ip] : []);
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

/** A short label for the failure metric. */
export function failureKind(reason: string): string {
  if (/has no reserved/.test(reason)) return "pool_exhausted";
  if (/Netbox|NETBOX/.test(reason)) return "netbox_error";
  if (/no free/.test(reason)) return "pool_exhausted";
  if (/not in any/.test(reason)) return "address_outside_pools";
  if (/not found/.test(reason)) return "group_not_found";
  if (/is invalid/.test(reason)) return "group_invalid";
  if (/has no IPv[46] pool/.test(reason)) return "family_unavailable";
  if (/in use by|shared with|sharing/.test(reason)) return "sharing_refused";
  if (/purelb\.io\/addresses|loadBalancerIP/.test(reason)) return "invalid_request";
  return "other";
}
