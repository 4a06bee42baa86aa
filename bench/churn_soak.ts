/**
 * Churn and soak benchmark (issue 12): a busy cluster in a real API server, both programs
 * running, a steady rate of EndpointSlice churn, bounded in time.
 *
 * The cluster: `--size` Services / LoadBalancers / EndpointSlices / nodes (default
 * `1k/100/2k/3`), created directly in the API server (no controller manager runs); the nodes
 * but one are simulated (their Leases renewed every 2 s from this process, half of them
 * competing in the real node's elections); one real agent in a network namespace node
 * (`node-a`) and the allocator, each as its service account under its production permission
 * set and V8 flags. After the programs have settled (every LoadBalancer addressed, the agent
 * carrying exactly what the election gives it), the soak: `--unrelated-rate` unrelated slice
 * updates per second and `--relevant-rate` relevant changes per second (see
 * {@linkcode ChurnDriver}) for `--minutes`.
 *
 * Prints one line per minute (RSS of each program, CPU s/min, reconciles/min, `ip`
 * processes/min, API requests/min, churn achieved) and a final `BENCH {...}` JSON line. The
 * criteria (RSS at the end within 10 % of RSS after 5 minutes, agent CPU under 2 % of a core,
 * no restarts) are printed as PASS/FAIL; the exit code is 0 either way unless the run failed.
 *
 * Reproduce:
 * - smoke (part of `deno task bench`, about 4 minutes):
 *   `deno run -A bench/churn_soak.ts --minutes 2`
 * - the figure (about 35 minutes):
 *   `deno run -A bench/churn_soak.ts --minutes 30 --size 10k/1k/20k/50 --unrelated-rate 50 --relevant-rate 5`
 *
 * Needs root (network namespaces). Uses `PURELB_TEST_KUBECONFIG` when set (and deletes what it
 * made), else starts a private control plane.
 *
 * @module
 */

import {
  ChurnDriver,
  elapsedLog,
  flags,
  formatSize,
  idleDenoRssMb,
  parseSize,
  type ProcessSample,
  withBusyCluster,
} from "./cluster_sim.ts";

const options = flags(Deno.args, {
  minutes: 2,
  unrelatedRate: 50,
  relevantRate: 5,
  size: "1k/100/2k/3",
  sampleSeconds: 10,
  /** Minute of the soak whose RSS the end is compared with (capped at half the soak). */
  earlyMinute: 5,
});

const mb = (n: number) => Math.round(n * 10) / 10;
const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

/** Per-minute figures from two samples of one program. */
function rates(a: ProcessSample, b: ProcessSample) {
  const minutes = (b.t - a.t) / 60;
  const per = (key: string) => ((b.metrics[key] ?? 0) - (a.metrics[key] ?? 0)) / minutes;
  return {
    cpuSecondsPerMin: (b.cpuSeconds - a.cpuSeconds) / minutes,
    childCpuSecondsPerMin: (b.childCpuSeconds - a.childCpuSeconds) / minutes,
    reconcilesPerMin: per("reconciles"),
    /** Mean wall time of one reconcile, seconds (agent). */
    reconcileSecondsMean: per("reconcileSeconds") / per("reconciles"),
    leaseErrorsPerMin: per("leaseErrors"),
    addressChangesPerMin: per("addressChanges"),
    ipProcessesPerMin: per("ipProcesses"),
    apiRequestsPerMin: per("apiRequests"),
    relevantEventsPerMin: per("eventsRelevant"),
    irrelevantEventsPerMin: per("eventsIrrelevant"),
  };
}

async function main(): Promise<void> {
  const size = parseSize(options.size);
  const log = elapsedLog();
  const bareRss = await idleDenoRssMb(false);
  const depsRss = await idleDenoRssMb(true);
  log(`baseline: idle deno ${mb(bareRss)} MB, with our npm dependencies ${mb(depsRss)} MB`);

  await withBusyCluster({ size, prefix: "bench-soak", log }, async (busy) => {
    const { sampler, exits } = busy;
    const sim = busy.leases;
    const creates = busy.creates;
    const addressedMs = busy.addressedSeconds * 1000;
    const settledMs = busy.settledSeconds * 1000;
    const expected = busy.carries;
    let churn: ChurnDriver | undefined;
    try {
      const settled = await sampler.sampleNow();

      churn = new ChurnDriver(busy.access, busy.layout, {
        unrelatedRate: options.unrelatedRate,
        relevantRate: options.relevantRate,
      });
      const soakStart = await sampler.sampleNow();
      churn.start();
      const soakT0 = sampler.seconds();
      const minuteMarks: Record<string, number>[] = [];
      let previous = soakStart;
      let lastChurn = { ...churn.counts };
      let lastLeases = sim.renewals;
      for (let minute = 1; minute <= options.minutes; minute++) {
        while (sampler.seconds() - soakT0 < minute * 60 - 0.05) {
          const wait = Math.min(
            options.sampleSeconds * 1000,
            (soakT0 + minute * 60 - sampler.seconds()) * 1000,
          );
          await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 10)));
          if (sampler.seconds() - soakT0 < minute * 60 - 0.05) await sampler.sampleNow();
        }
        const now = await sampler.sampleNow();
        const ag = now.get("agent");
        const al = now.get("allocator");
        const pa = previous.get("agent");
        const pl = previous.get("allocator");
        if (ag === undefined || al === undefined || pa === undefined || pl === undefined) {
          throw new Error("no sample");
        }
        const ra = rates(pa, ag);
        const rl = rates(pl, al);
        const seconds = ag.t - pa.t;
        const unrelated = (churn.counts.unrelated - lastChurn.unrelated) / seconds;
        const relevant = (churn.counts.relevant - lastChurn.relevant) / seconds;
        const leases = (sim.renewals - lastLeases) / seconds;
        lastChurn = { ...churn.counts };
        lastLeases = sim.renewals;
        previous = now;
        minuteMarks.push({
          minute,
          agentRssMb: mb(ag.rssMb),
          agentCpuSPerMin: round(ra.cpuSecondsPerMin),
          agentIpCpuSPerMin: round(ra.childCpuSecondsPerMin),
          agentReconcilesPerMin: Math.round(ra.reconcilesPerMin),
          agentIpProcessesPerMin: Math.round(ra.ipProcessesPerMin),
          agentApiPerMin: Math.round(ra.apiRequestsPerMin),
          allocatorRssMb: mb(al.rssMb),
          allocatorCpuSPerMin: round(rl.cpuSecondsPerMin),
          allocatorReconcilesPerMin: Math.round(rl.reconcilesPerMin),
          allocatorApiPerMin: Math.round(rl.apiRequestsPerMin),
          unrelatedPerS: round(unrelated, 1),
          relevantPerS: round(relevant, 1),
          scrapesTimedOut: [ag, al].filter((x) => !x.scraped).length,
        });
        const missed = [ag, al].some((x) => !x.scraped)
          ? " | a /metrics scrape timed out (15 s): its counters count in the next minute"
          : "";
        log(
          `min ${String(minute).padStart(2)} | agent RSS ${mb(ag.rssMb)} MB (heap ${
            mb((ag.metrics["heapUsedBytes"] ?? 0) / 2 ** 20)
          }), CPU ${ra.cpuSecondsPerMin.toFixed(2)} s/min (+ip ${
            ra.childCpuSecondsPerMin.toFixed(2)
          }), ${Math.round(ra.reconcilesPerMin)} reconciles/min (${
            ra.reconcileSecondsMean.toFixed(2)
          } s each), ${Math.round(ra.addressChangesPerMin)} address changes/min, ${
            Math.round(ra.leaseErrorsPerMin)
          } lease errors/min, ${Math.round(ra.ipProcessesPerMin)} ip/min, ${
            Math.round(ra.apiRequestsPerMin)
          } API req/min, events ${Math.round(ra.relevantEventsPerMin)} relevant + ${
            Math.round(ra.irrelevantEventsPerMin)
          } not /min | allocator RSS ${mb(al.rssMb)} MB, CPU ${
            rl.cpuSecondsPerMin.toFixed(2)
          } s/min, ${Math.round(rl.reconcilesPerMin)} reconciles/min, ${
            Math.round(rl.apiRequestsPerMin)
          } API req/min | churn ${unrelated.toFixed(1)} + ${relevant.toFixed(1)}/s, leases ${
            leases.toFixed(1)
          }/s${missed}`,
        );
      }
      const soakSeconds = sampler.seconds() - soakT0;
      churn.stop();
      const earlyMinute = Math.min(options.earlyMinute, Math.max(1, options.minutes / 2));
      const figures = (name: "agent" | "allocator") => {
        const start = soakStart.get(name);
        const early = sampler.at(name, soakT0 + earlyMinute * 60);
        const end = sampler.last(name);
        const all = sampler.samples.get(name) ?? [];
        if (start === undefined || early === undefined || end === undefined) {
          throw new Error(`no samples of ${name}`);
        }
        const r = rates(start, end);
        const settledSample = settled.get(name);
        return {
          rssSettledMb: mb(settledSample?.rssMb ?? NaN),
          rssEarlyMb: mb(early.rssMb),
          rssEndMb: mb(end.rssMb),
          rssEndToEarly: round(end.rssMb / early.rssMb, 3),
          rssMaxSampledMb: mb(Math.max(...all.map((s) => s.rssMb))),
          peakRssMb: mb(end.hwmMb),
          heapUsedEndMb: mb((end.metrics["heapUsedBytes"] ?? 0) / 2 ** 20),
          cpuPercentOfCore: round(r.cpuSecondsPerMin / 60 * 100),
          childCpuPercentOfCore: round(r.childCpuSecondsPerMin / 60 * 100),
          reconcilesPerMin: Math.round(r.reconcilesPerMin),
          reconcileSecondsMean: round(r.reconcileSecondsMean, 3),
          addressChangesPerMin: Math.round(r.addressChangesPerMin),
          leaseErrors: end.metrics["leaseErrors"] ?? 0,
          fencedAtEnd: end.metrics["fenced"] ?? 0,
          ipProcessesPerMin: Math.round(r.ipProcessesPerMin),
          apiRequestsPerMin: Math.round(r.apiRequestsPerMin),
          relevantEventsPerMin: Math.round(r.relevantEventsPerMin),
          irrelevantEventsPerMin: Math.round(r.irrelevantEventsPerMin),
          watchStreams: end.metrics["watches"] ?? 0,
        };
      };
      const agentFigures = figures("agent");
      const allocatorFigures = figures("allocator");
      const achieved = {
        unrelatedPerS: round(churn.counts.unrelated / soakSeconds, 1),
        relevantPerS: round(churn.counts.relevant / soakSeconds, 1),
        failures: churn.counts.failures,
        skipped: churn.counts.skipped,
        leaseRenewalsPerS: round(sim.renewals / (sampler.seconds() - 0), 1),
        leaseFailures: sim.failures,
        leaseLateRounds: sim.late,
      };
      const within = (f: { rssEndToEarly: number }) => Math.abs(f.rssEndToEarly - 1) <= 0.1;
      const criteria = {
        agentRssWithin10pct: within(agentFigures),
        allocatorRssWithin10pct: within(allocatorFigures),
        agentCpuUnder2pct: agentFigures.cpuPercentOfCore < 2,
        zeroRestarts: exits.length === 0,
      };
      const verdict = (ok: boolean) => ok ? "PASS" : "FAIL";
      log(
        `soak ${options.minutes} min at ${achieved.unrelatedPerS} unrelated + ` +
          `${achieved.relevantPerS} relevant changes/s (asked ${options.unrelatedRate} + ` +
          `${options.relevantRate}; ${achieved.failures} failed, ${achieved.skipped} skipped)`,
      );
      log(
        `  ${verdict(criteria.agentRssWithin10pct)} agent RSS end ${agentFigures.rssEndMb} MB ` +
          `vs ${agentFigures.rssEarlyMb} MB at minute ${earlyMinute} ` +
          `(x${agentFigures.rssEndToEarly}, within 10 %)`,
      );
      log(
        `  ${verdict(criteria.allocatorRssWithin10pct)} allocator RSS end ` +
          `${allocatorFigures.rssEndMb} MB vs ${allocatorFigures.rssEarlyMb} MB at minute ` +
          `${earlyMinute} (x${allocatorFigures.rssEndToEarly}, within 10 %)`,
      );
      log(
        `  ${verdict(criteria.agentCpuUnder2pct)} agent CPU ` +
          `${agentFigures.cpuPercentOfCore} % of a core (under 2 %; its ip processes add ` +
          `${agentFigures.childCpuPercentOfCore} %)`,
      );
      log(`  ${verdict(criteria.zeroRestarts)} restarts: ${exits.length} ${exits.join("; ")}`);
      console.log(`BENCH ${
        JSON.stringify({
          bench: "churn_soak",
          size: formatSize(size),
          minutes: options.minutes,
          earlyMinute,
          asked: { unrelatedPerS: options.unrelatedRate, relevantPerS: options.relevantRate },
          achieved,
          baseline: {
            idleDenoRssMb: mb(bareRss),
            idleDenoWithDepsRssMb: mb(depsRss),
            createPerS: Object.fromEntries(
              creates.map((c) => [c.kind, Math.round(c.perSecond)]),
            ),
          },
          settle: {
            addressedS: round(addressedMs / 1000, 1),
            settledS: round(settledMs / 1000, 1),
            agentCarries: expected,
          },
          agent: agentFigures,
          allocator: allocatorFigures,
          restarts: exits.length,
          criteria,
          perMinute: minuteMarks,
        })
      }`);
    } finally {
      await churn?.close();
    }
    return true;
  });
}

if (import.meta.main) {
  await main();
  Deno.exit(0);
}
