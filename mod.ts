/**
 * PureLB for Deno: the library surface shared by the allocator and the node agent.
 *
 * @module
 */

export * from "./ipam/mod.ts";
export * from "./netbox/mod.ts";
export { winner } from "./election/mod.ts";
export {
  candidatesFor,
  formatSubnetsAnnotation,
  liveNodes,
  type NodeLeaseRecord,
  parseSubnetsAnnotation,
  rankCandidates,
  shouldSelfFence,
  SubnetsAnnotationError,
} from "./election/mod.ts";
export {
  type AnnounceInput,
  type AnnouncePlan,
  decideAnnouncements,
  healthyEndpointNodes,
} from "./agent/announce.ts";
