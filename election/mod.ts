/**
 * Election without a coordinator: per-node Lease records say who is live and which subnets
 * it can announce in; a SHA-256 ranking of `nodeName#address` picks one announcer that every
 * node agrees on. Pure: no I/O and nothing of Kubernetes.
 *
 * @example
 * ```ts
 * import { candidatesFor, liveNodes, winner } from "./mod.ts";
 *
 * const now = Date.now();
 * const records = [
 *   { nodeName: "node-a", renewTimeMs: now, leaseDurationMs: 15_000, subnets: ["192.0.2.0/24"] },
 *   { nodeName: "node-b", renewTimeMs: now, leaseDurationMs: 15_000, subnets: ["192.0.2.0/24"] },
 * ];
 * winner(candidatesFor("192.0.2.10", liveNodes(records, now)), "192.0.2.10"); // "node-b"
 * ```
 *
 * @module
 */
export {
  type AnnouncedAddress,
  formatAnnouncingAnnotation,
  parseAnnouncingAnnotation,
} from "./announcing.ts";
export { electionHash, electionInput, rankCandidates, winner } from "./hash.ts";
export {
  candidatesFor,
  formatSubnetsAnnotation,
  liveNodes,
  type NodeLeaseRecord,
  type ParsedSubnets,
  parseSubnetsAnnotation,
  shouldSelfFence,
  SubnetsAnnotationError,
} from "./membership.ts";
