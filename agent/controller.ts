/**
 * The node agent controller: informers on Services, EndpointSlices, ServiceGroups,
 * LBNodeAgents and node Leases; one work key ("the node") reconciled by one worker. A
 * reconcile reads the network (3 `ip` processes), asks {@link decideAnnouncements} what this
 * node must carry, and applies the difference in one `ip -batch` (none when nothing changed).
 * It runs on every relevant change, every resync period (drift repair), and the moment the
 * next node Lease expires (crash failover).
 *
 * @module
 */

import type {
  KubernetesObject,
  V1EndpointSlice,
  V1Lease,
  V1Service,
} from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import { getLogger } from "@logtape/logtape";
import { type ApiConnection, type InformerCounts, ResilientInformer } from "../k8s/mod.ts";
import { errorMessage } from "../k8s/errors.ts";
import type { EventSink, EventType } from "../k8s/events.ts";
import { runWorkers, WorkQueue } from "../k8s/workqueue.ts";
import {
  asLBNodeAgent,
  EventReason,
  LB_NODE_AGENT_PLURAL,
  type LBNodeAgent,
  NODE_LEASE_PREFIX,
  PURELB_GROUP,
  PURELB_VERSION,
  SERVICE_GROUP_PLURAL,
  SERVICE_NAME_LABEL,
} from "../k8s/types.ts";
import { parseServiceGroupSpec, type PoolRange } from "../ipam/mod.ts";
import { liveNodes, type NodeLeaseRecord } from "../election/mod.ts";
import {
  type AddressAssignment,
  type AddressChange,
  type ApplyResult,
  findLink,
  type GratuitousAnnouncer,
  mayRemoveOthers,
  type Netlink,
  type NetworkState,
  planChanges,
} from "../netlink/mod.ts";
import {
  type AddressDecision,
  type AnnouncePlan,
  type AnnounceSettings,
  announceSubnets,
  decideAnnouncements,
  healthyEndpointNodes,
  ownedAddressPredicate,
  type ServiceAnnouncement,
  serviceAnnouncement,
} from "./announce.ts";
import {
  agentLeaseView,
  agentServiceView,
  agentSliceView,
  endpointsMatterFor,
  leaseChangeMatters,
  serviceChangeMatters,
  sliceChangeMatters,
  sliceServiceKey,
  specView,
} from "./relevance.ts";
import { leaseRecord, type NodeMembership } from "./membership.ts";
import type { AgentMetrics } from "./metrics.ts";

/**
 * Options of {@link AgentController}.
 *
 * @example
 * ```ts
 * declare const options: AgentControllerOptions;
 * const controller = new AgentController(options);
 * ```
 */
export interface AgentControllerOptions {
  readonly connection: ApiConnection;
  /** Namespace of Leases, ServiceGroups, LBNodeAgents. */
  readonly namespace: string;
  /** This node. */
  readonly nodeName: string;
  /** The host's (or netns's) addresses. */
  readonly netlink: Netlink;
  /** GARP / NA sender; `undefined` when the helpers are missing (sendgarp then only warns). */
  readonly announcer: GratuitousAnnouncer | undefined;
  /** This node's Lease. */
  readonly membership: NodeMembership;
  readonly events: EventSink;
  readonly metrics: AgentMetrics;
  /** Time between full comparisons of network and wanted state. */
  readonly resyncMs: number;
}

/**
 * Readiness of the agent, with the reason when not ready.
 *
 * @example
 * ```ts
 * const state: AgentReadiness = { ready: false, reason: "no LBNodeAgent in purelb-system" };
 * ```
 */
export type AgentReadiness =
  | { readonly ready: true }
  | { readonly ready: false; readonly reason: string };

/** `namespace/name` of a Service. */
function serviceKeyOf(service: V1Service): string {
  return `${service.metadata?.namespace ?? ""}/${service.metadata?.name ?? ""}`;
}

/**
 * How deep a reconcile goes: `quick` decides on the network as last read and runs no `ip` if
 * the decision is unchanged (watch events); `verify` reads the network and stops there if it is
 * as the last full decision found it (the resync: drift repair); `full` reads and decides.
 */
type ReconcileDepth = "quick" | "verify" | "full";
const DEPTHS: readonly ReconcileDepth[] = ["quick", "verify", "full"];

/** What one decision reads from the caches. */
interface DecisionInputs {
  readonly services: readonly ServiceAnnouncement[];
  readonly pools: readonly PoolRange[];
  readonly netboxAggregations: ReadonlyMap<string, number>;
  readonly endpointNodes: ReadonlyMap<string, ReadonlySet<string>>;
  /** See `AgentController.#mayHold`. */
  readonly mayHold: Set<string> | undefined;
  /** Addresses of Services, won before, or recorded as possibly held: ours to remove. */
  readonly serviceAddresses: ReadonlySet<string>;
}

/** A custom object as listed: we narrow it ourselves. */
type CustomObject = KubernetesObject & { readonly spec?: unknown };

const NODE_KEY = "node";
/**
 * Relevant changes within this window share one reconcile. Short against failover times (a
 * graceful hand-over takes tens of milliseconds), long against a burst of watch events.
 */
const COALESCE_MS = 20;
/** A failed read of a Service's EndpointSlices is tried again this much later. */
const SLICE_RELOAD_RETRY_MS = 2_000;
/** Packets per gratuitous announcement. */
const GRATUITOUS_COUNT = 3;

const log = getLogger(["purelb", "agent"]);

/**
 * The first LBNodeAgent (by name) that has `spec.local`, with defaults filled in; `undefined`
 * when there is none.
 *
 * @example
 * ```ts
 * applyingSettings([]); // undefined
 * ```
 */
export function applyingSettings(
  agents: readonly LBNodeAgent[],
): (AnnounceSettings & { readonly from: string }) | undefined {
  const sorted = [...agents].sort((a, b) =>
    a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0
  );
  const first = sorted.find((agent) => agent.spec.local !== undefined);
  const local = first?.spec.local;
  if (first === undefined || local === undefined) return undefined;
  return {
    from: first.metadata.name,
    localInterface: local.localint || "default",
    dummyInterface: local.extlbint || "kube-lb0",
    sendGarp: local.sendgarp ?? false,
  };
}

/**
 * Every range of every valid local ServiceGroup (invalid groups and Netbox groups add none).
 *
 * @example
 * ```ts
 * poolRangesOf([{ spec: { local: { v4pools: [{ pool: "192.0.2.10/32", subnet: "192.0.2.0/24" }] } } }]).length; // 1
 * ```
 */
export function poolRangesOf(groups: readonly { readonly spec?: unknown }[]): readonly PoolRange[] {
  const ranges: PoolRange[] = [];
  for (const group of groups) {
    const parsed = parseServiceGroupSpec(group.spec);
    if (parsed.kind === "valid" && parsed.source.kind === "local") {
      ranges.push(...parsed.source.pool.ranges);
    }
  }
  return ranges;
}

/**
 * Per Netbox ServiceGroup whose aggregation is an explicit `/N`: N (for its virtual addresses).
 *
 * @example
 * ```ts
 * netboxAggregationsOf([{ metadata: { name: "nb" },
 *   spec: { netbox: { url: "https://nb/", tenant: "t", aggregation: "/24" } } }]); // nb -> 24
 * ```
 */
export function netboxAggregationsOf(
  groups: readonly { readonly metadata?: { readonly name?: string }; readonly spec?: unknown }[],
): ReadonlyMap<string, number> {
  const aggregations = new Map<string, number>();
  for (const group of groups) {
    const parsed = parseServiceGroupSpec(group.spec);
    const name = group.metadata?.name;
    if (
      name !== undefined && parsed.kind === "valid" && parsed.source.kind === "netbox" &&
      parsed.source.aggregation.kind === "prefix"
    ) {
      aggregations.set(name, parsed.source.aggregation.prefixLength);
    }
  }
  return aggregations;
}

/** See the module documentation. */
export class AgentController {
  readonly #options: AgentControllerOptions;
  readonly services: ResilientInformer<V1Service>;
  readonly slices: ResilientInformer<V1EndpointSlice>;
  readonly groups: ResilientInformer<CustomObject>;
  readonly agents: ResilientInformer<CustomObject>;
  readonly leases: ResilientInformer<V1Lease>;
  readonly #queue = new WorkQueue<string>();
  #running: Promise<void> | undefined;
  #resyncTimer: ReturnType<typeof setInterval> | undefined;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settings last applied, for withdrawing when the LBNodeAgent goes away or at stop. */
  #settings: (AnnounceSettings & { readonly from: string }) | undefined;
  #readiness: AgentReadiness = { ready: false, reason: "caches not synced yet" };
  /** Local addresses this node carried after the last reconcile (GARP on new ones). */
  #wonLocal = new Set<string>();
  /**
   * Local addresses this agent (this run or, read from the Lease, a previous one) may have put
   * on interfaces: ours to remove when not won, even with no Service or pool that names them.
   * Recorded in the Lease; `undefined` until the Lease has been read.
   */
  #mayHold: Set<string> | undefined;
  /** Per "service\naddress": "local eth0" | "virtual kube-lb0" for what we announce. */
  #announced = new Map<string, string>();
  /** Per service: the warning text last reported. */
  readonly #warned = new Map<string, string>();
  #liveCount = 0;
  /** Services whose slices must be read once the slices informer has its first list. */
  readonly #slicesToLoad = new Set<string>();
  /** Per cached Service object (never mutated, replaced on change): its announcement. */
  readonly #announcements = new WeakMap<V1Service, ServiceAnnouncement | null>();
  #slicesStarted = false;
  /** What the next reconcile must do at least (see {@link ReconcileDepth}). */
  #depth: ReconcileDepth = "full";
  /**
   * Settings and network state of the last full decision that found nothing to change: while
   * the network reads the same, the resync has nothing to repair.
   */
  #verified: { readonly settings: AnnounceSettings; readonly state: NetworkState } | undefined;
  /**
   * The last apply that succeeded in full: the network state it decided on, the settings and
   * what it put in place. A decision on that state that comes out the same needs no `ip`.
   */
  #lastApplied:
    | {
      readonly settings: AnnounceSettings;
      readonly state: NetworkState;
      readonly assignments: readonly AddressAssignment[];
    }
    | undefined;
  #lastNoAgentLog = "";
  readonly #gratuitous = new Set<Promise<void>>();
  /** Per address: stops its gratuitous announcement once the address is given up. */
  readonly #gratuitousByAddress = new Map<string, AbortController>();
  /** Aborts gratuitous announcements in flight when the agent stops. */
  readonly #stopping = new AbortController();
  #reconciles = 0;

  /** Builds the informers; nothing runs until {@link AgentController.start}. */
  constructor(options: AgentControllerOptions) {
    this.#options = options;
    const { connection, namespace } = options;
    const onError = (what: string) => (error: unknown, retryInMs: number) =>
      log.warn("{what} watch failed, retrying in {retryInMs} ms: {error}", {
        what,
        retryInMs,
        error: errorMessage(error),
      });
    const purelbPath = (plural: string) =>
      `/apis/${PURELB_GROUP}/${PURELB_VERSION}/namespaces/${namespace}/${plural}`;
    this.services = new ResilientInformer<V1Service>(connection, {
      name: "services",
      path: "/api/v1/services",
      transform: agentServiceView,
      onError: onError("services"),
    });
    this.slices = new ResilientInformer<V1EndpointSlice>(connection, {
      name: "endpointslices",
      path: "/apis/discovery.k8s.io/v1/endpointslices",
      labelSelector: SERVICE_NAME_LABEL,
      // Only the slices of Services whose announcement follows their endpoints are kept.
      transform: (slice) => {
        const key = sliceServiceKey(slice);
        const matters = key !== undefined && this.#announcementOf(key)?.localTrafficPolicy === true;
        return matters ? agentSliceView(slice) : undefined;
      },
      onError: onError("endpointslices"),
    });
    this.groups = new ResilientInformer<CustomObject>(connection, {
      name: "servicegroups",
      path: purelbPath(SERVICE_GROUP_PLURAL),
      transform: specView,
      onError: onError("servicegroups"),
    });
    this.agents = new ResilientInformer<CustomObject>(connection, {
      name: "lbnodeagents",
      path: purelbPath(LB_NODE_AGENT_PLURAL),
      transform: specView,
      onError: onError("lbnodeagents"),
    });
    this.leases = new ResilientInformer<V1Lease>(connection, {
      name: "leases",
      path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      transform: agentLeaseView,
      onError: onError("leases"),
    });
    this.services.onChange((type, current, previous) => {
      const deleted = type === "delete";
      const before = deleted ? current : previous;
      if (!endpointsMatterFor(before) && !deleted && endpointsMatterFor(current)) {
        this.#loadSlices(serviceKeyOf(current));
      }
      const matters = serviceChangeMatters(
        deleted ? current : previous,
        deleted ? undefined : current,
      );
      this.#changed("services", matters);
    });
    this.slices.onChange((type, current, previous) => {
      const deleted = type === "delete";
      const matters = sliceChangeMatters(
        deleted ? current : previous,
        deleted ? undefined : current,
        (key) => this.#announcementOf(key),
      );
      this.#changed("endpointslices", matters);
    });
    this.groups.onChange(() => this.#changed("servicegroups", true));
    this.agents.onChange(() => this.#changed("lbnodeagents", true));
    this.leases.onChange((type, current, previous) => {
      const deleted = type === "delete";
      const name = current.metadata?.name ?? "";
      const matters = leaseChangeMatters(
        deleted ? current : previous,
        deleted ? undefined : current,
        this.#liveLeases.has(name),
      );
      this.#changed("leases", matters);
    });
  }

  #serviceOf(serviceKey: string | undefined): V1Service | undefined {
    if (serviceKey === undefined) return undefined;
    const [namespace = "", name = ""] = serviceKey.split("/");
    return this.services.get(name, namespace);
  }

  /**
   * A Service came to follow its endpoints: the slices informer kept nothing of its slices so
   * far, so they are read now (or once the slices informer has its first list).
   */
  #loadSlices(serviceKey: string): void {
    // Not started yet: its first list will keep them.
    if (!this.#slicesStarted) return;
    if (!this.slices.hasSynced) {
      // Its first list is under way and may have passed them already.
      this.#slicesToLoad.add(serviceKey);
      return;
    }
    if (this.#stopping.signal.aborted || !endpointsMatterFor(this.#serviceOf(serviceKey))) return;
    const [namespace = "", name = ""] = serviceKey.split("/");
    this.slices.reload({
      labelSelector: `${SERVICE_NAME_LABEL}=${name}`,
      fieldSelector: `metadata.namespace=${namespace}`,
    }).catch((error) => {
      log.warn("cannot read the EndpointSlices of {service}, again in {ms} ms: {error}", {
        service: serviceKey,
        ms: SLICE_RELOAD_RETRY_MS,
        error: errorMessage(error),
      });
      setTimeout(() => this.#loadSlices(serviceKey), SLICE_RELOAD_RETRY_MS);
    });
  }

  #announcementOf(serviceKey: string): ServiceAnnouncement | undefined {
    const service = this.#serviceOf(serviceKey);
    return service === undefined ? undefined : this.#announcement(service);
  }

  /** {@link serviceAnnouncement} of a cached Service, read once per cached object. */
  #announcement(service: V1Service): ServiceAnnouncement | undefined {
    let known = this.#announcements.get(service);
    if (known === undefined) {
      known = serviceAnnouncement(service) ?? null;
      this.#announcements.set(service, known);
    }
    return known ?? undefined;
  }

  /** Counts a cache change; one that may alter the decision asks for a (coalesced) reconcile. */
  #changed(kind: string, relevant: boolean): void {
    this.#options.metrics.watchEvents.inc({ kind, relevant: String(relevant) });
    if (relevant) this.#queue.addAfter(NODE_KEY, COALESCE_MS);
  }

  /** Every informer, for metrics. */
  get informers(): readonly InformerCounts[] {
    return [this.services, this.slices, this.groups, this.agents, this.leases];
  }

  /** True once every cache holds a full list. */
  get synced(): boolean {
    return this.services.hasSynced && this.slices.hasSynced && this.groups.hasSynced &&
      this.agents.hasSynced && this.leases.hasSynced;
  }

  /** Ready, or why not (for /readyz). */
  get readiness(): AgentReadiness {
    return this.#readiness;
  }

  /** Live node Leases at the last reconcile. */
  get liveNodeCount(): number {
    return this.#liveCount;
  }

  /** Local addresses carried after the last reconcile. */
  get localWonCount(): number {
    return this.#wonLocal.size;
  }

  /** Reconciles completed (successfully or not). */
  get reconcileCount(): number {
    return this.#reconciles;
  }

  /** Asks for a full reconcile soon (fence changes, start-up, tests). */
  kick(): void {
    this.#deepen("full");
    this.#queue.add(NODE_KEY);
  }

  #deepen(depth: ReconcileDepth): void {
    if (DEPTHS.indexOf(depth) > DEPTHS.indexOf(this.#depth)) this.#depth = depth;
  }

  /** Starts the informers, the worker and the resync timer. */
  start(): void {
    for (const informer of [this.services, this.groups, this.agents, this.leases]) {
      informer.start();
      void informer.synced.then(() => this.kick());
    }
    // The slices informer keeps what the Services cache says matters: it starts once that is full.
    void this.services.synced.then(() => {
      this.#slicesStarted = true;
      this.slices.start();
      return this.slices.synced;
    }).then(() => {
      this.kick();
      const pending = [...this.#slicesToLoad];
      this.#slicesToLoad.clear();
      for (const key of pending) this.#loadSlices(key);
    });
    this.#resyncTimer = setInterval(() => {
      this.#deepen("verify");
      this.#queue.add(NODE_KEY);
    }, this.#options.resyncMs);
    this.#running = runWorkers(this.#queue, 1, () => this.#reconcile(), {
      onError: (_key, error) => {
        this.#options.metrics.reconcileErrors.inc();
        log.warn("reconcile failed: {error}", { error: errorMessage(error) });
      },
    });
  }

  /**
   * Stops reconciling (waits for a reconcile in progress) and the informers. The network is
   * left as it is: call {@link AgentController.withdrawAll} to clear it.
   */
  async stop(): Promise<void> {
    clearInterval(this.#resyncTimer);
    clearTimeout(this.#expiryTimer);
    this.#stopping.abort();
    this.#queue.shutDown();
    await this.#running;
    await Promise.all(
      [this.services, this.slices, this.groups, this.agents, this.leases].map((i) => i.stop()),
    );
  }

  /** Waits for gratuitous announcements in flight. */
  async settle(): Promise<void> {
    await Promise.all([...this.#gratuitous]);
  }

  /**
   * Removes every address this agent manages (graceful stop): everything on the dummy
   * interface and every Service or pool address elsewhere. Returns the changes applied.
   */
  async withdrawAll(): Promise<ApplyResult | undefined> {
    const settings = this.#settings;
    if (settings === undefined) return undefined;
    const state = await this.#options.netlink.readState();
    const result = await this.#apply(state, settings, []);
    this.#wonLocal = new Set();
    this.#options.metrics.setAnnounced([]);
    for (const [key, where] of this.#announced) this.#reportWithdrawn(key, where);
    this.#announced = new Map();
    return result;
  }

  /** Lease names found live at the last reconcile. */
  #liveLeases = new Set<string>();

  async #reconcile(): Promise<{ kind: "done" }> {
    if (!this.synced) return { kind: "done" };
    const started = performance.now();
    try {
      return await this.#reconcileSynced();
    } finally {
      this.#reconciles++;
      this.#options.metrics.reconciles.inc();
      this.#options.metrics.reconcileSeconds.observe((performance.now() - started) / 1000);
    }
  }

  async #reconcileSynced(): Promise<{ kind: "done" }> {
    const { netlink, membership, namespace } = this.#options;
    const agents = this.agents.list().flatMap((object) => {
      const agent = asLBNodeAgent(object);
      return agent === undefined ? [] : [agent];
    });
    const settings = applyingSettings(agents);
    if (settings === undefined) {
      const reason = `no LBNodeAgent with spec.local in ${namespace}: announcing nothing`;
      this.#readiness = { ready: false, reason };
      if (this.#lastNoAgentLog !== reason) {
        log.warn(reason);
        this.#lastNoAgentLog = reason;
      }
      if (this.#settings !== undefined) {
        await this.withdrawAll();
        this.#settings = undefined;
      }
      return { kind: "done" };
    }
    this.#lastNoAgentLog = "";
    if (
      this.#settings !== undefined && this.#settings.dummyInterface !== settings.dummyInterface
    ) {
      // extlbint renamed: clear the old dummy interface first.
      await this.withdrawAll();
    }
    if (this.#settings?.from !== settings.from) {
      log.info(
        "LBNodeAgent {name} applies: localint {localint}, extlbint {extlbint}, sendgarp " +
          "{sendgarp}",
        {
          name: settings.from,
          localint: settings.localInterface,
          extlbint: settings.dummyInterface,
          sendgarp: settings.sendGarp,
        },
      );
    }
    this.#settings = settings;

    const depth = this.#depth;
    this.#depth = "quick";
    if (depth === "quick" && this.#decisionUnchanged(settings)) return this.#untilNextExpiry();

    let state = await netlink.readState();
    const verified = this.#verified;
    if (
      depth === "verify" && verified !== undefined &&
      isDeepStrictEqual(verified.settings, settings) && isDeepStrictEqual(verified.state, state)
    ) {
      // No drift, and nothing since changed the decision (it would have reset #verified).
      return this.#untilNextExpiry();
    }
    if (findLink(state, settings.dummyInterface) === undefined) {
      const outcome = await netlink.ensureDummyInterface(settings.dummyInterface);
      log.info("dummy interface {name}: {outcome}", {
        name: settings.dummyInterface,
        outcome: outcome.kind,
      });
      state = await netlink.readState();
    }

    try {
      // A starting node stays out of every election for one renewal period (it publishes no
      // subnets and claims no local address), so that nodes starting together see each other
      // before anyone claims, and no two of them send gratuitous ARP for the same address.
      membership.setSubnets(settling(membership) ? [] : announceSubnets(state, settings));
    } catch (error) {
      log.warn("cannot publish subnets: {error}", { error: errorMessage(error) });
    }
    // Until the first renewal the node is fenced and in no one's candidate list: wait.
    if (membership.renewals === 0) {
      this.#readiness = { ready: false, reason: `Lease ${membership.leaseName} not written yet` };
      return { kind: "done" };
    }

    const result = await this.#apply(state, settings, undefined);
    const failed = result.failed;
    this.#readiness = membership.fenced
      ? { ready: false, reason: "fenced: Lease not renewed for a full duration" }
      : failed.length > 0
      ? { ready: false, reason: `${failed.length} address changes failed` }
      : { ready: true };
    if (failed.length > 0) {
      this.#options.metrics.reconcileErrors.inc();
      for (const failure of failed) {
        log.warn("{command}: {message}", { command: failure.command, message: failure.message });
      }
    }
    return this.#untilNextExpiry();
  }

  /**
   * Done; the election is looked at again the moment the next node Lease would expire (crash
   * failover), and reconciled only if one did expire without renewal.
   */
  #untilNextExpiry(): { kind: "done" } {
    this.#armExpiryCheck();
    return { kind: "done" };
  }

  #armExpiryCheck(): void {
    clearTimeout(this.#expiryTimer);
    const ms = this.#nextLeaseExpiryMs();
    if (ms === undefined) return;
    this.#expiryTimer = setTimeout(() => {
      if (this.#aLiveLeaseExpired()) this.#changed("leases", true);
      else this.#armExpiryCheck();
    }, Math.max(10, ms + 5));
  }

  /** True when a node Lease live at the last reconcile has expired since. */
  #aLiveLeaseExpired(): boolean {
    const now = Date.now();
    for (const name of this.#liveLeases) {
      const lease = this.leases.get(name, this.#options.namespace);
      const record = lease === undefined ? undefined : leaseRecord(lease);
      if (record === undefined || record.nodeName === this.#options.nodeName) continue;
      if (record.renewTimeMs + record.leaseDurationMs <= now) return true;
    }
    return false;
  }

  /**
   * Decides on the network as last read. When that gives exactly what the last apply put in
   * place, nothing needs to change (drift is caught by the resync, which reads the network):
   * only events and metrics are brought up to date, and no `ip` runs.
   */
  #decisionUnchanged(settings: AnnounceSettings): boolean {
    const last = this.#lastApplied;
    if (last === undefined || !isDeepStrictEqual(last.settings, settings)) return false;
    const plan = this.#decide(last.state, settings, this.#decisionInputs());
    if (!isDeepStrictEqual(plan.assignments, last.assignments)) return false;
    this.#reportWarnings(plan.warnings);
    this.#afterApply(plan.decisions, settings);
    return true;
  }

  /** Milliseconds until the next live node Lease (other than ours) expires. */
  #nextLeaseExpiryMs(): number | undefined {
    const now = Date.now();
    let soonest: number | undefined;
    for (const lease of this.leases.list()) {
      const record = leaseRecord(lease);
      if (record === undefined || record.nodeName === this.#options.nodeName) continue;
      const expiresIn = record.renewTimeMs + record.leaseDurationMs - now;
      if (expiresIn > 0 && (soonest === undefined || expiresIn < soonest)) soonest = expiresIn;
    }
    return soonest;
  }

  #records(network: NetworkState, settings: AnnounceSettings): readonly NodeLeaseRecord[] {
    const { nodeName, membership } = this.#options;
    const now = Date.now();
    const others: NodeLeaseRecord[] = [];
    for (const lease of this.leases.list()) {
      const record = leaseRecord(lease);
      if (record !== undefined && record.nodeName !== nodeName) others.push(record);
    }
    const live = [...liveNodes(others, now)];
    this.#liveLeases = new Set(live.map((r) => `${NODE_LEASE_PREFIX}${r.nodeName}`));
    if (!membership.fenced) {
      // Our own liveness is what we know first-hand, not what the cache says yet.
      const subnets = announceSubnets(network, settings);
      live.push({ nodeName, renewTimeMs: now, leaseDurationMs: 1, subnets });
      this.#liveLeases.add(`${NODE_LEASE_PREFIX}${nodeName}`);
    }
    this.#liveCount = live.length;
    return live;
  }

  /**
   * Decides and applies. `assignmentsOverride` (e.g. `[]` to withdraw everything) replaces the
   * decision. When an IPv4 address with a prefix shorter than /32 was deleted, the addresses are
   * read and planned once more: deleting an interface's primary IPv4 address takes its
   * secondaries with it.
   */
  async #apply(
    firstState: NetworkState,
    settings: AnnounceSettings,
    assignmentsOverride: readonly [] | undefined,
  ): Promise<ApplyResult> {
    const { netlink, membership, metrics } = this.#options;
    const inputs = this.#decisionInputs();
    const { pools, serviceAddresses, mayHold } = inputs;
    let state = firstState;
    const applied: AddressChange[] = [];
    const alreadyDone: AddressChange[] = [];
    let failed: ApplyResult["failed"] = [];
    let decisions: readonly AddressDecision[] = [];
    let decidedOn: { state: NetworkState; assignments: readonly AddressAssignment[] } | undefined;
    for (let round = 0; round < 2; round++) {
      const plan = this.#decide(state, settings, inputs);
      if (plan.settingsProblem !== undefined) log.warn(plan.settingsProblem);
      if (assignmentsOverride === undefined) this.#reportWarnings(plan.warnings);
      decisions = plan.decisions;
      decidedOn = { state, assignments: plan.assignments };
      const changes = planChanges(state, {
        assignments: assignmentsOverride ?? plan.assignments,
        isOwned: ownedAddressPredicate({
          dummyInterface: settings.dummyInterface,
          pools,
          serviceAddresses,
          network: state,
        }),
      });
      if (changes.length === 0) break;
      if (mayHold !== undefined) {
        // Recorded before adding, so that a crash right after still knows them.
        const adding = changes.filter((c) =>
          c.kind === "add" && c.interfaceName !== settings.dummyInterface &&
          !mayHold.has(c.address)
        );
        for (const change of adding) mayHold.add(change.address);
        if (adding.length > 0) membership.setLocalAddresses(mayHold);
      }
      const result = await netlink.applyChanges(changes);
      applied.push(...result.applied);
      alreadyDone.push(...result.alreadyDone);
      failed = result.failed;
      for (const change of result.applied) {
        metrics.addressChanges.inc({ kind: change.kind });
        log.debug("{kind} {address}/{prefixLength} on {interfaceName}", { ...change });
      }
      if (result.applied.length > 0) {
        log.info("applied {count} address changes ({adds} added, {deletes} deleted)", {
          count: result.applied.length,
          adds: result.applied.filter((c) => c.kind === "add").length,
          deletes: result.applied.filter((c) => c.kind === "delete").length,
        });
      }
      // Deleting a primary IPv4 address takes the secondaries of its subnet with it: look again.
      if (!result.applied.some(mayRemoveOthers)) break;
      state = { ...state, links: await netlink.readLinks() };
    }
    if (assignmentsOverride === undefined) this.#afterApply(decisions, settings);
    this.#lastApplied = assignmentsOverride === undefined && failed.length === 0 &&
        decidedOn !== undefined
      ? { settings, ...decidedOn }
      : undefined;
    this.#verified = assignmentsOverride === undefined && applied.length === 0 &&
        alreadyDone.length === 0 && failed.length === 0
      ? { settings, state: firstState }
      : undefined;
    if (mayHold !== undefined) {
      // Still ours: what we carry now, and what we failed to remove.
      const kept = new Set(assignmentsOverride === undefined ? this.#wonLocal : []);
      for (const { change } of failed) {
        if (change.kind === "delete" && mayHold.has(change.address)) kept.add(change.address);
      }
      this.#mayHold = kept;
      membership.setLocalAddresses(kept);
    }
    return { applied, alreadyDone, failed };
  }

  /** What a decision reads from the caches (and the addresses this agent may hold). */
  #decisionInputs(): DecisionInputs {
    const services = this.services.list().flatMap((svc) => {
      const read = this.#announcement(svc);
      return read === undefined ? [] : [read];
    });
    const groups = this.groups.list();
    const needsEndpoints = services.some((s) => s.localTrafficPolicy);
    // What we won last time, or may have added before a restart, is ours even when its Service
    // is gone (a Netbox address, or one of a deleted pool, is in no pool range).
    const mayHold = this.#loadMayHold();
    return {
      services,
      pools: poolRangesOf(groups),
      netboxAggregations: netboxAggregationsOf(groups),
      endpointNodes: needsEndpoints
        ? healthyEndpointNodes(this.slices.list())
        : new Map<string, ReadonlySet<string>>(),
      mayHold,
      serviceAddresses: new Set([
        ...services.flatMap((s) => s.addresses),
        ...this.#wonLocal,
        ...(mayHold ?? []),
      ]),
    };
  }

  #decide(
    state: NetworkState,
    settings: AnnounceSettings,
    inputs: DecisionInputs,
  ): AnnouncePlan {
    const { nodeName, membership } = this.#options;
    return decideAnnouncements({
      nodeName,
      settings,
      services: inputs.services,
      endpointNodes: inputs.endpointNodes,
      pools: inputs.pools,
      netboxAggregations: inputs.netboxAggregations,
      network: state,
      liveNodes: this.#records(state, settings),
      fenced: membership.fenced || settling(membership),
    });
  }

  /**
   * The addresses this agent may hold (`#mayHold`), started from what the previous run recorded
   * in the Lease once the Lease has been read; `undefined` before.
   */
  #loadMayHold(): Set<string> | undefined {
    if (this.#mayHold === undefined) {
      const previous = this.#options.membership.previousLocalAddresses;
      if (previous !== undefined) {
        this.#mayHold = new Set([...previous, ...this.#wonLocal]);
        if (previous.size > 0) {
          log.info("a previous run recorded local addresses {addresses}", {
            addresses: [...previous].join(", "),
          });
        }
      }
    }
    return this.#mayHold;
  }

  /** Gratuitous announcements for newly won local addresses, events, metrics. */
  #afterApply(decisions: readonly AddressDecision[], settings: AnnounceSettings): void {
    const { nodeName, metrics } = this.#options;
    const wonLocal = new Set<string>();
    const announced = new Map<string, string>();
    const gauge: { service: string; ip: string }[] = [];
    for (const decision of decisions) {
      if (!decision.announce) continue;
      if (decision.kind === "local") {
        wonLocal.add(decision.address);
        if (!this.#wonLocal.has(decision.address) && settings.sendGarp) {
          this.#sendGratuitous(decision.interfaceName, decision.address);
        }
      }
      for (const service of decision.services) {
        announced.set(
          `${service}\n${decision.address}`,
          `${decision.kind} ${decision.interfaceName}`,
        );
        gauge.push({ service, ip: decision.address });
      }
    }
    // A lost address must not keep advertising this node's MAC (arping runs for seconds).
    for (const [address, sending] of this.#gratuitousByAddress) {
      if (!wonLocal.has(address)) {
        sending.abort();
        this.#gratuitousByAddress.delete(address);
      }
    }
    for (const [key, where] of announced) {
      if (this.#announced.get(key) === where) continue;
      const [service = "", address = ""] = key.split("\n");
      const [kind = "", interfaceName = ""] = where.split(" ");
      this.#event(
        service,
        "Normal",
        kind === "local" ? EventReason.AnnouncingLocal : EventReason.AnnouncingVirtual,
        `Announcing ${address} from node ${nodeName} interface ${interfaceName}`,
      );
    }
    for (const [key, where] of this.#announced) {
      if (!announced.has(key)) this.#reportWithdrawn(key, where);
    }
    this.#announced = announced;
    this.#wonLocal = wonLocal;
    metrics.setAnnounced(gauge);
  }

  #reportWithdrawn(key: string, where: string): void {
    const [service = "", address = ""] = key.split("\n");
    const [, interfaceName = ""] = where.split(" ");
    this.#event(
      service,
      "Normal",
      EventReason.Withdrawn,
      `Withdrew ${address} from node ${this.#options.nodeName} interface ${interfaceName}`,
    );
  }

  #sendGratuitous(interfaceName: string, address: string): void {
    const { announcer, metrics } = this.#options;
    const family = address.includes(":") ? "IPv6" : "IPv4";
    if (announcer === undefined) {
      log.warn("sendgarp is on but arping/na6 are missing: {address} not announced", { address });
      return;
    }
    this.#gratuitousByAddress.get(address)?.abort();
    const cancel = new AbortController();
    this.#gratuitousByAddress.set(address, cancel);
    const signal = AbortSignal.any([this.#stopping.signal, cancel.signal]);
    const sending = announcer.announce({
      interfaceName,
      address,
      count: GRATUITOUS_COUNT,
      signal,
    })
      .then(
        () => {
          metrics.gratuitousSent.inc({ family });
        },
        (error) => {
          if (signal.aborted) return;
          metrics.gratuitousFailed.inc({ family });
          log.warn("gratuitous announcement of {address} failed: {error}", {
            address,
            error: errorMessage(error),
          });
        },
      );
    this.#gratuitous.add(sending);
    void sending.finally(() => {
      this.#gratuitous.delete(sending);
      if (this.#gratuitousByAddress.get(address) === cancel) {
        this.#gratuitousByAddress.delete(address);
      }
    });
  }

  #reportWarnings(warnings: readonly { service: string; message: string }[]): void {
    const current = new Set<string>();
    for (const { service, message } of warnings) {
      current.add(service);
      if (this.#warned.get(service) === message) continue;
      this.#warned.set(service, message);
      this.#event(service, "Warning", EventReason.ConfigurationWarning, message);
    }
    for (const service of [...this.#warned.keys()]) {
      if (!current.has(service)) this.#warned.delete(service);
    }
  }

  #event(serviceKey: string, type: EventType, reason: EventReason, message: string): void {
    const svc = this.#serviceOf(serviceKey);
    if (svc === undefined) return;
    const subject = { apiVersion: "v1", kind: "Service", metadata: svc.metadata };
    void this.#options.events.record(subject, type, reason, message);
  }
}

/** True until the node's Lease has been written twice (one renewal period after start). */
function settling(membership: { readonly renewals: number }): boolean {
  return membership.renewals < 2;
}
