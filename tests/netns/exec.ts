/**
 * Running commands for the testbed: `ip` in the root namespace (only to manage namespaces
 * and their links) and any program inside a namespace (`ip netns exec NS ...`), each with a
 * deadline.
 *
 * @module
 */
import {
  IP_PATHS,
  type ProcessOutput,
  runChecked as runProgramChecked,
  runProcess,
} from "../../netlink/mod.ts";

/** What a finished command printed. */
export type CommandResult = ProcessOutput;

const TESTBED_TIMEOUT_MS = 30_000;

let resolvedIpPath: string | undefined;

/**
 * Absolute path of `ip` (first of netlink's `IP_PATHS` that exists), resolved once and
 * synchronously so the exit-time clean-up can use it. The testbed runs nothing else in the
 * root namespace.
 *
 * @example
 * ```ts
 * testbedIpPath(); // "/usr/sbin/ip"
 * ```
 */
export function testbedIpPath(): string {
  if (resolvedIpPath !== undefined) return resolvedIpPath;
  for (const path of IP_PATHS) {
    try {
      if (Deno.statSync(path).isFile) return (resolvedIpPath = path);
    } catch { /* try the next */ }
  }
  throw new Error(`ip not found at ${IP_PATHS.join(", ")}; install iproute2`);
}

/** Runs `command` with a deadline (default 30 s) and returns its output whatever the exit code. */
export function runCommand(
  command: readonly string[],
  options: { readonly stdin?: string; readonly timeoutMs?: number } = {},
): Promise<CommandResult> {
  return runProcess(command, { timeoutMs: TESTBED_TIMEOUT_MS, ...options });
}

/** Runs `command`, throwing a `CommandError` unless it succeeds; returns stdout. */
export async function runChecked(
  command: readonly string[],
  options: { readonly stdin?: string; readonly timeoutMs?: number } = {},
): Promise<string> {
  return (await runProgramChecked(command, { timeoutMs: TESTBED_TIMEOUT_MS, ...options })).stdout;
}

/**
 * Runs a program inside network namespace `netns` (`ip netns exec`) and returns its output
 * whatever the exit code.
 *
 * @example
 * ```ts
 * const ping = await tryExec("plb1a2b3-client", "ping", "-c", "1", "-W", "1", "192.0.2.11");
 * ping.exitCode; // 0
 * ```
 */
export function tryExec(netns: string, ...command: readonly string[]): Promise<CommandResult> {
  return runCommand([testbedIpPath(), "netns", "exec", netns, ...command]);
}

/**
 * Runs a program inside network namespace `netns`; throws a `CommandError` unless
 * it succeeds, returns its stdout.
 *
 * @example
 * ```ts
 * const neighbours = await exec("plb1a2b3-client", "ip", "-json", "neigh", "show");
 * ```
 */
export function exec(netns: string, ...command: readonly string[]): Promise<string> {
  return runChecked([testbedIpPath(), "netns", "exec", netns, ...command]);
}
