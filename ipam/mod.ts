/**
 * IPAM core: address ranges, local pools with sharing, ServiceGroup parsing. Pure: no I/O and
 * nothing of Kubernetes.
 *
 * @example
 * ```ts
 * import { LocalPool, parseServiceGroupSpec } from "./mod.ts";
 *
 * const parsed = parseServiceGroupSpec({
 *   local: { v4pools: [{ pool: "192.0.2.10-192.0.2.19", subnet: "192.0.2.0/24" }] },
 * });
 * if (parsed.kind === "valid" && parsed.source.kind === "local") {
 *   const pool = new LocalPool("default", parsed.source.pool);
 *   pool.assign("ns/web", { family: "IPv4", sharingKey: "", ports: [] }); // 192.0.2.10
 * }
 * ```
 *
 * @module
 */
export {
  addressBits,
  AddressParseError,
  canonicalAddress,
  formatAddress,
  IP_FAMILIES,
  type IpAddress,
  type IpFamily,
  maxAddressValue,
  parseAddress,
  tryParseAddress,
} from "./address.ts";
export { AddressRange, Cidr, parseCidr, parseRange, RangeParseError } from "./range.ts";
export {
  type AddressHolder,
  checkSharing,
  findPortConflict,
  formatPort,
  type Protocol,
  type ServicePort,
  type SharingRequest,
  type SharingVerdict,
} from "./sharing.ts";
export {
  type Aggregation,
  type Allocation,
  type AssignFailure,
  type AssignRequest,
  type AssignResult,
  createPoolRange,
  type FamilyStats,
  formatAggregation,
  LocalPool,
  type LocalPoolSpec,
  PoolConfigurationError,
  type PoolRange,
  type ReleasedAddress,
} from "./pool.ts";
export {
  AggregationParseError,
  type DeclaredLocalPoolSpec,
  type DeclaredPoolRange,
  type FieldError,
  findGroupOverlaps,
  type GroupOverlap,
  type GroupRanges,
  type GroupTenancy,
  type GroupTenancyResult,
  MAX_GROUP_NAMESPACES,
  parseAggregation,
  parseServiceGroupSpec,
  parseServiceGroupTenancy,
  type ServiceGroupParseResult,
  type ServiceGroupSource,
} from "./servicegroup.ts";
