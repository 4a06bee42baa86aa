import assert from "node:assert/strict";
import { assertRoot, rootTestOptions } from "../system.ts";
import { waitFor } from "../wait.ts";
import { type Bird, startBird } from "./bird.ts";
import { type DaemonDir, makeDaemonDir } from "./daemon.ts";
import { runChecked, testbedIpPath } from "./exec.ts";
import { createLan, type Lan, type LanHost, LanOptionsError } from "./lan.ts";
import {
  addHostAddress,
  removeHostAddress,
  startTcpResponder,
  tcpRequest,
  waitForPing,
} from "./reach.ts";
import {
  type BfdProfile,
  createRouter,
  type FrrSettings,
  parseBgpSummary,
  parseRouteNextHops,
  renderFrrConfig,
  renderPeerChanges,
  type Router,
  type RouterOptions,
} from "./router.ts";

const SETTINGS: FrrSettings = {
  asn: 65000,
  routerId: "192.0.2.1",
  keepaliveSeconds: 3,
  holdSeconds: 9,
  connectRetrySeconds: 2,
  bfd: undefined,
  peers: [
    { address: "192.0.2.11", asn: 65001 },
    { address: "2001:db8:1::11", asn: 65001, password: "s3cret" },
  ],
};

Deno.test("renderFrrConfig: ECMP in both families, each peer activated in its own family", () => {
  const config = renderFrrConfig(SETTINGS);
  const lines = config.split("\n");
  for (
    const line of [
      "router bgp 65000",
      " bgp router-id 192.0.2.1",
      " no bgp ebgp-requires-policy",
      " no bgp default ipv4-unicast",
      " bgp bestpath as-path multipath-relax",
      " neighbor 192.0.2.11 remote-as 65001",
      " neighbor 192.0.2.11 timers 3 9",
      " neighbor 192.0.2.11 timers connect 2",
      " neighbor 2001:db8:1::11 password s3cret",
    ]
  ) {
    assert.ok(lines.includes(line), `has "${line}"`);
  }
  assert.ok(!config.includes("bfd"), "no BFD without a profile");
  assert.ok(!config.includes("192.0.2.11 password"), "no password where none was given");
  const v4 = config.slice(
    config.indexOf("address-family ipv4"),
    config.indexOf("address-family ipv6"),
  );
  const v6 = config.slice(config.indexOf("address-family ipv6"));
  assert.match(v4, /maximum-paths 8/);
  assert.match(v4, /neighbor 192\.0\.2\.11 activate/);
  assert.doesNotMatch(v4, /2001:db8:1::11/);
  assert.match(v6, /maximum-paths 8/);
  assert.match(v6, /neighbor 2001:db8:1::11 activate/);
  assert.doesNotMatch(v6, /192\.0\.2\.11/);
});

Deno.test("renderFrrConfig: a BFD profile, used by every peer unless it opts out", () => {
  const config = renderFrrConfig({
    ...SETTINGS,
    bfd: { receiveIntervalMs: 100, transmitIntervalMs: 200, detectMultiplier: 4 },
    peers: [{ address: "192.0.2.11", asn: 65001 }, {
      address: "192.0.2.12",
      asn: 65001,
      bfd: false,
    }],
  });
  assert.ok(
    config.includes(
      "bfd\n profile testbed\n  receive-interval 100\n  transmit-interval 200\n" +
        "  detect-multiplier 4\n exit\nexit\n",
    ),
    config,
  );
  assert.match(config, /^ neighbor 192\.0\.2\.11 bfd profile testbed$/m);
  assert.doesNotMatch(config, /192\.0\.2\.12 bfd/);
});

Deno.test("renderPeerChanges: removes gone and changed peers, adds new and changed ones", () => {
  const before = SETTINGS.peers;
  assert.equal(renderPeerChanges(before, SETTINGS), "");
  const changes = renderPeerChanges(before, {
    ...SETTINGS,
    peers: [
      { address: "192.0.2.11", asn: 65002 },
      { address: "192.0.2.13", asn: 65001 },
    ],
  });
  assert.equal(
    changes,
    [
      "router bgp 65000",
      " no neighbor 192.0.2.11",
      " no neighbor 2001:db8:1::11",
      " neighbor 192.0.2.11 remote-as 65002",
      " neighbor 192.0.2.11 timers 3 9",
      " neighbor 192.0.2.11 timers connect 2",
      " neighbor 192.0.2.13 remote-as 65001",
      " neighbor 192.0.2.13 timers 3 9",
      " neighbor 192.0.2.13 timers connect 2",
      " address-family ipv4 unicast",
      "  neighbor 192.0.2.11 activate",
      "  neighbor 192.0.2.13 activate",
      " exit-address-family",
      "exit",
      "",
    ].join("\n"),
  );
});

Deno.test("parseRouteNextHops: single and multipath routes, none at all", () => {
  assert.deepEqual(parseRouteNextHops("[]"), []);
  assert.deepEqual(parseRouteNextHops(""), []);
  assert.deepEqual(
    parseRouteNextHops(
      '[{"dst":"192.0.2.200","nhid":7,"gateway":"192.0.2.11","dev":"eth0","protocol":"bgp"}]',
    ),
    [{ gateway: "192.0.2.11", interfaceName: "eth0" }],
  );
  assert.deepEqual(
    parseRouteNextHops(JSON.stringify([{
      dst: "2001:db8:5::200",
      nhid: 30,
      protocol: "bgp",
      nexthops: [
        { gateway: "fe80::1", dev: "eth0", weight: 1, flags: [] },
        { gateway: "fe80::2", dev: "eth0", weight: 1, flags: [] },
      ],
    }])),
    [{ gateway: "fe80::1", interfaceName: "eth0" }, { gateway: "fe80::2", interfaceName: "eth0" }],
  );
});

Deno.test("parseBgpSummary: sessions of both families, sorted", () => {
  const summary = parseBgpSummary(JSON.stringify({
    ipv6Unicast: {
      peers: {
        "2001:db8:1::11": { remoteAs: 65001, state: "Active", peerUptimeMsec: 0 },
      },
    },
    ipv4Unicast: {
      peers: {
        "192.0.2.12": { remoteAs: 65001, state: "Established", pfxRcd: 2, peerUptimeMsec: 5 },
        "192.0.2.11": { remoteAs: 65001, state: "Established", pfxRcd: 1, peerUptimeMsec: 9 },
      },
    },
  }));
  assert.deepEqual(summary, [
    {
      address: "192.0.2.11",
      family: "ipv4",
      remoteAs: 65001,
      state: "Established",
      prefixesReceived: 1,
      uptimeMs: 9,
    },
    {
      address: "192.0.2.12",
      family: "ipv4",
      remoteAs: 65001,
      state: "Established",
      prefixesReceived: 2,
      uptimeMs: 5,
    },
    {
      address: "2001:db8:1::11",
      family: "ipv6",
      remoteAs: 65001,
      state: "Active",
      prefixesReceived: 0,
      uptimeMs: 0,
    },
  ]);
  assert.deepEqual(parseBgpSummary("{}"), []);
});

// ---------------------------------------------------------------------------------------------
// With root: a LAN of three nodes running BIRD, the router running FRR, a client behind it.

const LAN = {
  nodes: ["node-a", "node-b", "node-c"],
  ipv4Subnet: "192.0.2.0/24",
  ipv6Subnet: "2001:db8:1::/64",
} as const;
const VIRTUAL_IPV4 = "192.0.2.200";
const VIRTUAL_IPV6 = "2001:db8:5::200";
const FAST_BFD: BfdProfile = {
  receiveIntervalMs: 100,
  transmitIntervalMs: 100,
  detectMultiplier: 3,
};

/** A hand-written BIRD config, the shape the agent's renderer produces. */
function birdConfig(
  node: LanHost,
  router: Router,
  options: { readonly bfd?: BfdProfile; readonly password?: string } = {},
): string {
  const session = [
    "  hold time 9; keepalive time 3;",
    // BIRD's defaults wait 5 s before the first connect, 120 s between connects and 60 s or
    // more after an error: far too slow for a test.
    "  connect delay time 1; connect retry time 2; error wait time 1, 10;",
    ...(options.bfd === undefined ? [] : ["  bfd on;"]),
    ...(options.password === undefined ? [] : [`  password "${options.password}";`]),
  ];
  const bfd = options.bfd;
  return [
    "log stderr all;",
    `router id ${node.ipv4};`,
    "protocol device {}",
    "protocol direct virtual_addresses {",
    "  ipv4;",
    "  ipv6;",
    `  interface "kube-lb0";`,
    "}",
    ...(bfd === undefined ? [] : [
      "protocol bfd {",
      `  interface "eth0" { min rx interval ${bfd.receiveIntervalMs} ms; ` +
      `min tx interval ${bfd.transmitIntervalMs} ms; multiplier ${bfd.detectMultiplier}; };`,
      "}",
    ]),
    "protocol bgp router_ipv4 {",
    `  local ${node.ipv4} as 65001;`,
    `  neighbor ${router.ipv4} as ${router.asn};`,
    ...session,
    `  ipv4 { import none; export where proto = "virtual_addresses"; next hop self; };`,
    "}",
    "protocol bgp router_ipv6 {",
    `  local ${node.ipv6} as 65001;`,
    `  neighbor ${router.ipv6} as ${router.asn};`,
    ...session,
    "  ipv6 { import none; " +
    `export where proto = "virtual_addresses" && net !~ [ fe80::/10+ ]; next hop self; };`,
    "}",
    "",
  ].join("\n");
}

interface Testbed {
  readonly lan: Lan;
  readonly router: Router;
  /** BIRD per node name. */
  readonly birds: ReadonlyMap<string, Bird>;
  /** Milliseconds from starting BIRD to every session Established. */
  readonly sessionsUpMs: number;
}

/** Every session in the router's summary is Established, and there are `count`. */
async function allEstablished(router: Router, count: number): Promise<boolean> {
  const sessions = await router.bgpSummary();
  return sessions.length === count && sessions.every((session) => session.state === "Established");
}

async function withTestbed(
  options: {
    readonly nodes?: readonly string[];
    readonly router?: RouterOptions;
    readonly bfd?: BfdProfile;
    readonly password?: string;
  },
  test: (testbed: Testbed) => Promise<void>,
): Promise<void> {
  const lan = await createLan({ ...LAN, nodes: options.nodes ?? LAN.nodes });
  let router: Router | undefined;
  const dirs: DaemonDir[] = [];
  const birds = new Map<string, Bird>();
  try {
    router = await createRouter(lan, options.router ?? {});
    const built = router;
    for (const node of lan.nodes) {
      const dir = await makeDaemonDir(`purelb-bird-${node.name}-`);
      dirs.push(dir);
      await Deno.writeTextFile(`${dir.path}/bird.conf`, birdConfig(node, built, options));
    }
    const started = performance.now();
    await Promise.all(lan.nodes.map(async (node, index) => {
      const dir = dirs[index];
      if (dir === undefined) throw new Error(`no directory for ${node.name}`);
      birds.set(node.name, await startBird({ netns: node.netns, dir: dir.path }));
    }));
    await waitFor(
      () => allEstablished(built, lan.nodes.length * 2),
      30_000,
      "every BGP session Established",
    ).catch(async (error: unknown) => {
      const summary = JSON.stringify(await built.bgpSummary());
      const birdLog = [...birds.values()].map((bird) => bird.stderrText()).join("\n");
      throw new Error(`${String(error)}\n${summary}\n${birdLog}\n${built.logs().slice(-3000)}`);
    });
    const sessionsUpMs = Math.round(performance.now() - started);
    console.log(`  ${lan.nodes.length * 2} BGP sessions up ${sessionsUpMs} ms after BIRD started`);
    await test({ lan, router, birds, sessionsUpMs });
  } finally {
    for (const bird of birds.values()) await bird.kill();
    await router?.destroy();
    for (const dir of dirs) await dir.remove();
    await lan.destroy();
  }
}

async function addEverywhere(lan: Lan, addresses: readonly string[]): Promise<void> {
  for (const node of lan.nodes) {
    for (const address of addresses) {
      await addHostAddress(node.netns, lan.dummyInterfaceName, address);
    }
  }
}

/** Waits until the router's next hops for both virtual addresses are exactly `nodes`. */
async function waitForNextHopNodes(
  router: Router,
  nodes: readonly string[],
  deadlineMs: number,
): Promise<void> {
  const wanted = [...nodes].sort().join(",");
  await Promise.all(
    [`${VIRTUAL_IPV4}/32`, `${VIRTUAL_IPV6}/128`].map((prefix) =>
      router.waitForRoutes(
        prefix,
        (hops) => hops.map((hop) => hop.node ?? hop.gateway).sort().join(",") === wanted,
        deadlineMs,
        `next hops ${wanted} for ${prefix}`,
      )
    ),
  );
}

/** A LAN that was never built: createRouter checks its options before touching it. */
function unbuiltLan(ipv4: string, ipv6: string): Lan {
  const node: LanHost = {
    name: "node-a",
    netns: "plb00000-node-a",
    interfaceName: "eth0",
    mac: "02:00:00:00:00:11",
    ipv4,
    ipv4PrefixLength: 24,
    ipv6,
    ipv6PrefixLength: 64,
  };
  return {
    id: "00000",
    lanNetns: "plb00000-lan",
    bridgeName: "br0",
    nodes: [node],
    client: { ...node, name: "client", netns: "plb00000-client" },
    dummyInterfaceName: "kube-lb0",
    namespaces: ["plb00000-lan", "plb00000-node-a", "plb00000-client"],
    node: () => node,
    destroy: () => Promise.resolve(),
  };
}

Deno.test("createRouter refuses a LAN overlapping the client network, and bad options", async () => {
  const refused = async (lan: Lan, options: RouterOptions, pattern: RegExp) => {
    await assert.rejects(
      createRouter(lan, options),
      (error: unknown) => error instanceof LanOptionsError && pattern.test(error.message),
    );
  };
  const lan = unbuiltLan("192.0.2.11", "2001:db8:1::11");
  await refused(unbuiltLan("203.0.113.11", "2001:db8:1::11"), {}, /203\.0\.113\.0\/24/);
  await refused(unbuiltLan("192.0.2.11", "2001:db8:2::11"), {}, /2001:db8:2::\/64/);
  await refused(lan, { asn: 0 }, /not an AS number/);
  await refused(lan, { routerId: "2001:db8::1" }, /router id/);
  await refused(lan, { holdSeconds: 2 }, /holdSeconds/);
  await refused(lan, { bfd: { ...FAST_BFD, detectMultiplier: 1 } }, /detectMultiplier/);
  await refused(lan, { password: "two words" }, /password/);
  await refused(lan, { peers: [{ address: "node-a", asn: 65001 }] }, /not an IP address/);
});

Deno.test({
  name: "the router learns a virtual address from every node (ECMP), the client reaches it, " +
    "and a node that drops it drops out of the next hops",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    await withTestbed({}, async ({ lan, router }) => {
      const summary = await router.bgpSummary();
      assert.deepEqual(
        summary.map((session) => `${session.family} ${session.address} ${session.remoteAs}`),
        [
          "ipv4 192.0.2.11 65001",
          "ipv4 192.0.2.12 65001",
          "ipv4 192.0.2.13 65001",
          "ipv6 2001:db8:1::11 65001",
          "ipv6 2001:db8:1::12 65001",
          "ipv6 2001:db8:1::13 65001",
        ],
      );
      assert.ok(
        summary.every((session) => session.prefixesReceived === 0),
        "nothing announced yet",
      );

      const added = performance.now();
      await addEverywhere(lan, [VIRTUAL_IPV4, VIRTUAL_IPV6]);
      await waitForNextHopNodes(router, LAN.nodes, 10_000);
      console.log(
        `  a new address on 3 nodes reached the router (3 next hops, both families) in ${
          Math.round(performance.now() - added)
        } ms`,
      );
      const v4 = await router.routes(`${VIRTUAL_IPV4}/32`);
      assert.deepEqual(v4.map((hop) => hop.gateway).sort(), [
        "192.0.2.11",
        "192.0.2.12",
        "192.0.2.13",
      ]);
      const v6 = await router.routes(`${VIRTUAL_IPV6}/128`);
      // FRR prefers the link-local next hop BIRD sends beside the global one; a node whose
      // link-local was still tentative when its session came up sends the global one only.
      console.log(
        `  IPv6 next hops: ${v6.map((hop) => `${hop.gateway} (${hop.node})`).join(", ")}`,
      );
      assert.deepEqual(await router.nextHopNodes(`${VIRTUAL_IPV6}/128`), [
        "node-a",
        "node-b",
        "node-c",
      ]);

      await waitForPing(router.client.netns, VIRTUAL_IPV4, 10_000);
      await waitForPing(router.client.netns, VIRTUAL_IPV6, 10_000);

      // Layer-4 hashing: connections from new source ports spread over the nodes.
      const responders = await Promise.all(
        lan.nodes.map((node) => startTcpResponder(node.netns, 8080, node.name)),
      );
      try {
        for (const address of [VIRTUAL_IPV4, VIRTUAL_IPV6]) {
          const servedBy = new Set<string>();
          for (let i = 0; i < 12; i++) {
            servedBy.add(await tcpRequest(router.client.netns, address, 8080));
          }
          console.log(
            `  12 connections to ${address} were served by ${[...servedBy].sort().join(", ")}`,
          );
          assert.ok(servedBy.size >= 2, `flows to ${address} spread over the nodes`);
          for (const name of servedBy) assert.ok((LAN.nodes as readonly string[]).includes(name));
        }
      } finally {
        for (const responder of responders) await responder.stop();
      }

      const removed = performance.now();
      const nodeC = lan.node("node-c");
      await removeHostAddress(nodeC.netns, lan.dummyInterfaceName, VIRTUAL_IPV4);
      await removeHostAddress(nodeC.netns, lan.dummyInterfaceName, VIRTUAL_IPV6);
      await waitForNextHopNodes(router, ["node-a", "node-b"], 10_000);
      console.log(
        `  node-c's withdrawal reached the router in ${Math.round(performance.now() - removed)} ms`,
      );
      const after = await router.bgpSummary();
      assert.deepEqual(
        after.map((session) => `${session.address} ${session.prefixesReceived}`),
        [
          "192.0.2.11 1",
          "192.0.2.12 1",
          "192.0.2.13 0",
          "2001:db8:1::11 1",
          "2001:db8:1::12 1",
          "2001:db8:1::13 0",
        ],
      );
      await waitForPing(router.client.netns, VIRTUAL_IPV4, 10_000);

      // Peers change without restarting bgpd.
      const bgpdPid = await Deno.readTextFile(`${router.dir}/bgpd.pid`);
      await router.removePeer(lan.node("node-a").ipv4);
      await router.waitForRoutes(
        `${VIRTUAL_IPV4}/32`,
        (hops) => hops.map((hop) => hop.node).join(",") === "node-b",
        10_000,
      );
      assert.ok(!(await router.bgpSummary()).some((session) => session.address === "192.0.2.11"));
      assert.ok(!router.frrConfig().includes("neighbor 192.0.2.11 "));
      const readded = performance.now();
      await router.addPeer(lan.node("node-a").ipv4, 65001);
      await waitForNextHopNodes(router, ["node-a", "node-b"], 15_000);
      console.log(
        `  a re-added peer was back in the next hops in ${
          Math.round(performance.now() - readded)
        } ms`,
      );
      assert.equal(
        await Deno.readTextFile(`${router.dir}/bgpd.pid`),
        bgpdPid,
        "bgpd not restarted",
      );
    });
  },
});

Deno.test({
  name: "with BFD the router drops a dead node's next hop well within the hold time",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    await withTestbed(
      { router: { bfd: FAST_BFD }, bfd: FAST_BFD },
      async ({ lan, router, birds }) => {
        await addEverywhere(lan, [VIRTUAL_IPV4, VIRTUAL_IPV6]);
        await waitForNextHopNodes(router, LAN.nodes, 10_000);
        await waitFor(
          async () => {
            const peers: unknown = JSON.parse(await router.vtysh("show bfd peers json"));
            return Array.isArray(peers) && peers.length === 6 &&
              peers.every((peer: unknown) =>
                typeof peer === "object" && peer !== null && "status" in peer &&
                peer.status === "up"
              );
          },
          10_000,
          "six BFD sessions up",
        );

        const nodeC = lan.node("node-c");
        const bird = birds.get("node-c");
        if (bird === undefined) throw new Error("no BIRD on node-c");
        // The link first, so no FIN or Cease from the dying BIRD reaches the router: only BFD
        // (or the 9 s hold timer) can tell it the node is gone.
        const cut = performance.now();
        await runChecked([testbedIpPath(), "-n", nodeC.netns, "link", "set", "eth0", "down"]);
        await bird.kill();
        const dropped = await Promise.all([`${VIRTUAL_IPV4}/32`, `${VIRTUAL_IPV6}/128`].map(
          async (prefix) => {
            await router.waitForRoutes(
              prefix,
              (hops) => hops.length === 2 && hops.every((hop) => hop.node !== "node-c"),
              5_000,
              `node-c gone from the next hops of ${prefix} within 5 s`,
            );
            return Math.round(performance.now() - cut);
          },
        ));
        console.log(
          `  BFD (${FAST_BFD.transmitIntervalMs} ms x ${FAST_BFD.detectMultiplier}): node-c dropped ` +
            `from the IPv4 next hops after ${dropped[0]} ms, IPv6 after ${dropped[1]} ms`,
        );
        await waitForPing(router.client.netns, VIRTUAL_IPV4, 5_000);
        await waitForPing(router.client.netns, VIRTUAL_IPV6, 5_000);
      },
    );
  },
});

Deno.test({
  name: "TCP MD5 passwords on both sides: sessions come up",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    await withTestbed(
      { nodes: ["node-a"], router: { password: "purelb-test" }, password: "purelb-test" },
      async ({ router }) => {
        assert.match(router.frrConfig(), /neighbor 192\.0\.2\.11 password purelb-test/);
        assert.equal((await router.bgpSummary()).length, 2);
      },
    );
  },
});
