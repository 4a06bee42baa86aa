/**
 * A real NetBox for tests: NetBox from PyPI (pinned, {@linkcode NETBOX_VERSION}) in a venv, with
 * PostgreSQL and Redis from Debian, all on 127.0.0.1 and started by this process.
 *
 * Set-up (first run only, about 9 minutes on 2 cores, most of it NetBox's migrations): the
 * Debian packages (`postgresql`, `redis-server`, `gcc`, `libpq-dev`) with apt-get when a program
 * is missing, a venv with a Python of 3.12 or later (`PURELB_PYTHON`, pyenv's, or on PATH),
 * `pip install netbox==<version>`, a PostgreSQL cluster (initdb), `netbox migrate`, a superuser
 * and one v1 and one v2 API token. Everything is kept under {@linkcode netboxCacheDir}, keyed
 * by the NetBox version, outside the repository so that clones on one machine share it; with
 * the database kept, a start takes about 10 s.
 *
 * Tests read what {@linkcode RealNetbox.env} exported through {@linkcode realNetboxFromEnv}.
 *
 * @module
 */

import { join } from "node:path";
import { freePort, waitFor } from "../wait.ts";
import { isRoot, whichCommand } from "../system.ts";
import {
  pathExists as exists,
  runSetupCommand,
  runSetupCommandChecked,
  type SetupCommandResult,
} from "../setup_command.ts";

/** The NetBox release the tests run against. */
export const NETBOX_VERSION = "4.7.3";
/** Environment variable through which the test runner hands the NetBox to test files. */
export const TEST_NETBOX_ENV = "PURELB_TEST_NETBOX";
/** Set by the runner instead, when NetBox could not be set up: why. */
export const TEST_NETBOX_ERROR_ENV = "PURELB_TEST_NETBOX_ERROR";

/** Debian packages NetBox needs, by a file each provides. */
const PACKAGES: readonly (readonly [string, string])[] = [
  ["/usr/bin/redis-server", "redis-server"],
  ["/usr/bin/gcc", "gcc"],
  ["/usr/include/postgresql/libpq-fe.h", "libpq-dev"],
  ["/usr/lib/postgresql", "postgresql"],
];

/** How tests reach the NetBox: its root URL and two tokens for the same superuser. */
export interface RealNetboxAccess {
  /** Root URL with a trailing slash, e.g. `http://127.0.0.1:41234/`. */
  readonly url: string;
  /** A v1 token (40 characters), sent as `Token <token>`. */
  readonly tokenV1: string;
  /** A v2 token (`nbt_<key>.<secret>`), sent as `Bearer <token>`. */
  readonly tokenV2: string;
}

/** Raised when a set-up step fails; the message names the step and quotes its output. */
export class NetboxSetupError extends Error {
  override name = "NetboxSetupError";
}

/** Where the venv and the state are kept: `PURELB_NETBOX_CACHE`, else the XDG cache. */
export function netboxCacheDir(): string {
  const explicit = Deno.env.get("PURELB_NETBOX_CACHE");
  if (explicit) return explicit;
  const base = Deno.env.get("XDG_CACHE_HOME") ?? join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(base, "purelb-deno", `netbox-${NETBOX_VERSION}`);
}

/**
 * Where PostgreSQL keeps the database. PostgreSQL does not run as root, so as root the data
 * lives where its own user can reach it (not under root's home).
 */
function databaseDir(): string {
  const explicit = Deno.env.get("PURELB_NETBOX_CACHE");
  if (explicit) return join(explicit, "pgdata");
  return isRoot()
    ? `/var/lib/purelb-deno/netbox-${NETBOX_VERSION}/pgdata`
    : join(netboxCacheDir(), "pgdata");
}

interface SetupState {
  readonly version: string;
  readonly tokenV1: string;
  readonly tokenV2: string;
}

interface Child {
  readonly name: string;
  readonly process: Deno.ChildProcess;
}

/**
 * A running NetBox (gunicorn), its PostgreSQL and its Redis, stopped together.
 *
 * @example
 * ```ts
 * const netbox = await RealNetbox.start({ log: console.error });
 * try {
 *   console.log(netbox.access.url);
 * } finally {
 *   await netbox.stop();
 * }
 * ```
 */
export class RealNetbox {
  /** URL and tokens. */
  readonly access: RealNetboxAccess;
  readonly #children: readonly Child[];

  private constructor(access: RealNetboxAccess, children: readonly Child[]) {
    this.access = access;
    this.#children = children;
  }

  /** The environment variable for test files ({@linkcode realNetboxFromEnv} reads it). */
  get env(): Record<string, string> {
    return { [TEST_NETBOX_ENV]: JSON.stringify(this.access) };
  }

  /** Installs what is missing, then starts PostgreSQL, Redis and NetBox; resolves once it answers. */
  static async start(
    options: { readonly log?: (line: string) => void; readonly workers?: number } = {},
  ): Promise<RealNetbox> {
    const log = options.log ?? (() => {});
    const started = performance.now();
    const cache = netboxCacheDir();
    await Deno.mkdir(cache, { recursive: true });
    await ensurePackages(log);
    const venv = await ensureVenv(cache, log);
    const children: Child[] = [];
    try {
      const pgPort = freePort();
      children.push(await startPostgres(databaseDir(), pgPort, log));
      const redisPort = freePort();
      children.push(startRedis(redisPort));
      const root = join(cache, "root");
      await writeConfiguration(root, pgPort, redisPort);
      const env = { NETBOX_ROOT: root, DJANGO_SETTINGS_MODULE: "netbox.settings" };
      const state = await ensureMigrated(cache, venv, env, log);
      const port = freePort();
      children.push(startGunicorn(venv, env, port, options.workers ?? 4));
      const url = `http://127.0.0.1:${port}/`;
      const access = { url, tokenV1: state.tokenV1, tokenV2: state.tokenV2 };
      await waitUntilAnswering(access, children);
      log(`NetBox ${NETBOX_VERSION} ready at ${url} in ${seconds(started)}`);
      return new RealNetbox(access, children);
    } catch (error) {
      await stopChildren(children);
      throw error;
    }
  }

  /** Stops NetBox, Redis and PostgreSQL (the database stays for the next run). */
  async stop(): Promise<void> {
    await stopChildren(this.#children);
  }

  /** For an `unload` handler: kills everything at once. */
  killSync(): void {
    for (const child of this.#children) {
      const descendants = childPidsSync(child.process.pid);
      for (const pid of [child.process.pid, ...descendants]) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch { /* already gone */ }
      }
    }
  }
}

/**
 * The NetBox the test runner started, or why there is none. Outside CI a test without one is
 * skipped; under `CI=true` it fails with the reason.
 */
export function realNetboxFromEnv():
  | { readonly kind: "ready"; readonly access: RealNetboxAccess }
  | { readonly kind: "missing"; readonly reason: string } {
  const text = Deno.env.get(TEST_NETBOX_ENV);
  if (text) {
    const parsed: unknown = JSON.parse(text);
    if (
      typeof parsed === "object" && parsed !== null && "url" in parsed && "tokenV1" in parsed &&
      "tokenV2" in parsed && typeof parsed.url === "string" &&
      typeof parsed.tokenV1 === "string" && typeof parsed.tokenV2 === "string"
    ) {
      return {
        kind: "ready",
        access: { url: parsed.url, tokenV1: parsed.tokenV1, tokenV2: parsed.tokenV2 },
      };
    }
    return { kind: "missing", reason: `${TEST_NETBOX_ENV} is not what the runner writes` };
  }
  return {
    kind: "missing",
    reason: Deno.env.get(TEST_NETBOX_ERROR_ENV) ??
      `${TEST_NETBOX_ENV} is not set: run the tests with deno task test`,
  };
}

/**
 * `Deno.test` options for a test that needs the real NetBox: ignored (with the reason logged)
 * when there is none, except under `CI=true`, where it runs and fails.
 */
export function realNetboxTestOptions(): { ignore: boolean } {
  const found = realNetboxFromEnv();
  if (found.kind === "ready" || Deno.env.get("CI") === "true") return { ignore: false };
  console.error(`skipping real NetBox tests: ${found.reason}`);
  return { ignore: true };
}

/** The real NetBox's access, or a thrown error with the reason (the CI path). */
export function requireRealNetbox(): RealNetboxAccess {
  const found = realNetboxFromEnv();
  if (found.kind === "ready") return found.access;
  throw new NetboxSetupError(`no real NetBox for this test: ${found.reason}`);
}

async function ensurePackages(log: (line: string) => void): Promise<void> {
  const missing: string[] = [];
  for (const [path, pkg] of PACKAGES) if (!(await exists(path))) missing.push(pkg);
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new NetboxSetupError(`missing Debian packages ${missing.join(", ")} (and not root)`);
  }
  log(`installing ${missing.join(", ")} with apt-get`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  await runChecked(["apt-get", "update"], { env }, "apt-get update");
  await runChecked(
    ["apt-get", "install", "-y", "--no-install-recommends", ...missing],
    { env },
    `apt-get install ${missing.join(" ")}`,
  );
}

/** A Python of 3.12 or later: `PURELB_PYTHON`, pyenv's versions, or python3.1x on PATH. */
async function findPython(): Promise<string> {
  const explicit = Deno.env.get("PURELB_PYTHON");
  if (explicit) return explicit;
  const candidates: string[] = [];
  const pyenv = join(Deno.env.get("PYENV_ROOT") ?? "/root/.pyenv", "versions");
  try {
    for await (const entry of Deno.readDir(pyenv)) {
      if (/^3\.(1[2-9])\.\d+$/.test(entry.name)) {
        candidates.push(join(pyenv, entry.name, "bin", "python"));
      }
    }
  } catch { /* no pyenv */ }
  candidates.sort();
  for (const name of ["python3.12", "python3.13", "python3.14", "python3"]) {
    const found = await whichCommand(name);
    if (found) candidates.push(found);
  }
  for (const python of candidates) {
    const out = await run([python, "-c", "import sys; print(sys.version_info >= (3, 12))"], {});
    if (out.code === 0 && out.stdout.trim() === "True") return python;
  }
  throw new NetboxSetupError(
    `NetBox ${NETBOX_VERSION} needs Python 3.12 or later; none found (set PURELB_PYTHON)`,
  );
}

async function ensureVenv(cache: string, log: (line: string) => void): Promise<string> {
  const venv = join(cache, "venv");
  const marker = join(venv, `.purelb-netbox-${NETBOX_VERSION}`);
  if (await exists(marker)) return venv;
  const python = await findPython();
  log(`installing NetBox ${NETBOX_VERSION} from PyPI into ${venv} with ${python} (first run only)`);
  const started = performance.now();
  await runChecked([python, "-m", "venv", venv], {}, "create the NetBox venv");
  await runChecked(
    [join(venv, "bin", "pip"), "install", "--quiet", `netbox==${NETBOX_VERSION}`],
    {},
    `pip install netbox==${NETBOX_VERSION}`,
  );
  await Deno.writeTextFile(marker, `${new Date().toISOString()}\n`);
  log(`NetBox installed in ${seconds(started)}`);
  return venv;
}

async function postgresBin(): Promise<string> {
  const root = "/usr/lib/postgresql";
  const versions: number[] = [];
  for await (const entry of Deno.readDir(root)) {
    if (/^\d+$/.test(entry.name)) versions.push(Number(entry.name));
  }
  const newest = versions.sort((a, b) => b - a)[0];
  if (newest === undefined) throw new NetboxSetupError(`no PostgreSQL under ${root}`);
  return join(root, String(newest), "bin");
}

/** As root, runs a PostgreSQL program as the `postgres` user (PostgreSQL refuses root). */
function asPostgres(cmd: readonly string[]): string[] {
  return isRoot() ? ["runuser", "-u", "postgres", "--", ...cmd] : [...cmd];
}

async function startPostgres(dir: string, port: number, log: (line: string) => void) {
  const bin = await postgresBin();
  if (!(await exists(join(dir, "PG_VERSION")))) {
    log(`creating a PostgreSQL cluster in ${dir}`);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.mkdir(dir, { recursive: true });
    if (isRoot()) await runChecked(["chown", "-R", "postgres:postgres", dir], {}, "chown pgdata");
    await runChecked(
      asPostgres([join(bin, "initdb"), "-D", dir, "-U", "netbox", "--auth=trust", "-E", "UTF8"]),
      {},
      "initdb",
    );
  }
  // A postmaster.pid left by a killed run is recognised as stale by PostgreSQL itself; one of a
  // running instance makes this start fail (one test run per database at a time).
  const process = command(
    asPostgres([
      join(bin, "postgres"),
      "-D",
      dir,
      "-p",
      String(port),
      "-k",
      dir,
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
    ]),
    {},
  );
  const child = { name: "postgres", process };
  await waitFor(
    async () => {
      const ready = await run([join(bin, "pg_isready"), "-h", "127.0.0.1", "-p", String(port)], {});
      return ready.code === 0;
    },
    60_000,
    `PostgreSQL on 127.0.0.1:${port}`,
    200,
  );
  const psql = [join(bin, "psql"), "-h", "127.0.0.1", "-p", String(port), "-U", "netbox"];
  const listed = await runChecked(
    [...psql, "-d", "postgres", "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'netbox'"],
    {},
    "look for the netbox database",
  );
  if (listed.trim() !== "1") {
    await runChecked([...psql, "-d", "postgres", "-c", "CREATE DATABASE netbox"], {}, "createdb");
  }
  return child;
}

function startRedis(port: number): Child {
  const process = command([
    "redis-server",
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
  ], {});
  return { name: "redis", process };
}

async function writeConfiguration(root: string, pgPort: number, redisPort: number) {
  await Deno.mkdir(join(root, "conf"), { recursive: true });
  await Deno.mkdir(join(root, "media"), { recursive: true });
  const secretFile = join(root, "secret-key");
  let secret: string;
  try {
    secret = (await Deno.readTextFile(secretFile)).trim();
  } catch {
    secret = randomText(60);
    await Deno.writeTextFile(secretFile, secret);
  }
  const redis = (db: number) =>
    `{"HOST": "127.0.0.1", "PORT": ${redisPort}, "PASSWORD": "", "DATABASE": ${db}, "SSL": False}`;
  await Deno.writeTextFile(
    join(root, "conf", "configuration.py"),
    [
      "# Written by tests/netbox/real.ts for the PureLB tests; rewritten at every start.",
      `ALLOWED_HOSTS = ["127.0.0.1", "localhost", "::1"]`,
      `DATABASE = {"NAME": "netbox", "USER": "netbox", "PASSWORD": "", "HOST": "127.0.0.1", ` +
      `"PORT": ${pgPort}, "CONN_MAX_AGE": 300}`,
      `REDIS = {"tasks": ${redis(0)}, "caching": ${redis(1)}}`,
      `SECRET_KEY = "${secret}"`,
      // The pepper is derived from the secret: the v2 token in the kept database stays valid.
      `API_TOKEN_PEPPERS = {1: "${secret}"}`,
      `MEDIA_ROOT = "${join(root, "media")}"`,
      `CENSUS_REPORTING_ENABLED = False`,
      `RELEASE_CHECK_URL = None`,
      `LOGIN_REQUIRED = True`,
      "",
    ].join("\n"),
  );
}

/** Migrates once per database, and creates the superuser and tokens; returns the tokens. */
async function ensureMigrated(
  cache: string,
  venv: string,
  env: Record<string, string>,
  log: (line: string) => void,
): Promise<SetupState> {
  const stateFile = join(databaseDir(), "..", "purelb-state.json");
  try {
    const state: unknown = JSON.parse(await Deno.readTextFile(stateFile));
    if (isState(state) && state.version === NETBOX_VERSION) return state;
  } catch { /* not set up yet */ }
  const netbox = join(venv, "bin", "netbox");
  log(`running NetBox's migrations (first run only, several minutes)`);
  const started = performance.now();
  await runChecked([netbox, "migrate", "--no-input"], { env, cwd: cache }, "netbox migrate");
  log(`migrated in ${seconds(started)}`);
  const tokenV1 = randomHex(40);
  const secretV2 = randomText(40);
  const script = [
    "from users.models import User, Token",
    "user, _ = User.objects.get_or_create(username='purelb')",
    "user.is_superuser = True",
    "user.set_password('purelb-test-only')",
    "user.save()",
    "Token.objects.filter(user=user).delete()",
    `Token(user=user, version=1, token='${tokenV1}', write_enabled=True).save()`,
    `t2 = Token(user=user, version=2, token='${secretV2}', write_enabled=True)`,
    "t2.save()",
    "print('KEY=' + t2.key)",
  ].join("\n");
  const out = await runChecked(
    [netbox, "shell", "--no-imports", "-c", script],
    { env, cwd: cache },
    "create the NetBox superuser and tokens",
  );
  const key = /KEY=(\w+)/.exec(out)?.[1];
  if (key === undefined) throw new NetboxSetupError(`the token script printed no key: ${out}`);
  const state = { version: NETBOX_VERSION, tokenV1, tokenV2: `nbt_${key}.${secretV2}` };
  await Deno.writeTextFile(stateFile, JSON.stringify(state));
  return state;
}

function isState(value: unknown): value is SetupState {
  return typeof value === "object" && value !== null && "version" in value &&
    "tokenV1" in value && "tokenV2" in value && typeof value.tokenV1 === "string" &&
    typeof value.tokenV2 === "string";
}

function startGunicorn(
  venv: string,
  env: Record<string, string>,
  port: number,
  workers: number,
): Child {
  const process = command([
    join(venv, "bin", "gunicorn"),
    "--bind",
    `127.0.0.1:${port}`,
    "--workers",
    String(workers),
    "--threads",
    "2",
    "--timeout",
    "120",
    "--graceful-timeout",
    "5",
    "--preload",
    "netbox.wsgi",
  ], { env });
  return { name: "netbox", process };
}

async function waitUntilAnswering(access: RealNetboxAccess, children: readonly Child[]) {
  const exited = new Set<string>();
  for (const child of children) child.process.status.then(() => exited.add(child.name));
  await waitFor(
    async () => {
      if (exited.size > 0) {
        throw new NetboxSetupError(`${[...exited].join(", ")} exited during start-up`);
      }
      const response = await fetch(`${access.url}api/status/`, {
        headers: { Authorization: `Token ${access.tokenV1}`, Accept: "application/json" },
        signal: AbortSignal.timeout(10_000),
      });
      await response.body?.cancel();
      return response.status === 200;
    },
    180_000,
    `NetBox at ${access.url}api/status/`,
    250,
  );
}

async function stopChildren(children: readonly Child[]): Promise<void> {
  for (const child of [...children].reverse()) {
    // gunicorn's workers are its children: remembered now, killed if they outlive it.
    const descendants = await childPids(child.process.pid);
    try {
      // SIGQUIT is gunicorn's quick shutdown (and PostgreSQL's immediate one); redis quits too.
      child.process.kill(child.name === "netbox" ? "SIGQUIT" : "SIGTERM");
    } catch { /* already gone */ }
    const timer = setTimeout(() => {
      try {
        child.process.kill("SIGKILL");
      } catch { /* gone */ }
    }, 10_000);
    await child.process.status;
    clearTimeout(timer);
    for (const pid of descendants) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* already gone */ }
    }
  }
}

function childPidsSync(pid: number): number[] {
  const pids: number[] = [];
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const text = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/children`);
        pids.push(...text.split(/\s+/).filter((p) => p !== "").map(Number));
      } catch { /* gone */ }
    }
  } catch { /* gone, or not Linux */ }
  return pids;
}

/** The direct children of a process (Linux /proc), for cleaning up after gunicorn. */
async function childPids(pid: number): Promise<number[]> {
  const pids: number[] = [];
  try {
    for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
      const text = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/children`)
        .catch(() => "");
      pids.push(...text.split(/\s+/).filter((p) => p !== "").map(Number));
    }
  } catch { /* gone, or not Linux */ }
  return pids;
}

function command(cmd: readonly string[], opts: { env?: Record<string, string> }) {
  const [program, ...args] = cmd;
  if (program === undefined) throw new NetboxSetupError("empty command");
  return new Deno.Command(program, {
    args,
    ...(opts.env ? { env: opts.env } : {}),
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

const setupError = (message: string) => new NetboxSetupError(message);

function run(
  cmd: readonly string[],
  opts: { env?: Record<string, string>; cwd?: string },
): Promise<SetupCommandResult> {
  return runSetupCommand(cmd, { ...opts, error: setupError });
}

function runChecked(
  cmd: readonly string[],
  opts: { env?: Record<string, string>; cwd?: string },
  what: string,
): Promise<string> {
  return runSetupCommandChecked(cmd, { ...opts, error: setupError }, what);
}

function randomHex(length: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(Math.ceil(length / 2)));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("").slice(0, length);
}

function randomText(length: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return [...bytes].map((b) => alphabet[b % alphabet.length]).join("");
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(0)} s`;
}
