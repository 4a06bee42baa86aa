import assert from "node:assert/strict";
import { assertRoot, rootTestOptions } from "../system.ts";
import { DAEMON_LEDGER_DIR, makeDaemonDir, startDaemon } from "./daemon.ts";
import { createLan } from "./lan.ts";

const LAN = { nodes: ["node-a"], ipv4Subnet: "192.0.2.0/24", ipv6Subnet: "2001:db8:1::/64" };
const LEDGER = `${DAEMON_LEDGER_DIR}/${Deno.pid}`;

Deno.test({
  name: "startDaemon runs a program in a namespace, keeps its output, stops it by signal",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const lan = await createLan(LAN);
    try {
      const netns = lan.node("node-a").netns;
      const daemon = await startDaemon(netns, [
        "/bin/sh",
        "-c",
        "echo out; echo err >&2; ip -o link show eth0; exec sleep 30",
      ]);
      assert.match(await Deno.readTextFile(LEDGER), new RegExp(`^pid ${daemon.pid} /bin/sh$`, "m"));
      const deadline = Date.now() + 5_000;
      while (!daemon.output().includes("eth0") && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.match(daemon.output(), /out/);
      assert.match(daemon.output(), /eth0/, "runs inside the node's namespace");
      assert.equal(daemon.stderrText().trim(), "err");
      assert.equal(daemon.hasExited(), false);
      const status = await daemon.stop();
      assert.equal(status.signal, "SIGTERM");
      assert.equal(daemon.hasExited(), true);
      assert.deepEqual(await daemon.stop(), status, "stop twice is fine");
      assert.doesNotMatch(await Deno.readTextFile(LEDGER), new RegExp(`^pid ${daemon.pid} `, "m"));

      const killed = await startDaemon(netns, ["sleep", "30"]);
      assert.equal((await killed.kill()).signal, "SIGKILL");
    } finally {
      await lan.destroy();
    }
  },
});

Deno.test({
  name: "makeDaemonDir: a directory anyone may write to, listed for the watchdog until removed",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const dir = await makeDaemonDir("purelb-daemon-test-");
    try {
      const info = await Deno.stat(dir.path);
      assert.ok(info.isDirectory);
      assert.equal((info.mode ?? 0) & 0o777, 0o777);
      assert.match(await Deno.readTextFile(LEDGER), new RegExp(`^dir ${dir.path}$`, "m"));
      await Deno.writeTextFile(`${dir.path}/x`, "x");
    } finally {
      await dir.remove();
    }
    await assert.rejects(Deno.stat(dir.path), Deno.errors.NotFound);
    assert.doesNotMatch(await Deno.readTextFile(LEDGER), new RegExp(`^dir ${dir.path}$`, "m"));
    await dir.remove();
  },
});
