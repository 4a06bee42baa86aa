import assert from "node:assert/strict";
import fc from "fast-check";
import { electionHash, electionInput, rankCandidates, winner } from "./hash.ts";

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// Computed with `printf 'node#addr' | sha256sum` (the same bytes Go's sha256.Sum256 hashes).
const KNOWN_VECTORS: readonly { readonly input: string; readonly sha256: string }[] = [
  {
    input: "node-a#192.0.2.10",
    sha256: "d4b84135501a6622f43f01422f65d768d1a4637914be8add4e31f107336b8068",
  },
  {
    input: "node-b#192.0.2.10",
    sha256: "6e9fb809c116d8f27df8ac49a804ddcf00101a76d602d91312d91548ae06abbf",
  },
  {
    input: "node-c#192.0.2.10",
    sha256: "39f2d7a8f2401847a848a92e8435873a10a277cabe7bc275e797deb43bd7cd0c",
  },
  {
    input: "node-a#2001:db8::1",
    sha256: "3c9f88a7e2ef52a1c015be314124ea3ab99785b842ce9ee37afdf6470837efbe",
  },
  {
    input: "node-b#2001:db8::1",
    sha256: "1aee61dde2bd8a0c8b0177a52ced9e0a52e8108284e6e3f14220d9f9d98cbc2e",
  },
  {
    input: "n\u00f6de#192.0.2.1",
    sha256: "80fb26112805665b8d4c40aa16cc476ccb31091adc1228e03ae9c2ce5a4df44e",
  },
];

Deno.test("electionHash equals sha256sum of the UTF-8 bytes of nodeName#address", () => {
  for (const { input, sha256 } of KNOWN_VECTORS) {
    const hash = input.indexOf("#");
    assert.equal(hex(electionHash(input.slice(0, hash), input.slice(hash + 1))), sha256, input);
  }
});

Deno.test("electionInput uses the canonical address text and leaves other keys alone", () => {
  assert.equal(electionInput("node-a", "2001:DB8:0:0::1"), "node-a#2001:db8::1");
  assert.equal(electionInput("node-a", "192.0.2.10"), "node-a#192.0.2.10");
  assert.equal(electionInput("node-a", "my-sharing-key"), "node-a#my-sharing-key");
  assert.equal(
    hex(electionHash("node-a", "2001:0db8::0001")),
    hex(electionHash("node-a", "2001:db8::1")),
  );
});

Deno.test("winner takes the lowest hash, in byte order", () => {
  // node-c 39f2... < node-b 6e9f... < node-a d4b8...
  assert.equal(winner(["node-a", "node-b", "node-c"], "192.0.2.10"), "node-c");
  assert.equal(winner(["node-a", "node-b"], "192.0.2.10"), "node-b");
  // node-b 1aee... < node-a 3c9f... < node-c bb83...
  assert.equal(winner(["node-c", "node-a", "node-b"], "2001:db8::1"), "node-b");
  assert.equal(winner(["node-c", "node-a"], "2001:DB8::0:1"), "node-a");
  // worker-3 1a0a... < worker-2 719c... < worker-1 fa9a...
  assert.deepEqual(rankCandidates(["worker-1", "worker-2", "worker-3"], "203.0.113.7"), [
    "worker-3",
    "worker-2",
    "worker-1",
  ]);
});

Deno.test("winner of no candidates is undefined; one candidate always wins", () => {
  assert.equal(winner([], "192.0.2.10"), undefined);
  assert.equal(winner(["only"], "192.0.2.10"), "only");
  assert.deepEqual(rankCandidates([], "192.0.2.10"), []);
  assert.deepEqual(rankCandidates(["a", "a"], "192.0.2.10"), ["a"]);
});

const nodeNames = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/), {
  minLength: 1,
  maxLength: 12,
});
const addresses = fc.oneof(fc.ipV4(), fc.ipV6());

Deno.test("property: every node computes the same winner whatever the candidate order", () => {
  fc.assert(
    fc.property(
      nodeNames.chain((names) =>
        fc.tuple(
          fc.constant(names),
          fc.shuffledSubarray(names, {
            minLength: names.length,
            maxLength: names.length,
          }),
        )
      ),
      addresses,
      ([names, shuffled], address) => {
        assert.equal(winner(shuffled, address), winner(names, address));
        assert.equal(winner([...names].reverse(), address), winner(names, address));
      },
    ),
  );
});

Deno.test("property: the winner is a candidate and ranks first", () => {
  fc.assert(
    fc.property(nodeNames, addresses, (names, address) => {
      const elected = winner(names, address);
      assert.ok(elected !== undefined && names.includes(elected));
      assert.equal(rankCandidates(names, address)[0], elected);
    }),
  );
});

Deno.test("property: removing a node that did not win never changes the winner", () => {
  fc.assert(
    fc.property(nodeNames, addresses, fc.nat(), (names, address, pick) => {
      const elected = winner(names, address);
      const losers = names.filter((name) => name !== elected);
      fc.pre(losers.length > 0);
      const removed = losers[pick % losers.length];
      assert.equal(winner(names.filter((name) => name !== removed), address), elected);
    }),
  );
});

Deno.test("winners spread roughly evenly over the nodes (4 nodes, 4000 addresses)", () => {
  const nodes = ["node-a", "node-b", "node-c", "node-d"];
  const wins = new Map(nodes.map((node) => [node, 0]));
  const addressCount = 4000;
  for (let i = 0; i < addressCount; i++) {
    const address = `198.51.${100 + (i >> 8)}.${i & 0xff}`;
    const elected = winner(nodes, address);
    assert.ok(elected !== undefined);
    wins.set(elected, (wins.get(elected) ?? 0) + 1);
  }
  // Expected 1000 each, standard deviation about 27: 850..1150 is over 5 sigma wide.
  for (const [node, count] of wins) {
    assert.ok(count > 850 && count < 1150, `${node} won ${count} of ${addressCount}`);
  }
});
