/**
 * BIRD 2 in a node namespace, started the way the production sidecar starts it: wait until
 * the agent has written `bird.conf` into the BGP directory, then run `bird -f` (foreground)
 * with its control socket and pid file in that directory.
 *
 * @module
 */
import { BIRD_CONFIG_FILE, BIRD_SOCKET_FILE, BIRDC_PATHS } from "../../bgp/model.ts";
import { resolveExecutable } from "../../netlink/mod.ts";
import { waitFor } from "../wait.ts";
import { type Daemon, startDaemon } from "./daemon.ts";
import { runChecked } from "./exec.ts";

/** Where `bird` (Debian package bird2) is looked for, in order. */
export const BIRD_PATHS: readonly string[] = ["/usr/sbin/bird", "/usr/bin/bird"];
/** The pid file BIRD writes into the BGP directory (`bird -P`). */
export const BIRD_PID_FILE = "bird.pid";

/** Options of {@link startBird}. */
export interface BirdOptions {
  /** The node namespace BIRD runs in. */
  readonly netns: string;
  /** The BGP directory: holds `bird.conf` (written by the agent or the test) and the socket. */
  readonly dir: string;
  /** How long to wait for a non-empty `bird.conf` (default 30 s). */
  readonly configTimeoutMs?: number;
  /** How long to wait for BIRD's control socket once it runs (default 10 s). */
  readonly startTimeoutMs?: number;
}

/**
 * A running BIRD.
 *
 * @example
 * ```ts
 * import { startBird } from "./bird.ts";
 *
 * const bird = await startBird({ netns: "plb1a2b3-node-a", dir: "/tmp/bgp-node-a" });
 * try {
 *   console.log(await bird.birdc("show protocols"));
 * } finally {
 *   await bird.stop();
 * }
 * ```
 */
export interface Bird {
  /** BIRD's process id. */
  readonly pid: number;
  /** The BGP directory it was started with. */
  readonly dir: string;
  /** Settles when BIRD has exited. */
  readonly exited: Promise<Deno.CommandStatus>;
  /** What BIRD wrote to stderr so far (its log, with `log stderr all;`). */
  stderrText(): string;
  /** Runs one `birdc` command on its control socket and returns the reply. */
  birdc(command: string): Promise<string>;
  /** SIGTERM (BIRD closes its sessions with a Cease), wait; SIGKILL after 10 s. */
  stop(): Promise<Deno.CommandStatus>;
  /** SIGKILL: sessions end without a word, as when a node dies. */
  kill(): Promise<Deno.CommandStatus>;
}

async function nonEmptyFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).size > 0;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function socketExists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isSocket === true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Waits (deadline) until `<dir>/bird.conf` exists and is not empty, starts
 * `bird -f -c <dir>/bird.conf -s <dir>/bird.ctl -P <dir>/bird.pid` inside the namespace and
 * resolves once the control socket is there. Throws, with BIRD's stderr, when BIRD exits
 * first (a config error, say). Because it waits for the config, do not await it before
 * whatever writes the config has been started.
 *
 * @example
 * ```ts
 * import { startBird } from "./bird.ts";
 *
 * await Deno.writeTextFile("/tmp/bgp-node-a/bird.conf", "router id 192.0.2.11;\nprotocol device {}\n");
 * const bird = await startBird({ netns: "plb1a2b3-node-a", dir: "/tmp/bgp-node-a" });
 * await bird.stop();
 * ```
 */
export async function startBird(options: BirdOptions): Promise<Bird> {
  const configPath = `${options.dir}/${BIRD_CONFIG_FILE}`;
  const socketPath = `${options.dir}/${BIRD_SOCKET_FILE}`;
  const birdPath = await resolveExecutable("bird", BIRD_PATHS, "install bird2");
  const birdcPath = await resolveExecutable("birdc", BIRDC_PATHS, "install bird2");
  await waitFor(
    () => nonEmptyFile(configPath),
    options.configTimeoutMs ?? 30_000,
    `a non-empty ${configPath}`,
  );
  // A socket left by an earlier BIRD would pass the readiness check below.
  await Deno.remove(socketPath).catch(() => {});
  const daemon: Daemon = await startDaemon(options.netns, [
    birdPath,
    "-f",
    "-c",
    configPath,
    "-s",
    socketPath,
    "-P",
    `${options.dir}/${BIRD_PID_FILE}`,
  ]);
  try {
    // An exit ends the wait at once (waitFor would retry a check that throws).
    await waitFor(
      async () => daemon.hasExited() || await socketExists(socketPath),
      options.startTimeoutMs ?? 10_000,
      `BIRD's control socket ${socketPath}`,
      20,
    );
    if (daemon.hasExited()) {
      const status = await daemon.exited;
      throw new Error(`bird exited with ${status.code}: ${daemon.stderrText().trim()}`);
    }
  } catch (error) {
    await daemon.kill();
    throw error;
  }
  return {
    pid: daemon.pid,
    dir: options.dir,
    exited: daemon.exited,
    stderrText: () => daemon.stderrText(),
    birdc: (command) => runChecked([birdcPath, "-s", socketPath, ...command.trim().split(/\s+/)]),
    stop: () => daemon.stop(),
    kill: () => daemon.kill(),
  };
}
