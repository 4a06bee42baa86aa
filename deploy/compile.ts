/**
 * `deno task compile [-- --out DIR] [--target TRIPLE] [allocator] [agent]`: builds the two
 * programs into self-contained executables with `deno compile`, each under exactly the
 * permission set `deno task allocator` / `deno task agent` use (from `deploy/permissions.ts`),
 * for a Pod: in-cluster configuration, so no kubeconfig file is readable.
 *
 * The container image (`deploy/Dockerfile`) runs this same script, so the task, the image and
 * the source of truth cannot drift apart.
 *
 * `deno compile` downloads its runtime (`denort`) from dl.deno.land the first time (or takes
 * `DENORT_BIN`). Without internet, run the programs from source under the same permission sets:
 * `deno task allocator` / `deno task agent`.
 *
 * The agent's permission set names `ip`, `arping`, `na6` and BIRD's `birdc` by the absolute paths
 * found on the machine that compiles it, and those paths are baked into the executable (as is
 * the BGP folder `/run/purelb-bgp`, the only one it may write): compile it where the helpers sit
 * where the image puts them (the Dockerfile installs them in the build stage). Without `birdc`
 * the agent still builds, with a warning: it can then announce with ARP/NDP but not drive BIRD.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { agentPermissions, allocatorPermissions } from "./permissions.ts";
import { ARPING_PATHS, IP_PATHS, NA6_PATHS } from "../netlink/mod.ts";
import { BIRDC_PATHS } from "../bgp/model.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));

/** The programs this script builds: entry module (from the repository root) and permissions. */
export const PROGRAMS = {
  allocator: { main: "allocator/main.ts", permissions: allocatorPermissions },
  agent: { main: "agent/main.ts", permissions: agentPermissions },
} as const;

/** The name of a program this script builds; also the executable's file name. */
export type ProgramName = keyof typeof PROGRAMS;

/** Raised when the executables cannot be built as asked; says what is wrong and what to do. */
export class CompileError extends Error {
  override name = "CompileError";
}

/** Options of {@linkcode compileArgs}. */
export interface CompileOptions {
  /** Folder the executable is written to (as `<outDir>/<program>`). */
  readonly outDir: string;
  /** `deno compile --target` triple; the current platform when absent. */
  readonly target?: string;
}

/**
 * The arguments after `deno` that build one program: `compile`, the program's permission set
 * for a Pod (kubeconfig `undefined`: in-cluster config), the output, the entry module.
 *
 * @example
 * ```ts
 * const args = compileArgs("allocator", { outDir: "dist" });
 * // ["compile", "--allow-net", "--allow-env=...", ..., "--output", "dist/allocator", ".../allocator/main.ts"]
 * ```
 */
export function compileArgs(program: ProgramName, opts: CompileOptions): string[] {
  const { main, permissions } = PROGRAMS[program];
  return [
    "compile",
    ...permissions(undefined),
    ...(opts.target === undefined ? [] : ["--target", opts.target]),
    "--output",
    join(opts.outDir, program),
    join(REPO_ROOT, main),
  ];
}

/**
 * Checks that an agent permission set may run each helper (`ip`, `arping`, `na6`) by one of the
 * paths the agent looks for; returns what is missing (empty when all are there).
 *
 * @example
 * ```ts
 * missingAgentHelpers(["--allow-run=/usr/sbin/ip"]); // ["arping", "na6"]
 * ```
 */
export function missingAgentHelpers(permissions: readonly string[]): string[] {
  const allowed = runnable(permissions);
  const helpers = { ip: IP_PATHS, arping: ARPING_PATHS, na6: NA6_PATHS };
  return Object.entries(helpers)
    .filter(([, paths]) => !paths.some((path) => allowed.has(path)))
    .map(([name]) => name);
}

/**
 * Whether an agent permission set may run `birdc` by one of the paths the agent looks for
 * (without it BGP cannot work, everything else can).
 *
 * @example
 * ```ts
 * allowsBirdc(["--allow-run=/usr/sbin/ip,/usr/sbin/birdc"]); // true
 * ```
 */
export function allowsBirdc(permissions: readonly string[]): boolean {
  const allowed = runnable(permissions);
  return BIRDC_PATHS.some((path) => allowed.has(path));
}

function runnable(permissions: readonly string[]): Set<string> {
  return new Set(
    permissions.filter((flag) => flag.startsWith("--allow-run="))
      .flatMap((flag) => flag.slice("--allow-run=".length).split(",")),
  );
}

/** Parsed command line of the script. */
export interface CompileCommandLine {
  readonly programs: readonly ProgramName[];
  readonly outDir: string;
  readonly target: string | undefined;
}

/**
 * Reads `[--out DIR] [--target TRIPLE] [allocator] [agent]` (both programs when none is named;
 * default folder `dist/` in the repository).
 *
 * @example
 * ```ts
 * parseCompileArgs(["--out", "/out", "agent"]); // { programs: ["agent"], outDir: "/out", target: undefined }
 * ```
 */
export function parseCompileArgs(args: readonly string[]): CompileCommandLine {
  const { values, positionals } = parseArgs({
    args: args.filter((arg) => arg !== "--"),
    options: { out: { type: "string" }, target: { type: "string" } },
    allowPositionals: true,
    strict: true,
  });
  const programs: ProgramName[] = [];
  for (const name of positionals) {
    if (!isProgramName(name)) {
      throw new CompileError(
        `unknown program "${name}": expected ${Object.keys(PROGRAMS).join(" and/or ")}`,
      );
    }
    if (!programs.includes(name)) programs.push(name);
  }
  return {
    programs: programs.length > 0 ? programs : ["allocator", "agent"],
    outDir: values.out ?? join(REPO_ROOT, "dist"),
    target: values.target,
  };
}

function isProgramName(name: string): name is ProgramName {
  return Object.hasOwn(PROGRAMS, name);
}

async function main(args: readonly string[]): Promise<number> {
  let commandLine: CompileCommandLine;
  try {
    commandLine = parseCompileArgs(args);
  } catch (error) {
    console.error(`compile: ${error instanceof Error ? error.message : String(error)}`);
    console.error("usage: deno task compile [-- --out DIR] [--target TRIPLE] [allocator] [agent]");
    return 2;
  }
  const { programs, outDir, target } = commandLine;
  if (programs.includes("agent")) {
    if (!allowsBirdc(agentPermissions(undefined))) {
      console.error(
        `compile: warning: birdc not found (${BIRDC_PATHS.join(", ")}); the agent built here ` +
          "cannot drive BIRD, so BGP will not work with it. Install Debian's bird2 to include it.",
      );
    }
    const missing = missingAgentHelpers(agentPermissions(undefined));
    if (missing.length > 0) {
      console.error(
        `compile: ${missing.join(", ")} not found on this machine. The agent's permission ` +
          "set names its helpers by absolute path and the executable keeps those paths: " +
          "compile it where iproute2, iputils-arping and ipv6toolkit are installed as in the " +
          "agent image (deploy/Dockerfile does so).",
      );
      return 1;
    }
  }
  await Deno.mkdir(outDir, { recursive: true });
  for (const program of programs) {
    const opts = target === undefined ? { outDir } : { outDir, target };
    const compile = compileArgs(program, opts);
    console.error(`compile: deno ${compile.join(" ")}`);
    const status = await new Deno.Command(Deno.execPath(), {
      args: compile,
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (!status.success) {
      console.error(
        `compile: deno compile of the ${program} failed (exit ${status.code}). It needs the ` +
          "denort runtime from dl.deno.land (or DENORT_BIN pointing at one); without it, run " +
          `from source under the same permissions: deno task ${program}`,
      );
      return status.code === 0 ? 1 : status.code;
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
