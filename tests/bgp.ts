/**
 * Helpers for BGP scenes (a {@link Scene} started with `bgp`): writing the BGPConfiguration,
 * reading a node's BGPNodeStatus, waiting for sessions and for the router's next hops, and the
 * agent's count of applied BIRD configurations. Shared by the BGP end-to-end tests and the BGP
 * benchmark.
 *
 * @module
 */

import type { Router } from "./netns/router.ts";
import type { Scene } from "./agent_scene.ts";
import { exec } from "./netns/mod.ts";
import { metricValue } from "./programs.ts";
import { waitFor } from "./wait.ts";
import {
  BGP_CONFIGURATION_PLURAL,
  BGP_GROUP,
  BGP_NODE_STATUS_PLURAL,
  BGP_VERSION,
} from "../bgp/model.ts";
import type { NodeBgpStatus } from "../bgp/status.ts";

/** The scene's router; throws when the scene was started without `bgp`. */
export function routerOf(scene: Scene): Router {
  const router = scene.router;
  if (router === undefined) throw new Error("the scene has no router");
  return router;
}

/** Creates the scene's BGPConfiguration `default` with `spec`, or replaces its spec. */
export async function applyBgpConfiguration(
  scene: Scene,
  spec: Record<string, unknown>,
): Promise<void> {
  const target = {
    group: BGP_GROUP,
    version: BGP_VERSION,
    namespace: scene.namespace,
    plural: BGP_CONFIGURATION_PLURAL,
  };
  try {
    const current = await scene.api.custom.getNamespacedCustomObject({
      ...target,
      name: "default",
    });
    await scene.api.custom.replaceNamespacedCustomObject({
      ...target,
      name: "default",
      body: { ...(current as Record<string, unknown>), spec },
    });
  } catch {
    await scene.api.custom.createNamespacedCustomObject({
      ...target,
      body: {
        apiVersion: `${BGP_GROUP}/${BGP_VERSION}`,
        kind: "BGPConfiguration",
        metadata: { name: "default" },
        spec,
      },
    });
  }
}

/** The BGPNodeStatus of `node`; `undefined` while there is none. */
export async function nodeStatus(scene: Scene, node: string): Promise<NodeBgpStatus | undefined> {
  try {
    const object = await scene.api.custom.getClusterCustomObject({
      group: BGP_GROUP,
      version: BGP_VERSION,
      plural: BGP_NODE_STATUS_PLURAL,
      name: node,
    }) as { status?: NodeBgpStatus };
    return object.status;
  } catch {
    return undefined;
  }
}

/**
 * Waits (deadline) until the router's next hops for `prefix` are exactly `nodes`; the error
 * names the last next hops seen.
 */
export async function waitForNextHops(
  scene: Scene,
  prefix: string,
  nodes: readonly string[],
  deadlineMs = 20_000,
  pollMs?: number,
): Promise<void> {
  const wanted = [...nodes].sort().join(",");
  let last: readonly string[] = [];
  await waitFor(
    async () => {
      last = await routerOf(scene).nextHopNodes(prefix);
      return last.join(",") === wanted;
    },
    deadlineMs,
    `the router's next hops for ${prefix} to be [${wanted}]`,
    pollMs,
  ).catch((error: Error) => {
    throw new Error(`${error.message}; last [${last.join(",")}]`);
  });
}

/** How many BIRD configurations the agent of `node` has applied (loads and reloads). */
export async function configLoads(scene: Scene, node: string): Promise<number> {
  return await metricValue(scene.agent(node), "purelb_bgp_config_loads_total", {
    outcome: "applied",
  });
}

/** Waits until each node's BGPNodeStatus is healthy with `neighbors` established sessions. */
export async function waitForSessions(
  scene: Scene,
  nodes: readonly string[],
  neighbors = 2,
): Promise<void> {
  for (const node of nodes) {
    await waitFor(
      async () => {
        const status = await nodeStatus(scene, node);
        return status?.healthy === true && status.neighbors.length === neighbors;
      },
      30_000,
      `${node}'s BGPNodeStatus to be healthy with ${neighbors} neighbours`,
    );
  }
}

/**
 * A node crash: its eth0 down first (a killed BIRD on a live link would have the kernel close
 * its TCP sessions, which routers act on at once), then its agent and BIRD killed.
 */
export async function crashNode(scene: Scene, node: string): Promise<void> {
  await exec(scene.lan.node(node).netns, "ip", "link", "set", "eth0", "down");
  await Promise.all([scene.agent(node).kill(), scene.bird(node).kill()]);
}
