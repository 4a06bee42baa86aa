/**
 * The BIRD daemon as the agent drives it: its config file written atomically, `birdc configure`
 * to load it, `birdc show protocols all` to read the sessions. Nothing here speaks BGP; the
 * outcomes are typed so that the controller reports "daemon absent" and "config refused"
 * without matching message text.
 *
 * @module
 */

import { CommandError, runProcess } from "../netlink/process.ts";
import { parseBirdConfigureReply, parseBirdProtocols } from "./birdc.ts";
import { BIRD_CONFIG_FILE, BIRD_SOCKET_FILE, type BirdBgpState } from "./model.ts";

/** Longest a `birdc` call may take. */
const BIRDC_TIMEOUT_MS = 10_000;

/** Why the daemon could not be asked: its CLI is missing, or nothing answers on its socket. */
export type DaemonUnavailable =
  | { readonly kind: "cli_missing"; readonly message: string }
  | { readonly kind: "unreachable"; readonly message: string };

/** What `birdc configure` did. */
export type ConfigureOutcome =
  | { readonly kind: "reconfigured" }
  | { readonly kind: "refused"; readonly message: string }
  | DaemonUnavailable;

/** What `birdc show protocols all` read. */
export type ProtocolsOutcome =
  | { readonly kind: "read"; readonly protocols: readonly BirdBgpState[] }
  | DaemonUnavailable;

/** The calls the BGP controller makes on the daemon (tests pass a fake). */
export interface RoutingDaemon {
  /** Where the config is written (for messages). */
  readonly configPath: string;
  /** Whether a config file is in place (BIRD started, or will start, with it). */
  hasConfig(): Promise<boolean>;
  /** Replaces the config file atomically (owner-only: it may hold passwords). */
  writeConfig(text: string): Promise<void>;
  /** Asks the daemon to load the config file; only changed protocols restart. */
  configure(): Promise<ConfigureOutcome>;
  /** The BGP sessions as the daemon sees them. */
  protocols(): Promise<ProtocolsOutcome>;
}

/** Options of {@linkcode BirdDaemon}. */
export interface BirdDaemonOptions {
  /** The directory shared with BIRD: `bird.conf` and the socket `bird.ctl`. */
  readonly dir: string;
  /** Path of `birdc`. */
  readonly birdcPath: string;
}

/**
 * BIRD reached through `birdc` on the socket in the shared directory.
 *
 * @example
 * ```ts
 * const bird = new BirdDaemon({ dir: "/run/purelb-bgp", birdcPath: "/usr/sbin/birdc" });
 * const outcome = await bird.protocols();
 * if (outcome.kind === "read") console.log(outcome.protocols.map((p) => p.bgpState));
 * ```
 */
export class BirdDaemon implements RoutingDaemon {
  readonly configPath: string;
  readonly #socketPath: string;
  readonly #birdcPath: string;
  /** `birdc` processes started, for the metrics. */
  processesSpawned = 0;

  constructor(options: BirdDaemonOptions) {
    this.configPath = `${options.dir}/${BIRD_CONFIG_FILE}`;
    this.#socketPath = `${options.dir}/${BIRD_SOCKET_FILE}`;
    this.#birdcPath = options.birdcPath;
  }

  async hasConfig(): Promise<boolean> {
    try {
      return (await Deno.stat(this.configPath)).size > 0;
    } catch {
      return false;
    }
  }

  async writeConfig(text: string): Promise<void> {
    const temporary = `${this.configPath}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.writeTextFile(temporary, text, { mode: 0o600 });
      await Deno.rename(temporary, this.configPath);
    } catch (error) {
      await Deno.remove(temporary).catch(() => {});
      throw error;
    }
  }

  async configure(): Promise<ConfigureOutcome> {
    const ran = await this.#birdc(["configure"]);
    if (ran.kind !== "ran") return ran;
    const reply = parseBirdConfigureReply(ran.text, ran.exitCode);
    // "Reconfiguration in progress": BIRD finishes it on its own; the sessions read next say how.
    return reply.kind === "refused" ? reply : { kind: "reconfigured" };
  }

  async protocols(): Promise<ProtocolsOutcome> {
    const ran = await this.#birdc(["show", "protocols", "all"]);
    if (ran.kind !== "ran") return ran;
    if (ran.exitCode !== 0) {
      return { kind: "unreachable", message: firstLine(ran.text) };
    }
    return { kind: "read", protocols: parseBirdProtocols(ran.text) };
  }

  async #birdc(
    args: readonly string[],
  ): Promise<
    { readonly kind: "ran"; readonly text: string; readonly exitCode: number } | DaemonUnavailable
  > {
    const command = [this.#birdcPath, "-s", this.#socketPath, ...args];
    this.processesSpawned++;
    let output;
    try {
      output = await runProcess(command, { timeoutMs: BIRDC_TIMEOUT_MS });
    } catch (error) {
      if (error instanceof CommandError && error.cause instanceof Deno.errors.NotFound) {
        return {
          kind: "cli_missing",
          message: `${this.#birdcPath} not found: install BIRD 2 (Debian package bird2)`,
        };
      }
      return {
        kind: "unreachable",
        message: error instanceof Error ? error.message : String(error),
      };
    }
    const text = `${output.stdout}\n${output.stderr}`;
    if (/Unable to connect to server control socket/i.test(text)) {
      return {
        kind: "unreachable",
        message: `BIRD is not running or not listening on ${this.#socketPath}: ${firstLine(text)}`,
      };
    }
    return { kind: "ran", text, exitCode: output.exitCode };
  }
}

function firstLine(text: string): string {
  return text.split("\n").map((line) => line.trim()).find((line) => line !== "") ?? "no output";
}
