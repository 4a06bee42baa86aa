/**
 * A busy cluster without many machines (TESTBED "Busy clusters"), for the churn/soak and
 * resource benchmarks:
 *
 * - {@linkcode populate}: Services (ClusterIP and LoadBalancer without node ports), their
 *   EndpointSlices (`kubernetes.io/service-name`, a few endpoints each on simulated and real
 *   nodes), created directly in the API server with bounded concurrency; the raw create rate
 *   is the baseline printed next to the figures.
 * - {@linkcode LeaseSimulator}: node Leases `purelb-node-<name>` of N pretend nodes, renewed
 *   every 2 s (duration 6 s) from this one process. Half of them publish the LAN's subnets
 *   (they take part in the real node's elections), the other half other documentation subnets
 *   (they never do).
 * - {@linkcode ChurnDriver}: a steady, bounded rate of unrelated EndpointSlice rewrites
 *   (endpoints and ports of ClusterIP Services' slices, and a label no program reads on
 *   LoadBalancer slices) and of relevant changes (the ready condition of the real node's
 *   endpoint in a slice of an `externalTrafficPolicy: Local` LoadBalancer Service).
 * - {@linkcode Sampler}: `/proc/<pid>/status` (VmRSS, VmHWM), `/proc/<pid>/stat` (CPU) and the
 *   program's own `/metrics`, every few seconds.
 *
 * Every address is a documentation address; nothing is sent anywhere but the API server.
 *
 * @module
 */

import type { V1Service } from "@kubernetes/client-node";
import { ResilientInformer } from "../k8s/informer.ts";
import { ApiConnection } from "../k8s/transport.ts";
import type { ClusterAccess } from "../k8s/config.ts";
import { winner } from "../election/mod.ts";
import { addressesIn } from "../tests/agent.ts";
import { TEST_KUBECONFIG_ENV, type TestCluster, testCluster } from "../tests/cluster.ts";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { type Scene, withScene } from "../tests/agent_scene.ts";
import { allocatorServiceAccount, startAllocator } from "../tests/allocator.ts";
import { type ProgramProcess, removeProgramBinding } from "../tests/programs.ts";
import { waitFor } from "../tests/wait.ts";
import { inParallel, waitUntilReady } from "./support.ts";

/** A cluster size row: Services in total, of them LoadBalancers, EndpointSlices, nodes. */
export interface ClusterSize {
  readonly services: number;
  readonly loadBalancers: number;
  readonly slices: number;
  /** Nodes in total: the real agent's node plus simulated ones. */
  readonly nodes: number;
  /** `:headless` after the row: ClusterIP Services without a cluster IP (faster to create). */
  readonly headless?: boolean;
}

/**
 * `10k/1k/20k/50` (Services / LoadBalancers / slices / nodes; `k` = 1,000), optionally
 * followed by `:headless` (see {@linkcode Layout.headless}).
 */
export function parseSize(text: string): ClusterSize {
  const [dims = "", suffix] = text.split(":");
  if (suffix !== undefined && suffix !== "headless") throw new Error(`not a size: ${text}`);
  const parts = dims.split("/").map((part) => {
    const match = /^(\d+(?:\.\d+)?)(k?)$/i.exec(part.trim());
    if (match === null) throw new Error(`not a size: ${text} (want e.g. 10k/1k/20k/50)`);
    return Math.round(Number(match[1]) * (match[2] === "" ? 1 : 1000));
  });
  const [services, loadBalancers, slices, nodes] = parts;
  if (
    parts.length !== 4 || services === undefined || loadBalancers === undefined ||
    slices === undefined || nodes === undefined || loadBalancers > services || nodes < 1
  ) {
    throw new Error(`not a size: ${text} (want services/loadbalancers/slices/nodes)`);
  }
  return { services, loadBalancers, slices, nodes, headless: suffix === "headless" };
}

/** `10k/1k/20k/50`. */
export function formatSize(size: ClusterSize): string {
  const k = (n: number) => n >= 1000 && n % 1000 === 0 ? `${n / 1000}k` : String(n);
  if (size.headless) {
    return `${k(size.services)}/${k(size.loadBalancers)}/${k(size.slices)}/${size.nodes}:headless`;
  }
  return `${k(size.services)}/${k(size.loadBalancers)}/${k(size.slices)}/${size.nodes}`;
}

/** The real node the agent runs on (the first node of the scene's LAN). */
export const REAL_NODE = "node-a";
/** What the real node publishes (its LAN addresses, see tests/agent_scene.ts). */
export const LAN_SUBNETS = "192.0.2.0/24,2001:db8:1::/64";
/** What non-competing simulated nodes publish. */
export const OTHER_SUBNETS = "198.51.100.0/24,2001:db8:2::/64";
/** ETP Local LoadBalancer Services (their virtual addresses follow the real node's endpoint). */
export const LOCAL_POLICY_SERVICES = 20;

/** The ServiceGroups: `default` local on the LAN's IPv6 subnet, `virtual` for ETP Local. */
export const GROUPS = {
  default: {
    v6pools: [{ pool: "2001:db8:1::1:0/112", subnet: "2001:db8:1::/64" }],
  },
  virtual: {
    v6pools: [{
      pool: "2001:db8:100::1000-2001:db8:100::10ff",
      subnet: "2001:db8:100::/64",
      aggregation: "/128",
    }],
  },
} as const;

/** The LBNodeAgent of the scene. */
export const NODE_AGENT = { localint: "default", extlbint: "kube-lb0" } as const;

/** Simulated node `i` (0-based). */
export function simNodeName(i: number): string {
  return `sim-${String(i).padStart(4, "0")}`;
}

/** Simulated nodes that publish the LAN's subnets (and so compete with the real node). */
export function competes(i: number): boolean {
  return i % 2 === 0;
}

/** Where the objects of a populated cluster are. */
export interface Layout {
  readonly size: ClusterSize;
  readonly namespaces: readonly string[];
  readonly simNodes: readonly string[];
  /** Every node an endpoint may be on. */
  readonly allNodes: readonly string[];
  /** Slices per Service (`slices / services`, at least 1 when there are slices). */
  readonly slicesPerService: number;
  /**
   * ClusterIP Services are headless (`clusterIP: None`): the API server allocates no cluster
   * IP, which makes creating tens of thousands several times faster; neither program reads
   * anything of a ClusterIP Service but its name.
   */
  readonly headless: boolean;
}

/** The layout of `size` with namespaces named `<prefix>-<i>`. */
export function layout(size: ClusterSize, prefix: string, headless = false): Layout {
  const namespaceCount = Math.max(1, Math.ceil(size.services / 5000));
  const simNodes = Array.from({ length: size.nodes - 1 }, (_, i) => simNodeName(i));
  return {
    size,
    namespaces: Array.from({ length: namespaceCount }, (_, i) => `${prefix}-${i}`),
    simNodes,
    allNodes: [REAL_NODE, ...simNodes],
    slicesPerService: size.services === 0 ? 0 : Math.ceil(size.slices / size.services),
    headless,
  };
}

/** The kinds of Service in a layout, by index. */
export type ServiceKind = "local-policy" | "load-balancer" | "cluster-ip";

/** Service `i`: the first LoadBalancers are ETP Local (group virtual), the rest Cluster. */
export function serviceKind(l: Layout, i: number): ServiceKind {
  if (i < Math.min(LOCAL_POLICY_SERVICES, l.size.loadBalancers)) return "local-policy";
  return i < l.size.loadBalancers ? "load-balancer" : "cluster-ip";
}

/** Namespace and name of Service `i`. */
export function serviceRef(l: Layout, i: number): { namespace: string; name: string } {
  const kind = serviceKind(l, i);
  const prefix = kind === "cluster-ip" ? "app" : kind === "local-policy" ? "local" : "lb";
  return {
    namespace: l.namespaces[i % l.namespaces.length] ?? "",
    name: `${prefix}-${i}`,
  };
}

function serviceBody(l: Layout, i: number): unknown {
  const { name } = serviceRef(l, i);
  const kind = serviceKind(l, i);
  const labels = { app: name, tier: ["web", "api", "db", "cache"][i % 4] ?? "web" };
  if (kind === "cluster-ip") {
    return {
      metadata: { name, labels },
      spec: {
        type: "ClusterIP",
        ...(l.headless ? { clusterIP: "None" } : {}),
        selector: { app: name },
        ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
      },
    };
  }
  return {
    metadata: {
      name,
      labels,
      annotations: kind === "local-policy" ? { "purelb.io/service-group": "virtual" } : {},
    },
    spec: {
      type: "LoadBalancer",
      allocateLoadBalancerNodePorts: false,
      ipFamilies: ["IPv6"],
      ipFamilyPolicy: "SingleStack",
      selector: { app: name },
      ports: [{ name: "http", port: 80, targetPort: 8080, protocol: "TCP" }],
      ...(kind === "local-policy" ? { externalTrafficPolicy: "Local" } : {}),
    },
  };
}

/** Number of slices Service `i` has (the total is exactly `size.slices`). */
function slicesOf(l: Layout, i: number): number {
  const base = Math.floor(l.size.slices / l.size.services);
  return base + (i < l.size.slices % l.size.services ? 1 : 0);
}

const ENDPOINTS_PER_SLICE = 3;

/** A documentation address for endpoint `k` of slice `j` of Service `i`, at generation `gen`. */
function endpointAddress(i: number, j: number, k: number, gen: number): string {
  const n = i * 7 + j * 3 + k + gen;
  return `${n % 2 === 0 ? "198.51.100" : "203.0.113"}.${1 + (n % 254)}`;
}

/**
 * The endpoints of slice `j` of Service `i`. An ETP Local Service's first slice has its first
 * endpoint on the real node, ready as `realReady` says.
 */
export function sliceEndpoints(
  l: Layout,
  i: number,
  j: number,
  gen = 0,
  realReady = true,
): unknown[] {
  return Array.from({ length: ENDPOINTS_PER_SLICE }, (_, k) => {
    const onReal = serviceKind(l, i) === "local-policy" && j === 0 && k === 0;
    const node = onReal
      ? REAL_NODE
      : l.allNodes[(i * 31 + j * 17 + k * 7 + gen) % l.allNodes.length] ?? REAL_NODE;
    const ready = onReal ? realReady : true;
    return {
      addresses: [endpointAddress(i, j, k, gen)],
      nodeName: node,
      zone: `zone-${(i + k) % 3}`,
      targetRef: { kind: "Pod", name: `${serviceRef(l, i).name}-${j}-${k}-${gen}` },
      conditions: { ready, serving: ready, terminating: false },
    };
  });
}

function sliceName(l: Layout, i: number, j: number): string {
  return `${serviceRef(l, i).name}-${j}`;
}

function sliceBody(l: Layout, i: number, j: number): unknown {
  return {
    apiVersion: "discovery.k8s.io/v1",
    kind: "EndpointSlice",
    metadata: {
      name: sliceName(l, i, j),
      labels: {
        "kubernetes.io/service-name": serviceRef(l, i).name,
        "endpointslice.kubernetes.io/managed-by": "bench.purelb.io",
      },
    },
    addressType: "IPv4",
    ports: [{ name: "http", port: 8080, protocol: "TCP" }],
    endpoints: sliceEndpoints(l, i, j),
  };
}

/** How fast objects went in. */
export interface CreateRate {
  readonly kind: string;
  readonly count: number;
  readonly seconds: number;
  readonly perSecond: number;
}

/** Creates `count` objects with `create(index)`, at most `concurrency` at once. */
async function createAll(
  kind: string,
  count: number,
  concurrency: number,
  create: (index: number) => Promise<void>,
  signal: AbortSignal | undefined,
  log: (line: string) => void,
): Promise<CreateRate> {
  const started = performance.now();
  let done = 0;
  let lastLog = started;
  await inParallel(Array.from({ length: count }, (_, i) => i), concurrency, async (i) => {
    signal?.throwIfAborted();
    await create(i);
    done++;
    if (performance.now() - lastLog > 15_000) {
      lastLog = performance.now();
      log(`  ${kind}: ${done}/${count}`);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  return { kind, count, seconds, perSecond: count / Math.max(seconds, 1e-9) };
}

/** Creates an object, tolerating one that exists already (a retried populate). */
async function post(connection: ApiConnection, path: string, body: unknown): Promise<void> {
  try {
    await connection.request("POST", path, { body });
  } catch (error) {
    if (!(error instanceof Error && /HTTP 409/.test(error.message))) throw error;
  }
}

/** Options of {@linkcode populate}. */
export interface PopulateOptions {
  readonly concurrency?: number;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
}

/** Creates the namespaces, Services and EndpointSlices of `l`; returns the create rates. */
export async function populate(
  access: ClusterAccess,
  l: Layout,
  options: PopulateOptions = {},
): Promise<readonly CreateRate[]> {
  const concurrency = options.concurrency ?? 32;
  const log = options.log ?? (() => {});
  const connection = new ApiConnection(access);
  try {
    for (const namespace of l.namespaces) {
      await post(connection, "/api/v1/namespaces", { metadata: { name: namespace } });
    }
    const services = await createAll(
      "services",
      l.size.services,
      concurrency,
      async (i) => {
        const { namespace } = serviceRef(l, i);
        await post(connection, `/api/v1/namespaces/${namespace}/services`, serviceBody(l, i));
      },
      options.signal,
      log,
    );
    const sliceIndexes: [number, number][] = [];
    for (let i = 0; i < l.size.services; i++) {
      for (let j = 0; j < slicesOf(l, i); j++) sliceIndexes.push([i, j]);
    }
    const slices = await createAll(
      "endpointslices",
      sliceIndexes.length,
      concurrency,
      async (n) => {
        const [i, j] = sliceIndexes[n] ?? [0, 0];
        const { namespace } = serviceRef(l, i);
        await post(
          connection,
          `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
          sliceBody(l, i, j),
        );
      },
      options.signal,
      log,
    );
    return [services, slices];
  } finally {
    connection.close();
  }
}

/** Deletes what {@linkcode populate} made (needed on a shared cluster: no namespace controller). */
export async function depopulate(access: ClusterAccess, l: Layout): Promise<void> {
  const connection = new ApiConnection(access);
  try {
    for (const namespace of l.namespaces) {
      await connection.request(
        "DELETE",
        `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`,
      ).catch(() => {});
    }
    const indexes = Array.from({ length: l.size.services }, (_, i) => i);
    await inParallel(indexes, 32, async (i) => {
      const { namespace, name } = serviceRef(l, i);
      await connection.request("DELETE", `/api/v1/namespaces/${namespace}/services/${name}`)
        .catch(() => {});
    });
    for (const namespace of l.namespaces) {
      await connection.request("DELETE", `/api/v1/namespaces/${namespace}`).catch(() => {});
    }
  } finally {
    connection.close();
  }
}

/** Now as a Kubernetes MicroTime (`2026-01-01T00:00:00.123000Z`). */
export function microTimeNow(): string {
  return new Date().toISOString().replace(/Z$/, "000Z");
}

/**
 * Renews the node Leases of the simulated nodes every `renewMs` from this process, spread
 * evenly over the period; counts renewals, failures and late rounds.
 */
export class LeaseSimulator {
  readonly #connection: ApiConnection;
  readonly #namespace: string;
  readonly #nodes: readonly string[];
  readonly #renewMs: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #tick = 0;
  #busy = new Set<number>();
  renewals = 0;
  failures = 0;
  /** Slots skipped because the previous renewal of the same slot had not finished. */
  late = 0;
  lastError = "";

  constructor(
    access: ClusterAccess,
    namespace: string,
    nodes: readonly string[],
    renewMs = 2_000,
  ) {
    this.#connection = new ApiConnection(access);
    this.#namespace = namespace;
    this.#nodes = nodes;
    this.#renewMs = renewMs;
  }

  #path(node: string): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.#namespace}/leases/purelb-node-${node}`;
  }

  /** Creates every Lease (bounded concurrency) and starts renewing; returns the create rate. */
  async start(signal?: AbortSignal): Promise<CreateRate> {
    const rate = await createAll(
      "leases",
      this.#nodes.length,
      32,
      async (i) => {
        const node = this.#nodes[i] ?? "";
        const now = microTimeNow();
        await post(
          this.#connection,
          `/apis/coordination.k8s.io/v1/namespaces/${this.#namespace}/leases`,
          {
            metadata: {
              name: `purelb-node-${node}`,
              annotations: { "purelb.io/subnets": competes(i) ? LAN_SUBNETS : OTHER_SUBNETS },
            },
            spec: {
              holderIdentity: node,
              leaseDurationSeconds: Math.ceil((this.#renewMs * 3) / 1000),
              acquireTime: now,
              renewTime: now,
            },
          },
        );
      },
      signal,
      () => {},
    );
    const slots = 10;
    this.#timer = setInterval(() => {
      const slot = this.#tick++ % slots;
      if (this.#busy.has(slot)) {
        this.late++;
        return;
      }
      this.#busy.add(slot);
      const due = this.#nodes.filter((_, i) => i % slots === slot);
      inParallel(due, 8, async (node) => {
        try {
          await this.#connection.request("PATCH", this.#path(node), {
            body: { spec: { renewTime: microTimeNow() } },
            contentType: "application/merge-patch+json",
          });
          this.renewals++;
        } catch (error) {
          this.failures++;
          this.lastError = String(error);
        }
      }).finally(() => this.#busy.delete(slot));
    }, this.#renewMs / slots);
    return rate;
  }

  /** Stops renewing (the Leases stay; they expire). */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Deletes the Leases and closes the connection. */
  async remove(): Promise<void> {
    this.stop();
    await inParallel([...this.#nodes], 16, async (node) => {
      await this.#connection.request("DELETE", this.#path(node)).catch(() => {});
    });
    this.#connection.close();
  }
}

/** What a churn driver did. */
export interface ChurnCounts {
  unrelated: number;
  relevant: number;
  failures: number;
  /** Operations not sent because too many were still in flight. */
  skipped: number;
  lastError: string;
}

/** Options of {@linkcode ChurnDriver}. */
export interface ChurnOptions {
  /** Unrelated EndpointSlice updates per second. */
  readonly unrelatedRate: number;
  /** Relevant changes per second. */
  readonly relevantRate: number;
  /** Most requests in flight at once (past it, operations are skipped and counted). */
  readonly maxInFlight?: number;
}

/**
 * Rewrites EndpointSlices at a steady rate, every 100 ms a tenth of the per-second rates:
 *
 * - unrelated (90 %): endpoints and port of a slice of a ClusterIP Service; (10 %): a label no
 *   program reads on a slice of an ETP Local LoadBalancer Service (the informers drop it);
 * - relevant: the ready (and serving) condition of the real node's endpoint in the first slice
 *   of an ETP Local LoadBalancer Service (the agent adds or removes that Service's virtual
 *   address); every second one also toggles the unread label in the same write.
 */
export class ChurnDriver {
  readonly #connection: ApiConnection;
  readonly #layout: Layout;
  readonly #options: ChurnOptions;
  readonly counts: ChurnCounts = {
    unrelated: 0,
    relevant: 0,
    failures: 0,
    skipped: 0,
    lastError: "",
  };
  #timer: ReturnType<typeof setInterval> | undefined;
  #inFlight = 0;
  #due = { unrelated: 0, relevant: 0 };
  #gen = 0;
  #relevantSeq = 0;
  #ready = new Map<number, boolean>();
  #label = new Map<string, boolean>();
  readonly #clusterIp: readonly number[];
  readonly #localPolicy: readonly number[];
  #started = 0;

  constructor(access: ClusterAccess, l: Layout, options: ChurnOptions) {
    this.#connection = new ApiConnection(access);
    this.#layout = l;
    this.#options = options;
    const all = Array.from({ length: l.size.services }, (_, i) => i);
    this.#clusterIp = all.filter((i) => serviceKind(l, i) === "cluster-ip" && slicesOf(l, i) > 0);
    this.#localPolicy = all.filter((i) =>
      serviceKind(l, i) === "local-policy" && slicesOf(l, i) > 0
    );
  }

  /** Seconds since {@linkcode start}. */
  elapsedSeconds(): number {
    return this.#started === 0 ? 0 : (performance.now() - this.#started) / 1000;
  }

  start(): void {
    this.#started = performance.now();
    this.#timer = setInterval(() => {
      this.#due.unrelated += this.#options.unrelatedRate / 10;
      this.#due.relevant += this.#options.relevantRate / 10;
      while (this.#due.unrelated >= 1) {
        this.#due.unrelated--;
        this.#send("unrelated", () => this.#unrelated());
      }
      while (this.#due.relevant >= 1) {
        this.#due.relevant--;
        this.#send("relevant", () => this.#relevant());
      }
    }, 100);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops and waits for the requests in flight; closes the connection. */
  async close(): Promise<void> {
    this.stop();
    while (this.#inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    this.#connection.close();
  }

  #send(kind: "unrelated" | "relevant", op: () => Promise<boolean>): void {
    if (this.#inFlight >= (this.#options.maxInFlight ?? 64)) {
      this.counts.skipped++;
      return;
    }
    this.#inFlight++;
    op().then((sent) => {
      if (sent) this.counts[kind]++;
    }, (error) => {
      this.counts.failures++;
      this.counts.lastError = String(error);
    }).finally(() => this.#inFlight--);
  }

  async #patchSlice(i: number, j: number, body: unknown): Promise<void> {
    const { namespace } = serviceRef(this.#layout, i);
    await this.#connection.request(
      "PATCH",
      `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices/${
        sliceName(this.#layout, i, j)
      }`,
      { body, contentType: "application/merge-patch+json" },
    );
  }

  #toggleLabel(i: number, j: number): Record<string, string | null> {
    const key = `${i}/${j}`;
    const on = !(this.#label.get(key) ?? false);
    this.#label.set(key, on);
    return { "bench.purelb.io/touched": on ? "yes" : null };
  }

  async #unrelated(): Promise<boolean> {
    const gen = ++this.#gen;
    if (gen % 10 === 0 && this.#localPolicy.length > 0) {
      const i = this.#localPolicy[gen % this.#localPolicy.length] ?? 0;
      const j = gen % slicesOf(this.#layout, i);
      await this.#patchSlice(i, j, { metadata: { labels: this.#toggleLabel(i, j) } });
      return true;
    }
    if (this.#clusterIp.length === 0) return false;
    const i = this.#clusterIp[(gen * 7919) % this.#clusterIp.length] ?? 0;
    const j = gen % slicesOf(this.#layout, i);
    await this.#patchSlice(i, j, {
      ports: [{ name: "http", port: 8000 + (gen % 1000), protocol: "TCP" }],
      endpoints: sliceEndpoints(this.#layout, i, j, gen),
    });
    return true;
  }

  async #relevant(): Promise<boolean> {
    if (this.#localPolicy.length === 0) return false;
    const gen = ++this.#gen;
    // Round robin by send order, so that writes in flight together touch different Services.
    const i = this.#localPolicy[this.#relevantSeq++ % this.#localPolicy.length] ?? 0;
    const ready = !(this.#ready.get(i) ?? true);
    this.#ready.set(i, ready);
    await this.#patchSlice(i, 0, {
      ...(gen % 2 === 0 ? { metadata: { labels: this.#toggleLabel(i, 0) } } : {}),
      endpoints: sliceEndpoints(this.#layout, i, 0, 0, ready),
    });
    return true;
  }
}

/** One sample of a process. */
export interface ProcessSample {
  /** Seconds since the sampler started. */
  readonly t: number;
  readonly alive: boolean;
  readonly rssMb: number;
  readonly hwmMb: number;
  /** utime + stime of the process itself, seconds. */
  readonly cpuSeconds: number;
  /** cutime + cstime: its waited-for children (the agent's `ip` processes), seconds. */
  readonly childCpuSeconds: number;
  /**
   * The program's metrics (sum over label sets matching each wanted series); when the scrape
   * failed (`scraped` false: a program too busy to answer within 15 s), the previous sample's.
   */
  readonly metrics: Readonly<Record<string, number>>;
  readonly scraped: boolean;
}

/** One line of the Prometheus text format, parsed. */
export interface MetricLine {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text exposition format (comments skipped). */
export function parseMetrics(text: string): MetricLine[] {
  const lines: MetricLine[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] ?? ""] = pair[2] ?? "";
    }
    lines.push({ name: match[1] ?? "", labels, value: Number(match[3]) });
  }
  return lines;
}

/** The sum of `name` over label sets that include every pair of `where`. */
export function sumMetric(
  lines: readonly MetricLine[],
  name: string,
  where: Readonly<Record<string, string>> = {},
): number {
  let sum = 0;
  for (const line of lines) {
    if (line.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => line.labels[k] === v)) sum += line.value;
  }
  return sum;
}

/** A series to keep: key, metric name, label filter. */
export type Wanted = readonly [key: string, name: string, where?: Record<string, string>];

const CLOCK_TICKS = 100;

/** Reads VmRSS, VmHWM and CPU of `pid`; `undefined` once the process is gone. */
export async function readProc(
  pid: number,
): Promise<
  { rssMb: number; hwmMb: number; cpuSeconds: number; childCpuSeconds: number } | undefined
> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): utime is field 14, stime 15, cutime 16, cstime 17.
    const field = (n: number) => Number(fields[n - 3] ?? 0);
    return {
      rssMb: Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024,
      hwmMb: Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024,
      cpuSeconds: (field(14) + field(15)) / CLOCK_TICKS,
      childCpuSeconds: (field(16) + field(17)) / CLOCK_TICKS,
    };
  } catch {
    return undefined;
  }
}

/** Scrapes `http://127.0.0.1:<port>/metrics`. */
export async function scrape(port: number): Promise<MetricLine[]> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`, {
    signal: AbortSignal.timeout(15_000),
  });
  return parseMetrics(await response.text());
}

/** A program to sample: its pid, its operations port and the series wanted. */
export interface SampledProgram {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly wanted: readonly Wanted[];
}

/** Samples each program every `everyMs`, keeping every sample. */
export class Sampler {
  readonly samples = new Map<string, ProcessSample[]>();
  readonly #programs: SampledProgram[] = [];
  readonly #started = performance.now();
  #timer: ReturnType<typeof setInterval> | undefined;
  #running: Promise<void> = Promise.resolve();

  constructor(readonly everyMs: number) {}

  /** Adds (or replaces, for a restarted program) a program. */
  add(program: SampledProgram): void {
    const at = this.#programs.findIndex((p) => p.name === program.name);
    if (at >= 0) this.#programs.splice(at, 1, program);
    else this.#programs.push(program);
    if (!this.samples.has(program.name)) this.samples.set(program.name, []);
  }

  seconds(): number {
    return (performance.now() - this.#started) / 1000;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#running = this.sampleNow().then(() => {});
    }, this.everyMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#running;
  }

  /** Takes one sample of every program now and returns them by name. */
  async sampleNow(): Promise<Map<string, ProcessSample>> {
    const taken = new Map<string, ProcessSample>();
    for (const program of this.#programs) {
      const t = this.seconds();
      const proc = await readProc(program.pid);
      let metrics: Record<string, number> = {};
      let scraped = true;
      try {
        const lines = await scrape(program.port);
        for (const [key, name, where] of program.wanted) {
          metrics[key] = sumMetric(lines, name, where ?? {});
        }
      } catch {
        // Gone or too busy: the /proc figures still count; the counters stay where they were.
        scraped = false;
        metrics = { ...this.last(program.name)?.metrics };
      }
      const sample: ProcessSample = {
        t,
        alive: proc !== undefined,
        rssMb: proc?.rssMb ?? 0,
        hwmMb: proc?.hwmMb ?? 0,
        cpuSeconds: proc?.cpuSeconds ?? 0,
        childCpuSeconds: proc?.childCpuSeconds ?? 0,
        metrics,
        scraped,
      };
      this.samples.get(program.name)?.push(sample);
      taken.set(program.name, sample);
    }
    return taken;
  }

  /** The last sample of `name` at or before `t` seconds. */
  at(name: string, t: number): ProcessSample | undefined {
    const list = this.samples.get(name) ?? [];
    let found: ProcessSample | undefined;
    for (const sample of list) if (sample.t <= t + 0.001) found = sample;
    return found;
  }

  /** The latest sample of `name`. */
  last(name: string): ProcessSample | undefined {
    const list = this.samples.get(name) ?? [];
    return list[list.length - 1];
  }
}

/** The series both programs expose. */
const COMMON_WANTED: readonly Wanted[] = [
  ["apiRequests", "purelb_api_requests_total"],
  ["watches", "purelb_api_requests_total", { verb: "WATCH" }],
  ["residentBytes", "process_resident_memory_bytes"],
  ["heapUsedBytes", "process_heap_bytes", { kind: "used" }],
  ["heapTotalBytes", "process_heap_bytes", { kind: "total" }],
  ["externalBytes", "process_external_memory_bytes"],
  ["cpuSeconds", "process_cpu_seconds_total"],
];

/** What to scrape from the agent. */
export const AGENT_WANTED: readonly Wanted[] = [
  ...COMMON_WANTED,
  ["reconciles", "purelb_lbnodeagent_reconciles_total"],
  ["ipProcesses", "purelb_lbnodeagent_ip_processes_total"],
  ["eventsRelevant", "purelb_lbnodeagent_watch_events_total", { relevant: "true" }],
  ["eventsIrrelevant", "purelb_lbnodeagent_watch_events_total", { relevant: "false" }],
  ["sliceEventsRelevant", "purelb_lbnodeagent_watch_events_total", {
    kind: "endpointslice",
    relevant: "true",
  }],
  ["addressChanges", "purelb_lbnodeagent_address_changes_total"],
  ["announced", "purelb_lbnodeagent_announced"],
  ["reconcileErrors", "purelb_lbnodeagent_reconcile_errors_total"],
  ["reconcileSeconds", "purelb_lbnodeagent_reconcile_seconds_sum"],
  ["leaseErrors", "purelb_lbnodeagent_lease_errors_total"],
  ["fenced", "purelb_lbnodeagent_election_fenced"],
  ["liveNodes", "purelb_lbnodeagent_election_live_nodes"],
];

/** What to scrape from the allocator. */
export const ALLOCATOR_WANTED: readonly Wanted[] = [
  ...COMMON_WANTED,
  ["reconciles", "purelb_allocator_reconciles_total"],
  ["serviceReconciles", "purelb_allocator_reconciles_total", { kind: "service" }],
  ["eventsRelevant", "purelb_allocator_watch_events_total", { relevant: "true" }],
  ["eventsIrrelevant", "purelb_allocator_watch_events_total", { relevant: "false" }],
  ["assignments", "purelb_allocator_assignments_total"],
];

/**
 * The addresses the real node should carry once settled: each `default` address it wins
 * among itself and the competing simulated nodes, and each ETP Local Service's virtual
 * address (right after {@linkcode populate}, every such endpoint is ready).
 */
export function expectedOnRealNode(
  l: Layout,
  addressed: ReadonlyMap<string, readonly string[]>,
): number {
  const candidates = [REAL_NODE, ...l.simNodes.filter((_, i) => competes(i))];
  let count = 0;
  for (let i = 0; i < l.size.loadBalancers; i++) {
    const { namespace, name } = serviceRef(l, i);
    const addresses = addressed.get(`${namespace}/${name}`) ?? [];
    if (serviceKind(l, i) === "local-policy") {
      count += addresses.length;
      continue;
    }
    for (const address of addresses) if (winner(candidates, address) === REAL_NODE) count++;
  }
  return count;
}

/** Runs `fn` on SIGINT / SIGTERM before the process exits (sync only). */
export function onInterrupt(fn: () => void): () => void {
  const handler = () => {
    fn();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", handler);
  Deno.addSignalListener("SIGTERM", handler);
  globalThis.addEventListener("unload", fn);
  return () => {
    Deno.removeSignalListener("SIGINT", handler);
    Deno.removeSignalListener("SIGTERM", handler);
    globalThis.removeEventListener("unload", fn);
  };
}

/** SIGKILLs `pid` if it still runs (for exit paths where awaiting is impossible). */
export function killSync(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

/**
 * The RSS of an idle `deno` process 3 s after start, in MB: bare, or with the dependencies
 * both programs load (`k8s/client.ts`, i.e. client-node's generated API, prom-client, logtape,
 * yaml, ipaddr.js).
 */
export async function idleDenoRssMb(withDependencies: boolean): Promise<number> {
  const code = withDependencies
    ? `await Promise.all(${
      JSON.stringify(["./k8s/client.ts", "prom-client", "@logtape/logtape", "yaml", "ipaddr.js"])
    }.map((m) => import(m)));`
    : "";
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", `${code} console.log("ready"); await new Promise((r) => setTimeout(r, 60000));`],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const forget = onInterrupt(() => killSync(child.pid));
  try {
    const reader = child.stdout.getReader();
    await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const proc = await readProc(child.pid);
    reader.releaseLock();
    return proc?.rssMb ?? NaN;
  } finally {
    killSync(child.pid);
    await child.status;
    await child.stdout.cancel().catch(() => {});
    forget();
  }
}

/** Watches every Service's ingress addresses (cluster wide, only name and addresses kept). */
export class IngressWatch {
  readonly #connection: ApiConnection;
  readonly #informer: ResilientInformer<V1Service>;

  constructor(access: ClusterAccess) {
    this.#connection = new ApiConnection(access);
    this.#informer = new ResilientInformer<V1Service>(this.#connection, {
      name: "bench-services",
      path: "/api/v1/services",
      transform: (svc) => ({
        metadata: { name: svc.metadata?.name ?? "", namespace: svc.metadata?.namespace ?? "" },
        status: {
          loadBalancer: {
            ingress: (svc.status?.loadBalancer?.ingress ?? []).map((i) => ({ ip: i.ip ?? "" })),
          },
        },
      }),
    });
  }

  async start(): Promise<void> {
    this.#informer.start();
    await this.#informer.synced;
  }

  /** `namespace/name` to ingress addresses, for Services with at least one. */
  addressed(): Map<string, readonly string[]> {
    const found = new Map<string, readonly string[]>();
    for (const svc of this.#informer.list()) {
      const ips = (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? "");
      if (ips.length > 0) {
        found.set(`${svc.metadata?.namespace ?? ""}/${svc.metadata?.name ?? ""}`, ips);
      }
    }
    return found;
  }

  async stop(): Promise<void> {
    await this.#informer.stop();
    this.#connection.close();
  }
}

/**
 * Runs `fn` with a cluster: the one of `PURELB_TEST_KUBECONFIG` when set (`shared` true: the
 * caller deletes what it made), else a fresh private control plane stopped afterwards.
 */
export async function withCluster<T>(
  fn: (cluster: TestCluster, shared: boolean) => Promise<T>,
): Promise<T> {
  if (Deno.env.get(TEST_KUBECONFIG_ENV)) return await fn(await testCluster(), true);
  const cp = await ControlPlane.start({ log: (line) => console.error(`controlplane: ${line}`) });
  const forget = onInterrupt(() => cp.killSync());
  Deno.env.set(TEST_KUBECONFIG_ENV, cp.kubeconfigPath);
  try {
    return await fn(await testCluster(), false);
  } finally {
    Deno.env.delete(TEST_KUBECONFIG_ENV);
    if (!await within(cp.stop(), 60_000)) {
      console.error("teardown: the control plane did not stop within 60 s: killed");
      cp.killSync();
    }
    forget();
  }
}

/** `--name value` flags (numbers and strings), with defaults. */
export function flags<T extends Record<string, string | number | boolean>>(
  args: readonly string[],
  defaults: T,
): T {
  const result: Record<string, string | number | boolean> = { ...defaults };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = match?.[1]?.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) ?? "";
    if (match === null || !(key in defaults)) {
      throw new Error(`unknown flag ${arg}; flags: ${Object.keys(defaults).join(", ")}`);
    }
    const kind = typeof defaults[key];
    if (kind === "boolean" && match[2] === undefined) {
      result[key] = true;
      continue;
    }
    const value = match[2] ?? args[++i] ?? "";
    if (kind === "number") {
      if (!Number.isFinite(Number(value))) throw new Error(`${arg}: not a number: ${value}`);
      result[key] = Number(value);
    } else if (kind === "boolean") {
      result[key] = value === "true";
    } else {
      result[key] = value;
    }
  }
  return result as T;
}

/** Counts the pool addresses a node carries (the `default` and `virtual` pools). */
export async function carried(netns: string): Promise<number> {
  const held = await addressesIn(netns);
  return held.filter((h) =>
    h.address.startsWith("2001:db8:1::1:") || h.address.startsWith("2001:db8:100::")
  ).length;
}

/** What {@linkcode withBusyCluster} hands its body. */
export interface BusyCluster {
  readonly cluster: TestCluster;
  readonly scene: Scene;
  readonly layout: Layout;
  readonly access: ClusterAccess;
  readonly agent: ProgramProcess;
  readonly allocator: ProgramProcess;
  /** Samples `agent` and `allocator` (not started: call `sampleNow`, or `start`). */
  readonly sampler: Sampler;
  readonly leases: LeaseSimulator;
  readonly watch: IngressWatch;
  /** Create rates of the population (services, endpointslices, leases). */
  readonly creates: readonly CreateRate[];
  /** Seconds from the programs' start until every LoadBalancer had an address. */
  readonly addressedSeconds: number;
  /** Seconds from the programs' start until the real node carried what it should. */
  readonly settledSeconds: number;
  /** Addresses the real node carries once settled. */
  readonly carries: number;
  /** Unexpected exits of either program so far. */
  readonly exits: readonly string[];
  /** Logs with the seconds since the bench started. */
  log(line: string): void;
}

/** Options of {@linkcode withBusyCluster}. */
export interface BusyOptions {
  readonly size: ClusterSize;
  /** ClusterIP Services headless (see {@linkcode Layout.headless}). */
  readonly headless?: boolean;
  /** Namespace prefix. */
  readonly prefix: string;
  readonly log: (line: string) => void;
}

/**
 * Runs `body` with a busy cluster: a fresh control plane (or `PURELB_TEST_KUBECONFIG`'s), the
 * agent scene (LAN of network namespaces, ServiceGroups {@linkcode GROUPS}, LBNodeAgent), the
 * objects of `size` created, the simulated nodes' Leases renewed, the allocator and the agent
 * of `node-a` running (service accounts, production permissions and V8 flags, log level info)
 * and settled: every LoadBalancer addressed and `node-a` carrying exactly what the election
 * and its endpoints give it. Removes everything afterwards, also on failure and on Ctrl-C.
 */
export async function withBusyCluster<T>(
  options: BusyOptions,
  body: (busy: BusyCluster) => Promise<T>,
): Promise<T> {
  const { size, log } = options;
  let result: T | undefined;
  await withCluster(async (cluster, shared) => {
    const l = layout(
      size,
      `${options.prefix}-${crypto.randomUUID().slice(0, 6)}`,
      options.headless ?? size.headless ?? false,
    );
    const access = cluster.adminConfig();
    await withScene(cluster, options.prefix, {
      groups: GROUPS,
      nodeAgent: NODE_AGENT,
      agentArgs: ["--log-level", "info"],
      startOn: [],
    }, async (scene) => {
      log(
        `cluster ${formatSize(size)}: creating ${size.services} Services, ${size.slices} ` +
          `EndpointSlices, ${l.simNodes.length} simulated node Leases`,
      );
      const dir = await Deno.makeTempDir({ prefix: "purelb-busy-" });
      const leases = new LeaseSimulator(access, scene.namespace, l.simNodes);
      const watch = new IngressWatch(access);
      let allocator: ProgramProcess | undefined;
      let stopping = false;
      const exits: string[] = [];
      const stopProblems: string[] = [];
      const forget = onInterrupt(() => {
        if (allocator !== undefined) killSync(allocator.pid);
        try {
          killSync(scene.agent(REAL_NODE).pid);
        } catch { /* not started */ }
      });
      try {
        const creates = [...await populate(access, l, { log }), await leases.start()];
        for (const c of creates) {
          log(
            `baseline: created ${c.count} ${c.kind} in ${c.seconds.toFixed(1)} s ` +
              `(${c.perSecond.toFixed(0)}/s, 32 concurrent)`,
          );
        }
        await watch.start();
        const kubeconfig = await allocatorServiceAccount(cluster, scene.namespace, dir);
        const started = performance.now();
        const theAllocator = startAllocator(kubeconfig, scene.namespace, ["--log-level", "info"]);
        allocator = theAllocator;
        const agent = scene.restart(REAL_NODE);
        for (const [name, p] of [["allocator", theAllocator], ["agent", agent]] as const) {
          p.exited.then((status) => {
            if (!stopping) exits.push(`${name} exited with ${status.code}`);
          });
        }
        await waitUntilReady(theAllocator);
        const sampler = new Sampler(10_000);
        sampler.add({
          name: "agent",
          pid: agent.pid,
          port: await agent.port(),
          wanted: AGENT_WANTED,
        });
        sampler.add({
          name: "allocator",
          pid: theAllocator.pid,
          port: await theAllocator.port(),
          wanted: ALLOCATOR_WANTED,
        });
        const patience = 120_000 + size.loadBalancers * 20;
        await waitFor(
          () => watch.addressed().size >= size.loadBalancers,
          patience,
          `${size.loadBalancers} LoadBalancers addressed`,
          200,
        );
        const addressedSeconds = (performance.now() - started) / 1000;
        const carries = expectedOnRealNode(l, watch.addressed());
        const netns = scene.lan.node(REAL_NODE).netns;
        await waitFor(
          async () => (await carried(netns)) === carries,
          patience,
          `${REAL_NODE} carrying ${carries} addresses`,
          500,
        );
        const settledSeconds = (performance.now() - started) / 1000;
        log(
          `settled: all ${size.loadBalancers} LoadBalancers addressed after ` +
            `${addressedSeconds.toFixed(1)} s, ${REAL_NODE} carries ${carries} after ` +
            `${settledSeconds.toFixed(1)} s`,
        );
        result = await body({
          cluster,
          scene,
          layout: l,
          access,
          agent,
          allocator: theAllocator,
          sampler,
          leases,
          watch,
          creates,
          addressedSeconds,
          settledSeconds,
          carries,
          exits,
          log,
        });
      } finally {
        stopping = true;
        forget();
        await within(leases.remove(), 30_000, "removing the simulated Leases");
        for (const [name, p] of [["agent", agentOf(scene)], ["allocator", allocator]] as const) {
          if (p !== undefined && !await stopWithin(p, 20_000)) {
            const line = `${name} did not exit within 20 s of SIGTERM: killed`;
            log(`WARNING ${line}`);
            stopProblems.push(line);
          }
        }
        await within(watch.stop(), 10_000, "stopping the Service watch");
        await within(
          removeProgramBinding(cluster, "allocator", scene.namespace),
          10_000,
          "removing the allocator's binding",
        );
        await Deno.remove(dir, { recursive: true });
        if (shared) await depopulate(access, l);
      }
    });
  });
  if (result === undefined) throw new Error("the busy cluster body returned nothing");
  return result;
}

function agentOf(scene: Scene): ProgramProcess | undefined {
  try {
    return scene.agent(REAL_NODE);
  } catch {
    return undefined;
  }
}

/** SIGTERM, and SIGKILL after `ms`; true when it exited by itself. */
export async function stopWithin(program: ProgramProcess, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stopped = await Promise.race([
    program.stop().then(() => true),
    new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms)),
  ]);
  clearTimeout(timer);
  if (!stopped) await program.kill();
  return stopped;
}

/**
 * Waits for `promise` at most `ms`; true when it settled in time (a rejection counts as
 * settled). With `what`, a late or failed step is reported on stderr: teardown goes on.
 */
export async function within(promise: Promise<unknown>, ms: number, what?: string) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    promise.then(() => true, (error) => {
      if (what !== undefined) console.error(`teardown: ${what} failed: ${error}`);
      return true;
    }),
    new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms)),
  ]);
  clearTimeout(timer);
  if (!settled && what !== undefined) console.error(`teardown: ${what}: over ${ms} ms, going on`);
  return settled;
}

/** A logger that prefixes the seconds since it was made. */
export function elapsedLog(): (line: string) => void {
  const started = performance.now();
  return (line) =>
    console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(5)} s] ${line}`);
}
