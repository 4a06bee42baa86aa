/**
 * netlink against real `ip` in network namespaces of the testbed (root only). Every address
 * is a documentation address inside namespaces created here.
 */
import assert from "node:assert/strict";
import { assertRoot, rootTestOptions } from "../tests/system.ts";
import { waitFor } from "../tests/wait.ts";
import {
  createLan,
  exec,
  type Lan,
  startCapture,
  testbedIpPath,
  trackProcess,
  tryExec,
} from "../tests/netns/mod.ts";
import { formatAddress } from "../ipam/mod.ts";
import {
  type AddressChange,
  defaultRouteInterfaces,
  DummyInterfaceUnsupportedError,
  findLink,
  GratuitousAnnouncer,
  Netlink,
  planChanges,
} from "./mod.ts";

async function withLan(nodes: readonly string[], body: (lan: Lan) => Promise<void>) {
  assertRoot();
  const lan = await createLan({ nodes, ipv4Subnet: "192.0.2.0/24", ipv6Subnet: "2001:db8:1::/64" });
  try {
    await body(lan);
  } finally {
    await lan.destroy();
  }
}

function add(interfaceName: string, address: string, prefixLength: number): AddressChange {
  const family = address.includes(":") ? "IPv6" : "IPv4";
  return { kind: "add", interfaceName, family, address, prefixLength, noDad: family === "IPv6" };
}

function del(interfaceName: string, address: string, prefixLength: number): AddressChange {
  const family = address.includes(":") ? "IPv6" : "IPv4";
  return { kind: "delete", interfaceName, family, address, prefixLength };
}

Deno.test({
  name: "readState: links, MAC, flags and the default route interface in 3 processes",
  ...rootTestOptions(),
  fn: () =>
    withLan(["node-a"], async (lan) => {
      const node = lan.node("node-a");
      // Addresses with the flags PureLB mishandled, and one that must not count.
      await exec(
        node.netns,
        "ip",
        "address",
        "add",
        "2001:db8:1::21/64",
        "dev",
        "eth0",
        "nodad",
        "mngtmpaddr",
        "noprefixroute",
      );
      await exec(
        node.netns,
        "ip",
        "address",
        "add",
        "2001:db8:1::22/64",
        "dev",
        "eth0",
        "nodad",
        "preferred_lft",
        "0",
      );
      await exec(
        node.netns,
        "ip",
        "address",
        "add",
        "2001:db8:1::23/64",
        "dev",
        "eth0",
        "valid_lft",
        "300",
        "preferred_lft",
        "300",
        "nodad",
      );
      const netlink = await Netlink.create({ netns: node.netns });
      const state = await netlink.readState();
      assert.equal(netlink.ip.processesSpawned, 3);

      const eth0 = findLink(state, "eth0");
      assert.ok(eth0);
      assert.equal(eth0.up, true);
      assert.equal(eth0.mac, node.mac);
      const flagsOf = (local: string) => {
        const address = eth0.addresses.find((a) => a.local === local);
        assert.ok(address, `${local} on eth0`);
        return address;
      };
      assert.equal(flagsOf("192.0.2.11").prefixLength, 24);
      assert.equal(flagsOf("2001:db8:1::11").flags.nodad, true);
      const managed = flagsOf("2001:db8:1::21").flags;
      assert.ok(managed.mngtmpaddr && managed.noprefixroute && managed.permanent);
      assert.equal(flagsOf("2001:db8:1::22").flags.deprecated, true);
      assert.equal(flagsOf("2001:db8:1::23").flags.permanent, false);
      assert.ok(findLink(state, "kube-lb0")?.up);
      assert.ok(findLink(state, "lo"));
      assert.deepEqual(defaultRouteInterfaces(state), ["eth0"]);
      assert.deepEqual(state.defaultRoutes, [
        { family: "IPv4", interfaceName: "eth0", gateway: "192.0.2.1" },
        { family: "IPv6", interfaceName: "eth0", gateway: "2001:db8:1::1" },
      ]);
    }),
});

Deno.test({
  name: "applyChanges: 1000 addresses added and removed with one ip process each",
  ...rootTestOptions(),
  fn: () =>
    withLan(["node-a"], async (lan) => {
      const netlink = await Netlink.create({ netns: lan.node("node-a").netns });
      const assignments = [
        ...Array.from({ length: 250 }, (_, i) => ({
          interfaceName: "kube-lb0",
          address: `203.0.113.${i + 1}`,
          prefixLength: 32,
        })),
        ...Array.from({ length: 750 }, (_, i) => ({
          interfaceName: "kube-lb0",
          address: formatAddress({
            family: "IPv6",
            value: 0x20010db8000500000000000000000000n + BigInt(i + 1),
          }),
          prefixLength: 128,
          noDad: true,
        })),
      ];
      const owned = {
        assignments,
        isOwned: (e: { interfaceName: string }) => e.interfaceName === "kube-lb0",
      };
      const before = netlink.ip.processesSpawned;
      const changes = planChanges(await netlink.readState(), owned);
      assert.equal(changes.length, 1000);
      const started = performance.now();
      const result = await netlink.applyChanges(changes);
      const addMs = performance.now() - started;
      assert.deepEqual(result.failed, []);
      assert.equal(result.applied.length, 1000);
      assert.equal(netlink.ip.processesSpawned - before, 3 + 1, "readState 3 + one batch");

      const after = await netlink.readState();
      const onDummy = findLink(after, "kube-lb0")?.addresses.filter((a) => a.flags.permanent) ?? [];
      assert.equal(onDummy.filter((a) => a.scope === "global").length, 1000);
      assert.deepEqual(planChanges(after, owned), [], "nothing left to do");

      const removal = planChanges(after, {
        assignments: [],
        isOwned: (e) =>
          e.interfaceName === "kube-lb0" && e.address.startsWith("2001:db8:5:") ||
          e.address.startsWith("203.0.113."),
      });
      assert.equal(removal.length, 1000);
      const spawnedBeforeRemoval = netlink.ip.processesSpawned;
      const removeStarted = performance.now();
      const removed = await netlink.applyChanges(removal);
      const removeMs = performance.now() - removeStarted;
      assert.equal(netlink.ip.processesSpawned - spawnedBeforeRemoval, 1);
      assert.equal(removed.applied.length, 1000);
      const emptied = findLink(await netlink.readState(), "kube-lb0")?.addresses ?? [];
      assert.equal(emptied.filter((a) => a.scope === "global").length, 0);
      console.log(
        `1000 addresses: add ${addMs.toFixed(0)} ms, remove ${removeMs.toFixed(0)} ms, ` +
          `1 ip process each; ${netlink.ip.processesSpawned} processes in the whole test`,
      );
    }),
});

Deno.test({
  name: "applyChanges: a failing line does not stop the others and is reported with ip's message",
  ...rootTestOptions(),
  fn: () =>
    withLan(["node-a"], async (lan) => {
      const netlink = await Netlink.create({ netns: lan.node("node-a").netns });
      await netlink.applyChanges([add("kube-lb0", "198.51.100.5", 32)]);
      const before = netlink.ip.processesSpawned;
      const result = await netlink.applyChanges([
        add("kube-lb0", "198.51.100.6", 32),
        add("no-such-dev", "198.51.100.7", 32),
        add("kube-lb0", "198.51.100.5", 32),
        del("kube-lb0", "198.51.100.99", 32),
        add("kube-lb0", "2001:db8:6::1", 128),
      ]);
      assert.equal(netlink.ip.processesSpawned - before, 1);
      assert.deepEqual(result.applied.map((c) => c.address), ["198.51.100.6", "2001:db8:6::1"]);
      assert.deepEqual(result.alreadyDone.map((c) => `${c.kind} ${c.address}`), [
        "add 198.51.100.5",
        "delete 198.51.100.99",
      ]);
      assert.equal(result.failed.length, 1);
      assert.equal(result.failed[0]?.line, 2);
      assert.equal(result.failed[0]?.command, "address add 198.51.100.7/32 dev no-such-dev");
      assert.match(result.failed[0]?.message ?? "", /no-such-dev/);
      const dummy = findLink(await netlink.readState(), "kube-lb0");
      assert.deepEqual(
        dummy?.addresses.filter((a) => a.scope === "global").map((a) => a.local).sort(),
        ["198.51.100.5", "198.51.100.6", "2001:db8:6::1"],
      );
      assert.deepEqual(await netlink.applyChanges([]), {
        applied: [],
        alreadyDone: [],
        failed: [],
      });
    }),
});

Deno.test({
  name: "ensureDummyInterface reuses an existing bridge of that name and brings it up",
  ...rootTestOptions(),
  fn: () =>
    withLan(["node-a"], async (lan) => {
      const { netns } = lan.node("node-a");
      const netlink = await Netlink.create({ netns });
      assert.deepEqual(await netlink.ensureDummyInterface("kube-lb0"), {
        kind: "reused",
        linkType: "ether",
        broughtUp: false,
      });
      await exec(netns, "ip", "link", "set", "kube-lb0", "down");
      assert.deepEqual(await netlink.ensureDummyInterface("kube-lb0"), {
        kind: "reused",
        linkType: "ether",
        broughtUp: true,
      });
      const details = JSON.parse(
        await exec(netns, "ip", "-json", "-details", "link", "show", "kube-lb0"),
      );
      assert.equal(details[0]?.linkinfo?.info_kind, "bridge", "still the same bridge");
      assert.ok(findLink(await netlink.readState(), "kube-lb0")?.up);

      // A missing one is created as dummy where the kernel has it, else a clear error.
      try {
        assert.deepEqual(await netlink.ensureDummyInterface("kube-lb1"), { kind: "created" });
        assert.ok(findLink(await netlink.readState(), "kube-lb1")?.up);
      } catch (error) {
        assert.ok(error instanceof DummyInterfaceUnsupportedError, String(error));
        assert.equal(error.name, "DummyInterfaceUnsupportedError");
        assert.match(error.message, /no "dummy" link type/);
        assert.match(error.cause.command.join(" "), /link add kube-lb1 type dummy/);
        assert.equal(findLink(await netlink.readState(), "kube-lb1"), undefined);
      }
    }),
});

Deno.test({
  name: "gratuitous ARP from node-a is seen by tcpdump in the client namespace",
  ...rootTestOptions(),
  fn: () =>
    withLan(["node-a", "node-b"], async (lan) => {
      const node = lan.node("node-a");
      const netlink = await Netlink.create({ netns: node.netns });
      const { failed } = await netlink.applyChanges([add("eth0", "192.0.2.50", 24)]);
      assert.deepEqual(failed, []);
      const capture = await startCapture(lan.client.netns, "eth0", "arp");
      try {
        const announcer = await GratuitousAnnouncer.create({ netns: node.netns });
        await announcer.announce({ interfaceName: "eth0", address: "192.0.2.50", count: 2 });
        assert.equal(announcer.processesSpawned, 1);
        await waitFor(
          () =>
            capture.packets().filter((p) =>
              p.kind === "arp-request" && p.gratuitous && p.senderAddress === "192.0.2.50"
            ).length >= 2,
          5_000,
          "two gratuitous ARPs for 192.0.2.50",
        );
        const garp = capture.packets().find((p) => p.kind === "arp-request" && p.gratuitous);
        assert.ok(garp?.kind === "arp-request");
        assert.equal(garp.sourceMac, node.mac);
      } finally {
        await capture.stop();
      }
    }),
});

Deno.test({
  name:
    "unsolicited neighbour advertisement from node-a is seen by tcpdump in the client namespace",
  ...rootTestOptions(),
  fn: () =>
    withLan(["node-a", "node-b"], async (lan) => {
      const node = lan.node("node-a");
      const netlink = await Netlink.create({ netns: node.netns });
      assert.deepEqual(
        (await netlink.applyChanges([add("eth0", "2001:db8:1::50", 64)])).failed,
        [],
      );
      const capture = await startCapture(lan.client.netns, "eth0", "icmp6 and ip6[40] == 136");
      try {
        const announcer = await GratuitousAnnouncer.create({ netns: node.netns });
        await announcer.announce({
          interfaceName: "eth0",
          address: "2001:db8:1::50",
          count: 3,
          intervalMs: 100,
        });
        assert.equal(announcer.processesSpawned, 3);
        const isOurs = (p: ReturnType<typeof capture.packets>[number]) =>
          p.kind === "neighbor-advertisement" && p.unsolicited && p.target === "2001:db8:1::50";
        await waitFor(
          () => capture.packets().filter(isOurs).length >= 3,
          5_000,
          "three unsolicited NAs",
        );
        const na = capture.packets().find(isOurs);
        assert.ok(na?.kind === "neighbor-advertisement");
        assert.equal(na.sourceMac, node.mac);
        assert.equal(na.targetMac, node.mac);
        assert.equal(na.destination, "ff02::1");
        assert.ok(na.flags.includes("override"));
      } finally {
        await capture.stop();
      }
    }),
});

const ECHO_SERVER = `
const [host, port] = Deno.args;
const listener = Deno.listen({ hostname: host, port: Number(port) });
console.log("listening");
const deadline = setTimeout(() => Deno.exit(0), 20_000);
for (let served = 0; served < 4; served++) {
  const connection = await listener.accept();
  await connection.write(new TextEncoder().encode("hello from node-b\\n"));
  connection.close();
}
clearTimeout(deadline);
`;

const TCP_CLIENT = `
const [host, port] = Deno.args;
const connection = await Deno.connect({ hostname: host, port: Number(port) });
const buffer = new Uint8Array(64);
const read = await connection.read(buffer);
console.log(new TextDecoder().decode(buffer.subarray(0, read ?? 0)).trim());
connection.close();
`;

Deno.test({
  name: "a client reaches an address added on node-b (ping, TCP) and learns node-b's MAC",
  ...rootTestOptions(),
  fn: () =>
    withLan(["node-a", "node-b", "node-c"], async (lan) => {
      const nodeB = lan.node("node-b");
      const netlink = await Netlink.create({ netns: nodeB.netns });
      const result = await netlink.applyChanges([
        add("eth0", "192.0.2.60", 24),
        add("eth0", "2001:db8:1::60", 64),
      ]);
      assert.deepEqual(result.failed, []);

      for (const target of ["192.0.2.60", "2001:db8:1::60"]) {
        const ping = await tryExec(
          lan.client.netns,
          "ping",
          "-c",
          "3",
          "-i",
          "0.2",
          "-W",
          "2",
          target,
        );
        assert.equal(ping.exitCode, 0, `ping ${target}: ${ping.stdout} ${ping.stderr}`);
        assert.match(ping.stdout, /3 received/);
        const neighbours = JSON.parse(
          await exec(lan.client.netns, "ip", "-json", "neigh", "show", "to", target),
        );
        assert.equal(neighbours[0]?.lladdr, nodeB.mac, `client's neighbour entry for ${target}`);
      }

      const server = new Deno.Command(testbedIpPath(), {
        args: [
          "netns",
          "exec",
          nodeB.netns,
          Deno.execPath(),
          "eval",
          ECHO_SERVER,
          "192.0.2.60",
          "8080",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const forget = trackProcess(server);
      let serverOutput = "";
      const reading = (async () => {
        for await (const chunk of server.stdout) serverOutput += new TextDecoder().decode(chunk);
      })();
      const draining = server.stderr.pipeTo(new WritableStream());
      try {
        await waitFor(() => serverOutput.includes("listening"), 15_000, "TCP server on node-b");
        const answer = await exec(
          lan.client.netns,
          Deno.execPath(),
          "eval",
          TCP_CLIENT,
          "192.0.2.60",
          "8080",
        );
        assert.equal(answer.trim(), "hello from node-b");
      } finally {
        try {
          server.kill("SIGTERM");
        } catch { /* already gone */ }
        await server.status;
        await Promise.all([reading, draining]);
        forget();
      }
    }),
});
