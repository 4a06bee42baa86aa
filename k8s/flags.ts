/**
 * Command-line flags with environment fallbacks, shared by the allocator and the agent (pure).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One flag: the environment variable it falls back to and its help text. */
export interface FlagSpec {
  readonly env: string;
  readonly help: string;
}

/** Raised for a flag or environment value that cannot be used; names the flag and the value. */
export class FlagError extends Error {
  override name = "FlagError";
}

/**
 * Parses `args` against `flags` (all string-valued) and returns a getter: the flag's value,
 * else its environment variable, else undefined. Unknown flags throw.
 *
 * @example
 * ```ts
 * const get = readFlags(["--namespace", "x"], (n) => Deno.env.get(n), FLAGS);
 * get("namespace"); // "x"
 * ```
 */
export function readFlags<Name extends string>(
  args: readonly string[],
  env: (name: string) => string | undefined,
  flags: Readonly<Record<Name, FlagSpec>>,
): (name: Name) => string | undefined {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({
      args: [...args],
      options: Object.fromEntries(
        Object.keys(flags).map((name) => [name, { type: "string" as const }]),
      ),
      strict: true,
    }).values;
  } catch (error) {
    throw new FlagError(error instanceof Error ? error.message : String(error));
  }
  return (name) => {
    const value = values[name];
    return typeof value === "string" ? value : env(flags[name].env) || undefined;
  };
}

/** `HOST:PORT` (IPv6 hosts in brackets; empty host = all addresses). */
export function parseListen(
  flag: string,
  text: string,
): { readonly hostname: string; readonly port: number } {
  const match = /^(.*):(\d+)$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port > 65535) {
    throw new FlagError(`--${flag} "${text}" is not HOST:PORT (for example 0.0.0.0:7472)`);
  }
  const host = (match[1] ?? "").replace(/^\[(.*)\]$/, "$1");
  return { hostname: host === "" ? "0.0.0.0" : host, port };
}

/** A number of seconds within [min, max], returned in milliseconds. */
export function parseSeconds(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (text.trim() === "" || !Number.isFinite(value) || value < min || value > max) {
    throw new FlagError(`--${flag} "${text}" is not a number of seconds from ${min} to ${max}`);
  }
  return Math.round(value * 1000);
}

/** The help text: one line per flag with its environment variable. */
export function flagUsage(synopsis: string, flags: Readonly<Record<string, FlagSpec>>): string {
  const width = Math.max(...Object.keys(flags).map((name) => name.length)) + 2;
  const lines = Object.entries(flags).map(([name, flag]) =>
    `  --${name.padEnd(width)} ${flag.help} [env ${flag.env}]`
  );
  return `usage: ${synopsis}\n${lines.join("\n")}`;
}
