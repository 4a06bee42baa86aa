/**
 * What the allocator keeps of each watched object, and which Service changes it must act on.
 * Pure: the informers cache these views (so an update of any other field is no change), and
 * the controller queues a Service only when {@link serviceChangeConcernsAllocator} says so, so
 * that churn of Services that are not ours costs no work.
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import type { V1Service } from "@kubernetes/client-node";
import { slimMetadata } from "../k8s/slim.ts";
import type { ServiceGroupObject } from "./groupstatus.ts";
import { isOurClass, type RequestSettings } from "./request.ts";
import { ALLOCATED_BY_PURELB, Annotations } from "../k8s/types.ts";

const PURELB_PREFIX = "purelb.io/";

/**
 * True when the allocator has nothing to do with the Service: not of our class, or not a
 * LoadBalancer and carrying none of our marks (no address of ours to take back).
 *
 * @example
 * ```ts
 * isOutOfScope({ spec: { type: "ClusterIP" } }, { handleClasslessServices: true }); // true
 * ```
 */
export function isOutOfScope(service: V1Service, settings: RequestSettings): boolean {
  if (!isOurClass(service, settings)) return true;
  if (service.spec?.type === "LoadBalancer") return false;
  const annotations = service.metadata?.annotations ?? {};
  const marked = annotations[Annotations.allocatedBy] === ALLOCATED_BY_PURELB ||
    annotations[Annotations.allocatedFrom] !== undefined;
  return !marked && (service.status?.loadBalancer?.ingress ?? []).length === 0;
}

/**
 * The allocator's view of a Service: what {@link readServiceIntent} and the status patch read
 * for one in scope; nothing of any other (it is not cached: a Service leaving the scope reads
 * as deleted, which releases what it held without writing to it).
 *
 * @example
 * ```ts
 * const view = allocatorServiceView({ handleClasslessServices: true });
 * view({ metadata: { name: "db", namespace: "shop", uid: "u1" }, spec: { type: "ClusterIP" } });
 * // undefined
 * ```
 */
export function allocatorServiceView(
  settings: RequestSettings,
): (service: V1Service) => V1Service | undefined {
  return (service) => {
    if (isOutOfScope(service, settings)) return undefined;
    const from = service.spec ?? {};
    const spec: NonNullable<V1Service["spec"]> = {};
    if (from.type !== undefined) spec.type = from.type;
    if (from.loadBalancerClass !== undefined) spec.loadBalancerClass = from.loadBalancerClass;
    if (from.loadBalancerIP !== undefined) spec.loadBalancerIP = from.loadBalancerIP;
    if (from.ipFamilies !== undefined) spec.ipFamilies = from.ipFamilies;
    if (from.ipFamilyPolicy !== undefined) spec.ipFamilyPolicy = from.ipFamilyPolicy;
    if (from.externalTrafficPolicy !== undefined) {
      spec.externalTrafficPolicy = from.externalTrafficPolicy;
    }
    if (from.ports !== undefined) {
      spec.ports = from.ports.map((port) => ({
        port: port.port,
        ...(port.protocol === undefined ? {} : { protocol: port.protocol }),
      }));
    }
    return {
      metadata: slimMetadata(service.metadata, {
        uid: true,
        creationTimestamp: true,
        annotationPrefix: PURELB_PREFIX,
      }),
      spec,
      status: {
        loadBalancer: {
          ingress: (service.status?.loadBalancer?.ingress ?? []).map((ingress) => ({
            ...(ingress.ip === undefined ? {} : { ip: ingress.ip }),
            ...(ingress.hostname === undefined ? {} : { hostname: ingress.hostname }),
            ...(ingress.ipMode === undefined ? {} : { ipMode: ingress.ipMode }),
          })),
        },
      },
    };
  };
}

/**
 * True when a Service event needs the allocator: the Service is in scope before or after (see
 * {@link isOutOfScope}), and an update changed more than the announcing annotations (the
 * allocator's own writes of them). The informer reports a change only when the cached view
 * changed.
 *
 * @example
 * ```ts
 * const settings = { handleClasslessServices: true };
 * serviceChangeConcernsAllocator(undefined, { spec: { type: "ClusterIP" } }, settings); // false
 * ```
 */
export function serviceChangeConcernsAllocator(
  previous: V1Service | undefined,
  current: V1Service | undefined,
  settings: RequestSettings,
): boolean {
  const inScope = [previous, current].some((service) =>
    service !== undefined && !isOutOfScope(service, settings)
  );
  if (!inScope || previous === undefined || current === undefined) return inScope;
  // The allocator's own announcing annotations are no request for an allocation.
  return !isDeepStrictEqual(withoutAnnouncing(previous), withoutAnnouncing(current));
}

/** The Service less the announcing annotations. */
function withoutAnnouncing(service: V1Service): V1Service {
  const annotations = service.metadata?.annotations;
  if (
    annotations === undefined ||
    (annotations[Annotations.announcingIPv4] === undefined &&
      annotations[Annotations.announcingIPv6] === undefined)
  ) return service;
  const {
    [Annotations.announcingIPv4]: _v4,
    [Annotations.announcingIPv6]: _v6,
    ...rest
  } = annotations;
  const metadata = { ...service.metadata };
  if (Object.keys(rest).length === 0) delete metadata.annotations;
  else metadata.annotations = rest;
  return { ...service, metadata };
}

/**
 * The allocator's view of a ServiceGroup: name, uid, creation time, generation, spec and the
 * status it writes itself (compared before writing again).
 *
 * @example
 * ```ts
 * groupView({ metadata: { name: "default", namespace: "ns", generation: 2, resourceVersion: "9" },
 *   spec: {} }); // { metadata: { name: "default", namespace: "ns", generation: 2 }, spec: {} }
 * ```
 */
export function groupView(group: ServiceGroupObject): ServiceGroupObject {
  return {
    metadata: slimMetadata(group.metadata, {
      uid: true,
      creationTimestamp: true,
      generation: true,
    }),
    ...(group.spec === undefined ? {} : { spec: group.spec }),
    ...(group.status === undefined ? {} : { status: group.status }),
  };
}
