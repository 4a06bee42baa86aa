/**
 * The client-side probe of the hand-over: `ping` every 10 ms from the client namespace
 * (bounded in count and time), and the longest gap between two answered pings.
 *
 * @module
 */

import { testbedIpPath } from "./exec.ts";
import { trackProcess } from "./lan.ts";
import { waitFor } from "../wait.ts";

/** Milliseconds between two pings. */
export const PROBE_INTERVAL_MS = 10;
/** Upper bounds of one probe: pings sent, and seconds. */
const PROBE_MAX_COUNT = 4_000;
const PROBE_MAX_SECONDS = 40;

/**
 * The answered pings in `ping -D` output: how many, and the longest time between two in a row
 * (timestamps rather than sequence numbers, since `ping` slows down while nothing answers).
 *
 * @example
 * ```ts
 * longestGap("[1.000] 64 bytes from x\n[1.250] 64 bytes from x\n"); // { gapMs: 250, answered: 2 }
 * ```
 */
export function longestGap(output: string): { gapMs: number; answered: number } {
  const times = [...output.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].map((m) =>
    Number(m[1]) * 1000
  );
  let gapMs = 0;
  for (let i = 1; i < times.length; i++) {
    gapMs = Math.max(gapMs, (times[i] ?? 0) - (times[i - 1] ?? 0));
  }
  return { gapMs: Math.round(gapMs), answered: times.length };
}

/**
 * Pings lost in `ping` output: sequence numbers between the first and the last answered one
 * that got no answer (duplicates count once; pings after the last answer are not counted, as
 * they may still have been in flight).
 *
 * @example
 * ```ts
 * lostPings("64 bytes from x: icmp_seq=1\n64 bytes from x: icmp_seq=4\n"); // 2
 * ```
 */
export function lostPings(output: string): number {
  const answered = new Set(
    [...output.matchAll(/\d+ bytes from .*icmp_seq=(\d+)/g)].map((m) => Number(m[1])),
  );
  if (answered.size === 0) return 0;
  const first = Math.min(...answered);
  const last = Math.max(...answered);
  return last - first + 1 - answered.size;
}

/** What {@linkcode measureGap} saw. */
export interface GapMeasurement {
  /** Longest time without an answer, milliseconds. */
  readonly gapMs: number;
  /** Pings answered in all. */
  readonly answered: number;
  /** Pings lost between the first and the last answer ({@linkcode lostPings}). */
  readonly lost: number;
}

/**
 * Pings `address` from `netns` every 10 ms; once answers flow, runs `disrupt`, waits until
 * `recovered` holds and answers flow again, then returns the longest gap and the pings lost.
 * Every wait has a deadline; the ping is stopped whatever happens. `diagnose` adds to the
 * error when no ping is answered at all.
 */
export async function measureGap(
  netns: string,
  address: string,
  disrupt: () => Promise<void>,
  recovered: () => Promise<boolean>,
  diagnose: () => Promise<string> = () => Promise.resolve(""),
): Promise<GapMeasurement> {
  const child = new Deno.Command(testbedIpPath(), {
    args: [
      "netns",
      "exec",
      netns,
      "ping",
      "-n",
      "-D",
      "-i",
      String(PROBE_INTERVAL_MS / 1000),
      "-c",
      String(PROBE_MAX_COUNT),
      "-w",
      String(PROBE_MAX_SECONDS),
      address,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const forget = trackProcess(child);
  let output = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of child.stdout) output += decoder.decode(chunk, { stream: true });
  })();
  let errors = "";
  const readingErrors = (async () => {
    for await (const chunk of child.stderr) errors += decoder.decode(chunk, { stream: true });
  })();
  try {
    await waitFor(() => longestGap(output).answered >= 20, 5_000, `pings to ${address} answered`)
      .catch(async (error) => {
        throw new Error(
          `${error.message}; ping said: ${(errors || output).slice(-500)}\n${await diagnose()}`,
        );
      });
    await disrupt();
    await waitFor(recovered, 20_000, `another node to take ${address}`);
    const before = longestGap(output).answered;
    await waitFor(
      () => longestGap(output).answered >= before + 50,
      15_000,
      `pings to ${address} answered again`,
    );
  } finally {
    try {
      child.kill("SIGINT");
    } catch { /* exited */ }
    await child.status;
    await Promise.all([reading, readingErrors]);
    forget();
  }
  return { ...longestGap(output), lost: lostPings(output) };
}
