import assert from "node:assert/strict";
import {
  buildRows,
  COLUMNS,
  DEMO_COLUMNS,
  type DemoRow,
  type Holding,
  parseDemoTables,
  parseTables,
  renderDemoTable,
  renderTable,
  ROUTER_COLUMN,
  type Row,
  rowFromParsed,
  type ServiceView,
  withNextHops,
} from "./table.ts";

const services: ServiceView[] = [
  { name: "web", addresses: ["192.0.2.240"], pool: "default" },
  { name: "dual", addresses: ["192.0.2.241", "2001:db8:1::240"], pool: "default" },
  { name: "virtual", addresses: ["198.51.100.10"], pool: "virtual" },
  { name: "waiting", addresses: ["192.0.2.242"], pool: "default" },
  { name: "new", addresses: [] },
  { name: "bad", addresses: [], failure: 'purelb.io/addresses: "x"  is not an IP address' },
];
const holdings: Holding[] = [
  { node: "node-b", interfaceName: "eth0", address: "192.0.2.240" },
  { node: "node-a", interfaceName: "eth0", address: "192.0.2.241" },
  { node: "node-c", interfaceName: "eth0", address: "2001:db8:1::240" },
  { node: "node-c", interfaceName: "kube-lb0", address: "198.51.100.10" },
  { node: "node-a", interfaceName: "kube-lb0", address: "198.51.100.10" },
  { node: "node-a", interfaceName: "eth0", address: "192.0.2.11" },
];

Deno.test("buildRows: one row per address, holders sorted, states and reasons", () => {
  const rows = buildRows(services, holdings);
  assert.deepEqual(rows.map((r) => [r.service, r.address, r.nodes.join(","), r.state]), [
    ["web", "192.0.2.240", "node-b", "announced"],
    ["dual", "192.0.2.241", "node-a", "announced"],
    ["dual", "2001:db8:1::240", "node-c", "announced"],
    ["virtual", "198.51.100.10", "node-a,node-c", "announced"],
    ["waiting", "192.0.2.242", "", "allocated"],
    ["new", "", "", "pending"],
    ["bad", "", "", "failed"],
  ]);
  assert.equal(rows[3]?.interfaceName, "kube-lb0");
  assert.equal(rows[6]?.reason, 'purelb.io/addresses: "x"  is not an IP address');
  assert.equal(rows[0]?.reason, "");
});

Deno.test("buildRows: an address on two interfaces lists both", () => {
  const [row] = buildRows([{ name: "x", addresses: ["192.0.2.9"] }], [
    { node: "node-a", interfaceName: "eth0", address: "192.0.2.9" },
    { node: "node-b", interfaceName: "kube-lb0", address: "192.0.2.9" },
  ]);
  assert.equal(row?.interfaceName, "eth0,kube-lb0");
  assert.deepEqual(row?.nodes, ["node-a", "node-b"]);
});

Deno.test("renderTable: aligned columns, '-' for empty cells, no trailing spaces", () => {
  const text = renderTable(buildRows(services, holdings));
  const lines = text.split("\n");
  assert.match(lines[0] ?? "", /^SERVICE +ADDRESS +POOL +NODE +INTERFACE +STATE +REASON$/);
  assert.equal(lines.length, 8);
  for (const line of lines) assert.equal(line, line.trimEnd());
  const stateColumn = (lines[0] ?? "").indexOf("STATE");
  for (const line of lines.slice(1)) {
    assert.match(line.slice(stateColumn), /^(announced|allocated|pending|failed)/);
  }
  assert.match(lines[6] ?? "", /^new +- +- +- +- +pending +-$/);
  // whitespace inside a cell is folded, so columns stay parseable
  assert.match(lines[7] ?? "", /failed +purelb\.io\/addresses: "x" is not an IP address$/);
});

Deno.test("parseTables reads back what renderTable wrote, among other lines", () => {
  const rows = buildRows(services, holdings);
  const text = `title\n\n${renderTable(rows)}\n\nhand-over: ...\n\n${
    renderTable(rows.slice(0, 2))
  }\n`;
  const tables = parseTables(text);
  assert.equal(tables.length, 2);
  const back: Row[] = (tables[0] ?? []).map(rowFromParsed);
  assert.deepEqual(
    back.map((r) => ({ ...r, reason: r.reason.replace(/\s+/g, " ") })),
    rows.map((r) => ({ ...r, reason: r.reason.replace(/\s+/g, " ") })),
  );
  assert.equal(tables[1]?.length, 2);
  assert.deepEqual(Object.keys(tables[0]?.[0] ?? {}), [...COLUMNS]);
});

Deno.test("parseTables: no header, no table; rowFromParsed refuses an unknown state", () => {
  assert.deepEqual(parseTables("SERVICE ADDRESS\nweb 192.0.2.1\n"), []);
  const [table] = parseTables(renderTable(buildRows([{ name: "a", addresses: [] }], [])));
  const parsed = table?.[0];
  assert.ok(parsed);
  assert.throws(() => rowFromParsed({ ...parsed, STATE: "odd" }), /unknown state "odd"/);
});

/** The rows of `services` with the router's next hops: every holder of the virtual address. */
function demoRows(hops: (row: Row) => readonly string[]): DemoRow[] {
  return buildRows(services, holdings).map((row) => withNextHops(row, hops(row)));
}
const virtualHops = (row: Row) => row.pool === "virtual" ? row.nodes : [];

Deno.test("DEMO_COLUMNS: the status columns with ROUTER NEXT HOPS after INTERFACE", () => {
  assert.deepEqual(DEMO_COLUMNS, [
    "SERVICE",
    "ADDRESS",
    "POOL",
    "NODE",
    "INTERFACE",
    "ROUTER NEXT HOPS",
    "STATE",
    "REASON",
  ]);
  assert.equal(ROUTER_COLUMN, "ROUTER NEXT HOPS");
});

Deno.test("renderDemoTable: next hops of a virtual address, '-' for local ones", () => {
  const lines = renderDemoTable(demoRows(virtualHops)).split("\n");
  assert.match(
    lines[0] ?? "",
    /^SERVICE +ADDRESS +POOL +NODE +INTERFACE +ROUTER NEXT HOPS +STATE +REASON$/,
  );
  assert.equal(lines.length, 8);
  for (const line of lines) assert.equal(line, line.trimEnd());
  const at = (lines[0] ?? "").indexOf(ROUTER_COLUMN);
  const hopsCell = (line: string) => line.slice(at).split(/ {2,}/)[0];
  assert.equal(hopsCell(lines[4] ?? ""), "node-a,node-c", "virtual: the router's next hops");
  for (const i of [1, 2, 3, 5, 6, 7]) assert.equal(hopsCell(lines[i] ?? ""), "-", `line ${i}`);
  // the status columns are where the plugin's table has them
  const plain = renderTable(buildRows(services, holdings)).split("\n")[0] ?? "";
  assert.equal((lines[0] ?? "").indexOf("INTERFACE"), plain.indexOf("INTERFACE"));
});

Deno.test("renderDemoTable: a virtual address the router does not route yet shows '-'", () => {
  const lines = renderDemoTable(demoRows(() => [])).split("\n");
  assert.match(
    lines[4] ?? "",
    /^virtual +198\.51\.100\.10 +virtual +node-a,node-c +kube-lb0 +- +announced +-$/,
  );
});

Deno.test("parseDemoTables reads back what renderDemoTable wrote, among other lines", () => {
  const rows = demoRows(virtualHops);
  const partial = demoRows((row) => row.pool === "virtual" ? ["node-c"] : []);
  const text = `title\n\n${renderDemoTable(rows)}\n\nhand-over: ...\n\n${
    renderDemoTable(partial)
  }\n`;
  const tables = parseDemoTables(text);
  assert.equal(tables.length, 2);
  const fold = (r: DemoRow) => ({ ...r, reason: r.reason.replace(/\s+/g, " ") });
  assert.deepEqual(tables[0]?.map(fold), rows.map(fold));
  assert.deepEqual(tables[1]?.map((r) => r.routerNextHops), partial.map((r) => r.routerNextHops));
  assert.deepEqual(tables[1]?.[3]?.routerNextHops, ["node-c"]);
  // The plugin's parser does not take the demo's table for its own, nor the reverse.
  assert.deepEqual(parseTables(text), []);
  assert.deepEqual(parseDemoTables(renderTable(buildRows(services, holdings))), []);
});

Deno.test("parseDemoTables refuses an unknown state; withNextHops sorts and keeps only Row fields", () => {
  const text = renderDemoTable(demoRows(virtualHops)).replace("announced", "odd      ");
  assert.throws(() => parseDemoTables(text), /unknown state "odd"/);
  const [row] = buildRows(services, holdings);
  assert.ok(row);
  const extra = { ...row, kind: "local", elected: "node-b" };
  const demo = withNextHops(extra, ["node-c", "node-a"]);
  assert.deepEqual(demo.routerNextHops, ["node-a", "node-c"]);
  assert.deepEqual(Object.keys(demo), [...Object.keys(row), "routerNextHops"]);
});
