/**
 * PureLB for Deno: the library surface shared by the allocator and the node agent.
 *
 * @module
 */

export * from "./ipam/mod.ts";
