/**
 * Allocator load benchmark (issue 4): N Services created at once against a real control plane.
 *
 * Prints: the baseline (the same client patching N Service statuses itself, which is the API
 * server's limit for our write pattern), the time until all N have an address with the real
 * allocator, create-to-address latency p50/p99, the allocator's peak RSS, and the
 * create-to-address latency of single Services on an idle system.
 *
 * Run: `deno run -A bench/allocator_scenario.ts [N]` (also part of `deno task bench`).
 *
 * @module
 */

import { CoreV1Api, CustomObjectsApi, typedApi } from "../k8s/client.ts";
import { parseKubeconfig } from "../k8s/config.ts";
import { mergePatch } from "../k8s/client.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { startAllocator } from "../tests/allocator.ts";
import { waitFor } from "../tests/wait.ts";
import {
  inParallel,
  loadBalancerService,
  percentile,
  waitUntilReady,
  watchAddressed,
} from "./support.ts";

const N = Number(Deno.args[0] ?? "5000");
const CONCURRENCY = 16;

async function main(): Promise<void> {
  const cp = await ControlPlane.start({ log: (l) => console.error(`controlplane: ${l}`) });
  const access = parseKubeconfig(await Deno.readTextFile(cp.kubeconfigPath), cp.kubeconfigPath)
    .access;
  const connection = new ApiConnection(access);
  const core = typedApi(connection, CoreV1Api);
  const custom = typedApi(connection, CustomObjectsApi);
  const names = Array.from({ length: N }, (_, i) => `svc-${i}`);
  let allocator: ReturnType<typeof startAllocator> | undefined;
  try {
    // Baseline: the same client creates N Services (no allocator running), then patches all
    // their statuses as fast as it can with the allocator's concurrency.
    await core.createNamespace({ body: { metadata: { name: "baseline" } } });
    const baselineCreateStart = performance.now();
    await inParallel(names, CONCURRENCY, async (name) => {
      await core.createNamespacedService({
        namespace: "baseline",
        body: loadBalancerService(name, "IPv6"),
      });
    });
    const baselineCreateMs = performance.now() - baselineCreateStart;
    const baselineStart = performance.now();
    await inParallel(names, CONCURRENCY, async (name) => {
      await core.patchNamespacedServiceStatus({
        namespace: "baseline",
        name,
        body: { status: { loadBalancer: { ingress: [{ ip: "2001:db8::1", ipMode: "VIP" }] } } },
      }, mergePatch());
    });
    const baselineMs = performance.now() - baselineStart;
    // Backlog: the baseline's N Services (status cleared) wait for an allocator that starts
    // now, so the allocator's own throughput is measured, not the API server's create rate.
    await inParallel(names, CONCURRENCY, async (name) => {
      await core.patchNamespacedServiceStatus({
        namespace: "baseline",
        name,
        body: { status: { loadBalancer: { ingress: null } } },
      }, mergePatch());
    });

    await core.createNamespace({ body: { metadata: { name: "bench" } } });
    await custom.createNamespacedCustomObject({
      group: "purelb.io",
      version: "v1",
      namespace: "purelb-system",
      plural: "servicegroups",
      body: {
        apiVersion: "purelb.io/v1",
        kind: "ServiceGroup",
        metadata: { name: "default" },
        spec: {
          local: { v6pools: [{ pool: "2001:db8::1:0/112", subnet: "2001:db8::/64" }] },
        },
      },
    });
    const backlog = await watchAddressed(connection, "baseline");
    allocator = startAllocator(cp.kubeconfigPath, "purelb-system", [
      "--log-level",
      "info",
      "--workers",
      String(CONCURRENCY),
    ]);
    const backlogStart = performance.now();
    await waitUntilReady(allocator);
    const readyMs = performance.now() - backlogStart;
    await waitFor(() => backlog.addressedAt.size >= N, 600_000, `${N} waiting addressed`, 10);
    const backlogMs = Math.max(...backlog.addressedAt.values()) - backlogStart;
    await backlog.stop();

    const createdAt = new Map<string, number>();
    const { addressedAt, stop: stopWatching } = await watchAddressed(connection, "bench");

    const loadStart = performance.now();
    await inParallel(names, CONCURRENCY, async (name) => {
      createdAt.set(name, performance.now());
      await core.createNamespacedService({
        namespace: "bench",
        body: loadBalancerService(name, "IPv6"),
      });
    });
    const createdMs = performance.now() - loadStart;
    await waitFor(() => addressedAt.size >= N, 600_000, `all ${N} addressed`, 100);
    const allMs = Math.max(...addressedAt.values()) - loadStart;
    const latencies = names.map((n) => (addressedAt.get(n) ?? NaN) - (createdAt.get(n) ?? NaN))
      .sort((a, b) => a - b);
    const status = await Deno.readTextFile(`/proc/${allocator.pid}/status`);
    const peakRssMb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]) / 1024;

    // Idle: one Service at a time.
    const idle: number[] = [];
    for (let i = 0; i < 20; i++) {
      const name = `idle-${i}`;
      const start = performance.now();
      createdAt.set(name, start);
      await core.createNamespacedService({
        namespace: "bench",
        body: loadBalancerService(name, "IPv6"),
      });
      await waitFor(() => addressedAt.has(name), 10_000, `${name} addressed`, 1);
      idle.push((addressedAt.get(name) ?? NaN) - start);
    }
    idle.sort((a, b) => a - b);
    await stopWatching();

    const line = (label: string, value: string) => console.log(`  ${label.padEnd(60)} ${value}`);
    const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const pct = (values: readonly number[]) =>
      `p50 ${percentile(values, 0.5).toFixed(1)} ms, p99 ${percentile(values, 0.99).toFixed(1)} ms`;
    console.log(`allocator load, N = ${N} services, ${CONCURRENCY} concurrent client requests`);
    line(`baseline: the client creates ${N} services`, sec(baselineCreateMs));
    line(`baseline: the client patches ${N} statuses itself`, sec(baselineMs));
    line(`backlog: allocator started with ${N} waiting, all addressed`, sec(backlogMs));
    line("backlog: of which process start until ready", sec(readyMs));
    line(
      "backlog ratio to the patch baseline (from ready)",
      `${((backlogMs - readyMs) / baselineMs).toFixed(2)}x`,
    );
    line(`streaming: creating ${N} services while the allocator runs`, sec(createdMs));
    line(`streaming: until all ${N} have an address`, sec(allMs));
    line("streaming: create-to-address latency", pct(latencies));
    line("allocator peak RSS", `${peakRssMb.toFixed(0)} MB`);
    line("idle: single service create-to-address", pct(idle));
  } finally {
    await allocator?.stop();
    connection.close();
    await cp.stop();
  }
}

if (import.meta.main) await main();
