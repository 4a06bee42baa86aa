/**
 * Netbox allocation benchmark: N Services taken from a Netbox group through the real allocator
 * and API server, against a real NetBox (tests/netbox/real.ts: NetBox from PyPI, PostgreSQL and
 * Redis on loopback, gunicorn with 4 workers), compared in the same run with N Services from a
 * local pool.
 *
 * For each N and source: N Services created at once (32 requests in flight) while the
 * allocator runs; the time until all have an address and the p50/p99 of create-to-address;
 * then all deleted, and (Netbox) the time until every address is `reserved` again, with the
 * p50/p99 of delete-to-reserved. Ends with one `BENCH {...}` JSON line.
 *
 * Run: `deno run -A bench/netbox_scenario.ts [N...]` (default 50 500; part of `deno task bench`).
 *
 * @module
 */

import { CoreV1Api, CustomObjectsApi, typedApi } from "../k8s/client.ts";
import { parseKubeconfig } from "../k8s/config.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { ControlPlane } from "../tests/controlplane/controlplane.ts";
import { startAllocator } from "../tests/allocator.ts";
import { RealNetbox } from "../tests/netbox/real.ts";
import { NetboxScratch } from "../tests/netbox/seed.ts";
import { waitFor } from "../tests/wait.ts";
import {
  inParallel,
  loadBalancerService,
  percentile,
  waitUntilReady,
  watchAddressed,
} from "./support.ts";

const SIZES = Deno.args.length > 0 ? Deno.args.map(Number) : [50, 500];
const CREATE_CONCURRENCY = 32;
const WORKERS = Number(Deno.env.get("PURELB_BENCH_WORKERS") ?? "16");
const WARM_UP = 32;

interface Figures {
  readonly source: string;
  readonly n: number;
  /** First create sent to last Service addressed, ms. */
  readonly allAddressedMs: number;
  readonly createToAddressP50Ms: number;
  readonly createToAddressP99Ms: number;
  /** Netbox only: first delete to last address reserved again, ms. */
  readonly allGivenBackMs?: number;
  readonly deleteToReservedP50Ms?: number;
  readonly deleteToReservedP99Ms?: number;
}

const round = (ms: number) => Math.round(ms);

async function main(): Promise<void> {
  const log = (l: string) => console.error(l);
  const [cp, netbox] = await Promise.all([
    ControlPlane.start({ log: (l) => log(`controlplane: ${l}`) }),
    RealNetbox.start({ log: (l) => log(`netbox: ${l}`) }),
  ]);
  const scratch = new NetboxScratch(netbox.access, "bench");
  const access = parseKubeconfig(await Deno.readTextFile(cp.kubeconfigPath), cp.kubeconfigPath)
    .access;
  const connection = new ApiConnection(access);
  const core = typedApi(connection, CoreV1Api);
  const custom = typedApi(connection, CustomObjectsApi);
  let allocator: ReturnType<typeof startAllocator> | undefined;
  const figures: Figures[] = [];
  try {
    const tenant = await scratch.tenant("bench");
    const vrf = await scratch.vrf("bench");
    const most = Math.max(...SIZES);
    await scratch.addRange("2001:db8:2::1/64", most, { tenant, status: "reserved", vrf });
    const createGroup = (name: string, spec: unknown) =>
      custom.createNamespacedCustomObject({
        group: "purelb.io",
        version: "v1",
        namespace: "purelb-system",
        plural: "servicegroups",
        body: { apiVersion: "purelb.io/v1", kind: "ServiceGroup", metadata: { name }, spec },
      });
    await createGroup("local", {
      local: { v6pools: [{ pool: "2001:db8:1::/112", subnet: "2001:db8:1::/64" }] },
    });
    await createGroup("netbox", { netbox: { url: netbox.access.url, tenant } });
    allocator = startAllocator(cp.kubeconfigPath, "purelb-system", [
      "--log-level",
      "info",
      "--workers",
      String(WORKERS),
    ], { NETBOX_USER_TOKEN: netbox.access.tokenV2 });
    await waitUntilReady(allocator);
    // NetBox's workers load most of Django on their first requests (seconds each): one round
    // of takes and give-backs first, not measured, as on a NetBox that has been running.
    await measure(core, connection, scratch, tenant, "netbox", WARM_UP, "warm-up");

    for (const n of SIZES) {
      for (const source of ["local", "netbox"]) {
        figures.push(await measure(core, connection, scratch, tenant, source, n));
        log(`done: ${source} x ${n}`);
      }
    }
  } finally {
    await allocator?.stop();
    connection.close();
    await scratch.cleanup().catch((error) => log(`cleanup: ${error}`));
    await netbox.stop();
    await cp.stop();
  }
  console.log(`netbox allocation against a real NetBox, ${WORKERS} allocator workers`);
  for (const f of figures) {
    const back = f.allGivenBackMs === undefined
      ? ""
      : `; all given back in ${
        (f.allGivenBackMs / 1000).toFixed(2)
      } s (delete-to-reserved p50 ${f.deleteToReservedP50Ms} ms, p99 ${f.deleteToReservedP99Ms} ms)`;
    console.log(
      `  ${f.source.padEnd(6)} N=${String(f.n).padEnd(4)} all addressed in ${
        (f.allAddressedMs / 1000).toFixed(2)
      } s (create-to-address p50 ${f.createToAddressP50Ms} ms, p99 ${f.createToAddressP99Ms} ms)${back}`,
    );
  }
  console.log(`BENCH ${JSON.stringify({ name: "netbox_scenario", figures })}`);
}

async function measure(
  core: CoreV1Api,
  connection: ApiConnection,
  scratch: NetboxScratch,
  tenant: string,
  source: string,
  n: number,
  label = "",
): Promise<Figures> {
  const namespace = `bench-${source}-${n}${label ? `-${label}` : ""}`;
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const watch = await watchAddressed(connection, namespace);
  const names = Array.from({ length: n }, (_, i) => `svc-${i}`);
  const createdAt = new Map<string, number>();
  const start = performance.now();
  await inParallel(names, CREATE_CONCURRENCY, async (name) => {
    createdAt.set(name, performance.now());
    await core.createNamespacedService({
      namespace,
      body: loadBalancerService(name, "IPv6", { "purelb.io/service-group": source }),
    });
  });
  await waitFor(() => watch.addressedAt.size >= n, 600_000, `${n} addressed`, 10);
  await watch.stop();
  const latencies = names.map((name) =>
    (watch.addressedAt.get(name) ?? NaN) - (createdAt.get(name) ?? NaN)
  ).sort((a, b) => a - b);
  const allAddressedMs = Math.max(...watch.addressedAt.values()) - start;

  const list = await core.listNamespacedService({ namespace });
  const serviceOf = new Map<string, string>();
  for (const svc of list.items) {
    for (const ingress of svc.status?.loadBalancer?.ingress ?? []) {
      if (ingress.ip) serviceOf.set(ingress.ip, svc.metadata?.name ?? "");
    }
  }
  const deletedAt = new Map<string, number>();
  const deleteStart = performance.now();
  const deleting = inParallel(names, CREATE_CONCURRENCY, async (name) => {
    deletedAt.set(name, performance.now());
    await core.deleteNamespacedService({ namespace, name });
  });
  let back: Partial<Figures> = {};
  if (source === "netbox") {
    const reservedAt = new Map<string, number>();
    await waitFor(
      async () => {
        const records = await scratch.records(tenant);
        const now = performance.now();
        for (const r of records) {
          if (r.status === "reserved" && serviceOf.has(r.address) && !reservedAt.has(r.address)) {
            reservedAt.set(r.address, now);
          }
        }
        return records.every((r) => r.status === "reserved");
      },
      600_000,
      "every Netbox address reserved again",
      50,
    );
    const toReserved = [...reservedAt].map(([address, at]) =>
      at - (deletedAt.get(serviceOf.get(address) ?? "") ?? NaN)
    ).sort((a, b) => a - b);
    back = {
      allGivenBackMs: round(Math.max(...reservedAt.values()) - deleteStart),
      deleteToReservedP50Ms: round(percentile(toReserved, 0.5)),
      deleteToReservedP99Ms: round(percentile(toReserved, 0.99)),
    };
  }
  await deleting;
  return {
    source,
    n,
    allAddressedMs: round(allAddressedMs),
    createToAddressP50Ms: round(percentile(latencies, 0.5)),
    createToAddressP99Ms: round(percentile(latencies, 0.99)),
    ...back,
  };
}

if (import.meta.main) await main();
