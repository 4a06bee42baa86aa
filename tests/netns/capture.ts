/**
 * Watching the LAN from a namespace with tcpdump: start (resolves once tcpdump listens),
 * read the packets parsed as they arrive, stop. Parses ARP requests (gratuitous when the
 * sender asks for its own address) and neighbour advertisements (unsolicited when sent to
 * all nodes without the solicited flag).
 *
 * @module
 */
import { waitFor } from "../wait.ts";
import { testbedIpPath } from "./exec.ts";
import { trackProcess } from "./lan.ts";

/**
 * A packet tcpdump printed, as far as the tests care.
 *
 * @example
 * ```ts
 * const garp: CapturedPacket = {
 *   kind: "arp-request", sourceMac: "02:00:00:00:00:11", senderAddress: "192.0.2.50",
 *   targetAddress: "192.0.2.50", gratuitous: true,
 * };
 * ```
 */
export type CapturedPacket =
  | {
    readonly kind: "arp-request";
    /** Ethernet source. */
    readonly sourceMac: string;
    /** The address the sender says it has (`tell X`). */
    readonly senderAddress: string;
    /** The address asked for (`who-has X`). */
    readonly targetAddress: string;
    /** Sender asks for its own address: a gratuitous ARP. */
    readonly gratuitous: boolean;
  }
  | {
    readonly kind: "neighbor-advertisement";
    /** Ethernet source. */
    readonly sourceMac: string;
    /** IPv6 source. */
    readonly source: string;
    /** IPv6 destination. */
    readonly destination: string;
    /** The advertised address (`tgt is X`). */
    readonly target: string;
    /** Flags as tcpdump names them: router, solicited, override. */
    readonly flags: readonly string[];
    /** The target link-layer address option, when present. */
    readonly targetMac: string | undefined;
    /** Sent to all nodes without the solicited flag. */
    readonly unsolicited: boolean;
  }
  | { readonly kind: "other"; readonly text: string };

const MAC = "[0-9a-f]{2}(?::[0-9a-f]{2}){5}";
const ARP_REQUEST = new RegExp(
  `^\\S+ (${MAC}) > ${MAC}, ethertype ARP .*?Request who-has (\\S+)(?: \\(${MAC}\\))? tell (\\S+?),`,
);
const NEIGHBOR_ADVERTISEMENT = new RegExp(
  `^\\S+ (${MAC}) > ${MAC}, ethertype IPv6 .*?\\) (\\S+) > (\\S+?): .*neighbor advertisement, ` +
    `length \\d+, tgt is (\\S+?),? Flags \\[([^\\]]*)\\]`,
);
const TARGET_LINK_ADDRESS = new RegExp(`destination link-address option \\(2\\).*?: (${MAC})`);

/**
 * Parses tcpdump text output (`-n -e -vv`), where a packet is one line plus indented
 * continuation lines.
 *
 * @example
 * ```ts
 * parseTcpdump(
 *   "12:00:00.000000 02:00:00:00:00:11 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: " +
 *     "Ethernet (len 6), IPv4 (len 4), Request who-has 192.0.2.50 (ff:ff:ff:ff:ff:ff) tell 192.0.2.50, length 28",
 * )[0]?.kind; // "arp-request"
 * ```
 */
export function parseTcpdump(text: string): readonly CapturedPacket[] {
  const records: string[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    if (/^\s/.test(line) && records.length > 0) {
      records[records.length - 1] += `\n${line}`;
    } else {
      records.push(line);
    }
  }
  return records.map((record): CapturedPacket => {
    const arp = ARP_REQUEST.exec(record);
    if (arp) {
      const [, sourceMac = "", targetAddress = "", senderAddress = ""] = arp;
      return {
        kind: "arp-request",
        sourceMac,
        senderAddress,
        targetAddress,
        gratuitous: senderAddress === targetAddress,
      };
    }
    const na = NEIGHBOR_ADVERTISEMENT.exec(record);
    if (na) {
      const [, sourceMac = "", source = "", destination = "", target = "", flagText = ""] = na;
      const flags = flagText.split(",").map((flag) => flag.trim()).filter((flag) => flag !== "");
      return {
        kind: "neighbor-advertisement",
        sourceMac,
        source,
        destination,
        target,
        flags,
        targetMac: TARGET_LINK_ADDRESS.exec(record)?.[1],
        unsolicited: destination === "ff02::1" && !flags.includes("solicited"),
      };
    }
    return { kind: "other", text: record };
  });
}

/**
 * A running tcpdump.
 *
 * @example
 * ```ts
 * const capture = await startCapture("plb1a2b3-client", "eth0", "arp or icmp6");
 * try {
 *   await capture.waitForPacket((p) => p.kind === "arp-request" && p.gratuitous, 5_000, "a GARP");
 * } finally {
 *   await capture.stop();
 * }
 * ```
 */
export interface Capture {
  /** Packets parsed so far. */
  packets(): readonly CapturedPacket[];
  /** Raw text printed so far. */
  text(): string;
  /** Waits (with a deadline) until a packet matches; returns it. */
  waitForPacket(
    matches: (packet: CapturedPacket) => boolean,
    timeoutMs: number,
    what: string,
  ): Promise<CapturedPacket>;
  /** Stops tcpdump and returns every packet seen; safe to call twice. */
  stop(): Promise<readonly CapturedPacket[]>;
}

/**
 * Starts `tcpdump -n -e -vv -l` on `interfaceName` inside `netns` with a filter, and resolves
 * once tcpdump says it is listening (or throws after `timeoutMs`, stopping it).
 *
 * @example
 * ```ts
 * const capture = await startCapture("plb1a2b3-client", "eth0", "icmp6 and ip6[40] == 136");
 * ```
 */
export async function startCapture(
  netns: string,
  interfaceName: string,
  filter: string,
  timeoutMs = 10_000,
): Promise<Capture> {
  const child = new Deno.Command(testbedIpPath(), {
    args: [
      "netns",
      "exec",
      netns,
      "tcpdump",
      "-i",
      interfaceName,
      "-n",
      "-e",
      "-vv",
      "-l",
      "--immediate-mode",
      filter,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const forget = trackProcess(child);
  const decoder = new TextDecoder();
  let stdout = "";
  let stderr = "";
  const stdoutDone = (async () => {
    for await (const chunk of child.stdout) stdout += decoder.decode(chunk, { stream: true });
  })();
  const stderrDone = (async () => {
    for await (const chunk of child.stderr) stderr += decoder.decode(chunk, { stream: true });
  })();
  let exited = false;
  const status = child.status.then((result) => {
    exited = true;
    return result;
  });
  let stopped: Promise<readonly CapturedPacket[]> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      try {
        if (!exited) child.kill("SIGTERM");
      } catch { /* already gone */ }
      await status;
      await Promise.all([stdoutDone, stderrDone]);
      forget();
      return parseTcpdump(stdout);
    })();
    return stopped;
  };
  try {
    await waitFor(
      () => {
        if (exited) throw new Error(`tcpdump exited: ${stderr.trim()}`);
        return /listening on/.test(stderr);
      },
      timeoutMs,
      `tcpdump listening on ${interfaceName} in ${netns}`,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    packets: () => parseTcpdump(stdout),
    text: () => stdout,
    async waitForPacket(matches, waitMs, what) {
      let found: CapturedPacket | undefined;
      await waitFor(
        () => {
          found = parseTcpdump(stdout).find(matches);
          return found !== undefined;
        },
        waitMs,
        what,
      );
      if (found === undefined) throw new Error(`no packet: ${what}`);
      return found;
    },
    stop,
  };
}
