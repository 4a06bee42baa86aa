import assert from "node:assert/strict";
import { parseAnnouncing, renderStatus, statusRows } from "./status.ts";
import { parseTables } from "./table.ts";
import { lbService, nodeLease } from "./testdata.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");
const LAN = "192.0.2.0/24,2001:db8:1::/64";
const leases = [
  nodeLease("node-a", NOW, LAN),
  nodeLease("node-b", NOW, LAN),
  nodeLease("node-c", NOW - 60_000, LAN), // expired
  nodeLease("node-d", NOW, ""), // no LBNodeAgent selects it
];
const nodeAgents = [{ metadata: { name: "default" }, spec: { local: { extlbint: "kube-lb0" } } }];

Deno.test("parseAnnouncing reads node,interface,address entries and skips others", () => {
  assert.deepEqual(parseAnnouncing(" node-b,eth0,192.0.2.240  node-a,eth1,2001:DB8:1::240 x,y "), [
    { node: "node-b", interfaceName: "eth0", address: "192.0.2.240" },
    { node: "node-a", interfaceName: "eth1", address: "2001:db8:1::240" },
  ]);
  assert.deepEqual(parseAnnouncing(""), []);
  assert.deepEqual(parseAnnouncing("node-a,eth0,not-an-address"), []);
});

Deno.test("status: local addresses from the announcing annotations, '-' without them", () => {
  const rows = statusRows({
    services: [
      lbService("shop", "web", ["192.0.2.240", "2001:db8:1::240"], {
        "purelb.io/allocated-from": "default",
        "purelb.io/announcing-IPv4": "node-b,eth0,192.0.2.240",
        "purelb.io/announcing-IPv6": "node-a,eth0,2001:db8:1::240",
      }),
      lbService("shop", "fresh", ["192.0.2.241"], { "purelb.io/allocated-from": "default" }),
    ],
    failures: [],
    leases,
    nodeAgents,
    qualifyNames: true,
    nowMs: NOW,
  });
  assert.deepEqual(
    rows.map((r) => [r.service, r.address, r.nodes.join(","), r.interfaceName, r.state, r.kind]),
    [
      ["shop/fresh", "192.0.2.241", "", "", "allocated", "local"],
      ["shop/web", "192.0.2.240", "node-b", "eth0", "announced", "local"],
      ["shop/web", "2001:db8:1::240", "node-a", "eth0", "announced", "local"],
    ],
  );
  // The election's pick among the live candidates (node-a, node-b; node-c expired).
  assert.equal(rows[1]?.elected, "node-b");
  const table = parseTables(renderStatus(rows, "table"))[0] ?? [];
  assert.deepEqual(table.map((r) => r.NODE), ["", "node-b", "node-a"]);
  assert.match(
    renderStatus(rows, "table").split("\n")[1] ?? "",
    /^shop\/fresh\s+192\.0\.2\.241\s+default\s+-\s+-\s+allocated\s+-$/,
  );
});

Deno.test("status: a virtual address is on the dummy interface of every announcing live node", () => {
  const rows = statusRows({
    services: [
      lbService("shop", "v", ["198.51.100.10"], { "purelb.io/allocated-from": "virtual" }),
    ],
    failures: [],
    leases,
    nodeAgents,
    qualifyNames: false,
    nowMs: NOW,
  });
  assert.deepEqual(rows.map((r) => [r.service, r.nodes.join(","), r.interfaceName, r.kind]), [
    ["v", "node-a,node-b", "kube-lb0", "virtual"],
  ]);
});

Deno.test("status: a service without an address shows its latest AllocationFailed message", () => {
  const event = (message: string, time: string) => ({
    metadata: { namespace: "shop" },
    involvedObject: { kind: "Service", namespace: "shop", name: "bad" },
    reason: "AllocationFailed",
    message,
    lastTimestamp: new Date(time),
  });
  const rows = statusRows({
    services: [lbService("shop", "bad", []), lbService("shop", "new", [])],
    failures: [event("newer", "2026-01-01T00:00:02Z"), event("older", "2026-01-01T00:00:01Z")],
    leases,
    nodeAgents,
    qualifyNames: false,
    nowMs: NOW,
  });
  assert.deepEqual(rows.map((r) => [r.service, r.state, r.reason]), [
    ["bad", "failed", "newer"],
    ["new", "pending", ""],
  ]);
});

Deno.test("status: observed holdings replace the annotations (the demo's view)", () => {
  const rows = statusRows({
    services: [
      lbService("demo", "web", ["192.0.2.240"], {
        "purelb.io/announcing-IPv4": "node-b,eth0,192.0.2.240",
      }),
    ],
    failures: [],
    leases,
    nodeAgents,
    qualifyNames: false,
    nowMs: NOW,
  }, { observed: [{ node: "node-a", interfaceName: "eth0", address: "192.0.2.240" }] });
  assert.deepEqual(rows[0]?.nodes, ["node-a"]);
});

Deno.test("status -o json and -o wide carry the kind and the election's pick", () => {
  const rows = statusRows({
    services: [lbService("shop", "web", ["192.0.2.240"])],
    failures: [],
    leases,
    nodeAgents,
    qualifyNames: true,
    nowMs: NOW,
  });
  const json = JSON.parse(renderStatus(rows, "json"));
  assert.deepEqual(json, [{
    service: "shop/web",
    address: "192.0.2.240",
    pool: "",
    kind: "local",
    nodes: [],
    interface: "",
    state: "allocated",
    reason: "",
    elected: "node-b",
  }]);
  const [header, line] = renderStatus(rows, "wide").split("\n");
  assert.match(header ?? "", /KIND\s+ELECTED\s+REASON$/);
  assert.match(line ?? "", /local\s+node-b\s+-$/);
});
