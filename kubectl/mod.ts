/**
 * `kubectl purelb`: the pure parts of the plugin's commands (status rows, pools, election
 * explanations, ServiceGroup validation, BGP sessions) and the reads they need.
 *
 * @example
 * ```ts
 * import { explainElection, renderElection } from "./mod.ts";
 * import type { V1Lease } from "@kubernetes/client-node";
 *
 * declare const leases: V1Lease[];
 * console.log(renderElection(explainElection("192.0.2.10", leases, undefined, Date.now()), "table"));
 * ```
 *
 * @module
 */

export { describeListError, PluginError, PluginReader } from "./api.ts";
export type {
  ApiGet,
  BgpConfigurationItem,
  BgpNodeStatusItem,
  CrdGroup,
  LBNodeAgentItem,
  ListTarget,
  ServiceGroupItem,
} from "./api.ts";
export {
  age,
  type BgpConfigurationProblem,
  type BgpReport,
  type BgpRow,
  bgpRows,
  NO_BGP_NODES,
  renderBgp,
  STALE_HEARTBEATS,
} from "./bgp.ts";
export {
  AddressArgumentError,
  type ElectionNode,
  type ElectionReport,
  explainElection,
  type NodeVerdict,
  renderElection,
} from "./election.ts";
export { type PoolRow, poolRows, renderPools } from "./pools.ts";
export {
  type AddressKind,
  alignedTable,
  ANNOUNCING_ANNOTATIONS,
  nodeRecords,
  type OutputFormat,
  parseAnnouncing,
  renderStatus,
  type StatusInput,
  type StatusOptions,
  type StatusRow,
  statusRows,
} from "./status.ts";
export { buildRows, type Holding, renderTable, type Row, type ServiceView } from "./table.ts";
export {
  type GroupVerdict,
  hasErrors,
  renderValidation,
  validateServiceGroups,
  type ValidationReport,
} from "./validate.ts";
export { pluginPermissions } from "./permissions.ts";
