/**
 * `deno task allocator -- [flags]` / `deno task agent -- [flags]`: runs the allocator or the
 * node agent from source under exactly its permission set (the kubeconfig it is given, if any,
 * is the only file it may read besides the service account's; the agent also runs `ip` and its
 * GARP helpers by absolute path).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { agentPermissions, allocatorPermissions } from "./permissions.ts";
import { runInForeground } from "../netlink/process.ts";

const PROGRAMS = {
  allocator: { main: "../allocator/main.ts", permissions: allocatorPermissions },
  agent: { main: "../agent/main.ts", permissions: agentPermissions },
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
    options: { kubeconfig: { type: "string" } },
    strict: false,
  });
  const kubeconfig = typeof values.kubeconfig === "string"
    ? values.kubeconfig
    : Deno.env.get("KUBECONFIG");
  const { main, permissions } = PROGRAMS[program];
  return await runInForeground([
    Deno.execPath(),
    "run",
    ...permissions(kubeconfig),
    fileURLToPath(new URL(main, import.meta.url)),
    ...args,
  ]);
}

if (import.meta.main) Deno.exit(await main());
