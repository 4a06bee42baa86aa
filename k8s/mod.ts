/**
 * Everything that talks to the Kubernetes API: client configuration, the Deno-native transport,
 * self-healing informers, the work queue, leader election, events, patches, and the types of
 * our custom resources.
 *
 * @module
 */

export * from "./backoff.ts";
export * from "./cache.ts";
export * from "./config.ts";
export * from "./errors.ts";
export * from "./events.ts";
export * from "./informer.ts";
export * from "./leaderelection.ts";
export * from "./observability.ts";
export * from "./transport.ts";
export * from "./types.ts";
export * from "./workqueue.ts";
export * from "./slim.ts";
export * from "./node_lease.ts";
export * from "./selector.ts";
export * from "./named_objects.ts";
