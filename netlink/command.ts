/**
 * Running iproute2's `ip` by absolute path, optionally inside a network namespace
 * (`ip -n NS ...`), with a deadline per process and a count of processes spawned.
 *
 * @module
 */

/** Where `ip` is looked for, in this order (Debian: /usr/sbin/ip, /sbin/ip, /bin/ip). */
export const IP_PATHS: readonly string[] = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"];

/** Default deadline of one `ip` process. */
export const DEFAULT_IP_TIMEOUT_MS = 30_000;

/**
 * Thrown when a helper program that must be run by absolute path is not found.
 *
 * @example
 * ```ts
 * try { await resolveExecutable("ip", ["/nope/ip"]); } catch (e) {
 *   if (e instanceof ExecutableNotFoundError) console.log(e.candidates); // ["/nope/ip"]
 * }
 * ```
 */
export class ExecutableNotFoundError extends Error {
  /** The program that was looked for. */
  readonly program: string;
  /** The paths that were tried. */
  readonly candidates: readonly string[];

  /** Builds the error; the message names the program, the paths tried and the package. */
  constructor(program: string, candidates: readonly string[], hint: string) {
    super(`${program} not found at ${candidates.join(", ")}${hint ? `; ${hint}` : ""}`);
    this.name = "ExecutableNotFoundError";
    this.program = program;
    this.candidates = candidates;
  }
}

/**
 * The first of `candidates` that is an executable file. Needs read permission for the paths
 * tried; throws {@link ExecutableNotFoundError} when none is.
 *
 * @example
 * ```ts
 * const ipPath = await resolveExecutable("ip", IP_PATHS, "install iproute2"); // "/usr/sbin/ip"
 * ```
 */
export async function resolveExecutable(
  program: string,
  candidates: readonly string[],
  hint = "",
): Promise<string> {
  for (const path of candidates) {
    try {
      const info = await Deno.stat(path);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return path;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  throw new ExecutableNotFoundError(program, candidates, hint);
}

/**
 * Thrown when `ip` exits with an error (or outlives its deadline): carries the whole command
 * line, the exit code and what `ip` wrote to stderr.
 *
 * @example
 * ```ts
 * const ip = await IpCommand.create();
 * try { await ip.run(["link", "show", "dev", "nope"]); } catch (e) {
 *   if (e instanceof IpCommandError) console.log(e.command.join(" "), e.stderr);
 * }
 * ```
 */
export class IpCommandError extends Error {
  /** Program and arguments, as run. */
  readonly command: readonly string[];
  /** Exit code, or `undefined` when the process was killed at its deadline. */
  readonly exitCode: number | undefined;
  /** What the process wrote to stderr, trimmed. */
  readonly stderr: string;

  /** Builds the error; the message holds the command line and stderr. */
  constructor(
    command: readonly string[],
    exitCode: number | undefined,
    stderr: string,
    problem?: string,
  ) {
    const why = problem ?? (exitCode === undefined ? "timed out" : `exited with ${exitCode}`);
    super(`\`${command.join(" ")}\` ${why}${stderr ? `: ${stderr}` : ""}`);
    this.name = "IpCommandError";
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/**
 * What one finished process printed.
 *
 * @example
 * ```ts
 * const output: ProcessOutput = { exitCode: 0, stdout: "[]", stderr: "" };
 * ```
 */
export interface ProcessOutput {
  /** The exit code (0 is success). */
  readonly exitCode: number;
  /** Standard output as text. */
  readonly stdout: string;
  /** Standard error as text, trimmed. */
  readonly stderr: string;
}

/**
 * Waits for a spawned `child` (stdout and stderr piped) to exit and returns its exit code and
 * output. It reads the two pipes itself: on Deno 2.8, `ChildProcess.output()` keeps about
 * 100 KB of native memory per process for good, which grew an agent that runs `ip` for every
 * change by hundreds of megabytes (the V8 heap stayed small).
 *
 * @example
 * ```ts
 * const child = new Deno.Command("/usr/sbin/ip", { args: ["-json", "link", "show"],
 *   stdout: "piped", stderr: "piped" }).spawn();
 * const { code, stdout } = await collectOutput(child);
 * ```
 */
export async function collectOutput(
  child: Deno.ChildProcess,
): Promise<{ readonly code: number; readonly stdout: Uint8Array; readonly stderr: Uint8Array }> {
  const [stdout, stderr, status] = await Promise.all([
    new Response(child.stdout).bytes(),
    new Response(child.stderr).bytes(),
    child.status,
  ]);
  return { code: status.code, stdout, stderr };
}

/**
 * Options of {@link IpCommand.create}.
 *
 * @example
 * ```ts
 * const options: IpCommandOptions = { netns: "node-a", timeoutMs: 10_000 };
 * ```
 */
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
   * code. Throws {@link IpCommandError} only when the process could not run or timed out.
   */
  async runUnchecked(args: readonly string[], stdin?: string): Promise<ProcessOutput> {
    const command = this.commandLine(args);
    const [program, ...programArgs] = command;
    if (program === undefined) throw new IpCommandError(command, undefined, "", "is empty");
    const signal = AbortSignal.timeout(this.timeoutMs);
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(program, {
        args: programArgs,
        stdin: stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
        signal,
      }).spawn();
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new IpCommandError(command, undefined, "", `could not start: ${reason}`);
    }
    this.#processesSpawned++;
    if (stdin !== undefined && child.stdin !== null) {
      const writer = child.stdin.getWriter();
      try {
        await writer.write(new TextEncoder().encode(stdin));
        await writer.close();
      } catch {
        // ip exited before reading all input: its exit code and stderr say why.
      }
    }
    const output = await collectOutput(child);
    const decoder = new TextDecoder();
    const stderr = decoder.decode(output.stderr).trim();
    if (signal.aborted) throw new IpCommandError(command, undefined, stderr);
    return { exitCode: output.code, stdout: decoder.decode(output.stdout), stderr };
  }

  /**
   * Runs `ip args...` and returns its output; throws {@link IpCommandError} (with the command
   * line and stderr) when it exits with an error.
   */
  async run(args: readonly string[], stdin?: string): Promise<ProcessOutput> {
    const output = await this.runUnchecked(args, stdin);
    if (output.exitCode !== 0) {
      throw new IpCommandError(this.commandLine(args), output.exitCode, output.stderr);
    }
    return output;
  }
}
