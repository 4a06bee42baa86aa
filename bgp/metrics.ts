/**
 * The BGP metrics of the node agent (SPEC 4): `purelb_bgp_session_up{peer}`,
 * `purelb_bgp_announced_prefixes{peer}`, plus config loads by outcome and whether BIRD answers.
 *
 * @module
 */

import { Counter, Gauge, type Registry } from "prom-client";
import type { BgpMetricsSink, SessionMetric } from "./controller.ts";

/**
 * The metrics, registered in the agent's registry.
 *
 * @example
 * ```ts
 * import { Registry } from "prom-client";
 *
 * const metrics = new BgpMetrics(new Registry());
 * metrics.setSessions([{ peer: "192.0.2.1", up: true, announcedPrefixes: 3 }]);
 * ```
 */
export class BgpMetrics implements BgpMetricsSink {
  readonly #sessionUp: Gauge<"peer">;
  readonly #announcedPrefixes: Gauge<"peer">;
  readonly #configLoads: Counter<"outcome">;
  readonly #daemonUp: Gauge;
  #peers = new Set<string>();

  constructor(registry: Registry) {
    const registers = [registry];
    this.#sessionUp = new Gauge({
      name: "purelb_bgp_session_up",
      help: "1 while the BGP session with the peer is established",
      labelNames: ["peer"],
      registers,
    });
    this.#announcedPrefixes = new Gauge({
      name: "purelb_bgp_announced_prefixes",
      help: "Prefixes this node announces to the peer",
      labelNames: ["peer"],
      registers,
    });
    this.#configLoads = new Counter({
      name: "purelb_bgp_config_loads_total",
      help: "birdc configure calls, by outcome (applied, refused, unavailable)",
      labelNames: ["outcome"],
      registers,
    });
    this.#daemonUp = new Gauge({
      name: "purelb_bgp_daemon_up",
      help: "1 when BIRD answered the last time it was asked",
      registers,
    });
  }

  setSessions(sessions: readonly SessionMetric[]): void {
    const peers = new Set(sessions.map((session) => session.peer));
    for (const peer of this.#peers) {
      if (peers.has(peer)) continue;
      this.#sessionUp.remove({ peer });
      this.#announcedPrefixes.remove({ peer });
    }
    for (const session of sessions) {
      this.#sessionUp.set({ peer: session.peer }, session.up ? 1 : 0);
      this.#announcedPrefixes.set({ peer: session.peer }, session.announcedPrefixes);
    }
    this.#peers = peers;
  }

  configured(outcome: "applied" | "refused" | "unavailable"): void {
    this.#configLoads.inc({ outcome });
  }

  setDaemonUp(up: boolean): void {
    this.#daemonUp.set(up ? 1 : 0);
  }
}
