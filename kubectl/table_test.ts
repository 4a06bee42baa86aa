import assert from "node:assert/strict";
import { alignedTable } from "./status.ts";
import { parseAlignedTables } from "./table.ts";

const COLUMNS = ["NAME", "NEXT HOPS", "STATE (NOW)"] as const;

Deno.test("parseAlignedTables: titles with single spaces, '-' cells, several tables", () => {
  const first = alignedTable(COLUMNS, [["a", "node-a,node-b", "up"], ["bb", "", "down"]]);
  const second = alignedTable(COLUMNS, [["c", "node-c", "up"]]);
  const tables = parseAlignedTables(`intro\n${first}\n\nbetween\n${second}\n`, COLUMNS);
  assert.deepEqual(tables, [
    [
      { NAME: "a", "NEXT HOPS": "node-a,node-b", "STATE (NOW)": "up" },
      { NAME: "bb", "NEXT HOPS": "", "STATE (NOW)": "down" },
    ],
    [{ NAME: "c", "NEXT HOPS": "node-c", "STATE (NOW)": "up" }],
  ]);
});

Deno.test("parseAlignedTables: only a header of exactly these columns, two spaces apart", () => {
  assert.deepEqual(parseAlignedTables("NAME NEXT HOPS STATE (NOW)\na b c\n", COLUMNS), []);
  assert.deepEqual(
    parseAlignedTables(alignedTable(["NAME", "NEXT HOPS"], [["a", "b"]]), COLUMNS),
    [],
  );
  // the regular-expression characters of a title are taken as they are
  assert.deepEqual(parseAlignedTables("NAME  NEXT HOPS  STATE xNOWx\n", COLUMNS), []);
});
