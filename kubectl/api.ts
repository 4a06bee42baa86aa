/**
 * What the plugin reads from the API (lists only, nothing is written), and the one place that
 * turns a failed read into a message for a person: access denied, CRDs missing, unreachable.
 *
 * @module
 */

import type { CoreV1Event, V1Lease, V1Node, V1Service } from "@kubernetes/client-node";
import { apiStatusCode } from "../k8s/errors.ts";
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

/** A list to read: its path and how to name it in a message (`leases in purelb-system`). */
interface ListRequest {
  readonly path: string;
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly custom: boolean;
}

/**
 * The message for a failed list: 401 and 403 name the resource and namespace, a 404 on one of
 * our resources means the CRDs are not installed, no answer names the server.
 *
 * @example
 * ```ts
 * describeListError({ code: 403, message: "forbidden" }, "leases", "purelb-system", false);
 * // "access denied: cannot list leases in purelb-system (forbidden)"
 * ```
 */
export function describeListError(
  error: unknown,
  resource: string,
  namespace: string | undefined,
  custom: boolean,
  server?: string,
): string {
  const code = apiStatusCode(error);
  const detail = serverMessage(error);
  const where = namespace === undefined ? "in any namespace" : `in ${namespace}`;
  if (code === 403) return `access denied: cannot list ${resource} ${where} (${detail})`;
  if (code === 401) {
    return `not authenticated: the API server refused the credentials of the kubeconfig (${detail})`;
  }
  if (code === 404 && custom) {
    return `the PureLB CRDs are not installed: the API server has no ${resource}.${PURELB_GROUP}/` +
      `${PURELB_VERSION} (install deploy/crds/, see the README "Install on a cluster")`;
  }
  if (code === undefined) {
    return `cannot reach the API server${server ? ` at ${server}` : ""}: ${detail}`;
  }
  return `cannot list ${resource} ${where}: HTTP ${code} (${detail})`;
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
    throw new PluginError(
      describeListError(error, request.resource, request.namespace, request.custom, server),
    );
  }
  const items = typeof answer === "object" && answer !== null && "items" in answer
    ? answer.items
    : undefined;
  return Array.isArray(items) ? items as T[] : [];
}

const ns = (namespace: string) => encodeURIComponent(namespace);
const CUSTOM = `/apis/${PURELB_GROUP}/${PURELB_VERSION}`;

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
      custom: false,
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
      custom: false,
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
      custom: false,
    }, this.server);
  }

  /** ServiceGroups of `namespace`. */
  serviceGroups(namespace: string): Promise<ServiceGroupItem[]> {
    return list(this.get, {
      path: `${CUSTOM}/namespaces/${ns(namespace)}/${SERVICE_GROUP_PLURAL}`,
      resource: SERVICE_GROUP_PLURAL,
      namespace,
      custom: true,
    }, this.server);
  }

  /** LBNodeAgents of `namespace`. */
  nodeAgents(namespace: string): Promise<LBNodeAgentItem[]> {
    return list(this.get, {
      path: `${CUSTOM}/namespaces/${ns(namespace)}/${LB_NODE_AGENT_PLURAL}`,
      resource: LB_NODE_AGENT_PLURAL,
      namespace,
      custom: true,
    }, this.server);
  }

  /** Nodes, or `undefined` when this user may not list them (they only add "no Lease" lines). */
  async nodes(): Promise<V1Node[] | undefined> {
    try {
      return await list<V1Node>(this.get, {
        path: "/api/v1/nodes",
        resource: "nodes",
        namespace: undefined,
        custom: false,
      }, this.server);
    } catch (error) {
      if (error instanceof PluginError && /^access denied|^not authenticated/.test(error.message)) {
        return undefined;
      }
      throw error;
    }
  }
}
