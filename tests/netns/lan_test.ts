import assert from "node:assert/strict";
import { assertRoot, rootTestOptions } from "../system.ts";
import { createLan, LanOptionsError } from "./lan.ts";
import { exec, runChecked, testbedIpPath, tryExec } from "./exec.ts";
import { waitFor } from "../wait.ts";

const LAN = {
  nodes: ["node-a", "node-b", "node-c"],
  ipv4Subnet: "192.0.2.0/24",
  ipv6Subnet: "2001:db8:1::/64",
} as const;

async function namespaceNames(): Promise<readonly string[]> {
  const listed = await runChecked([testbedIpPath(), "netns", "list"]);
  return listed.split("\n").map((line) => line.split(" ")[0] ?? "").filter(Boolean);
}

Deno.test("createLan refuses addresses outside the documentation ranges", async () => {
  await assert.rejects(
    createLan({ ...LAN, ipv4Subnet: "10.0.0.0/24" }),
    (error: unknown) => error instanceof LanOptionsError && /documentation/.test(error.message),
  );
  await assert.rejects(
    createLan({ ...LAN, ipv6Subnet: "fd00::/64" }),
    (error: unknown) => error instanceof LanOptionsError && /2001:db8::\/32/.test(error.message),
  );
  await assert.rejects(
    createLan({ ...LAN, nodes: ["node-a", "node-a"] }),
    (error: unknown) => error instanceof LanOptionsError && /unique/.test(error.message),
  );
});

Deno.test({
  name: "createLan builds nodes and a client on one bridge; destroy removes every namespace",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const lan = await createLan(LAN);
    try {
      assert.deepEqual(lan.nodes.map((node) => node.name), ["node-a", "node-b", "node-c"]);
      assert.deepEqual(lan.nodes.map((node) => node.ipv4), [
        "192.0.2.11",
        "192.0.2.12",
        "192.0.2.13",
      ]);
      assert.deepEqual(lan.nodes.map((node) => node.ipv6), [
        "2001:db8:1::11",
        "2001:db8:1::12",
        "2001:db8:1::13",
      ]);
      assert.equal(lan.client.ipv4, "192.0.2.100");
      assert.equal(lan.client.ipv6, "2001:db8:1::100");
      assert.equal(new Set(lan.nodes.map((node) => node.mac)).size, 3);
      const existing = await namespaceNames();
      for (const netns of lan.namespaces) assert.ok(existing.includes(netns), `${netns} exists`);

      const nodeB = lan.node("node-b");
      const dummy = JSON.parse(
        await exec(nodeB.netns, "ip", "-json", "-details", "link", "show", "dev", "kube-lb0"),
      );
      assert.equal(dummy[0]?.linkinfo?.info_kind, "bridge");
      for (const target of [nodeB.ipv4, nodeB.ipv6]) {
        const ping = await tryExec(lan.client.netns, "ping", "-c", "1", "-W", "2", target);
        assert.equal(ping.exitCode, 0, `client pings ${target}: ${ping.stdout}${ping.stderr}`);
      }
    } finally {
      await lan.destroy();
    }
    const remaining = await namespaceNames();
    for (const netns of lan.namespaces) assert.ok(!remaining.includes(netns), `${netns} removed`);
    await lan.destroy(); // a second call is harmless
  },
});

Deno.test({
  name: "two LANs with the same node names coexist (unique namespace names)",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const first = await createLan({ ...LAN, nodes: ["node-a"] });
    try {
      const second = await createLan({ ...LAN, nodes: ["node-a"] });
      try {
        assert.notEqual(first.id, second.id);
        assert.notEqual(first.node("node-a").netns, second.node("node-a").netns);
      } finally {
        await second.destroy();
      }
    } finally {
      await first.destroy();
    }
  },
});

const HOLDER_SCRIPT = (lanModule: string) => `
import { createLan } from ${JSON.stringify(lanModule)};
const lan = await createLan({ nodes: ["node-a"], ipv4Subnet: "192.0.2.0/24", ipv6Subnet: "2001:db8:1::/64" });
console.log(JSON.stringify(lan.namespaces));
setTimeout(() => {}, 30_000); // held until the test signals or kills this process
`;

async function startHolder(dir: string): Promise<{
  readonly child: Deno.ChildProcess;
  readonly namespaces: readonly string[];
  readonly finished: Promise<void>;
}> {
  const script = `${dir}/holder.ts`;
  await Deno.writeTextFile(script, HOLDER_SCRIPT(new URL("./lan.ts", import.meta.url).href));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-lock",
      `--config=${new URL("../../deno.json", import.meta.url).pathname}`,
      script,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stdout = "";
  const finished = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stdout) stdout += decoder.decode(chunk, { stream: true });
  })();
  const draining = child.stderr.pipeTo(new WritableStream());
  try {
    await waitFor(() => stdout.includes("]"), 20_000, "the holder process to build its LAN");
  } catch (error) {
    child.kill("SIGKILL");
    await child.status;
    throw error;
  }
  const namespaces: unknown = JSON.parse(stdout.slice(0, stdout.indexOf("]") + 1));
  assert.ok(Array.isArray(namespaces) && namespaces.every((n) => typeof n === "string"));
  return { child, namespaces, finished: Promise.all([finished, draining]).then(() => {}) };
}

async function removeIfLeft(namespaces: readonly string[]): Promise<void> {
  const existing = await namespaceNames();
  for (const netns of namespaces.filter((n) => existing.includes(n))) {
    await runChecked([testbedIpPath(), "netns", "del", netns]);
  }
}

Deno.test({
  name: "safety net: SIGINT to a process holding a LAN removes its namespaces",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const dir = await Deno.makeTempDir();
    let namespaces: readonly string[] = [];
    try {
      const holder = await startHolder(dir);
      namespaces = holder.namespaces;
      assert.equal(namespaces.length, 3);
      holder.child.kill("SIGINT");
      const status = await holder.child.status;
      await holder.finished;
      assert.equal(status.code, 130);
      const remaining = await namespaceNames();
      for (const netns of namespaces) assert.ok(!remaining.includes(netns), `${netns} removed`);
    } finally {
      await removeIfLeft(namespaces);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "safety net: namespaces of a SIGKILLed run are removed by the next createLan",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const dir = await Deno.makeTempDir();
    let namespaces: readonly string[] = [];
    try {
      const holder = await startHolder(dir);
      namespaces = holder.namespaces;
      holder.child.kill("SIGKILL");
      await holder.child.status;
      await holder.finished;
      const left = await namespaceNames();
      assert.ok(namespaces.every((n) => left.includes(n)), "SIGKILL skips every clean-up");
      const lan = await createLan({ ...LAN, nodes: ["node-a"] });
      await lan.destroy();
      const remaining = await namespaceNames();
      for (const netns of namespaces) assert.ok(!remaining.includes(netns), `${netns} swept`);
    } finally {
      await removeIfLeft(namespaces);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
