/**
 * Long-running programs inside a testbed namespace (routing daemons, responders): started in
 * the foreground with `ip netns exec`, registered with the LAN's safety net so an interrupted
 * run kills them, their output kept (the last 64 KiB) for error messages, and stopped by
 * signal with a deadline.
 *
 * Short commands go through `runProcess` (netlink/process.ts) instead; this is only for
 * programs that must keep running while a test works.
 *
 * @module
 */
import { testbedIpPath } from "./exec.ts";
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
 * const sleeper = startDaemon("plb1a2b3-router", ["sleep", "30"]);
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

function keepNewest(text: string): string {
  return text.length > OUTPUT_LIMIT ? text.slice(text.length - OUTPUT_LIMIT) : text;
}

/**
 * Starts `command` (program first) in network namespace `netns`, stdout and stderr captured.
 * Returns at once; use {@link Daemon.exited} or a readiness check of your own.
 *
 * @example
 * ```ts
 * import { startDaemon } from "./daemon.ts";
 *
 * const bird = startDaemon("plb1a2b3-node-a", ["/usr/sbin/bird", "-f", "-c", "/tmp/x/bird.conf"]);
 * try {
 *   // ...
 * } finally {
 *   await bird.stop();
 * }
 * ```
 */
export function startDaemon(
  netns: string,
  command: readonly string[],
  options: { readonly cwd?: string } = {},
): Daemon {
  const child = new Deno.Command(testbedIpPath(), {
    args: ["netns", "exec", netns, ...command],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
  }).spawn();
  const forget = trackProcess(child);
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

/** Daemon directories not yet removed, for the exit-time clean-up. */
const liveDirs = new Set<string>();
let removesDirsAtExit = false;

/**
 * A temporary directory for a daemon's config, sockets and pid files, removed by
 * {@link DaemonDir.remove} and, should the run end first (exit, or the LAN's SIGINT / SIGTERM
 * safety net), at exit.
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
  const path = await Deno.makeTempDir({ prefix });
  await Deno.chmod(path, 0o777);
  liveDirs.add(path);
  if (!removesDirsAtExit) {
    removesDirsAtExit = true;
    globalThis.addEventListener("unload", () => {
      for (const dir of liveDirs) {
        try {
          Deno.removeSync(dir, { recursive: true });
        } catch { /* best effort at exit */ }
      }
      liveDirs.clear();
    });
  }
  return {
    path,
    async remove() {
      if (!liveDirs.has(path)) return;
      liveDirs.delete(path);
      await Deno.remove(path, { recursive: true }).catch((error: unknown) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    },
  };
}
