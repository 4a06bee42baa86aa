import assert from "node:assert/strict";
import { join } from "node:path";
import { ensureBinaries } from "./binaries.ts";
import { waitFor } from "../wait.ts";

const REPO_ROOT = new URL("../..", import.meta.url).pathname;

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Processes whose command line mentions `text`. */
async function processesMentioning(text: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const cmdline = await Deno.readTextFile(`/proc/${entry.name}/cmdline`).catch(() => "");
    if (cmdline.includes(text)) found.push(`${entry.name}: ${cmdline.replaceAll("\0", " ")}`);
  }
  return found;
}

Deno.test({
  name: "deno task controlplane as a new user runs it: kubectl works, Ctrl-C leaves nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { kubectl } = await ensureBinaries();
    const dir = await Deno.makeTempDir({ prefix: "purelb-cp-cli-" });
    const kubeconfigDir = join(dir, "cp");
    // setsid: its own process group, so the test can press "Ctrl-C" for the whole group.
    const child = new Deno.Command("setsid", {
      args: [Deno.execPath(), "task", "controlplane", "--dir", kubeconfigDir],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let stdout = "";
    let stderr = "";
    const decoder = new TextDecoder();
    const reading = Promise.all([
      (async () => {
        for await (const c of child.stdout) stdout += decoder.decode(c, { stream: true });
      })(),
      (async () => {
        for await (const c of child.stderr) stderr += decoder.decode(c, { stream: true });
      })(),
    ]);
    try {
      await waitFor(() => /^kubeconfig: (.+)$/m.test(stdout), 120_000, "the kubeconfig line");
      const kubeconfig = /^kubeconfig: (.+)$/m.exec(stdout)?.[1] ?? "";
      assert.equal(kubeconfig, join(kubeconfigDir, "kubeconfig"));
      await waitFor(() => /state .* in (\S+)/.test(stderr), 5_000, "the state dir line");
      const stateDir = /state .* in (\S+)/.exec(stderr)?.[1] ?? "";
      assert.ok(await exists(stateDir));
      assert.notDeepEqual(await processesMentioning(stateDir), []);

      const get = await new Deno.Command(kubectl, {
        args: ["--kubeconfig", kubeconfig, "get", "servicegroups", "-A"],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(get.success, decoder.decode(get.stderr));
      assert.match(decoder.decode(get.stderr) + decoder.decode(get.stdout), /No resources found/);

      const kill = await new Deno.Command("kill", { args: ["-INT", "--", `-${child.pid}`] })
        .output();
      assert.ok(kill.success);
      const status = await child.status;
      await reading;
      assert.equal(status.code, 0, stderr);
      assert.deepEqual(await processesMentioning(stateDir), []);
      assert.equal(await exists(stateDir), false, "state dir removed");
      assert.equal(await exists(kubeconfigDir), false, "kubeconfig dir removed");
    } finally {
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch { /* already gone */ }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
