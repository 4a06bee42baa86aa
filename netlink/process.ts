/**
 * The one way this project runs a program (`ip`, arping, na6, the tests' helpers): by absolute
 * path, with a deadline and an abort signal, output captured, and a {@linkcode CommandError}
 * that names the command line, the exit code and what the program wrote to stderr.
 *
 * @module
 */

/**
 * Thrown when a program that must be run by absolute path is not found.
 *
 * @example
 * ```ts
 * import { ExecutableNotFoundError, resolveExecutable } from "./process.ts";
 *
 * const error = await resolveExecutable("ip", ["/nope/ip"], "install iproute2").catch((e) => e);
 * if (!(error instanceof ExecutableNotFoundError)) throw new Error("expected not found");
 * ```
 */
export class ExecutableNotFoundError extends Error {
  /** The program that was looked for. */
  readonly program: string;
  /** The paths that were tried. */
  readonly candidates: readonly string[];

  /** The message names the program, the paths tried and how to install it. */
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
 * A program that could not start, outlived its deadline, was stopped, or (from
 * {@linkcode runChecked}) exited with an error.
 */
export class CommandError extends Error {
  /** Program and arguments, as run. */
  readonly command: readonly string[];
  /** Exit code, or `undefined` when the program did not finish (or never started). */
  readonly exitCode: number | undefined;
  /** What the program wrote to stderr, trimmed. */
  readonly stderr: string;

  /** The message holds the command line, what went wrong and stderr. */
  constructor(
    command: readonly string[],
    exitCode: number | undefined,
    stderr: string,
    options: { readonly problem?: string; readonly cause?: unknown } = {},
  ) {
    const why = options.problem ??
      (exitCode === undefined ? "timed out" : `exited with ${exitCode}`);
    super(`\`${command.join(" ")}\` ${why}${stderr ? `: ${stderr}` : ""}`, {
      cause: options.cause,
    });
    this.name = "CommandError";
    this.command = command;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** What one finished program printed. */
export interface ProcessOutput {
  /** The exit code (0 is success). */
  readonly exitCode: number;
  /** Standard output as text. */
  readonly stdout: string;
  /** Standard error as text, trimmed. */
  readonly stderr: string;
}

/** How a program runs. */
export interface ProcessOptions {
  /** Fed to standard input (closed at once when absent). */
  readonly stdin?: string;
  /** Killed after this many milliseconds (no deadline when absent). */
  readonly timeoutMs?: number;
  /** Killed when this aborts. */
  readonly signal?: AbortSignal;
  readonly cwd?: string;
  /** Added to the environment. */
  readonly env?: Record<string, string>;
}

/**
 * Runs `command` (program first) and returns its output whatever the exit code. Throws
 * {@link CommandError} when it cannot start (its `cause` is Deno's error, e.g.
 * `Deno.errors.NotFound`), outlives `timeoutMs` or is stopped by `signal`.
 *
 * @example
 * ```ts
 * import { runProcess } from "./process.ts";
 *
 * const { exitCode, stdout } = await runProcess(["/bin/sh", "-c", "echo hi"], { timeoutMs: 5_000 });
 * if (exitCode !== 0 || stdout !== "hi\n") throw new Error(stdout);
 * ```
 */
export async function runProcess(
  command: readonly string[],
  options: ProcessOptions = {},
): Promise<ProcessOutput> {
  const [program, ...args] = command;
  if (program === undefined || program === "") {
    throw new CommandError(command, undefined, "", { problem: "is empty" });
  }
  const deadline = options.timeoutMs === undefined
    ? undefined
    : AbortSignal.timeout(options.timeoutMs);
  const signals = [deadline, options.signal].filter((s) => s !== undefined);
  const signal = signals.length === 0 ? undefined : AbortSignal.any(signals);
  if (signal?.aborted) throw new CommandError(command, undefined, "", { problem: "was stopped" });
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program, {
      args,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: options.env }),
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      ...(signal === undefined ? {} : { signal }),
    }).spawn();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new CommandError(command, undefined, "", {
      problem: `could not start: ${reason}`,
      cause: error,
    });
  }
  if (options.stdin !== undefined && child.stdin !== null) {
    const writer = child.stdin.getWriter();
    try {
      await writer.write(new TextEncoder().encode(options.stdin));
      await writer.close();
    } catch {
      // The program exited before reading all input: its exit code and stderr say why.
    }
  }
  const output = await collectOutput(child);
  const decoder = new TextDecoder();
  const stderr = decoder.decode(output.stderr).trim();
  if (deadline?.aborted) throw new CommandError(command, undefined, stderr);
  if (signal?.aborted) {
    throw new CommandError(command, undefined, stderr, { problem: "was stopped" });
  }
  return { exitCode: output.code, stdout: decoder.decode(output.stdout), stderr };
}

/** {@link runProcess}, and a non-zero exit code is a {@link CommandError} too. */
export async function runChecked(
  command: readonly string[],
  options: ProcessOptions = {},
): Promise<ProcessOutput> {
  const output = await runProcess(command, options);
  if (output.exitCode !== 0) throw new CommandError(command, output.exitCode, output.stderr);
  return output;
}

/**
 * Runs `command` (program first) in the foreground: the terminal is the program's, SIGINT and
 * SIGTERM are passed on to it. Returns its exit code (for launchers).
 */
export async function runInForeground(command: readonly string[]): Promise<number> {
  const [program, ...args] = command;
  if (program === undefined || program === "") {
    throw new CommandError(command, undefined, "", { problem: "is empty" });
  }
  const child = new Deno.Command(program, {
    args,
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => child.kill(signal));
  }
  return (await child.status).code;
}

/**
 * Waits for `child` (stdout and stderr piped) and returns its exit code and output. It reads
 * the pipes itself: on Deno 2.8, `ChildProcess.output()` keeps about 100 KB of native memory
 * per process for good, which grew an agent that runs `ip` for every change by hundreds of
 * megabytes (the V8 heap stayed small).
 */
async function collectOutput(
  child: Deno.ChildProcess,
): Promise<{ readonly code: number; readonly stdout: Uint8Array; readonly stderr: Uint8Array }> {
  const [stdout, stderr, status] = await Promise.all([
    new Response(child.stdout).bytes(),
    new Response(child.stderr).bytes(),
    child.status,
  ]);
  return { code: status.code, stdout, stderr };
}
