/**
 * Telling the LAN that an address moved: gratuitous ARP for IPv4 (iputils `arping -U`),
 * unsolicited neighbour advertisement for IPv6 (`na6` from the SI6 IPv6 toolkit, Debian
 * package ipv6toolkit). Deno has no raw sockets, so helpers run by absolute path; in a
 * network namespace they run through `ip netns exec NS`.
 *
 * @module
 */
import { canonicalAddress, tryParseAddress } from "../ipam/mod.ts";
import { IP_PATHS } from "./command.ts";
import { CommandError, resolveExecutable, runProcess } from "./process.ts";

/** Where iputils `arping` is looked for (not /usr/sbin/arping: that is a different arping). */
export const ARPING_PATHS: readonly string[] = ["/usr/bin/arping", "/bin/arping"];

/** Where `na6` (Debian package ipv6toolkit) is looked for. */
export const NA6_PATHS: readonly string[] = ["/usr/sbin/na6", "/usr/bin/na6"];

/** Options of {@link GratuitousAnnouncer.create}. */
export interface GratuitousAnnouncerOptions {
  /** Network namespace to send from (helpers run via `ip netns exec NS`). */
  readonly netns?: string;
  /** Absolute path of `ip` (only used with `netns`); looked up in {@link IP_PATHS}. */
  readonly ipPath?: string;
  /** Absolute path of iputils `arping`; looked up in {@link ARPING_PATHS}. */
  readonly arpingPath?: string;
  /** Absolute path of `na6`; looked up in {@link NA6_PATHS}. */
  readonly na6Path?: string;
  /** Deadline of each helper process in milliseconds (default 15 s). */
  readonly timeoutMs?: number;
}

/** One announcement: which address on which interface, how many packets, how far apart. */
export interface GratuitousRequest {
  /** The interface that now carries the address. */
  readonly interfaceName: string;
  /** The address (IPv4: gratuitous ARP; IPv6: unsolicited neighbour advertisement). */
  readonly address: string;
  /** Packets to send (default 3). */
  readonly count?: number;
  /**
   * Gap between packets in milliseconds (default 500). iputils arping only knows whole
   * seconds, so IPv4 rounds this up to at least 1 s.
   */
  readonly intervalMs?: number;
  /** Stops the announcement early (helpers in flight are killed, the promise rejects). */
  readonly signal?: AbortSignal;
}

const INTERFACE_NAME = /^[^\s/:]{1,15}$/;

/**
 * Sends gratuitous ARP / unsolicited NA through helper programs resolved once at creation.
 * {@link GratuitousAnnouncer.executables} lists every program it may run, for the agent's
 * `--allow-run` permission.
 *
 * @example
 * ```ts
 * const announcer = await GratuitousAnnouncer.create({ netns: "node-a" });
 * await announcer.announce({ interfaceName: "eth0", address: "192.0.2.50", count: 2 });
 * ```
 */
export class GratuitousAnnouncer {
  /** Absolute path of iputils arping. */
  readonly arpingPath: string;
  /** Absolute path of na6. */
  readonly na6Path: string;
  /** Absolute path of ip when sending inside a namespace, else `undefined`. */
  readonly ipPath: string | undefined;
  /** The namespace sent from, or `undefined` for the current one. */
  readonly netns: string | undefined;
  /** Deadline of each helper process in milliseconds. */
  readonly timeoutMs: number;
  #processesSpawned = 0;

  private constructor(
    paths: { arping: string; na6: string; ip: string | undefined },
    netns: string | undefined,
    timeoutMs: number,
  ) {
    this.arpingPath = paths.arping;
    this.na6Path = paths.na6;
    this.ipPath = paths.ip;
    this.netns = netns;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Resolves the helpers; throws `ExecutableNotFoundError` naming the Debian package of a
   * missing one.
   */
  static async create(options: GratuitousAnnouncerOptions = {}): Promise<GratuitousAnnouncer> {
    const arping = options.arpingPath ??
      await resolveExecutable("arping", ARPING_PATHS, "install iputils-arping");
    const na6 = options.na6Path ??
      await resolveExecutable("na6", NA6_PATHS, "install ipv6toolkit");
    const ip = options.netns === undefined
      ? undefined
      : options.ipPath ?? await resolveExecutable("ip", IP_PATHS, "install iproute2");
    return new GratuitousAnnouncer({ arping, na6, ip }, options.netns, options.timeoutMs ?? 15_000);
  }

  /** Every program this announcer may run, by absolute path. */
  get executables(): readonly string[] {
    return this.ipPath === undefined
      ? [this.arpingPath, this.na6Path]
      : [this.ipPath, this.arpingPath, this.na6Path];
  }

  /** How many helper processes this announcer has started. */
  get processesSpawned(): number {
    return this.#processesSpawned;
  }

  /**
   * The command lines for one announcement: one `arping -U -c N` for IPv4, one `na6` per
   * packet for IPv6 (na6 sends one packet per run). Throws a RangeError for bad input.
   *
   * @example
   * ```ts
   * const announcer = await GratuitousAnnouncer.create();
   * announcer.commandLines({ interfaceName: "eth0", address: "192.0.2.50", count: 3 });
   * // [["/usr/bin/arping", "-q", "-U", "-c", "3", "-i", "1", "-I", "eth0", "192.0.2.50"]]
   * ```
   */
  commandLines(request: GratuitousRequest): readonly (readonly string[])[] {
    const { interfaceName, count = 3, intervalMs = 500 } = request;
    if (!INTERFACE_NAME.test(interfaceName)) {
      throw new RangeError(`"${interfaceName}" is not an interface name`);
    }
    if (!Number.isInteger(count) || count < 1 || count > 100) {
      throw new RangeError(`count ${count} is not between 1 and 100`);
    }
    if (!Number.isFinite(intervalMs) || intervalMs < 0 || intervalMs > 60_000) {
      throw new RangeError(`interval ${intervalMs} ms is not between 0 and 60000`);
    }
    const parsed = tryParseAddress(request.address);
    const address = canonicalAddress(request.address);
    if (parsed === undefined || address === undefined) {
      throw new RangeError(`"${request.address}" is not an IP address`);
    }
    const prefix = this.netns === undefined || this.ipPath === undefined
      ? []
      : [this.ipPath, "netns", "exec", this.netns];
    if (parsed.family === "IPv4") {
      const seconds = String(Math.max(1, Math.ceil(intervalMs / 1000)));
      const arping = ["-q", "-U", "-c", String(count), "-i", seconds, "-I", interfaceName, address];
      return [[...prefix, this.arpingPath, ...arping]];
    }
    // Unsolicited NA (RFC 4861 7.2.6): to all nodes, override set, solicited clear, with the
    // target link-layer address option (-e) so neighbours update their cache.
    const na6 = ["-i", interfaceName, "-s", address, "-d", "ff02::1", "-t", address, "-o", "-e"];
    return Array.from({ length: count }, () => [...prefix, this.na6Path, ...na6]);
  }

  /**
   * Sends the announcement and resolves once every packet is out; throws
   * {@link CommandError} when a helper fails (e.g. the interface is down or the
   * address is not on it).
   */
  async announce(request: GratuitousRequest): Promise<void> {
    const commands = this.commandLines(request);
    const intervalMs = request.intervalMs ?? 500;
    for (const [index, command] of commands.entries()) {
      if (index > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs));
      if (request.signal?.aborted) {
        throw new CommandError(command, undefined, "", { problem: "was stopped" });
      }
      await this.#run(command, request.signal);
    }
  }

  async #run(command: readonly string[], signal: AbortSignal | undefined): Promise<void> {
    this.#processesSpawned++;
    const output = await runProcess(command, {
      timeoutMs: this.timeoutMs,
      ...(signal === undefined ? {} : { signal }),
    });
    if (output.exitCode !== 0) {
      // arping and na6 explain some failures on stdout.
      const text = `${output.stderr}\n${output.stdout}`.trim();
      throw new CommandError(command, output.exitCode, text);
    }
  }
}
