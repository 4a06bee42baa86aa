import assert from "node:assert/strict";
import {
  AggregationParseError,
  findGroupOverlaps,
  type GroupRanges,
  MAX_GROUP_NAMESPACES,
  parseAggregation,
  parseServiceGroupSpec,
  parseServiceGroupTenancy,
  type ServiceGroupSource,
} from "./servicegroup.ts";
import { type Aggregation, formatAggregation, LocalPool } from "./pool.ts";
import type { IpFamily } from "./address.ts";

const AGGREGATIONS: readonly {
  readonly text: string;
  readonly family: IpFamily | undefined;
  readonly expected: Aggregation | string;
}[] = [
  { text: "default", family: "IPv4", expected: { kind: "default" } },
  { text: "", family: "IPv4", expected: { kind: "default" } },
  { text: "  ", family: "IPv6", expected: { kind: "default" } },
  { text: "/0", family: "IPv4", expected: { kind: "prefix", prefixLength: 0 } },
  { text: "/24", family: "IPv4", expected: { kind: "prefix", prefixLength: 24 } },
  { text: "/32", family: "IPv4", expected: { kind: "prefix", prefixLength: 32 } },
  { text: "/33", family: "IPv4", expected: '"/33" is too long: IPv4 allows /0 to /32' },
  { text: "/128", family: "IPv6", expected: { kind: "prefix", prefixLength: 128 } },
  { text: "/129", family: "IPv6", expected: '"/129" is too long: IPv6 allows /0 to /128' },
  { text: "/128", family: undefined, expected: { kind: "prefix", prefixLength: 128 } },
  { text: "/129", family: undefined, expected: '"/129" is too long: /0 to /128' },
  { text: "24", family: "IPv4", expected: '"24" has no slash; write "/24" or "default"' },
  { text: "/024", family: "IPv4", expected: '"/024" has a leading zero; write "/24"' },
  { text: "/", family: "IPv4", expected: '"/" is not an aggregation; write "default" or "/N"' },
  {
    text: "Default",
    family: "IPv4",
    expected: '"Default" is not an aggregation; write "default" or "/N"',
  },
  { text: "/-1", family: "IPv4", expected: '"/-1" is not an aggregation; write "default" or "/N"' },
];

for (const { text, family, expected } of AGGREGATIONS) {
  Deno.test(`parseAggregation ${JSON.stringify(text)} (${family ?? "any family"})`, () => {
    if (typeof expected === "string") {
      assert.throws(
        () => parseAggregation(text, family),
        (error: unknown) =>
          error instanceof AggregationParseError && error.name === "AggregationParseError" &&
          error.text === text && error.message === expected,
      );
    } else {
      assert.deepEqual(parseAggregation(text, family), expected);
    }
  });
}

function localSource(spec: unknown): Extract<ServiceGroupSource, { kind: "local" }> {
  const result = parseServiceGroupSpec(spec);
  if (result.kind !== "valid") {
    assert.fail(`expected a valid spec: ${result.errors.map((e) => e.message).join("; ")}`);
  }
  if (result.source.kind !== "local") assert.fail("expected a local source");
  return result.source;
}

type RangeSummary = readonly [field: string, range: string, subnet: string, aggregation: string];

function summarise(spec: unknown): readonly RangeSummary[] {
  return localSource(spec).pool.ranges.map((entry) => [
    entry.field,
    entry.range.toString(),
    entry.subnet.toString(),
    `${formatAggregation(entry.aggregation)}=${entry.aggregationPrefixLength}`,
  ]);
}

const VALID: readonly {
  readonly why: string;
  readonly spec: unknown;
  readonly ranges: readonly RangeSummary[];
}[] = [
  {
    why: "the PureLB sample with v4pools and v6pools",
    spec: {
      local: {
        v4pools: [{
          pool: "192.168.10.240-192.168.10.243",
          subnet: "192.168.10.0/24",
          aggregation: "default",
        }],
        v6pools: [{
          pool: "fc00:270:154:0:8100::4/126",
          subnet: "fc00:270:154::/64",
          aggregation: "default",
        }],
      },
    },
    ranges: [
      [
        "spec.local.v6pools[0]",
        "fc00:270:154:0:8100::4-fc00:270:154:0:8100::7",
        "fc00:270:154::/64",
        "default=64",
      ],
      ["spec.local.v4pools[0]", "192.168.10.240-192.168.10.243", "192.168.10.0/24", "default=24"],
    ],
  },
  {
    why: "several v4pools keep their order, each with its own subnet and aggregation",
    spec: {
      local: {
        v4pools: [
          { pool: "10.0.2.0/30", subnet: "10.0.2.0/24", aggregation: "/32" },
          { pool: " 10.0.1.5 - 10.0.1.6 ", subnet: "10.0.1.0/24" },
        ],
      },
    },
    ranges: [
      ["spec.local.v4pools[0]", "10.0.2.0-10.0.2.3", "10.0.2.0/24", "/32=32"],
      ["spec.local.v4pools[1]", "10.0.1.5-10.0.1.6", "10.0.1.0/24", "default=24"],
    ],
  },
  {
    why: "legacy single v4pool and v6pool entries",
    spec: {
      local: {
        v4pool: { pool: "192.0.2.0/30", subnet: "192.0.2.0/24", aggregation: "" },
        v6pool: { pool: "2001:db8::1/112", subnet: "2001:db8::/64", aggregation: "/128" },
      },
    },
    ranges: [
      ["spec.local.v6pool", "2001:db8::1-2001:db8::ffff", "2001:db8::/64", "/128=128"],
      ["spec.local.v4pool", "192.0.2.0-192.0.2.3", "192.0.2.0/24", "default=24"],
    ],
  },
  {
    why: "the legacy top-level pool",
    spec: { local: { pool: "192.0.2.16-192.0.2.31", subnet: "192.0.2.0/24", aggregation: "/25" } },
    ranges: [["spec.local", "192.0.2.16-192.0.2.31", "192.0.2.0/24", "/25=25"]],
  },
  {
    why: "lists first, then single entries, then the top-level pool",
    spec: {
      local: {
        pool: "192.0.2.100-192.0.2.101",
        subnet: "192.0.2.0/24",
        v4pool: { pool: "192.0.2.50-192.0.2.51", subnet: "192.0.2.0/24" },
        v4pools: [{ pool: "192.0.2.1-192.0.2.2", subnet: "192.0.2.0/24" }],
      },
    },
    ranges: [
      ["spec.local.v4pools[0]", "192.0.2.1-192.0.2.2", "192.0.2.0/24", "default=24"],
      ["spec.local.v4pool", "192.0.2.50-192.0.2.51", "192.0.2.0/24", "default=24"],
      ["spec.local", "192.0.2.100-192.0.2.101", "192.0.2.0/24", "default=24"],
    ],
  },
  {
    why: "network and broadcast addresses of a CIDR pool are in it; subnet host bits are ignored",
    spec: { local: { v4pools: [{ pool: "10.0.0.0/24", subnet: "10.0.0.77/24" }] } },
    ranges: [["spec.local.v4pools[0]", "10.0.0.0-10.0.0.255", "10.0.0.0/24", "default=24"]],
  },
];

for (const { why, spec, ranges } of VALID) {
  Deno.test(`parseServiceGroupSpec accepts ${why}`, () => {
    assert.deepEqual(summarise(spec), ranges);
  });
}

Deno.test("avoidBuggyIPs is optional and reaches the pool", () => {
  const range = { pool: "10.0.0.0/24", subnet: "10.0.0.0/24" };
  assert.equal(localSource({ local: { v4pools: [range] } }).pool.avoidBuggyIPs, undefined);
  const source = localSource({ local: { v4pools: [range], avoidBuggyIPs: true } });
  assert.equal(source.pool.avoidBuggyIPs, true);
  const pool = new LocalPool("buggy", source.pool);
  const first = pool.assign("ns/a", { family: "IPv4", sharingKey: "", ports: [] });
  assert.equal(first.kind === "ok" ? first.address : first.reason, "10.0.0.1");
});

Deno.test("a network/broadcast address of a CIDR pool is handed out in order", () => {
  const source = localSource({
    local: { v4pools: [{ pool: "10.0.0.0/31", subnet: "10.0.0.0/24" }] },
  });
  const pool = new LocalPool("p", source.pool);
  const taken = ["ns/a", "ns/b"].map((key) => {
    const result = pool.assign(key, { family: "IPv4", sharingKey: "", ports: [] });
    return result.kind === "ok" ? result.address : result.reason;
  });
  assert.deepEqual(taken, ["10.0.0.0", "10.0.0.1"]);
});

Deno.test("parseServiceGroupSpec reads netbox", () => {
  const result = parseServiceGroupSpec({
    netbox: { url: "https://netbox.example/", tenant: "my-tenant", aggregation: "/32" },
  });
  assert.deepEqual(result, {
    kind: "valid",
    source: {
      kind: "netbox",
      url: "https://netbox.example/",
      tenant: "my-tenant",
      aggregation: { kind: "prefix", prefixLength: 32 },
    },
  });
});

const V4 = { pool: "10.0.0.0/30", subnet: "10.0.0.0/24" };
const V4SPEC = { local: { v4pools: [V4] } };

const INVALID: readonly {
  readonly why: string;
  readonly spec: unknown;
  readonly errors: readonly [string, string, string][];
}[] = [
  {
    why: "a bare address",
    spec: { local: { v4pools: [V4, { pool: "10.0.0.5", subnet: "10.0.0.0/24" }] } },
    errors: [[
      "spec.local.v4pools[1].pool",
      "10.0.0.5",
      'spec.local.v4pools[1].pool: "10.0.0.5" is a bare address; write a range A-B or a CIDR',
    ]],
  },
  {
    why: "garbage in a pool",
    spec: { local: { v6pool: { pool: "fc00::zz/64", subnet: "fc00::/64" } } },
    errors: [[
      "spec.local.v6pool.pool",
      "fc00::zz/64",
      'spec.local.v6pool.pool: "fc00::zz/64" is not a valid CIDR: "fc00::zz" is not an IP address',
    ]],
  },
  {
    why: "mixed families in a range",
    spec: { local: { v4pool: { pool: "10.0.0.1-fc00::1", subnet: "10.0.0.0/24" } } },
    errors: [[
      "spec.local.v4pool.pool",
      "10.0.0.1-fc00::1",
      'spec.local.v4pool.pool: "10.0.0.1-fc00::1" mixes families: 10.0.0.1 is IPv4 and fc00::1 is IPv6',
    ]],
  },
  {
    why: "first above last",
    spec: { local: { pool: "10.0.0.9-10.0.0.1", subnet: "10.0.0.0/24" } },
    errors: [[
      "spec.local.pool",
      "10.0.0.9-10.0.0.1",
      'spec.local.pool: "10.0.0.9-10.0.0.1" starts after it ends: 10.0.0.9 is above 10.0.0.1',
    ]],
  },
  {
    why: "a pool outside its subnet",
    spec: { local: { v4pools: [{ pool: "10.0.1.250-10.0.2.5", subnet: "10.0.1.0/24" }] } },
    errors: [[
      "spec.local.v4pools[0].pool",
      "10.0.1.250-10.0.2.5",
      'spec.local.v4pools[0].pool: "10.0.1.250-10.0.2.5" is not inside subnet 10.0.1.0/24 ' +
      "(spec.local.v4pools[0].subnet)",
    ]],
  },
  {
    why: "an IPv6 pool in v4pools",
    spec: { local: { v4pools: [{ pool: "fc00::/126", subnet: "fc00::/64" }] } },
    errors: [[
      "spec.local.v4pools[0].pool",
      "fc00::/126",
      'spec.local.v4pools[0].pool: "fc00::/126" is IPv6; v4pools holds IPv4 ranges',
    ]],
  },
  {
    why: "a subnet of the other family",
    spec: { local: { v6pools: [{ pool: "fc00::/126", subnet: "10.0.0.0/8" }] } },
    errors: [[
      "spec.local.v6pools[0].subnet",
      "10.0.0.0/8",
      'spec.local.v6pools[0].subnet: "10.0.0.0/8" is IPv4, but the pool is IPv6',
    ]],
  },
  {
    why: "a subnet that is a bare address",
    spec: { local: { v4pool: { pool: "10.0.0.0/30", subnet: "10.0.0.0" } } },
    errors: [[
      "spec.local.v4pool.subnet",
      "10.0.0.0",
      'spec.local.v4pool.subnet: "10.0.0.0" is a bare address; write a CIDR such as 192.0.2.0/24',
    ]],
  },
  {
    why: "an aggregation without its slash",
    spec: { local: { v4pools: [{ ...V4, aggregation: "24" }] } },
    errors: [[
      "spec.local.v4pools[0].aggregation",
      "24",
      'spec.local.v4pools[0].aggregation: "24" has no slash; write "/24" or "default"',
    ]],
  },
  {
    why: "an IPv4 aggregation longer than 32",
    spec: { local: { v4pool: { ...V4, aggregation: "/64" } } },
    errors: [[
      "spec.local.v4pool.aggregation",
      "/64",
      'spec.local.v4pool.aggregation: "/64" is too long: IPv4 allows /0 to /32',
    ]],
  },
  {
    why: "an IPv6 aggregation longer than 128",
    spec: { local: { v6pool: { pool: "fc00::/126", subnet: "fc00::/64", aggregation: "/129" } } },
    errors: [[
      "spec.local.v6pool.aggregation",
      "/129",
      'spec.local.v6pool.aggregation: "/129" is too long: IPv6 allows /0 to /128',
    ]],
  },
  {
    why: "two overlapping ranges in one group",
    spec: {
      local: {
        v4pools: [V4, { pool: "10.0.0.1-10.0.0.2", subnet: "10.0.0.0/24" }],
        pool: "10.0.0.3-10.0.0.9",
        subnet: "10.0.0.0/24",
      },
    },
    errors: [
      [
        "spec.local.v4pools[1].pool",
        "10.0.0.1-10.0.0.2",
        "spec.local.v4pools[1].pool: range 10.0.0.1-10.0.0.2 overlaps spec.local.v4pools[0].pool " +
        "(10.0.0.0-10.0.0.3)",
      ],
      [
        "spec.local.pool",
        "10.0.0.3-10.0.0.9",
        "spec.local.pool: range 10.0.0.3-10.0.0.9 overlaps spec.local.v4pools[0].pool " +
        "(10.0.0.0-10.0.0.3)",
      ],
    ],
  },
  {
    why: "a missing pool and subnet",
    spec: { local: { v4pools: [{ aggregation: "default" }] } },
    errors: [
      ["spec.local.v4pools[0].pool", "", "spec.local.v4pools[0].pool: is required"],
      ["spec.local.v4pools[0].subnet", "", "spec.local.v4pools[0].subnet: is required"],
    ],
  },
  {
    why: "a top-level pool without subnet",
    spec: { local: { pool: "10.0.0.0/30" } },
    errors: [[
      "spec.local.subnet",
      "",
      "spec.local.subnet: is required when spec.local.pool is set",
    ]],
  },
  {
    why: "a top-level subnet without pool",
    spec: { local: { v4pools: [V4], subnet: "10.0.0.0/24" } },
    errors: [[
      "spec.local.pool",
      "",
      "spec.local.pool: is required when spec.local.subnet is set",
    ]],
  },
  {
    why: "wrong JSON types",
    spec: {
      local: { v4pools: { pool: "x" }, v6pools: [7], v4pool: { pool: 10, subnet: "10.0.0.0/24" } },
    },
    errors: [
      [
        "spec.local.v6pools[0]",
        "7",
        "spec.local.v6pools[0]: must be an object with pool and subnet, not a number",
      ],
      ["spec.local.v4pools", "an object", "spec.local.v4pools: must be a list, not an object"],
      ["spec.local.v4pool.pool", "10", "spec.local.v4pool.pool: must be a string, not a number"],
    ],
  },
  {
    why: "avoidBuggyIPs that is not a boolean",
    spec: { local: { v4pools: [V4], avoidBuggyIPs: "yes" } },
    errors: [[
      "spec.local.avoidBuggyIPs",
      "yes",
      "spec.local.avoidBuggyIPs: must be true or false, not a string",
    ]],
  },
  {
    why: "a local part with no range",
    spec: { local: {} },
    errors: [[
      "spec.local",
      "",
      "spec.local: has no address range; set v4pools, v6pools, v4pool, v6pool or pool",
    ]],
  },
  {
    why: "both local and netbox",
    spec: { local: { v4pools: [V4] }, netbox: { url: "https://n.example/", tenant: "t" } },
    errors: [[
      "spec",
      "local and netbox",
      "spec: set exactly one of spec.local and spec.netbox, not both",
    ]],
  },
  {
    why: "neither local nor netbox",
    spec: {},
    errors: [["spec", "", "spec: set exactly one of spec.local and spec.netbox"]],
  },
  {
    why: "a spec that is not an object",
    spec: "local",
    errors: [["spec", "local", "spec: must be an object, not a string"]],
  },
  {
    why: "a bad netbox",
    spec: { netbox: { url: "ftp://netbox.example/", tenant: " ", aggregation: "32" } },
    errors: [
      [
        "spec.netbox.url",
        "ftp://netbox.example/",
        'spec.netbox.url: "ftp://netbox.example/" is not an http(s) URL such as https://netbox.example/',
      ],
      ["spec.netbox.tenant", " ", "spec.netbox.tenant: must not be empty"],
      [
        "spec.netbox.aggregation",
        "32",
        'spec.netbox.aggregation: "32" has no slash; write "/32" or "default"',
      ],
    ],
  },
  {
    why: "a netbox without url and tenant",
    spec: { netbox: {} },
    errors: [
      ["spec.netbox.url", "", "spec.netbox.url: is required"],
      ["spec.netbox.tenant", "", "spec.netbox.tenant: is required"],
    ],
  },
];

for (const { why, spec, errors } of INVALID) {
  Deno.test(`parseServiceGroupSpec rejects ${why}`, () => {
    const result = parseServiceGroupSpec(spec);
    assert.equal(result.kind, "invalid");
    assert.ok(result.kind === "invalid");
    assert.deepEqual(
      result.errors.map((error) => [error.field, error.value, error.message]),
      errors,
    );
  });
}

function groupOf(
  name: string,
  creationTimestamp: string | Date,
  pools: readonly string[],
): GroupRanges {
  const source = localSource({
    local: { v4pools: pools.map((pool) => ({ pool, subnet: "10.0.0.0/8" })) },
  });
  return { name, creationTimestamp, ranges: source.pool.ranges };
}

Deno.test("findGroupOverlaps: the later-created group is the invalid one", () => {
  const overlaps = findGroupOverlaps([
    groupOf("young", "2024-03-01T00:00:00Z", ["10.0.0.20-10.0.0.40"]),
    groupOf("old", "2024-01-01T00:00:00Z", ["10.0.0.0/27"]),
  ]);
  assert.equal(overlaps.length, 1);
  const [overlap] = overlaps;
  assert.equal(overlap?.name, "young");
  assert.equal(overlap?.overlapsWith, "old");
  assert.equal(
    overlap?.message,
    "spec.local.v4pools[0].pool: range 10.0.0.20-10.0.0.40 overlaps range 10.0.0.0-10.0.0.31 " +
      "of ServiceGroup old, which is older",
  );
});

Deno.test("findGroupOverlaps: same creation time, the greater name loses", () => {
  const when = new Date("2024-01-01T00:00:00Z");
  const overlaps = findGroupOverlaps([
    groupOf("b", when, ["10.0.0.5-10.0.0.6"]),
    groupOf("a", "2024-01-01T00:00:00Z", ["10.0.0.0/29"]),
  ]);
  assert.deepEqual(overlaps.map((o) => [o.name, o.overlapsWith]), [["b", "a"]]);
});

Deno.test("findGroupOverlaps: a rejected group does not push out a younger one", () => {
  const overlaps = findGroupOverlaps([
    groupOf("first", "2024-01-01T00:00:00Z", ["10.0.0.0-10.0.0.9"]),
    groupOf("second", "2024-01-02T00:00:00Z", ["10.0.0.9-10.0.0.19"]),
    groupOf("third", "2024-01-03T00:00:00Z", ["10.0.0.15-10.0.0.29"]),
    groupOf("fourth", "2024-01-04T00:00:00Z", ["10.0.1.0/24"]),
  ]);
  assert.deepEqual(overlaps.map((o) => [o.name, o.overlapsWith]), [["second", "first"]]);
});

Deno.test("findGroupOverlaps: disjoint groups are all valid", () => {
  assert.deepEqual(
    findGroupOverlaps([
      groupOf("a", "2024-01-01T00:00:00Z", ["10.0.0.0/24"]),
      groupOf("b", "2024-01-01T00:00:00Z", ["10.0.1.0/24", "10.0.2.0-10.0.2.9"]),
    ]),
    [],
  );
});

const V6_ENTRY = { pool: "2001:db8::/126", subnet: "2001:db8::/64", aggregation: "/128" };

/** JSON of the wrong shape in each field the CRD declares, and the field the reader names. */
const WRONG_SHAPES: ReadonlyArray<{ readonly spec: unknown; readonly field: string }> = [
  { spec: undefined, field: "spec" },
  { spec: [], field: "spec" },
  { spec: { local: "x" }, field: "spec.local" },
  { spec: { local: { v4pools: { pool: "a", subnet: "b" } } }, field: "spec.local.v4pools" },
  {
    spec: { local: { v6pools: [V6_ENTRY, { pool: "a" }] } },
    field: "spec.local.v6pools[1].subnet",
  },
  { spec: { local: { v4pools: [{ pool: 1, subnet: "b" }] } }, field: "spec.local.v4pools[0].pool" },
  {
    spec: { local: { v6pool: { ...V6_ENTRY, aggregation: 24 } } },
    field: "spec.local.v6pool.aggregation",
  },
  { spec: { local: { v6pool: [V6_ENTRY] } }, field: "spec.local.v6pool" },
  { spec: { local: { pool: ["a"], subnet: "b" } }, field: "spec.local.pool" },
  { spec: { local: { pool: "a", subnet: null } }, field: "spec.local.subnet" },
  { spec: { local: { aggregation: false } }, field: "spec.local.aggregation" },
  { spec: { local: { avoidBuggyIPs: "true" } }, field: "spec.local.avoidBuggyIPs" },
  { spec: { netbox: { url: "https://nb/" } }, field: "spec.netbox.tenant" },
  { spec: { netbox: { url: 5, tenant: "t" } }, field: "spec.netbox.url" },
  {
    spec: { netbox: { url: "u", tenant: "t", aggregation: {} } },
    field: "spec.netbox.aggregation",
  },
];

Deno.test("parseServiceGroupSpec refuses JSON of the wrong shape, naming the field and its type", () => {
  for (const { spec, field } of WRONG_SHAPES) {
    const result = parseServiceGroupSpec(spec);
    const errors = result.kind === "invalid" ? result.errors : [];
    const named = errors.find((error) => error.field === field);
    assert.ok(named, `${JSON.stringify(spec)}: no error names ${field}: ${JSON.stringify(errors)}`);
    assert.ok(named.message.startsWith(`${field}: `), named.message);
    assert.doesNotMatch(named.message, /\ba undefined\b/);
  }
});

Deno.test("parseServiceGroupSpec ignores fields it does not know, as the API server keeps them", () => {
  const result = parseServiceGroupSpec({
    local: { v6pools: [V6_ENTRY], avoidBuggyIPs: true, futureField: 1 },
    futureSpecField: "x",
  });
  assert.equal(
    result.kind,
    "valid",
    result.kind === "invalid" ? JSON.stringify(result.errors) : "",
  );
});

Deno.test("parseServiceGroupTenancy reads the namespace fields", () => {
  assert.deepEqual(parseServiceGroupTenancy({ local: {} }), {
    kind: "valid",
    tenancy: { enforceNamespaces: false, namespaceDefault: false },
  });
  assert.deepEqual(
    parseServiceGroupTenancy({
      namespaces: ["team-a", "b2"],
      enforceNamespaces: true,
      namespaceDefault: false,
    }),
    {
      kind: "valid",
      tenancy: { namespaces: ["team-a", "b2"], enforceNamespaces: true, namespaceDefault: false },
    },
  );
});

const TENANCY_INVALID: readonly { readonly spec: unknown; readonly message: RegExp }[] = [
  {
    spec: { enforceNamespaces: true },
    message: /^spec\.enforceNamespaces: needs spec\.namespaces/,
  },
  { spec: { namespaceDefault: true }, message: /^spec\.namespaceDefault: needs spec\.namespaces/ },
  { spec: { namespaces: "team-a" }, message: /^spec\.namespaces: must be a list, not a string/ },
  { spec: { namespaces: ["ok", "Not_A_Label"] }, message: /^spec\.namespaces\[1\]: "Not_A_Label"/ },
  { spec: { namespaces: ["x".repeat(64)] }, message: /^spec\.namespaces\[0\]: .* at most 63/ },
  { spec: { namespaces: [7] }, message: /^spec\.namespaces\[0\]: must be a namespace name/ },
  { spec: { namespaces: ["a", "a"] }, message: /^spec\.namespaces\[1\]: "a" is listed twice/ },
  {
    spec: { namespaces: ["a"], enforceNamespaces: "yes" },
    message: /^spec\.enforceNamespaces: must be true or false, not a string/,
  },
  {
    spec: { namespaces: Array.from({ length: MAX_GROUP_NAMESPACES + 1 }, (_, i) => `n${i}`) },
    message: /^spec\.namespaces: has 1025 entries; at most 1024/,
  },
];

for (const { spec, message } of TENANCY_INVALID) {
  Deno.test(`parseServiceGroupTenancy refuses ${JSON.stringify(spec).slice(0, 60)}`, () => {
    const result = parseServiceGroupTenancy(spec);
    assert.equal(result.kind, "invalid");
    assert.match(result.kind === "invalid" ? result.errors[0]?.message ?? "" : "", message);
    // The group is invalid as a whole, with the same message.
    const whole = parseServiceGroupSpec({ ...V4SPEC, ...(spec as object) });
    assert.equal(whole.kind, "invalid");
    assert.ok(
      whole.kind === "invalid" && whole.errors.some((e) => message.test(e.message)),
      JSON.stringify(whole),
    );
  });
}
