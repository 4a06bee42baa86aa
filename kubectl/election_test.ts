import assert from "node:assert/strict";
import { rankCandidates } from "../election/mod.ts";
import { AddressArgumentError, explainElection, renderElection } from "./election.ts";
import { nodeLease } from "./testdata.ts";

const NOW = Date.parse("2026-01-01T00:00:00Z");
const LAN = "192.0.2.0/24,2001:db8:1::/64";

const leases = [
  nodeLease("node-a", NOW, LAN),
  nodeLease("node-b", NOW, LAN),
  nodeLease("node-c", NOW, LAN),
  nodeLease("node-d", NOW - 30_000, LAN), // expired 20 s ago
  nodeLease("node-e", NOW, "198.51.100.0/24"), // another subnet
  nodeLease("node-f", NOW, ""), // not selected
];

Deno.test("election: winner and runner-up are the agents' ranking of the live candidates", () => {
  const report = explainElection("192.0.2.240", leases, undefined, NOW);
  assert.deepEqual(
    report.candidates,
    rankCandidates(["node-a", "node-b", "node-c"], "192.0.2.240"),
  );
  assert.equal(report.winner, report.candidates[0]);
  assert.equal(report.runnerUp, report.candidates[1]);
  assert.equal(report.kind, "local");
  assert.deepEqual(
    report.nodes.map((n) => [n.node, n.lease, n.verdict]),
    [
      ["node-a", "live", "candidate"],
      ["node-b", "live", "candidate"],
      ["node-c", "live", "candidate"],
      ["node-d", "expired", "expired"],
      ["node-e", "live", "subnet-mismatch"],
      ["node-f", "live", "not-selected"],
    ],
  );
  const byNode = new Map(report.nodes.map((n) => [n.node, n]));
  assert.match(byNode.get("node-d")?.reason ?? "", /^Lease expired 20 s ago/);
  assert.equal(byNode.get("node-e")?.reason, "192.0.2.240 is in none of its subnets");
  assert.match(byNode.get("node-f")?.reason ?? "", /no LBNodeAgent selects this node/);
  assert.equal(byNode.get(report.winner ?? "")?.rank, 1);
});

Deno.test("election: a Node without a Lease is named, an address is canonical", () => {
  const report = explainElection(" 2001:DB8:1::240 ", leases, ["node-a", "node-z"], NOW);
  assert.equal(report.address, "2001:db8:1::240");
  const z = report.nodes.find((n) => n.node === "node-z");
  assert.equal(z?.verdict, "no-lease");
  assert.match(z?.reason ?? "", /^no Lease/);
});

Deno.test("election: an address in no subnet is virtual; no candidates, no winner", () => {
  const report = explainElection("203.0.113.5", leases, undefined, NOW);
  assert.equal(report.kind, "virtual");
  assert.equal(report.winner, undefined);
  assert.match(
    renderElection(report, "table"),
    /virtual address.*\(node-a, node-b, node-c, node-e\)/,
  );
});

Deno.test("election: not an address is refused", () => {
  assert.throws(() => explainElection("web", leases, undefined, NOW), AddressArgumentError);
});

Deno.test("election: the table names winner and runner-up; json round-trips the report", () => {
  const report = explainElection("192.0.2.240", leases, undefined, NOW);
  const text = renderElection(report, "table");
  assert.match(
    text.split("\n")[0] ?? "",
    new RegExp(`^192\\.0\\.2\\.240: winner ${report.winner}, runner-up ${report.runnerUp} `),
  );
  assert.match(text, /\nNODE\s+LEASE\s+SUBNETS\s+CANDIDATE\s+RANK\s+REASON\n/);
  assert.deepEqual(JSON.parse(renderElection(report, "json")), JSON.parse(JSON.stringify(report)));
});
