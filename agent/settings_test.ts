import assert from "node:assert/strict";
import fc from "fast-check";
import type { LBNodeAgent, LBNodeAgentSpec } from "../k8s/types.ts";
import type { Labels } from "../k8s/selector.ts";
import { applyingSettings } from "./settings.ts";

function lbna(name: string, spec: LBNodeAgentSpec): LBNodeAgent {
  return { apiVersion: "purelb.io/v1", kind: "LBNodeAgent", metadata: { name }, spec };
}

const EDGE_SELECTOR = { matchLabels: { "example.com/edge": "true" } };
const ALL = lbna("all", { local: { localint: "eth0" } });
const EMPTY_SELECTOR = lbna("empty", { local: { localint: "eth9" }, nodeSelector: {} });
const EDGE = lbna("edge", { local: { localint: "eth1" }, nodeSelector: EDGE_SELECTOR });
const ZONE_A = lbna("zone-a", {
  local: { localint: "eth2" },
  nodeSelector: { matchExpressions: [{ key: "zone", operator: "In", values: ["a"] }] },
});
const NO_LOCAL = lbna("aaa-no-local", { nodeSelector: EDGE_SELECTOR });
const BROKEN = lbna("broken", {
  local: { localint: "eth3" },
  nodeSelector: { matchExpressions: [{ key: "zone", operator: "Exists", values: ["a"] }] },
});

const EDGE_NODE: Labels = { "example.com/edge": "true", zone: "a" };
const ZONE_A_NODE: Labels = { zone: "a" };
const PLAIN_NODE: Labels = {};

const CASES: ReadonlyArray<{
  readonly name: string;
  readonly agents: readonly LBNodeAgent[];
  readonly labels: Labels;
  /** The applying LBNodeAgent, or the kind of the choice when none applies. */
  readonly expected: string;
}> = [
  { name: "no LBNodeAgent", agents: [], labels: EDGE_NODE, expected: "none" },
  { name: "none with spec.local", agents: [NO_LOCAL], labels: EDGE_NODE, expected: "none" },
  { name: "a catch-all selects any node", agents: [ALL], labels: PLAIN_NODE, expected: "all" },
  {
    name: "an empty selector is a catch-all",
    agents: [EMPTY_SELECTOR],
    labels: EDGE_NODE,
    expected: "empty",
  },
  {
    name: "of two catch-alls, the first by name",
    agents: [EMPTY_SELECTOR, ALL],
    labels: PLAIN_NODE,
    expected: "all",
  },
  { name: "a selector that matches", agents: [EDGE], labels: EDGE_NODE, expected: "edge" },
  {
    name: "a selector that does not match",
    agents: [EDGE],
    labels: ZONE_A_NODE,
    expected: "notSelected",
  },
  {
    name: "a specific selector before a catch-all earlier by name",
    agents: [ALL, EDGE],
    labels: EDGE_NODE,
    expected: "edge",
  },
  {
    name: "the catch-all for the others",
    agents: [ALL, EDGE],
    labels: PLAIN_NODE,
    expected: "all",
  },
  {
    name: "of two specific selectors, the first by name",
    agents: [ZONE_A, EDGE],
    labels: EDGE_NODE,
    expected: "edge",
  },
  { name: "each node its own", agents: [ZONE_A, EDGE], labels: ZONE_A_NODE, expected: "zone-a" },
  {
    name: "an LBNodeAgent without spec.local is no candidate",
    agents: [NO_LOCAL, ALL],
    labels: EDGE_NODE,
    expected: "all",
  },
  {
    name: "a malformed selector selects nothing",
    agents: [BROKEN],
    labels: EDGE_NODE,
    expected: "notSelected",
  },
  {
    name: "a malformed selector leaves the others alone",
    agents: [BROKEN, ZONE_A],
    labels: ZONE_A_NODE,
    expected: "zone-a",
  },
];

function outcome(agents: readonly LBNodeAgent[], labels: Labels): string {
  const choice = applyingSettings(agents, labels);
  return choice.kind === "selected" ? choice.settings.from : choice.kind;
}

Deno.test("each node uses the LBNodeAgent that selects it, specific before catch-all, then by name", () => {
  for (const { name, agents, labels, expected } of CASES) {
    assert.equal(outcome(agents, labels), expected, name);
  }
});

Deno.test("the applying LBNodeAgent's settings, with defaults filled in", () => {
  assert.deepEqual(applyingSettings([lbna("default", { local: {} })], {}), {
    kind: "selected",
    settings: {
      from: "default",
      localInterface: "default",
      dummyInterface: "kube-lb0",
      sendGarp: false,
    },
    problems: [],
  });
  const edge = applyingSettings([ALL, EDGE], EDGE_NODE);
  assert.equal(edge.kind === "selected" ? edge.settings.localInterface : edge.kind, "eth1");
});

Deno.test("a node no LBNodeAgent selects learns which ones exist, and which selector is malformed", () => {
  assert.deepEqual(applyingSettings([ZONE_A, BROKEN, EDGE, NO_LOCAL], PLAIN_NODE), {
    kind: "notSelected",
    candidates: ["broken", "edge", "zone-a"],
    problems: [{
      agent: "broken",
      problem: "spec.nodeSelector.matchExpressions[0].values: must be empty for operator Exists",
    }],
  });
});

const LABEL_SETS: readonly Labels[] = [EDGE_NODE, ZONE_A_NODE, PLAIN_NODE, { zone: "b" }];
const POOL = [ALL, EMPTY_SELECTOR, EDGE, ZONE_A, NO_LOCAL, BROKEN];

Deno.test("property: the choice depends on the LBNodeAgents, not on the order they are listed in", () => {
  fc.assert(fc.property(
    fc.subarray(POOL).chain((agents) =>
      fc.tuple(fc.constant(agents), fc.shuffledSubarray(agents, { minLength: agents.length }))
    ),
    fc.constantFrom(...LABEL_SETS),
    ([agents, shuffled], labels) => {
      assert.deepEqual(applyingSettings(shuffled, labels), applyingSettings(agents, labels));
    },
  ));
});

Deno.test("property: a catch-all applies only where no specific selector selects the node", () => {
  fc.assert(fc.property(
    fc.subarray(POOL),
    fc.constantFrom(...LABEL_SETS),
    (agents, labels) => {
      const choice = outcome(agents, labels);
      const specific = outcome(agents.filter((a) => a !== ALL && a !== EMPTY_SELECTOR), labels);
      const specificWins = specific !== "none" && specific !== "notSelected";
      if (specificWins) assert.equal(choice, specific);
      else if (agents.includes(ALL)) assert.equal(choice, "all");
      else if (agents.includes(EMPTY_SELECTOR)) assert.equal(choice, "empty");
      else assert.equal(choice, specific);
    },
  ));
});
