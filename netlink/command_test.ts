import assert from "node:assert/strict";
import { IpCommand } from "./command.ts";
import { CommandError, ExecutableNotFoundError, resolveExecutable } from "./process.ts";
import { GratuitousAnnouncer } from "./gratuitous.ts";

Deno.test("resolveExecutable takes the first executable file and names the package otherwise", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/plain`, "");
    await Deno.writeTextFile(`${dir}/tool`, "#!/bin/sh\n", { mode: 0o755 });
    assert.equal(
      await resolveExecutable("tool", [`${dir}/missing`, `${dir}/plain`, `${dir}/tool`]),
      `${dir}/tool`,
    );
    await assert.rejects(
      resolveExecutable("ip", [`${dir}/missing`, `${dir}/plain`], "install iproute2"),
      (error: unknown) =>
        error instanceof ExecutableNotFoundError && error.name === "ExecutableNotFoundError" &&
        error.candidates.length === 2 && /install iproute2/.test(error.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IpCommand: -n NS goes first, failures carry the command line and stderr, processes are counted", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A stand-in for ip that echoes its arguments and fails on "fail".
    const fake = `${dir}/ip`;
    await Deno.writeTextFile(
      fake,
      '#!/bin/sh\nprintf "%s\\n" "$*"\ncase "$*" in *fail*) echo "it broke" >&2; exit 2;; esac\ncat\n',
      { mode: 0o755 },
    );
    const ip = await IpCommand.create({ ipPath: fake, netns: "ns-1", timeoutMs: 5_000 });
    assert.deepEqual(ip.commandLine(["address", "show"]), [fake, "-n", "ns-1", "address", "show"]);
    const output = await ip.run(["-batch", "-"], "line one\n");
    assert.equal(output.stdout, "-n ns-1 -batch -\nline one\n");
    await assert.rejects(ip.run(["fail"]), (error: unknown) => {
      assert.ok(error instanceof CommandError);
      assert.equal(error.name, "CommandError");
      assert.deepEqual(error.command, [fake, "-n", "ns-1", "fail"]);
      assert.equal(error.exitCode, 2);
      assert.equal(error.stderr, "it broke");
      assert.match(error.message, /-n ns-1 fail` exited with 2: it broke/);
      return true;
    });
    assert.equal((await ip.runUnchecked(["fail"])).exitCode, 2);
    assert.equal(ip.processesSpawned, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("IpCommand kills a process at its deadline", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fake = `${dir}/ip`;
    await Deno.writeTextFile(fake, "#!/bin/sh\nexec sleep 30\n", { mode: 0o755 });
    const ip = await IpCommand.create({ ipPath: fake, timeoutMs: 200 });
    const started = performance.now();
    await assert.rejects(
      ip.run(["address", "show"]),
      (error: unknown) => error instanceof CommandError && error.exitCode === undefined,
    );
    assert.ok(performance.now() - started < 5_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("GratuitousAnnouncer: arping -U for IPv4, one na6 per packet for IPv6, via ip netns exec", async () => {
  const announcer = await GratuitousAnnouncer.create({
    netns: "ns-1",
    ipPath: "/usr/sbin/ip",
    arpingPath: "/usr/bin/arping",
    na6Path: "/usr/sbin/na6",
  });
  assert.deepEqual(announcer.executables, ["/usr/sbin/ip", "/usr/bin/arping", "/usr/sbin/na6"]);
  assert.deepEqual(
    announcer.commandLines({
      interfaceName: "eth0",
      address: "192.0.2.50",
      count: 3,
      intervalMs: 200,
    }),
    [[
      "/usr/sbin/ip",
      "netns",
      "exec",
      "ns-1",
      "/usr/bin/arping",
      "-q",
      "-U",
      "-c",
      "3",
      "-i",
      "1",
      "-I",
      "eth0",
      "192.0.2.50",
    ]],
  );
  const na = announcer.commandLines({ interfaceName: "eth0", address: "2001:DB8:1::50", count: 2 });
  assert.equal(na.length, 2);
  assert.deepEqual(na[0], [
    "/usr/sbin/ip",
    "netns",
    "exec",
    "ns-1",
    "/usr/sbin/na6",
    "-i",
    "eth0",
    "-s",
    "2001:db8:1::50",
    "-d",
    "ff02::1",
    "-t",
    "2001:db8:1::50",
    "-o",
    "-e",
  ]);
  const direct = await GratuitousAnnouncer.create({
    arpingPath: "/usr/bin/arping",
    na6Path: "/usr/sbin/na6",
  });
  assert.deepEqual(direct.executables, ["/usr/bin/arping", "/usr/sbin/na6"]);
  assert.equal(
    direct.commandLines({ interfaceName: "eth0", address: "192.0.2.50", intervalMs: 2500 })[0]?.[0],
    "/usr/bin/arping",
  );
  for (
    const bad of [
      { interfaceName: "eth0; reboot", address: "192.0.2.50" },
      { interfaceName: "eth0", address: "192.0.2.50 -c 1000" },
      { interfaceName: "eth0", address: "192.0.2.50", count: 0 },
      { interfaceName: "eth0", address: "192.0.2.50", count: 1000 },
      { interfaceName: "eth0", address: "192.0.2.50", intervalMs: -1 },
    ]
  ) {
    assert.throws(() => direct.commandLines(bad), RangeError, JSON.stringify(bad));
  }
});

Deno.test("IpCommand: running ip 800 times keeps the process's memory flat (no native leak per process)", async () => {
  const ip = await IpCommand.create();
  const run = () => ip.run(["-json", "link", "show"], "");
  for (let i = 0; i < 50; i++) await run();
  const before = Deno.memoryUsage().rss;
  for (let i = 0; i < 800; i++) await run();
  const grownMb = (Deno.memoryUsage().rss - before) / 2 ** 20;
  // With ChildProcess.output() (see process.ts) this grew 66 MB; reading the pipes, 13 MB.
  assert.ok(grownMb < 40, `RSS grew ${grownMb.toFixed(1)} MB over 800 ip processes`);
});
