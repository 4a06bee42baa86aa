import assert from "node:assert/strict";
import { join } from "node:path";
import { agentPermissions, allocatorPermissions, DEFAULT_BGP_DIR } from "./permissions.ts";
import { BIRD_CONFIG_FILE, BIRDC_PATHS } from "../bgp/model.ts";
import { probePermissions } from "../tests/permission_probe.ts";

/** What the default probe tries: spawning, writing, reading and variables it may not. */
const BASIC_ATTEMPTS = `
  spawn: () => new Deno.Command("/bin/true").output(),
  write: () => Deno.writeTextFile("/tmp/purelb-permission-probe", "x"),
  readOther: () => Deno.readTextFile("/etc/hostname"),
  envOther: () => Deno.env.get("PATH"),
  ffi: () => Deno.dlopen("libc.so.6", {}),
  envAllowed: () => Deno.env.get("PURELB_NAMESPACE"),
`;

/** {@linkcode probePermissions}, by default with {@linkcode BASIC_ATTEMPTS}. */
function probe(permissions: readonly string[], attempts = BASIC_ATTEMPTS) {
  return probePermissions(permissions, attempts);
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

/** The values of one `--allow-X=a,b` flag (empty when absent). */
function allowed(flags: readonly string[], name: string): string[] {
  const prefix = `--allow-${name}=`;
  return flags.find((f) => f.startsWith(prefix))?.slice(prefix.length).split(",") ?? [];
}

Deno.test("the agent may run birdc and write in its BGP folder, and nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "purelb-permission-bgp-" });
  try {
    const bgpDir = join(dir, "bgp");
    await Deno.mkdir(bgpDir);
    // A stand-in birdc (the real one needs BIRD running): what matters is who may start it.
    const birdc = join(dir, "birdc");
    await Deno.writeTextFile(birdc, "#!/bin/sh\necho birdc ran\n", { mode: 0o755 });
    const permissions = agentPermissions(undefined, { bgpDir, birdc });
    const conf = join(bgpDir, BIRD_CONFIG_FILE);
    const results = await probe(
      permissions,
      `
  runBirdc: async () => {
    const out = await new Deno.Command(${JSON.stringify(birdc)}, { stdout: "piped" }).output();
    if (new TextDecoder().decode(out.stdout).trim() !== "birdc ran") throw new Error("no output");
  },
  writeConfig: () => Deno.writeTextFile(${JSON.stringify(conf)}, "router id 192.0.2.1;"),
  replaceConfig: async () => {
    await Deno.writeTextFile(${JSON.stringify(`${conf}.new`)}, "x");
    await Deno.rename(${JSON.stringify(`${conf}.new`)}, ${JSON.stringify(conf)});
  },
  readConfig: () => Deno.readTextFile(${JSON.stringify(conf)}),
  writeBeside: () => Deno.writeTextFile(${JSON.stringify(join(dir, "beside"))}, "x"),
  writeTmp: () => Deno.writeTextFile("/tmp/purelb-permission-probe", "x"),
  spawnOther: () => new Deno.Command("/bin/true").output(),
  spawnShell: () => new Deno.Command("/bin/sh", { args: ["-c", "true"] }).output(),
  envBgpDir: () => Deno.env.get("PURELB_BGP_DIR"),
  envBirdc: () => Deno.env.get("PURELB_BIRDC"),
  envOther: () => Deno.env.get("PATH"),
`,
    );
    assert.deepEqual(results, {
      runBirdc: "allowed",
      writeConfig: "allowed",
      replaceConfig: "allowed",
      readConfig: "allowed",
      writeBeside: "NotCapable",
      writeTmp: "NotCapable",
      spawnOther: "NotCapable",
      spawnShell: "NotCapable",
      envBgpDir: "allowed",
      envBirdc: "allowed",
      envOther: "NotCapable",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the agent's default permission set: /run/purelb-bgp, birdc where Debian puts it", () => {
  const flags = agentPermissions(undefined);
  assert.equal(DEFAULT_BGP_DIR, "/run/purelb-bgp");
  assert.deepEqual(allowed(flags, "write"), [DEFAULT_BGP_DIR]);
  assert.ok(!flags.includes("--deny-write"));
  const read = allowed(flags, "read");
  assert.ok(read.includes(DEFAULT_BGP_DIR));
  // The agent stats every place birdc may be, and may run the first that exists, if any.
  for (const path of BIRDC_PATHS) assert.ok(read.includes(path), path);
  const present = BIRDC_PATHS.find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  });
  const run = allowed(flags, "run");
  assert.deepEqual(run.filter((path) => BIRDC_PATHS.includes(path)), present ? [present] : []);
  for (const name of ["PURELB_BGP_DIR", "PURELB_BIRDC", "PURELB_BGP_POLL"]) {
    assert.ok(allowed(flags, "env").includes(name), name);
  }
  // A birdc given explicitly replaces the search, and is the one allowed.
  const custom = agentPermissions(undefined, { birdc: "/opt/bird/sbin/birdc", bgpDir: "/x" });
  assert.deepEqual(
    allowed(custom, "run").filter((p) => p.endsWith("birdc")),
    ["/opt/bird/sbin/birdc"],
  );
  assert.deepEqual(allowed(custom, "write"), ["/x"]);
  // The allocator gets none of it.
  const allocator = allocatorPermissions(undefined);
  assert.ok(allocator.includes("--deny-write") && allocator.includes("--deny-run"));
  for (const name of ["PURELB_BGP_DIR", "PURELB_BIRDC", "PURELB_BGP_POLL"]) {
    assert.ok(!allowed(allocator, "env").includes(name), name);
  }
});
