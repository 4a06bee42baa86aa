/**
 * End-to-end, the whole stack with Netbox: the real allocator process (its service account,
 * its permission set, `NETBOX_USER_TOKEN` in its environment) takes addresses from the Netbox
 * test server, and the real agents of three network-namespace nodes announce them. Both
 * programs serve the same namespace, the way one cluster runs them.
 *
 * - An address inside the LAN's subnets is local: exactly the elected node carries it on its
 *   LAN interface and a client on the LAN reaches it; deleting the Service gives it back to
 *   Netbox (`reserved`) and takes it off every node.
 * - An address outside the LAN is virtual: every node carries it on `kube-lb0` with the
 *   group's explicit aggregation (`/28`), or as a host route without one.
 */

import assert from "node:assert/strict";
import { NODES, type Scene, withScene } from "./agent_scene.ts";
import { winner } from "../election/mod.ts";
import { allocatorServiceAccount, startAllocator, TestApi } from "./allocator.ts";
import { rootClusterTest, type TestCluster } from "./cluster.ts";
import { NetboxTestServer } from "./netbox/mod.ts";
import { exec } from "./netns/mod.ts";
import { removeProgramBinding } from "./programs.ts";
import { waitFor } from "./wait.ts";

/** The LBNodeAgent of the agent end-to-end tests. */
const NODE_AGENT = { localint: "default", extlbint: "kube-lb0" };

function inGroup(group: string): Record<string, string> {
  return { "purelb.io/service-group": group };
}

/** What a test body gets: the agents' scene, the allocator's API helper and Netbox. */
interface Stack {
  readonly scene: Scene;
  readonly api: TestApi;
  readonly netbox: NetboxTestServer;
}

/**
 * A Netbox test server (holding the records `seed` adds), the agents' scene, and the allocator
 * serving the scene's namespace with the Netbox token. Everything is stopped and removed after.
 */
async function withStack(
  cluster: TestCluster,
  prefix: string,
  seed: (netbox: NetboxTestServer) => void,
  body: (stack: Stack) => Promise<void>,
): Promise<void> {
  const netbox = await NetboxTestServer.start({ tenants: ["lab", "edge", "host", "other"] });
  try {
    seed(netbox);
    await withScene(cluster, prefix, { groups: {}, nodeAgent: NODE_AGENT }, async (scene) => {
      const dir = await Deno.makeTempDir({ prefix: "purelb-netbox-stack-" });
      const api = scene.api;
      const kubeconfig = await allocatorServiceAccount(cluster, scene.namespace, dir);
      const allocator = startAllocator(kubeconfig, scene.namespace, [], {
        NETBOX_USER_TOKEN: netbox.token,
      });
      try {
        await body({ scene, api, netbox });
      } catch (error) {
        console.error(`--- allocator ${allocator.pid} ---\n${allocator.logs().slice(-6000)}`);
        throw error;
      } finally {
        await allocator.stop();
        await api.deleteAllServices().catch((error) => console.error(`cleanup: ${error}`));
        await removeProgramBinding(cluster, "allocator", scene.namespace);
        await Deno.remove(dir, { recursive: true });
      }
    });
  } finally {
    await netbox.close();
  }
}

async function waitForStatus(netbox: NetboxTestServer, address: string, status: string) {
  await waitFor(
    () => netbox.find(address)?.status === status,
    15_000,
    `${address} to be ${status} in Netbox (it is ${netbox.find(address)?.status})`,
  );
}

function escaped(address: string): string {
  return address.replaceAll(".", "\\.");
}

rootClusterTest(
  "netbox stack: a local Netbox address is carried by the elected node, reached by the client, " +
    "and goes back to reserved and off every node when its Service is deleted",
  async (cluster) => {
    const v4 = "192.0.2.10";
    const v6 = "2001:db8:1::10";
    await withStack(
      cluster,
      "nb-stack-local",
      (netbox) => {
        netbox.add(`${v4}/24`, { tenant: "lab", status: "reserved" });
        netbox.add(`${v6}/64`, { tenant: "lab", status: "reserved" });
        // Another tenant's reserved address in the same subnet: never taken.
        netbox.add("192.0.2.9/24", { tenant: "other", status: "reserved" });
      },
      async ({ scene, api, netbox }) => {
        const { lan } = scene;
        await api.createGroup("nb", { netbox: { url: netbox.url, tenant: "lab" } });
        await api.createService("web", {
          ipFamilyPolicy: "RequireDualStack",
          ipFamilies: ["IPv4", "IPv6"],
        }, inGroup("nb"));
        await api.waitForIngress("web", [v4, v6]);
        for (const address of [v4, v6]) {
          assert.equal(netbox.find(address)?.status, "active", `${address} is active in Netbox`);
          assert.match(netbox.find(address)?.description ?? "", /^purelb:\S+ \S+\/web$/);
        }
        assert.equal(netbox.find("192.0.2.9")?.status, "reserved", "another tenant's: untouched");

        for (const address of [v4, v6]) {
          const ipv6 = address.includes(":");
          const elected = winner([...NODES], address);
          assert.ok(elected !== undefined, `a winner for ${address}`);
          const [held, ...more] = await scene.waitForHolders(address, [elected]);
          assert.deepEqual(more, [], `only ${elected} carries ${address}`);
          assert.deepEqual(
            [held?.held.interfaceName, held?.held.prefixLength],
            ["eth0", ipv6 ? 64 : 24],
            `${address} is a local address of ${elected}'s LAN interface`,
          );
          await exec(
            lan.client.netns,
            "ping",
            ...(ipv6 ? ["-6"] : []),
            "-c",
            "1",
            "-W",
            "2",
            address,
          );
          const neighbours = await exec(lan.client.netns, "ip", "neigh", "show", address);
          assert.match(
            neighbours,
            new RegExp(`lladdr ${lan.node(elected).mac}`),
            `the client reached ${address} at ${elected}'s MAC`,
          );
          await scene.api.waitForEvent(
            "web",
            "AnnouncingLocal",
            new RegExp(`${escaped(address)} from node ${elected} interface eth0`),
          );
          assert.equal(
            (await scene.holders(address)).length,
            1,
            `still exactly one node carries ${address}`,
          );
        }

        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "web" });
        for (const address of [v4, v6]) {
          await waitForStatus(netbox, address, "reserved");
          assert.equal(netbox.find(address)?.description, "", `${address}'s description cleared`);
          await scene.waitForHolders(address, []);
        }
        assert.equal(netbox.find("192.0.2.9")?.status, "reserved");
      },
    );
  },
);

rootClusterTest(
  "netbox stack: a virtual Netbox address is on kube-lb0 of every node with the group's " +
    "aggregation (/28), or as a host route without one",
  async (cluster) => {
    const aggregated = "198.51.100.20";
    const hostRoute = "203.0.113.20";
    await withStack(
      cluster,
      "nb-stack-virtual",
      (netbox) => {
        // Netbox's own prefix length (/24) is not what the agent uses: it does not ask Netbox.
        netbox.add(`${aggregated}/24`, { tenant: "edge", status: "reserved" });
        netbox.add(`${hostRoute}/24`, { tenant: "host", status: "reserved" });
      },
      async ({ scene, api, netbox }) => {
        await api.createGroup("edge", {
          netbox: { url: netbox.url, tenant: "edge", aggregation: "/28" },
        });
        await api.createGroup("host", {
          netbox: { url: netbox.url, tenant: "host", aggregation: "default" },
        });
        await api.createService("edge-web", {}, inGroup("edge"));
        await api.createService("host-web", {}, inGroup("host"));
        await api.waitForIngress("edge-web", [aggregated]);
        await api.waitForIngress("host-web", [hostRoute]);
        assert.equal(netbox.find(aggregated)?.status, "active");
        assert.equal(netbox.find(hostRoute)?.status, "active");

        for (const [address, prefixLength] of [[aggregated, 28], [hostRoute, 32]] as const) {
          const held = await scene.waitForHolders(address, NODES);
          assert.deepEqual(
            held.map((h) => [h.node, h.held.interfaceName, h.held.prefixLength]),
            NODES.map((node) => [node, "kube-lb0", prefixLength]),
            `${address}/${prefixLength} on kube-lb0 of every node`,
          );
        }
        await scene.api.waitForEvent(
          "edge-web",
          "AnnouncingVirtual",
          new RegExp(`${escaped(aggregated)} from node node-a`),
        );

        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "edge-web" });
        await waitForStatus(netbox, aggregated, "reserved");
        await scene.waitForHolders(aggregated, []);
        // The other group's address is not disturbed.
        assert.equal((await scene.holders(hostRoute)).length, NODES.length);
        assert.equal(netbox.find(hostRoute)?.status, "active");

        await api.core.deleteNamespacedService({ namespace: api.namespace, name: "host-web" });
        await waitForStatus(netbox, hostRoute, "reserved");
        await scene.waitForHolders(hostRoute, []);
      },
    );
  },
);
