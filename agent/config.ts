/**
 * The node agent's flags, each with an environment fallback (pure: no I/O).
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

/** Settings of one agent process, from flags and environment. */
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
  /** BGP through BIRD, when `--bgp-dir` is given; off otherwise. */
  readonly bgp: BgpAgentConfig | undefined;
}

/** The BGP part of {@linkcode AgentConfig}. */
export interface BgpAgentConfig {
  /** The directory shared with BIRD: the config the agent writes and BIRD's control socket. */
  readonly dir: string;
  /** `birdc`'s path; the first of `BIRDC_PATHS` that exists when absent. */
  readonly birdcPath: string | undefined;
  /** How often BIRD's sessions are read. */
  readonly pollMs: number;
}

/** Every flag, the environment variable it falls back to, and its help text. */
export const FLAGS = {
  "node-name": { env: "NODE_NAME", help: "this node's name (required)" },
  ...sharedFlags(7473),
  namespace: {
    env: "PURELB_NAMESPACE",
    help: "namespace of the node Leases, ServiceGroups and LBNodeAgents (default: own " +
      "namespace in a cluster, else purelb-system)",
  },
  netns: {
    env: "PURELB_NETNS",
    help: "network namespace to configure (runs ip -n NS; for tests and demos)",
  },
  "lease-duration": {
    env: "PURELB_LEASE_DURATION",
    help: "seconds a node stays live after renewing its Lease",
    default: "6",
  },
  "lease-renew": {
    env: "PURELB_LEASE_RENEW",
    help: "seconds between Lease renewals, less than half the duration",
    default: "2",
  },
  resync: {
    env: "PURELB_RESYNC",
    help: "seconds between full comparisons of the network with the wanted state",
    default: "3",
  },
  "bgp-dir": {
    env: "PURELB_BGP_DIR",
    help: "directory shared with the BIRD sidecar (bird.conf written here, bird.ctl its " +
      "socket); BGP is off without it",
  },
  birdc: {
    env: "PURELB_BIRDC",
    help: "path of birdc (default: /usr/sbin/birdc or /usr/bin/birdc)",
  },
  "bgp-poll": {
    env: "PURELB_BGP_POLL",
    help: "seconds between reads of BIRD's sessions (BGPNodeStatus, metrics)",
    default: "5",
  },
} as const;

/** A node name as Kubernetes allows it (DNS subdomain), short enough for a Lease name. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,239}[a-z0-9])?$/;

/**
 * Reads the configuration from arguments, then the environment, then defaults. Throws a
 * `FlagError` for a missing node name or an unusable value.
 */
export function readAgentConfig(
  args: readonly string[],
  env: (name: string) => string | undefined,
): AgentConfig {
  const get = readFlags(args, env, FLAGS);
  const nodeName = get("node-name");
  if (nodeName === undefined) {
    throw new FlagError("--node-name is required (or set NODE_NAME)");
  }
  if (!NODE_NAME.test(nodeName)) {
    throw new FlagError(`--node-name "${nodeName}" is not a valid node name`);
  }
  const leaseDurationMs = parseSeconds("lease-duration", get("lease-duration"), 1, 3600);
  const leaseRenewMs = parseSeconds("lease-renew", get("lease-renew"), 0.1, 3600);
  if (leaseRenewMs * 2 > leaseDurationMs) {
    throw new FlagError(
      `--lease-renew ${leaseRenewMs / 1000} s must be at most half of --lease-duration ` +
        `${leaseDurationMs / 1000} s, so that one lost renewal does not end the Lease`,
    );
  }
  const bgpDir = get("bgp-dir");
  return {
    nodeName,
    kubeconfig: get("kubeconfig"),
    namespace: get("namespace"),
    netns: get("netns"),
    listen: parseListen("listen", get("listen")),
    logLevel: get("log-level"),
    logFormat: get("log-format"),
    leaseDurationMs,
    leaseRenewMs,
    resyncMs: parseSeconds("resync", get("resync"), 0.1, 3600),
    bgp: bgpDir === undefined ? undefined : {
      dir: bgpDir,
      birdcPath: get("birdc"),
      pollMs: parseSeconds("bgp-poll", get("bgp-poll"), 0.1, 3600),
    },
  };
}

/** The help text. */
export function usage(): string {
  return flagUsage("deno task agent -- --node-name NODE [flags]", FLAGS);
}
