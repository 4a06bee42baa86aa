/**
 * The node agent's flags, each with an environment fallback (pure: no I/O).
 *
 * @module
 */

import { parseArgs } from "node:util";

/**
 * Settings of one agent process, from flags and environment.
 *
 * @example
 * ```ts
 * const config: AgentConfig = readAgentConfig(["--node-name", "node-a"], () => undefined);
 * config.leaseDurationMs; // 6000
 * ```
 */
export interface AgentConfig {
  /** This node's name (the Lease is `purelb-node-<nodeName>`). */
  readonly nodeName: string;
  /** Kubeconfig file; in-cluster config, then ~/.kube/config, when absent. */
  readonly kubeconfig: string | undefined;
  /** Namespace of Leases, ServiceGroups and LBNodeAgents; decided by main when absent. */
  readonly namespace: string | undefined;
  /** Network namespace every `ip` runs in (`ip -n NS`); the current one when absent. */
  readonly netns: string | undefined;
  /** Where /metrics /healthz /readyz listen. */
  readonly listen: { readonly hostname: string; readonly port: number };
  /** Log level name. */
  readonly logLevel: string;
  /** `json` or `text`. */
  readonly logFormat: string;
  /** How long a renewal of the node Lease keeps this node live. */
  readonly leaseDurationMs: number;
  /** How often the node Lease is renewed. */
  readonly leaseRenewMs: number;
  /** How often the network state is compared with the wanted state (drift repair). */
  readonly resyncMs: number;
}

/**
 * Raised for a flag or environment value that cannot be used; names the flag and the value.
 *
 * @example
 * ```ts
 * try { readAgentConfig([], () => undefined); } catch (e) {
 *   if (e instanceof AgentConfigError) console.error(e.message); // --node-name is required ...
 * }
 * ```
 */
export class AgentConfigError extends Error {
  override name = "AgentConfigError";
}

/** Every flag, the environment variable it falls back to, and its help text. */
export const FLAGS = {
  "node-name": { env: "NODE_NAME", help: "this node's name (required)" },
  kubeconfig: {
    env: "KUBECONFIG",
    help: "kubeconfig file (default: in-cluster, then ~/.kube/config)",
  },
  namespace: {
    env: "PURELB_NAMESPACE",
    help: "namespace of the node Leases, ServiceGroups and LBNodeAgents (default: own " +
      "namespace in a cluster, else purelb-system)",
  },
  netns: {
    env: "PURELB_NETNS",
    help: "network namespace to configure (runs ip -n NS; for tests and demos)",
  },
  listen: {
    env: "PURELB_LISTEN",
    help: "address of /metrics /healthz /readyz (default 0.0.0.0:7473)",
  },
  "log-level": { env: "PURELB_LOG_LEVEL", help: "trace|debug|info|warning|error (default info)" },
  "log-format": { env: "PURELB_LOG_FORMAT", help: "json|text (default json)" },
  "lease-duration": {
    env: "PURELB_LEASE_DURATION",
    help: "seconds a node stays live after renewing its Lease (default 6)",
  },
  "lease-renew": {
    env: "PURELB_LEASE_RENEW",
    help: "seconds between Lease renewals, less than half the duration (default 2)",
  },
  resync: {
    env: "PURELB_RESYNC",
    help: "seconds between full comparisons of the network with the wanted state (default 3)",
  },
} as const;

type FlagName = keyof typeof FLAGS;

/** A node name as Kubernetes allows it (DNS subdomain), short enough for a Lease name. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,239}[a-z0-9])?$/;

/**
 * Reads the configuration from arguments, then the environment, then defaults. Throws
 * {@link AgentConfigError} for a missing node name or an unusable value.
 *
 * @example
 * ```ts
 * const config = readAgentConfig(["--node-name", "node-a", "--lease-duration", "10"], (n) => Deno.env.get(n));
 * config.leaseRenewMs; // 2000
 * ```
 */
export function readAgentConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): AgentConfig {
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
  const nodeName = get("node-name");
  if (nodeName === undefined) {
    throw new AgentConfigError("--node-name is required (or set NODE_NAME)");
  }
  if (!NODE_NAME.test(nodeName)) {
    throw new AgentConfigError(`--node-name "${nodeName}" is not a valid node name`);
  }
  const leaseDurationMs = seconds("lease-duration", get("lease-duration") ?? "6", 1, 3600);
  const leaseRenewMs = seconds("lease-renew", get("lease-renew") ?? "2", 0.1, 3600);
  if (leaseRenewMs * 2 > leaseDurationMs) {
    throw new AgentConfigError(
      `--lease-renew ${leaseRenewMs / 1000} s must be at most half of --lease-duration ` +
        `${leaseDurationMs / 1000} s, so that one lost renewal does not end the Lease`,
    );
  }
  return {
    nodeName,
    kubeconfig: get("kubeconfig"),
    namespace: get("namespace"),
    netns: get("netns"),
    listen: parseListen(get("listen") ?? "0.0.0.0:7473"),
    logLevel: get("log-level") ?? "info",
    logFormat: get("log-format") ?? "json",
    leaseDurationMs,
    leaseRenewMs,
    resyncMs: seconds("resync", get("resync") ?? "3", 0.1, 3600),
  };
}

function seconds(flag: FlagName, text: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < min || value > max) {
    throw new AgentConfigError(
      `--${flag} "${text}" is not a number of seconds from ${min} to ${max}`,
    );
  }
  return Math.round(value * 1000);
}

function parseListen(text: string): { hostname: string; port: number } {
  const match = /^(.*):(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    throw new AgentConfigError(`--listen "${text}" is not HOST:PORT (for example 0.0.0.0:7473)`);
  }
  const host = (match[1] ?? "").replace(/^\[(.*)\]$/, "$1");
  return { hostname: host === "" ? "0.0.0.0" : host, port };
}

/**
 * The help text.
 *
 * @example
 * ```ts
 * console.log(usage());
 * ```
 */
export function usage(): string {
  const lines = Object.entries(FLAGS).map(([name, flag]) =>
    `  --${name.padEnd(16)} ${flag.help} [env ${flag.env}]`
  );
  return `usage: deno task agent -- --node-name NODE [flags]\n${lines.join("\n")}`;
}
