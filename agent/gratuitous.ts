/**
 * Gratuitous ARP / unsolicited neighbour advertisements for the local addresses this node
 * takes, each stopped as soon as the address is given up (a lost address must not keep
 * advertising this node's MAC: arping runs for seconds) or the agent stops.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { errorMessage } from "../k8s/errors.ts";
import type { GratuitousAnnouncer } from "../netlink/mod.ts";
import type { AgentMetrics } from "./metrics.ts";

/** Packets per gratuitous announcement. */
const GRATUITOUS_COUNT = 3;

const log = getLogger(["purelb", "agent"]);

/** The announcements in flight, one per address at most. */
export class GratuitousAnnouncements {
  readonly #announcer: Pick<GratuitousAnnouncer, "announce"> | undefined;
  readonly #metrics: Pick<AgentMetrics, "gratuitousSent" | "gratuitousFailed">;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #byAddress = new Map<string, AbortController>();
  readonly #stopping = new AbortController();

  /** `announcer` is `undefined` when the helpers are missing: sending then only warns. */
  constructor(
    announcer: Pick<GratuitousAnnouncer, "announce"> | undefined,
    metrics: Pick<AgentMetrics, "gratuitousSent" | "gratuitousFailed">,
  ) {
    this.#announcer = announcer;
    this.#metrics = metrics;
  }

  /** Announces `address` on `interfaceName`, replacing an announcement of it in flight. */
  send(interfaceName: string, address: string): void {
    const announcer = this.#announcer;
    if (announcer === undefined) {
      log.warn("sendgarp is on but arping/na6 are missing: {address} not announced", { address });
      return;
    }
    const family = address.includes(":") ? "IPv6" : "IPv4";
    this.#byAddress.get(address)?.abort();
    const cancel = new AbortController();
    this.#byAddress.set(address, cancel);
    const signal = AbortSignal.any([this.#stopping.signal, cancel.signal]);
    const sending = announcer.announce({
      interfaceName,
      address,
      count: GRATUITOUS_COUNT,
      signal,
    }).then(
      () => {
        this.#metrics.gratuitousSent.inc({ family });
      },
      (error) => {
        if (signal.aborted) return;
        this.#metrics.gratuitousFailed.inc({ family });
        log.warn("gratuitous announcement of {address} failed: {error}", {
          address,
          error: errorMessage(error),
        });
      },
    );
    this.#inFlight.add(sending);
    void sending.finally(() => {
      this.#inFlight.delete(sending);
      if (this.#byAddress.get(address) === cancel) this.#byAddress.delete(address);
    });
  }

  /** Stops the announcements of every address not in `carried`. */
  keepOnly(carried: ReadonlySet<string>): void {
    for (const [address, sending] of this.#byAddress) {
      if (!carried.has(address)) {
        sending.abort();
        this.#byAddress.delete(address);
      }
    }
  }

  /** Stops every announcement in flight, and any sent later. */
  stop(): void {
    this.#stopping.abort();
  }

  /** Waits for the announcements in flight. */
  async settle(): Promise<void> {
    await Promise.all([...this.#inFlight]);
  }
}
