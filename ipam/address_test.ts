import assert from "node:assert/strict";
import {
  AddressParseError,
  canonicalAddress,
  formatAddress,
  maxAddressValue,
  parseAddress,
  tryParseAddress,
} from "./address.ts";

const ACCEPTED: readonly {
  readonly text: string;
  readonly family: "IPv4" | "IPv6";
  readonly value: bigint;
  readonly canonical: string;
}[] = [
  { text: "0.0.0.0", family: "IPv4", value: 0n, canonical: "0.0.0.0" },
  { text: "192.0.2.5", family: "IPv4", value: 0xc0000205n, canonical: "192.0.2.5" },
  { text: "255.255.255.255", family: "IPv4", value: 0xffffffffn, canonical: "255.255.255.255" },
  { text: "::", family: "IPv6", value: 0n, canonical: "::" },
  { text: "::1", family: "IPv6", value: 1n, canonical: "::1" },
  {
    text: "2001:DB8:0:0:0:0:0:1",
    family: "IPv6",
    value: 0x20010db8000000000000000000000001n,
    canonical: "2001:db8::1",
  },
  {
    text: "fc00:270:154:0:8100::4",
    family: "IPv6",
    value: 0xfc000270015400008100000000000004n,
    canonical: "fc00:270:154:0:8100::4",
  },
  {
    text: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    family: "IPv6",
    value: (1n << 128n) - 1n,
    canonical: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
  },
];

for (const { text, family, value, canonical } of ACCEPTED) {
  Deno.test(`parseAddress reads ${text} as ${family} ${canonical}`, () => {
    const address = parseAddress(text);
    assert.deepEqual(address, { family, value });
    assert.equal(formatAddress(address), canonical);
    assert.equal(canonicalAddress(text), canonical);
  });
}

const REJECTED: readonly string[] = [
  "",
  " 192.0.2.5",
  "192.0.2.5 ",
  "192.0.2",
  "10.1",
  "3221225989",
  "0xc0.0.2.5",
  "010.0.0.1",
  "256.0.0.1",
  "192.0.2.5/32",
  "fe80::1%eth0",
  "2001:db8:::1",
  "2001:db8::g",
  "not-an-address",
];

for (const text of REJECTED) {
  Deno.test(`parseAddress rejects ${JSON.stringify(text)} naming it`, () => {
    assert.equal(tryParseAddress(text), undefined);
    assert.equal(canonicalAddress(text), undefined);
    assert.throws(
      () => parseAddress(text),
      (error: unknown) =>
        error instanceof AddressParseError && error.name === "AddressParseError" &&
        error.text === text && error.message.includes(`"${text}"`),
    );
  });
}

Deno.test("formatAddress refuses values outside the family", () => {
  assert.throws(
    () => formatAddress({ family: "IPv4", value: maxAddressValue("IPv4") + 1n }),
    RangeError,
  );
  assert.throws(() => formatAddress({ family: "IPv6", value: -1n }), RangeError);
});

Deno.test("parse results are remembered but never change: the same answer past the cache's size", () => {
  const texts = Array.from({ length: 10_000 }, (_, i) => `2001:DB8::${i.toString(16)}`);
  const first = texts.map((text) => canonicalAddress(text));
  const again = texts.map((text) => canonicalAddress(text));
  assert.deepEqual(again, first);
  assert.equal(first[255], "2001:db8::ff");
  assert.equal(canonicalAddress("2001:db8::zz"), undefined);
  assert.equal(canonicalAddress("2001:db8::zz"), undefined);
  assert.deepEqual(tryParseAddress("192.0.2.1"), { family: "IPv4", value: 3221225985n });
});
