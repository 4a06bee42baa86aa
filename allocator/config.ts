/**
 * The allocator's flags, each with an environment fallback (pure: no I/O).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** Settings of one allocator process, from flags and environment. */
export interface AllocatorConfig {
  readonly kubeconfig: string | undefined;
  readonly namespace: string | undefined;
  readonly listen: { readonly hostname: string; readonly port: number };
  readonly logLevel: string;
  readonly logFormat: string;
  readonly leaderElection: "auto" | "on" | "off";
  readonly leaseName: string;
  readonly identity: string;
  readonly handleClasslessServices: boolean;
  readonly workers: number;
}

/** Raised for a flag or environment value that cannot be used; names the flag and the value. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Every flag, the environment variable it falls back to, and its help text. */
export const FLAGS = {
  kubeconfig: {
    env: "KUBECONFIG",
    help: "kubeconfig file (default: in-cluster, then ~/.kube/config)",
  },
  namespace: {
    env: "PURELB_NAMESPACE",
    help: "namespace of the ServiceGroups and the leader Lease (default: own namespace in a " +
      "cluster, else purelb-system)",
  },
  listen: {
    env: "PURELB_LISTEN",
    help: "address of /metrics /healthz /readyz (default 0.0.0.0:7472)",
  },
  "log-level": { env: "PURELB_LOG_LEVEL", help: "trace|debug|info|warning|error (default info)" },
  "log-format": { env: "PURELB_LOG_FORMAT", help: "json|text (default json)" },
  "leader-election": {
    env: "PURELB_LEADER_ELECTION",
    help: "auto|on|off (default auto: on in a cluster, off when run locally)",
  },
  "lease-name": { env: "PURELB_LEASE_NAME", help: "leader Lease name (default purelb-allocator)" },
  identity: { env: "POD_NAME", help: "this replica's name in the election (default $HOSTNAME)" },
  "handle-classless": {
    env: "PURELB_HANDLE_CLASSLESS",
    help: "true|false: serve Services without spec.loadBalancerClass (default true)",
  },
  workers: { env: "PURELB_WORKERS", help: "concurrent workers (default 16)" },
} as const;

type FlagName = keyof typeof FLAGS;

/**
 * Reads the configuration from arguments, then the environment, then defaults.
 *
 * @example
 * ```ts
 * const config = readAllocatorConfig(["--namespace", "purelb-system"], (n) => Deno.env.get(n));
 * ```
 */
export function readAllocatorConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): AllocatorConfig {
  const { values } = parseArgs({
    args: [...args],
    options: Object.fromEntries(
      Object.keys(FLAGS).map((name) => [name, { type: "string" as const }]),
    ),
    strict: true,
  });
  const get = (name: FlagName): string | undefined => {
    const value = values[name];
    return typeof value === "string" ? value : env(FLAGS[name].env) || undefined;
  };
  const leaderElection = get("leader-election") ?? "auto";
  if (leaderElection !== "auto" && leaderElection !== "on" && leaderElection !== "off") {
    throw new ConfigError(`--leader-election "${leaderElection}" is not one of auto, on, off`);
  }
  const handleClassless = get("handle-classless") ?? "true";
  if (handleClassless !== "true" && handleClassless !== "false") {
    throw new ConfigError(`--handle-classless "${handleClassless}" is not true or false`);
  }
  const workers = Number(get("workers") ?? "16");
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
    throw new ConfigError(`--workers "${get("workers")}" is not a whole number from 1 to 256`);
  }
  return {
    kubeconfig: get("kubeconfig"),
    namespace: get("namespace"),
    listen: parseListen(get("listen") ?? "0.0.0.0:7472"),
    logLevel: get("log-level") ?? "info",
    logFormat: get("log-format") ?? "json",
    leaderElection,
    leaseName: get("lease-name") ?? "purelb-allocator",
    identity: get("identity") ?? env("HOSTNAME") ?? `allocator-${crypto.randomUUID().slice(0, 8)}`,
    handleClasslessServices: handleClassless === "true",
    workers,
  };
}

function parseListen(text: string): { hostname: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    throw new ConfigError(`--listen "${text}" is not HOST:PORT (for example 0.0.0.0:7472)`);
  }
  const host = (match[1] ?? "").replace(/^\[(.*)\]$/, "$1");
  return { hostname: host === "" ? "0.0.0.0" : host, port };
}

/** The help text. */
export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, flag]) =>
    `  --${name.padEnd(18)} ${flag.help} [env ${flag.env}]`
  );
  return `usage: deno task allocator -- [flags]\n${lines.join("\n")}`;
}
