/**
 * Where the API server is and who we are: in-cluster service account when running in a Pod,
 * otherwise a kubeconfig file (`--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`).
 *
 * @module
 */

import { KubeConfig } from "@kubernetes/client-node";

/** The service account folder Kubernetes mounts into every Pod. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** How the client found its configuration. */
export type ClientConfigSource =
  | { readonly kind: "in-cluster" }
  | { readonly kind: "kubeconfig"; readonly path: string };

/** A loaded client configuration and where it came from. */
export interface ClientConfig {
  readonly kubeConfig: KubeConfig;
  readonly source: ClientConfigSource;
  /** The namespace of the in-cluster service account, or of the kubeconfig's current context. */
  readonly namespace: string | undefined;
}

/** Raised when no usable configuration exists; the message lists what was tried. */
export class ClientConfigError extends Error {
  override name = "ClientConfigError";
}

/** What {@linkcode loadClientConfig} reads from the environment, injectable for tests. */
export interface ClientConfigEnvironment {
  readonly env: (name: string) => string | undefined;
  readonly fileExists: (path: string) => boolean;
  readonly readFile: (path: string) => string;
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
 * const { kubeConfig, source } = loadClientConfig({ kubeconfig: "/tmp/kubeconfig" });
 * ```
 */
export function loadClientConfig(
  opts: { readonly kubeconfig?: string | undefined } = {},
  environment: ClientConfigEnvironment = realEnvironment,
): ClientConfig {
  const kubeConfig = new KubeConfig();
  const explicit = opts.kubeconfig || environment.env("KUBECONFIG");
  if (!opts.kubeconfig && isInCluster(environment)) {
    kubeConfig.loadFromCluster();
    const namespaceFile = `${SERVICE_ACCOUNT_DIR}/namespace`;
    const namespace = environment.fileExists(namespaceFile)
      ? environment.readFile(namespaceFile).trim()
      : undefined;
    return { kubeConfig, source: { kind: "in-cluster" }, namespace };
  }
  const home = environment.env("HOME");
  const candidates = explicit
    ? explicit.split(":").filter((p) => p !== "")
    : home
    ? [`${home}/.kube/config`]
    : [];
  const path = candidates.find((p) => environment.fileExists(p));
  if (!path) {
    throw new ClientConfigError(
      `no Kubernetes configuration: not in a cluster (KUBERNETES_SERVICE_HOST unset or no ` +
        `service account token) and no kubeconfig file at ${
          candidates.join(", ") || "(none given)"
        }; pass --kubeconfig or set KUBECONFIG`,
    );
  }
  try {
    kubeConfig.loadFromString(environment.readFile(path));
  } catch (error) {
    throw new ClientConfigError(
      `cannot read kubeconfig ${path}: ${error instanceof Error ? error.message : error}`,
    );
  }
  if (!kubeConfig.getCurrentCluster()) {
    throw new ClientConfigError(`kubeconfig ${path} has no current context with a cluster`);
  }
  const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
  return { kubeConfig, source: { kind: "kubeconfig", path }, namespace: context?.namespace };
}

/** True inside a Pod: the API service is in the environment and the token is mounted. */
export function isInCluster(environment: ClientConfigEnvironment = realEnvironment): boolean {
  return Boolean(environment.env("KUBERNETES_SERVICE_HOST")) &&
    environment.fileExists(`${SERVICE_ACCOUNT_DIR}/token`);
}
