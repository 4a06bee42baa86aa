/**
 * Running the programs a test set-up needs (go, apt-get, pip, initdb, ...): output captured,
 * a missing program and a failing one reported in words, with the error class of the set-up
 * that asked (so its callers can tell a missing control plane from a missing NetBox).
 *
 * @module
 */

/** What one finished set-up command printed. */
export interface SetupCommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Where and how a set-up command runs, and the error it throws. */
export interface SetupCommandOptions {
  readonly cwd?: string;
  readonly env?: Record<string, string>;
  /** Builds the error for a command that cannot run or fails. */
  readonly error: (message: string) => Error;
}

/** Runs `cmd` and returns its output whatever its exit code; a missing program throws. */
export async function runSetupCommand(
  cmd: readonly string[],
  options: SetupCommandOptions,
): Promise<SetupCommandResult> {
  const [program, ...args] = cmd;
  if (program === undefined || program === "") throw options.error("empty command");
  try {
    const out = await new Deno.Command(program, {
      args,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.env ? { env: options.env } : {}),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw options.error(`${program} is not installed (needed to ${cmd.join(" ")})`);
    }
    throw error;
  }
}

/**
 * Runs `cmd` and returns its stdout; a failure throws `options.error` with `what` was being
 * done, the command and the last 30 lines it printed.
 */
export async function runSetupCommandChecked(
  cmd: readonly string[],
  options: SetupCommandOptions,
  what: string,
): Promise<string> {
  const result = await runSetupCommand(cmd, options);
  if (result.code !== 0) {
    const tail = (result.stderr || result.stdout).trimEnd().split("\n").slice(-30).join("\n");
    throw options.error(
      `could not ${what}: \`${cmd.join(" ")}\` exited ${result.code}:\n${tail}`,
    );
  }
  return result.stdout;
}

/** True when `path` exists (any kind of file). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
