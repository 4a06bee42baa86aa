import assert from "node:assert/strict";
import { parseTcpdump } from "./capture.ts";

// Real tcpdump 4.99 output (-n -e -vv) from the testbed.
const SAMPLE = [
  "05:05:59.156614 ae:a5:aa:be:63:f1 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: " +
  "Ethernet (len 6), IPv4 (len 4), Request who-has 192.0.2.50 (ff:ff:ff:ff:ff:ff) tell 192.0.2.50, length 28",
  "05:05:59.256614 ae:a5:aa:be:63:f1 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: " +
  "Ethernet (len 6), IPv4 (len 4), Request who-has 192.0.2.11 tell 192.0.2.100, length 28",
  "05:05:48.963756 6e:ae:11:f4:e8:26 > 33:33:00:00:00:01, ethertype IPv6 (0x86dd), length 86: " +
  "(hlim 255, next-header ICMPv6 (58) payload length: 32) 2001:db8:1::50 > ff02::1: [icmp6 sum ok] " +
  "ICMP6, neighbor advertisement, length 32, tgt is 2001:db8:1::50, Flags [override]",
  "\t  destination link-address option (2), length 8 (1): 6e:ae:11:f4:e8:26",
  "\t    0x0000:  6eae 11f4 e826",
  "05:05:49.001000 6e:ae:11:f4:e8:26 > 02:00:00:00:01:00, ethertype IPv6 (0x86dd), length 86: " +
  "(hlim 255, next-header ICMPv6 (58) payload length: 32) 2001:db8:1::11 > 2001:db8:1::100: [icmp6 sum ok] " +
  "ICMP6, neighbor advertisement, length 32, tgt is 2001:db8:1::11, Flags [router, solicited, override]",
  "05:05:49.737319 6e:d1:27:e6:1d:69 > 33:33:00:00:00:02, ethertype IPv6 (0x86dd), length 70: " +
  "(hlim 255, next-header ICMPv6 (58) payload length: 16) fe80::6cd1:27ff:fee6:1d69 > ff02::2: " +
  "[icmp6 sum ok] ICMP6, router solicitation, length 16",
  "\t  source link-address option (1), length 8 (1): 6e:d1:27:e6:1d:69",
  "",
].join("\n");

Deno.test("parseTcpdump recognises gratuitous ARP, unsolicited and solicited NA, and the rest", () => {
  const packets = parseTcpdump(SAMPLE);
  assert.equal(packets.length, 5);
  assert.deepEqual(packets[0], {
    kind: "arp-request",
    sourceMac: "ae:a5:aa:be:63:f1",
    senderAddress: "192.0.2.50",
    targetAddress: "192.0.2.50",
    gratuitous: true,
  });
  assert.equal(packets[1]?.kind === "arp-request" && packets[1].gratuitous, false);
  assert.deepEqual(packets[2], {
    kind: "neighbor-advertisement",
    sourceMac: "6e:ae:11:f4:e8:26",
    source: "2001:db8:1::50",
    destination: "ff02::1",
    target: "2001:db8:1::50",
    flags: ["override"],
    targetMac: "6e:ae:11:f4:e8:26",
    unsolicited: true,
  });
  const solicited = packets[3];
  assert.ok(solicited?.kind === "neighbor-advertisement");
  assert.deepEqual(solicited.flags, ["router", "solicited", "override"]);
  assert.equal(solicited.unsolicited, false);
  assert.equal(solicited.targetMac, undefined);
  assert.equal(packets[4]?.kind, "other");
  assert.deepEqual(parseTcpdump(""), []);
});
