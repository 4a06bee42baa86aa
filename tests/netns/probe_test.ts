import assert from "node:assert/strict";
import { longestGap, lostPings } from "./probe.ts";

Deno.test("longestGap: the longest time between answered pings, by timestamp", () => {
  const output = [
    "PING 192.0.2.240 (192.0.2.240) 56(84) bytes of data.",
    "[1700000000.000000] 64 bytes from 192.0.2.240: icmp_seq=1 ttl=64 time=0.1 ms",
    "[1700000000.010000] 64 bytes from 192.0.2.240: icmp_seq=2 ttl=64 time=0.1 ms",
    "[1700000000.020500] 64 bytes from 192.0.2.240: icmp_seq=3 ttl=64 time=0.1 ms",
    "[1700000000.900000] From 192.0.2.100 icmp_seq=4 Destination Host Unreachable",
    "[1700000001.150500] 64 bytes from 192.0.2.240: icmp_seq=90 ttl=64 time=0.1 ms",
    "[1700000001.160500] 64 bytes from 192.0.2.240: icmp_seq=91 ttl=64 time=0.1 ms",
  ].join("\n");
  assert.deepEqual(longestGap(output), { gapMs: 1130, answered: 5 });
});

Deno.test("longestGap: nothing or one answer is no gap", () => {
  assert.deepEqual(longestGap(""), { gapMs: 0, answered: 0 });
  assert.deepEqual(longestGap("[5.0] 64 bytes from x: icmp_seq=1\n"), { gapMs: 0, answered: 1 });
});

Deno.test("lostPings: unanswered sequence numbers between the first and the last answer", () => {
  const output = [
    "PING 198.51.100.1 (198.51.100.1) 56(84) bytes of data.",
    "[1.00] 64 bytes from 198.51.100.1: icmp_seq=3 ttl=63 time=0.1 ms",
    "[1.01] 64 bytes from 198.51.100.1: icmp_seq=4 ttl=63 time=0.1 ms",
    "[1.02] 64 bytes from 198.51.100.1: icmp_seq=4 ttl=63 time=0.1 ms (DUP!)",
    "[1.20] From 192.0.2.1 icmp_seq=6 Destination Host Unreachable",
    "[1.40] 64 bytes from 198.51.100.1: icmp_seq=9 ttl=63 time=0.1 ms",
  ].join("\n");
  assert.equal(lostPings(output), 4);
  assert.equal(lostPings(""), 0);
});
