import assert from "node:assert/strict";
import { CoordinationV1Api, typedApi } from "./client.ts";
import {
  LeaderElectionConfigError,
  type LeaderElectionOptions,
  LeaderElector,
} from "./leaderelection.ts";
import { ApiConnection } from "./transport.ts";
import { clusterTest, type TestCluster } from "../tests/cluster.ts";
import { waitFor } from "../tests/wait.ts";

const TIMING = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 400 } as const;
const LEASE_RULES = [{
  apiGroups: ["coordination.k8s.io"],
  resources: ["leases"],
  verbs: ["get", "create", "update"],
}];

interface Candidate {
  readonly elector: LeaderElector;
  readonly connection: ApiConnection;
  startedAt: number | undefined;
  stoppedAt: number | undefined;
}

async function candidate(
  c: TestCluster,
  namespace: string,
  identity: string,
  overrides: Partial<LeaderElectionOptions> = {},
): Promise<Candidate> {
  await c.grant(namespace, identity, LEASE_RULES);
  const connection = new ApiConnection(await c.serviceAccountConfig(namespace, identity), 2_000);
  const result: Candidate = {
    connection,
    startedAt: undefined,
    stoppedAt: undefined,
    elector: new LeaderElector(typedApi(connection, CoordinationV1Api), {
      namespace,
      name: "allocator",
      identity,
      ...TIMING,
      onStartedLeading: () => result.startedAt = performance.now(),
      onStoppedLeading: () => result.stoppedAt = performance.now(),
      ...overrides,
    }),
  };
  return result;
}

/** Samples both candidates every 5 ms and records whether they ever both led. */
function watchForTwoLeaders(a: Candidate, b: Candidate): { stop(): boolean } {
  let both = false;
  const timer = setInterval(() => both ||= a.elector.isLeader && b.elector.isLeader, 5);
  return {
    stop() {
      clearInterval(timer);
      return both;
    },
  };
}

clusterTest(
  "of two candidates exactly one leads; a graceful stop hands over at once",
  async (c) => {
    const ns = await c.createNamespace("election");
    const a = await candidate(c, ns, "cand-a");
    const b = await candidate(c, ns, "cand-b");
    const overlap = watchForTwoLeaders(a, b);
    a.elector.run();
    b.elector.run();
    try {
      await waitFor(() => a.elector.isLeader || b.elector.isLeader, 10_000, "a leader");
      const [leader, standby] = a.elector.isLeader ? [a, b] : [b, a];
      assert.equal(standby.elector.isLeader, false);
      const lease = await typedApi(a.connection, CoordinationV1Api).readNamespacedLease({
        namespace: ns,
        name: "allocator",
      });
      assert.equal(lease.spec?.holderIdentity, leader.elector.observedLeader);
      await waitFor(
        () => standby.elector.observedLeader === leader.elector.observedLeader,
        5_000,
        "the standby to see the leader",
      );

      const stopAt = performance.now();
      await leader.elector.stop();
      assert.equal(leader.elector.isLeader, false);
      await waitFor(() => standby.elector.isLeader, TIMING.leaseDurationMs, "the standby to lead");
      const handover = performance.now() - stopAt;
      console.log(`graceful hand-over: ${handover.toFixed(0)} ms`);
      assert.ok(handover < TIMING.leaseDurationMs, `hand-over took ${handover} ms`);
      assert.equal(overlap.stop(), false, "two leaders at once");
    } finally {
      overlap.stop();
      await a.elector.stop();
      await b.elector.stop();
      a.connection.close();
      b.connection.close();
      await c.deleteNamespace(ns);
    }
  },
);

clusterTest("a leader that cannot renew stops acting before the other acquires", async (c) => {
  const ns = await c.createNamespace("election-fence");
  const a = await candidate(c, ns, "cand-a");
  const b = await candidate(c, ns, "cand-b");
  const overlap = watchForTwoLeaders(a, b);
  a.elector.run();
  try {
    await waitFor(() => a.elector.isLeader, 10_000, "a to lead");
    b.elector.run();
    await waitFor(() => b.elector.observedLeader === "cand-a", 5_000, "b to see a lead");

    // From now on a's renewals are refused (403): it is cut off, as in a partition.
    const cutAt = performance.now();
    await c.revoke(ns, "cand-a");
    await waitFor(
      () => b.elector.isLeader,
      TIMING.leaseDurationMs + 3 * TIMING.retryPeriodMs + 1_000,
      "b to take over",
    );
    const { stoppedAt } = a;
    const { startedAt } = b;
    assert.ok(stoppedAt !== undefined && startedAt !== undefined);
    console.log(
      `a stopped ${(stoppedAt - cutAt).toFixed(0)} ms after the cut, ` +
        `b started ${(startedAt - cutAt).toFixed(0)} ms after it`,
    );
    assert.ok(stoppedAt < startedAt, "the old leader stopped before the new one started");
    assert.ok(stoppedAt - cutAt <= TIMING.renewDeadlineMs + 50, "a stopped by its renew deadline");
    assert.equal(overlap.stop(), false, "two leaders at once");
  } finally {
    overlap.stop();
    await a.elector.stop();
    await b.elector.stop();
    a.connection.close();
    b.connection.close();
    await c.deleteNamespace(ns);
  }
});

Deno.test("unsafe timings are refused with the reason", () => {
  const api = {} as CoordinationV1Api;
  const base = { namespace: "n", name: "l", identity: "i" };
  assert.throws(
    () => new LeaderElector(api, { ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }),
    (e: unknown) => e instanceof LeaderElectionConfigError && /renewDeadline/.test(e.message),
  );
  assert.throws(
    () => new LeaderElector(api, { ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }),
    (e: unknown) => e instanceof LeaderElectionConfigError && /retryPeriod/.test(e.message),
  );
});
