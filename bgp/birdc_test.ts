/**
 * Tests of the birdc output parsers on real BIRD 2.0.12 output (`testdata/birdc/`, made by
 * `testdata/birdc/capture.ts` against FRR 8.4). Re-capturing changes times and states, so the
 * expectations here must then be updated from the new files.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseBirdConfigureReply, parseBirdProtocols } from "./birdc.ts";
import type { BirdBgpState, BirdChannelState } from "./model.ts";

const FIXTURES = new URL("./testdata/birdc/", import.meta.url);

function fixture(name: string): Promise<string> {
  return Deno.readTextFile(new URL(name, FIXTURES));
}

function ch(family: "ipv4" | "ipv6", state: string, exported = 0): BirdChannelState {
  return { family, state, imported: 0, exported };
}

function peer(
  name: string,
  bgpState: string,
  since: string,
  neighborAddress: string,
  lastError: string | undefined,
  channels: BirdChannelState[],
  neighborAs = 65000,
): BirdBgpState {
  return {
    name,
    bgpState,
    since: `2026-12-02 ${since}`,
    neighborAddress,
    neighborAs,
    localAs: 65001,
    lastError,
    channels,
  };
}

Deno.test("parseBirdProtocols: every BGP protocol of show protocols all, field by field", async () => {
  const states = parseBirdProtocols(await fixture("show_protocols_all.txt"));
  assert.deepEqual(states.map((s) => s.name), [
    "peer_192_0_2_1",
    "peer_192_0_2_2",
    "peer_192_0_2_3",
    "peer_192_0_2_4",
    "peer_192_0_2_5",
    "peer_192_0_2_6",
    "peer_192_0_2_99",
    "peer_198_51_100_99",
    "peer_2001_db8_1__1",
  ]);
  const expected: BirdBgpState[] = [
    // Established over IPv4 with both families: the /32 and the /28, and the /128.
    peer("peer_192_0_2_1", "Established", "02:44:58", "192.0.2.1", undefined, [
      ch("ipv4", "UP", 2),
      ch("ipv6", "UP", 1),
    ]),
    // FRR expects AS 65002 and says so in a NOTIFICATION.
    peer("peer_192_0_2_2", "Active", "02:45:00", "192.0.2.2", "Received: Bad peer AS", [
      ch("ipv4", "DOWN"),
    ]),
    // TCP MD5 mismatch: the peer drops our segments, BIRD just keeps trying, no error.
    peer("peer_192_0_2_3", "Connect", "02:44:57", "192.0.2.3", undefined, [ch("ipv4", "DOWN")]),
    // BFD on.
    peer("peer_192_0_2_4", "Established", "02:44:59", "192.0.2.4", undefined, [
      ch("ipv4", "UP", 2),
    ]),
    // adminDown: `disabled;`.
    peer("peer_192_0_2_5", "Down", "02:44:57", "192.0.2.5", undefined, [ch("ipv4", "DOWN")]),
    // We expect AS 65099, FRR is 65000: BIRD's own error.
    peer(
      "peer_192_0_2_6",
      "Active",
      "02:45:00",
      "192.0.2.6",
      "BGP Error: Bad peer AS",
      [ch("ipv4", "DOWN")],
      65099,
    ),
    // Nobody at this (on-link) address.
    peer("peer_192_0_2_99", "Connect", "02:44:57", "192.0.2.99", undefined, [ch("ipv4", "DOWN")]),
    // Not on a connected network, not multihop: BIRD waits in Idle.
    peer("peer_198_51_100_99", "Idle", "02:44:57", "198.51.100.99", undefined, [
      ch("ipv4", "DOWN"),
    ]),
    // Established over IPv6.
    peer("peer_2001_db8_1__1", "Established", "02:45:00", "2001:db8:1::1", undefined, [
      ch("ipv6", "UP", 1),
    ]),
  ];
  for (const [i, want] of expected.entries()) {
    assert.deepEqual(states[i], want, `protocol ${want.name}`);
  }
  assert.equal(states.length, expected.length);
});

Deno.test("parseBirdProtocols: right after BIRD started, every session Active or Idle", async () => {
  const states = parseBirdProtocols(await fixture("starting.txt"));
  assert.equal(states.length, 9);
  const byState = new Map<string, string[]>();
  for (const state of states) {
    byState.set(state.bgpState, [...(byState.get(state.bgpState) ?? []), state.name]);
    assert.equal(state.since, "2026-12-02 02:44:57", state.name);
    assert.equal(state.lastError, undefined, state.name);
    for (const channel of state.channels) {
      assert.equal(channel.state, "DOWN", state.name);
      assert.equal(channel.imported, 0, state.name);
      assert.equal(channel.exported, 0, state.name);
    }
  }
  assert.deepEqual(byState.get("Down"), ["peer_192_0_2_5"]);
  assert.deepEqual(byState.get("Idle"), ["peer_198_51_100_99"]);
  assert.equal(byState.get("Active")?.length, 7);
  const first = states[0];
  assert.deepEqual(first?.channels.map((c) => c.family), ["ipv4", "ipv6"]);
});

Deno.test("parseBirdProtocols: after FRR's bfdd stopped, Last error says BFD", async () => {
  const states = parseBirdProtocols(await fixture("bfd_down.txt"));
  const bfd = states.find((s) => s.name === "peer_192_0_2_4");
  assert.deepEqual(bfd, {
    name: "peer_192_0_2_4",
    bgpState: "Idle",
    since: "2026-12-02 02:45:12",
    neighborAddress: "192.0.2.4",
    neighborAs: 65000,
    localAs: 65001,
    lastError: "Error: BFD session down",
    channels: [ch("ipv4", "DOWN")],
  });
  const nobody = states.find((s) => s.name === "peer_192_0_2_99");
  assert.equal(nobody?.bgpState, "Active");
  assert.equal(nobody?.lastError, "Socket: No route to host");
  const peerAs = states.find((s) => s.name === "peer_192_0_2_2");
  assert.equal(peerAs?.bgpState, "Idle");
  assert.equal(peerAs?.lastError, "Received: Bad peer AS");
  // The other sessions stayed up through the earlier reconfigurations.
  assert.equal(states.find((s) => s.name === "peer_2001_db8_1__1")?.since, "2026-12-02 02:45:10");
  // The disabled one's Since moves with each `configure` (BIRD re-creates down protocols).
  assert.equal(states.find((s) => s.name === "peer_192_0_2_5")?.since, "2026-12-02 02:45:08");
});

Deno.test("parseBirdProtocols: BIRD re-established the BFD neighbour while BFD stayed down", async () => {
  const states = parseBirdProtocols(await fixture("bfd_down_later.txt"));
  assert.deepEqual(states, [{
    name: "peer_192_0_2_4",
    bgpState: "Established",
    since: "2026-12-02 02:45:14",
    neighborAddress: "192.0.2.4",
    neighborAs: 65000,
    localAs: 65001,
    lastError: undefined,
    channels: [ch("ipv4", "UP", 2)],
  }]);
  assert.match(await fixture("bfd_down_sessions.txt"), /192\.0\.2\.4\s+hb-n0\s+Down\s/);
});

Deno.test("parseBirdProtocols: show protocols all NAME (one protocol)", async () => {
  const states = parseBirdProtocols(await fixture("show_protocols_all_one.txt"));
  assert.equal(states.length, 1);
  assert.equal(states[0]?.name, "peer_192_0_2_1");
  assert.equal(states[0]?.bgpState, "Established");
  assert.deepEqual(states[0]?.channels, [ch("ipv4", "UP", 2), ch("ipv6", "UP", 1)]);
});

Deno.test("parseBirdProtocols: show protocols without details falls back on the Info column", async () => {
  const states = parseBirdProtocols(await fixture("show_protocols.txt"));
  assert.deepEqual(
    states.map((s) => [s.name, s.bgpState, s.since, s.lastError, s.channels.length]),
    [
      ["peer_192_0_2_1", "Established", "2026-12-02 02:44:58", undefined, 0],
      ["peer_192_0_2_2", "Active", "2026-12-02 02:45:00", undefined, 0],
      ["peer_192_0_2_3", "Connect", "2026-12-02 02:44:57", undefined, 0],
      ["peer_192_0_2_4", "Established", "2026-12-02 02:44:59", undefined, 0],
      ["peer_192_0_2_5", "Down", "2026-12-02 02:44:57", undefined, 0],
      ["peer_192_0_2_6", "Active", "2026-12-02 02:45:00", undefined, 0],
      ["peer_192_0_2_99", "Connect", "2026-12-02 02:44:57", undefined, 0],
      ["peer_198_51_100_99", "Idle", "2026-12-02 02:44:57", undefined, 0],
      ["peer_2001_db8_1__1", "Established", "2026-12-02 02:45:00", undefined, 0],
    ],
  );
  assert.equal(states[0]?.neighborAddress, undefined);
  assert.equal(states[0]?.neighborAs, undefined);
  assert.equal(states[0]?.localAs, undefined);
});

Deno.test("parseBirdProtocols: keep-filtered Routes line, other families, CRLF, no greeting", () => {
  const text = [
    "Name       Proto      Table      State  Since         Info",
    "peer_x     BGP        ---        up     12:00:01.123  Established   ",
    "  BGP state:          Established",
    "    Neighbor address: fe80::1%eth0",
    "    Neighbor AS:      4200000001",
    "    Local AS:         65001",
    "  Channel ipv4-mpls",
    "    State:          UP",
    "    Routes:         9 imported, 9 exported, 9 preferred",
    "  Channel ipv6",
    "    State:          UP",
    "    Routes:         3 imported, 1 filtered, 2 exported, 0 preferred",
    "",
  ].join("\r\n");
  assert.deepEqual(parseBirdProtocols(text), [{
    name: "peer_x",
    bgpState: "Established",
    since: "12:00:01.123",
    neighborAddress: "fe80::1%eth0",
    neighborAs: 4_200_000_001,
    localAs: 65001,
    lastError: undefined,
    channels: [{ family: "ipv6", state: "UP", imported: 3, exported: 2 }],
  }]);
});

Deno.test("parseBirdProtocols: nothing from greetings, errors and other protocols", async () => {
  assert.deepEqual(parseBirdProtocols(""), []);
  assert.deepEqual(parseBirdProtocols("BIRD 2.0.12 ready.\n"), []);
  assert.deepEqual(
    parseBirdProtocols(
      "Unable to connect to server control socket (/x/bird.ctl): No such file or directory\n",
    ),
    [],
  );
  const text = await fixture("show_protocols_all.txt");
  // Only the direct protocol's channels carry "2 imported": none of that may leak into BGP.
  const start = text.indexOf("lb_addresses");
  const end = text.indexOf("peer_192_0_2_1 BGP");
  assert.ok(start > 0 && end > start);
  assert.deepEqual(parseBirdProtocols(text.slice(0, end)), []);
  assert.ok(parseBirdProtocols(text).every((s) => s.channels.every((c) => c.imported === 0)));
});

async function reply(name: string) {
  const text = await fixture(`configure_${name}.txt`);
  const status = Number((await fixture(`configure_${name}.status`)).trim());
  return { text, status, parsed: parseBirdConfigureReply(text, status) };
}

Deno.test("parseBirdConfigureReply: Reconfigured (same config, and a neighbour added)", async () => {
  for (const name of ["unchanged", "reconfigured"]) {
    const { status, parsed } = await reply(name);
    assert.equal(status, 0);
    assert.deepEqual(parsed, { kind: "reconfigured" });
  }
});

Deno.test("parseBirdConfigureReply: in progress when a protocol restarts or goes away", async () => {
  for (const name of ["hold_time_changed", "removed", "restored"]) {
    const { text, status, parsed } = await reply(name);
    assert.equal(status, 0);
    assert.match(text, /^Reconfiguration in progress$/m);
    assert.deepEqual(parsed, { kind: "in_progress" }, name);
  }
});

Deno.test("parseBirdConfigureReply: a syntax error is refused with BIRD's message", async () => {
  const { status, parsed } = await reply("syntax_error");
  assert.equal(status, 1);
  assert.equal(parsed.kind, "refused");
  assert.ok(parsed.kind === "refused");
  assert.match(
    parsed.message,
    /^\/tmp\/hb-capture-[0-9a-f]+\/bird\.conf:140:1 syntax error, unexpected CF_SYM_UNDEFINED$/,
  );
});

Deno.test("parseBirdConfigureReply: other replies", () => {
  assert.deepEqual(
    parseBirdConfigureReply(
      "BIRD 2.0.12 ready.\nReading configuration from /b/bird.conf\nReconfiguration already in progress, queueing new config\n",
      0,
    ),
    { kind: "in_progress" },
  );
  assert.deepEqual(
    parseBirdConfigureReply("Reconfiguration already in progress, removing queued config\n", 0),
    { kind: "in_progress" },
  );
  assert.deepEqual(
    parseBirdConfigureReply("BIRD 2.0.12 ready.\nReconfiguration ignored, shutting down\n", 0),
    { kind: "refused", message: "Reconfiguration ignored, shutting down" },
  );
  assert.deepEqual(
    parseBirdConfigureReply(
      "Unable to connect to server control socket (/b/bird.ctl): Connection refused\n",
      1,
    ),
    {
      kind: "refused",
      message: "Unable to connect to server control socket (/b/bird.ctl): Connection refused",
    },
  );
  assert.deepEqual(parseBirdConfigureReply("", 1), {
    kind: "refused",
    message: "birdc exited with 1",
  });
  assert.deepEqual(parseBirdConfigureReply("", 0), {
    kind: "refused",
    message: "birdc configure printed nothing",
  });
  // A non-zero exit code wins over text that looks like success.
  assert.equal(parseBirdConfigureReply("Reconfigured\n", 2).kind, "refused");
  assert.deepEqual(
    parseBirdConfigureReply(
      "Reading configuration from /b/bird.conf\n/b/bird.conf: No such file or directory\n",
      1,
    ),
    { kind: "refused", message: "/b/bird.conf: No such file or directory" },
  );
});
