import assert from "node:assert/strict";
import { pluginCommand } from "./launch.ts";
import { pluginPermissions, referencedFiles } from "./permissions.ts";
import { wrapperScript } from "./install.ts";
import { probePermissions } from "../tests/permission_probe.ts";

/** What the plugin is tried with: everything but reading `allowed` and one variable is refused. */
function probe(permissions: readonly string[], allowed: string) {
  return probePermissions(
    permissions,
    `
  spawn: () => new Deno.Command("/bin/true").output(),
  write: () => Deno.writeTextFile(${JSON.stringify(allowed)}, "x"),
  readOther: () => Deno.readTextFile("/etc/hostname"),
  envOther: () => Deno.env.get("PATH"),
  ffi: () => Deno.dlopen("libc.so.6", {}),
  sys: () => Deno.hostname(),
  readAllowed: () => Deno.readTextFile(${JSON.stringify(allowed)}),
  envAllowed: () => Deno.env.get("KUBECONFIG"),
`,
  );
}

Deno.test("the plugin's permission set reads only the files it is given: no writes, no runs", async () => {
  const file = await Deno.makeTempFile({ prefix: "purelb-kubeconfig-" });
  try {
    await Deno.writeTextFile(file, "kubeconfig");
    assert.deepEqual(await probe(pluginPermissions([file]), file), {
      spawn: "NotCapable",
      write: "NotCapable",
      readOther: "NotCapable",
      envOther: "NotCapable",
      ffi: "NotCapable",
      sys: "NotCapable",
      readAllowed: "allowed",
      envAllowed: "allowed",
    });
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("the files a kubeconfig names are granted too, relative to the kubeconfig", () => {
  const text = `
clusters: [{name: c, cluster: {server: "https://k", certificate-authority: /etc/k/ca.crt}}]
users:
- {name: u, user: {client-certificate: certs/me.crt, client-key: certs/me.key}}
- {name: t, user: {tokenFile: /run/token}}
`;
  assert.deepEqual(referencedFiles(text, "/home/me/.kube/config"), [
    "/etc/k/ca.crt",
    "/home/me/.kube/certs/me.crt",
    "/home/me/.kube/certs/me.key",
    "/run/token",
  ]);
  assert.deepEqual(referencedFiles("[", "/k"), []);
});

Deno.test("the launcher grants the kubeconfig, its files and the -f files, nothing else", () => {
  const args = ["validate", "-f", "groups.yaml", "--kubeconfig", "/k/config"];
  const command = pluginCommand(
    args,
    { HOME: "/home/me" },
    (path) => path === "/k/config" ? "users: [{name: u, user: {tokenFile: tok}}]" : undefined,
  );
  const read = command.find((a) => a.startsWith("--allow-read="));
  assert.equal(
    read,
    "--allow-read=/var/run/secrets/kubernetes.io/serviceaccount,/k/config,/k/tok,groups.yaml",
  );
  assert.ok(command.at(-args.length - 1)?.endsWith("/kubectl/main.ts"));
  assert.deepEqual(command.slice(-args.length), args);
  for (const flag of ["--deny-write", "--deny-run", "--deny-ffi", "--deny-sys"]) {
    assert.ok(command.includes(flag), flag);
  }
});

Deno.test("the installed wrapper runs this checkout's launcher with the pinned Deno", () => {
  const script = wrapperScript("/src/it's here");
  assert.match(script, /^#!\/bin\/sh\n/);
  assert.match(
    script,
    /exec npx -y deno@2\.8\.3 run .*'\/src\/it'"'"'s here\/kubectl\/launch\.ts' "\$@"\n$/,
  );
});
