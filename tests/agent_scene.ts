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
import { createRouter, type Router, type RouterOptions } from "./netns/router.ts";
import { type Bird, startBird } from "./netns/bird.ts";
import { grantAgentBgpRoles, removeAgentBgpBinding } from "./programs.ts";
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
  /** With `bgp`: the FRR router on the LAN (host .1) and the client behind it. */
  readonly router: Router | undefined;
  /** With `bgp`: the BIRD of `node` (replaced by {@linkcode Scene.restartBird}). */
  bird(node: string): Bird;
  /** With `bgp`: starts (again) the BIRD of `node`; it waits for the agent's config. */
  restartBird(node: string): Promise<Bird>;
  /** With `bgp`: the directory `node`'s agent and BIRD share. */
  bgpDir(node: string): string;
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
  /**
   * BGP: an FRR router on the LAN with a client behind it, BIRD in every node namespace, the
   * agents run with `--bgp-dir` and the BGP component's RBAC.
   */
  readonly bgp?: {
    readonly router?: RouterOptions;
    /** Nodes whose BIRD is started (default: every node an agent starts on). */
    readonly birdsOn?: readonly string[];
  };
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
  const birds = new Map<string, Bird>();
  let lan: Lan | undefined;
  let router: Router | undefined;
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
    const bgpDir = (node: string) => `${dir}/bgp-${node}`;
    if (options.bgp !== undefined) {
      await grantAgentBgpRoles(cluster, namespace);
      router = await createRouter(theLan, options.bgp.router ?? {});
      for (const node of NODES) await Deno.mkdir(bgpDir(node));
    }
    await options.beforeAgents?.(theLan);
    const restart = (node: string) => {
      const agent = startAgent({
        kubeconfig,
        namespace,
        node,
        netns: theLan.node(node).netns,
        extraArgs: options.agentArgs ?? [],
        ...(options.bgp === undefined ? {} : { bgpDir: bgpDir(node) }),
      });
      agents.set(node, agent);
      all.push(agent);
      return agent;
    };
    for (const node of options.startOn ?? NODES) restart(node);
    const restartBird = async (node: string) => {
      const bird = await startBird({ netns: theLan.node(node).netns, dir: bgpDir(node) });
      birds.set(node, bird);
      return bird;
    };
    if (options.bgp !== undefined) {
      const birdsOn = options.bgp.birdsOn ?? options.startOn ?? NODES;
      await Promise.all(birdsOn.map((node) => restartBird(node)));
    }
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
      router,
      bird(node) {
        const bird = birds.get(node);
        if (bird === undefined) throw new Error(`no BIRD on ${node}`);
        return bird;
      },
      restartBird,
      bgpDir,
    };
    await body(scene);
  } catch (error) {
    for (const agent of all) {
      console.error(`--- agent ${agent.node} (${agent.pid}) ---\n${agent.logs().slice(-5000)}`);
    }
    for (const [node, bird] of birds) {
      console.error(`--- BIRD ${node} ---\n${bird.stderrText().slice(-3000)}`);
    }
    if (router !== undefined) console.error(`--- FRR ---\n${router.logs().slice(-3000)}`);
    throw error;
  } finally {
    await Promise.all(all.map((agent) => agent.stop()));
    await Promise.all([...birds.values()].map((bird) => bird.stop()));
    await router?.destroy();
    await api.deleteAll().catch((error) => console.error(`cleanup: ${error}`));
    for (const node of Object.keys(options.nodeLabels ?? {})) {
      await api.deleteNode(node).catch((error) => console.error(`cleanup: ${error}`));
    }
    api.close();
    await lan?.destroy();
    await removeAgentBinding(cluster, namespace).catch(() => {});
    if (options.bgp !== undefined) await removeAgentBgpBinding(cluster, namespace).catch(() => {});
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
