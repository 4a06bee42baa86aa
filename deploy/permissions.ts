/**
 * The Deno permission sets of the two programs: the single source for `deno task allocator`,
 * `deno task agent`, `deno task compile` and the tests that prove the limits hold.
 *
 * @module
 */

import { FLAGS as ALLOCATOR_FLAGS, NETBOX_TOKEN_ENV } from "../allocator/config.ts";
import { FLAGS as AGENT_FLAGS } from "../agent/config.ts";
import { ARPING_PATHS, IP_PATHS, NA6_PATHS } from "../netlink/mod.ts";
import { BIRDC_PATHS } from "../bgp/model.ts";

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
  const env = [
    ...COMMON_ENV,
    NETBOX_TOKEN_ENV,
    ...Object.values(ALLOCATOR_FLAGS).map((f) => f.env),
  ];
  const read = [SERVICE_ACCOUNT_DIR, ...(kubeconfig ? [kubeconfig] : [])];
  return [
    "--allow-net",
    `--allow-env=${[...new Set(env)].sort().join(",")}`,
    `--allow-read=${read.join(",")}`,
    "--deny-run",
    "--deny-write",
    "--deny-ffi",
    "--deny-sys",
    MEMORY_FLAGS,
  ];
}

/**
 * The folder the agent shares with BIRD when BGP is on (`--bgp-dir`; the emptyDir the manifests
 * mount there): the agent writes `bird.conf` in it, BIRD puts its control socket `bird.ctl` there.
 */
export const DEFAULT_BGP_DIR = "/run/purelb-bgp";

/** What may differ in the agent's permission set (from the launcher's command line). */
export interface AgentPermissionOptions {
  /** The BGP folder the agent may read and write (`--bgp-dir`); default {@linkcode DEFAULT_BGP_DIR}. */
  readonly bgpDir?: string | undefined;
  /** The `birdc` the agent may run (`--birdc`); default the first existing of `BIRDC_PATHS`. */
  readonly birdc?: string | undefined;
}

/** The first existing file of `paths`, in order. */
function firstExisting(paths: readonly string[]): string | undefined {
  return paths.find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
}

/**
 * The first existing path of each helper the agent may run (`ip`, iputils `arping`, `na6`,
 * BIRD's `birdc` unless one is given), in the order the agent looks them up, and every candidate
 * path (the agent `stat`s them).
 */
function agentExecutables(
  birdc: string | undefined,
): { readonly run: string[]; readonly candidates: string[] } {
  const run: string[] = [];
  for (const list of [IP_PATHS, ARPING_PATHS, NA6_PATHS]) {
    const found = firstExisting(list);
    if (found !== undefined) run.push(found);
  }
  const bird = birdc ?? firstExisting(BIRDC_PATHS);
  if (bird !== undefined) run.push(bird);
  const candidates = [IP_PATHS, ARPING_PATHS, NA6_PATHS, BIRDC_PATHS].flat();
  if (birdc !== undefined && !candidates.includes(birdc)) candidates.push(birdc);
  return { run, candidates };
}

/**
 * The agent: network, a short list of variables, the service account files, the kubeconfig,
 * `stat` of the helper paths, running exactly `ip`, `arping`, `na6` and `birdc` by absolute
 * path, and reading and writing the BGP folder (nothing else is writable).
 *
 * @example
 * ```ts
 * const flags = agentPermissions("/tmp/kubeconfig"); // ["--allow-net", "--allow-env=...", ...]
 * const dev = agentPermissions(undefined, { bgpDir: "/tmp/bgp", birdc: "/opt/bird/sbin/birdc" });
 * ```
 */
export function agentPermissions(
  kubeconfig: string | undefined,
  opts: AgentPermissionOptions = {},
): string[] {
  const env = [
    ...COMMON_ENV,
    ...Object.values(AGENT_FLAGS).map((f) => f.env),
  ];
  const bgpDir = opts.bgpDir ?? DEFAULT_BGP_DIR;
  const { run, candidates } = agentExecutables(opts.birdc);
  const read = [SERVICE_ACCOUNT_DIR, ...(kubeconfig ? [kubeconfig] : []), ...candidates, bgpDir];
  return [
    "--allow-net",
    `--allow-env=${[...new Set(env)].sort().join(",")}`,
    `--allow-read=${read.join(",")}`,
    ...(run.length > 0 ? [`--allow-run=${run.join(",")}`] : ["--deny-run"]),
    `--allow-write=${bgpDir}`,
    "--deny-ffi",
    "--deny-sys",
    MEMORY_FLAGS,
  ];
}

/**
 * Both programs run under tight memory limits (the agent on every node; PureLB's DaemonSet
 * allows 100 MB): a small young generation and a heap cap make V8 collect before the container
 * limit is near. With them the allocator's peak RSS with 1,000 Services fell from 143 to 105 MB.
 */
export const MEMORY_FLAGS = "--v8-flags=--max-semi-space-size=1,--max-old-space-size=96";
