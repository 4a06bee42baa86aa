/**
 * The allocator's Prometheus metrics. Pool gauges keep PureLB's names and are computed when
 * scraped, so allocations cost nothing extra.
 *
 * @module
 */

import { Counter, Gauge, Registry } from "prom-client";
import { registerProcessMetrics } from "../k8s/observability.ts";
import type { GroupReport } from "./allocator.ts";

/** Counters the controller bumps and gauges read from the allocator on each scrape. */
export class AllocatorMetrics {
  readonly registry = new Registry();
  readonly assigned: Counter;
  readonly released: Counter;
  readonly failed: Counter<"reason">;
  readonly netboxFailures: Counter<"failure">;
  /** Cache changes by kind of object, and whether they concern the allocator. */
  readonly watchEvents: Counter<"kind" | "relevant">;
  /** Work items processed, by kind (service, groups, group_status, netbox_return, netbox_sweep, announcing). */
  readonly reconciles: Counter<"kind">;
  #pools: () => readonly GroupReport[] = () => [];

  constructor() {
    const registers = [this.registry];
    registerProcessMetrics(this.registry);
    this.watchEvents = new Counter({
      name: "purelb_allocator_watch_events_total",
      help: 'Cache changes seen, by kind of object; relevant="true" ones queue work',
      labelNames: ["kind", "relevant"],
      registers,
    });
    this.reconciles = new Counter({
      name: "purelb_allocator_reconciles_total",
      help: "Work items processed, by kind",
      labelNames: ["kind"],
      registers,
    });
    this.assigned = new Counter({
      name: "purelb_allocator_assignments_total",
      help: "Services given (new or replaced) addresses",
      registers,
    });
    this.released = new Counter({
      name: "purelb_allocator_releases_total",
      help: "Services that gave addresses back",
      registers,
    });
    this.failed = new Counter({
      name: "purelb_allocator_allocation_failures_total",
      help: "Allocations that failed, by kind of reason (AllocationFailed events carry the text)",
      labelNames: ["reason"],
      registers,
    });
    this.netboxFailures = new Counter({
      name: "purelb_allocator_netbox_failures_total",
      help: "Netbox calls that failed, by kind (timeout, unauthorized, redirect, serverError, " +
        "contentType, body, network, refused, noToken); the NetboxAvailable condition has the text",
      labelNames: ["failure"],
      registers,
    });
    const pools = () => this.#pools();
    new Gauge({
      name: "purelb_address_pool_size",
      help: "Addresses in the pool (IPv4 and IPv6 together)",
      labelNames: ["pool"],
      registers,
      collect() {
        this.reset();
        for (const report of pools()) {
          if (report.kind !== "valid") continue;
          this.set({ pool: report.name }, Number(report.stats.IPv4.size + report.stats.IPv6.size));
        }
      },
    });
    new Gauge({
      name: "purelb_address_pool_addresses_in_use",
      help: "Addresses of the pool held by at least one Service",
      labelNames: ["pool"],
      registers,
      collect() {
        this.reset();
        for (const report of pools()) {
          if (report.kind === "valid") {
            this.set({ pool: report.name }, report.stats.IPv4.inUse + report.stats.IPv6.inUse);
          } else if (report.kind === "netbox") {
            this.set({ pool: report.name }, report.inUse.IPv4 + report.inUse.IPv6);
          }
        }
      },
    });
    new Gauge({
      name: "purelb_allocator_service_group_valid",
      help: "1 when the ServiceGroup is valid, 0 when it is not (see its Valid condition)",
      labelNames: ["pool"],
      registers,
      collect() {
        this.reset();
        for (const report of pools()) {
          this.set({ pool: report.name }, report.kind === "invalid" ? 0 : 1);
        }
      },
    });
  }

  /** Where the pool gauges read from (the leader's allocator). */
  observePools(source: () => readonly GroupReport[]): void {
    this.#pools = source;
  }
}
