/**
 * Running the programs a test set-up needs (go, apt-get, pip, initdb, ...): output captured,
 * a missing program and a failing one reported in words, with the error class of the set-up
 * that asked (so its callers can tell a missing control plane from a missing NetBox).
 *
 * @module
 */

import { CommandError, runProcess } from "../netlink/mod.ts";

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
  try {
    const output = await runProcess(cmd, {
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      ...(options.env === undefined ? {} : { env: options.env }),
    });
    return { code: output.exitCode, stdout: output.stdout, stderr: output.stderr };
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    if (error.cause instanceof Deno.errors.NotFound) {
      throw options.error(`${cmd[0]} is not installed (needed to ${cmd.join(" ")})`);
    }
    throw options.error(error.message);
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
