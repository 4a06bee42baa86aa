/**
 * The agent's caches: Services, EndpointSlices, ServiceGroups, LBNodeAgents and the Leases of
 * its namespace, each keeping only the slim view of agent/relevance.ts, and its own Node's
 * labels (read with `get` and `watch` on that one Node: the agent never lists nodes). {@link agentInformers}
 * builds the real ones (list-watch against the API server); the controller receives them as
 * {@link AgentCaches}, so a unit test can hand it in-memory ones instead.
 *
 * @module
 */

import type {
  KubernetesObject,
  V1EndpointSlice,
  V1Lease,
  V1Node,
  V1Secret,
  V1Service,
} from "@kubernetes/client-node";
import { getLogger } from "@logtape/logtape";
import {
  type ApiConnection,
  type Cache,
  type InformerCounts,
  logWatchFailure,
  NamedObjectCaches,
  type ReloadableCache,
  ResilientInformer,
  type RunningCache,
  slimMetadata,
} from "../k8s/mod.ts";
import {
  BGP_CONFIGURATION_PLURAL,
  BGP_GROUP,
  BGP_VERSION,
  type BgpConfigurationObject,
} from "../bgp/mod.ts";
import {
  LB_NODE_AGENT_PLURAL,
  PURELB_GROUP,
  PURELB_VERSION,
  SERVICE_GROUP_PLURAL,
  SERVICE_NAME_LABEL,
} from "../k8s/types.ts";
import { type ServiceAnnouncement, serviceAnnouncement } from "./announce.ts";
import {
  agentLeaseView,
  agentServiceView,
  agentSliceView,
  nodeLabelsView,
  sliceServiceKey,
  specView,
} from "./relevance.ts";

/** A ServiceGroup or LBNodeAgent as listed: the agent narrows its spec itself. */
export type CustomObject = KubernetesObject & { readonly spec?: unknown };

/** The EndpointSlices cache, which can also read the slices of one Service on demand. */
export type SliceCache = ReloadableCache<V1EndpointSlice>;

/** The caches the agent controller reads, starts and stops. */
export interface AgentCaches {
  readonly services: RunningCache<V1Service>;
  /** Only the slices of Services whose announcement follows their endpoints. */
  readonly slices: SliceCache;
  readonly groups: RunningCache<CustomObject>;
  readonly agents: RunningCache<CustomObject>;
  /** Every Lease of the agent's namespace (node Leases and the allocator's). */
  readonly leases: RunningCache<V1Lease>;
  /**
   * This node's Node object (its labels choose the LBNodeAgent); empty when there is no such
   * Node, which counts as a node without labels.
   */
  readonly node: RunningCache<V1Node>;
}

/**
 * The {@link serviceAnnouncement} of each cached Service, read once per cached object (the
 * cache replaces an object on change and never mutates it). The slices cache asks it which
 * Services follow their endpoints; the controller asks it what to announce.
 */
export class ServiceAnnouncements {
  readonly #services: Cache<V1Service>;
  readonly #read = new WeakMap<V1Service, ServiceAnnouncement | null>();

  constructor(services: Cache<V1Service>) {
    this.#services = services;
  }

  /** The cached Service `namespace/name`. */
  service(serviceKey: string): V1Service | undefined {
    const [namespace = "", name = ""] = serviceKey.split("/");
    return this.#services.get(name, namespace);
  }

  /** The announcement of a cached Service; `undefined` when it announces nothing. */
  of(service: V1Service): ServiceAnnouncement | undefined {
    let known = this.#read.get(service);
    if (known === undefined) {
      known = serviceAnnouncement(service) ?? null;
      this.#read.set(service, known);
    }
    return known ?? undefined;
  }

  /** The announcement of the cached Service `namespace/name`. */
  byKey(serviceKey: string): ServiceAnnouncement | undefined {
    const service = this.service(serviceKey);
    return service === undefined ? undefined : this.of(service);
  }

  /** The announcements of every cached Service that has one. */
  list(): readonly ServiceAnnouncement[] {
    return this.#services.list().flatMap((service) => {
      const announcement = this.of(service);
      return announcement === undefined ? [] : [announcement];
    });
  }
}

/** What {@link agentInformers} builds. */
export interface AgentInformers {
  readonly caches: AgentCaches;
  /** Reads the Services cache; the slices cache already uses it. */
  readonly announcements: ServiceAnnouncements;
  /** The same informers, for the watch metrics. */
  readonly counts: readonly InformerCounts[];
}

const log = getLogger(["purelb", "agent"]);

/**
 * The real caches of the agent of node `nodeName`, whose Leases, ServiceGroups and LBNodeAgents
 * are in `namespace`.
 */
export function agentInformers(
  connection: ApiConnection,
  namespace: string,
  nodeName: string,
): AgentInformers {
  const onError = (what: string) => logWatchFailure(log, what);
  const purelbPath = (plural: string) =>
    `/apis/${PURELB_GROUP}/${PURELB_VERSION}/namespaces/${namespace}/${plural}`;
  const services = new ResilientInformer<V1Service>(connection, {
    name: "services",
    path: "/api/v1/services",
    transform: agentServiceView,
    onError: onError("services"),
  });
  const announcements = new ServiceAnnouncements(services);
  const slices = new ResilientInformer<V1EndpointSlice>(connection, {
    name: "endpointslices",
    path: "/apis/discovery.k8s.io/v1/endpointslices",
    labelSelector: SERVICE_NAME_LABEL,
    transform: (slice) => {
      const key = sliceServiceKey(slice);
      const matters = key !== undefined && announcements.byKey(key)?.localTrafficPolicy === true;
      return matters ? agentSliceView(slice) : undefined;
    },
    onError: onError("endpointslices"),
  });
  const groups = new ResilientInformer<CustomObject>(connection, {
    name: "servicegroups",
    path: purelbPath(SERVICE_GROUP_PLURAL),
    transform: specView,
    onError: onError("servicegroups"),
  });
  const agents = new ResilientInformer<CustomObject>(connection, {
    name: "lbnodeagents",
    path: purelbPath(LB_NODE_AGENT_PLURAL),
    transform: specView,
    onError: onError("lbnodeagents"),
  });
  const leases = new ResilientInformer<V1Lease>(connection, {
    name: "leases",
    path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
    transform: agentLeaseView,
    onError: onError("leases"),
  });
  const node = new ResilientInformer<V1Node>(connection, {
    name: "node",
    path: "/api/v1/nodes",
    objectName: nodeName,
    transform: nodeLabelsView,
    onError: onError("node"),
  });
  return {
    caches: { services, slices, groups, agents, leases, node },
    announcements,
    counts: [services, slices, groups, agents, leases, node],
  };
}

/** What the BGP controller reads besides the agent's own Node cache. */
export interface BgpInformers {
  /** The BGPConfigurations of the agent's namespace (spec, generation and conditions). */
  readonly configs: RunningCache<BgpConfigurationObject>;
  /** The password Secrets, each read by name (RBAC `resourceNames` can name exactly them). */
  readonly secrets: NamedObjectCaches<V1Secret>;
}

/** The real BGP caches of the agent in `namespace`. */
export function bgpInformers(connection: ApiConnection, namespace: string): BgpInformers {
  const onError = (what: string) => logWatchFailure(log, what);
  const configs = new ResilientInformer<BgpConfigurationObject>(connection, {
    name: "bgpconfigurations",
    path: `/apis/${BGP_GROUP}/${BGP_VERSION}/namespaces/${namespace}/${BGP_CONFIGURATION_PLURAL}`,
    transform: (object) => ({
      metadata: slimMetadata(object.metadata, { generation: true }),
      ...(object.spec === undefined ? {} : { spec: object.spec }),
      ...(object.status === undefined ? {} : { status: object.status }),
    }),
    onError: onError("bgpconfigurations"),
  });
  const secrets = new NamedObjectCaches<V1Secret>((name) =>
    new ResilientInformer<V1Secret>(connection, {
      name: "secret",
      path: `/api/v1/namespaces/${namespace}/secrets`,
      objectName: name,
      transform: (secret) => ({
        metadata: slimMetadata(secret.metadata),
        ...(secret.data === undefined ? {} : { data: secret.data }),
      }),
      onError: onError(`secret ${name}`),
    })
  );
  return { configs, secrets };
}
