/**
 * The Events the agent writes on Services: where this node announces an address
 * (AnnouncingLocal / AnnouncingVirtual), when it stops (Withdrawn), and configuration
 * warnings. Each is reported once, when it changes, not at every reconcile.
 *
 * @module
 */

import type { V1Service } from "@kubernetes/client-node";
import type { EventSink, EventType } from "../k8s/events.ts";
import { EventReason } from "../k8s/types.ts";
import type { AddressDecision, ServiceWarning } from "./announce.ts";

/** One address of one Service that this node announces, and where. */
export interface Announcement {
  /** `namespace/name`. */
  readonly service: string;
  readonly address: string;
  readonly kind: AddressDecision["kind"];
  readonly interfaceName: string;
}

/** What this node announces by the decisions: one entry per Service of each announced address. */
export function announcementsOf(decisions: readonly AddressDecision[]): readonly Announcement[] {
  return decisions.flatMap((decision) =>
    decision.announce
      ? decision.services.map((service) => ({
        service,
        address: decision.address,
        kind: decision.kind,
        interfaceName: decision.interfaceName,
      }))
      : []
  );
}

/** Options of {@link ServiceEvents}. */
export interface ServiceEventsOptions {
  readonly events: EventSink;
  /** This node, named in the messages. */
  readonly nodeName: string;
  /** The cached Service `namespace/name` (an Event needs its uid); none: no Event. */
  readonly serviceOf: (serviceKey: string) => V1Service | undefined;
}

/** Reports what changed since the last report. */
export class ServiceEvents {
  readonly #options: ServiceEventsOptions;
  /** By `service address`: what was last reported as announced. */
  #announced = new Map<string, Announcement>();
  /** Per Service: the warning last reported. */
  readonly #warned = new Map<string, string>();

  constructor(options: ServiceEventsOptions) {
    this.#options = options;
  }

  /** Reports new and moved announcements, and those no longer in `announcements` as withdrawn. */
  announcing(announcements: readonly Announcement[]): void {
    const { nodeName } = this.#options;
    const current = new Map(announcements.map((a) => [`${a.service} ${a.address}`, a]));
    for (const [key, announcement] of current) {
      const before = this.#announced.get(key);
      if (
        before !== undefined && before.kind === announcement.kind &&
        before.interfaceName === announcement.interfaceName
      ) continue;
      const { service, address, kind, interfaceName } = announcement;
      this.#event(
        service,
        "Normal",
        kind === "local" ? EventReason.AnnouncingLocal : EventReason.AnnouncingVirtual,
        `Announcing ${address} from node ${nodeName} interface ${interfaceName}`,
      );
    }
    for (const [key, announcement] of this.#announced) {
      if (!current.has(key)) this.#withdrawn(announcement);
    }
    this.#announced = current;
  }

  /** Reports every announcement as withdrawn. */
  withdrawnAll(): void {
    for (const announcement of this.#announced.values()) this.#withdrawn(announcement);
    this.#announced = new Map();
  }

  /** Reports each Service's warning once, until it changes; a Service without one is forgotten. */
  warnings(warnings: readonly ServiceWarning[]): void {
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

  #withdrawn({ service, address, interfaceName }: Announcement): void {
    this.#event(
      service,
      "Normal",
      EventReason.Withdrawn,
      `Withdrew ${address} from node ${this.#options.nodeName} interface ${interfaceName}`,
    );
  }

  #event(serviceKey: string, type: EventType, reason: EventReason, message: string): void {
    const service = this.#options.serviceOf(serviceKey);
    if (service === undefined) return;
    const subject = { apiVersion: "v1", kind: "Service", metadata: service.metadata };
    void this.#options.events.record(subject, type, reason, message);
  }
}
