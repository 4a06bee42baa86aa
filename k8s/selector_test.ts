import assert from "node:assert/strict";
import fc from "fast-check";
import {
  compileLabelSelector,
  type Labels,
  type LabelSelector,
  selectorMatches,
  selectsEverything,
} from "./selector.ts";

function compiled(selector: LabelSelector | undefined) {
  const reading = compileLabelSelector(selector, "spec.nodeSelector");
  if (reading.kind === "invalid") throw new Error(reading.problem);
  return reading.selector;
}

const EDGE: Labels = { "node-role.kubernetes.io/edge": "", zone: "a", tier: "front" };
const WORKER: Labels = { zone: "b" };
const BARE: Labels = {};

const MATCHES: ReadonlyArray<{
  readonly name: string;
  readonly selector: LabelSelector | undefined;
  readonly selects: readonly Labels[];
  readonly skips: readonly Labels[];
}> = [
  { name: "no selector", selector: undefined, selects: [EDGE, WORKER, BARE], skips: [] },
  { name: "empty selector", selector: {}, selects: [EDGE, WORKER, BARE], skips: [] },
  {
    name: "empty lists",
    selector: { matchLabels: {}, matchExpressions: [] },
    selects: [EDGE, WORKER, BARE],
    skips: [],
  },
  {
    name: "matchLabels",
    selector: { matchLabels: { zone: "a" } },
    selects: [EDGE],
    skips: [WORKER, BARE],
  },
  {
    name: "matchLabels with an empty value",
    selector: { matchLabels: { "node-role.kubernetes.io/edge": "" } },
    selects: [EDGE],
    skips: [WORKER, BARE],
  },
  {
    name: "every matchLabels entry must hold",
    selector: { matchLabels: { zone: "a", tier: "back" } },
    selects: [],
    skips: [EDGE, WORKER, BARE],
  },
  {
    name: "In",
    selector: { matchExpressions: [{ key: "zone", operator: "In", values: ["a", "c"] }] },
    selects: [EDGE],
    skips: [WORKER, BARE],
  },
  {
    name: "NotIn holds without the label",
    selector: { matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] },
    selects: [WORKER, BARE],
    skips: [EDGE],
  },
  {
    name: "Exists",
    selector: { matchExpressions: [{ key: "node-role.kubernetes.io/edge", operator: "Exists" }] },
    selects: [EDGE],
    skips: [WORKER, BARE],
  },
  {
    name: "DoesNotExist",
    selector: { matchExpressions: [{ key: "zone", operator: "DoesNotExist", values: [] }] },
    selects: [BARE],
    skips: [EDGE, WORKER],
  },
  {
    name: "labels and expressions together",
    selector: {
      matchLabels: { zone: "a" },
      matchExpressions: [{ key: "tier", operator: "NotIn", values: ["front"] }],
    },
    selects: [],
    skips: [EDGE, WORKER, BARE],
  },
  {
    name: "inherited object keys are no labels",
    selector: { matchExpressions: [{ key: "constructor", operator: "Exists" }] },
    selects: [],
    skips: [EDGE, WORKER, BARE],
  },
];

Deno.test("label selectors select as Kubernetes does", () => {
  for (const { name, selector, selects, skips } of MATCHES) {
    const checked = compiled(selector);
    for (const labels of selects) {
      assert.ok(selectorMatches(checked, labels), `${name} selects ${JSON.stringify(labels)}`);
    }
    for (const labels of skips) {
      assert.ok(!selectorMatches(checked, labels), `${name} skips ${JSON.stringify(labels)}`);
    }
  }
});

Deno.test("only a selector without requirements is a catch-all", () => {
  assert.ok(selectsEverything(compiled(undefined)));
  assert.ok(selectsEverything(compiled({ matchLabels: {}, matchExpressions: [] })));
  assert.ok(!selectsEverything(compiled({ matchLabels: { zone: "a" } })));
  assert.ok(
    !selectsEverything(compiled({ matchExpressions: [{ key: "zone", operator: "Exists" }] })),
  );
});

const INVALID: ReadonlyArray<{ readonly selector: LabelSelector; readonly problem: string }> = [
  {
    selector: { matchExpressions: [{ key: "zone", operator: "Equals", values: ["a"] }] },
    problem:
      'spec.nodeSelector.matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist, not "Equals"',
  },
  {
    selector: { matchExpressions: [{ key: "zone", operator: "In" }] },
    problem: "spec.nodeSelector.matchExpressions[0].values: must not be empty for operator In",
  },
  {
    selector: {
      matchExpressions: [
        { key: "zone", operator: "Exists" },
        { key: "zone", operator: "NotIn", values: [] },
      ],
    },
    problem: "spec.nodeSelector.matchExpressions[1].values: must not be empty for operator NotIn",
  },
  {
    selector: { matchExpressions: [{ key: "zone", operator: "DoesNotExist", values: ["a"] }] },
    problem:
      "spec.nodeSelector.matchExpressions[0].values: must be empty for operator DoesNotExist",
  },
  {
    selector: { matchExpressions: [{ key: "", operator: "Exists" }] },
    problem: 'spec.nodeSelector.matchExpressions[0].key: "" is not a label key',
  },
  {
    selector: { matchLabels: { "Example.COM/zone": "a" } },
    problem:
      'spec.nodeSelector.matchLabels["Example.COM/zone"]: "Example.COM/zone" is not a label key',
  },
  {
    selector: { matchLabels: { zone: "a b" } },
    problem: 'spec.nodeSelector.matchLabels["zone"]: "a b" is not a label value',
  },
  {
    selector: { matchExpressions: [{ key: "zone", operator: "In", values: ["ok", "-bad"] }] },
    problem: 'spec.nodeSelector.matchExpressions[0].values[1]: "-bad" is not a label value',
  },
];

Deno.test("a malformed selector is refused with the field that is wrong", () => {
  for (const { selector, problem } of INVALID) {
    const reading = compileLabelSelector(selector, "spec.nodeSelector");
    assert.equal(reading.kind, "invalid", JSON.stringify(selector));
    if (reading.kind === "invalid") {
      assert.ok(reading.problem.startsWith(problem), `${reading.problem}\nexpected ${problem}`);
    }
  }
});

const key = fc.constantFrom("zone", "tier", "example.com/edge");
const value = fc.constantFrom("", "a", "b", "c");
const labels = fc.dictionary(key, value, { maxKeys: 3 });
const values = fc.uniqueArray(fc.constantFrom("a", "b", "c"), { minLength: 1, maxLength: 3 });

Deno.test("property: NotIn and DoesNotExist are the negations of In and Exists", () => {
  fc.assert(fc.property(key, values, labels, (k, vs, ls) => {
    const holds = (operator: string, withValues: boolean) =>
      selectorMatches(
        compiled({
          matchExpressions: [{ key: k, operator, ...(withValues ? { values: vs } : {}) }],
        }),
        ls,
      );
    assert.equal(holds("NotIn", true), !holds("In", true));
    assert.equal(holds("DoesNotExist", false), !holds("Exists", false));
  }));
});

Deno.test("property: a selector holds exactly when each of its parts does", () => {
  const part: fc.Arbitrary<LabelSelector> = fc.oneof(
    fc.record({ matchLabels: fc.dictionary(key, value, { minKeys: 1, maxKeys: 1 }) }),
    fc.record({ key, operator: fc.constantFrom("In", "NotIn"), values })
      .map((e): LabelSelector => ({ matchExpressions: [e] })),
    fc.record({ key, operator: fc.constantFrom("Exists", "DoesNotExist") })
      .map((e): LabelSelector => ({ matchExpressions: [e] })),
  );
  fc.assert(fc.property(fc.array(part, { maxLength: 4 }), labels, (parts, ls) => {
    const whole: LabelSelector = {
      matchExpressions: parts.flatMap((p) => p.matchExpressions ?? []),
      matchLabels: Object.assign({}, ...parts.map((p) => p.matchLabels ?? {})),
    };
    // Two matchLabels parts with the same key are one entry in the whole: compare on the whole's own parts.
    const own: LabelSelector[] = [
      ...Object.entries(whole.matchLabels ?? {}).map(([k, v]) => ({ matchLabels: { [k]: v } })),
      ...(whole.matchExpressions ?? []).map((e) => ({ matchExpressions: [e] })),
    ];
    assert.equal(
      selectorMatches(compiled(whole), ls),
      own.every((p) => selectorMatches(compiled(p), ls)),
    );
  }));
});
