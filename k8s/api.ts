/**
 * The API calls our programs make, as plain JSON over {@linkcode ApiConnection.request}.
 *
 * The method names and parameters match client-node's generated API classes, so code (and
 * tests) can use either; these return the JSON the API server sent (dates stay RFC 3339 text)
 * and load none of client-node's 1,000 generated models, which cost the programs tens of
 * megabytes of memory and most of their CPU time per write.
 *
 * Writes are JSON merge patches of the fields we own: no read-modify-write races with other
 * writers of the rest of the object.
 *
 * @module
 */

import type { CoreV1Event, V1Lease, V1Service, V1Status } from "@kubernetes/client-node";
import type { ApiConnection } from "./transport.ts";

const MERGE_PATCH = "application/merge-patch+json";

function segment(value: string): string {
  return encodeURIComponent(value);
}

/** Core (v1) calls: Services and Events. */
export class CoreApi {
  constructor(readonly connection: ApiConnection) {}

  /** A JSON merge patch of the status subresource (metadata included, spec ignored). */
  patchNamespacedServiceStatus(
    param: { namespace: string; name: string; body: unknown },
  ): Promise<V1Service> {
    return this.connection.request(
      "PATCH",
      `/api/v1/namespaces/${segment(param.namespace)}/services/${segment(param.name)}/status`,
      { body: param.body, contentType: MERGE_PATCH },
    );
  }

  createNamespacedEvent(param: { namespace: string; body: CoreV1Event }): Promise<CoreV1Event> {
    return this.connection.request(
      "POST",
      `/api/v1/namespaces/${segment(param.namespace)}/events`,
      { body: param.body },
    );
  }

  /** A JSON merge patch of an Event. */
  patchNamespacedEvent(
    param: { namespace: string; name: string; body: unknown },
  ): Promise<CoreV1Event> {
    return this.connection.request(
      "PATCH",
      `/api/v1/namespaces/${segment(param.namespace)}/events/${segment(param.name)}`,
      { body: param.body, contentType: MERGE_PATCH },
    );
  }
}

/**
 * A Lease time (`renewTime`, `acquireTime`): a `Date` that is written with microseconds, the
 * only form the API server accepts for a MicroTime field.
 *
 * @example
 * ```ts
 * import { MicroTime } from "./api.ts";
 *
 * const text = JSON.stringify(new MicroTime("2026-12-01T10:00:00.123Z"));
 * if (text !== '"2026-12-01T10:00:00.123000Z"') throw new Error(text);
 * ```
 */
export class MicroTime extends Date {
  override toISOString(): string {
    return super.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
  }
}

/** Leases (coordination.k8s.io/v1). */
export class CoordinationApi {
  constructor(readonly connection: ApiConnection) {}

  #path(namespace: string, name?: string): string {
    const base = `/apis/coordination.k8s.io/v1/namespaces/${segment(namespace)}/leases`;
    return name === undefined ? base : `${base}/${segment(name)}`;
  }

  readNamespacedLease(param: { namespace: string; name: string }): Promise<V1Lease> {
    return this.connection.request("GET", this.#path(param.namespace, param.name));
  }

  createNamespacedLease(param: { namespace: string; body: V1Lease }): Promise<V1Lease> {
    return this.connection.request("POST", this.#path(param.namespace), { body: param.body });
  }

  replaceNamespacedLease(
    param: { namespace: string; name: string; body: V1Lease },
  ): Promise<V1Lease> {
    return this.connection.request("PUT", this.#path(param.namespace, param.name), {
      body: param.body,
    });
  }

  deleteNamespacedLease(param: { namespace: string; name: string }): Promise<V1Status> {
    return this.connection.request("DELETE", this.#path(param.namespace, param.name));
  }
}

/** Custom resources (ServiceGroups, LBNodeAgents, BGPConfigurations, BGPNodeStatuses). */
export class CustomObjectsLiteApi {
  constructor(readonly connection: ApiConnection) {}

  /** A JSON merge patch of the status subresource. */
  patchNamespacedCustomObjectStatus(
    param: {
      group: string;
      version: string;
      namespace: string;
      plural: string;
      name: string;
      body: unknown;
    },
  ): Promise<unknown> {
    return this.connection.request(
      "PATCH",
      `/apis/${param.group}/${param.version}/namespaces/${segment(param.namespace)}/` +
        `${param.plural}/${segment(param.name)}/status`,
      { body: param.body, contentType: MERGE_PATCH },
    );
  }

  /** Creates a cluster-scoped custom object (its status is ignored; patch it afterwards). */
  createClusterCustomObject(
    param: { group: string; version: string; plural: string; body: unknown },
  ): Promise<unknown> {
    return this.connection.request(
      "POST",
      `/apis/${param.group}/${param.version}/${param.plural}`,
      { body: param.body },
    );
  }

  /** A JSON merge patch of the status subresource of a cluster-scoped custom object. */
  patchClusterCustomObjectStatus(
    param: { group: string; version: string; plural: string; name: string; body: unknown },
  ): Promise<unknown> {
    return this.connection.request(
      "PATCH",
      `/apis/${param.group}/${param.version}/${param.plural}/${segment(param.name)}/status`,
      { body: param.body, contentType: MERGE_PATCH },
    );
  }
}
