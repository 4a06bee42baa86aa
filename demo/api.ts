/**
 * The few API calls the demo makes, as JSON over Deno's fetch: create objects from YAML (its
 * own and the BGP component's RBAC), read Services and Events, ask for service account tokens. Kept apart from `k8s/` on purpose:
 * the demo is a client like kubectl, not part of the programs.
 *
 * @module
 */

import type { CoreV1Event, V1Service } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import type { ClusterAccess } from "../k8s/config.ts";

/** An API call that did not succeed: method, path, HTTP status and the server's message. */
export class DemoApiError extends Error {
  override name = "DemoApiError";
  constructor(
    message: string,
    /** HTTP status, 0 when the request never got an answer. */
    readonly status: number,
  ) {
    super(message);
  }
}

const RBAC = "/apis/rbac.authorization.k8s.io/v1";

/** Where objects of the kinds the demo creates live in the API. */
const RESOURCES: Readonly<Record<string, { readonly base: string; readonly plural: string }>> = {
  "v1/Namespace": { base: "/api/v1", plural: "namespaces" },
  "v1/Service": { base: "/api/v1", plural: "services" },
  "purelb.io/v1/ServiceGroup": { base: "/apis/purelb.io/v1", plural: "servicegroups" },
  "purelb.io/v1/LBNodeAgent": { base: "/apis/purelb.io/v1", plural: "lbnodeagents" },
  "bgp.purelb.io/v1/BGPConfiguration": { base: "/apis/bgp.purelb.io/v1", plural: "configs" },
  // The BGP component's RBAC (deploy/components/bgp), applied as it is.
  "rbac.authorization.k8s.io/v1/Role": { base: RBAC, plural: "roles" },
  "rbac.authorization.k8s.io/v1/RoleBinding": { base: RBAC, plural: "rolebindings" },
  "rbac.authorization.k8s.io/v1/ClusterRole": { base: RBAC, plural: "clusterroles" },
  "rbac.authorization.k8s.io/v1/ClusterRoleBinding": { base: RBAC, plural: "clusterrolebindings" },
};

/** A Kubernetes object as read from YAML. */
export interface ManifestObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

/**
 * The objects of a multi-document YAML text, each checked for apiVersion, kind and name.
 *
 * @example
 * ```ts
 * const objects = parseManifests(await Deno.readTextFile("demo/services.yaml"), "services.yaml");
 * ```
 */
export function parseManifests(text: string, source: string): ManifestObject[] {
  const objects: ManifestObject[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) {
      throw new Error(`${source}: ${document.errors.map((e) => e.message).join("; ")}`);
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    const object = value as Partial<ManifestObject>;
    if (
      typeof object.apiVersion !== "string" || typeof object.kind !== "string" ||
      typeof object.metadata?.name !== "string"
    ) {
      throw new Error(`${source}: a document lacks apiVersion, kind or metadata.name`);
    }
    objects.push(object as ManifestObject);
  }
  return objects;
}

/** The collection path (for POST) of `object`; throws for a kind the demo does not know. */
export function collectionPath(object: ManifestObject): string {
  const resource = RESOURCES[`${object.apiVersion}/${object.kind}`];
  if (resource === undefined) {
    throw new Error(`the demo cannot create ${object.apiVersion} ${object.kind}`);
  }
  const namespace = object.metadata.namespace;
  return object.kind === "Namespace" || namespace === undefined
    ? `${resource.base}/${resource.plural}`
    : `${resource.base}/namespaces/${encodeURIComponent(namespace)}/${resource.plural}`;
}

/** JSON over HTTPS to one API server, as one user. Close it with {@linkcode DemoApi.close}. */
export class DemoApi {
  readonly #client: Deno.HttpClient;

  constructor(readonly access: ClusterAccess, readonly timeoutMs = 15_000) {
    this.#client = Deno.createHttpClient({
      ...(access.caPem ? { caCerts: [access.caPem] } : {}),
      ...(access.clientCertPem && access.clientKeyPem
        ? { cert: access.clientCertPem, key: access.clientKeyPem }
        : {}),
    });
  }

  /** Sends one request and returns the JSON answer; throws {@link DemoApiError} unless 2xx. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const token = this.access.bearerToken();
    let response: Response;
    try {
      response = await fetch(this.access.server + path, {
        method,
        client: this.#client,
        signal: AbortSignal.timeout(this.timeoutMs),
        headers: {
          accept: "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      throw new DemoApiError(`${method} ${path}: ${why}`, 0);
    }
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      try {
        const status: unknown = JSON.parse(text);
        if (typeof status === "object" && status !== null && "message" in status) {
          message = String(status.message);
        }
      } catch { /* not JSON: keep the text */ }
      throw new DemoApiError(`${method} ${path}: ${response.status} ${message}`, response.status);
    }
    return JSON.parse(text) as T;
  }

  /** Creates every object of a YAML file, in order. */
  async createFromYaml(path: string): Promise<ManifestObject[]> {
    const objects = parseManifests(await Deno.readTextFile(path), path);
    for (const object of objects) await this.request("POST", collectionPath(object), object);
    return objects;
  }

  /** The Services of `namespace`. */
  async services(namespace: string): Promise<V1Service[]> {
    const list = await this.request<{ items?: V1Service[] }>(
      "GET",
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/services`,
    );
    return list.items ?? [];
  }

  /** The Events of `namespace` with `reason`. */
  async events(namespace: string, reason: string): Promise<CoreV1Event[]> {
    const selector = encodeURIComponent(`reason=${reason}`);
    const list = await this.request<{ items?: CoreV1Event[] }>(
      "GET",
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/events?fieldSelector=${selector}`,
    );
    return list.items ?? [];
  }

  /** A token for service account `namespace/name` from the TokenRequest API. */
  async serviceAccountToken(namespace: string, name: string, seconds: number): Promise<string> {
    const answer = await this.request<{ status?: { token?: string } }>(
      "POST",
      `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${
        encodeURIComponent(name)
      }/token`,
      {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: { expirationSeconds: seconds },
      },
    );
    const token = answer.status?.token;
    if (!token) throw new DemoApiError(`no token for service account ${namespace}/${name}`, 0);
    return token;
  }

  close(): void {
    this.#client.close();
  }
}
