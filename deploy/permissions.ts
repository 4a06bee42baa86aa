/**
 * The Deno permission sets of the two programs: the single source for `deno task allocator`,
 * `deno task agent`, `deno task compile` and the tests that prove the limits hold.
 *
 * @module
 */

import { FLAGS as ALLOCATOR_FLAGS } from "../allocator/config.ts";

/** Where Kubernetes mounts the service account token, CA and namespace. */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Environment variables every program may read besides its own flags' fallbacks. */
const COMMON_ENV = [
  "KUBECONFIG",
  "HOME",
  "HOSTNAME",
  "KUBERNETES_SERVICE_HOST",
  "KUBERNETES_SERVICE_PORT",
  // Read by the npm libraries we load: undici (client-node), prom-client, yaml.
  "UNDICI_NO_WASM_SIMD",
  "UNDICI_USE_MILO",
  "NODE_APP_INSTANCE",
  "LOG_TOKENS",
  "LOG_STREAM",
] as const;

/** The allocator: network, a short list of variables, the service account files. Nothing else. */
export function allocatorPermissions(kubeconfig: string | undefined): string[] {
  const env = [...COMMON_ENV, ...Object.values(ALLOCATOR_FLAGS).map((f) => f.env)];
  const read = [SERVICE_ACCOUNT_DIR, ...(kubeconfig ? [kubeconfig] : [])];
  return [
    "--allow-net",
    `--allow-env=${[...new Set(env)].sort().join(",")}`,
    `--allow-read=${read.join(",")}`,
    "--deny-run",
    "--deny-write",
    "--deny-ffi",
    "--deny-sys",
  ];
}
