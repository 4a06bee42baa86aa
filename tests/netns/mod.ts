/**
 * The network-namespace testbed: a LAN of nodes and a client, command helpers, and tcpdump
 * capture. Test code only; needs root.
 *
 * @example
 * ```ts
 * import { createLan, exec, startCapture } from "./mod.ts";
 *
 * const lan = await createLan({
 *   nodes: ["node-a", "node-b", "node-c"],
 *   ipv4Subnet: "192.0.2.0/24",
 *   ipv6Subnet: "2001:db8:1::/64",
 * });
 * try {
 *   const capture = await startCapture(lan.client.netns, "eth0", "arp");
 *   await exec(lan.node("node-a").netns, "arping", "-U", "-c", "1", "-I", "eth0", "192.0.2.11");
 *   await capture.stop();
 * } finally {
 *   await lan.destroy();
 * }
 * ```
 *
 * @module
 */
export {
  type CommandResult,
  exec,
  runChecked,
  runCommand,
  testbedIpPath,
  tryExec,
} from "./exec.ts";
export {
  createLan,
  type Lan,
  type LanHost,
  type LanOptions,
  LanOptionsError,
  removeOrphanedNamespaces,
  trackProcess,
} from "./lan.ts";
export { type Capture, type CapturedPacket, parseTcpdump, startCapture } from "./capture.ts";
