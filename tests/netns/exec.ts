/**
 * Running commands for the testbed: `ip` in the root namespace (only to manage namespaces
 * and their links) and any program inside a namespace (`ip netns exec NS ...`), each with a
 * deadline.
 *
 * @module
 */
import { collectOutput, IP_PATHS } from "../../netlink/mod.ts";

/** Thrown when a testbed command fails; carries the command line, exit code and stderr. */
export class TestbedCommandError extends Error {
  /** Program and arguments, as run. */
  readonly command: readonly string[];
  /** Exit code, or `undefined` when it timed out. */
  readonly exitCode: number | undefined;
  /** What the command wrote to stderr, trimmed. */
  readonly stderr: string;

  /** Builds the error; the message holds the command line and stderr. */
  constructor(command: readonly string[], exitCode: number | undefined, stderr: string) {
    const why = exitCode === undefined ? "timed out" : `exited with ${exitCode}`;
    super(`\`${command.join(" ")}\` ${why}${stderr ? `: ${stderr}` : ""}`);
    this.name = "TestbedCommandError";
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/**
 * What a finished command printed.
 *
 * @example
 * ```ts
 * const result: CommandResult = { exitCode: 0, stdout: "", stderr: "" };
 * ```
 */
export interface CommandResult {
  /** Exit code (0 is success). */
  readonly exitCode: number;
  /** Standard output. */
  readonly stdout: string;
  /** Standard error, trimmed. */
  readonly stderr: string;
}

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

/**
 * Runs `command` with a deadline and returns its output whatever the exit code.
 *
 * @example
 * ```ts
 * const { exitCode } = await runCommand(["/usr/sbin/ip", "netns", "list"]);
 * ```
 */
export async function runCommand(
  command: readonly string[],
  options: { readonly stdin?: string; readonly timeoutMs?: number } = {},
): Promise<CommandResult> {
  const [program, ...args] = command;
  if (program === undefined) throw new TestbedCommandError(command, undefined, "empty command");
  const signal = AbortSignal.timeout(options.timeoutMs ?? 30_000);
  const child = new Deno.Command(program, {
    args,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    signal,
  }).spawn();
  if (options.stdin !== undefined && child.stdin !== null) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    } catch { /* exited early: its status says why */ }
  }
  const output = await collectOutput(child);
  const decoder = new TextDecoder();
  const stderr = decoder.decode(output.stderr).trim();
  if (signal.aborted) throw new TestbedCommandError(command, undefined, stderr);
  return { exitCode: output.code, stdout: decoder.decode(output.stdout), stderr };
}

/**
 * Runs `command`, throwing {@link TestbedCommandError} unless it succeeds; returns stdout.
 *
 * @example
 * ```ts
 * await runChecked(["/usr/sbin/ip", "netns", "add", "plbab12c-x"]);
 * ```
 */
export async function runChecked(
  command: readonly string[],
  options: { readonly stdin?: string; readonly timeoutMs?: number } = {},
): Promise<string> {
  const result = await runCommand(command, options);
  if (result.exitCode !== 0) {
    throw new TestbedCommandError(command, result.exitCode, result.stderr);
  }
  return result.stdout;
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
 * Runs a program inside network namespace `netns`; throws {@link TestbedCommandError} unless
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
