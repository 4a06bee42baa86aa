/**
 * `deno task kubectl-purelb -- COMMAND [flags]` and the installed `kubectl-purelb`: runs
 * `kubectl/main.ts` under the plugin's permission set, granting the kubeconfig it will use,
 * the files that kubeconfig names and the `-f` files, and nothing else to read.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { OPTIONS } from "./flags.ts";
import { kubeconfigCandidates } from "../k8s/config.ts";
import { runInForeground } from "../netlink/process.ts";
import { PLUGIN_ENV, pluginPermissions, referencedFiles } from "./permissions.ts";

/** The `deno run` arguments for `args` (what the launcher runs, for the tests too). */
export function pluginCommand(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  readText: (path: string) => string | undefined,
): string[] {
  let kubeconfig: string | undefined;
  let files: readonly string[] = [];
  try {
    const { values } = parseArgs({
      args: [...args],
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    kubeconfig = values.kubeconfig;
    files = (values.filename ?? []).filter((f) => f !== "-");
  } catch {
    // The plugin itself explains a bad command line.
  }
  const readable: string[] = [];
  for (const path of kubeconfigCandidates(kubeconfig, env)) {
    readable.push(path);
    const text = readText(path);
    if (text !== undefined) readable.push(...referencedFiles(text, path));
  }
  return [
    "run",
    "--quiet",
    `--config=${fileURLToPath(new URL("../deno.json", import.meta.url))}`,
    ...pluginPermissions([...readable, ...files]),
    fileURLToPath(new URL("./main.ts", import.meta.url)),
    ...args,
  ];
}

async function main(): Promise<number> {
  const args = Deno.args.filter((a, i) => !(i === 0 && a === "--"));
  const env = Object.fromEntries(PLUGIN_ENV.map((name) => [name, Deno.env.get(name)]));
  const readText = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return undefined;
    }
  };
  return await runInForeground([Deno.execPath(), ...pluginCommand(args, env, readText)]);
}

if (import.meta.main) Deno.exit(await main());
