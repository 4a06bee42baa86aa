/**
 * `deno task allocator -- [flags]` / `deno task agent -- [flags]`: runs the allocator or the
 * node agent from source under exactly its permission set (the kubeconfig it is given, if any,
 * is the only file it may read besides the service account's; the agent also runs `ip`, its
 * GARP helpers and BIRD's `birdc` by absolute path, and may write only its BGP folder, the one
 * `--bgp-dir` / `PURELB_BGP_DIR` names, else `/run/purelb-bgp`; `--birdc` / `PURELB_BIRDC` names
 * another `birdc` to allow).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { agentPermissions, allocatorPermissions } from "./permissions.ts";
import { runInForeground } from "../netlink/process.ts";

type Flags = Readonly<Record<string, string | boolean | undefined>>;

/** A flag's value from the command line, else from its variable. */
function flagValue(values: Flags, flag: string, env: string): string | undefined {
  const value = values[flag];
  return typeof value === "string" ? value : Deno.env.get(env);
}

const PROGRAMS = {
  allocator: {
    main: "../allocator/main.ts",
    permissions: (values: Flags) =>
      allocatorPermissions(flagValue(values, "kubeconfig", "KUBECONFIG")),
  },
  agent: {
    main: "../agent/main.ts",
    permissions: (values: Flags) =>
      agentPermissions(flagValue(values, "kubeconfig", "KUBECONFIG"), {
        bgpDir: flagValue(values, "bgp-dir", "PURELB_BGP_DIR"),
        birdc: flagValue(values, "birdc", "PURELB_BIRDC"),
      }),
  },
} as const;

async function main(): Promise<number> {
  const [program, ...rest] = Deno.args;
  const args = rest.filter((a, i) => !(i === 0 && a === "--"));
  if (program !== "allocator" && program !== "agent") {
    console.error(`usage: launch.ts allocator|agent [-- flags]`);
    return 2;
  }
  const { values } = parseArgs({
    args,
    options: {
      kubeconfig: { type: "string" },
      "bgp-dir": { type: "string" },
      birdc: { type: "string" },
    },
    strict: false,
  });
  const { main, permissions } = PROGRAMS[program];
  return await runInForeground([
    Deno.execPath(),
    "run",
    ...permissions(values),
    fileURLToPath(new URL(main, import.meta.url)),
    ...args,
  ]);
}

if (import.meta.main) Deno.exit(await main());
