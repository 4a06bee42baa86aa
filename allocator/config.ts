/**
 * The allocator's flags, each with an environment fallback (pure: no I/O).
 *
 * @module
 */

import {
  FlagError,
  flagUsage,
  parseListen,
  parseSeconds,
  readFlags,
  sharedFlags,
} from "../k8s/flags.ts";

/** Settings of one allocator process, from flags and environment. */
export interface AllocatorConfig {
  readonly kubeconfig: string | undefined;
  readonly namespace: string | undefined;
  readonly listen: { readonly hostname: string; readonly port: number };
  readonly logLevel: string;
  readonly logFormat: string;
  readonly leaderElection: "auto" | "on" | "off";
  readonly leaseName: string;
  /** Leader election timings in milliseconds. */
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  readonly identity: string;
  readonly handleClasslessServices: boolean;
  readonly workers: number;
  /** `NETBOX_USER_TOKEN`: only Netbox ServiceGroups need it. Never a flag (it is a secret). */
  readonly netboxToken: string | undefined;
  readonly netboxTimeoutMs: number;
}

/** The environment variable holding the Netbox API token (from the `netbox-client` Secret). */
export const NETBOX_TOKEN_ENV = "NETBOX_USER_TOKEN";

/** Every flag, the environment variable it falls back to, and its help text. */
export const FLAGS = {
  ...sharedFlags(7472),
  namespace: {
    env: "PURELB_NAMESPACE",
    help: "namespace of the ServiceGroups and the leader Lease (default: own namespace in a " +
      "cluster, else purelb-system)",
  },
  "leader-election": {
    env: "PURELB_LEADER_ELECTION",
    help: "auto|on|off (auto: on in a cluster, off when run locally)",
    default: "auto",
  },
  "lease-name": {
    env: "PURELB_LEASE_NAME",
    help: "leader Lease name",
    default: "purelb-allocator",
  },
  "lease-duration": {
    env: "PURELB_LEASE_DURATION",
    help: "seconds a leader Lease stays valid without renewal",
    default: "15",
  },
  "renew-deadline": {
    env: "PURELB_RENEW_DEADLINE",
    help: "seconds after which a leader that could not renew stops writing",
    default: "10",
  },
  "retry-period": {
    env: "PURELB_RETRY_PERIOD",
    help: "seconds between renewals / acquisition attempts",
    default: "2",
  },
  identity: { env: "POD_NAME", help: "this replica's name in the election (default $HOSTNAME)" },
  "handle-classless": {
    env: "PURELB_HANDLE_CLASSLESS",
    help: "true|false: serve Services without spec.loadBalancerClass",
    default: "true",
  },
  workers: { env: "PURELB_WORKERS", help: "concurrent workers", default: "16" },
  "netbox-timeout": {
    env: "PURELB_NETBOX_TIMEOUT",
    help: "seconds to wait for each Netbox request",
    default: "10",
  },
} as const;

type SecondsFlag = "lease-duration" | "renew-deadline" | "retry-period" | "netbox-timeout";

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
  const get = readFlags(args, env, FLAGS);
  const leaderElection = get("leader-election");
  if (leaderElection !== "auto" && leaderElection !== "on" && leaderElection !== "off") {
    throw new FlagError(`--leader-election "${leaderElection}" is not one of auto, on, off`);
  }
  const handleClassless = get("handle-classless");
  if (handleClassless !== "true" && handleClassless !== "false") {
    throw new FlagError(`--handle-classless "${handleClassless}" is not true or false`);
  }
  const seconds = (name: SecondsFlag): number => parseSeconds(name, get(name), 0.001, 3600);
  const workers = Number(get("workers"));
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) {
    throw new FlagError(`--workers "${get("workers")}" is not a whole number from 1 to 256`);
  }
  const leaseDurationMs = seconds("lease-duration");
  const renewDeadlineMs = seconds("renew-deadline");
  const retryPeriodMs = seconds("retry-period");
  if (!(retryPeriodMs < renewDeadlineMs && renewDeadlineMs < leaseDurationMs)) {
    throw new FlagError(
      `leader election needs --retry-period < --renew-deadline < --lease-duration ` +
        `(got ${retryPeriodMs / 1000} s, ${renewDeadlineMs / 1000} s, ${leaseDurationMs / 1000} s)`,
    );
  }
  return {
    kubeconfig: get("kubeconfig"),
    namespace: get("namespace"),
    listen: parseListen("listen", get("listen")),
    logLevel: get("log-level"),
    logFormat: get("log-format"),
    leaderElection,
    leaseName: get("lease-name"),
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    identity: get("identity") ?? env("HOSTNAME") ?? `allocator-${crypto.randomUUID().slice(0, 8)}`,
    handleClasslessServices: handleClassless === "true",
    workers,
    netboxToken: env(NETBOX_TOKEN_ENV)?.trim() || undefined,
    netboxTimeoutMs: seconds("netbox-timeout"),
  };
}

/** The help text. */
export function usage(): string {
  return flagUsage("deno task allocator -- [flags]", FLAGS);
}
