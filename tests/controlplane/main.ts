/**
 * `deno task controlplane [--dir DIR]`: a real etcd + kube-apiserver on loopback with our CRDs,
 * for people and for development. Prints `kubeconfig: <path>` once ready and runs until
 * SIGINT/SIGTERM, then stops everything and removes what it created.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ControlPlane } from "./controlplane.ts";

const DEFAULT_DIR = fileURLToPath(new URL("../../.cache/controlplane", import.meta.url));

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { dir: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) {
    console.log("usage: deno task controlplane [--dir DIR]   (kubeconfig goes to DIR/kubeconfig)");
    return 0;
  }
  const log = (line: string) => console.error(`controlplane: ${line}`);
  const started = performance.now();
  const stopRequested = Promise.withResolvers<string>();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => stopRequested.resolve(signal));
  }
  const cp = await ControlPlane.start({ dir: resolve(values.dir ?? DEFAULT_DIR), log });
  log(`ready in ${((performance.now() - started) / 1000).toFixed(1)} s at ${cp.server}`);
  log(`state (etcd data, certificates, logs) in ${cp.stateDir}`);
  console.log(`kubeconfig: ${cp.kubeconfigPath}`);
  log("press Ctrl-C to stop and remove everything");
  const signal = await stopRequested.promise;
  log(`${signal}: stopping`);
  await cp.stop();
  log("stopped; nothing left behind");
  return 0;
}

if (import.meta.main) Deno.exit(await main());
