/**
 * End-to-end, the real allocator and three real agents in network namespaces: the Service's
 * `purelb.io/announcing-IPv4` / `-IPv6` annotations name the node and interface that `ip`
 * shows carrying each local address, follow a graceful hand-over and a crash within a second
 * of the new node holding the address, and go away when no node announces.
 */

import assert from "node:assert/strict";
import { NODES, type Scene, withScene } from "./agent_scene.ts";
import { winner } from "../election/mod.ts";
import { addressesIn } from "./agent.ts";
import { allocatorServiceAccount, startAllocator } from "./allocator.ts";
import { rootClusterTest } from "./cluster.ts";
import { exec } from "./netns/mod.ts";
import { removeProgramBinding } from "./programs.ts";
import { waitFor } from "./wait.ts";
import { Annotations } from "../k8s/types.ts";

const V4 = "192.0.2.200";
const V6 = "2001:db8:1::200";
const GROUPS = {
  default: {
    v4pools: [{ pool: `${V4}/32`, subnet: "192.0.2.0/24" }],
    v6pools: [{ pool: `${V6}/128`, subnet: "2001:db8:1::/64" }],
  },
};
const KEY = { [V4]: Annotations.announcingIPv4, [V6]: Annotations.announcingIPv6 };

async function annotation(scene: Scene, address: typeof V4 | typeof V6) {
  const svc = await scene.api.core.readNamespacedService({
    namespace: scene.namespace,
    name: "web",
  });
  return svc.metadata?.annotations?.[KEY[address]];
}

/** Waits until `address` is carried by `node` alone among `live`; its `node,interface,address`. */
async function carried(scene: Scene, address: string, node: string): Promise<string> {
  const [held] = await scene.waitForHolders(address, [node]);
  assert.ok(held !== undefined);
  return `${node},${held.held.interfaceName},${address}`;
}

async function waitForAnnotation(
  scene: Scene,
  address: typeof V4 | typeof V6,
  wanted: string | undefined,
  timeoutMs = 5_000,
): Promise<void> {
  let last: string | undefined;
  await waitFor(
    async () => (last = await annotation(scene, address)) === wanted,
    timeoutMs,
    `${KEY[address]} to be ${wanted ?? "absent"}`,
  ).catch((error) => {
    throw new Error(`${error.message}; last: ${last}`);
  });
}

/**
 * Polls `node`'s namespace and the Service side by side; returns the milliseconds from `node`
 * holding `address` to the annotation reading `wanted`.
 */
async function handOverDelay(
  scene: Scene,
  address: typeof V4 | typeof V6,
  node: string,
  wanted: string,
): Promise<number> {
  const deadline = performance.now() + 15_000;
  let heldAt: number | undefined;
  let annotatedAt: number | undefined;
  await Promise.all([
    (async () => {
      while (heldAt === undefined && performance.now() < deadline) {
        const held = await addressesIn(scene.lan.node(node).netns);
        if (held.some((h) => h.address === address)) heldAt = performance.now();
      }
    })(),
    (async () => {
      while (annotatedAt === undefined && performance.now() < deadline) {
        if (await annotation(scene, address) === wanted) annotatedAt = performance.now();
        else await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })(),
  ]);
  assert.ok(heldAt !== undefined, `${node} never held ${address}`);
  assert.ok(annotatedAt !== undefined, `${KEY[address]} never read ${wanted}`);
  return annotatedAt - heldAt;
}

rootClusterTest(
  "announcing: the Service names the node and interface that carry each local address, moves " +
    "within a second of a hand-over (graceful and crash), and is removed when no node announces",
  async (cluster) => {
    await withScene(cluster, "announcing", {
      groups: GROUPS,
      nodeAgent: { localint: "default", extlbint: "kube-lb0" },
    }, async (scene) => {
      const dir = await Deno.makeTempDir({ prefix: "purelb-announcing-" });
      const kubeconfig = await allocatorServiceAccount(cluster, scene.namespace, dir);
      const allocator = startAllocator(kubeconfig, scene.namespace, []);
      try {
        await scene.api.createService("web", {
          ipFamilyPolicy: "RequireDualStack",
          ipFamilies: ["IPv4", "IPv6"],
        });
        await scene.api.waitForIngress("web", [V4, V6]);
        let live: string[] = [...NODES];
        const expectFrom = async (address: typeof V4 | typeof V6) => {
          const elected = winner(live, address);
          assert.ok(elected !== undefined);
          const wanted = await carried(scene, address, elected);
          await waitForAnnotation(scene, address, wanted);
          return elected;
        };
        const first = await expectFrom(V4);
        await expectFrom(V6);

        // Graceful: the winner stops (withdraws, deletes its Lease).
        live = live.filter((n) => n !== first);
        const second = winner(live, V4);
        assert.ok(second !== undefined);
        const stopping = scene.agent(first).stop();
        const graceful = await handOverDelay(scene, V4, second, `${second},eth0,${V4}`);
        await stopping;
        assert.equal(await carried(scene, V4, second), `${second},eth0,${V4}`, "as ip shows it");
        await expectFrom(V6);

        // Crash: killed, off the LAN; its Lease expires; the last node takes over.
        const third = live.find((n) => n !== second);
        assert.ok(third !== undefined);
        await scene.agent(second).kill();
        await exec(scene.lan.node(second).netns, "ip", "link", "set", "eth0", "down");
        const crash = await handOverDelay(scene, V4, third, `${third},eth0,${V4}`);
        live = [third];
        await expectFrom(V6);

        console.log(
          `BENCH ${
            JSON.stringify({
              name: "announcing_annotation_after_hand_over",
              graceful_ms: Math.round(graceful),
              crash_ms: Math.round(crash),
            })
          }`,
        );
        assert.ok(graceful < 1_000, `graceful: annotation ${graceful} ms after the new holder`);
        assert.ok(crash < 1_000, `crash: annotation ${crash} ms after the new holder`);

        // Nobody announces any more: both annotations go.
        await scene.agent(third).stop();
        await waitForAnnotation(scene, V4, undefined);
        await waitForAnnotation(scene, V6, undefined);
        const svc = await scene.api.core.readNamespacedService({
          namespace: scene.namespace,
          name: "web",
        });
        assert.deepEqual(
          (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip),
          [V4, V6],
          "the allocation itself is untouched",
        );
      } catch (error) {
        console.error(`--- allocator ${allocator.pid} ---\n${allocator.logs().slice(-6000)}`);
        throw error;
      } finally {
        await allocator.stop();
        await scene.api.deleteAllServices().catch((error) => console.error(`cleanup: ${error}`));
        await removeProgramBinding(cluster, "allocator", scene.namespace);
        await Deno.remove(dir, { recursive: true });
      }
    });
  },
);
