/**
 * Command-line flags with environment fallbacks, shared by the allocator and the agent (pure).
 *
 * @module
 */

import { parseArgs } from "node:util";

/** One flag: the environment variable it falls back to, its help text and its default. */
export interface FlagSpec {
  readonly env: string;
  readonly help: string;
  /** The value when neither the flag nor its variable is set (shown in the help text). */
  readonly default?: string;
}

/** Raised for a flag or environment value that cannot be used; names the flag and the value. */
export class FlagError extends Error {
  override name = "FlagError";
}

/** A flag's value: always there for a flag with a default. */
export type FlagValue<Spec extends FlagSpec> = Spec extends { readonly default: string } ? string
  : string | undefined;

/**
 * The flags both programs have. `listenPort` is the program's default port for /metrics.
 */
export function sharedFlags(listenPort: number) {
  return {
    kubeconfig: {
      env: "KUBECONFIG",
      help: "kubeconfig file (default: in-cluster, then ~/.kube/config)",
    },
    listen: {
      env: "PURELB_LISTEN",
      help: "address of /metrics /healthz /readyz",
      default: `0.0.0.0:${listenPort}`,
    },
    "log-level": {
      env: "PURELB_LOG_LEVEL",
      help: "trace|debug|info|warning|error",
      default: "info",
    },
    "log-format": { env: "PURELB_LOG_FORMAT", help: "json|text", default: "json" },
  } as const satisfies Record<string, FlagSpec>;
}

/**
 * Parses `args` against `flags` (all string-valued) and returns a getter: the flag's value,
 * else its environment variable, else its default, else undefined. Unknown flags throw.
 *
 * @example
 * ```ts
 * import { readFlags } from "./flags.ts";
 *
 * const get = readFlags(["--workers", "4"], () => undefined, {
 *   workers: { env: "WORKERS", help: "concurrent workers", default: "16" },
 *   name: { env: "NAME", help: "a name" },
 * });
 * if (get("workers") !== "4" || get("name") !== undefined) throw new Error("unexpected");
 * ```
 */
export function readFlags<Flags extends Readonly<Record<string, FlagSpec>>>(
  args: readonly string[],
  env: (name: string) => string | undefined,
  flags: Flags,
): <Name extends keyof Flags & string>(name: Name) => FlagValue<Flags[Name]> {
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
  return <Name extends keyof Flags & string>(name: Name) => {
    const value = values[name];
    const flag: FlagSpec | undefined = flags[name];
    const found = typeof value === "string" ? value : flag && (env(flag.env) || flag.default);
    // A flag with a default always has a value, which is what FlagValue says.
    return found as FlagValue<Flags[Name]>;
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
  const lines = Object.entries(flags).map(([name, flag]) => {
    const fallback = flag.default === undefined ? "" : ` (default ${flag.default})`;
    return `  --${name.padEnd(width)} ${flag.help}${fallback} [env ${flag.env}]`;
  });
  return `usage: ${synopsis}\n${lines.join("\n")}`;
}
