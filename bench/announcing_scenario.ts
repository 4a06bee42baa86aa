/**
 * Announcing benchmark (issue 16): the allocator keeps `purelb.io/announcing-IPv6` on its
 * Services from the node Leases. Against a real control plane, with node Leases written by
 * this process (as agents would):
 *
 * - create-to-address latency of single Services with no node Leases (nothing to announce),
 *   and again while addresses keep moving between nodes (announcing writes all the time): the
 *   allocation must not wait for them;
 * - hand-over to annotation: from the Lease write naming the new node to the Service's
 *   annotation naming it (p50/p99).
 *
 * Run: `deno run -A bench/announcing_scenario.ts [HAND_OVERS]`. Prints a `BENCH {...}` line.
 *
 * @module
 */

import type { V1Service } from "@kubernetes/client-node";
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi } from "../k8s/client.ts";
import { MicroTime } from "../k8s/api.ts";
import { mergePatch, typedApi } from "../k8s/client.ts";
import { parseKubeconfig } from "../k8s/config.ts";
import { ResilientInformer } from "../k8s/informer.ts";
import { withoutVersion } from "../k8s/slim.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { Annotations, ANNOUNCING_ANNOTATION } from "../k8s/types.ts";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { startAllocator } from "../tests/allocator.ts";
import { waitFor } from "../tests/wait.ts";
import { loadBalancerService, percentile, waitUntilReady } from "./support.ts";

const HAND_OVERS = Number(Deno.args[0] ?? "40");
const SERVICES = 20;
const NAMESPACE = "purelb-system";
const NODES = ["node-0", "node-1", "node-2"] as const;

interface Seen {
  address?: string;
  announcing?: string | undefined;
  addressedAt?: number;
  /** When each announcing value was first seen. */
  readonly values: Map<string, number>;
}

async function main(): Promise<void> {
  const cp = await ControlPlane.start({ log: (l) => console.error(`controlplane: ${l}`) });
  const access = parseKubeconfig(await Deno.readTextFile(cp.kubeconfigPath), cp.kubeconfigPath)
    .access;
  const connection = new ApiConnection(access);
  const core = typedApi(connection, CoreV1Api);
  const custom = typedApi(connection, CustomObjectsApi);
  const coordination = typedApi(connection, CoordinationV1Api);
  let allocator: ReturnType<typeof startAllocator> | undefined;
  const seen = new Map<string, Seen>();
  const watcher = new ResilientInformer<V1Service>(connection, {
    name: "services",
    path: "/api/v1/namespaces/bench/services",
    transform: withoutVersion,
  });
  watcher.onChange((_type, svc) => {
    const name = svc.metadata?.name ?? "";
    const entry: Seen = seen.get(name) ?? { values: new Map<string, number>() };
    seen.set(name, entry);
    const address = svc.status?.loadBalancer?.ingress?.[0]?.ip;
    if (address !== undefined && entry.addressedAt === undefined) {
      entry.address = address;
      entry.addressedAt = performance.now();
    }
    const announcing = svc.metadata?.annotations?.[Annotations.announcingIPv6];
    entry.announcing = announcing;
    if (announcing !== undefined && !entry.values.has(announcing)) {
      entry.values.set(announcing, performance.now());
    }
  });
  try {
    await core.createNamespace({ body: { metadata: { name: "bench" } } });
    await custom.createNamespacedCustomObject({
      group: "purelb.io",
      version: "v1",
      namespace: NAMESPACE,
      plural: "servicegroups",
      body: {
        apiVersion: "purelb.io/v1",
        kind: "ServiceGroup",
        metadata: { name: "default" },
        spec: { local: { v6pools: [{ pool: "2001:db8::1:0/112", subnet: "2001:db8::/64" }] } },
      },
    });
    watcher.start();
    await watcher.synced;
    allocator = startAllocator(cp.kubeconfigPath, NAMESPACE, ["--log-level", "info"]);
    await waitUntilReady(allocator);

    const createOne = async (name: string): Promise<number> => {
      const start = performance.now();
      await core.createNamespacedService({
        namespace: "bench",
        body: loadBalancerService(name, "IPv6"),
      });
      await waitFor(() => seen.get(name)?.addressedAt !== undefined, 10_000, `${name}`, 1);
      return (seen.get(name)?.addressedAt ?? NaN) - start;
    };

    // No node Leases: nothing to announce.
    const quiet: number[] = [];
    for (let i = 0; i < SERVICES; i++) quiet.push(await createOne(`quiet-${i}`));

    // Node Leases list the addresses, each Service's on one node.
    const holder = new Map<string, number>();
    const names = [...seen.keys()];
    names.forEach((name, i) => holder.set(name, i % NODES.length));
    const entriesOf = (node: number) =>
      [...holder.keys()].filter((n) => holder.get(n) === node).map((n) =>
        `eth0,${seen.get(n)?.address}`
      )
        .sort().join(" ");
    for (const [i, node] of NODES.entries()) {
      await coordination.createNamespacedLease({
        namespace: NAMESPACE,
        body: {
          metadata: {
            name: `purelb-node-${node}`,
            annotations: { [ANNOUNCING_ANNOTATION]: entriesOf(i) },
          },
          spec: { holderIdentity: node, renewTime: new MicroTime(), leaseDurationSeconds: 3600 },
        },
      });
    }
    const expected = (name: string) =>
      `${NODES[holder.get(name) ?? 0]},eth0,${seen.get(name)?.address}`;
    await waitFor(
      () => names.every((n) => seen.get(n)?.announcing === expected(n)),
      15_000,
      "every Service announced",
      5,
    );
    const patchLease = (node: number) =>
      coordination.patchNamespacedLease({
        namespace: NAMESPACE,
        name: `purelb-node-${NODES[node]}`,
        body: { metadata: { annotations: { [ANNOUNCING_ANNOTATION]: entriesOf(node) } } },
      }, mergePatch());

    /**
     * Moves addresses between node Leases, one after another (the new node's Lease is written
     * first, then the old one's), while new Services are created one at a time. `real`: the
     * moved addresses are Services' (each move is an announcing write, timed); otherwise an
     * address of no Service moves (the same Lease writes, no announcing write).
     */
    const underMoves = async (real: boolean, prefix: string) => {
      const handOvers: number[] = [];
      let moving = true;
      const moves = (async () => {
        for (let k = 0; k < HAND_OVERS; k++) {
          const name = real ? names[k % names.length] ?? "" : "none";
          const from = holder.get(name) ?? 0;
          const to = (from + 1) % NODES.length;
          holder.set(name, to);
          const value = expected(name);
          seen.get(name)?.values.delete(value);
          const start = performance.now();
          await patchLease(to);
          await patchLease(from);
          if (!real) continue;
          await waitFor(() => seen.get(name)?.values.has(value) === true, 10_000, value, 1);
          handOvers.push((seen.get(name)?.values.get(value) ?? NaN) - start);
        }
        moving = false;
      })();
      const created: number[] = [];
      for (let i = 0; moving || i < SERVICES; i++) created.push(await createOne(`${prefix}-${i}`));
      await moves;
      return { handOvers, created };
    };
    seen.set("none", { address: "2001:db8::ffff:1", values: new Map() });
    holder.set("none", 0);
    const control = await underMoves(false, "control");
    const { handOvers: handOver, created: busy } = await underMoves(true, "busy");

    quiet.sort((a, b) => a - b);
    busy.sort((a, b) => a - b);
    control.created.sort((a, b) => a - b);
    handOver.sort((a, b) => a - b);
    const round = (ms: number) => Math.round(ms * 10) / 10;
    const pct = (values: readonly number[]) =>
      `p50 ${round(percentile(values, 0.5))} ms, p99 ${round(percentile(values, 0.99))} ms`;
    const line = (label: string, value: string) => console.log(`  ${label.padEnd(64)} ${value}`);
    console.log(`announcing: ${HAND_OVERS} hand-overs among ${NODES.length} node Leases`);
    line("create-to-address, no node Leases", pct(quiet));
    line("create-to-address, while Leases change (no announcing writes)", pct(control.created));
    line("create-to-address, while addresses move (announcing writes)", pct(busy));
    line("Lease write to Service annotation naming the new node", pct(handOver));
    console.log(`BENCH ${
      JSON.stringify({
        name: "announcing",
        hand_overs: HAND_OVERS,
        allocate_quiet_p50_ms: round(percentile(quiet, 0.5)),
        allocate_quiet_p99_ms: round(percentile(quiet, 0.99)),
        allocate_lease_churn_p50_ms: round(percentile(control.created, 0.5)),
        allocate_lease_churn_p99_ms: round(percentile(control.created, 0.99)),
        allocate_busy_p50_ms: round(percentile(busy, 0.5)),
        allocate_busy_p99_ms: round(percentile(busy, 0.99)),
        busy_services: busy.length,
        hand_over_to_annotation_p50_ms: round(percentile(handOver, 0.5)),
        hand_over_to_annotation_p99_ms: round(percentile(handOver, 0.99)),
      })
    }`);
  } finally {
    await allocator?.stop();
    await watcher.stop();
    connection.close();
    await cp.stop();
  }
}

if (import.meta.main) await main();
