/**
 * Resources by cluster size (README "Resources by cluster size"): for each row of Services / LoadBalancers /
 * EndpointSlices / nodes, a fresh control plane with those objects (the nodes but one
 * simulated, see bench/cluster_sim.ts), the allocator and one real agent started on it; once
 * settled (every LoadBalancer addressed, the agent carrying what the election gives it), RSS
 * settled, then `--churn-seconds` of light churn (`--unrelated-rate` unrelated slice updates
 * and `--relevant-rate` relevant changes per second) with CPU measured over it, and peak RSS
 * (VmHWM) at the end. Also: the allocator restarted on a cluster with
 * `--restart-allocations` existing allocations (time to "existing allocations registered" and
 * to /readyz), and the RSS of an idle Deno process (bare and with our dependencies) as the
 * baseline of the same run. Prints a Markdown table and one `BENCH {...}` line.
 *
 * Reproduce (times on the 2-core test machine; object creation is most of it):
 * - `deno task bench` runs `deno run -A bench/resources.ts` (row `1k/100/2k/3`, restart with
 *   10,000 allocations): about 6 minutes.
 * - the README table: `deno run -A bench/resources.ts --rows 1k/100/2k/3,10k/1k/20k/50,50k/5k/100k/200`
 *   (row 1: ~2 min, row 2: ~8 min, row 3: ~35 min).
 * - `--restart-allocations 0` skips the restart measurement, `--rows ""` the rows.
 *
 * Needs root (network namespaces). Uses `PURELB_TEST_KUBECONFIG` when set (one cluster for
 * every row; what a row made is deleted after it), else one private control plane per row.
 *
 * @module
 */

import { allocatorServiceAccount, startAllocator, TestApi } from "../tests/allocator.ts";
import { waitFor } from "../tests/wait.ts";
import {
  ChurnDriver,
  depopulate,
  elapsedLog,
  flags,
  formatSize,
  GROUPS,
  idleDenoRssMb,
  IngressWatch,
  killSync,
  layout,
  onInterrupt,
  parseSize,
  populate,
  readProc,
  stopWithin,
  withBusyCluster,
  withCluster,
  within,
} from "./cluster_sim.ts";

const options = flags(Deno.args, {
  rows: "1k/100/2k/3",
  churnSeconds: 60,
  unrelatedRate: 10,
  relevantRate: 1,
  restartAllocations: 10_000,
});

const mb = (n: number) => Math.round(n * 10) / 10;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;
const log = elapsedLog();

interface ProgramRow {
  readonly rssSettledMb: number;
  readonly rssAfterChurnMb: number;
  readonly peakRssMb: number;
  readonly heapUsedMb: number;
  readonly cpuPercentOfCore: number;
  readonly childCpuPercentOfCore: number;
  readonly reconcilesPerMin: number;
  readonly apiRequestsPerMin: number;
}

interface Row {
  readonly size: string;
  readonly createPerS: Readonly<Record<string, number>>;
  readonly addressedS: number;
  readonly settledS: number;
  readonly agentCarries: number;
  readonly churnPerS: { readonly unrelated: number; readonly relevant: number };
  readonly agent: ProgramRow;
  readonly allocator: ProgramRow;
  readonly restarts: number;
}

async function measureRow(text: string): Promise<Row> {
  const size = parseSize(text);
  return await withBusyCluster({ size, prefix: "bench-res", log }, async (busy) => {
    const { sampler } = busy;
    const settled = await sampler.sampleNow();
    const churn = new ChurnDriver(busy.access, busy.layout, {
      unrelatedRate: options.unrelatedRate,
      relevantRate: options.relevantRate,
    });
    churn.start();
    const from = await sampler.sampleNow();
    await new Promise((resolve) => setTimeout(resolve, options.churnSeconds * 1000));
    const to = await sampler.sampleNow();
    const seconds = churn.elapsedSeconds();
    await churn.close();
    const program = (name: "agent" | "allocator"): ProgramRow => {
      const s = settled.get(name);
      const a = from.get(name);
      const b = to.get(name);
      if (s === undefined || a === undefined || b === undefined) throw new Error("no sample");
      const minutes = (b.t - a.t) / 60;
      const per = (key: string) => ((b.metrics[key] ?? 0) - (a.metrics[key] ?? 0)) / minutes;
      return {
        rssSettledMb: mb(s.rssMb),
        rssAfterChurnMb: mb(b.rssMb),
        peakRssMb: mb(b.hwmMb),
        heapUsedMb: mb((b.metrics["heapUsedBytes"] ?? 0) / 2 ** 20),
        cpuPercentOfCore: round((b.cpuSeconds - a.cpuSeconds) / (b.t - a.t) * 100),
        childCpuPercentOfCore: round((b.childCpuSeconds - a.childCpuSeconds) / (b.t - a.t) * 100),
        reconcilesPerMin: Math.round(per("reconciles")),
        apiRequestsPerMin: Math.round(per("apiRequests")),
      };
    };
    const row: Row = {
      size: formatSize(size),
      createPerS: Object.fromEntries(busy.creates.map((c) => [c.kind, Math.round(c.perSecond)])),
      addressedS: round(busy.addressedSeconds, 1),
      settledS: round(busy.settledSeconds, 1),
      agentCarries: busy.carries,
      churnPerS: {
        unrelated: round(churn.counts.unrelated / seconds, 1),
        relevant: round(churn.counts.relevant / seconds, 1),
      },
      agent: program("agent"),
      allocator: program("allocator"),
      restarts: busy.exits.length,
    };
    log(`row ${row.size}: ${JSON.stringify(row)}`);
    return row;
  });
}

interface RestartFigures {
  readonly allocations: number;
  readonly registered: number;
  readonly registeredS: number;
  readonly readyS: number;
  readonly rssAfterReadyMb: number;
  readonly firstAllocatorAllAddressedS: number;
  readonly servicesCreatePerS: number;
  /** Whether the first and the second allocator exited within 20 s of SIGTERM. */
  readonly exitedOnSigterm: readonly boolean[];
}

/** The allocator restarted with `count` existing allocations. */
async function measureRestart(count: number): Promise<RestartFigures> {
  return await withCluster(async (cluster, shared) => {
    const namespace = await cluster.createNamespace("bench-restart");
    const l = layout({ services: count, loadBalancers: count, slices: 0, nodes: 1 }, namespace);
    const access = cluster.adminConfig();
    const api = new TestApi(cluster, namespace);
    const dir = await Deno.makeTempDir({ prefix: "purelb-restart-" });
    const watch = new IngressWatch(access);
    const started: { pid: number; stop(): Promise<unknown> }[] = [];
    const forget = onInterrupt(() => started.forEach((p) => killSync(p.pid)));
    try {
      for (const [name, local] of Object.entries(GROUPS)) await api.createGroup(name, { local });
      const kubeconfig = await allocatorServiceAccount(cluster, namespace, dir);
      log(`restart: creating ${count} LoadBalancer Services`);
      const [creates] = await populate(access, l, { log });
      await watch.start();
      const firstStart = performance.now();
      const first = startAllocator(kubeconfig, namespace, ["--log-level", "info"]);
      started.push(first);
      await waitFor(() => watch.addressed().size >= count, 600_000, `${count} addressed`, 200);
      const firstAllocatorAllAddressedS = (performance.now() - firstStart) / 1000;
      log(
        `restart: the first allocator addressed all ${count} in ` +
          `${firstAllocatorAllAddressedS.toFixed(1)} s; restarting it`,
      );
      const firstExited = await stopWithin(first, 20_000);
      if (!firstExited) {
        log("WARNING the first allocator did not exit within 20 s of SIGTERM: killed");
      }
      const restartedAt = performance.now();
      const second = startAllocator(kubeconfig, namespace, ["--log-level", "info"]);
      started.push(second);
      const registeredLine = /"message":"leading: \d+ ServiceGroups, (\d+) existing allocations/;
      let registeredS = NaN;
      let readyS = NaN;
      const port = await second.port();
      await waitFor(
        async () => {
          if (Number.isNaN(registeredS) && registeredLine.test(second.logs())) {
            registeredS = (performance.now() - restartedAt) / 1000;
          }
          if (Number.isNaN(readyS)) {
            const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
            await response?.body?.cancel();
            if (response?.ok) readyS = (performance.now() - restartedAt) / 1000;
          }
          return !Number.isNaN(registeredS) && !Number.isNaN(readyS);
        },
        60_000,
        "the restarted allocator registered and ready",
        5,
      );
      const registered = Number(registeredLine.exec(second.logs())?.[1] ?? NaN);
      const rssAfterReadyMb = mb((await readProc(second.pid))?.rssMb ?? NaN);
      const secondExited = await stopWithin(second, 20_000);
      if (!secondExited) log("WARNING the second allocator did not exit within 20 s of SIGTERM");
      return {
        exitedOnSigterm: [firstExited, secondExited],
        allocations: count,
        registered,
        registeredS: round(registeredS),
        readyS: round(readyS),
        rssAfterReadyMb,
        firstAllocatorAllAddressedS: round(firstAllocatorAllAddressedS, 1),
        servicesCreatePerS: Math.round(creates?.perSecond ?? NaN),
      };
    } finally {
      forget();
      for (const p of started) await p.stop();
      await within(watch.stop(), 10_000, "stopping the Service watch");
      api.close();
      await Deno.remove(dir, { recursive: true });
      if (shared) {
        await depopulate(access, l);
        await cluster.deleteNamespace(namespace).catch(() => {});
      }
    }
  });
}

function table(rows: readonly Row[]): string {
  const lines = [
    "| Services / LoadBalancers / EndpointSlices / nodes | allocator RSS settled | allocator RSS peak | allocator CPU (light churn) | agent RSS settled | agent RSS peak | agent CPU (light churn) | settled after |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.size} | ${r.allocator.rssSettledMb} MB | ${r.allocator.peakRssMb} MB | ` +
        `${r.allocator.cpuPercentOfCore} % | ${r.agent.rssSettledMb} MB | ${r.agent.peakRssMb} MB | ` +
        `${r.agent.cpuPercentOfCore} % (+${r.agent.childCpuPercentOfCore} % ip) | ${r.settledS} s |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const bare = await idleDenoRssMb(false);
  const deps = await idleDenoRssMb(true);
  log(`baseline: idle deno ${mb(bare)} MB, with our dependencies loaded ${mb(deps)} MB`);
  const rows: Row[] = [];
  for (const text of options.rows.split(",").map((r) => r.trim()).filter(Boolean)) {
    rows.push(await measureRow(text));
    console.log(table(rows));
  }
  const restart = options.restartAllocations > 0
    ? await measureRestart(options.restartAllocations)
    : undefined;
  if (restart !== undefined) {
    log(
      `${restart.registeredS + 0 < 5 && restart.readyS < 5 ? "PASS" : "FAIL"} allocator ` +
        `restart with ${restart.allocations} allocations: ${restart.registered} registered after ` +
        `${restart.registeredS} s, ready after ${restart.readyS} s (under 5 s), RSS ` +
        `${restart.rssAfterReadyMb} MB`,
    );
  }
  console.log("");
  console.log(
    `Measured with \`deno run -A bench/resources.ts --rows ${options.rows}\`: RSS from ` +
      `/proc/<pid>/status (VmRSS settled, VmHWM peak), CPU from /proc/<pid>/stat over ` +
      `${options.churnSeconds} s of ${options.unrelatedRate} unrelated + ${options.relevantRate} ` +
      `relevant EndpointSlice changes per second. Idle deno: ${mb(bare)} MB; with our ` +
      `dependencies loaded: ${mb(deps)} MB.`,
  );
  console.log(table(rows));
  console.log(`BENCH ${
    JSON.stringify({
      bench: "resources",
      churn: {
        seconds: options.churnSeconds,
        unrelatedPerS: options.unrelatedRate,
        relevantPerS: options.relevantRate,
      },
      baseline: { idleDenoRssMb: mb(bare), idleDenoWithDepsRssMb: mb(deps) },
      rows,
      restart,
    })
  }`);
}

if (import.meta.main) {
  await main();
  Deno.exit(0);
}
