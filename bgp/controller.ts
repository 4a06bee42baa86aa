/**
 * The agent's BGP controller. It renders BIRD's whole config from the `BGPConfiguration` of the
 * agent's namespace, this Node's labels and the password Secrets, loads it only when the text
 * changed (addresses never change it: BIRD's `protocol direct` reads them from the dummy
 * interface), reads the sessions through `birdc` and publishes them as this node's
 * `BGPNodeStatus`, metrics, Events and a readiness reason. It never touches the network, so
 * whatever happens to BIRD, L2 announcement goes on.
 *
 * @module
 */

import type { KubernetesObject, V1Node, V1Secret } from "@kubernetes/client-node";
import { getLogger } from "@logtape/logtape";
import type { CustomObjectsLiteApi } from "../k8s/api.ts";
import type { Cache, RunningCache } from "../k8s/cache.ts";
import { apiStatusCode, errorMessage } from "../k8s/errors.ts";
import type { EventSink, EventSubject, EventType } from "../k8s/events.ts";
import type { NamedObjectCaches } from "../k8s/named_objects.ts";
import { EventReason } from "../k8s/types.ts";
import {
  BirdConfigError,
  birdNeighborProblems,
  birdProtocolName,
  renderBirdConfig,
} from "./bird_config.ts";
import { neighborsForNode, readBgpConfiguration } from "./configuration.ts";
import type { DaemonUnavailable, RoutingDaemon } from "./daemon.ts";
import {
  BGP_CONFIGURATION_PLURAL,
  BGP_GROUP,
  BGP_NODE_STATUS_PLURAL,
  BGP_VERSION,
  type BgpConfigurationReading,
  type BgpNeighbor,
  type BgpSettings,
  type BirdBgpState,
  type BirdConfigInput,
  type RenderedNeighbor,
} from "./model.ts";
import {
  type Condition,
  type ConditionFinding,
  conditionsOf,
  neighborStatuses,
  type NodeBgpStatus,
  prefixesOf,
  sameFindings,
  sessionsFinding,
  type UnconfiguredNeighbor,
  withTransitionTimes,
} from "./status.ts";

const log = getLogger(["purelb", "agent", "bgp"]);

/** The name of the BGPConfiguration used when a namespace holds several. */
export const DEFAULT_CONFIGURATION_NAME = "default";
/** The longest a BGPNodeStatus goes unwritten when nothing changes (PureLB's default). */
const DEFAULT_HEARTBEAT_SECONDS = 60;
/** The longest a graceful stop waits for BIRD to withdraw its routes. */
const DRAIN_DEADLINE_MS = 2_000;
/** Then, the time given to the routers to act on the withdrawals. */
const DRAIN_SETTLE_MS = 100;
/** The dummy interface when no LBNodeAgent applies yet. */
const DEFAULT_DUMMY_INTERFACE = "kube-lb0";

/** A BGPConfiguration as cached. */
export type BgpConfigurationObject = KubernetesObject & {
  readonly spec?: unknown;
  readonly status?: unknown;
};

/** What the controller reads. */
export interface BgpCaches {
  /** The BGPConfigurations of the agent's namespace; started and stopped by the controller. */
  readonly configs: RunningCache<BgpConfigurationObject>;
  /** This node's Node (its labels select neighbours); shared with the agent controller. */
  readonly node: Cache<V1Node>;
  /** The password Secrets named by the neighbours of this node, read by name. */
  readonly secrets: NamedObjectCaches<V1Secret>;
}

/** The API calls the controller makes. */
export type BgpApi = Pick<
  CustomObjectsLiteApi,
  | "patchNamespacedCustomObjectStatus"
  | "createClusterCustomObject"
  | "patchClusterCustomObjectStatus"
>;

/** One session for the metrics. */
export interface SessionMetric {
  readonly peer: string;
  readonly up: boolean;
  readonly announcedPrefixes: number;
}

/** What the controller reports to the metrics. */
export interface BgpMetricsSink {
  /** Every configured session, replacing the previous set. */
  setSessions(sessions: readonly SessionMetric[]): void;
  /** One `birdc configure`, by outcome (`applied`, `refused`, `unavailable`). */
  configured(outcome: "applied" | "refused" | "unavailable"): void;
  /** Whether BIRD answered the last time it was asked. */
  setDaemonUp(up: boolean): void;
}

/** What the agent controller knows of this node (see `AgentController.nodeFacts`). */
export interface BgpNodeFacts {
  readonly dummyInterface: string | undefined;
  readonly defaultIPv4: string | undefined;
}

/** Options of {@linkcode BgpController}. */
export interface BgpControllerOptions {
  readonly caches: BgpCaches;
  readonly api: BgpApi;
  readonly daemon: RoutingDaemon;
  readonly events: EventSink;
  readonly metrics: BgpMetricsSink;
  /** The agent's namespace (BGPConfigurations and Secrets). */
  readonly namespace: string;
  readonly nodeName: string;
  readonly nodeFacts: () => BgpNodeFacts;
  /** How often BIRD's sessions are read (and the config compared). */
  readonly pollMs: number;
}

/** The daemon as last seen. */
type DaemonHealth =
  | { readonly kind: "unknown" }
  | { readonly kind: "ready" }
  | { readonly kind: "refused"; readonly message: string }
  | { readonly kind: "cli_missing" | "unreachable"; readonly message: string };

/** The config this node should run, or why none can be made now. */
type NodePlan =
  | {
    readonly kind: "config";
    readonly input: BirdConfigInput;
    readonly configured: readonly { neighbor: RenderedNeighbor; protocol: string }[];
    readonly unconfigured: readonly UnconfiguredNeighbor[];
    readonly heartbeatSeconds: number;
    /** Problems of this node's config, for the `Configured` condition. */
    readonly problems: readonly string[];
  }
  | {
    readonly kind: "none";
    readonly reason: string;
    readonly problem: string;
    /**
     * A config without neighbours, so that a BIRD waiting for its first config starts (and a
     * deleted BGPConfiguration ends the sessions); `undefined` without a router ID.
     */
    readonly idle: BirdConfigInput | undefined;
  };

/**
 * Picks the BGPConfiguration in use: the only one, else the one named
 * {@linkcode DEFAULT_CONFIGURATION_NAME}, else the first by name.
 */
export function chooseConfiguration<T extends KubernetesObject>(
  objects: readonly T[],
): { readonly inUse: T | undefined; readonly ignored: readonly T[] } {
  const sorted = [...objects].sort((a, b) =>
    (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "")
  );
  const inUse = sorted.find((object) => object.metadata?.name === DEFAULT_CONFIGURATION_NAME) ??
    sorted[0];
  return { inUse, ignored: sorted.filter((object) => object !== inUse) };
}

/** The conditions a BGPConfiguration gets from its reading (the same on every node). */
export function configurationFindings(
  reading: BgpConfigurationReading,
  generation: number | undefined,
): readonly ConditionFinding[] {
  const observed = generation === undefined ? {} : { observedGeneration: generation };
  const accepted: ConditionFinding = reading.kind === "invalid"
    ? {
      type: "Accepted",
      status: "False",
      reason: "Invalid",
      message: `not used, the previous configuration stays: ${
        reading.problems.map((p) => `${p.field}: ${p.message}`).join("; ")
      }`,
      ...observed,
    }
    : reading.rejectedNeighbors.length > 0
    ? {
      type: "Accepted",
      status: "True",
      reason: "NeighborsRejected",
      message: `used without these neighbours: ${
        reading.rejectedNeighbors.map((p) => `${p.field}: ${p.message}`).join("; ")
      }`,
      ...observed,
    }
    : {
      type: "Accepted",
      status: "True",
      reason: "Valid",
      message: `${reading.settings.neighbors.length} neighbours`,
      ...observed,
    };
  const unsupported: ConditionFinding = reading.unsupported.length > 0
    ? {
      type: "UnsupportedFields",
      status: "True",
      reason: "FieldsIgnored",
      message: `these fields are not supported and have no effect: ${
        reading.unsupported.join(", ")
      }`,
      ...observed,
    }
    : {
      type: "UnsupportedFields",
      status: "False",
      reason: "AllSupported",
      message: "every field is supported",
      ...observed,
    };
  return [accepted, unsupported];
}

/**
 * Drives BIRD for one node. `start()` begins; every cache change and every `pollMs` runs one
 * (coalesced) sync.
 */
export class BgpController {
  readonly #options: BgpControllerOptions;
  #daemon: DaemonHealth = { kind: "unknown" };
  /** The text BIRD last accepted, and what it was rendered from. */
  #appliedText: string | undefined;
  #appliedInput: BirdConfigInput | undefined;
  /** The text BIRD last refused (not offered again until the config changes). */
  #refusedText: string | undefined;
  /** The BGPConfiguration of the last plan: the subject of the daemon's Events. */
  #inUse: BgpConfigurationObject | undefined;
  #lastStatus: { readonly status: NodeBgpStatus; readonly writtenAt: number } | undefined;
  #statusObjectExists = false;
  /** What was last written to each BGPConfiguration's conditions, by name. */
  readonly #writtenConditions = new Map<string, readonly ConditionFinding[]>();
  /** `name/reason` of an Event: the message last recorded for it (each distinct message once). */
  readonly #recorded = new Map<string, string>();
  #syncWanted = false;
  #syncing: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  /** `birdc configure` calls that BIRD accepted. */
  reloads = 0;

  constructor(options: BgpControllerOptions) {
    this.#options = options;
    options.caches.configs.onChange(() => this.kick());
    options.caches.node.onChange(() => this.kick());
    options.caches.secrets.onChange(() => this.kick());
  }

  /** Starts the BGPConfiguration cache and the poll. */
  start(): void {
    this.#options.caches.configs.start();
    this.#timer = setInterval(() => this.kick(), this.#options.pollMs);
    void this.#options.caches.configs.synced.then(() => this.kick());
  }

  /**
   * Graceful stop, before the addresses leave the dummy interface: loads the running config
   * without announced interfaces, so BIRD withdraws every route with an UPDATE while the
   * addresses still answer, waits until BIRD reports nothing exported (at most
   * {@linkcode DRAIN_DEADLINE_MS}) and then {@linkcode DRAIN_SETTLE_MS} for the routers to
   * reprogram. The sessions stay up; a starting agent loads the full config again.
   */
  async withdrawRoutes(): Promise<void> {
    await this.#halt();
    const input = this.#appliedInput;
    if (input === undefined || input.interfaces.length === 0) return;
    await this.#apply(renderBirdConfig({ ...input, interfaces: [] }), { ...input, interfaces: [] });
    if (this.#daemon.kind !== "ready") return;
    const deadline = Date.now() + DRAIN_DEADLINE_MS;
    while (Date.now() < deadline) {
      const outcome = await this.#options.daemon.protocols();
      const exported = outcome.kind === "read"
        ? outcome.protocols.reduce((n, protocol) => n + prefixesOf(protocol, "exported"), 0)
        : 0;
      if (exported === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await new Promise((resolve) => setTimeout(resolve, DRAIN_SETTLE_MS));
  }

  /** Stops polling and the caches; BIRD keeps its config (its sessions stay up). */
  async stop(): Promise<void> {
    await this.#halt();
    await this.#options.caches.configs.stop();
    await this.#options.caches.secrets.stop();
  }

  /** Asks for a sync soon (coalesced). */
  kick(): void {
    if (this.#stopped) return;
    this.#syncWanted = true;
    this.#syncing ??= this.#runSyncs();
  }

  /** Runs a sync now and resolves when no sync is running or wanted (tests, shutdown). */
  async syncNow(): Promise<void> {
    this.kick();
    while (this.#syncing !== undefined) await this.#syncing;
  }

  /** Why BGP is not working on this node, for /readyz; `undefined` when it is (or is off). */
  get problem(): string | undefined {
    const daemon = this.#daemon;
    if (daemon.kind === "unknown" || daemon.kind === "ready") return undefined;
    if (daemon.kind === "refused") {
      return `BIRD refused the config (${this.#options.daemon.configPath}): ${daemon.message}`;
    }
    return daemon.message;
  }

  /** No more syncs: the poll ends and the running sync finishes. */
  async #halt(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#syncing;
  }

  async #runSyncs(): Promise<void> {
    try {
      while (this.#syncWanted && !this.#stopped) {
        this.#syncWanted = false;
        try {
          await this.#sync();
        } catch (error) {
          log.warn("BGP sync failed: {error}", { error: errorMessage(error) });
        }
      }
    } finally {
      this.#syncing = undefined;
    }
  }

  async #sync(): Promise<void> {
    if (!this.#options.caches.configs.hasSynced) return;
    let plan = await this.#plan();
    // An invalid BGPConfiguration leaves the config BIRD runs alone; only a missing one, or a
    // first start with nothing written yet, loads the idle config.
    const input = plan.kind === "config" ? plan.input : plan.idle !== undefined &&
        (plan.reason === "NoConfiguration" || !(await this.#options.daemon.hasConfig()))
      ? plan.idle
      : undefined;
    if (input !== undefined) {
      try {
        await this.#apply(renderBirdConfig(input), input);
      } catch (error) {
        if (!(error instanceof BirdConfigError)) throw error;
        plan = { kind: "none", reason: "RenderFailed", problem: error.message, idle: undefined };
      }
    }
    const sessions = await this.#readSessions();
    await this.#publish(plan, sessions);
  }

  async #plan(): Promise<NodePlan> {
    const { caches, namespace, nodeName } = this.#options;
    const { inUse, ignored } = chooseConfiguration(caches.configs.list());
    this.#inUse = inUse;
    const facts = this.#options.nodeFacts();
    const idle = (routerId: string | undefined): BirdConfigInput | undefined =>
      routerId === undefined
        ? undefined
        // Without neighbours the AS number is never written; any valid one will do.
        : { routerId, asn: 64512, listenPort: undefined, interfaces: [], neighbors: [] };
    for (const object of ignored) {
      await this.#writeConditions(object, [{
        type: "Accepted",
        status: "False",
        reason: "NotInUse",
        message:
          `the agents use BGPConfiguration ${
            inUse?.metadata?.name ?? ""
          }: one per namespace is used (the one named ${DEFAULT_CONFIGURATION_NAME}, else the ` +
          "first by name)",
      }]);
    }
    if (inUse === undefined) {
      caches.secrets.want([]);
      return {
        kind: "none",
        reason: "NoConfiguration",
        problem: `no BGPConfiguration in namespace ${namespace}: BGP is idle`,
        idle: idle(facts.defaultIPv4),
      };
    }
    const reading = readBgpConfiguration(inUse);
    await this.#writeConditions(inUse, configurationFindings(reading, inUse.metadata?.generation));
    if (reading.kind === "invalid") {
      const message = reading.problems.map((p) => `${p.field}: ${p.message}`).join("; ");
      this.#recordOnce(inUse, "Warning", EventReason.BGPConfigurationInvalid, message);
      return {
        kind: "none",
        reason: "Invalid",
        problem: message,
        idle: idle(facts.defaultIPv4),
      };
    }
    if (reading.rejectedNeighbors.length > 0) {
      this.#recordOnce(
        inUse,
        "Warning",
        EventReason.BGPConfigurationInvalid,
        `neighbours left out: ${
          reading.rejectedNeighbors.map((p) => `${p.field}: ${p.message}`).join("; ")
        }`,
      );
    }
    const settings = reading.settings;
    const labels = caches.node.get(nodeName)?.metadata?.labels ?? {};
    const routerId = settings.routerId ?? facts.defaultIPv4;
    if (routerId === undefined) {
      return {
        kind: "none",
        reason: "NoRouterID",
        problem: "no router ID: set spec.global.routerID, or give this node an IPv4 address on " +
          "its default-route interface",
        idle: undefined,
      };
    }
    const { selected: neighbors, shadowed } = neighborsForNode(settings, labels);
    caches.secrets.want(
      new Set(neighbors.flatMap((n) => n.passwordRef === undefined ? [] : [n.passwordRef.name])),
    );
    const configured: { neighbor: RenderedNeighbor; protocol: string }[] = [];
    const unconfigured: UnconfiguredNeighbor[] = [];
    const leaveOut = (neighbor: BgpNeighbor, problem: string) =>
      unconfigured.push({
        address: neighbor.address,
        peerAsn: neighbor.peerAsn,
        localAsn: neighbor.localAsn ?? settings.asn,
        problem,
      });
    for (const neighbor of shadowed) {
      leaveOut(
        neighbor,
        "an earlier entry of spec.neighbors with this address also selects this node; that " +
          "one is used",
      );
    }
    for (const neighbor of neighbors) {
      const { nodeSelector: _selector, passwordRef, ...rest } = neighbor;
      const password = passwordRef === undefined
        ? undefined
        : this.#password(passwordRef.name, passwordRef.key);
      if (password?.kind === "missing") {
        leaveOut(neighbor, password.problem);
        this.#recordOnce(inUse, "Warning", EventReason.BGPSecretMissing, password.problem);
        continue;
      }
      const rendered: RenderedNeighbor = { ...rest, password: password?.password };
      const problems = birdNeighborProblems(rendered);
      if (problems.length > 0) {
        const problem = `BIRD cannot be configured with it: ${problems.join("; ")}`;
        leaveOut(neighbor, problem);
        this.#recordOnce(inUse, "Warning", EventReason.BGPConfigurationInvalid, problem);
        continue;
      }
      configured.push({ neighbor: rendered, protocol: birdProtocolName(neighbor.address) });
    }
    return {
      kind: "config",
      input: {
        routerId,
        asn: settings.asn,
        listenPort: settings.listenPort,
        interfaces: announcedInterfaces(settings, facts.dummyInterface),
        neighbors: configured.map((entry) => entry.neighbor),
      },
      configured,
      unconfigured,
      heartbeatSeconds: settings.heartbeatSeconds ?? DEFAULT_HEARTBEAT_SECONDS,
      problems: unconfigured.map((neighbor) => `${neighbor.address}: ${neighbor.problem}`),
    };
  }

  #password(
    name: string,
    key: string,
  ):
    | { readonly kind: "found"; readonly password: string }
    | { readonly kind: "missing"; readonly problem: string } {
    const { caches, namespace } = this.#options;
    if (!caches.secrets.hasSynced(name)) {
      return { kind: "missing", problem: `Secret ${namespace}/${name} not read yet` };
    }
    const secret = caches.secrets.get(name);
    if (secret === undefined) {
      return {
        kind: "missing",
        problem: `Secret ${namespace}/${name} not found (or the agent may not read it: the ` +
          "agent's Role names the Secrets it may read)",
      };
    }
    const encoded = secret.data?.[key];
    if (encoded === undefined) {
      return { kind: "missing", problem: `Secret ${namespace}/${name} has no key "${key}"` };
    }
    try {
      return { kind: "found", password: new TextDecoder().decode(decodeBase64(encoded)) };
    } catch {
      return {
        kind: "missing",
        problem: `Secret ${namespace}/${name} key "${key}" is not base64`,
      };
    }
  }

  async #apply(text: string, input: BirdConfigInput): Promise<void> {
    if (text === this.#appliedText || text === this.#refusedText) return;
    const { daemon, metrics } = this.#options;
    await daemon.writeConfig(text);
    const outcome = await daemon.configure();
    switch (outcome.kind) {
      case "reconfigured":
        this.#appliedText = text;
        this.#appliedInput = input;
        this.#refusedText = undefined;
        this.#daemon = { kind: "ready" };
        this.reloads++;
        metrics.configured("applied");
        log.info("BIRD loaded a new config ({path})", { path: daemon.configPath });
        return;
      case "refused": {
        this.#refusedText = text;
        this.#daemon = { kind: "refused", message: outcome.message };
        metrics.configured("refused");
        // A BIRD that restarts must find the config it last accepted, not the refused one.
        if (this.#appliedText !== undefined) await daemon.writeConfig(this.#appliedText);
        if (this.#inUse !== undefined) {
          this.#recordOnce(
            this.#inUse,
            "Warning",
            EventReason.BGPConfigurationRefused,
            outcome.message,
          );
        }
        log.error("BIRD refused the config: {message}", { message: outcome.message });
        return;
      }
      case "cli_missing":
      case "unreachable":
        // The file is in place: a BIRD that starts reads it; the next sync asks again.
        this.#daemonUnavailable(outcome);
        metrics.configured("unavailable");
        return;
    }
  }

  async #readSessions(): Promise<readonly BirdBgpState[] | undefined> {
    const outcome = await this.#options.daemon.protocols();
    this.#options.metrics.setDaemonUp(outcome.kind === "read");
    if (outcome.kind === "read") {
      if (this.#daemon.kind !== "refused") this.#daemon = { kind: "ready" };
      return outcome.protocols;
    }
    this.#daemonUnavailable(outcome);
    // Whatever BIRD runs after it comes back is what the file says; ask it to load that again.
    this.#appliedText = undefined;
    return undefined;
  }

  #daemonUnavailable(outcome: DaemonUnavailable): void {
    if (this.#daemon.kind !== outcome.kind) {
      log.warn("BIRD unavailable: {message}", { message: outcome.message });
      if (this.#inUse !== undefined) {
        this.#recordOnce(this.#inUse, "Warning", EventReason.BGPDaemonUnavailable, outcome.message);
      }
    }
    this.#daemon = outcome;
  }

  async #publish(plan: NodePlan, sessions: readonly BirdBgpState[] | undefined): Promise<void> {
    const { metrics, nodeName } = this.#options;
    const configured = plan.kind === "config" ? plan.configured : [];
    const asn = plan.kind === "config" ? plan.input.asn : 0;
    const neighbors = neighborStatuses(
      configured,
      asn,
      sessions,
      plan.kind === "config" ? plan.unconfigured : [],
    );
    metrics.setSessions(configured.map(({ neighbor, protocol }) => {
      const session = sessions?.find((s) => s.name === protocol);
      return {
        peer: neighbor.address,
        up: session?.bgpState === "Established",
        announcedPrefixes: prefixesOf(session, "exported"),
      };
    }));
    const findings: ConditionFinding[] = [
      this.#daemonFinding(),
      plan.kind === "none"
        ? { type: "Configured", status: "False", reason: plan.reason, message: plan.problem }
        : plan.problems.length > 0
        ? {
          type: "Configured",
          status: "False",
          reason: "NeighborsNotConfigured",
          message: plan.problems.join("; "),
        }
        : {
          type: "Configured",
          status: "True",
          reason: "Configured",
          message: `${plan.configured.length} neighbours configured`,
        },
      sessions === undefined
        ? {
          type: "SessionsEstablished",
          status: "Unknown",
          reason: "DaemonUnavailable",
          message: "BIRD cannot be asked",
        }
        : sessionsFinding(neighbors),
    ];
    const now = new Date();
    const previous = this.#lastStatus;
    const heartbeatSeconds = plan.kind === "config"
      ? plan.heartbeatSeconds
      : DEFAULT_HEARTBEAT_SECONDS;
    const status: NodeBgpStatus = {
      nodeName,
      routerID: plan.kind === "config" ? plan.input.routerId : "",
      asn,
      neighbors,
      neighborCount: neighbors.length,
      healthy: findings.every((finding) => finding.status === "True"),
      conditions: withTransitionTimes(previous?.status.conditions, findings, rfc3339(now)),
      heartbeatSeconds,
      lastUpdated: rfc3339(now),
    };
    const unchanged = previous !== undefined &&
      sameStatusContent(previous.status, status) &&
      now.getTime() - previous.writtenAt < heartbeatSeconds * 1000;
    if (unchanged) return;
    await this.#writeNodeStatus(status);
    this.#lastStatus = { status, writtenAt: now.getTime() };
  }

  #daemonFinding(): ConditionFinding {
    const daemon = this.#daemon;
    switch (daemon.kind) {
      case "ready":
        return {
          type: "DaemonReady",
          status: "True",
          reason: "Running",
          message: `BIRD runs the config in ${this.#options.daemon.configPath}`,
        };
      case "unknown":
        return {
          type: "DaemonReady",
          status: "Unknown",
          reason: "NotAskedYet",
          message: "BIRD not asked yet",
        };
      case "refused":
        return {
          type: "DaemonReady",
          status: "False",
          reason: "ConfigRefused",
          message: `BIRD refused the new config and runs the previous one: ${daemon.message}`,
        };
      case "cli_missing":
        return {
          type: "DaemonReady",
          status: "False",
          reason: "CliMissing",
          message: daemon.message,
        };
      case "unreachable":
        return {
          type: "DaemonReady",
          status: "False",
          reason: "DaemonUnreachable",
          message: daemon.message,
        };
    }
  }

  async #writeNodeStatus(status: NodeBgpStatus): Promise<void> {
    const { api, nodeName } = this.#options;
    const target = {
      group: BGP_GROUP,
      version: BGP_VERSION,
      plural: BGP_NODE_STATUS_PLURAL,
    };
    if (!this.#statusObjectExists) {
      try {
        await api.createClusterCustomObject({
          ...target,
          body: {
            apiVersion: `${BGP_GROUP}/${BGP_VERSION}`,
            kind: "BGPNodeStatus",
            metadata: { name: nodeName },
          },
        });
      } catch (error) {
        if (apiStatusCode(error) !== 409) throw error;
      }
      this.#statusObjectExists = true;
    }
    try {
      await api.patchClusterCustomObjectStatus({ ...target, name: nodeName, body: { status } });
    } catch (error) {
      // Deleted meanwhile: create it again next time.
      if (apiStatusCode(error) === 404) this.#statusObjectExists = false;
      throw error;
    }
  }

  async #writeConditions(
    object: BgpConfigurationObject,
    findings: readonly ConditionFinding[],
  ): Promise<void> {
    const name = object.metadata?.name;
    if (name === undefined) return;
    const current = conditionsOf(object);
    // Every agent computes the same; the first to write wins and the others find it written.
    if (
      sameFindings(current, findings) || sameFindings(this.#writtenConditions.get(name), findings)
    ) {
      return;
    }
    const conditions: readonly Condition[] = withTransitionTimes(
      current,
      findings,
      rfc3339(new Date()),
    );
    try {
      await this.#options.api.patchNamespacedCustomObjectStatus({
        group: BGP_GROUP,
        version: BGP_VERSION,
        namespace: this.#options.namespace,
        plural: BGP_CONFIGURATION_PLURAL,
        name,
        body: { status: { conditions } },
      });
      this.#writtenConditions.set(name, findings);
    } catch (error) {
      log.warn("cannot write the conditions of BGPConfiguration {name}: {error}", {
        name,
        error: errorMessage(error),
      });
    }
  }

  #recordOnce(
    object: BgpConfigurationObject,
    type: EventType,
    reason: EventReason,
    message: string,
  ): void {
    const key = `${object.metadata?.name ?? ""}/${reason}`;
    if (this.#recorded.get(key) === message) return;
    this.#recorded.set(key, message);
    const subject: EventSubject = {
      apiVersion: `${BGP_GROUP}/${BGP_VERSION}`,
      kind: "BGPConfiguration",
      metadata: object.metadata,
    };
    void this.#options.events.record(
      subject,
      type,
      reason,
      `node ${this.#options.nodeName}: ${message}`,
    );
  }
}

/** The interfaces whose addresses BIRD announces. */
function announcedInterfaces(
  settings: BgpSettings,
  dummyInterface: string | undefined,
): readonly string[] {
  if (!settings.netlinkImport.enabled) return [];
  if (settings.netlinkImport.interfaces.length > 0) return settings.netlinkImport.interfaces;
  return [dummyInterface ?? DEFAULT_DUMMY_INTERFACE];
}

/** Everything but the times. */
function sameStatusContent(a: NodeBgpStatus, b: NodeBgpStatus): boolean {
  const { lastUpdated: _a, conditions: conditionsA, ...restA } = a;
  const { lastUpdated: _b, conditions: conditionsB, ...restB } = b;
  return JSON.stringify(restA) === JSON.stringify(restB) && sameFindings(conditionsA, conditionsB);
}

function rfc3339(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text);
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}
