import assert from "node:assert/strict";
import type { Condition, NeighborStatus } from "../bgp/status.ts";
import type { BgpConfigurationItem, BgpNodeStatusItem } from "./api.ts";
import { age, bgpRows, NO_BGP_NODES, renderBgp } from "./bgp.ts";

const NOW = Date.parse("2026-03-01T12:00:00Z");
const ago = (seconds: number) => new Date(NOW - seconds * 1000).toISOString();

const condition = (
  type: string,
  status: Condition["status"],
  reason: string,
  message: string,
): Condition => ({ type, status, reason, message, lastTransitionTime: ago(3600) });

const daemonRunning = condition("DaemonReady", "True", "Running", "BIRD runs the config");

function node(
  name: string,
  neighbors: readonly NeighborStatus[],
  conditions: readonly Condition[],
  options: { updatedSecondsAgo?: number; heartbeatSeconds?: number; routerID?: string } = {},
): BgpNodeStatusItem {
  return {
    metadata: { name },
    status: {
      nodeName: name,
      routerID: options.routerID ?? "192.0.2.11",
      asn: 65001,
      neighbors,
      neighborCount: neighbors.length,
      healthy: conditions.every((c) => c.status === "True"),
      conditions,
      heartbeatSeconds: options.heartbeatSeconds ?? 60,
      lastUpdated: ago(options.updatedSecondsAgo ?? 40),
    },
  };
}

const established: NeighborStatus = {
  address: "192.0.2.1",
  peerASN: 65000,
  localASN: 65001,
  state: "Established",
  sessionUpSince: ago(300),
  prefixesSent: 3,
  prefixesReceived: 1,
  description: "top of rack",
};
const badPeerAs: NeighborStatus = {
  address: "2001:db8:1::1",
  peerASN: 65009,
  localASN: 65001,
  state: "Active",
  prefixesSent: 0,
  prefixesReceived: 0,
  lastError: "Received: Bad peer AS",
};

const STATUSES: readonly BgpNodeStatusItem[] = [
  // Listed out of order: rows come by node name.
  node("node-e", [established], [daemonRunning], { updatedSecondsAgo: 720 }),
  node("node-a", [established, badPeerAs], [
    daemonRunning,
    condition("Configured", "True", "Configured", "2 neighbours configured"),
    condition("SessionsEstablished", "False", "SessionsDown", "1 of 2 sessions not established"),
  ]),
  // No BGPConfiguration: Configured explains it before SessionsEstablished (NoNeighbors) does.
  node("node-b", [], [
    daemonRunning,
    condition(
      "Configured",
      "False",
      "NoConfiguration",
      "no BGPConfiguration in namespace purelb-system: BGP is idle",
    ),
    condition("SessionsEstablished", "False", "NoNeighbors", "no BGP neighbour applies"),
  ], { routerID: "" }),
  // BIRD unreachable: False wins over the Unknown that follows from it.
  node("node-c", [], [
    condition("SessionsEstablished", "Unknown", "DaemonUnavailable", "BIRD cannot be asked"),
    condition("Configured", "True", "Configured", "0 neighbours configured"),
    condition("DaemonReady", "False", "DaemonUnreachable", "cannot connect to bird.ctl"),
  ]),
  // BIRD refused the new config: its message explains the sessions without an error of their own.
  node("node-d", [{
    address: "2001:db8:1::1",
    peerASN: 65009,
    localASN: 65001,
    state: "Connect",
    // Left from an earlier session: not shown while the session is down.
    sessionUpSince: ago(900),
    prefixesSent: 0,
    prefixesReceived: 0,
  }], [
    condition("DaemonReady", "False", "ConfigRefused", "BIRD refused the new config: syntax error"),
    condition("Configured", "True", "Configured", "1 neighbours configured"),
  ]),
  // Created, status not written yet.
  { metadata: { name: "node-f" } },
];

const CONFIGURATIONS: readonly BgpConfigurationItem[] = [
  {
    metadata: { name: "default" },
    status: {
      conditions: [
        condition("Accepted", "True", "Valid", "2 neighbours"),
        condition(
          "UnsupportedFields",
          "True",
          "FieldsIgnored",
          "these fields are not supported and have no effect: spec.peerGroups",
        ),
      ],
    },
  },
  {
    metadata: { name: "broken" },
    status: {
      conditions: [
        condition("Accepted", "False", "Invalid", "not used: spec.global.asn: missing"),
        condition("UnsupportedFields", "False", "AllSupported", "every field is supported"),
      ],
    },
  },
  {
    metadata: { name: "fine" },
    status: {
      conditions: [
        condition("Accepted", "True", "Valid", "1 neighbours"),
        condition("UnsupportedFields", "False", "AllSupported", "every field is supported"),
      ],
    },
  },
  { metadata: { name: "new" } },
];

Deno.test("age: seconds, minutes, hours, days, never negative", () => {
  assert.deepEqual(
    [0, 45_000, 119_000, 300_000, 7_199_000, 10_800_000, 172_800_000, -5_000].map(age),
    ["0s", "45s", "119s", "5m", "119m", "3h", "2d", "0s"],
  );
});

Deno.test("bgpRows: a row per neighbour, a row per node without one, each with its reason", () => {
  const { rows } = bgpRows(STATUSES, [], NOW);
  assert.deepEqual(
    rows.map((r) => [r.node, r.peer, r.state, r.upFor, r.prefixesSent, r.stale, r.reason]),
    [
      ["node-a", "192.0.2.1", "Established", "5m", 3, false, ""],
      ["node-a", "2001:db8:1::1", "Active", "", 0, false, "Received: Bad peer AS"],
      [
        "node-b",
        "",
        "",
        "",
        undefined,
        false,
        "no BGPConfiguration in namespace purelb-system: BGP is idle",
      ],
      ["node-c", "", "", "", undefined, false, "cannot connect to bird.ctl"],
      [
        "node-d",
        "2001:db8:1::1",
        "Connect",
        "",
        0,
        false,
        "BIRD refused the new config: syntax error",
      ],
      [
        "node-e",
        "192.0.2.1",
        "Established",
        "",
        3,
        true,
        "status not updated for 12m (written every 60s): is the agent running?",
      ],
      [
        "node-f",
        "",
        "",
        "",
        undefined,
        false,
        "no status written yet: is the agent running with BGP?",
      ],
    ],
  );
  const first = rows[0];
  assert.deepEqual(
    [first?.routerID, first?.peerAS, first?.localAS, first?.prefixesReceived, first?.description],
    ["192.0.2.11", 65000, 65001, 1, "top of rack"],
  );
  assert.equal(first?.sessionUpSince, ago(300));
  assert.equal(first?.updatedAgo, "40s");
  // Not Established: no up-since, even if one was written.
  assert.equal(rows.find((r) => r.node === "node-d")?.sessionUpSince, undefined);
});

Deno.test("bgpRows: without neighbours, a False condition explains before an Unknown one", () => {
  const { rows } = bgpRows(
    [
      node("n", [], [
        condition("DaemonReady", "Unknown", "NotAskedYet", "BIRD not asked yet"),
        condition("Configured", "True", "Configured", "0 neighbours configured"),
        condition("SessionsEstablished", "False", "NoNeighbors", "no BGP neighbour applies"),
      ]),
    ],
    [],
    NOW,
  );
  assert.equal(rows[0]?.reason, "no BGP neighbour applies");
});

Deno.test("bgpRows: stale after three heartbeats, not before", () => {
  const at = (secondsAgo: number) =>
    bgpRows(
      [node("n", [established], [daemonRunning], {
        updatedSecondsAgo: secondsAgo,
        heartbeatSeconds: 30,
      })],
      [],
      NOW,
    ).rows[0]?.stale;
  assert.deepEqual([at(89), at(90), at(91)], [false, false, true]);
});

Deno.test("bgpRows: the configurations that are refused or have unsupported fields", () => {
  const { configurations } = bgpRows([], CONFIGURATIONS, NOW);
  assert.deepEqual(
    configurations.map((c) => [c.name, c.conditions.map((x) => `${x.type}=${x.status}`)]),
    [["broken", ["Accepted=False"]], ["default", ["UnsupportedFields=True"]]],
  );
});

Deno.test("renderBgp: configuration lines, the table, wide, json, and no node at all", () => {
  const report = bgpRows(STATUSES, CONFIGURATIONS, NOW);
  assert.equal(
    renderBgp(report, "table"),
    [
      "BGPConfiguration broken: Accepted False (Invalid): not used: spec.global.asn: missing",
      "BGPConfiguration default: UnsupportedFields True (FieldsIgnored): these fields are not " +
      "supported and have no effect: spec.peerGroups",
      "",
      "NODE    ROUTER-ID   PEER           PEER-AS  STATE        UP-SINCE  SENT  REASON",
      "node-a  192.0.2.11  192.0.2.1      65000    Established  5m        3     -",
      "node-a  192.0.2.11  2001:db8:1::1  65009    Active       -         0     Received: Bad peer AS",
      "node-b  -           -              -        -            -         -     no BGPConfiguration in namespace purelb-system: BGP is idle",
      "node-c  192.0.2.11  -              -        -            -         -     cannot connect to bird.ctl",
      "node-d  192.0.2.11  2001:db8:1::1  65009    Connect      -         0     BIRD refused the new config: syntax error",
      "node-e  192.0.2.11  192.0.2.1      65000    stale        -         3     status not updated for 12m (written every 60s): is the agent running?",
      "node-f  -           -              -        -            -         -     no status written yet: is the agent running with BGP?",
    ].join("\n"),
  );
  const wide = renderBgp(report, "wide").split("\n");
  assert.match(
    wide[3] ?? "",
    /^NODE +ROUTER-ID +PEER +PEER-AS +LOCAL-AS +STATE +UP-SINCE +SENT +RECEIVED +DESCRIPTION +LAST-UPDATED +REASON$/,
  );
  assert.match(
    wide[4] ?? "",
    /^node-a +192\.0\.2\.11 +192\.0\.2\.1 +65000 +65001 +Established +5m +3 +1 +top of rack +40s +-$/,
  );
  assert.match(wide[9] ?? "", /^node-e .* 12m +status not updated for 12m /);
  // JSON: the rows only, as objects, with the stale flag and the reported state.
  const json = JSON.parse(renderBgp(report, "json"));
  assert.equal(json.length, 7);
  assert.deepEqual([json[5].node, json[5].state, json[5].stale], ["node-e", "Established", true]);
  assert.equal(json[0].sessionUpSince, ago(300));
  // No BGPNodeStatus at all: say so (BGP is off), under any configuration problem.
  assert.equal(renderBgp(bgpRows([], [], NOW), "table"), NO_BGP_NODES);
  assert.equal(
    renderBgp(bgpRows([], CONFIGURATIONS, NOW), "wide").split("\n").slice(2).join("\n"),
    `\n${NO_BGP_NODES}`,
  );
  assert.equal(renderBgp(bgpRows([], CONFIGURATIONS, NOW), "json"), "[]");
});
