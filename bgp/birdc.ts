/**
 * Reading what BIRD's CLI prints (pure, no I/O): the BGP protocols of
 * `birdc -s SOCKET show protocols all`, and the reply of `birdc -s SOCKET configure`.
 *
 * The formats are BIRD 2's (checked against 2.0.12's real output, see `testdata/birdc/`):
 *
 * ```text
 * BIRD 2.0.12 ready.
 * Name       Proto      Table      State  Since         Info
 * peer_192_0_2_1 BGP        ---        up     2024-05-01 10:00:00  Established
 *   BGP state:          Established
 *     Neighbor address: 192.0.2.1
 *     Neighbor AS:      65000
 *     Local AS:         65001
 *     ...
 *     Last error:       Received: Bad peer AS
 *   Channel ipv4
 *     State:          UP
 *     ...
 *     Routes:         0 imported, 2 exported, 0 preferred
 * ```
 *
 * @module
 */

import type { BirdBgpState, BirdChannelState } from "./model.ts";

/** What `birdc configure` did, read by {@linkcode parseBirdConfigureReply}. */
export type BirdConfigureReply =
  /** The new config is in force. */
  | { readonly kind: "reconfigured" }
  /** Accepted; BIRD is still shutting down or restarting protocols (or queued it behind one). */
  | { readonly kind: "in_progress" }
  /** Not applied: the old config stays in force. `message` is what BIRD or birdc said. */
  | { readonly kind: "refused"; readonly message: string };

/** `Name Proto Table State Since Info`: four one-word columns, then Since and Info. */
const SUMMARY_LINE = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S.*)$/;
/** The heading BIRD prints before the first protocol. */
const HEADING_LINE = /^Name\s+Proto\s+Table\s+State\s+Since\s+Info\s*$/;
/** The greeting birdc prints on connecting (`BIRD 2.0.12 ready.`). */
const READY_LINE = /^BIRD \S+ ready\.$/;
const ROUTES_LINE = /^Routes:\s+(\d+) imported, (?:\d+ filtered, )?(\d+) exported\b/;

/**
 * The BGP protocols in the output of `birdc show protocols all`, in the order printed. Other
 * protocols (device, direct, bfd, ...), birdc's greeting and the heading are skipped.
 *
 * Fields come from the protocol's summary line (`since`) and its indented detail lines
 * (`BGP state:`, `Neighbor address:`, `Neighbor AS:`, `Local AS:`, `Last error:`, and per
 * `Channel ipv4` / `Channel ipv6` its `State:` and `Routes:`). A channel without a `Routes:`
 * line (BIRD prints none while it is down) counts 0 imported and 0 exported. Without detail
 * lines (`show protocols` without `all`), `bgpState` is the first word of the Info column, or
 * `Down` when the protocol is down.
 *
 * @example
 * ```ts
 * const output = "peer_192_0_2_1 BGP        ---        up     2024-05-01 10:00:00  Established\n" +
 *   "  BGP state:          Established\n";
 * const [peer] = parseBirdProtocols(output);
 * if (peer?.bgpState === "Established") console.log(peer.channels[0]?.exported);
 * ```
 */
export function parseBirdProtocols(text: string): readonly BirdBgpState[] {
  const result: BirdBgpState[] = [];
  let current: ProtocolBuilder | undefined;
  let channel: ChannelBuilder | undefined;
  const finish = () => {
    if (current !== undefined) result.push(current.build());
    current = undefined;
    channel = undefined;
  };

  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === "") continue;
    if (!/^\s/.test(line)) {
      finish();
      if (HEADING_LINE.test(line) || READY_LINE.test(line)) continue;
      const match = SUMMARY_LINE.exec(line);
      if (match === null || match[2] !== "BGP") continue;
      const [, name = "", , , state = "", rest = ""] = match;
      current = new ProtocolBuilder(name, state, rest);
      continue;
    }
    if (current === undefined) continue;
    const detail = line.trim();
    const channelHeading = /^Channel (\S+)$/.exec(detail);
    if (channelHeading !== null) {
      const family = channelHeading[1];
      channel = family === "ipv4" || family === "ipv6" ? new ChannelBuilder(family) : undefined;
      if (channel !== undefined) current.channels.push(channel);
      continue;
    }
    if (channel !== undefined) {
      const state = /^State:\s+(\S+)/.exec(detail);
      if (state !== null) channel.state = state[1] ?? "";
      const routes = ROUTES_LINE.exec(detail);
      if (routes !== null) {
        channel.imported = Number(routes[1]);
        channel.exported = Number(routes[2]);
      }
      continue;
    }
    const field = /^([A-Za-z][A-Za-z ]*):\s+(.*)$/.exec(detail);
    if (field === null) continue;
    const [, key, value = ""] = field;
    switch (key) {
      case "BGP state":
        current.bgpState = value.trim();
        break;
      case "Neighbor address":
        current.neighborAddress = value.trim();
        break;
      case "Neighbor AS":
        current.neighborAs = asNumber(value);
        break;
      case "Local AS":
        current.localAs = asNumber(value);
        break;
      case "Last error":
        current.lastError = value.trim();
        break;
    }
  }
  finish();
  return result;
}

/**
 * What the output and exit code of `birdc configure` say.
 * - `reconfigured`: `Reconfigured`.
 * - `in_progress`: `Reconfiguration in progress` (protocols are still being shut down or
 *   restarted), or the config was queued behind a reconfiguration still running.
 * - `refused`: anything else, in particular a non-zero exit code (a config error such as
 *   `bird.conf:34:1 syntax error, unexpected CF_SYM_UNDEFINED`, or birdc unable to connect).
 *   The message is BIRD's text without birdc's greeting and `Reading configuration from`.
 *
 * @example
 * ```ts
 * parseBirdConfigureReply("BIRD 2.0.12 ready.\nReading configuration from /b/bird.conf\nReconfigured\n", 0);
 * // { kind: "reconfigured" }
 * ```
 */
export function parseBirdConfigureReply(text: string, exitCode: number): BirdConfigureReply {
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) =>
    line !== "" && !READY_LINE.test(line) && !line.startsWith("Reading configuration from ")
  );
  if (exitCode === 0) {
    if (lines.includes("Reconfigured")) return { kind: "reconfigured" };
    const inProgress = lines.some((line) =>
      line === "Reconfiguration in progress" ||
      line.startsWith("Reconfiguration already in progress, queueing") ||
      line.startsWith("Reconfiguration already in progress, removing queued")
    );
    if (inProgress) return { kind: "in_progress" };
  }
  const said = lines.join("; ");
  const message = exitCode === 0
    ? (said === "" ? "birdc configure printed nothing" : said)
    : (said === "" ? `birdc exited with ${exitCode}` : said);
  return { kind: "refused", message };
}

function asNumber(text: string): number | undefined {
  const trimmed = text.trim();
  return /^\d+$/.test(trimmed) ? Number(trimmed) : undefined;
}

class ChannelBuilder {
  state = "";
  imported = 0;
  exported = 0;

  constructor(readonly family: "ipv4" | "ipv6") {}

  build(): BirdChannelState {
    return {
      family: this.family,
      state: this.state,
      imported: this.imported,
      exported: this.exported,
    };
  }
}

class ProtocolBuilder {
  bgpState: string | undefined;
  neighborAddress: string | undefined;
  neighborAs: number | undefined;
  localAs: number | undefined;
  lastError: string | undefined;
  readonly channels: ChannelBuilder[] = [];
  readonly since: string;
  readonly info: string;

  /** `rest` is the summary line after the State column: Since, two spaces or more, Info. */
  constructor(readonly name: string, readonly state: string, rest: string) {
    const gap = /\s{2,}/.exec(rest);
    this.since = gap === null ? rest.trim() : rest.slice(0, gap.index);
    this.info = gap === null ? "" : rest.slice(gap.index + gap[0].length).trim();
  }

  build(): BirdBgpState {
    const fallback = this.state === "down" ? "Down" : (this.info.split(/\s+/)[0] ?? "");
    return {
      name: this.name,
      bgpState: this.bgpState ?? fallback,
      since: this.since,
      neighborAddress: this.neighborAddress,
      neighborAs: this.neighborAs,
      localAs: this.localAs,
      lastError: this.lastError,
      channels: this.channels.map((channel) => channel.build()),
    };
  }
}
