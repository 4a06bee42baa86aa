/**
 * High availability end to end: two allocator replicas with leader election, crashes (SIGKILL)
 * at random moments, and the invariants that must survive them.
 */

import assert from "node:assert/strict";
import { clusterTest } from "../tests/cluster.ts";
import { type AllocatorProcess, type TestApi, withAllocator } from "../tests/allocator.ts";
import { waitFor } from "../tests/wait.ts";

const ELECTION = [
  "--leader-election",
  "on",
  "--lease-duration",
  "3",
  "--renew-deadline",
  "2",
  "--retry-period",
  "0.5",
];

function isLeading(p: AllocatorProcess): boolean {
  const became = p.logs().lastIndexOf("became leader");
  return became >= 0 && p.logs().lastIndexOf("lost leadership") < became;
}

async function currentLeader(replicas: readonly AllocatorProcess[]): Promise<AllocatorProcess> {
  let leader: AllocatorProcess | undefined;
  await waitFor(
    () => {
      leader = replicas.find(isLeading);
      return leader !== undefined;
    },
    15_000,
    "a leader",
  );
  if (!leader) throw new Error("no leader");
  return leader;
}

/** Every Service's first ingress address, by name. */
async function addressesByService(api: TestApi): Promise<Map<string, string>> {
  const list = await api.core.listNamespacedService({ namespace: api.namespace });
  const result = new Map<string, string>();
  for (const svc of list.items) {
    const ip = svc.status?.loadBalancer?.ingress?.[0]?.ip;
    if (ip) result.set(svc.metadata?.name ?? "", ip);
  }
  return result;
}

clusterTest(
  "two replicas: one leads and writes; the standby takes over after a crash",
  async (c) => {
    await withAllocator(c, "alloc-ha", {
      default: { v4pools: [{ pool: "192.0.2.100-192.0.2.109", subnet: "192.0.2.0/24" }] },
    }, async ({ api, allocator, spawn }) => {
      const other = spawn(ELECTION);
      const leader = await currentLeader([allocator, other]);
      const standby = leader === allocator ? other : allocator;
      assert.equal(isLeading(standby), false);
      await api.createService("before");
      await api.waitForIngress("before", ["192.0.2.100"]);
      assert.doesNotMatch(standby.logs(), /"leading: /, "the standby never ran the allocator");

      await leader.kill();
      await api.createService("after");
      await api.waitForIngress("after", ["192.0.2.101"], 3_000 + 10_000);
      assert.ok(isLeading(standby));
      assert.deepEqual(await api.ingress("before"), ["192.0.2.100"], "kept across the hand-over");
    }, ELECTION);
  },
);

clusterTest(
  "chaos: 1000 services while replicas are SIGKILLed and restarted; nothing doubled or moved",
  async (c) => {
    const SERVICES = 1000;
    const KILLS = 6;
    await withAllocator(c, "alloc-chaos", {
      default: {
        v6pools: [{ pool: "2001:db8::1000-2001:db8::1fff", subnet: "2001:db8::/64" }],
      },
    }, async ({ api, allocator, spawn }) => {
      const replicas = [allocator, spawn(ELECTION)];
      let created = 0;
      const creating = (async () => {
        const names = Array.from({ length: SERVICES }, (_, i) => `svc-${i}`);
        const inFlight = 16;
        for (let i = 0; i < names.length; i += inFlight) {
          await Promise.all(
            names.slice(i, i + inFlight).map(async (name) => {
              await api.createService(name, {
                ipFamilies: ["IPv6"],
                ipFamilyPolicy: "SingleStack",
              });
              created++;
            }),
          );
        }
      })();

      // Snapshots taken just before each crash: what was allocated then must never change.
      const snapshots: Map<string, string>[] = [];
      for (let kill = 0; kill < KILLS; kill++) {
        // Each crash comes after some progress since the last one (a new leader that allocated),
        // at a random moment: otherwise every kill could land before anything was allocated.
        const before = snapshots.at(-1)?.size ?? 0;
        await waitFor(
          async () => {
            const size = (await addressesByService(api)).size;
            return size > before || size === SERVICES;
          },
          120_000,
          `allocations to progress past ${before} before crash ${kill + 1}`,
        );
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 1000));
        snapshots.push(await addressesByService(api));
        const victimIndex = Math.random() < 0.7
          ? replicas.findIndex(isLeading)
          : Math.floor(Math.random() * replicas.length);
        const index = victimIndex < 0 ? 0 : victimIndex;
        const victim = replicas[index];
        if (!victim) throw new Error("no replica");
        await victim.kill();
        replicas[index] = spawn(ELECTION);
      }
      await creating;
      await waitFor(
        async () => (await addressesByService(api)).size === SERVICES,
        180_000,
        `all ${SERVICES} services to have an address`,
      );

      const final = await addressesByService(api);
      const holders = new Map<string, string[]>();
      for (const [name, ip] of final) holders.set(ip, [...(holders.get(ip) ?? []), name]);
      const doubled = [...holders].filter(([, names]) => names.length > 1);
      let compared = 0;
      const moved: string[] = [];
      for (const snapshot of snapshots) {
        for (const [name, ip] of snapshot) {
          compared++;
          if (final.get(name) !== ip) moved.push(`${name}: ${ip} -> ${final.get(name)}`);
        }
      }
      console.log(
        `chaos: ${created} services created, ${KILLS} kills, ${final.size} with an address, ` +
          `${holders.size} distinct addresses, ${doubled.length} doubled, ` +
          `${compared} pre-crash allocations compared, ${moved.length} moved`,
      );
      assert.equal(final.size, SERVICES);
      assert.deepEqual(doubled, []);
      assert.deepEqual(moved, []);
      assert.ok(compared > 0, "some allocations existed before a crash");
    }, ELECTION);
  },
);
