/**
 * The demo end to end: `demo/main.ts --once` as a subprocess (what `deno task demo --once`
 * runs), its printed tables (with the router's next hops) and hand-over line checked; and the
 * demo without root.
 *
 * @module
 */

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { assertRoot, rootTestOptions } from "../tests/system.ts";
import { testbedIpPath } from "../tests/netns/mod.ts";
import { tryParseAddress } from "../ipam/mod.ts";
import { notRootMessage } from "./main.ts";
import { HANDOVER_SERVICE, NODES, unmetExpectations } from "./scenario.ts";
import { type DemoRow, parseDemoTables } from "./table.ts";

const REPO = fileURLToPath(new URL("..", import.meta.url));
const MAIN = fileURLToPath(new URL("./main.ts", import.meta.url));
/** The whole demo run must end within this (it takes about 15 s once binaries are cached). */
const DEMO_DEADLINE_MS = 150_000;
/** A graceful hand-over with gratuitous ARP is well under a second; this is the bound. */
const MAX_GAP_MS = 5_000;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command` with a deadline: SIGINT at the deadline (the demo cleans up), SIGKILL 30 s later. */
async function run(command: string, args: readonly string[], env?: Record<string, string>) {
  const child = new Deno.Command(command, {
    args: [...args],
    cwd: REPO,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(env ? { env, clearEnv: true } : {}),
  }).spawn();
  const interrupt = setTimeout(() => {
    try {
      child.kill("SIGINT");
    } catch { /* exited */ }
  }, DEMO_DEADLINE_MS);
  const kill = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
  }, DEMO_DEADLINE_MS + 30_000);
  try {
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
    } satisfies Run;
  } finally {
    clearTimeout(interrupt);
    clearTimeout(kill);
  }
}

function inRange(address: string, first: string, last: string): boolean {
  const [a, lo, hi] = [address, first, last].map(tryParseAddress);
  return a !== undefined && lo !== undefined && hi !== undefined && a.family === lo.family &&
    lo.value <= a.value && a.value <= hi.value;
}

function rowsOf(rows: readonly DemoRow[], service: string): DemoRow[] {
  return rows.filter((r) => r.service === service);
}

Deno.test({
  name: "demo --once: every sample service reaches its expected state, then a measured hand-over",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const result = await run(Deno.execPath(), ["run", "--allow-all", MAIN, "--once"]);
    const context = `\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`;
    assert.equal(result.code, 0, `the demo exited with ${result.code}${context}`);

    const tables = parseDemoTables(result.stdout);
    assert.equal(tables.length, 2, `two tables (settled, after the hand-over)${context}`);
    const before = tables[0] ?? [];
    const after = tables[1] ?? [];

    // Every sample in its expected state, and the details a reader of the table relies on.
    assert.deepEqual(unmetExpectations(before, NODES.length), [], context);
    for (const row of before.filter((r) => r.pool === "default")) {
      const inPool = row.address.includes(":")
        ? inRange(row.address, "2001:db8:1::240", "2001:db8:1::250")
        : inRange(row.address, "192.0.2.240", "192.0.2.250");
      assert.ok(inPool, `${row.service}: ${row.address} is outside the default pool`);
      assert.equal(row.interfaceName, "eth0");
      assert.equal(row.nodes.length, 1);
    }
    // The router routes only virtual addresses: no next hops for a local one.
    for (const row of before.filter((r) => r.pool !== "virtual")) {
      assert.deepEqual(row.routerNextHops, [], `${row.service}: ${row.address}`);
    }
    const [web] = rowsOf(before, HANDOVER_SERVICE);
    assert.ok(web, `${HANDOVER_SERVICE} is in the table`);
    assert.match(web.address, /^192\.0\.2\.\d+$/);
    assert.deepEqual(rowsOf(before, "web-ipv6").map((r) => r.address.includes(":")), [true]);
    assert.deepEqual(rowsOf(before, "web-dual").map((r) => r.address.includes(":")), [
      false,
      true,
    ]);
    const shared = [...rowsOf(before, "shared-http"), ...rowsOf(before, "shared-https")];
    assert.equal(shared.length, 2);
    assert.equal(shared[0]?.address, shared[1]?.address);
    assert.deepEqual(rowsOf(before, "specific").map((r) => r.address), ["192.0.2.250"]);
    const [virtual] = rowsOf(before, "virtual");
    assert.match(virtual?.address ?? "", /^198\.51\.100\.1\d$/);
    assert.deepEqual(virtual?.nodes, [...NODES]);
    assert.equal(virtual?.interfaceName, "kube-lb0");
    assert.deepEqual(virtual?.routerNextHops, [...NODES], "the router forwards it to every node");
    const bgp =
      /^BGP: the router \(\S+, AS 65000\) has (\d+) of (\d+) sessions .* got answers from (\S+)$/m
        .exec(result.stdout);
    assert.ok(bgp, `a BGP line${context}`);
    assert.equal(bgp[2], String(NODES.length * 2), "one IPv4 and one IPv6 session per node");
    assert.equal(bgp[3], virtual?.address);
    // web-netbox: a reserved address of the Netbox test server, now active there, on one node.
    const [netbox] = rowsOf(before, "web-netbox");
    assert.ok(inRange(netbox?.address ?? "", "192.0.2.200", "192.0.2.203"), `web-netbox${context}`);
    assert.equal(netbox?.pool, "netbox");
    assert.deepEqual([netbox?.nodes.length, netbox?.interfaceName], [1, "eth0"]);
    const netboxLine = `Netbox lists ${netbox?.address} of web-netbox as active for tenant demo `;
    assert.ok(result.stdout.split("\n").some((l) => l.startsWith(netboxLine)), context);
    const [bad] = rowsOf(before, "bad-annotation");
    assert.equal(bad?.state, "failed");
    assert.equal(bad?.address, "");
    assert.match(bad?.reason ?? "", /192\.0\.2\.300.*not an IP address/);
    const addresses = before.filter((r) => r.address !== "").map((r) => r.address);
    assert.equal(new Set(addresses).size, addresses.length - 1, "only the shared pair shares");

    // The hand-over: web-ipv4's address went from its node to another, with a bounded gap.
    const handover =
      /^hand-over: (\S+) moved from (\S+) to (\S+); the client got no answer for (\d+) ms/m
        .exec(result.stdout);
    assert.ok(handover, `a hand-over line${context}`);
    const [, address, from, to, gap] = handover;
    assert.equal(address, web.address);
    assert.equal(from, web.nodes[0]);
    assert.notEqual(to, from);
    assert.ok(NODES.some((n) => n === to), `${to} is a node`);
    assert.ok(Number(gap) < MAX_GAP_MS, `the client saw a gap of ${gap} ms (bound ${MAX_GAP_MS})`);

    // After it: the stopped node carries nothing, every sample is still served.
    assert.deepEqual(rowsOf(after, HANDOVER_SERVICE).map((r) => r.nodes), [[to]]);
    assert.deepEqual(after.filter((r) => r.nodes.some((n) => n === from)), []);
    assert.deepEqual(unmetExpectations(after, NODES.length - 1), [], context);
    // The router dropped the stopped node for the virtual address, and only that one.
    const others = NODES.filter((n) => n !== from);
    assert.deepEqual(rowsOf(after, "virtual").map((r) => r.routerNextHops), [others], context);

    // Nothing left behind: the demo's namespaces and control plane state are gone.
    const namespaces = /network namespaces ((?:plb\S+ ?)+)\)/.exec(result.stderr)?.[1]?.split(" ");
    // lan, the nodes, the client; the router and the client behind it
    assert.ok(namespaces && namespaces.length === NODES.length + 4, `namespaces named${context}`);
    const listed = await new Deno.Command(testbedIpPath(), { args: ["netns", "list"] }).output();
    const present = new TextDecoder().decode(listed.stdout);
    for (const netns of namespaces) assert.ok(!present.includes(netns), `${netns} was removed`);
    const kubeconfig = /kubeconfig (\S+\/kubeconfig);/.exec(result.stderr)?.[1];
    assert.ok(kubeconfig, `the control plane's kubeconfig path${context}`);
    await assert.rejects(Deno.stat(join(kubeconfig, "..")), Deno.errors.NotFound);
    assert.match(result.stderr, /nothing left behind/);
  },
});

Deno.test({
  name: "demo without root: says what it needs, exits non-zero, does nothing",
  // Dropping to an unprivileged user needs root in the first place.
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    // A copy of deno that the unprivileged user may run (ours may sit under /root).
    const dir = await Deno.makeTempDir({ prefix: "purelb-demo-nonroot-" });
    try {
      await Deno.chmod(dir, 0o755);
      const deno = join(dir, "deno");
      await Deno.copyFile(Deno.execPath(), deno);
      await Deno.chmod(deno, 0o755);
      const result = await run("setpriv", [
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
        deno,
        "run",
        // main.ts needs nothing else before its root check; no config means no npm install
        "--no-config",
        "--no-lock",
        "--cached-only",
        "--allow-all",
        MAIN,
        "--once",
      ], { DENO_DIR: join(dir, "cache"), HOME: dir, PATH: Deno.env.get("PATH") ?? "" });
      assert.equal(result.code, 1, result.stderr);
      assert.equal(result.stdout, "");
      assert.equal(result.stderr.trim(), notRootMessage());
      assert.match(result.stderr, /needs root/);
      assert.match(result.stderr, /sudo npx -y deno@2\.8\.3 task demo/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("demo --help and a bad flag", async () => {
  const help = await run(Deno.execPath(), ["run", "--allow-all", MAIN, "--help"]);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: deno task demo/);
  assert.match(help.stdout, /--once/);
  const bad = await run(Deno.execPath(), ["run", "--allow-all", MAIN, "--onec"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--onec/);
  const timeout = await run(Deno.execPath(), ["run", "--allow-all", MAIN, "--timeout", "x"]);
  assert.equal(timeout.code, 2);
  assert.match(timeout.stderr, /--timeout "x" is not a number/);
});
