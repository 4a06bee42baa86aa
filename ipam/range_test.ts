import assert from "node:assert/strict";
import { AddressRange, parseCidr, parseRange, RangeParseError } from "./range.ts";
import { parseAddress } from "./address.ts";

const ACCEPTED: readonly {
  readonly why: string;
  readonly text: string;
  readonly first: string;
  readonly last: string;
  readonly size: bigint;
}[] = [
  {
    why: "a plain range",
    text: "10.0.0.1-10.0.0.9",
    first: "10.0.0.1",
    last: "10.0.0.9",
    size: 9n,
  },
  {
    why: "spaces around the dash",
    text: "10.0.0.1 - 10.0.0.9",
    first: "10.0.0.1",
    last: "10.0.0.9",
    size: 9n,
  },
  {
    why: "spaces and tabs around both ends",
    text: " \t10.0.0.1\t-  10.0.0.9 \n",
    first: "10.0.0.1",
    last: "10.0.0.9",
    size: 9n,
  },
  {
    why: "a one-address range",
    text: "192.0.2.7-192.0.2.7",
    first: "192.0.2.7",
    last: "192.0.2.7",
    size: 1n,
  },
  {
    why: "an IPv6 range in long, uppercase form",
    text: "2001:DB8:0:0:0:0:0:10 - 2001:db8::1f",
    first: "2001:db8::10",
    last: "2001:db8::1f",
    size: 16n,
  },
  {
    why: "a CIDR, network and broadcast included",
    text: "192.168.10.0/24",
    first: "192.168.10.0",
    last: "192.168.10.255",
    size: 256n,
  },
  {
    why: "a /32 CIDR",
    text: "192.168.10.240/32",
    first: "192.168.10.240",
    last: "192.168.10.240",
    size: 1n,
  },
  {
    why: "an IPv4 CIDR with host bits set starting at that address",
    text: "192.168.10.240/24",
    first: "192.168.10.240",
    last: "192.168.10.255",
    size: 16n,
  },
  {
    why: "an IPv6 CIDR with host bits set starting at that address",
    text: "2001:db8::1/112",
    first: "2001:db8::1",
    last: "2001:db8::ffff",
    size: 65535n,
  },
  {
    why: "the PureLB sample v6 pool",
    text: "fc00:270:154:0:8100::4/126",
    first: "fc00:270:154:0:8100::4",
    last: "fc00:270:154:0:8100::7",
    size: 4n,
  },
  {
    why: "a whole IPv6 /64",
    text: "2001:db8:1:2::/64",
    first: "2001:db8:1:2::",
    last: "2001:db8:1:2:ffff:ffff:ffff:ffff",
    size: 1n << 64n,
  },
  {
    why: "all of IPv4",
    text: "0.0.0.0/0",
    first: "0.0.0.0",
    last: "255.255.255.255",
    size: 1n << 32n,
  },
  {
    why: "a CIDR with surrounding spaces",
    text: " 10.0.0.0/30 ",
    first: "10.0.0.0",
    last: "10.0.0.3",
    size: 4n,
  },
];

for (const { why, text, first, last, size } of ACCEPTED) {
  Deno.test(`parseRange accepts ${why}: ${JSON.stringify(text)}`, () => {
    const range = parseRange(text);
    assert.equal(range.first, first);
    assert.equal(range.last, last);
    assert.equal(range.size, size);
    assert.equal(range.toString(), `${first}-${last}`);
  });
}

const REJECTED: readonly {
  readonly why: string;
  readonly text: string;
  readonly message: string;
}[] = [
  {
    why: "a bare IPv4 address",
    text: "10.0.0.5",
    message: '"10.0.0.5" is a bare address; write a range A-B or a CIDR',
  },
  {
    why: "a bare IPv6 address",
    text: " 2001:db8::5 ",
    message: '" 2001:db8::5 " is a bare address; write a range A-B or a CIDR',
  },
  { why: "an empty text", text: "", message: '"" is empty; write a range A-B or a CIDR' },
  { why: "only spaces", text: "   ", message: '"   " is empty; write a range A-B or a CIDR' },
  { why: "garbage", text: "banana", message: '"banana" is not a range A-B or a CIDR' },
  {
    why: "garbage at the end of a range",
    text: "10.0.0.1-banana",
    message: '"10.0.0.1-banana" is not a valid range: "banana" is not an IP address',
  },
  {
    why: "garbage at the start of a range",
    text: "10.0.0-10.0.0.9",
    message: '"10.0.0-10.0.0.9" is not a valid range: "10.0.0" is not an IP address',
  },
  {
    why: "a missing end",
    text: "10.0.0.1-",
    message: '"10.0.0.1-" is not a valid range: an address is missing',
  },
  {
    why: "two dashes",
    text: "10.0.0.1-10.0.0.5-10.0.0.9",
    message: '"10.0.0.1-10.0.0.5-10.0.0.9" has more than one "-"; write a range A-B or a CIDR',
  },
  {
    why: "mixed families",
    text: "10.0.0.1-2001:db8::1",
    message: '"10.0.0.1-2001:db8::1" mixes families: 10.0.0.1 is IPv4 and 2001:db8::1 is IPv6',
  },
  {
    why: "first above last (IPv4)",
    text: "10.0.0.9 - 10.0.0.1",
    message: '"10.0.0.9 - 10.0.0.1" starts after it ends: 10.0.0.9 is above 10.0.0.1',
  },
  {
    why: "first above last (IPv6)",
    text: "2001:db8::9-2001:db8::1",
    message: '"2001:db8::9-2001:db8::1" starts after it ends: 2001:db8::9 is above 2001:db8::1',
  },
  {
    why: "an IPv4 prefix longer than 32",
    text: "10.0.0.0/33",
    message: '"10.0.0.0/33" has prefix length "33"; IPv4 allows 0 to 32',
  },
  {
    why: "an IPv6 prefix longer than 128",
    text: "2001:db8::/129",
    message: '"2001:db8::/129" has prefix length "129"; IPv6 allows 0 to 128',
  },
  {
    why: "a prefix that is not a number",
    text: "10.0.0.0/x",
    message: '"10.0.0.0/x" has prefix length "x"; IPv4 allows 0 to 32',
  },
  {
    why: "a prefix with a leading zero",
    text: "10.0.0.0/024",
    message: '"10.0.0.0/024" has prefix length "024"; IPv4 allows 0 to 32',
  },
  {
    why: "a CIDR of garbage",
    text: "banana/24",
    message: '"banana/24" is not a valid CIDR: "banana" is not an IP address',
  },
  {
    why: "a CIDR used as a range end",
    text: "10.0.0.0/24-10.0.1.0/24",
    message: '"10.0.0.0/24-10.0.1.0/24" is not a valid range: "10.0.0.0/24" is not an IP address',
  },
];

for (const { why, text, message } of REJECTED) {
  Deno.test(`parseRange rejects ${why}: ${JSON.stringify(text)}`, () => {
    assert.throws(
      () => parseRange(text),
      (error: unknown) => {
        assert.ok(error instanceof RangeParseError);
        assert.equal(error.name, "RangeParseError");
        assert.equal(error.text, text);
        assert.equal(error.message, message);
        return true;
      },
    );
  });
}

Deno.test("parseCidr keeps the written address and finds the network", () => {
  const cidr = parseCidr("192.0.2.77/26");
  assert.equal(cidr.toString(), "192.0.2.64/26");
  assert.equal(cidr.address.value, parseAddress("192.0.2.77").value);
  assert.equal(cidr.network.first, "192.0.2.64");
  assert.equal(cidr.network.last, "192.0.2.127");
  assert.equal(parseCidr("2001:db8:1:2:3::/64").toString(), "2001:db8:1:2::/64");
});

Deno.test("parseCidr rejects a bare address and a range", () => {
  assert.throws(() => parseCidr("192.0.2.0"), /"192\.0\.2\.0" is a bare address; write a CIDR/);
  assert.throws(
    () => parseCidr("192.0.2.0-192.0.2.9"),
    /"192\.0\.2\.0-192\.0\.2\.9" is not a CIDR; write an address, a slash and a prefix length/,
  );
});

Deno.test("contains works on text and parsed addresses, per family", () => {
  const range = parseRange("10.0.0.10-10.0.0.20");
  assert.equal(range.contains("10.0.0.10"), true);
  assert.equal(range.contains("10.0.0.20"), true);
  assert.equal(range.contains("10.0.0.9"), false);
  assert.equal(range.contains("10.0.0.21"), false);
  assert.equal(range.contains(parseAddress("10.0.0.15")), true);
  assert.equal(range.contains("::ffff:10.0.0.15"), false);
  assert.equal(range.contains({ family: "IPv6", value: range.firstValue }), false);
  assert.equal(range.contains("garbage"), false);
});

Deno.test("overlaps and containsRange", () => {
  const base = parseRange("10.0.0.10-10.0.0.20");
  const cases: readonly [string, boolean, boolean][] = [
    ["10.0.0.0-10.0.0.9", false, false],
    ["10.0.0.0-10.0.0.10", true, false],
    ["10.0.0.12-10.0.0.13", true, true],
    ["10.0.0.20-10.0.0.30", true, false],
    ["10.0.0.21-10.0.0.30", false, false],
    ["10.0.0.0/24", true, false],
    ["10.0.0.10-10.0.0.20", true, true],
  ];
  for (const [text, overlaps, contained] of cases) {
    const other = parseRange(text);
    assert.equal(base.overlaps(other), overlaps, `overlaps ${text}`);
    assert.equal(other.overlaps(base), overlaps, `overlaps is symmetric for ${text}`);
    assert.equal(base.containsRange(other), contained, `containsRange ${text}`);
  }
  const v6 = new AddressRange("IPv6", base.firstValue, base.lastValue);
  assert.equal(base.overlaps(v6), false, "same values in another family do not overlap");
});

Deno.test("iteration is lazy: a /64 yields its first addresses at once", () => {
  const range = parseRange("2001:db8::/64");
  const firstThree: string[] = [];
  for (const address of range) {
    firstThree.push(address.value.toString(16));
    if (firstThree.length === 3) break;
  }
  assert.deepEqual(firstThree, [
    "20010db8000000000000000000000000",
    "20010db8000000000000000000000001",
    "20010db8000000000000000000000002",
  ]);
});

Deno.test("iteration covers a small range exactly", () => {
  const values = [...parseRange("10.0.0.254-10.0.1.1")].map((address) => address.value);
  const first = parseAddress("10.0.0.254").value;
  assert.deepEqual(values, [first, first + 1n, first + 2n, first + 3n]);
});

Deno.test("AddressRange refuses reversed or out-of-family bounds", () => {
  assert.throws(() => new AddressRange("IPv4", 5n, 4n), RangeError);
  assert.throws(() => new AddressRange("IPv4", 0n, 1n << 32n), RangeError);
  assert.throws(() => new AddressRange("IPv6", -1n, 0n), RangeError);
});
