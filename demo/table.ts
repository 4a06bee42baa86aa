/**
 * The demo's table is the plugin's status table (`kubectl/table.ts`): one piece of code.
 *
 * @module
 */

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
