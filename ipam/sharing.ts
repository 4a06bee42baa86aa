/**
 * When may two services share one address: both carry the same non-empty sharing key and no
 * (protocol, port) pair of one is also exposed by the other.
 *
 * @module
 */

/** A transport protocol of a Kubernetes ServicePort. */
export type Protocol = "TCP" | "UDP" | "SCTP";

/** One (protocol, port) pair a service exposes on its load balancer address. */
export interface ServicePort {
  /** Transport protocol. */
  readonly protocol: Protocol;
  /** Port number on the load balancer address. */
  readonly port: number;
}

/**
 * What a service brings to an allocation: its sharing key (`""` means it shares with nobody)
 * and the ports it exposes.
 */
export interface SharingRequest {
  /** The `purelb.io/allow-shared-ip` value; empty means no sharing. */
  readonly sharingKey: string;
  /** Every (protocol, port) the service exposes. */
  readonly ports: readonly ServicePort[];
}

/** A service holding an address, with the key and ports it holds it with. */
export interface AddressHolder {
  /** The service, usually `namespace/name`. */
  readonly serviceKey: string;
  /** Its sharing key; empty means it shares with nobody. */
  readonly sharingKey: string;
  /** The (protocol, port) pairs it uses on the address. */
  readonly ports: readonly ServicePort[];
}

/** The answer to "may this service join these holders on the address?". */
export type SharingVerdict =
  | { readonly kind: "allowed" }
  | { readonly kind: "refused"; readonly reason: string };

/**
 * `TCP/80` style text of a port.
 *
 * @example
 * ```ts
 * formatPort({ protocol: "UDP", port: 53 }); // "UDP/53"
 * ```
 */
export function formatPort(port: ServicePort): string {
  return `${port.protocol}/${port.port}`;
}

/**
 * The first (protocol, port) pair of `wanted` that `taken` also has, if any.
 *
 * @example
 * ```ts
 * findPortConflict([{ protocol: "TCP", port: 80 }], [{ protocol: "UDP", port: 80 }]); // undefined
 * ```
 */
export function findPortConflict(
  wanted: readonly ServicePort[],
  taken: readonly ServicePort[],
): ServicePort | undefined {
  const takenSet = new Set(taken.map(formatPort));
  return wanted.find((port) => takenSet.has(formatPort(port)));
}

/**
 * Decides whether `serviceKey` may hold `address` alongside its current `holders` (an entry for
 * the service itself is ignored). Reasons are sentences meant for an event on the service.
 *
 * @example
 * ```ts
 * const verdict = checkSharing("192.0.2.5", [
 *   { serviceKey: "ns/a", sharingKey: "web", ports: [{ protocol: "TCP", port: 80 }] },
 * ], "ns/b", { sharingKey: "web", ports: [{ protocol: "TCP", port: 443 }] });
 * verdict.kind; // "allowed"
 * ```
 */
export function checkSharing(
  address: string,
  holders: readonly AddressHolder[],
  serviceKey: string,
  request: SharingRequest,
): SharingVerdict {
  for (const holder of holders) {
    if (holder.serviceKey === serviceKey) continue;
    if (holder.sharingKey === "") {
      return {
        kind: "refused",
        reason:
          `address ${address} is in use by ${holder.serviceKey}, which does not allow sharing`,
      };
    }
    if (request.sharingKey === "") {
      return {
        kind: "refused",
        reason: `address ${address} is in use by ${holder.serviceKey} and ${serviceKey} ` +
          `has no sharing key`,
      };
    }
    if (holder.sharingKey !== request.sharingKey) {
      return {
        kind: "refused",
        reason: `address ${address} is in use by ${holder.serviceKey} and the sharing keys ` +
          `differ ("${request.sharingKey}" here, "${holder.sharingKey}" there)`,
      };
    }
    const conflict = findPortConflict(request.ports, holder.ports);
    if (conflict !== undefined) {
      return {
        kind: "refused",
        reason: `address ${address} is shared with ${holder.serviceKey}, which already uses ` +
          `${formatPort(conflict)}`,
      };
    }
  }
  return { kind: "allowed" };
}
