/**
 * What the machine must have for the network tests, and how tests that need root behave
 * where there is none: skipped with a clear message, except under `CI=true`, where such a
 * skip is a failure.
 *
 * @module
 */

/** Debian packages the network tests use, by the command each provides. */
const PACKAGES_BY_COMMAND: Readonly<Record<string, string>> = {
  ip: "iproute2",
  tcpdump: "tcpdump",
  ping: "iputils-ping",
  arping: "iputils-arping",
  na6: "ipv6toolkit",
  sysctl: "procps",
  bird: "bird2",
  birdc: "bird2",
  vtysh: "frr",
};

/** True when this process runs as root (network namespaces need it). */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** Where a command lives on PATH, or undefined. */
export async function whichCommand(command: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const path = `${dir}/${command}`;
    try {
      const info = await Deno.stat(path);
      if (info.isFile && info.mode !== null && (info.mode & 0o111) !== 0) return path;
    } catch { /* not here */ }
  }
  return undefined;
}

/** As root, installs the Debian packages of any missing command the tests use. */
export async function ensureSystemPackages(log: (line: string) => void): Promise<void> {
  if (!isRoot()) {
    log("not root: network namespace tests will be skipped (they fail under CI=true)");
    return;
  }
  const missing: string[] = [];
  for (const [command, pkg] of Object.entries(PACKAGES_BY_COMMAND)) {
    if (!missing.includes(pkg) && !(await whichCommand(command))) missing.push(pkg);
  }
  if (missing.length === 0) return;
  log(`installing ${missing.join(", ")} with apt-get`);
  for (const args of [["update"], ["install", "-y", "--no-install-recommends", ...missing]]) {
    const out = await new Deno.Command("apt-get", {
      args,
      env: { DEBIAN_FRONTEND: "noninteractive" },
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`apt-get ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
}

/**
 * Options for `Deno.test` of a test that needs root: ignored without root, except under
 * `CI=true`, where the test runs and fails with the reason.
 */
export function rootTestOptions(): { ignore: boolean } {
  return { ignore: !isRoot() && Deno.env.get("CI") !== "true" };
}

/** Throws with a clear message when root is missing (the CI path of {@linkcode rootTestOptions}). */
export function assertRoot(): void {
  if (!isRoot()) throw new Error("this test needs root (network namespaces); run it as root");
}
