/**
 * What the agent keeps of each watched object, and which changes can alter this node's
 * decision. Both are pure: the informers cache the slim views below (so an update of any other
 * field is no change at all), and the controller asks the predicates before it reconciles, so
 * that churn elsewhere in the cluster (ClusterIP Services, their EndpointSlices, Lease
 * renewals) costs no reconcile and no `ip` process.
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import type {
  KubernetesObject,
  V1EndpointSlice,
  V1Lease,
  V1Node,
  V1Service,
} from "@kubernetes/client-node";
import { slimMetadata } from "../k8s/slim.ts";
import { nodeLeaseView } from "../k8s/node_lease.ts";
import {
  ALLOCATED_BY_PURELB,
  Annotations,
  SERVICE_NAME_LABEL,
  SUBNETS_ANNOTATION,
} from "../k8s/types.ts";
import { type ServiceAnnouncement, serviceAnnouncement } from "./announce.ts";
import { leaseRecord } from "./membership.ts";

const PURELB_PREFIX = "purelb.io/";

/**
 * The agent's view of a Service: for one we allocated, what {@link serviceAnnouncement} and
 * Events read; nothing of any other (it is not cached).
 *
 * @example
 * ```ts
 * agentServiceView({ metadata: { name: "db", namespace: "shop", labels: { a: "b" } },
 *   spec: { type: "ClusterIP" } }); // undefined
 * ```
 */
export function agentServiceView(service: V1Service): V1Service | undefined {
  if (service.metadata?.annotations?.[Annotations.allocatedBy] !== ALLOCATED_BY_PURELB) {
    return undefined;
  }
  const spec: NonNullable<V1Service["spec"]> = {};
  if (service.spec?.type !== undefined) spec.type = service.spec.type;
  if (service.spec?.externalTrafficPolicy !== undefined) {
    spec.externalTrafficPolicy = service.spec.externalTrafficPolicy;
  }
  const metadata = slimMetadata(service.metadata, { uid: true, annotationPrefix: PURELB_PREFIX });
  // The allocator's copy of the announcers is not an input here (its writes are no change).
  if (metadata.annotations !== undefined) {
    const {
      [Annotations.announcingIPv4]: _v4,
      [Annotations.announcingIPv6]: _v6,
      ...rest
    } = metadata.annotations;
    if (Object.keys(rest).length === 0) delete metadata.annotations;
    else metadata.annotations = rest;
  }
  return {
    metadata,
    spec,
    status: {
      loadBalancer: {
        ingress: (service.status?.loadBalancer?.ingress ?? []).flatMap((ingress) =>
          ingress.ip === undefined ? [] : [{ ip: ingress.ip }]
        ),
      },
    },
  };
}

/**
 * The agent's view of an EndpointSlice: its Service and, per endpoint, the addresses, the node
 * and the two conditions that decide health.
 *
 * @example
 * ```ts
 * agentSliceView({ metadata: { name: "web-1", namespace: "shop", resourceVersion: "9",
 *   labels: { "kubernetes.io/service-name": "web", other: "x" } }, addressType: "IPv4",
 *   endpoints: [{ addresses: ["10.0.0.1"], nodeName: "n1", zone: "a" }] }).endpoints;
 * // [{ addresses: ["10.0.0.1"], nodeName: "n1", conditions: {} }]
 * ```
 */
export function agentSliceView(slice: V1EndpointSlice): V1EndpointSlice {
  return {
    metadata: slimMetadata(slice.metadata, { labels: [SERVICE_NAME_LABEL] }),
    addressType: slice.addressType,
    endpoints: (slice.endpoints ?? []).map((endpoint) => {
      const conditions: { ready?: boolean; serving?: boolean } = {};
      if (endpoint.conditions?.ready !== undefined) conditions.ready = endpoint.conditions.ready;
      if (endpoint.conditions?.serving !== undefined) {
        conditions.serving = endpoint.conditions.serving;
      }
      return {
        addresses: endpoint.addresses,
        ...(endpoint.nodeName === undefined ? {} : { nodeName: endpoint.nodeName }),
        conditions,
      };
    }),
  };
}

/**
 * The agent's view of a Lease in its namespace: for a node Lease, what the election reads; for
 * any other (the allocator's leader Lease), its name only.
 *
 * @example
 * ```ts
 * agentLeaseView({ metadata: { name: "purelb-allocator", namespace: "purelb-system" },
 *   spec: { holderIdentity: "a" } }); // { metadata: { name: "purelb-allocator", namespace: "purelb-system" } }
 * ```
 */
export function agentLeaseView(lease: V1Lease): V1Lease {
  return nodeLeaseView(lease, SUBNETS_ANNOTATION) ?? { metadata: slimMetadata(lease.metadata) };
}

/**
 * The agent's view of a ServiceGroup or LBNodeAgent: kind, name and spec (the status the
 * allocator writes is not read).
 *
 * @example
 * ```ts
 * specView({ apiVersion: "purelb.io/v1", kind: "ServiceGroup",
 *   metadata: { name: "default", namespace: "purelb-system", generation: 3 },
 *   spec: { local: {} }, status: { conditions: [] } });
 * // { apiVersion: "purelb.io/v1", kind: "ServiceGroup",
 * //   metadata: { name: "default", namespace: "purelb-system" }, spec: { local: {} } }
 * ```
 */
export function specView<T extends KubernetesObject & { readonly spec?: unknown }>(
  object: T,
): KubernetesObject & { readonly spec?: unknown } {
  return {
    ...(object.apiVersion === undefined ? {} : { apiVersion: object.apiVersion }),
    ...(object.kind === undefined ? {} : { kind: object.kind }),
    metadata: slimMetadata(object.metadata),
    ...(object.spec === undefined ? {} : { spec: object.spec }),
  };
}

/**
 * What the agent keeps of its Node: the name and every label (any label may be one an
 * LBNodeAgent's selector names). Status and heartbeats are dropped, so they change nothing.
 *
 * @example
 * ```ts
 * nodeLabelsView({ metadata: { name: "node-a", resourceVersion: "9", labels: { zone: "a" } },
 *   status: { conditions: [] } });
 * // { metadata: { name: "node-a", labels: { zone: "a" } } }
 * ```
 */
export function nodeLabelsView(node: V1Node): V1Node {
  return { metadata: { ...slimMetadata(node.metadata), labels: { ...node.metadata?.labels } } };
}

/**
 * True when a Service change can alter what any node announces: its announcement (addresses,
 * traffic policy, allow-local, group) differs before and after. A Service that is not ours, or
 * not a LoadBalancer with an address, before and after never matters.
 *
 * @example
 * ```ts
 * serviceChangeMatters(undefined, { metadata: { name: "db" }, spec: { type: "ClusterIP" } }); // false
 * ```
 */
export function serviceChangeMatters(
  previous: V1Service | undefined,
  current: V1Service | undefined,
): boolean {
  const before = previous === undefined ? undefined : serviceAnnouncement(previous);
  const after = current === undefined ? undefined : serviceAnnouncement(current);
  return !isDeepStrictEqual(before, after);
}

/**
 * True when an EndpointSlice change can alter what any node announces: the slice (before or
 * after) belongs to a Service we announce with `externalTrafficPolicy: Local`, the only kind
 * whose announcement follows its endpoints. `announcementOf` looks a Service up by
 * `namespace/name` in the cache.
 *
 * @example
 * ```ts
 * sliceChangeMatters(undefined, { metadata: { namespace: "shop",
 *   labels: { "kubernetes.io/service-name": "db" } }, addressType: "IPv4", endpoints: [] },
 *   () => undefined); // false
 * ```
 */
export function sliceChangeMatters(
  previous: V1EndpointSlice | undefined,
  current: V1EndpointSlice | undefined,
  announcementOf: (serviceKey: string) => ServiceAnnouncement | undefined,
): boolean {
  return [previous, current].some((slice) => {
    const key = slice === undefined ? undefined : sliceServiceKey(slice);
    return key !== undefined && announcementOf(key)?.localTrafficPolicy === true;
  });
}

/**
 * `namespace/name` of the Service an EndpointSlice belongs to, if its label names one.
 *
 * @example
 * ```ts
 * sliceServiceKey({ metadata: { namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
 *   addressType: "IPv4", endpoints: [] }); // "shop/web"
 * ```
 */
export function sliceServiceKey(slice: V1EndpointSlice): string | undefined {
  const name = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
  return name === undefined || name === ""
    ? undefined
    : `${slice.metadata?.namespace ?? ""}/${name}`;
}

/**
 * True when the Service is ours and its announcement follows its endpoints
 * (`externalTrafficPolicy: Local`): only then are its EndpointSlices worth keeping.
 *
 * @example
 * ```ts
 * endpointsMatterFor({ metadata: { name: "db" }, spec: { type: "ClusterIP" } }); // false
 * ```
 */
export function endpointsMatterFor(service: V1Service | undefined): boolean {
  return service !== undefined && serviceAnnouncement(service)?.localTrafficPolicy === true;
}

/**
 * True when a node Lease change can alter an election: a node appears, goes, changes its
 * published subnets or its duration, or renews a Lease that had expired (`wasLive` false). A
 * plain renewal of a live Lease never matters; neither does any Lease that is not a node's.
 *
 * @example
 * ```ts
 * import { MicroTime } from "../k8s/api.ts";
 *
 * const lease = (renewTime: string) => ({ metadata: { name: "purelb-node-a" },
 *   spec: { holderIdentity: "a", renewTime: new MicroTime(renewTime), leaseDurationSeconds: 6 } });
 * leaseChangeMatters(lease("2026-01-01T00:00:00Z"), lease("2026-01-01T00:00:02Z"), true); // false
 * ```
 */
export function leaseChangeMatters(
  previous: V1Lease | undefined,
  current: V1Lease | undefined,
  wasLive: boolean,
): boolean {
  const before = previous === undefined ? undefined : electionView(previous);
  const after = current === undefined ? undefined : electionView(current);
  if (before === undefined && after === undefined) return false;
  if (!isDeepStrictEqual(before, after)) return true;
  return !wasLive;
}

function electionView(lease: V1Lease) {
  const record = leaseRecord(lease);
  return record === undefined
    ? undefined
    : { node: record.nodeName, subnets: record.subnets, durationMs: record.leaseDurationMs };
}
