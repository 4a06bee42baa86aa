import assert from "node:assert/strict";
import {
  buildRows,
  COLUMNS,
  type Holding,
  parseTables,
  renderTable,
  type Row,
  rowFromParsed,
  type ServiceView,
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
