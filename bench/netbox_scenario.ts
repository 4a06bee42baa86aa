/**
 * Netbox allocation benchmark (issue 8): N Services taken from a Netbox group through the real
 * allocator and API server, against the Netbox test server, compared in the same run with N
 * Services from a local pool.
 *
 * Prints, for each source: the time until N waiting Services all have an address, the
 * create-to-address latency of single Services on an idle system, and (Netbox) the time until
 * every address is back to `reserved` after the Services are deleted.
 *
 * Run: `deno run -A bench/netbox_scenario.ts [N]` (also part of `deno task bench`).
 *
 * @module
 */

import { CoreV1Api, CustomObjectsApi, typedApi } from "../k8s/client.ts";
import { parseKubeconfig } from "../k8s/config.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { startAllocator } from "../tests/allocator.ts";
import { NetboxTestServer } from "../tests/netbox/mod.ts";
import { waitFor } from "../tests/wait.ts";
import {
  inParallel,
  loadBalancerService,
  percentile,
  waitUntilReady,
  watchAddressed,
} from "./support.ts";

const N = Number(Deno.args[0] ?? "500");
const CONCURRENCY = 16;
const IDLE_SAMPLES = 20;

async function main(): Promise<void> {
  const cp = await ControlPlane.start({ log: (l) => console.error(`controlplane: ${l}`) });
  const netbox = await NetboxTestServer.start({ tenants: ["bench"] });
  netbox.addRange("198.51.100.1/16", N + IDLE_SAMPLES, { tenant: "bench", status: "reserved" });
  const access = parseKubeconfig(await Deno.readTextFile(cp.kubeconfigPath), cp.kubeconfigPath)
    .access;
  const connection = new ApiConnection(access);
  const core = typedApi(connection, CoreV1Api);
  const custom = typedApi(connection, CustomObjectsApi);
  let allocator: ReturnType<typeof startAllocator> | undefined;
  const createGroup = (name: string, spec: unknown) =>
    custom.createNamespacedCustomObject({
      group: "purelb.io",
      version: "v1",
      namespace: "purelb-system",
      plural: "servicegroups",
      body: { apiVersion: "purelb.io/v1", kind: "ServiceGroup", metadata: { name }, spec },
    });
  try {
    await createGroup("local", {
      local: { v4pools: [{ pool: "192.0.2.0/16", subnet: "192.0.2.0/16" }] },
    });
    await createGroup("netbox", { netbox: { url: netbox.url, tenant: "bench" } });
    const results: string[] = [];
    const line = (label: string, value: string) => results.push(`  ${label.padEnd(60)} ${value}`);
    const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const pct = (values: readonly number[]) =>
      `p50 ${percentile(values, 0.5).toFixed(1)} ms, p99 ${percentile(values, 0.99).toFixed(1)} ms`;

    for (const group of ["local", "netbox"]) {
      const namespace = `bench-${group}`;
      const names = Array.from({ length: N }, (_, i) => `svc-${i}`);
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      await inParallel(names, CONCURRENCY, async (name) => {
        await core.createNamespacedService({
          namespace,
          body: loadBalancerService(name, "IPv4", { "purelb.io/service-group": group }),
        });
      });
      const watch = await watchAddressed(connection, namespace);
      allocator = startAllocator(cp.kubeconfigPath, "purelb-system", [
        "--log-level",
        "info",
        "--workers",
        String(CONCURRENCY),
      ], { NETBOX_USER_TOKEN: netbox.token });
      const start = performance.now();
      await waitUntilReady(allocator);
      const readyMs = performance.now() - start;
      await waitFor(() => watch.addressedAt.size >= N, 600_000, `${N} addressed`, 10);
      const backlogMs = Math.max(...watch.addressedAt.values()) - start - readyMs;

      const idle: number[] = [];
      for (let i = 0; i < IDLE_SAMPLES; i++) {
        const name = `idle-${i}`;
        const created = performance.now();
        await core.createNamespacedService({
          namespace,
          body: loadBalancerService(name, "IPv4", { "purelb.io/service-group": group }),
        });
        await waitFor(() => watch.addressedAt.has(name), 10_000, `${name} addressed`, 1);
        idle.push((watch.addressedAt.get(name) ?? NaN) - created);
      }
      idle.sort((a, b) => a - b);
      await watch.stop();
      line(`${group}: ${N} waiting services all addressed (from ready)`, sec(backlogMs));
      line(`${group}: per service`, `${(backlogMs / N).toFixed(2)} ms`);
      line(`${group}: idle single service create-to-address`, pct(idle));

      const deleteStart = performance.now();
      const all = [...names, ...Array.from({ length: IDLE_SAMPLES }, (_, i) => `idle-${i}`)];
      await inParallel(all, CONCURRENCY, async (name) => {
        await core.deleteNamespacedService({ namespace, name });
      });
      if (group === "netbox") {
        await waitFor(
          () => netbox.records().every((r) => r.status === "reserved"),
          600_000,
          "every Netbox address reserved again",
          10,
        );
        line(
          `netbox: delete ${all.length} services until all reserved again`,
          sec(performance.now() - deleteStart),
        );
      }
      await allocator.stop();
      allocator = undefined;
    }
    console.log(`netbox allocation, N = ${N} services, ${CONCURRENCY} workers`);
    for (const result of results) console.log(result);
  } finally {
    await allocator?.stop();
    connection.close();
    await netbox.close();
    await cp.stop();
  }
}

if (import.meta.main) await main();
