/**
 * What the plugin reads from the API (lists only, nothing is written), and the one place that
 * turns a failed read into a message for a person: access denied, CRDs missing, unreachable.
 *
 * The reads, which is the RBAC a user of the plugin needs (`list` on each):
 * - `status`: `services` and `events` (core, the Services' namespace or all), `leases`
 *   (`coordination.k8s.io`) and `lbnodeagents` (`purelb.io`) in the PureLB namespace
 * - `pools`: `servicegroups` (`purelb.io`) in the PureLB namespace
 * - `election`: `leases` in the PureLB namespace, and `nodes` when allowed (optional)
 * - `bgp`: `bgpnodestatuses` (`bgp.purelb.io`, cluster-scoped) and `configs` (`bgp.purelb.io`)
 *   in the PureLB namespace
 *
 * @module
 */

import type { CoreV1Event, V1Lease, V1Node, V1Service } from "@kubernetes/client-node";
import { apiStatusCode } from "../k8s/errors.ts";
import {
  BGP_CONFIGURATION_PLURAL,
  BGP_GROUP,
  BGP_NODE_STATUS_PLURAL,
  BGP_VERSION,
} from "../bgp/model.ts";
import type { Condition, NodeBgpStatus } from "../bgp/status.ts";
import {
  LB_NODE_AGENT_PLURAL,
  type LBNodeAgentLocalSpec,
  PURELB_GROUP,
  PURELB_VERSION,
  SERVICE_GROUP_PLURAL,
  type ServiceGroupStatus,
} from "../k8s/types.ts";

/** GETs one path of the API server and returns the JSON (both `ApiConnection` and the demo's client fit). */
export type ApiGet = (path: string) => Promise<unknown>;

/** A read the plugin could not do, with a message that says what and why (no stack trace). */
export class PluginError extends Error {
  override name = "PluginError";
}

/** One ServiceGroup as the plugin reads it. */
export interface ServiceGroupItem {
  readonly metadata?: { readonly name?: string; readonly creationTimestamp?: string };
  readonly spec?: unknown;
  readonly status?: ServiceGroupStatus;
}

/** One LBNodeAgent as the plugin reads it. */
export interface LBNodeAgentItem {
  readonly metadata?: { readonly name?: string };
  readonly spec?: { readonly local?: LBNodeAgentLocalSpec };
}

/** One BGPNodeStatus as the plugin reads it (any field may be missing before the agent writes it). */
export interface BgpNodeStatusItem {
  readonly metadata?: { readonly name?: string };
  readonly status?: Partial<NodeBgpStatus>;
}

/** One BGPConfiguration as the plugin reads it: only its name and conditions matter here. */
export interface BgpConfigurationItem {
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly status?: { readonly conditions?: readonly Condition[] };
}

/** The API group of one of our CRDs: PureLB's own, or the BGP ones. */
export type CrdGroup = "purelb" | "bgp";

/** What a list was of, to name it in a message (`leases in purelb-system`). */
export interface ListTarget {
  /** The plural, e.g. `leases`. */
  readonly resource: string;
  /** The namespace read; `undefined` for every namespace (or none, see `clusterScoped`). */
  readonly namespace?: string | undefined;
  /** A cluster-scoped resource (`nodes`, `bgpnodestatuses`): no namespace to name. */
  readonly clusterScoped?: boolean;
  /** Set for one of our CRDs: a 404 then means that CRD is not installed. */
  readonly crd?: CrdGroup;
}

/** A list to read: its path and what to call it in a message. */
interface ListRequest extends ListTarget {
  readonly path: string;
}

const CRD_VERSIONS: Readonly<Record<CrdGroup, string>> = {
  purelb: `${PURELB_GROUP}/${PURELB_VERSION}`,
  bgp: `${BGP_GROUP}/${BGP_VERSION}`,
};

/**
 * The message for a failed list: 401 and 403 name the resource and namespace, a 404 on one of
 * our resources means its CRDs are not installed (for the BGP ones: BGP was never installed),
 * no answer names the server.
 *
 * @example
 * ```ts
 * describeListError({ code: 403, message: "forbidden" }, {
 *   resource: "leases",
 *   namespace: "purelb-system",
 * });
 * // "access denied: cannot list leases in purelb-system (forbidden)"
 * ```
 */
export function describeListError(error: unknown, target: ListTarget, server?: string): string {
  const code = apiStatusCode(error);
  const detail = serverMessage(error);
  const { resource, namespace, crd } = target;
  const where = target.clusterScoped
    ? ""
    : namespace === undefined
    ? " in any namespace"
    : ` in ${namespace}`;
  if (code === 403) return `access denied: cannot list ${resource}${where} (${detail})`;
  if (code === 401) {
    return `not authenticated: the API server refused the credentials of the kubeconfig (${detail})`;
  }
  if (code === 404 && crd === "bgp") {
    return `BGP is not installed: the API server has no ${resource}.${CRD_VERSIONS.bgp} (its ` +
      `CRDs are in deploy/crds/; turn BGP on with kubectl apply -k deploy/with-bgp, or the Helm ` +
      `chart with --set bgp.enabled=true, see the README "BGP and BFD")`;
  }
  if (code === 404 && crd === "purelb") {
    return `the PureLB CRDs are not installed: the API server has no ${resource}.` +
      `${CRD_VERSIONS.purelb} (install deploy/crds/, see the README "Install on a cluster")`;
  }
  if (code === undefined) {
    return `cannot reach the API server${server ? ` at ${server}` : ""}: ${detail}`;
  }
  return `cannot list ${resource}${where}: HTTP ${code} (${detail})`;
}

function serverMessage(error: unknown): string {
  if (typeof error === "object" && error !== null) {
    const body = (error as { body?: unknown }).body;
    if (typeof body === "object" && body !== null && "message" in body) {
      return String(body.message);
    }
    if ("message" in error) return String(error.message);
  }
  return String(error);
}

async function list<T>(get: ApiGet, request: ListRequest, server?: string): Promise<T[]> {
  let answer: unknown;
  try {
    answer = await get(request.path);
  } catch (error) {
    throw new PluginError(describeListError(error, request, server));
  }
  const items = typeof answer === "object" && answer !== null && "items" in answer
    ? answer.items
    : undefined;
  return Array.isArray(items) ? items as T[] : [];
}

const ns = (namespace: string) => encodeURIComponent(namespace);
const CUSTOM = `/apis/${PURELB_GROUP}/${PURELB_VERSION}`;
const BGP = `/apis/${BGP_GROUP}/${BGP_VERSION}`;

/** The plugin's reads, each a list. */
export class PluginReader {
  /**
   * @param get the GET of a connection
   * @param server named in the message when the server cannot be reached
   */
  constructor(readonly get: ApiGet, readonly server?: string) {}

  /** Node Leases (and any other Lease) of `namespace`. */
  leases(namespace: string): Promise<V1Lease[]> {
    return list(this.get, {
      path: `/apis/coordination.k8s.io/v1/namespaces/${ns(namespace)}/leases`,
      resource: "leases",
      namespace,
    }, this.server);
  }

  /** Services of one namespace, or of all. */
  services(namespace: string | undefined): Promise<V1Service[]> {
    return list(this.get, {
      path: namespace === undefined
        ? "/api/v1/services"
        : `/api/v1/namespaces/${ns(namespace)}/services`,
      resource: "services",
      namespace,
    }, this.server);
  }

  /** `AllocationFailed` events of one namespace, or of all. */
  allocationFailures(namespace: string | undefined): Promise<CoreV1Event[]> {
    const selector = `?fieldSelector=${encodeURIComponent("reason=AllocationFailed")}`;
    return list(this.get, {
      path: (namespace === undefined
        ? "/api/v1/events"
        : `/api/v1/namespaces/${ns(namespace)}/events`) +
        selector,
      resource: "events",
      namespace,
    }, this.server);
  }

  /** ServiceGroups of `namespace`. */
  serviceGroups(namespace: string): Promise<ServiceGroupItem[]> {
    return list(this.get, {
      path: `${CUSTOM}/namespaces/${ns(namespace)}/${SERVICE_GROUP_PLURAL}`,
      resource: SERVICE_GROUP_PLURAL,
      namespace,
      crd: "purelb",
    }, this.server);
  }

  /** LBNodeAgents of `namespace`. */
  nodeAgents(namespace: string): Promise<LBNodeAgentItem[]> {
    return list(this.get, {
      path: `${CUSTOM}/namespaces/${ns(namespace)}/${LB_NODE_AGENT_PLURAL}`,
      resource: LB_NODE_AGENT_PLURAL,
      namespace,
      crd: "purelb",
    }, this.server);
  }

  /** Every BGPNodeStatus (cluster-scoped, one per node running BGP). */
  bgpNodeStatuses(): Promise<BgpNodeStatusItem[]> {
    return list(this.get, {
      path: `${BGP}/${BGP_NODE_STATUS_PLURAL}`,
      resource: BGP_NODE_STATUS_PLURAL,
      clusterScoped: true,
      crd: "bgp",
    }, this.server);
  }

  /** BGPConfigurations of `namespace`. */
  bgpConfigurations(namespace: string): Promise<BgpConfigurationItem[]> {
    return list(this.get, {
      path: `${BGP}/namespaces/${ns(namespace)}/${BGP_CONFIGURATION_PLURAL}`,
      resource: BGP_CONFIGURATION_PLURAL,
      namespace,
      crd: "bgp",
    }, this.server);
  }

  /** Nodes, or `undefined` when this user may not list them (they only add "no Lease" lines). */
  async nodes(): Promise<V1Node[] | undefined> {
    try {
      return await list<V1Node>(this.get, {
        path: "/api/v1/nodes",
        resource: "nodes",
        clusterScoped: true,
      }, this.server);
    } catch (error) {
      if (error instanceof PluginError && /^access denied|^not authenticated/.test(error.message)) {
        return undefined;
      }
      throw error;
    }
  }
}
