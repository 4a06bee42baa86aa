/**
 * The demo's table (pure): the plugin's status table (`kubectl/table.ts`, one piece of code)
 * with one more column, `ROUTER NEXT HOPS`: for a virtual address, the nodes the upstream
 * router forwards it to (its kernel's next hops, as node names); blank (`-`) for a local
 * address, which the router does not route. Rendered as aligned text and parsed back, so the
 * demo test reads what the demo printed.
 *
 * @module
 */

import {
  COLUMNS,
  parseAlignedTables,
  type Row,
  rowCells,
  rowFromParsed,
} from "../kubectl/table.ts";
import { alignedTable } from "../kubectl/status.ts";

export {
  buildRows,
  type Column,
  COLUMNS,
  type Holding,
  type ParsedRow,
  parseTables,
  renderTable,
  type Row,
  rowFromParsed,
  type RowState,
  type ServiceView,
} from "../kubectl/table.ts";

/**
 * One line of the demo's table: a status {@link Row} and the router's next hops for its
 * address.
 *
 * @example
 * ```ts
 * const row: DemoRow = {
 *   service: "virtual", address: "198.51.100.10", pool: "virtual",
 *   nodes: ["node-a", "node-b"], interfaceName: "kube-lb0", state: "announced", reason: "",
 *   routerNextHops: ["node-a", "node-b"],
 * };
 * ```
 */
export interface DemoRow extends Row {
  /** The nodes behind the router's next hops for the address, sorted; empty for none. */
  readonly routerNextHops: readonly string[];
}

/** The title of the demo's extra column. */
export const ROUTER_COLUMN = "ROUTER NEXT HOPS";

/** The demo's column titles, in order: the status columns with the router's after INTERFACE. */
export const DEMO_COLUMNS = [
  ...COLUMNS.slice(0, COLUMNS.indexOf("INTERFACE") + 1),
  ROUTER_COLUMN,
  ...COLUMNS.slice(COLUMNS.indexOf("INTERFACE") + 1),
] as const;

/** A demo column title. */
export type DemoColumn = typeof DEMO_COLUMNS[number];

/**
 * A status row with no next hops (for a local address, or before the router is asked).
 *
 * @example
 * ```ts
 * import type { Row } from "./table.ts";
 * declare const row: Row;
 * withNextHops(row, []).routerNextHops; // []
 * ```
 */
export function withNextHops(row: Row, routerNextHops: readonly string[]): DemoRow {
  return {
    service: row.service,
    address: row.address,
    pool: row.pool,
    nodes: row.nodes,
    interfaceName: row.interfaceName,
    state: row.state,
    reason: row.reason,
    routerNextHops: [...routerNextHops].sort(),
  };
}

function cells(row: DemoRow): Record<DemoColumn, string> {
  return { ...rowCells(row), [ROUTER_COLUMN]: row.routerNextHops.join(",") };
}

/**
 * The demo's table as aligned columns (two spaces apart), header first, `-` for an empty
 * cell; no trailing spaces.
 *
 * @example
 * ```ts
 * declare const rows: readonly DemoRow[];
 * console.log(renderDemoTable(rows));
 * // SERVICE  ADDRESS        POOL     NODE           INTERFACE  ROUTER NEXT HOPS  STATE      REASON
 * // virtual  198.51.100.10  virtual  node-a,node-b  kube-lb0   node-a,node-b     announced  -
 * ```
 */
export function renderDemoTable(rows: readonly DemoRow[]): string {
  return alignedTable(
    DEMO_COLUMNS,
    rows.map((row) => {
      const byColumn = cells(row);
      return DEMO_COLUMNS.map((column) => byColumn[column]);
    }),
  );
}

/**
 * Every demo table in `text` (output of {@link renderDemoTable}, among other lines), read
 * back as rows; states other than the four known ones are refused.
 *
 * @example
 * ```ts
 * declare const stdout: string;
 * const [settled] = parseDemoTables(stdout);
 * settled?.find((r) => r.service === "virtual")?.routerNextHops; // ["node-a", "node-b", "node-c"]
 * ```
 */
export function parseDemoTables(text: string): DemoRow[][] {
  return parseAlignedTables(text, DEMO_COLUMNS).map((table) =>
    table.map((parsed) => {
      const hops = parsed[ROUTER_COLUMN];
      return withNextHops(rowFromParsed(parsed), hops === "" ? [] : hops.split(","));
    })
  );
}
