/**
 * Running iproute2's `ip` by absolute path, optionally inside a network namespace
 * (`ip -n NS ...`), with a deadline per process and a count of processes spawned.
 *
 * @module
 */

import { CommandError, type ProcessOutput, resolveExecutable, runProcess } from "./process.ts";

/** Where `ip` is looked for, in this order (Debian: /usr/sbin/ip, /sbin/ip, /bin/ip). */
export const IP_PATHS: readonly string[] = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"];

/** Default deadline of one `ip` process. */
export const DEFAULT_IP_TIMEOUT_MS = 30_000;

/** Options of {@link IpCommand.create}. */
export interface IpCommandOptions {
  /** Network namespace to act in (`ip -n NS`); the current one when absent. */
  readonly netns?: string;
  /** Absolute path of `ip`; looked up in {@link IP_PATHS} when absent. */
  readonly ipPath?: string;
  /** Deadline of each process in milliseconds (default {@link DEFAULT_IP_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
}

/**
 * Runs `ip` by absolute path, in a network namespace if one is given. Every process it starts
 * is counted in {@link IpCommand.processesSpawned}.
 *
 * @example
 * ```ts
 * const ip = await IpCommand.create({ netns: "node-a" });
 * const { stdout } = await ip.run(["-json", "link", "show"]);
 * ip.processesSpawned; // 1
 * ```
 */
export class IpCommand {
  /** Absolute path of the `ip` program. */
  readonly ipPath: string;
  /** The network namespace acted in, or `undefined` for the current one. */
  readonly netns: string | undefined;
  /** Deadline of each process in milliseconds. */
  readonly timeoutMs: number;
  #processesSpawned = 0;

  private constructor(ipPath: string, netns: string | undefined, timeoutMs: number) {
    this.ipPath = ipPath;
    this.netns = netns;
    this.timeoutMs = timeoutMs;
  }

  /** Resolves the path of `ip` once and returns a runner. */
  static async create(options: IpCommandOptions = {}): Promise<IpCommand> {
    const ipPath = options.ipPath ??
      await resolveExecutable("ip", IP_PATHS, "install iproute2 (Debian package iproute2)");
    return new IpCommand(ipPath, options.netns, options.timeoutMs ?? DEFAULT_IP_TIMEOUT_MS);
  }

  /** How many `ip` processes this runner has started. */
  get processesSpawned(): number {
    return this.#processesSpawned;
  }

  /**
   * The full command line for `args`: the program, `-n NS` when in a namespace, then `args`.
   *
   * @example
   * ```ts
   * const ip = await IpCommand.create({ netns: "node-a" });
   * ip.commandLine(["address", "show"]); // ["/usr/sbin/ip", "-n", "node-a", "address", "show"]
   * ```
   */
  commandLine(args: readonly string[]): readonly string[] {
    return [this.ipPath, ...(this.netns === undefined ? [] : ["-n", this.netns]), ...args];
  }

  /**
   * Runs `ip args...` (feeding `stdin` when given) and returns its output whatever the exit
   * code. Throws {@link CommandError} only when the process could not run or timed out.
   */
  runUnchecked(args: readonly string[], stdin?: string): Promise<ProcessOutput> {
    this.#processesSpawned++;
    return runProcess(this.commandLine(args), {
      timeoutMs: this.timeoutMs,
      ...(stdin === undefined ? {} : { stdin }),
    });
  }

  /**
   * Runs `ip args...` and returns its output; throws {@link CommandError} (with the command
   * line and stderr) when it exits with an error.
   */
  async run(args: readonly string[], stdin?: string): Promise<ProcessOutput> {
    const output = await this.runUnchecked(args, stdin);
    if (output.exitCode !== 0) {
      throw new CommandError(this.commandLine(args), output.exitCode, output.stderr);
    }
    return output;
  }
}
