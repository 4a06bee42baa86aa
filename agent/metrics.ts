/**
 * The node agent's Prometheus metrics. `purelb_lbnodeagent_announced{service,node,ip}` keeps
 * PureLB's name; the rest describe the election, the helpers and the reconcile loop.
 *
 * @module
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { registerProcessMetrics } from "../k8s/observability.ts";

/**
 * What the gauges read when scraped.
 */
export interface AgentMetricsSource {
  /** Live node Leases seen. */
  readonly liveNodes: () => number;
  /** This node is fenced (could not renew its Lease for a full duration). */
  readonly fenced: () => boolean;
  /** Local addresses this node won and carries. */
  readonly localWon: () => number;
  /** `ip` processes spawned since start. */
  readonly ipProcesses: () => number;
}

/**
 * Counters the controller bumps and gauges read on each scrape.
 *
 * @example
 * ```ts
 * const metrics = new AgentMetrics("node-a");
 * metrics.setAnnounced([{ service: "shop/web", ip: "192.0.2.50" }]);
 * metrics.gratuitousSent.inc({ family: "IPv4" });
 * console.log(await metrics.registry.metrics());
 * ```
 */
export class AgentMetrics {
  readonly registry = new Registry();
  /** 1 per (service, ip) this node announces. */
  readonly announced: Gauge<"service" | "node" | "ip">;
  /** Gratuitous ARP / unsolicited NA runs that succeeded, by family. */
  readonly gratuitousSent: Counter<"family">;
  /** Gratuitous ARP / unsolicited NA runs that failed. */
  readonly gratuitousFailed: Counter<"family">;
  /** Reconciles that failed (reading or changing the network). */
  readonly reconcileErrors: Counter;
  /** Reconciles run. */
  readonly reconciles: Counter;
  /** Address changes applied, by kind (add, delete). */
  readonly addressChanges: Counter<"kind">;
  /** Duration of one reconcile. */
  readonly reconcileSeconds: Histogram;
  /** Lease calls that failed. */
  readonly leaseErrors: Counter;
  /** Cache changes by kind of object, and whether they could change a decision. */
  readonly watchEvents: Counter<"kind" | "relevant">;
  readonly #node: string;
  #source: AgentMetricsSource = {
    liveNodes: () => 0,
    fenced: () => true,
    localWon: () => 0,
    ipProcesses: () => 0,
  };
  /** By `service ip`: the series set to 1. */
  #announced = new Map<string, { readonly service: string; readonly ip: string }>();

  /** Registers every metric for node `node`. */
  constructor(node: string) {
    this.#node = node;
    const registers = [this.registry];
    this.announced = new Gauge({
      name: "purelb_lbnodeagent_announced",
      help: "1 for each (service, address) this node announces",
      labelNames: ["service", "node", "ip"],
      registers,
    });
    this.gratuitousSent = new Counter({
      name: "purelb_lbnodeagent_garp_sent_total",
      help: "Gratuitous ARP (IPv4) / unsolicited neighbour advertisement (IPv6) runs sent",
      labelNames: ["family"],
      registers,
    });
    this.gratuitousFailed = new Counter({
      name: "purelb_lbnodeagent_garp_failures_total",
      help: "Gratuitous ARP / unsolicited NA runs that failed",
      labelNames: ["family"],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "purelb_lbnodeagent_reconcile_errors_total",
      help: "Reconciles that failed (network read or change)",
      registers,
    });
    this.reconciles = new Counter({
      name: "purelb_lbnodeagent_reconciles_total",
      help: "Reconciles run",
      registers,
    });
    this.addressChanges = new Counter({
      name: "purelb_lbnodeagent_address_changes_total",
      help: "Addresses added or deleted",
      labelNames: ["kind"],
      registers,
    });
    this.reconcileSeconds = new Histogram({
      name: "purelb_lbnodeagent_reconcile_seconds",
      help: "Duration of one reconcile",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.leaseErrors = new Counter({
      name: "purelb_lbnodeagent_lease_errors_total",
      help: "Node Lease calls that failed",
      registers,
    });
    const source = () => this.#source;
    new Gauge({
      name: "purelb_lbnodeagent_election_live_nodes",
      help: "Node Leases that are live",
      registers,
      collect() {
        this.set(source().liveNodes());
      },
    });
    new Gauge({
      name: "purelb_lbnodeagent_election_fenced",
      help: "1 while this node could not renew its Lease for a full duration (no local addresses)",
      registers,
      collect() {
        this.set(source().fenced() ? 1 : 0);
      },
    });
    new Gauge({
      name: "purelb_lbnodeagent_election_local_won",
      help: "Local addresses this node won the election for and carries",
      registers,
      collect() {
        this.set(source().localWon());
      },
    });
    new Counter({
      name: "purelb_lbnodeagent_ip_processes_total",
      help: "ip processes spawned since start",
      registers,
      collect() {
        this.reset();
        this.inc(source().ipProcesses());
      },
    });
    this.watchEvents = new Counter({
      name: "purelb_lbnodeagent_watch_events_total",
      help: 'Cache changes seen, by kind of object; relevant="true" ones ask for a reconcile',
      labelNames: ["kind", "relevant"],
      registers,
    });
    registerProcessMetrics(this.registry);
  }

  /** Where the gauges read from. */
  observe(source: AgentMetricsSource): void {
    this.#source = source;
  }

  /** Replaces the announced set: 1 for each entry, series of others removed. */
  setAnnounced(entries: readonly { readonly service: string; readonly ip: string }[]): void {
    const current = new Map(entries.map((entry) => [`${entry.service} ${entry.ip}`, entry]));
    for (const [key, { service, ip }] of current) {
      // A series already at 1 stays as it is (with 1,000 Services this was every reconcile's
      // 1,000 label lookups).
      if (!this.#announced.has(key)) this.announced.set({ service, node: this.#node, ip }, 1);
    }
    for (const [key, { service, ip }] of this.#announced) {
      if (!current.has(key)) this.announced.remove({ service, node: this.#node, ip });
    }
    this.#announced = current;
  }
}
