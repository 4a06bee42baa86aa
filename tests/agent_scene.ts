/**
 * The scene of the agent end-to-end tests: a test namespace with ServiceGroups and an
 * LBNodeAgent, a LAN of three node network namespaces and a client, and one real agent per
 * node (as the `agent` service account, under its permission set). Everything is removed
 * afterwards, also when the test fails.
 *
 * @module
 */

import type { TestCluster } from "./cluster.ts";
import {
  addressesIn,
  type AgentProcess,
  agentServiceAccount,
  AgentTestApi,
  type HeldAddress,
  removeAgentBinding,
  startAgent,
} from "./agent.ts";
import { createLan, type Lan } from "./netns/mod.ts";
import { waitFor } from "./wait.ts";

/** The node names every scene uses. */
export const NODES = ["node-a", "node-b", "node-c"] as const;

/** What a test body gets. */
export interface Scene {
  readonly api: AgentTestApi;
  readonly lan: Lan;
  readonly namespace: string;
  readonly kubeconfig: string;
  /** The running agent of each node (replaced by {@linkcode Scene.restart}). */
  agent(node: string): AgentProcess;
  /** Starts (again) the agent of `node`. */
  restart(node: string): AgentProcess;
  /** Which nodes hold `address` (on any interface), with interface and prefix. */
  holders(address: string): Promise<readonly { node: string; held: HeldAddress }[]>;
  /** Waits until exactly the `nodes` hold `address`; returns what they hold. */
  waitForHolders(
    address: string,
    nodes: readonly string[],
    timeoutMs?: number,
  ): Promise<readonly { node: string; held: HeldAddress }[]>;
}

/** Options of {@linkcode withScene}. */
export interface SceneOptions {
  /** ServiceGroups by name: their `spec.local`. */
  readonly groups: Readonly<Record<string, unknown>>;
  /** The LBNodeAgent's `spec.local`; `undefined` creates none. */
  readonly nodeAgent: Readonly<Record<string, unknown>> | undefined;
  /** More LBNodeAgents by name: `spec.local` and `spec.nodeSelector`. */
  readonly nodeAgents?: Readonly<
    Record<
      string,
      { readonly local: Record<string, unknown>; readonly nodeSelector?: Record<string, unknown> }
    >
  >;
  /**
   * Node objects to create (as admin) with these labels, by node name; removed afterwards.
   * Without them a scene has no Node objects (each agent's node then has no labels).
   */
  readonly nodeLabels?: Readonly<Record<string, Record<string, string>>>;
  /** Extra agent flags. */
  readonly agentArgs?: readonly string[];
  /** Start agents only on these nodes (default: all). */
  readonly startOn?: readonly string[];
  /** Runs before the agents start (e.g. to plant leftovers). */
  readonly beforeAgents?: (lan: Lan) => Promise<void>;
}

/** Runs `body` in a fresh scene and removes everything afterwards. */
export async function withScene(
  cluster: TestCluster,
  prefix: string,
  options: SceneOptions,
  body: (scene: Scene) => Promise<void>,
): Promise<void> {
  const namespace = await cluster.createNamespace(prefix);
  const dir = await Deno.makeTempDir({ prefix: "purelb-agent-" });
  const api = new AgentTestApi(cluster, namespace);
  const agents = new Map<string, AgentProcess>();
  const all: AgentProcess[] = [];
  let lan: Lan | undefined;
  try {
    for (const [name, local] of Object.entries(options.groups)) {
      await api.createGroup(name, { local });
    }
    if (options.nodeAgent !== undefined) await api.createNodeAgent("default", options.nodeAgent);
    for (const [name, { local, nodeSelector }] of Object.entries(options.nodeAgents ?? {})) {
      await api.createNodeAgent(name, local, nodeSelector);
    }
    for (const [node, labels] of Object.entries(options.nodeLabels ?? {})) {
      await api.deleteNode(node); // a leftover of an interrupted run
      await api.createNode(node, labels);
    }
    const kubeconfig = await agentServiceAccount(cluster, namespace, dir);
    lan = await createLan({
      nodes: [...NODES],
      ipv4Subnet: "192.0.2.0/24",
      ipv6Subnet: "2001:db8:1::/64",
    });
    const theLan = lan;
    await options.beforeAgents?.(theLan);
    const restart = (node: string) => {
      const agent = startAgent({
        kubeconfig,
        namespace,
        node,
        netns: theLan.node(node).netns,
        extraArgs: options.agentArgs ?? [],
      });
      agents.set(node, agent);
      all.push(agent);
      return agent;
    };
    for (const node of options.startOn ?? NODES) restart(node);
    const holders = async (address: string) => {
      const found: { node: string; held: HeldAddress }[] = [];
      for (const node of NODES) {
        for (const held of await addressesIn(theLan.node(node).netns)) {
          if (held.address === address) found.push({ node, held });
        }
      }
      return found;
    };
    const scene: Scene = {
      api,
      lan: theLan,
      namespace,
      kubeconfig,
      agent(node) {
        const agent = agents.get(node);
        if (agent === undefined) throw new Error(`no agent on ${node}`);
        return agent;
      },
      restart,
      holders,
      async waitForHolders(address, nodes, timeoutMs = 15_000) {
        let last: readonly { node: string; held: HeldAddress }[] = [];
        const wanted = [...nodes].sort().join(",");
        await waitFor(
          async () => {
            last = await holders(address);
            return last.map((h) => h.node).sort().join(",") === wanted;
          },
          timeoutMs,
          `${address} held by exactly [${wanted}]`,
        ).catch((error) => {
          throw new Error(`${error.message}; last seen on [${last.map((h) => h.node)}]`);
        });
        return last;
      },
    };
    await body(scene);
  } catch (error) {
    for (const agent of all) {
      console.error(`--- agent ${agent.node} (${agent.pid}) ---\n${agent.logs().slice(-5000)}`);
    }
    throw error;
  } finally {
    await Promise.all(all.map((agent) => agent.stop()));
    await api.deleteAll().catch((error) => console.error(`cleanup: ${error}`));
    for (const node of Object.keys(options.nodeLabels ?? {})) {
      await api.deleteNode(node).catch((error) => console.error(`cleanup: ${error}`));
    }
    api.close();
    await lan?.destroy();
    await removeAgentBinding(cluster, namespace).catch(() => {});
    await cluster.deleteNamespace(namespace).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

/** GETs `path` from an agent's operations server. */
export async function operations(
  agent: AgentProcess,
  path: string,
): Promise<{ status: number; body: string }> {
  const port = await agent.port();
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.text() };
}
