import assert from "node:assert/strict";
import { agentPermissions, allocatorPermissions } from "./permissions.ts";

/** Runs a probe under `permissions` and returns what each attempt did. */
async function probe(permissions: readonly string[]): Promise<Record<string, string>> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `
const attempts: Record<string, () => Promise<unknown> | unknown> = {
  spawn: () => new Deno.Command("/bin/true").output(),
  write: () => Deno.writeTextFile("/tmp/purelb-permission-probe", "x"),
  readOther: () => Deno.readTextFile("/etc/hostname"),
  envOther: () => Deno.env.get("PATH"),
  ffi: () => Deno.dlopen("libc.so.6", {}),
  envAllowed: () => Deno.env.get("PURELB_NAMESPACE"),
};
const results: Record<string, string> = {};
for (const [name, attempt] of Object.entries(attempts)) {
  try {
    await attempt();
    results[name] = "allowed";
  } catch (error) {
    results[name] = error instanceof Error ? error.name : String(error);
  }
}
console.log(JSON.stringify(results));
`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", ...permissions, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(script);
  }
}

Deno.test("the allocator's permission set forbids spawning, writing, other files and env", async () => {
  const results = await probe(allocatorPermissions("/tmp/some-kubeconfig"));
  assert.deepEqual(results, {
    spawn: "NotCapable",
    write: "NotCapable",
    readOther: "NotCapable",
    envOther: "NotCapable",
    ffi: "NotCapable",
    envAllowed: "allowed",
  });
});

Deno.test("the allocator's permission set names exactly the kubeconfig it is given", () => {
  const withFile = allocatorPermissions("/etc/purelb/kubeconfig");
  const read = withFile.find((f) => f.startsWith("--allow-read="));
  assert.equal(
    read,
    "--allow-read=/var/run/secrets/kubernetes.io/serviceaccount,/etc/purelb/kubeconfig",
  );
  assert.ok(!allocatorPermissions(undefined).some((f) => f.includes("kubeconfig")));
  for (const flag of ["--deny-run", "--deny-write", "--deny-ffi"]) {
    assert.ok(withFile.includes(flag));
  }
});

Deno.test("only the allocator may read the Netbox token", () => {
  const allowedEnv = (flags: readonly string[]) =>
    (flags.find((f) => f.startsWith("--allow-env="))?.slice("--allow-env=".length) ?? "").split(
      ",",
    );
  assert.ok(allowedEnv(allocatorPermissions(undefined)).includes("NETBOX_USER_TOKEN"));
  assert.ok(!allowedEnv(agentPermissions(undefined)).includes("NETBOX_USER_TOKEN"));
});
