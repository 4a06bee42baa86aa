/**
 * `deno task kubectl-purelb-install [-- --dir DIR]`: writes `DIR/kubectl-purelb` (default
 * `~/.local/bin`), a two-line shell script that runs this checkout's plugin through its launcher
 * with the pinned Deno; kubectl finds it on PATH as `kubectl purelb`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** The Deno the wrapper runs (as everywhere in this repository). */
export const DENO = "npx -y deno@2.8.3";

function quote(text: string): string {
  return `'${text.replaceAll("'", `'"'"'`)}'`;
}

/**
 * The wrapper script for a checkout at `repo`.
 *
 * @example
 * ```ts
 * wrapperScript("/src/purelb");
 * // "#!/bin/sh\n...exec npx -y deno@2.8.3 run ... '/src/purelb/kubectl/launch.ts' \"$@\"\n"
 * ```
 */
export function wrapperScript(repo: string): string {
  return [
    "#!/bin/sh",
    "# kubectl-purelb: written by `deno task kubectl-purelb-install`; runs the plugin from source",
    `exec ${DENO} run --quiet --config=${quote(join(repo, "deno.json"))} --allow-read ` +
    `--allow-env --allow-run ${quote(join(repo, "kubectl", "launch.ts"))} "$@"`,
    "",
  ].join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args.filter((a, i) => !(i === 0 && a === "--")),
    options: { dir: { type: "string" } },
  });
  const home = Deno.env.get("HOME");
  const dir = values.dir ?? (home ? join(home, ".local", "bin") : undefined);
  if (dir === undefined) {
    console.error("kubectl-purelb-install: HOME is not set; pass --dir DIR");
    return 2;
  }
  const repo = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
  await Deno.mkdir(dir, { recursive: true });
  const target = join(dir, "kubectl-purelb");
  await Deno.writeTextFile(target, wrapperScript(repo), { mode: 0o755 });
  await Deno.chmod(target, 0o755);
  const onPath = (Deno.env.get("PATH") ?? "").split(":").includes(dir);
  console.log(
    `wrote ${target}${
      onPath ? "" : ` (${dir} is not on PATH: add it)`
    }; try: kubectl purelb status`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await main());
