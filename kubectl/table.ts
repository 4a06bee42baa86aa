/**
 * The status table (pure), shared by `kubectl purelb status` and the demo: one row per service
 * address with its pool, the node(s) and interface that carry it, and the state; a service
 * without an address gets one row with the reason. Rendered as aligned text columns and parsed
 * back (the demo test reads the table the demo prints).
 *
 * @module
 */

/**
 * What the table knows about one Service: its addresses (status ingress, in order), the
 * ServiceGroup they came from, and the message of its latest `AllocationFailed` event.
 */
export interface ServiceView {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly pool?: string | undefined;
  readonly failure?: string | undefined;
}

/** One address carried by one node on one interface (as announced, or as seen with `ip`). */
export interface Holding {
  readonly node: string;
  readonly interfaceName: string;
  readonly address: string;
}

/**
 * State of a row: `announced` (some node carries the address), `allocated` (an address, no
 * node carries it yet), `pending` (no address, no failure reported yet), `failed` (no
 * address; the reason says why).
 */
export type RowState = "announced" | "allocated" | "pending" | "failed";

/**
 * One line of the table.
 *
 * @example
 * ```ts
 * const row: Row = {
 *   service: "web", address: "192.0.2.240", pool: "default", nodes: ["node-b"],
 *   interfaceName: "eth0", state: "announced", reason: "",
 * };
 * ```
 */
export interface Row {
  readonly service: string;
  /** Empty when the service has no address. */
  readonly address: string;
  /** Empty when unknown. */
  readonly pool: string;
  /** Nodes carrying the address, sorted. */
  readonly nodes: readonly string[];
  /** Interface(s) carrying it, comma separated; empty when none. */
  readonly interfaceName: string;
  readonly state: RowState;
  /** Why there is no address (`failed`); empty otherwise. */
  readonly reason: string;
}

/** Column titles, in order. */
export const COLUMNS = [
  "SERVICE",
  "ADDRESS",
  "POOL",
  "NODE",
  "INTERFACE",
  "STATE",
  "REASON",
] as const;

/** A column title. */
export type Column = typeof COLUMNS[number];

/**
 * The rows for `services` (in their order) given what the nodes carry.
 *
 * @example
 * ```ts
 * const rows = buildRows(
 *   [{ name: "web", addresses: ["192.0.2.240"], pool: "default" }],
 *   [{ node: "node-b", interfaceName: "eth0", address: "192.0.2.240" }],
 * );
 * rows[0]?.state; // "announced"
 * ```
 */
export function buildRows(
  services: readonly ServiceView[],
  holdings: readonly Holding[],
): Row[] {
  const rows: Row[] = [];
  for (const service of services) {
    const pool = service.pool ?? "";
    if (service.addresses.length === 0) {
      const failed = service.failure !== undefined && service.failure !== "";
      rows.push({
        service: service.name,
        address: "",
        pool,
        nodes: [],
        interfaceName: "",
        state: failed ? "failed" : "pending",
        reason: failed ? service.failure ?? "" : "",
      });
      continue;
    }
    for (const address of service.addresses) {
      const held = holdings.filter((h) => h.address === address);
      const nodes = [...new Set(held.map((h) => h.node))].sort();
      const interfaces = [...new Set(held.map((h) => h.interfaceName))].sort();
      rows.push({
        service: service.name,
        address,
        pool,
        nodes,
        interfaceName: interfaces.join(","),
        state: nodes.length > 0 ? "announced" : "allocated",
        reason: "",
      });
    }
  }
  return rows;
}

/** The text of each column of `row` (empty for none). */
export function rowCells(row: Row): Record<Column, string> {
  return {
    SERVICE: row.service,
    ADDRESS: row.address,
    POOL: row.pool,
    NODE: row.nodes.join(","),
    INTERFACE: row.interfaceName,
    STATE: row.state,
    REASON: row.reason,
  };
}

/** Cell text: never empty (`-`), never two spaces in a row, never a line break. */
function cellText(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat === "" ? "-" : flat;
}

/**
 * The table as aligned columns (two spaces apart), header first; no trailing spaces.
 *
 * @example
 * ```ts
 * declare const rows: readonly Row[];
 * console.log(renderTable(rows));
 * // SERVICE  ADDRESS      POOL     NODE    INTERFACE  STATE      REASON
 * // web      192.0.2.240  default  node-b  eth0       announced  -
 * ```
 */
export function renderTable(rows: readonly Row[]): string {
  const table: string[][] = [
    [...COLUMNS],
    ...rows.map((row) => {
      const byColumn = rowCells(row);
      return COLUMNS.map((column) => cellText(byColumn[column]));
    }),
  ];
  const widths = COLUMNS.map((_, i) => Math.max(...table.map((line) => (line[i] ?? "").length)));
  return table.map((line) =>
    line.map((cell, i) => i === line.length - 1 ? cell : cell.padEnd((widths[i] ?? 0) + 2))
      .join("").trimEnd()
  ).join("\n");
}

/** A row as read back from text: every column's cell (`-` becomes empty). */
export type ParsedRow = Readonly<Record<Column, string>>;

/**
 * Every table with exactly `columns` in `text` (aligned columns as {@link renderTable} and
 * `alignedTable` write them, possibly among other lines): a header line and the non-empty
 * lines after it, each cell cut at the header's column starts (`-` becomes empty). A title may
 * hold single spaces (`ROUTER NEXT HOPS`); cells never hold two in a row.
 *
 * @example
 * ```ts
 * declare const stdout: string;
 * const [first] = parseAlignedTables(stdout, ["NAME", "STATE"] as const);
 * first?.[0]?.STATE; // "announced"
 * ```
 */
export function parseAlignedTables<C extends string>(
  text: string,
  columns: readonly C[],
): Readonly<Record<C, string>>[][] {
  const escaped = columns.map((column) => column.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const header = new RegExp(`^${escaped.join("  +")}$`);
  const lines = text.split("\n").map((line) => line.trimEnd());
  const tables: Readonly<Record<C, string>>[][] = [];
  for (let i = 0; i < lines.length; i++) {
    const title = lines[i] ?? "";
    if (!header.test(title)) continue;
    const starts: number[] = [];
    for (const column of columns) starts.push(title.indexOf(column, (starts.at(-1) ?? -1) + 1));
    const table: Readonly<Record<C, string>>[] = [];
    for (i++; i < lines.length && (lines[i] ?? "") !== ""; i++) {
      const line = lines[i] ?? "";
      const row = {} as Record<C, string>;
      for (const [c, column] of columns.entries()) {
        const cell = line.slice(starts[c] ?? 0, starts[c + 1]).trim();
        row[column] = cell === "-" ? "" : cell;
      }
      table.push(row);
    }
    tables.push(table);
  }
  return tables;
}

/**
 * Every table in `text` (output of {@link renderTable}, possibly among other lines): a header
 * line and the non-empty lines after it.
 *
 * @example
 * ```ts
 * declare const stdout: string;
 * const [first] = parseTables(stdout);
 * first?.[0]?.SERVICE; // "web"
 * ```
 */
export function parseTables(text: string): ParsedRow[][] {
  return parseAlignedTables(text, COLUMNS);
}

/**
 * A parsed row as a {@link Row} again (states other than the four known ones are refused).
 *
 * @example
 * ```ts
 * declare const stdout: string;
 * const rows = parseTables(stdout)[0]?.map(rowFromParsed) ?? [];
 * ```
 */
export function rowFromParsed(parsed: ParsedRow): Row {
  const state = parsed.STATE;
  if (state !== "announced" && state !== "allocated" && state !== "pending" && state !== "failed") {
    throw new RangeError(`unknown state "${state}" for service ${parsed.SERVICE}`);
  }
  return {
    service: parsed.SERVICE,
    address: parsed.ADDRESS,
    pool: parsed.POOL,
    nodes: parsed.NODE === "" ? [] : parsed.NODE.split(","),
    interfaceName: parsed.INTERFACE,
    state,
    reason: parsed.REASON,
  };
}
