/**
 * Tests of the BIRD config renderer.
 *
 * Golden files: each case's output must equal `bgp/testdata/<case>.conf`. After a deliberate
 * change of the rendering, rewrite them with
 * `UPDATE_GOLDEN=1 deno test --allow-all bgp/bird_config_test.ts` and review the diff.
 *
 * Every golden file is also given to BIRD's own parser (`bird -p -c FILE`, `/usr/sbin/bird`),
 * so each is proven to be a config BIRD 2 accepts. Without that binary those tests are
 * ignored, except under `CI=true`, where they fail and say so.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  BIRD_CONFIG_HEADER,
  BirdConfigError,
  birdNeighborProblems,
  birdProtocolName,
  renderBirdConfig,
} from "./bird_config.ts";
import type { BirdConfigInput, RenderedNeighbor } from "./model.ts";
import { formatAddress } from "../ipam/mod.ts";

const TESTDATA = new URL("./testdata/", import.meta.url);
const BIRD = "/usr/sbin/bird";
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";
const IN_CI = Deno.env.get("CI") === "true";

/** A neighbour with nothing optional set. */
function neighbor(address: string, peerAsn: number, more: Partial<RenderedNeighbor> = {}) {
  const base: RenderedNeighbor = {
    address,
    addressFamily: address.includes(":") ? "ipv6" : "ipv4",
    peerAsn,
    localAsn: undefined,
    description: undefined,
    adminDown: false,
    password: undefined,
    families: address.includes(":") ? ["ipv6-unicast"] : ["ipv4-unicast"],
    holdTimeSeconds: undefined,
    keepaliveSeconds: undefined,
    connectRetrySeconds: undefined,
    multihopTtl: undefined,
    localAddress: undefined,
    passive: false,
    bfd: undefined,
  };
  return { ...base, ...more };
}

function input(more: Partial<BirdConfigInput> = {}): BirdConfigInput {
  const base: BirdConfigInput = {
    routerId: "192.0.2.11",
    asn: 65001,
    listenPort: undefined,
    interfaces: ["kube-lb0"],
    neighbors: [neighbor("192.0.2.1", 65000)],
  };
  return { ...base, ...more };
}

const ROUTER_ONE = neighbor("192.0.2.1", 65000, { description: "router one" });
const EVERYTHING = neighbor("192.0.2.1", 65000, {
  description: 'core "A" \\ rack 7',
  localAsn: 4_200_000_001,
  adminDown: true,
  password: "s3cret",
  families: ["ipv6-unicast", "ipv4-unicast"],
  holdTimeSeconds: 9,
  keepaliveSeconds: 3,
  connectRetrySeconds: 5,
  multihopTtl: 4,
  localAddress: "192.0.2.11",
  passive: true,
  bfd: { minRxMs: 100, minTxMs: 200, multiplier: 5 },
});

/** Every golden case: file name (without `.conf`) and input. */
const GOLDEN: ReadonlyArray<readonly [string, BirdConfigInput]> = [
  ["minimal", input()],
  [
    "everything",
    input({ listenPort: 1790, interfaces: ["kube-lb0", "lb*1"], neighbors: [EVERYTHING] }),
  ],
  ["ipv6", input({ neighbors: [neighbor("2001:db8:1::1", 65000, { holdTimeSeconds: 30 })] })],
  [
    "two_neighbors",
    input({ neighbors: [neighbor("2001:db8:1::1", 65000), ROUTER_ONE] }),
  ],
  ["no_interfaces", input({ interfaces: [] })],
  [
    "bfd",
    input({
      neighbors: [
        neighbor("192.0.2.1", 65000, { bfd: { minRxMs: 100, minTxMs: 100, multiplier: 3 } }),
      ],
    }),
  ],
  ["password", input({ neighbors: [neighbor("192.0.2.1", 65000, { password: "it's a \\ key" })] })],
];

for (const [name, config] of GOLDEN) {
  Deno.test(`renderBirdConfig: ${name} equals testdata/${name}.conf`, async () => {
    const file = new URL(`${name}.conf`, TESTDATA);
    const text = renderBirdConfig(config);
    if (UPDATE) await Deno.writeTextFile(file, text);
    assert.equal(text, await Deno.readTextFile(file));
  });
}

async function birdAvailable(): Promise<boolean> {
  try {
    return (await Deno.stat(BIRD)).isFile;
  } catch {
    return false;
  }
}

const birdMissing = !(await birdAvailable());

for (const [name] of GOLDEN) {
  Deno.test({
    name: `bird -p accepts testdata/${name}.conf`,
    ignore: birdMissing && !IN_CI,
    async fn() {
      if (birdMissing) {
        throw new Error(
          `${BIRD} not found: install BIRD 2 (Debian package bird2) to run this test`,
        );
      }
      const path = new URL(`${name}.conf`, TESTDATA).pathname;
      const out = await new Deno.Command(BIRD, { args: ["-p", "-c", path], stdin: "null" })
        .output();
      const said = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, `bird -p -c ${path} failed: ${said}`);
    },
  });
}

/** The `protocol bgp NAME { ... }` block of `name` in a rendered config. */
function block(text: string, name: string): string {
  const start = text.indexOf(`protocol bgp ${name} {\n`);
  assert.notEqual(start, -1, `no block ${name}`);
  const end = text.indexOf("\n}\n", start);
  assert.notEqual(end, -1);
  return text.slice(start, end + 3);
}

Deno.test("renderBirdConfig: adding a neighbour leaves the other blocks byte-identical", () => {
  const first = neighbor("192.0.2.1", 65000, { description: "one", password: "x" });
  const second = neighbor("2001:db8:1::1", 65010, {
    bfd: { minRxMs: 300, minTxMs: 300, multiplier: 3 },
  });
  const third = neighbor("192.0.2.2", 65020, { families: ["ipv4-unicast", "ipv6-unicast"] });
  const before = renderBirdConfig(input({ neighbors: [first, second] }));
  const after = renderBirdConfig(input({ neighbors: [first, third, second] }));
  assert.equal(block(after, "peer_192_0_2_1"), block(before, "peer_192_0_2_1"));
  assert.equal(block(after, "peer_2001_db8_1__1"), block(before, "peer_2001_db8_1__1"));
  assert.ok(after.includes("protocol bgp peer_192_0_2_2 {\n"));
  // Only the new block was added: removing it gives back the old text.
  assert.equal(after.replace(`\n${block(after, "peer_192_0_2_2")}`, ""), before);
});

Deno.test("renderBirdConfig: the first BFD neighbour adds lb_bfd but changes no other block", () => {
  const plain = neighbor("192.0.2.1", 65000);
  const withBfd = neighbor("192.0.2.2", 65000, {
    bfd: { minRxMs: 300, minTxMs: 300, multiplier: 3 },
  });
  const before = renderBirdConfig(input({ neighbors: [plain] }));
  const after = renderBirdConfig(input({ neighbors: [plain, withBfd] }));
  assert.ok(!before.includes("protocol bfd"));
  assert.ok(after.includes("protocol bfd lb_bfd {\n}\n"));
  assert.equal(block(after, "peer_192_0_2_1"), block(before, "peer_192_0_2_1"));
});

Deno.test("renderBirdConfig: the order of neighbours and interfaces does not matter", () => {
  const a = neighbor("192.0.2.1", 65000);
  const b = neighbor("2001:db8:1::1", 65000);
  const c = neighbor("192.0.2.10", 65000);
  const one = renderBirdConfig(input({ interfaces: ["b", "a", "b"], neighbors: [a, b, c] }));
  const two = renderBirdConfig(input({ interfaces: ["a", "b"], neighbors: [c, b, a] }));
  assert.equal(one, two);
  assert.ok(one.includes('  interface "a", "b";\n'));
  const names = [...one.matchAll(/^protocol bgp (\S+) \{$/gm)].map((m) => m[1]);
  assert.deepEqual(names, ["peer_192_0_2_1", "peer_192_0_2_10", "peer_2001_db8_1__1"]);
});

Deno.test("renderBirdConfig: starts with the generated-file header", () => {
  const text = renderBirdConfig(input());
  assert.equal(text.split("\n")[0], BIRD_CONFIG_HEADER);
  assert.match(BIRD_CONFIG_HEADER, /^# Generated by the PureLB agent.*Do not edit/);
  assert.ok(text.endsWith("}\n"));
});

Deno.test("renderBirdConfig: each neighbour field lands on its line", () => {
  const text = renderBirdConfig(input({ listenPort: 1790, neighbors: [EVERYTHING] }));
  const lines = block(text, "peer_192_0_2_1").trimEnd().split("\n").map((line) => line.trim());
  assert.deepEqual(lines, [
    "protocol bgp peer_192_0_2_1 {",
    `description "core 'A' \\ rack 7";`,
    "disabled;",
    "local 192.0.2.11 port 1790 as 4200000001;",
    "neighbor 192.0.2.1 as 65000;",
    "hold time 9;",
    "keepalive time 3;",
    "connect retry time 5;",
    "error wait time 1, 30;",
    "multihop 4;",
    "passive on;",
    'password "s3cret";',
    "bfd { min rx interval 100 ms; min tx interval 200 ms; multiplier 5; };",
    "ipv4 { import none; export filter lb_export_v4; next hop self; };",
    "ipv6 { import none; export filter lb_export_v6; next hop self; };",
    "}",
  ]);
});

Deno.test("renderBirdConfig: defaults: global AS, direct, no optional lines", () => {
  const text = renderBirdConfig(input({ asn: 64512 }));
  const lines = block(text, "peer_192_0_2_1").trimEnd().split("\n").map((line) => line.trim());
  assert.deepEqual(lines, [
    "protocol bgp peer_192_0_2_1 {",
    "local as 64512;",
    "neighbor 192.0.2.1 as 65000;",
    "error wait time 1, 30;",
    "direct;",
    "ipv4 { import none; export filter lb_export_v4; next hop self; };",
    "}",
  ]);
});

Deno.test("renderBirdConfig: no interfaces: no protocol direct, filters still there", () => {
  const text = renderBirdConfig(input({ interfaces: [] }));
  assert.ok(!text.includes("protocol direct"));
  assert.ok(text.includes("filter lb_export_v4 {"));
  assert.ok(text.includes("filter lb_export_v6 {"));
  const withOne = renderBirdConfig(input());
  assert.ok(
    withOne.includes(
      'protocol direct lb_addresses {\n  ipv4;\n  ipv6;\n  interface "kube-lb0";\n}',
    ),
  );
});

Deno.test("renderBirdConfig: interface names are matched literally (wildcards escaped)", () => {
  const text = renderBirdConfig(input({ interfaces: ["lb*1", "a?b", "back\\slash"] }));
  assert.ok(text.includes('  interface "a\\?b", "back\\\\slash", "lb\\*1";\n'));
});

Deno.test("renderBirdConfig: refuses what a BIRD string cannot hold", () => {
  for (const password of ['a"b', "a\nb", "a\rb", "a\u0000b", "", "x".repeat(81)]) {
    const bad = input({ neighbors: [neighbor("192.0.2.1", 65000, { password })] });
    assert.throws(() => renderBirdConfig(bad), (error: unknown) => {
      assert.ok(error instanceof BirdConfigError);
      assert.equal(error.neighbor, "192.0.2.1");
      assert.match(error.problems[0] ?? "", /^password: /);
      return true;
    });
  }
  // 80 bytes is still fine; a backslash stands for itself.
  renderBirdConfig(
    input({ neighbors: [neighbor("192.0.2.1", 65000, { password: "x".repeat(80) })] }),
  );
  for (const name of ['a"b', "a\nb", ""]) {
    assert.throws(() => renderBirdConfig(input({ interfaces: [name] })), (error: unknown) => {
      assert.ok(error instanceof BirdConfigError);
      assert.equal(error.neighbor, undefined);
      assert.match(error.problems[0] ?? "", /^interfaces: /);
      return true;
    });
  }
});

Deno.test("renderBirdConfig: a description never breaks out of its string", () => {
  const text = renderBirdConfig(
    input({ neighbors: [neighbor("192.0.2.1", 65000, { description: 'x";\n}\nprotocol "y' })] }),
  );
  assert.ok(text.includes(`  description "x'; } protocol 'y";\n`));
});

Deno.test("birdNeighborProblems: finds each unrenderable field", () => {
  const cases: ReadonlyArray<readonly [Partial<RenderedNeighbor>, RegExp]> = [
    [{ address: "192.0.2.300" }, /^address: /],
    [{ address: "2001:db8::1" }, /^address: 2001:db8::1 is not ipv4/],
    [{ address: "fe80::1", addressFamily: "ipv6" }, /^address: link-local/],
    [{ localAddress: "2001:db8::11" }, /^localAddress: .* family/],
    [{ localAddress: "nope" }, /^localAddress: /],
    [{ peerAsn: 0 }, /^peerAsn: /],
    [{ peerAsn: 4_294_967_296 }, /^peerAsn: /],
    [{ localAsn: 1.5 }, /^localAsn: /],
    [{ holdTimeSeconds: 2 }, /^holdTimeSeconds: /],
    [{ keepaliveSeconds: 0 }, /^keepaliveSeconds: /],
    [{ holdTimeSeconds: 9, keepaliveSeconds: 10 }, /^keepaliveSeconds: must be at most/],
    [{ connectRetrySeconds: 0 }, /^connectRetrySeconds: /],
    [{ multihopTtl: 256 }, /^multihopTtl: /],
    [{ bfd: { minRxMs: 0, minTxMs: 100, multiplier: 3 } }, /^bfd\.minRxMs: /],
    [{ bfd: { minRxMs: 100, minTxMs: 100.5, multiplier: 3 } }, /^bfd\.minTxMs: /],
    [{ bfd: { minRxMs: 100, minTxMs: 100, multiplier: 0 } }, /^bfd\.multiplier: /],
    [
      { multihopTtl: 3, bfd: { minRxMs: 100, minTxMs: 100, multiplier: 3 } },
      /^bfd: BIRD needs transport\.localAddress/,
    ],
  ];
  for (const [change, expected] of cases) {
    const problems = birdNeighborProblems(neighbor("192.0.2.1", 65000, change));
    assert.equal(problems.length, 1, `${JSON.stringify(change)}: ${problems.join("; ")}`);
    assert.match(problems[0] ?? "", expected);
  }
  assert.deepEqual(birdNeighborProblems(EVERYTHING), []);
  assert.deepEqual(birdNeighborProblems(neighbor("192.0.2.1", 65000, { holdTimeSeconds: 0 })), []);
});

Deno.test("renderBirdConfig: refuses a bad global setting or a neighbour listed twice", () => {
  for (
    const [change, expected] of [
      [{ routerId: "2001:db8::1" }, /^routerId: /],
      [{ asn: 0 }, /^asn: /],
      [{ listenPort: 65536 }, /^listenPort: /],
    ] as const
  ) {
    assert.throws(() => renderBirdConfig(input(change)), (error: unknown) => {
      assert.ok(error instanceof BirdConfigError);
      assert.match(error.problems[0] ?? "", expected);
      return true;
    });
  }
  const twice = input({ neighbors: [neighbor("2001:db8::1", 1), neighbor("2001:DB8:0::1", 2)] });
  assert.throws(() => renderBirdConfig(twice), /listed twice/);
});

Deno.test("birdProtocolName: one valid, unique BIRD symbol per address", () => {
  assert.equal(birdProtocolName("192.0.2.1"), "peer_192_0_2_1");
  assert.equal(birdProtocolName("2001:db8:1::1"), "peer_2001_db8_1__1");
  assert.equal(birdProtocolName("2001:DB8:1:0::1"), "peer_2001_db8_1__1");
  assert.equal(birdProtocolName("::"), "peer___");
  assert.throws(() => birdProtocolName("fe80::1%eth0"), BirdConfigError);
  assert.throws(() => birdProtocolName("peer"), BirdConfigError);
  const longest = birdProtocolName("2001:db8:1111:2222:3333:4444:5555:6666");
  assert.equal(longest, "peer_2001_db8_1111_2222_3333_4444_5555_6666");
  assert.ok(longest.length <= 64);
  // Texts that would collide if `.` and `:` were simply replaced in them.
  assert.notEqual(birdProtocolName("1.2.3.4"), birdProtocolName("::1:2:3:4"));
  assert.notEqual(birdProtocolName("::1:2:3:4"), birdProtocolName("::1.2.3.4"));
  assert.equal(birdProtocolName("::ffff:192.0.2.1"), birdProtocolName("::ffff:c000:201"));
  // Any two addresses: same name exactly when same address; every name a BIRD symbol.
  const group = fc.oneof(fc.constant(0), fc.constant(1), fc.integer({ min: 0, max: 0xffff }));
  const address = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }).map((n) => ({
      family: "IPv4" as const,
      value: BigInt(n),
    })),
    fc.array(group, { minLength: 8, maxLength: 8 }).map((parts) => ({
      family: "IPv6" as const,
      value: parts.reduce((v, part) => (v << 16n) | BigInt(part), 0n),
    })),
  );
  fc.assert(
    fc.property(address, address, (a, b) => {
      const nameA = birdProtocolName(formatAddress(a));
      const nameB = birdProtocolName(formatAddress(b));
      assert.match(nameA, /^[A-Za-z_][A-Za-z0-9_]{0,63}$/);
      const same = a.family === b.family && a.value === b.value;
      assert.equal(nameA === nameB, same);
    }),
    { numRuns: 2000 },
  );
});
