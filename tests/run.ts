/**
 * `deno task test [-- deno test args]`: sets up what the tests need (control plane binaries,
 * iproute2 when root, a real NetBox from PyPI), starts one control plane and one NetBox for the
 * run, runs `deno test`, stops them, and ends with a plain `N passed, M failed` line.
 *
 * A NetBox that cannot be set up is reported to the tests (`PURELB_TEST_NETBOX_ERROR`): outside
 * CI the tests that need it are skipped, under `CI=true` they fail with the reason.
 * `PURELB_TEST_NETBOX=off` skips the set-up.
 *
 * @module
 */

import { ControlPlane } from "./controlplane/controlplane.ts";
import { ensureBinaries } from "./controlplane/binaries.ts";
import { TEST_KUBECONFIG_ENV } from "./cluster.ts";
import { ensureSystemPackages } from "./system.ts";
import { RealNetbox, TEST_NETBOX_ENV, TEST_NETBOX_ERROR_ENV } from "./netbox/real.ts";

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
  // NetBox's set-up (minutes the first time) runs while the control plane is built and started.
  const netboxStarting = startNetbox();
  const controlPlane = await ensureBinaries({ log })
    .then((binaries) => ControlPlane.start({ binaries, log }))
    .catch(async (error) => {
      const netbox = await netboxStarting;
      if (netbox.kind === "ready") await netbox.netbox.stop();
      throw error;
    });
  log(`control plane ready at ${controlPlane.server}`);
  const netbox = await netboxStarting;
  const stop = () => {
    controlPlane.killSync();
    if (netbox.kind === "ready") netbox.netbox.killSync();
  };
  globalThis.addEventListener("unload", stop);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      stop();
      Deno.exit(130);
    });
  }

  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "--allow-all", ...Deno.args.filter((arg) => arg !== "--")],
    env: {
      [TEST_KUBECONFIG_ENV]: controlPlane.kubeconfigPath,
      ...(netbox.kind === "ready" ? netbox.netbox.env : { [TEST_NETBOX_ERROR_ENV]: netbox.reason }),
    },
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
  if (netbox.kind === "ready") await netbox.netbox.stop();
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

async function startNetbox(): Promise<
  | { readonly kind: "ready"; readonly netbox: RealNetbox }
  | { readonly kind: "missing"; readonly reason: string }
> {
  if (Deno.env.get(TEST_NETBOX_ENV) === "off") {
    return { kind: "missing", reason: `${TEST_NETBOX_ENV}=off` };
  }
  try {
    return { kind: "ready", netbox: await RealNetbox.start({ log: (l) => log(`netbox: ${l}`) }) };
  } catch (error) {
    const reason = `NetBox could not be set up: ${
      error instanceof Error ? error.message : String(error)
    }`;
    log(reason);
    return { kind: "missing", reason };
  }
}

if (import.meta.main) Deno.exit(await main());
