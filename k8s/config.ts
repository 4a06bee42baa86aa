/**
 * Where the API server is and who we are: the in-cluster service account when running in a Pod,
 * otherwise a kubeconfig file (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`).
 *
 * We read kubeconfig files ourselves (bearer tokens, token files, client certificates, CA)
 * rather than through client-node's KubeConfig, whose module graph reads the whole environment
 * when it loads and so cannot run under a restricted `--allow-env` list.
 *
 * @module
 */

import { parse as parseYaml } from "yaml";
import { dirname, isAbsolute, join } from "node:path";

/** The service account folder Kubernetes mounts into every Pod. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** How long an in-cluster token read from disk is reused (kubelet rotates the file). */
const TOKEN_FILE_REFRESH_MS = 60_000;

/** Everything needed to reach and authenticate to one API server. */
export interface ClusterAccess {
  /** `https://host:port` */
  readonly server: string;
  /** PEM of the CA that signs the API server's certificate (system roots when absent). */
  readonly caPem?: string;
  /** Client certificate authentication, when the user has one. */
  readonly clientCertPem?: string;
  readonly clientKeyPem?: string;
  /** The bearer token to send, read fresh from its file when it has one. */
  bearerToken(): string | undefined;
}

/** How the client found its configuration. */
export type ClientConfigSource =
  | { readonly kind: "in-cluster" }
  | { readonly kind: "kubeconfig"; readonly path: string };

/** A loaded client configuration and where it came from. */
export interface ClientConfig {
  readonly access: ClusterAccess;
  readonly source: ClientConfigSource;
  /** The namespace of the in-cluster service account, or of the kubeconfig's current context. */
  readonly namespace: string | undefined;
}

/** Raised when no usable configuration exists; the message says what was tried or what is wrong. */
export class ClientConfigError extends Error {
  override name = "ClientConfigError";
}

/** What {@linkcode loadClientConfig} reads from the environment, injectable for tests. */
export interface ClientConfigEnvironment {
  readonly env: (name: string) => string | undefined;
  readonly fileExists: (path: string) => boolean;
  readonly readFile: (path: string) => string;
  readonly now?: () => number;
}

const realEnvironment: ClientConfigEnvironment = {
  env: (name) => Deno.env.get(name),
  fileExists: (path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  },
  readFile: (path) => Deno.readTextFileSync(path),
};

/**
 * Loads the client configuration. An explicit kubeconfig wins; otherwise in-cluster config is
 * used when `KUBERNETES_SERVICE_HOST` is set and the service account token exists; otherwise
 * `KUBECONFIG` or `~/.kube/config`.
 *
 * @example
 * ```ts
 * const { access, source } = loadClientConfig({ kubeconfig: "/tmp/kubeconfig" });
 * ```
 */
export function loadClientConfig(
  opts: { readonly kubeconfig?: string | undefined } = {},
  environment: ClientConfigEnvironment = realEnvironment,
): ClientConfig {
  if (!opts.kubeconfig && isInCluster(environment)) {
    const namespaceFile = `${SERVICE_ACCOUNT_DIR}/namespace`;
    return {
      access: inClusterAccess(environment),
      source: { kind: "in-cluster" },
      namespace: environment.fileExists(namespaceFile)
        ? environment.readFile(namespaceFile).trim()
        : undefined,
    };
  }
  const candidates = kubeconfigCandidates(opts.kubeconfig, {
    KUBECONFIG: environment.env("KUBECONFIG"),
    HOME: environment.env("HOME"),
  });
  const path = candidates.find((p) => environment.fileExists(p));
  if (!path) {
    throw new ClientConfigError(
      `no Kubernetes configuration: not in a cluster (KUBERNETES_SERVICE_HOST unset or no ` +
        `service account token) and no kubeconfig file at ${
          candidates.join(", ") || "(none given)"
        }; pass --kubeconfig or set KUBECONFIG`,
    );
  }
  const { access, namespace } = parseKubeconfig(environment.readFile(path), path, environment);
  return { access, source: { kind: "kubeconfig", path }, namespace };
}

/** True inside a Pod: the API service is in the environment and the token is mounted. */
export function isInCluster(environment: ClientConfigEnvironment = realEnvironment): boolean {
  return Boolean(environment.env("KUBERNETES_SERVICE_HOST")) &&
    environment.fileExists(`${SERVICE_ACCOUNT_DIR}/token`);
}

function inClusterAccess(environment: ClientConfigEnvironment): ClusterAccess {
  const host = environment.env("KUBERNETES_SERVICE_HOST") ?? "";
  const port = environment.env("KUBERNETES_SERVICE_PORT") ?? "443";
  const caFile = `${SERVICE_ACCOUNT_DIR}/ca.crt`;
  return {
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    ...(environment.fileExists(caFile) ? { caPem: environment.readFile(caFile) } : {}),
    bearerToken: tokenFileReader(`${SERVICE_ACCOUNT_DIR}/token`, environment),
  };
}

function tokenFileReader(path: string, environment: ClientConfigEnvironment): () => string {
  const now = environment.now ?? Date.now;
  let cached = { token: "", readAt: -Infinity };
  return () => {
    if (now() - cached.readAt > TOKEN_FILE_REFRESH_MS) {
      cached = { token: environment.readFile(path).trim(), readAt: now() };
    }
    return cached.token;
  };
}

/**
 * Reads the current context of a kubeconfig: server, CA, and a bearer token, token file or
 * client certificate. Exec plugins and auth providers are refused with a clear message.
 *
 * @example
 * ```ts
 * const path = "/tmp/kubeconfig";
 * const { access } = parseKubeconfig(Deno.readTextFileSync(path), path);
 * ```
 */
export function parseKubeconfig(
  text: string,
  path: string,
  environment: ClientConfigEnvironment = realEnvironment,
): { access: ClusterAccess; namespace: string | undefined } {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new ClientConfigError(
      `kubeconfig ${path} is not YAML: ${error instanceof Error ? error.message : error}`,
    );
  }
  const config = record(document);
  const currentContext = stringField(config, "current-context");
  const context = record(findNamed(config["contexts"], currentContext)?.["context"]);
  const cluster = record(
    findNamed(config["clusters"], stringField(context, "cluster"))?.["cluster"],
  );
  const user = record(findNamed(config["users"], stringField(context, "user"))?.["user"]);
  const server = stringField(cluster, "server");
  if (!currentContext || !server) {
    throw new ClientConfigError(`kubeconfig ${path} has no current context with a cluster server`);
  }
  if (cluster["insecure-skip-tls-verify"] === true) {
    throw new ClientConfigError(
      `kubeconfig ${path}: insecure-skip-tls-verify is not supported; give certificate-authority`,
    );
  }
  if (user["exec"] !== undefined || user["auth-provider"] !== undefined) {
    throw new ClientConfigError(
      `kubeconfig ${path}: exec and auth-provider users are not supported; use a token, a ` +
        `token file or a client certificate`,
    );
  }
  const base = dirname(path);
  const file = (name: string | undefined) =>
    name === undefined
      ? undefined
      : environment.readFile(isAbsolute(name) ? name : join(base, name));
  const pem = (dataKey: string, fileKey: string) => {
    const data = stringField(cluster, dataKey) ?? stringField(user, dataKey);
    return data !== undefined
      ? atob(data)
      : file(stringField(cluster, fileKey) ?? stringField(user, fileKey));
  };
  const caPem = pem("certificate-authority-data", "certificate-authority");
  const clientCertPem = pem("client-certificate-data", "client-certificate");
  const clientKeyPem = pem("client-key-data", "client-key");
  const token = stringField(user, "token");
  const tokenFile = stringField(user, "tokenFile");
  const bearerToken = token !== undefined
    ? () => token
    : tokenFile !== undefined
    ? tokenFileReader(isAbsolute(tokenFile) ? tokenFile : join(base, tokenFile), environment)
    : () => undefined;
  return {
    access: {
      server,
      ...(caPem === undefined ? {} : { caPem }),
      ...(clientCertPem === undefined || clientKeyPem === undefined
        ? {}
        : { clientCertPem, clientKeyPem }),
      bearerToken,
    },
    namespace: stringField(context, "namespace"),
  };
}

/**
 * A kubeconfig (JSON, which is YAML) for `access` with a fixed token: for handing a service
 * account's identity to a process.
 */
export function kubeconfigText(access: ClusterAccess, namespace?: string): string {
  const token = access.bearerToken();
  return JSON.stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{
        name: "cluster",
        cluster: {
          server: access.server,
          ...(access.caPem ? { "certificate-authority-data": btoa(access.caPem) } : {}),
        },
      }],
      users: [{
        name: "user",
        user: {
          ...(token ? { token } : {}),
          ...(access.clientCertPem && access.clientKeyPem
            ? {
              "client-certificate-data": btoa(access.clientCertPem),
              "client-key-data": btoa(access.clientKeyPem),
            }
            : {}),
        },
      }],
      contexts: [{
        name: "context",
        context: { cluster: "cluster", user: "user", ...(namespace ? { namespace } : {}) },
      }],
      "current-context": "context",
    },
    null,
    2,
  ) + "\n";
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null ? value as Record<string, unknown> : {};
}

function stringField(object: Record<string, unknown>, key: string): string | undefined {
  const value = object[key];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function findNamed(list: unknown, name: string | undefined): Record<string, unknown> | undefined {
  if (!Array.isArray(list) || name === undefined) return undefined;
  return list.map(record).find((entry) => entry["name"] === name);
}

/**
 * The kubeconfig files `--kubeconfig`, else `KUBECONFIG` (colon separated), else
 * `~/.kube/config` would be looked for in.
 *
 * @example
 * ```ts
 * kubeconfigCandidates(undefined, { KUBECONFIG: "/a:/b" }); // ["/a", "/b"]
 * ```
 */
export function kubeconfigCandidates(
  explicit: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
): string[] {
  const list = explicit || env["KUBECONFIG"];
  if (list) return list.split(":").filter((p) => p !== "");
  return env["HOME"] ? [`${env["HOME"]}/.kube/config`] : [];
}
