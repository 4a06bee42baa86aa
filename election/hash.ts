/**
 * Who announces an address: every node ranks the candidates by a SHA-256 hash of
 * `nodeName#address` and takes the lowest, so all nodes agree without talking to each other.
 * The hash input and order match PureLB's Go agent byte for byte (Go `sha256.Sum256`
 * compared with `bytes.Compare`), so mixed clusters elect the same node.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { canonicalAddress } from "../ipam/mod.ts";

/**
 * The text that is hashed for one node and one key: `nodeName#key`, where a key that parses as
 * an IP address is replaced by its canonical text (IPv6 compressed, lowercase).
 *
 * @example
 * ```ts
 * electionInput("node-a", "2001:DB8:0::1"); // "node-a#2001:db8::1"
 * ```
 */
export function electionInput(nodeName: string, key: string): string {
  return `${nodeName}#${canonicalAddress(key) ?? key}`;
}

/**
 * SHA-256 of the UTF-8 bytes of {@link electionInput}: a node's rank for a key (lower wins).
 *
 * @example
 * ```ts
 * const hex = Array.from(electionHash("node-a", "192.0.2.10"), (b) => b.toString(16).padStart(2, "0")).join("");
 * // "d4b84135..." (same as `printf 'node-a#192.0.2.10' | sha256sum`)
 * ```
 */
export function electionHash(nodeName: string, key: string): Uint8Array {
  return hashInput(electionInput(nodeName, key));
}

function hashInput(input: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(input, "utf8").digest());
}

/** Compares two byte strings like Go's `bytes.Compare`: negative, zero or positive. */
function compareBytes(left: Uint8Array, right: Uint8Array): number {
  const length = Math.min(left.length, right.length);
  for (let i = 0; i < length; i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return left.length - right.length;
}

/**
 * The candidates ordered by their hash for `key`, the winner first. Duplicates are kept once.
 *
 * @example
 * ```ts
 * rankCandidates(["node-a", "node-b", "node-c"], "192.0.2.10"); // ["node-c", "node-b", "node-a"]
 * ```
 */
export function rankCandidates(candidates: readonly string[], key: string): readonly string[] {
  const canonicalKey = canonicalAddress(key) ?? key;
  const ranked = [...new Set(candidates)].map((nodeName) => ({
    nodeName,
    hash: hashInput(`${nodeName}#${canonicalKey}`),
  }));
  ranked.sort((left, right) => compareBytes(left.hash, right.hash));
  return ranked.map((entry) => entry.nodeName);
}

/**
 * The node that announces `key` (an address, or any other text): the candidate whose
 * SHA-256 of `nodeName#key` is lowest in byte order. `undefined` when there is no candidate.
 * The result does not depend on the order of `candidates`.
 *
 * @example
 * ```ts
 * winner(["node-a", "node-b", "node-c"], "192.0.2.10"); // "node-c"
 * winner([], "192.0.2.10"); // undefined
 * ```
 */
export function winner(candidates: readonly string[], key: string): string | undefined {
  const canonicalKey = canonicalAddress(key) ?? key;
  const memoKey = `${canonicalKey}\n${candidates.join("\n")}`;
  if (recentWinners.has(memoKey)) return recentWinners.get(memoKey);
  let best: { readonly nodeName: string; readonly hash: Uint8Array } | undefined;
  for (const nodeName of candidates) {
    const hash = hashInput(`${nodeName}#${canonicalKey}`);
    if (best === undefined || compareBytes(hash, best.hash) < 0) best = { nodeName, hash };
  }
  if (recentWinners.size >= RECENT_WINNERS_LIMIT) recentWinners.clear();
  recentWinners.set(memoKey, best?.nodeName);
  return best?.nodeName;
}

/**
 * Winners found lately, per key and candidate list. Every decision elects every address
 * again, and a SHA-256 through node:crypto costs tens of microseconds: with 50 nodes and
 * 1,000 addresses that was 1.5 s per reconcile. The answer only changes with the candidates.
 */
const recentWinners = new Map<string, string | undefined>();
const RECENT_WINNERS_LIMIT = 8_192;
