/**
 * BGP through BIRD 2 (SPEC 4): the `BGPConfiguration` reader, the BIRD config renderer, the
 * `birdc` output parsers, the daemon driver, the node status and the agent's BGP controller.
 *
 * @module
 */

export * from "./model.ts";
export * from "./configuration.ts";
export * from "./bird_config.ts";
export * from "./birdc.ts";
export * from "./daemon.ts";
export * from "./status.ts";
export * from "./controller.ts";
export * from "./metrics.ts";
