import assert from "node:assert/strict";
import { parseManifests } from "./api.ts";
import {
  describeExpectation,
  DUMMY_INTERFACE,
  EXPECTED,
  LAN_INTERFACE,
  NODES,
  unmetExpectations,
} from "./scenario.ts";
import type { DemoRow } from "./table.ts";

function row(
  service: string,
  address: string,
  nodes: string[],
  extra: Partial<DemoRow> = {},
): DemoRow {
  return {
    service,
    address,
    pool: "default",
    nodes,
    interfaceName: nodes.length === 0 ? "" : LAN_INTERFACE,
    state: nodes.length === 0 ? "allocated" : "announced",
    reason: "",
    routerNextHops: [],
    ...extra,
  };
}

/** The virtual address on `nodes`, the router forwarding it to `hops` (default: those nodes). */
const virtualRow = (nodes: string[], hops: string[] = nodes) =>
  row("virtual", "198.51.100.10", nodes, {
    pool: "virtual",
    interfaceName: DUMMY_INTERFACE,
    routerNextHops: hops,
  });
/** The client behind the router got an answer from the virtual address. */
const answered = new Set(["198.51.100.10"]);

const settled: DemoRow[] = [
  row("web-ipv4", "192.0.2.242", ["node-c"]),
  row("web-ipv6", "2001:db8:1::241", ["node-a"]),
  row("web-dual", "192.0.2.241", ["node-c"]),
  row("web-dual", "2001:db8:1::240", ["node-b"]),
  row("shared-http", "192.0.2.240", ["node-b"]),
  row("shared-https", "192.0.2.240", ["node-b"]),
  row("specific", "192.0.2.250", ["node-a"]),
  virtualRow([...NODES]),
  row("web-netbox", "192.0.2.200", ["node-b"], { pool: "netbox" }),
  row("bad-annotation", "", [], {
    pool: "",
    state: "failed",
    reason: 'purelb.io/addresses: "192.0.2.300" is not an IP address',
  }),
];

function replace(rows: readonly DemoRow[], index: number, with_: DemoRow): DemoRow[] {
  return rows.map((r, i) => i === index ? with_ : r);
}

Deno.test("unmetExpectations: the settled scene meets every expectation", () => {
  assert.deepEqual(unmetExpectations(settled, NODES.length, { answered }), []);
  // Without pings, reachability is not checked (a table read back cannot show it).
  assert.deepEqual(unmetExpectations(settled, NODES.length), []);
});

Deno.test("unmetExpectations names each way a service can be off", () => {
  const cases: [DemoRow[], RegExp][] = [
    [settled.filter((r) => r.service !== "web-ipv6"), /^web-ipv6: not in the table$/],
    [
      replace(settled, 0, row("web-ipv4", "192.0.2.242", [])),
      /^web-ipv4: 192\.0\.2\.242: allocated$/,
    ],
    [
      replace(settled, 0, row("web-ipv4", "192.0.2.242", ["node-a", "node-c"])),
      /expected one node/,
    ],
    [replace(settled, 1, row("web-ipv6", "192.0.2.243", ["node-a"])), /is not IPv6/],
    [settled.filter((_, i) => i !== 3), /^web-dual: 1 address\(es\), expected 2$/],
    [
      replace(settled, 5, row("shared-https", "192.0.2.243", ["node-b"])),
      /^shared-https: .*differs from shared-http/,
    ],
    [
      replace(settled, 6, row("specific", "192.0.2.249", ["node-a"])),
      /192\.0\.2\.249, expected 192\.0\.2\.250/,
    ],
    [replace(settled, 7, virtualRow(["node-a", "node-b"])), /^virtual: .*expected 3 nodes/],
    [
      replace(settled, 7, virtualRow([...NODES], ["node-a", "node-c"])),
      /^virtual: 198\.51\.100\.10: the router's next hops are \[node-a,node-c\], expected \[node-a,node-b,node-c\]$/,
    ],
    [
      replace(settled, 7, virtualRow([...NODES], [])),
      /^virtual: 198\.51\.100\.10: the router's next hops are \[\], expected/,
    ],
    [
      replace(settled, 7, { ...virtualRow([...NODES]), pool: "default" }),
      /pool default, expected virtual/,
    ],
    [
      replace(settled, 8, row("web-netbox", "192.0.2.200", ["node-b"])),
      /^web-netbox: pool default, expected netbox$/,
    ],
    [
      replace(settled, 8, row("web-netbox", "192.0.2.240", ["node-b"], { pool: "netbox" })),
      /192\.0\.2\.240, expected 192\.0\.2\.200/,
    ],
    [
      replace(settled, 9, row("bad-annotation", "", [], { state: "pending" })),
      /state pending, expected failed/,
    ],
    [
      replace(settled, 9, row("bad-annotation", "", [], { state: "failed", reason: "other" })),
      /does not match/,
    ],
  ];
  for (const [rows, expected] of cases) {
    const unmet = unmetExpectations(rows, NODES.length, { answered });
    assert.equal(unmet.length, 1, `${expected}: ${unmet.join("; ")}`);
    assert.match(unmet[0] ?? "", expected);
  }
});

Deno.test("unmetExpectations: a virtual address the client behind the router cannot reach", () => {
  assert.deepEqual(unmetExpectations(settled, NODES.length, { answered: new Set() }), [
    "virtual: 198.51.100.10: no answer to a ping from the client behind the router",
  ]);
  // Pings are only asked of virtual addresses: a local one missing from the set is fine.
  assert.deepEqual(unmetExpectations(settled, NODES.length, { answered }), []);
});

Deno.test("unmetExpectations: other expectations can be given", () => {
  const only = new Map([...EXPECTED].filter(([name]) => name === "web-ipv4"));
  assert.deepEqual(unmetExpectations(settled.slice(0, 1), NODES.length, { expected: only }), []);
  assert.deepEqual(unmetExpectations([], NODES.length, { expected: only }), [
    "web-ipv4: not in the table",
  ]);
});

Deno.test("unmetExpectations with fewer live nodes: virtual addresses on the rest", () => {
  const after = replace(settled, 7, virtualRow(["node-a", "node-b"]));
  assert.deepEqual(unmetExpectations(after, NODES.length - 1, { answered }), []);
  // The router still forwarding to the stopped node is not settled yet.
  const stale = replace(settled, 7, virtualRow(["node-a", "node-b"], [...NODES]));
  assert.match(
    unmetExpectations(stale, NODES.length - 1, { answered }).join("\n"),
    /next hops are \[node-a,node-b,node-c\], expected \[node-a,node-b\]/,
  );
});

Deno.test("every sample Service of services.yaml has an expectation, and the reverse", async () => {
  const url = new URL("./services.yaml", import.meta.url);
  const objects = parseManifests(await Deno.readTextFile(url), "services.yaml");
  const names = objects.filter((o) => o.kind === "Service").map((o) => o.metadata.name);
  assert.deepEqual(names, [...EXPECTED.keys()]);
});

Deno.test("describeExpectation says what each sample must reach", () => {
  const text = [...EXPECTED.values()].map(describeExpectation);
  assert.match(text[2] ?? "", /IPv4 address on eth0 of one node and an IPv6 address/);
  assert.match(text[4] ?? "", /the same as shared-http/);
  assert.match(text[5] ?? "", /^192\.0\.2\.250 on eth0/);
  assert.match(
    text[6] ?? "",
    /on kube-lb0 of every node from virtual; the router has each of those nodes as a next hop for it, and the client behind the router gets answers$/,
  );
  assert.match(text[7] ?? "", /^192\.0\.2\.200 on eth0 of one node from netbox$/);
  assert.match(text[8] ?? "", /^no address; AllocationFailed/);
});
