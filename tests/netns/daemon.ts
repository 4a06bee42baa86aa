/**
 * Long-running programs inside a testbed namespace (routing daemons, responders): started in
 * the foreground with `ip netns exec`, registered with the LAN's safety net so an interrupted
 * run kills them, their output kept (the last 64 KiB) for error messages, and stopped by
 * signal with a deadline. Also the temporary directories they keep their files in.
 *
 * The LAN's safety net runs inside this process, and `deno test` ends on Ctrl-C without
 * running signal listeners or unload handlers. So a watchdog outside it backs the net up: a
 * shell started in its own session (`setsid -f`) that waits for this process to end, then
 * kills the daemons and removes the directories still listed in this process's ledger
 * (`/tmp/purelb-testbed-daemons/<pid>`). The namespaces themselves are removed by the next
 * run's `removeOrphanedNamespaces`.
 *
 * Short commands go through `runProcess` (netlink/process.ts) instead; this is only for
 * programs that must keep running while a test works.
 *
 * @module
 */
import { runChecked, testbedIpPath } from "./exec.ts";
import { trackProcess } from "./lan.ts";

/** Output kept per daemon, in characters (the newest). */
const OUTPUT_LIMIT = 64 * 1024;
/** How long {@link Daemon.stop} waits after SIGTERM before it sends SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

/**
 * A program running in a namespace.
 *
 * @example
 * ```ts
 * import { startDaemon } from "./daemon.ts";
 *
 * const sleeper = await startDaemon("plb1a2b3-router", ["sleep", "30"]);
 * await sleeper.stop();
 * ```
 */
export interface Daemon {
  /** Process id of the program (`ip netns exec` replaces itself with it). */
  readonly pid: number;
  /** The program and its arguments. */
  readonly command: readonly string[];
  /** Settles when the program has exited, for whatever reason. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** True once the program has exited. */
  hasExited(): boolean;
  /** What it wrote to stdout and stderr so far (the newest 64 KiB, interleaved). */
  output(): string;
  /** What it wrote to stderr so far (the newest 64 KiB). */
  stderrText(): string;
  /** SIGTERM, then SIGKILL after 10 s; resolves with the exit status. Safe to call twice. */
  stop(): Promise<Deno.CommandStatus>;
  /** SIGKILL; resolves with the exit status. Safe to call twice. */
  kill(): Promise<Deno.CommandStatus>;
}

/**
 * Where each process lists (in a file named by its pid) what its watchdog must clean up
 * should it end first.
 */
export const DAEMON_LEDGER_DIR = "/tmp/purelb-testbed-daemons";
const ledgerPath = `${DAEMON_LEDGER_DIR}/${Deno.pid}`;
/** Lines of the ledger: `pid <pid> <program>` and `dir <path>`. */
const ledgerLines = new Set<string>();
let watchdog: Promise<void> | undefined;

// Waits for the owner to end, then kills each listed pid still running the listed program (a
// recycled pid runs something else) and removes each listed directory.
const WATCHDOG_SCRIPT = `
exec </dev/null >/dev/null 2>&1
owner="$1"; ledger="$2"
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
[ -f "$ledger" ] || exit 0
while read -r kind value program; do
  case "$kind" in
    pid) if tr '\\0' ' ' < "/proc/$value/cmdline" 2>/dev/null | grep -qF -- "$program"; then
           kill -9 "$value" 2>/dev/null
         fi ;;
    dir) rm -rf -- "$value" ;;
  esac
done < "$ledger"
rm -f -- "$ledger"
`;

function writeLedger(): void {
  Deno.writeTextFileSync(ledgerPath, [...ledgerLines].map((line) => `${line}\n`).join(""));
}

/** Starts this process's watchdog once (it ends by itself soon after this process does). */
function ensureWatchdog(): Promise<void> {
  watchdog ??= (async () => {
    await Deno.mkdir(DAEMON_LEDGER_DIR, { recursive: true });
    writeLedger();
    await runChecked([
      "/usr/bin/setsid",
      "-f",
      "/bin/sh",
      "-c",
      WATCHDOG_SCRIPT,
      "purelb-testbed-watchdog",
      String(Deno.pid),
      ledgerPath,
    ]);
  })();
  return watchdog;
}

/** Lists `line` in the ledger; returns the function that takes it off again. */
async function enterInLedger(line: string): Promise<() => void> {
  await ensureWatchdog();
  ledgerLines.add(line);
  writeLedger();
  return () => {
    if (ledgerLines.delete(line)) writeLedger();
  };
}

function keepNewest(text: string): string {
  return text.length > OUTPUT_LIMIT ? text.slice(text.length - OUTPUT_LIMIT) : text;
}

/**
 * Starts `command` (program first) in network namespace `netns`, stdout and stderr captured.
 * Resolves once it is spawned; use {@link Daemon.exited} or a readiness check of your own.
 *
 * @example
 * ```ts
 * import { startDaemon } from "./daemon.ts";
 *
 * const bird = await startDaemon("plb1a2b3-node-a", ["/usr/sbin/bird", "-f", "-c", "/tmp/x/bird.conf"]);
 * try {
 *   // ...
 * } finally {
 *   await bird.stop();
 * }
 * ```
 */
export async function startDaemon(
  netns: string,
  command: readonly string[],
  options: { readonly cwd?: string } = {},
): Promise<Daemon> {
  await ensureWatchdog();
  const child = new Deno.Command(testbedIpPath(), {
    args: ["netns", "exec", netns, ...command],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  }).spawn();
  const forget = trackProcess(child);
  const forgetInLedger = await enterInLedger(`pid ${child.pid} ${command[0] ?? ""}`);
  let output = "";
  let stderr = "";
  const read = async (stream: ReadableStream<Uint8Array>, isStderr: boolean) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      output = keepNewest(output + text);
      if (isStderr) stderr = keepNewest(stderr + text);
    }
  };
  const reading = Promise.all([read(child.stdout, false), read(child.stderr, true)]);
  let exited = false;
  const status = (async () => {
    const result = await child.status;
    exited = true;
    await reading.catch(() => {});
    forget();
    forgetInLedger();
    return result;
  })();
  const signal = (name: Deno.Signal) => {
    if (exited) return;
    try {
      child.kill(name);
    } catch { /* exited meanwhile */ }
  };
  let stopping: Promise<Deno.CommandStatus> | undefined;
  return {
    pid: child.pid,
    command,
    exited: status,
    hasExited: () => exited,
    output: () => output,
    stderrText: () => stderr,
    stop() {
      stopping ??= (async () => {
        signal("SIGTERM");
        const timer = setTimeout(() => signal("SIGKILL"), STOP_TIMEOUT_MS);
        try {
          return await status;
        } finally {
          clearTimeout(timer);
        }
      })();
      return stopping;
    },
    kill() {
      signal("SIGKILL");
      return status;
    },
  };
}

/**
 * A temporary directory for a daemon's config, sockets and pid files, removed by
 * {@link DaemonDir.remove} or, should this process end first, by the watchdog.
 *
 * @example
 * ```ts
 * import { makeDaemonDir } from "./daemon.ts";
 *
 * const dir = await makeDaemonDir("purelb-bird-");
 * try {
 *   await Deno.writeTextFile(`${dir.path}/bird.conf`, "protocol device {}\n");
 * } finally {
 *   await dir.remove();
 * }
 * ```
 */
export interface DaemonDir {
  /** Absolute path. */
  readonly path: string;
  /** Removes the directory and everything in it; safe to call twice. */
  remove(): Promise<void>;
}

/**
 * Makes a {@link DaemonDir} (mode 0777, so daemons that drop to their own user, as FRR's
 * do, can write their sockets and pid files).
 *
 * @example
 * ```ts
 * import { makeDaemonDir } from "./daemon.ts";
 *
 * const dir = await makeDaemonDir("purelb-frr-");
 * await dir.remove();
 * ```
 */
export async function makeDaemonDir(prefix: string): Promise<DaemonDir> {
  await ensureWatchdog();
  const path = await Deno.makeTempDir({ prefix });
  await Deno.chmod(path, 0o777);
  const forgetInLedger = await enterInLedger(`dir ${path}`);
  return {
    path,
    async remove() {
      await Deno.remove(path, { recursive: true }).catch((error: unknown) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
      forgetInLedger();
    },
  };
}
