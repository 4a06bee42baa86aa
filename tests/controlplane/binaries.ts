/**
 * Finds or builds the control plane binaries for tests: etcd 3.5 (from Debian's trixie package)
 * and kube-apiserver + kubectl (built with Go from the published `k8s.io/kubernetes` module).
 *
 * Order of preference: `KUBEBUILDER_ASSETS` (prebuilt binaries, as setup-envtest provides),
 * then the cache under `.cache/bin/` keyed by version, then a fresh build into that cache.
 * {@linkcode ensureHelm} builds `helm` the same way for the chart tests.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { whichCommand } from "../system.ts";
import { isRecord } from "../../json/mod.ts";
import {
  runSetupCommand,
  runSetupCommandChecked,
  type SetupCommandResult,
} from "../setup_command.ts";

/** The Kubernetes release the test control plane is built from. */
export const KUBERNETES_VERSION = "v1.34.4";
/** The Debian package (trixie) that provides etcd 3.5. */
export const ETCD_DEB_PACKAGE = "etcd-server";

/** Absolute paths of the binaries a control plane needs. */
export interface ControlPlaneBinaries {
  readonly kubeApiserver: string;
  readonly etcd: string;
  /** kubectl, for people and for `--dry-run=server` tests; built alongside kube-apiserver. */
  readonly kubectl: string;
}

/** Raised when a binary cannot be found or built; the message says which step failed and why. */
export class BinaryBuildError extends Error {
  override name = "BinaryBuildError";
}

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The folder (gitignored) where built binaries are kept between runs. */
export function binaryCacheDir(): string {
  return Deno.env.get("PURELB_BIN_CACHE") ?? join(REPO_ROOT, ".cache", "bin");
}

/**
 * Returns paths to working binaries, building what is missing. Slow the first time
 * (Go build of kube-apiserver, several minutes); instant once cached.
 *
 * @example
 * ```ts
 * const bins = await ensureBinaries({ log: console.error });
 * console.log(bins.kubeApiserver);
 * ```
 */
export async function ensureBinaries(
  opts: { readonly log?: (line: string) => void } = {},
): Promise<ControlPlaneBinaries> {
  const log = opts.log ?? (() => {});
  const assets = Deno.env.get("KUBEBUILDER_ASSETS");
  if (assets) {
    const fromAssets = {
      kubeApiserver: join(assets, "kube-apiserver"),
      etcd: join(assets, "etcd"),
      kubectl: join(assets, "kubectl"),
    };
    if (await isFile(fromAssets.kubeApiserver) && await isFile(fromAssets.etcd)) {
      log(`using prebuilt binaries from KUBEBUILDER_ASSETS=${assets}`);
      return {
        ...fromAssets,
        kubectl: await isFile(fromAssets.kubectl)
          ? fromAssets.kubectl
          : (await ensureKubernetesBinaries(log)).kubectl,
      };
    }
    log(`KUBEBUILDER_ASSETS=${assets} lacks kube-apiserver or etcd; using the build cache`);
  }
  const etcd = await ensureEtcd(log);
  const k8s = await ensureKubernetesBinaries(log);
  return { etcd, ...k8s };
}

/** The Helm release built for the chart tests (`deploy/helm/purelb`). */
export const HELM_VERSION = "v3.21.4";

/** Where {@linkcode ensureHelm} keeps the helm it builds. */
export function helmCachePath(): string {
  return join(binaryCacheDir(), `helm-${HELM_VERSION}`, "helm");
}

/**
 * Why the Helm tests cannot run on this machine, or undefined when they can (helm given with
 * PURELB_HELM, cached, or Go present to build it). Under CI=true they always run (and fail loudly).
 */
export async function helmUnavailable(): Promise<string | undefined> {
  if (Deno.env.get("CI") === "true" || Deno.env.get("PURELB_HELM")) return undefined;
  try {
    if ((await Deno.stat(helmCachePath())).isFile) return undefined;
  } catch { /* not built yet */ }
  if (await whichCommand("go")) return undefined;
  return "no Go on PATH to build helm, and PURELB_HELM is not set";
}

/**
 * Returns the path of a `helm` binary: `PURELB_HELM` if set (a prebuilt helm), else
 * {@linkcode HELM_VERSION} built with Go from the Go module proxy into the cache
 * (`.cache/bin/helm-<version>/helm`) the first time (one to three minutes). If the Go checksum
 * database cannot be reached, retries with it turned off for this build only, and says so.
 *
 * @example
 * ```ts
 * const helm = await ensureHelm({ log: console.error });
 * ```
 */
export async function ensureHelm(
  opts: { readonly log?: (line: string) => void } = {},
): Promise<string> {
  const log = opts.log ?? (() => {});
  const prebuilt = Deno.env.get("PURELB_HELM");
  if (prebuilt) {
    if (await isFile(prebuilt)) return prebuilt;
    throw new BinaryBuildError(`PURELB_HELM=${prebuilt} is not a file`);
  }
  const helm = helmCachePath();
  const dir = dirname(helm);
  if (await isFile(helm)) return helm;

  log(`building helm ${HELM_VERSION} with Go (first run only)`);
  const started = performance.now();
  await Deno.mkdir(dir, { recursive: true });
  const cmd = [
    "go",
    "install",
    "-trimpath",
    "-ldflags",
    `-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}`,
    `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`,
  ];
  // GOFLAGS=-mod=mod from the environment would make `go install pkg@version` refuse to run.
  const env = { GOBIN: dir, CGO_ENABLED: "0", GOFLAGS: "" };
  const first = await run(cmd, { cwd: dir, env });
  if (first.code !== 0) {
    if (!/sum\.golang\.org|checksum database|verifying/i.test(first.stderr)) {
      throw new BinaryBuildError(
        `could not build helm: \`${cmd.join(" ")}\` exited ${first.code}:\n${tail(first.stderr)}`,
      );
    }
    log(
      "the Go checksum database is unreachable: building helm with GOSUMDB=off for this build only",
    );
    await runChecked(
      cmd,
      { cwd: dir, env: { ...env, GOSUMDB: "off" } },
      `build helm ${HELM_VERSION}`,
    );
  }
  if (!(await isFile(helm))) throw new BinaryBuildError(`go install left no binary at ${helm}`);
  log(`helm built in ${((performance.now() - started) / 1000).toFixed(0)} s into ${dir}`);
  return helm;
}

async function ensureKubernetesBinaries(
  log: (line: string) => void,
): Promise<{ kubeApiserver: string; kubectl: string }> {
  const dir = join(binaryCacheDir(), `kubernetes-${KUBERNETES_VERSION}`);
  const kubeApiserver = join(dir, "kube-apiserver");
  const kubectl = join(dir, "kubectl");
  if (await isFile(kubeApiserver) && await isFile(kubectl)) return { kubeApiserver, kubectl };

  log(`building kube-apiserver and kubectl ${KUBERNETES_VERSION} with Go (first run only)`);
  const started = performance.now();
  const work = join(binaryCacheDir(), `kubernetes-${KUBERNETES_VERSION}-build`);
  await Deno.mkdir(work, { recursive: true });
  const goEnv = { GOFLAGS: "-mod=mod" };

  const stagingModules = await stagingModulesOf(work, goEnv);
  await Deno.writeTextFile(join(work, "go.mod"), wrapperGoMod(stagingModules));
  await Deno.writeTextFile(join(work, "tools.go"), TOOLS_GO);

  const sumdbEnv = await chooseChecksumDatabase(work, goEnv, log);
  const minor = KUBERNETES_VERSION.split(".")[1] ?? "";
  const versionFlags = [
    `-X k8s.io/component-base/version.gitVersion=${KUBERNETES_VERSION}`,
    "-X k8s.io/component-base/version.gitMajor=1",
    `-X k8s.io/component-base/version.gitMinor=${minor}`,
    "-X k8s.io/component-base/version.gitTreeState=clean",
  ].join(" ");
  await runChecked(
    [
      "go",
      "build",
      "-ldflags",
      `-s -w ${versionFlags}`,
      "-o",
      dir + "/",
      "k8s.io/kubernetes/cmd/kube-apiserver",
      "k8s.io/kubernetes/cmd/kubectl",
    ],
    { cwd: work, env: { ...goEnv, ...sumdbEnv } },
    "build kube-apiserver and kubectl",
  );
  log(`built in ${((performance.now() - started) / 1000).toFixed(0)} s into ${dir}`);
  return { kubeApiserver, kubectl };
}

/** Reads the `replace k8s.io/x => ./staging/...` lines of the kubernetes go.mod. */
async function stagingModulesOf(
  work: string,
  env: Record<string, string>,
): Promise<string[]> {
  const out = await runChecked(
    ["go", "mod", "download", "-json", `k8s.io/kubernetes@${KUBERNETES_VERSION}`],
    { cwd: work, env },
    "locate the k8s.io/kubernetes go.mod",
  );
  const info: unknown = JSON.parse(out);
  const goModPath = isRecord(info) && typeof info.GoMod === "string" ? info.GoMod : undefined;
  if (!goModPath) throw new BinaryBuildError(`go mod download gave no GoMod path: ${out}`);
  const text = await Deno.readTextFile(goModPath);
  const modules = [...text.matchAll(/^\s*(k8s\.io\/[\w.-]+)\s+=>\s+\.\/staging\//gm)].map((m) =>
    m[1] ?? ""
  ).filter((m) => m !== "");
  if (modules.length === 0) {
    throw new BinaryBuildError(`no staging replace lines found in ${goModPath}`);
  }
  return modules;
}

function wrapperGoMod(stagingModules: readonly string[]): string {
  const stagingVersion = KUBERNETES_VERSION.replace(/^v1\./, "v0.");
  return [
    "module purelb.local/controlplane",
    "",
    "go 1.24.0",
    "",
    `require k8s.io/kubernetes ${KUBERNETES_VERSION}`,
    "",
    ...stagingModules.map((m) => `replace ${m} => ${m} ${stagingVersion}`),
    "",
  ].join("\n");
}

const TOOLS_GO = `//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
`;

/**
 * Resolves the module graph with the checksum database as configured; if it cannot be reached,
 * retries with it turned off for this build only, and says so.
 */
async function chooseChecksumDatabase(
  work: string,
  env: Record<string, string>,
  log: (line: string) => void,
): Promise<Record<string, string>> {
  const tidy = await run(["go", "mod", "tidy"], { cwd: work, env });
  if (tidy.code === 0) return {};
  if (!/sum\.golang\.org|checksum database|verifying/i.test(tidy.stderr)) {
    throw new BinaryBuildError(`go mod tidy failed:\n${tail(tidy.stderr)}`);
  }
  log("the Go checksum database is unreachable: building with GOSUMDB=off for this build only");
  const off = { GOSUMDB: "off" };
  await runChecked(["go", "mod", "tidy"], { cwd: work, env: { ...env, ...off } }, "go mod tidy");
  return off;
}

async function ensureEtcd(log: (line: string) => void): Promise<string> {
  const root = binaryCacheDir();
  for await (const entry of safeReadDir(root)) {
    if (entry.isDirectory && /^etcd-3\.5\./.test(entry.name)) {
      const path = join(root, entry.name, "etcd");
      if (await isFile(path)) return path;
    }
  }
  log("fetching etcd 3.5 from Debian trixie's etcd-server package (first run only)");
  const work = await Deno.makeTempDir({ prefix: "purelb-etcd-" });
  try {
    const sourcesList = join(work, "sources.list");
    await Deno.writeTextFile(
      sourcesList,
      "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] " +
        "http://deb.debian.org/debian trixie main\n",
    );
    for (const sub of ["lists/partial", "cache/archives/partial"]) {
      await Deno.mkdir(join(work, sub), { recursive: true });
    }
    const aptOptions = [
      "-o",
      `Dir::Etc::SourceList=${sourcesList}`,
      "-o",
      "Dir::Etc::SourceParts=/dev/null",
      "-o",
      `Dir::State::Lists=${join(work, "lists")}`,
      "-o",
      `Dir::Cache=${join(work, "cache")}`,
      "-o",
      "Debug::NoLocking=1",
      "-o",
      "APT::Sandbox::User=root",
    ];
    await runChecked(
      ["apt-get", ...aptOptions, "update"],
      { cwd: work },
      "apt-get update (trixie)",
    );
    await runChecked(
      ["apt-get", ...aptOptions, "download", ETCD_DEB_PACKAGE],
      { cwd: work },
      `apt-get download ${ETCD_DEB_PACKAGE}`,
    );
    const deb = await firstMatching(work, /^etcd-server_.*\.deb$/);
    if (!deb) throw new BinaryBuildError(`apt-get download left no ${ETCD_DEB_PACKAGE} .deb`);
    const unpacked = join(work, "x");
    await runChecked(["dpkg", "-x", join(work, deb), unpacked], { cwd: work }, "dpkg -x");
    const binary = join(unpacked, "usr", "bin", "etcd");
    const versionText = await runChecked([binary, "--version"], { cwd: work }, "etcd --version");
    const version = /etcd Version: (\d+\.\d+\.\d+)/.exec(versionText)?.[1];
    if (!version?.startsWith("3.5.")) {
      throw new BinaryBuildError(
        `expected etcd 3.5.x, the package holds ${version ?? versionText}`,
      );
    }
    const dest = join(root, `etcd-${version}`);
    await Deno.mkdir(dest, { recursive: true });
    await Deno.copyFile(binary, join(dest, "etcd"));
    await Deno.chmod(join(dest, "etcd"), 0o755);
    log(`etcd ${version} cached in ${dest}`);
    return join(dest, "etcd");
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

const buildError = (message: string) => new BinaryBuildError(message);

function run(
  cmd: readonly string[],
  opts: { cwd: string; env?: Record<string, string> },
): Promise<SetupCommandResult> {
  return runSetupCommand(cmd, { ...opts, error: buildError });
}

function runChecked(
  cmd: readonly string[],
  opts: { cwd: string; env?: Record<string, string> },
  what: string,
): Promise<string> {
  return runSetupCommandChecked(cmd, { ...opts, error: buildError }, what);
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch {
    return false;
  }
}

async function* safeReadDir(path: string): AsyncIterable<Deno.DirEntry> {
  try {
    yield* Deno.readDir(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

async function firstMatching(dir: string, pattern: RegExp): Promise<string | undefined> {
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && pattern.test(entry.name)) return entry.name;
  }
  return undefined;
}
