/**
 * `deno task test [-- deno test args]`: sets up what the tests need (control plane binaries,
 * iproute2 when root), starts one control plane for the run, runs `deno test`, stops the
 * control plane, and ends with a plain `N passed, M failed` line.
 *
 * @module
 */

import { ControlPlane } from "./controlplane/controlplane.ts";
import { ensureBinaries } from "./controlplane/binaries.ts";
import { TEST_KUBECONFIG_ENV } from "./cluster.ts";
import { ensureSystemPackages } from "./system.ts";

const log = (line: string) => console.error(`test-run: ${line}`);

/** Counts from deno test's closing line, e.g. `ok | 12 passed (3 steps) | 0 failed | 1 ignored`. */
export function parseDenoTestSummary(
  output: string,
): { passed: number; failed: number } | undefined {
  // deno-lint-ignore no-control-regex -- strips ANSI colour codes
  const plain = output.replace(/\x1b\[[0-9;]*m/g, "");
  const matches = [
    ...plain.matchAll(/^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/gm),
  ];
  const last = matches.at(-1);
  if (!last) return undefined;
  return { passed: Number(last[1]), failed: Number(last[2]) };
}

async function main(): Promise<number> {
  const started = performance.now();
  await ensureSystemPackages(log);
  const binaries = await ensureBinaries({ log });
  const controlPlane = await ControlPlane.start({ binaries, log });
  log(`control plane ready at ${controlPlane.server}`);
  const stop = () => controlPlane.killSync();
  globalThis.addEventListener("unload", stop);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      stop();
      Deno.exit(130);
    });
  }

  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", ...Deno.args.filter((arg) => arg !== "--")],
    env: { [TEST_KUBECONFIG_ENV]: controlPlane.kubeconfigPath },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const decoder = new TextDecoder();
  let output = "";
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    output += decoder.decode(chunk, { stream: true });
    if (output.length > 1_000_000) output = output.slice(-100_000);
  }
  const status = await child.status;
  await controlPlane.stop();
  globalThis.removeEventListener("unload", stop);

  const summary = parseDenoTestSummary(output);
  log(`finished in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  if (!summary) {
    console.log("0 passed, 1 failed");
    log("deno test printed no summary line");
    return status.code === 0 ? 1 : status.code;
  }
  console.log(`${summary.passed} passed, ${summary.failed} failed`);
  return status.code;
}

if (import.meta.main) Deno.exit(await main());
