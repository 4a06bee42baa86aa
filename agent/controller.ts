/**
 * The node agent controller. One work key, "the node", is reconciled by one worker:
 *
 * 1. A change in one of the {@link AgentCaches} that agent/relevance.ts says can alter this
 *    node's decision asks for a reconcile, coalesced over a few milliseconds. So do the resync
 *    timer (drift repair) and the moment the next node Lease expires (crash failover).
 * 2. The reconcile takes the applying LBNodeAgent's settings, reads the network (3 `ip`
 *    processes), asks {@link decideAnnouncements} what this node must carry, plans the
 *    difference with `planChanges` and applies it in one `ip -batch` (none when nothing
 *    changed). A watch event whose decision comes out as before runs no `ip` at all.
 * 3. Then it sends gratuitous announcements for newly won local addresses and reports Events,
 *    metrics and readiness.
 *
 * @module
 */

import type { V1Lease, V1Node } from "@kubernetes/client-node";
import { isDeepStrictEqual } from "node:util";
import { getLogger } from "@logtape/logtape";
import { errorMessage } from "../k8s/errors.ts";
import type { EventSink } from "../k8s/events.ts";
import { runWorkers, WorkQueue } from "../k8s/workqueue.ts";
import { inspectLBNodeAgent, type LBNodeAgent, SERVICE_NAME_LABEL } from "../k8s/types.ts";
import type { Labels } from "../k8s/selector.ts";
import type { PoolRange } from "../ipam/mod.ts";
import { liveNodes, type NodeLeaseRecord } from "../election/mod.ts";
import {
  type AddressAssignment,
  type AddressChange,
  type ApplyResult,
  defaultRouteInterfaces,
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
} from "./announce.ts";
import type { AgentCaches, ServiceAnnouncements } from "./informers.ts";
import {
  endpointsMatterFor,
  leaseChangeMatters,
  serviceChangeMatters,
  sliceChangeMatters,
} from "./relevance.ts";
import {
  type AgentSettings,
  applyingSettings,
  netboxAggregationsOf,
  poolRangesOf,
  type SelectorProblem,
} from "./settings.ts";
import {
  leaseRecord,
  nodeLeaseName,
  type NodeMembership,
  RecordedLocalAddresses,
} from "./membership.ts";
import { GratuitousAnnouncements } from "./gratuitous.ts";
import { announcementsOf, ServiceEvents } from "./service_events.ts";
import type { AgentMetrics } from "./metrics.ts";

/** What the controller does with the network. */
export type AgentNetlink = Pick<
  Netlink,
  "readState" | "readLinks" | "applyChanges" | "ensureDummyInterface"
>;

/** What the controller reads of this node's membership, and what it publishes through it. */
export type AgentMembership = Pick<
  NodeMembership,
  | "leaseName"
  | "fenced"
  | "renewals"
  | "previousLocalAddresses"
  | "setLocalAddresses"
  | "setSubnets"
  | "setAnnouncing"
>;

/** Options of {@link AgentController}. */
export interface AgentControllerOptions {
  /** Started and stopped by the controller. */
  readonly caches: AgentCaches;
  /** The announcements of `caches.services`, shared with the slices cache. */
  readonly announcements: ServiceAnnouncements;
  /** Namespace of Leases, ServiceGroups, LBNodeAgents. */
  readonly namespace: string;
  /** This node. */
  readonly nodeName: string;
  /** The host's (or netns's) addresses. */
  readonly netlink: AgentNetlink;
  /** GARP / NA sender; `undefined` when the helpers are missing (sendgarp then only warns). */
  readonly announcer: Pick<GratuitousAnnouncer, "announce"> | undefined;
  /** This node's Lease. */
  readonly membership: AgentMembership;
  readonly events: EventSink;
  readonly metrics: AgentMetrics;
  /** Time between full comparisons of network and wanted state. */
  readonly resyncMs: number;
}

/** See {@linkcode AgentController.nodeFacts}. */
export interface NodeFacts {
  readonly dummyInterface: string | undefined;
  readonly defaultIPv4: string | undefined;
}

/** The first IPv4 address of the first default-route interface that has one. */
function defaultRouteIPv4(state: NetworkState): string | undefined {
  for (const name of defaultRouteInterfaces(state)) {
    const link = state.links.find((candidate) => candidate.name === name);
    const address = link?.addresses.find((a) => a.family === "IPv4" && a.scope === "global");
    if (address !== undefined) return address.local;
  }
  return undefined;
}

/** Readiness of the agent, with the reason when not ready. */
export type AgentReadiness =
  | { readonly ready: true }
  | { readonly ready: false; readonly reason: string };

/**
 * How deep a reconcile goes: `quick` decides on the network as last read and runs no `ip` if
 * the decision is unchanged (watch events); `verify` reads the network and stops there if it is
 * as the last full decision found it (the resync: drift repair); `full` reads and decides.
 */
type ReconcileDepth = "quick" | "verify" | "full";
const DEPTHS: readonly ReconcileDepth[] = ["quick", "verify", "full"];

/** `decide`: apply the decision; `withdrawAll`: remove every address this agent manages. */
type ApplyMode = "decide" | "withdrawAll";

/** What one decision reads from the caches. */
interface DecisionInputs {
  readonly services: readonly ServiceAnnouncement[];
  readonly pools: readonly PoolRange[];
  readonly netboxAggregations: ReadonlyMap<string, number>;
  readonly endpointNodes: ReadonlyMap<string, ReadonlySet<string>>;
  /** Addresses of Services, won before, or recorded as possibly held: ours to remove. */
  readonly serviceAddresses: ReadonlySet<string>;
}

/** A decision and the live nodes it was elected among. */
interface Decision {
  readonly plan: AnnouncePlan;
  readonly liveNodes: readonly NodeLeaseRecord[];
}

/** The node Leases a decision found live (read on Lease changes and expiries). */
interface LiveLeases {
  readonly leaseNames: ReadonlySet<string>;
  readonly count: number;
}

/** One decision on one network state and, unless it changed nothing, the outcome of applying it. */
interface AppliedRound {
  readonly state: NetworkState;
  readonly decision: Decision;
  readonly result: ApplyResult | undefined;
}

const NODE_KEY = "node";
/**
 * Relevant changes within this window share one reconcile. Short against failover times (a
 * graceful hand-over takes tens of milliseconds), long against a burst of watch events.
 */
const COALESCE_MS = 20;
/** A failed read of a Service's EndpointSlices is tried again this much later. */
const SLICE_RELOAD_RETRY_MS = 2_000;

const log = getLogger(["purelb", "agent"]);

/** See the module documentation. */
export class AgentController {
  readonly #options: AgentControllerOptions;
  readonly #caches: AgentCaches;
  readonly #queue = new WorkQueue<string>();
  readonly #recorded: RecordedLocalAddresses;
  readonly #gratuitous: GratuitousAnnouncements;
  readonly #serviceEvents: ServiceEvents;
  #running: Promise<void> | undefined;
  #resyncTimer: ReturnType<typeof setInterval> | undefined;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Settings last applied, for withdrawing when the LBNodeAgent goes away or at stop. */
  #settings: AgentSettings | undefined;
  /** The first IPv4 address of a default-route interface, at the last network read. */
  #defaultIPv4: string | undefined;
  #readiness: AgentReadiness = { ready: false, reason: "caches not synced yet" };
  #lastNoAgentLog = "";
  #lastSelectorProblems = "";
  /** Not selected, and everything this agent may have put in place was withdrawn. */
  #unselectedCleared = false;
  /** Whether an LBNodeAgent selected this node at the last reconcile (unknown before the first). */
  #selected: boolean | undefined;
  /** Lease renewals done when this node last came to be selected (0: from the start). */
  #joinedAtRenewals = 0;
  /** Local addresses this node carried after the last reconcile (GARP on new ones). */
  #wonLocal = new Set<string>();
  /** The interface of each of {@link AgentController.#wonLocal}. */
  #wonLocalInterfaces = new Map<string, string>();
  #live: LiveLeases = { leaseNames: new Set(), count: 0 };
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
  #slicesStarted = false;
  /** Services whose slices must be read once the slices cache has its first list. */
  readonly #slicesToLoad = new Set<string>();
  readonly #stopping = new AbortController();
  #reconciles = 0;

  /** Registers on the caches; nothing runs until {@link AgentController.start}. */
  constructor(options: AgentControllerOptions) {
    this.#options = options;
    this.#caches = options.caches;
    this.#recorded = new RecordedLocalAddresses(options.membership);
    this.#gratuitous = new GratuitousAnnouncements(options.announcer, options.metrics);
    this.#serviceEvents = new ServiceEvents({
      events: options.events,
      nodeName: options.nodeName,
      serviceOf: (key) => options.announcements.service(key),
    });
    const { services, slices, groups, agents, leases, node } = this.#caches;
    services.onChange((type, current, previous) => {
      const deleted = type === "delete";
      const before = deleted ? current : previous;
      if (!endpointsMatterFor(before) && !deleted && endpointsMatterFor(current)) {
        this.#loadSlices(`${current.metadata?.namespace ?? ""}/${current.metadata?.name ?? ""}`);
      }
      const matters = serviceChangeMatters(before, deleted ? undefined : current);
      this.#changed("services", matters);
    });
    slices.onChange((type, current, previous) => {
      const deleted = type === "delete";
      const matters = sliceChangeMatters(
        deleted ? current : previous,
        deleted ? undefined : current,
        (key) => options.announcements.byKey(key),
      );
      this.#changed("endpointslices", matters);
    });
    groups.onChange(() => this.#changed("servicegroups", true));
    agents.onChange(() => this.#changed("lbnodeagents", true));
    // A Node that does not exist counts as one without labels.
    node.onChange((type, current, previous) => {
      const labelsOf = (object: V1Node | undefined) => object?.metadata?.labels ?? {};
      const before = type === "add" ? {} : labelsOf(type === "delete" ? current : previous);
      const after = type === "delete" ? {} : labelsOf(current);
      this.#changed("nodes", !isDeepStrictEqual(before, after));
    });
    leases.onChange((type, current, previous) => {
      const deleted = type === "delete";
      const matters = leaseChangeMatters(
        deleted ? current : previous,
        deleted ? undefined : current,
        this.#live.leaseNames.has(current.metadata?.name ?? ""),
      );
      this.#changed("leases", matters);
    });
  }

  /** True once every cache holds a full list. */
  get synced(): boolean {
    const { services, slices, groups, agents, leases, node } = this.#caches;
    return services.hasSynced && slices.hasSynced && groups.hasSynced && agents.hasSynced &&
      leases.hasSynced && node.hasSynced;
  }

  /**
   * What the BGP controller needs to know of this node: the dummy interface of the applying
   * LBNodeAgent and the IPv4 address that is the default BGP router ID.
   */
  get nodeFacts(): NodeFacts {
    return { dummyInterface: this.#settings?.dummyInterface, defaultIPv4: this.#defaultIPv4 };
  }

  /** Ready, or why not (for /readyz). */
  get readiness(): AgentReadiness {
    return this.#readiness;
  }

  /** Live node Leases at the last decision. */
  get liveNodeCount(): number {
    return this.#live.count;
  }

  /** Local addresses carried after the last reconcile. */
  get localWonCount(): number {
    return this.#wonLocal.size;
  }

  /** Reconciles completed (successfully or not). */
  get reconcileCount(): number {
    return this.#reconciles;
  }

  /** Starts the caches, the worker and the resync timer. */
  start(): void {
    const { services, slices, groups, agents, leases, node } = this.#caches;
    for (const cache of [services, groups, agents, leases, node]) {
      cache.start();
      void cache.synced.then(() => this.kick());
    }
    // The slices cache keeps what the Services cache says matters: it starts once that is full.
    void services.synced.then(() => {
      this.#slicesStarted = true;
      slices.start();
      return slices.synced;
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
   * Stops reconciling (waits for a reconcile in progress) and the caches. The network is left
   * as it is: call {@link AgentController.withdrawAll} to clear it.
   */
  async stop(): Promise<void> {
    clearInterval(this.#resyncTimer);
    clearTimeout(this.#expiryTimer);
    this.#stopping.abort();
    this.#gratuitous.stop();
    this.#queue.shutDown();
    await this.#running;
    const { services, slices, groups, agents, leases, node } = this.#caches;
    await Promise.all(
      [services, slices, groups, agents, leases, node].map((cache) => cache.stop()),
    );
  }

  /** Waits for gratuitous announcements in flight. */
  settle(): Promise<void> {
    return this.#gratuitous.settle();
  }

  /**
   * Tells the controller the node's Lease was written: the renewal that ends a settling period
   * (one renewal period after start, or after the node came to be selected) asks for a
   * reconcile at once, so that the node
   * publishes its subnets and claims without waiting for the next resync.
   */
  renewed(): void {
    if (this.#options.membership.renewals === this.#joinedAtRenewals + 2) this.kick();
  }

  /**
   * True until the node's Lease has been written twice since the agent started, or since an
   * LBNodeAgent came to select the node (one renewal period): a settling node publishes no
   * subnets and claims no local address, so that nodes starting (or labelled) together see each
   * other before anyone claims, and no two of them send gratuitous ARP for the same address.
   */
  #settling(): boolean {
    return this.#options.membership.renewals < this.#joinedAtRenewals + 2;
  }

  /** Asks for a full reconcile soon (fence changes, start-up, tests). */
  kick(): void {
    this.#deepen("full");
    this.#queue.add(NODE_KEY);
  }

  /**
   * Removes every address this agent manages (graceful stop): everything on the dummy
   * interface and every Service or pool address elsewhere. Returns the changes applied.
   */
  async withdrawAll(): Promise<ApplyResult | undefined> {
    const settings = this.#settings;
    if (settings === undefined) return undefined;
    const state = await this.#options.netlink.readState();
    const result = await this.#apply(state, settings, "withdrawAll");
    this.#wonLocal = new Set();
    this.#wonLocalInterfaces = new Map();
    this.#options.metrics.setAnnounced([]);
    this.#serviceEvents.withdrawnAll();
    return result;
  }

  /** Counts a cache change; one that may alter the decision asks for a (coalesced) reconcile. */
  #changed(kind: string, relevant: boolean): void {
    this.#options.metrics.watchEvents.inc({ kind, relevant: String(relevant) });
    if (relevant) this.#queue.addAfter(NODE_KEY, COALESCE_MS);
  }

  #deepen(depth: ReconcileDepth): void {
    if (DEPTHS.indexOf(depth) > DEPTHS.indexOf(this.#depth)) this.#depth = depth;
  }

  /**
   * A Service came to follow its endpoints: the slices cache kept nothing of its slices so
   * far, so they are read now (or once the slices cache has its first list).
   */
  #loadSlices(serviceKey: string): void {
    // Not started yet: its first list will keep them.
    if (!this.#slicesStarted) return;
    if (!this.#caches.slices.hasSynced) {
      // Its first list is under way and may have passed them already.
      this.#slicesToLoad.add(serviceKey);
      return;
    }
    if (
      this.#stopping.signal.aborted ||
      !endpointsMatterFor(this.#options.announcements.service(serviceKey))
    ) return;
    const [namespace = "", name = ""] = serviceKey.split("/");
    this.#caches.slices.reload({
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

  async #reconcile(): Promise<{ kind: "done" }> {
    if (!this.synced) {
      const waiting = Object.entries(this.#caches).flatMap(([name, cache]) =>
        cache.hasSynced ? [] : [name]
      );
      this.#readiness = { ready: false, reason: `caches not synced yet: ${waiting.join(", ")}` };
      return { kind: "done" };
    }
    const started = performance.now();
    try {
      await this.#reconcileSynced();
    } finally {
      this.#reconciles++;
      this.#options.metrics.reconciles.inc();
      this.#options.metrics.reconcileSeconds.observe((performance.now() - started) / 1000);
    }
    return { kind: "done" };
  }

  async #reconcileSynced(): Promise<void> {
    const { netlink, membership } = this.#options;
    const settings = await this.#takeSettings();
    if (settings === undefined) return;

    const depth = this.#depth;
    this.#depth = "quick";
    if (depth === "quick" && this.#decisionUnchanged(settings)) return this.#armExpiryCheck();

    let state = await netlink.readState();
    this.#defaultIPv4 = defaultRouteIPv4(state);
    const verified = this.#verified;
    if (
      depth === "verify" && verified !== undefined &&
      isDeepStrictEqual(verified.settings, settings) && isDeepStrictEqual(verified.state, state)
    ) {
      // No drift, and nothing since changed the decision (it would have reset #verified).
      return this.#armExpiryCheck();
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
      // A settling node (just started, or just selected) stays out of every election.
      membership.setSubnets(this.#settling() ? [] : announceSubnets(state, settings));
    } catch (error) {
      log.warn("cannot publish subnets: {error}", { error: errorMessage(error) });
    }
    // Until the first renewal the node is fenced and in no one's candidate list: wait.
    if (membership.renewals === 0) {
      this.#readiness = { ready: false, reason: `Lease ${membership.leaseName} not written yet` };
      return;
    }

    const { failed } = await this.#apply(state, settings, "decide");
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
    this.#armExpiryCheck();
  }

  /**
   * The settings of the LBNodeAgent that applies to this node, made current: with none,
   * everything is withdrawn and the agent is not ready; a node that LBNodeAgents exist for but
   * none selects also publishes no subnets (it stands in no election); a renamed dummy
   * interface is cleared first.
   */
  async #takeSettings(): Promise<AgentSettings | undefined> {
    const { namespace, nodeName } = this.#options;
    const agents: LBNodeAgent[] = [];
    const unreadable: SelectorProblem[] = [];
    for (const object of this.#caches.agents.list()) {
      const read = inspectLBNodeAgent(object);
      if (read.kind === "valid") agents.push(read.value);
      else unreadable.push({ agent: object.metadata?.name ?? "", problem: read.problem });
    }
    const labels = this.#caches.node.get(nodeName)?.metadata?.labels ?? {};
    const choice = applyingSettings(agents, labels);
    this.#reportProblems([...unreadable, ...choice.problems]);
    if (choice.kind !== "selected") {
      const reason = choice.kind === "none"
        ? `no LBNodeAgent with spec.local in ${namespace}: announcing nothing`
        : `no LBNodeAgent selects node ${nodeName} (LBNodeAgents in ${namespace}: ${
          choice.candidates.join(", ")
        }; node labels: ${formatLabels(labels)}): announcing nothing, in no election`;
      this.#readiness = { ready: false, reason };
      if (this.#lastNoAgentLog !== reason) {
        log.warn(reason);
        this.#lastNoAgentLog = reason;
      }
      if (choice.kind === "notSelected") {
        this.#selected = false;
        this.#options.membership.setSubnets([]);
        await this.#withdrawUnselected(agents);
      }
      if (this.#settings !== undefined) {
        await this.withdrawAll();
        this.#settings = undefined;
      }
      return undefined;
    }
    const { settings } = choice;
    if (this.#selected === false) {
      // Selected from now on: it settles in as a starting node does.
      this.#joinedAtRenewals = this.#options.membership.renewals;
      log.info("node {node} is selected now: settling for one Lease renewal period", {
        node: nodeName,
      });
    }
    this.#selected = true;
    this.#lastNoAgentLog = "";
    this.#unselectedCleared = false;
    if (
      this.#settings !== undefined && this.#settings.dummyInterface !== settings.dummyInterface
    ) {
      await this.withdrawAll();
    }
    if (this.#settings?.from !== settings.from) {
      log.info(
        "LBNodeAgent {name} applies to node {node}: localint {localint}, extlbint {extlbint}, " +
          "sendgarp {sendgarp}",
        {
          name: settings.from,
          node: nodeName,
          localint: settings.localInterface,
          extlbint: settings.dummyInterface,
          sendgarp: settings.sendGarp,
        },
      );
    }
    this.#settings = settings;
    return settings;
  }

  /**
   * A node no LBNodeAgent selects holds nothing, also after a restart (when this process never
   * applied any settings): once per spell of not being selected, every address this agent may
   * have put anywhere is removed, for each dummy interface an LBNodeAgent names.
   */
  async #withdrawUnselected(agents: readonly LBNodeAgent[]): Promise<void> {
    if (this.#unselectedCleared || this.#settings !== undefined) return;
    const dummies = new Set(["kube-lb0"]);
    for (const agent of agents) {
      const dummy = agent.spec.local?.extlbint;
      if (dummy) dummies.add(dummy);
    }
    let failed = 0;
    for (const dummyInterface of [...dummies].sort()) {
      const state = await this.#options.netlink.readState();
      const result = await this.#apply(
        state,
        { localInterface: "default", dummyInterface, sendGarp: false },
        "withdrawAll",
      );
      failed += result.failed.length;
    }
    this.#wonLocal = new Set();
    this.#wonLocalInterfaces = new Map();
    this.#options.metrics.setAnnounced([]);
    this.#serviceEvents.withdrawnAll();
    this.#unselectedCleared = failed === 0;
  }

  /** Logs each LBNodeAgent left out (malformed, or its node selector is) once, until it changes. */
  #reportProblems(problems: readonly SelectorProblem[]): void {
    const text = problems.map(({ agent, problem }) => `LBNodeAgent ${agent}: ${problem}`);
    const key = text.join("\n");
    if (key === this.#lastSelectorProblems) return;
    this.#lastSelectorProblems = key;
    for (const line of text) log.warn("{problem}; it applies to no node", { problem: line });
  }

  /**
   * Decides on the network as last read. When that gives exactly what the last apply put in
   * place, nothing needs to change (drift is caught by the resync, which reads the network):
   * only events and metrics are brought up to date, and no `ip` runs.
   */
  #decisionUnchanged(settings: AnnounceSettings): boolean {
    const last = this.#lastApplied;
    if (last === undefined || !isDeepStrictEqual(last.settings, settings)) return false;
    const decision = this.#decide(last.state, settings, this.#decisionInputs());
    this.#live = liveLeases(decision.liveNodes);
    if (!isDeepStrictEqual(decision.plan.assignments, last.assignments)) return false;
    this.#serviceEvents.warnings(decision.plan.warnings);
    this.#afterApply(decision.plan.decisions, settings);
    this.#publishAnnouncing(new Set());
    return true;
  }

  /**
   * Publishes in the Lease the local addresses carried now (won, less `notAdded`: adds that
   * failed); `undefined`: none (everything withdrawn).
   */
  #publishAnnouncing(notAdded: ReadonlySet<string> | undefined): void {
    const entries = notAdded === undefined ? [] : [...this.#wonLocalInterfaces].flatMap((
      [address, interfaceName],
    ) => notAdded.has(address) ? [] : [{ interfaceName, address }]);
    this.#options.membership.setAnnouncing(entries);
  }

  /**
   * Decides (or, to withdraw everything, wants nothing) and applies the difference. Deleting an
   * interface's primary IPv4 address takes the secondaries of its subnet with it: after such a
   * delete the addresses are read and planned once more.
   */
  async #apply(
    firstState: NetworkState,
    settings: AnnounceSettings,
    mode: ApplyMode,
  ): Promise<ApplyResult> {
    const inputs = this.#decisionInputs();
    const first = await this.#applyRound(firstState, settings, inputs, mode);
    const second = first.result?.applied.some(mayRemoveOthers)
      ? await this.#applyRound(
        { ...firstState, links: await this.#options.netlink.readLinks() },
        settings,
        inputs,
        mode,
      )
      : undefined;
    const last = second ?? first;
    const results = [first.result, second?.result].filter((r) => r !== undefined);
    const applied = results.flatMap((r) => r.applied);
    const alreadyDone = results.flatMap((r) => r.alreadyDone);
    const failed = (second?.result ?? first.result)?.failed ?? [];

    this.#live = liveLeases(last.decision.liveNodes);
    if (mode === "decide") this.#afterApply(last.decision.plan.decisions, settings);
    this.#lastApplied = mode === "decide" && failed.length === 0
      ? { settings, state: last.state, assignments: last.decision.plan.assignments }
      : undefined;
    this.#verified =
      mode === "decide" && applied.length === 0 && alreadyDone.length === 0 && failed.length === 0
        ? { settings, state: firstState }
        : undefined;
    this.#recorded.keep(
      mode === "decide" ? this.#wonLocal : [],
      failed.flatMap(({ change }) => change.kind === "delete" ? [change.address] : []),
    );
    const notAdded = new Set(
      failed.flatMap(({ change }) => change.kind === "add" ? [change.address] : []),
    );
    this.#publishAnnouncing(mode === "decide" ? notAdded : undefined);
    return { applied, alreadyDone, failed };
  }

  /** One decision on `state`, planned and applied. */
  async #applyRound(
    state: NetworkState,
    settings: AnnounceSettings,
    inputs: DecisionInputs,
    mode: ApplyMode,
  ): Promise<AppliedRound> {
    const { netlink, metrics } = this.#options;
    const decision = this.#decide(state, settings, inputs);
    const { plan } = decision;
    if (plan.settingsProblem !== undefined) log.warn(plan.settingsProblem);
    if (mode === "decide") this.#serviceEvents.warnings(plan.warnings);
    const changes = planChanges(state, {
      assignments: mode === "decide" ? plan.assignments : [],
      isOwned: ownedAddressPredicate({
        dummyInterface: settings.dummyInterface,
        pools: inputs.pools,
        serviceAddresses: inputs.serviceAddresses,
        network: state,
      }),
    });
    if (changes.length === 0) return { state, decision, result: undefined };
    this.#recorded.adding(localAdditions(changes, settings.dummyInterface));
    const result = await netlink.applyChanges(changes);
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
    return { state, decision, result };
  }

  /** What a decision reads from the caches, and the addresses this agent may hold. */
  #decisionInputs(): DecisionInputs {
    const { slices, groups } = this.#caches;
    const services = this.#options.announcements.list();
    const groupList = groups.list();
    const needsEndpoints = services.some((s) => s.localTrafficPolicy);
    return {
      services,
      pools: poolRangesOf(groupList),
      netboxAggregations: netboxAggregationsOf(groupList),
      endpointNodes: needsEndpoints
        ? healthyEndpointNodes(slices.list())
        : new Map<string, ReadonlySet<string>>(),
      // What we won last time, or may have added before a restart, is ours even when its
      // Service is gone (a Netbox address, or one of a deleted pool, is in no pool range).
      serviceAddresses: new Set([
        ...services.flatMap((s) => s.addresses),
        ...this.#wonLocal,
        ...(this.#recorded.current(this.#wonLocal) ?? []),
      ]),
    };
  }

  #decide(state: NetworkState, settings: AnnounceSettings, inputs: DecisionInputs): Decision {
    const { nodeName, membership } = this.#options;
    const live = electionNodes(
      this.#caches.leases.list(),
      nodeName,
      Date.now(),
      // Our own liveness is what we know first-hand, not what the cache says yet.
      membership.fenced ? undefined : announceSubnets(state, settings),
    );
    const plan = decideAnnouncements({
      nodeName,
      settings,
      services: inputs.services,
      endpointNodes: inputs.endpointNodes,
      pools: inputs.pools,
      netboxAggregations: inputs.netboxAggregations,
      network: state,
      liveNodes: live,
      fenced: membership.fenced || this.#settling(),
    });
    return { plan, liveNodes: live };
  }

  /** Gratuitous announcements for newly won local addresses, events, metrics. */
  #afterApply(decisions: readonly AddressDecision[], settings: AnnounceSettings): void {
    const wonLocal = new Set<string>();
    const interfaces = new Map<string, string>();
    for (const decision of decisions) {
      if (!decision.announce || decision.kind !== "local") continue;
      wonLocal.add(decision.address);
      interfaces.set(decision.address, decision.interfaceName);
      if (!this.#wonLocal.has(decision.address) && settings.sendGarp) {
        this.#gratuitous.send(decision.interfaceName, decision.address);
      }
    }
    this.#gratuitous.keepOnly(wonLocal);
    const announcements = announcementsOf(decisions);
    this.#serviceEvents.announcing(announcements);
    this.#wonLocal = wonLocal;
    this.#wonLocalInterfaces = interfaces;
    this.#options.metrics.setAnnounced(
      announcements.map(({ service, address }) => ({ service, ip: address })),
    );
  }

  /**
   * The election is looked at again the moment the next node Lease would expire (crash
   * failover), and reconciled only if one did expire without renewal.
   */
  #armExpiryCheck(): void {
    clearTimeout(this.#expiryTimer);
    const ms = this.#nextLeaseExpiryMs();
    if (ms === undefined) return;
    this.#expiryTimer = setTimeout(() => {
      if (this.#aLiveLeaseExpired()) this.#changed("leases", true);
      else this.#armExpiryCheck();
    }, Math.max(10, ms + 5));
  }

  /** Milliseconds until the next live node Lease (other than ours) expires. */
  #nextLeaseExpiryMs(): number | undefined {
    const now = Date.now();
    let soonest: number | undefined;
    for (const lease of this.#caches.leases.list()) {
      const record = leaseRecord(lease);
      if (record === undefined || record.nodeName === this.#options.nodeName) continue;
      const expiresIn = record.renewTimeMs + record.leaseDurationMs - now;
      if (expiresIn > 0 && (soonest === undefined || expiresIn < soonest)) soonest = expiresIn;
    }
    return soonest;
  }

  /** True when a node Lease live at the last decision has expired since. */
  #aLiveLeaseExpired(): boolean {
    const { namespace, nodeName } = this.#options;
    const now = Date.now();
    for (const name of this.#live.leaseNames) {
      const lease = this.#caches.leases.get(name, namespace);
      const record = lease === undefined ? undefined : leaseRecord(lease);
      if (record === undefined || record.nodeName === nodeName) continue;
      if (record.renewTimeMs + record.leaseDurationMs <= now) return true;
    }
    return false;
  }
}

/**
 * The live node Leases an election counts: those of other nodes as cached, and this node's
 * own with `ownSubnets` (`undefined` when fenced: it counts itself out).
 */
function electionNodes(
  leases: readonly V1Lease[],
  nodeName: string,
  now: number,
  ownSubnets: readonly string[] | undefined,
): readonly NodeLeaseRecord[] {
  const others: NodeLeaseRecord[] = [];
  for (const lease of leases) {
    const record = leaseRecord(lease);
    if (record !== undefined && record.nodeName !== nodeName) others.push(record);
  }
  const live = [...liveNodes(others, now)];
  if (ownSubnets !== undefined) {
    live.push({ nodeName, renewTimeMs: now, leaseDurationMs: 1, subnets: ownSubnets });
  }
  return live;
}

function liveLeases(live: readonly NodeLeaseRecord[]): LiveLeases {
  return {
    leaseNames: new Set(live.map((record) => nodeLeaseName(record.nodeName))),
    count: live.length,
  };
}

/** The addresses `changes` add to interfaces other than the dummy one. */
function localAdditions(changes: readonly AddressChange[], dummyInterface: string): string[] {
  return changes.flatMap((change) =>
    change.kind === "add" && change.interfaceName !== dummyInterface ? [change.address] : []
  );
}

/** `k=v,k2=v2` (sorted), or `none`. */
function formatLabels(labels: Labels): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  return entries.length === 0 ? "none" : entries.map(([k, v]) => `${k}=${v}`).join(",");
}
