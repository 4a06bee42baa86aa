/**
 * Runs the real node agent for end-to-end tests: as the `agent` service account bound to the
 * ClusterRoles of `deploy/rbac/agent.yaml` (nothing else), under its production Deno
 * permission set, with `ip` acting inside one node's network namespace and the test namespace
 * as its Lease / ServiceGroup / LBNodeAgent namespace.
 *
 * @module
 */

import type { V1EndpointSlice } from "@kubernetes/client-node";
import { CoordinationV1Api, DiscoveryV1Api, typedApi } from "../k8s/client.ts";
import { fileURLToPath } from "node:url";
import { agentPermissions } from "../deploy/permissions.ts";
import { apiStatusCode } from "../k8s/errors.ts";
import { mergePatch } from "../k8s/client.ts";
import type { TestCluster } from "./cluster.ts";
import {
  type ProgramProcess,
  programServiceAccount,
  removeProgramBinding,
  spawnProgram,
} from "./programs.ts";
import { profilingFlags, TestApi } from "./allocator.ts";
import { testbedIpPath } from "./netns/mod.ts";

const MAIN = fileURLToPath(new URL("../agent/main.ts", import.meta.url));

/** A running agent process and its node. */
export interface AgentProcess extends ProgramProcess {
  readonly node: string;
}

/** Creates the agent's service account in `namespace` with the deploy/ RBAC; returns its kubeconfig file. */
export function agentServiceAccount(
  cluster: TestCluster,
  namespace: string,
  dir: string,
): Promise<string> {
  return programServiceAccount(cluster, namespace, "agent", dir);
}

/** Deletes the agent's ClusterRoleBinding made by {@linkcode agentServiceAccount}. */
export function removeAgentBinding(cluster: TestCluster, namespace: string): Promise<void> {
  return removeProgramBinding(cluster, "agent", namespace);
}

/** Options of {@linkcode startAgent}. */
export interface StartAgentOptions {
  readonly kubeconfig: string;
  readonly namespace: string;
  readonly node: string;
  /** The node's network namespace. */
  readonly netns: string;
  readonly extraArgs?: readonly string[];
  /** Runs `deno run ...agentPermissions agent/main.ts` (default); false = `--allow-all`. */
  readonly restricted?: boolean;
  /** BGP on: the directory shared with this node's BIRD (`--bgp-dir`). */
  readonly bgpDir?: string;
}

/** Starts `agent/main.ts` with the agent's permission set for one node. */
export function startAgent(options: StartAgentOptions): AgentProcess {
  const permissions = options.restricted === false ? ["--allow-all"] : agentPermissions(
    options.kubeconfig,
    options.bgpDir === undefined ? {} : { bgpDir: options.bgpDir },
  );
  const started = spawnProgram([
    "run",
    ...profilingFlags(),
    ...permissions,
    MAIN,
    "--node-name",
    options.node,
    "--kubeconfig",
    options.kubeconfig,
    "--namespace",
    options.namespace,
    "--netns",
    options.netns,
    "--listen",
    "127.0.0.1:0",
    "--log-level",
    "debug",
    ...(options.bgpDir === undefined ? [] : ["--bgp-dir", options.bgpDir, "--bgp-poll", "0.5"]),
    ...(options.extraArgs ?? []),
  ], `the agent of ${options.node}`);
  return { ...started, node: options.node };
}

/** One address as `ip -json address show` lists it inside a namespace. */
export interface HeldAddress {
  readonly interfaceName: string;
  readonly address: string;
  readonly prefixLength: number;
}

/** The global addresses in `netns` (every interface), as interface + address + prefix. */
export async function addressesIn(netns: string): Promise<readonly HeldAddress[]> {
  const output = await new Deno.Command(testbedIpPath(), {
    args: ["-n", netns, "-json", "address", "show"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`ip -n ${netns} address show: ${new TextDecoder().decode(output.stderr)}`);
  }
  const links = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    ifname: string;
    addr_info?: { local: string; prefixlen: number; scope?: string }[];
  }[];
  return links.flatMap((link) =>
    (link.addr_info ?? []).filter((a) => a.scope === "global").map((a) => ({
      interfaceName: link.ifname,
      address: a.local,
      prefixLength: a.prefixlen,
    }))
  );
}

/** {@linkcode TestApi} plus what the agent tests write: LBNodeAgents, slices, Leases. */
export class AgentTestApi extends TestApi {
  readonly discovery: DiscoveryV1Api;
  readonly coordination: CoordinationV1Api;

  constructor(cluster: TestCluster, namespace: string) {
    super(cluster, namespace);
    this.discovery = typedApi(this.connection, DiscoveryV1Api);
    this.coordination = typedApi(this.connection, CoordinationV1Api);
  }

  /** Creates an LBNodeAgent with `spec.local` (and `spec.nodeSelector`, if given). */
  async createNodeAgent(
    name: string,
    local: Record<string, unknown>,
    nodeSelector?: Record<string, unknown>,
  ): Promise<void> {
    await this.custom.createNamespacedCustomObject({
      group: "purelb.io",
      version: "v1",
      namespace: this.namespace,
      plural: "lbnodeagents",
      body: {
        apiVersion: "purelb.io/v1",
        kind: "LBNodeAgent",
        metadata: { name },
        spec: { local, ...(nodeSelector === undefined ? {} : { nodeSelector }) },
      },
    });
  }

  /** Creates a Node object (cluster-scoped: {@linkcode AgentTestApi.deleteNode} it afterwards). */
  async createNode(name: string, labels: Record<string, string>): Promise<void> {
    await this.core.createNode({ body: { metadata: { name, labels } } });
  }

  /** Sets (a string) or removes (`null`) labels of a Node. */
  async labelNode(name: string, labels: Record<string, string | null>): Promise<void> {
    await this.core.patchNode({ name, body: { metadata: { labels } } }, mergePatch());
  }

  /** Deletes a Node object if it exists. */
  async deleteNode(name: string): Promise<void> {
    await this.core.deleteNode({ name }).catch((error) => {
      if (apiStatusCode(error) !== 404) throw error;
    });
  }

  /**
   * Creates a LoadBalancer Service and writes its allocation the way the allocator does
   * (status ingress + `purelb.io/allocated-by: PureLB`), so agent tests need no allocator.
   */
  async createAllocatedService(
    name: string,
    addresses: readonly string[],
    options: {
      readonly local?: boolean;
      readonly annotations?: Record<string, string>;
      /** Single-stack in this family (the API server's default is the cluster's first). */
      readonly family?: "IPv4" | "IPv6";
    } = {},
  ): Promise<void> {
    await this.core.createNamespacedService({
      namespace: this.namespace,
      body: {
        metadata: { name, annotations: options.annotations ?? {} },
        spec: {
          type: "LoadBalancer",
          ports: [{ port: 80, protocol: "TCP" }],
          ...(options.local ? { externalTrafficPolicy: "Local" } : {}),
          ...(options.family === undefined
            ? {}
            : { ipFamilies: [options.family], ipFamilyPolicy: "SingleStack" }),
        },
      },
    });
    await this.setIngress(name, addresses);
  }

  /** Writes status ingress and our allocation marks (or removes both with `[]`). */
  async setIngress(name: string, addresses: readonly string[]): Promise<void> {
    const marks = addresses.length > 0
      ? { "purelb.io/allocated-by": "PureLB", "purelb.io/allocated-from": "default" }
      : { "purelb.io/allocated-by": null, "purelb.io/allocated-from": null };
    await this.core.patchNamespacedServiceStatus({
      namespace: this.namespace,
      name,
      body: {
        metadata: { annotations: marks },
        status: {
          loadBalancer: addresses.length > 0
            ? { ingress: addresses.map((ip) => ({ ip, ipMode: "VIP" })) }
            : { ingress: null },
        },
      },
    }, mergePatch());
  }

  /**
   * Creates or replaces an EndpointSlice of Service `service` with one endpoint per entry.
   * `manager` sets `endpointslice.kubernetes.io/managed-by`.
   */
  async putEndpointSlice(
    sliceName: string,
    service: string,
    endpoints: readonly {
      readonly address: string;
      readonly node: string;
      readonly ready?: boolean;
      readonly serving?: boolean;
    }[],
    manager = "test.purelb.io",
  ): Promise<void> {
    const body: V1EndpointSlice = {
      metadata: {
        name: sliceName,
        labels: {
          "kubernetes.io/service-name": service,
          "endpointslice.kubernetes.io/managed-by": manager,
        },
      },
      addressType: "IPv4",
      ports: [{ port: 8080, protocol: "TCP" }],
      endpoints: endpoints.map((e) => ({
        addresses: [e.address],
        nodeName: e.node,
        conditions: {
          ...(e.ready === undefined ? {} : { ready: e.ready }),
          ...(e.serving === undefined ? {} : { serving: e.serving }),
        },
      })),
    };
    try {
      const existing = await this.discovery.readNamespacedEndpointSlice({
        namespace: this.namespace,
        name: sliceName,
      });
      await this.discovery.replaceNamespacedEndpointSlice({
        namespace: this.namespace,
        name: sliceName,
        body: {
          ...body,
          metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion ?? "" },
        },
      });
    } catch (error) {
      if (apiStatusCode(error) !== 404) throw error;
      await this.discovery.createNamespacedEndpointSlice({ namespace: this.namespace, body });
    }
  }

  /** Deletes every Service, EndpointSlice and Lease of the namespace (nothing else would). */
  async deleteAll(): Promise<void> {
    const ns = this.namespace;
    for (const svc of (await this.core.listNamespacedService({ namespace: ns })).items) {
      await this.core.deleteNamespacedService({ namespace: ns, name: svc.metadata?.name ?? "" })
        .catch(() => {});
    }
    const slices = await this.discovery.listNamespacedEndpointSlice({ namespace: ns });
    for (const slice of slices.items) {
      await this.discovery.deleteNamespacedEndpointSlice({
        namespace: ns,
        name: slice.metadata?.name ?? "",
      }).catch(() => {});
    }
    for (const lease of (await this.coordination.listNamespacedLease({ namespace: ns })).items) {
      await this.coordination.deleteNamespacedLease({
        namespace: ns,
        name: lease.metadata?.name ?? "",
      }).catch(() => {});
    }
  }
}
