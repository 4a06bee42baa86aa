import assert from "node:assert/strict";
import fc from "fast-check";
import type { GroupTenancy } from "../ipam/mod.ts";
import { Allocator, type GroupInput } from "./allocator.ts";
import type { AllocationRequest } from "./request.ts";
import { type TenancyGroup, TenancyRules } from "./tenancy.ts";

function group(
  name: string,
  namespaces?: readonly string[],
  flags: { enforce?: boolean; isDefault?: boolean } = {},
): TenancyGroup {
  const tenancy: GroupTenancy = {
    enforceNamespaces: flags.enforce ?? false,
    namespaceDefault: flags.isDefault ?? false,
    ...(namespaces === undefined ? {} : { namespaces }),
  };
  return { name, tenancy };
}

const CHOICES: readonly {
  readonly why: string;
  readonly groups: readonly TenancyGroup[];
  readonly namespace: string;
  readonly annotated?: string;
  /** The group used, or a pattern of the refusal. */
  readonly expected: string | RegExp;
  readonly warning?: RegExp;
}[] = [
  {
    why: "no group lists namespaces: the annotation or default, as always",
    groups: [group("default"), group("lab")],
    namespace: "shop",
    expected: "default",
  },
  {
    why: "without a fence any namespace may name any group",
    groups: [group("default"), group("a", ["team-a"])],
    namespace: "shop",
    annotated: "a",
    expected: "a",
  },
  {
    why: "the one group serving the namespace",
    groups: [group("default"), group("a", ["team-a"])],
    namespace: "team-a",
    expected: "a",
  },
  {
    why: "a namespace no group serves uses default",
    groups: [group("default"), group("a", ["team-a"])],
    namespace: "shop",
    expected: "default",
  },
  {
    why: "of several serving groups, the one marked namespaceDefault",
    groups: [group("a1", ["team-a"]), group("a2", ["team-a"], { isDefault: true })],
    namespace: "team-a",
    expected: "a2",
  },
  {
    why: "several serving groups and none marked: warning naming them, then default",
    groups: [group("default"), group("a1", ["team-a"]), group("a2", ["team-a"])],
    namespace: "team-a",
    expected: "default",
    warning: /ServiceGroups a1, a2 and none of them is marked namespaceDefault/,
  },
  {
    why: "two defaults: warning naming both, then default",
    groups: [
      group("default"),
      group("a1", ["team-a"], { isDefault: true }),
      group("a2", ["team-a"], { isDefault: true }),
    ],
    namespace: "team-a",
    expected: "default",
    warning: /more than one is marked namespaceDefault \(a1, a2\)/,
  },
  {
    why: "two defaults in a fenced namespace: no address",
    groups: [
      group("default"),
      group("a1", ["team-a"], { isDefault: true, enforce: true }),
      group("a2", ["team-a"], { isDefault: true }),
    ],
    namespace: "team-a",
    expected: /"team-a" is served by .*the namespace is fenced, so no group is chosen/,
    warning: /a1, a2/,
  },
  {
    why: "a fenced group named from another namespace",
    groups: [group("default"), group("a", ["team-a"], { enforce: true })],
    namespace: "shop",
    annotated: "a",
    expected:
      /ServiceGroup "a" .* serves only the namespaces it lists \(team-a\), not namespace "shop"/,
  },
  {
    why: "a fenced namespace naming a group that does not serve it",
    groups: [group("default"), group("a", ["team-a"], { enforce: true })],
    namespace: "team-a",
    annotated: "default",
    expected: /namespace "team-a" is fenced .*\(a\), not ServiceGroup "default"/,
  },
  {
    why: "a fenced namespace naming a group that does not exist",
    groups: [group("a", ["team-a"], { enforce: true })],
    namespace: "team-a",
    annotated: "ghost",
    expected: /namespace "team-a" is fenced/,
  },
  {
    why: "fenced both ways: a non-enforcing group listing a fenced namespace is closed too",
    groups: [group("a", ["team-a"], { enforce: true }), group("shared", ["team-a", "team-b"])],
    namespace: "shop",
    annotated: "shared",
    expected: /ServiceGroup "shared" lists a fenced namespace/,
  },
  {
    why: "...but open to every namespace it lists",
    groups: [group("a", ["team-a"], { enforce: true }), group("shared", ["team-a", "team-b"])],
    namespace: "team-b",
    annotated: "shared",
    expected: "shared",
  },
  {
    why: "default listing a fenced namespace is closed to the others' unannotated Services",
    groups: [group("default", ["team-a"], { enforce: true })],
    namespace: "shop",
    expected: /ServiceGroup "default" lists a fenced namespace/,
  },
];

for (const c of CHOICES) {
  Deno.test(`tenancy: ${c.why}`, () => {
    const choice = new TenancyRules(c.groups).choose(c.namespace, c.annotated);
    if (typeof c.expected === "string") {
      assert.deepEqual(choice.kind === "use" ? choice.group : choice.reason, c.expected);
    } else {
      assert.equal(choice.kind, "refused");
      assert.match(choice.kind === "refused" ? choice.reason : "", c.expected);
    }
    if (c.warning === undefined) assert.deepEqual(choice.warnings, []);
    else {
      assert.equal(choice.warnings.length, 1);
      assert.match(choice.warnings[0] ?? "", c.warning);
    }
  });
}

Deno.test("tenancy: rules are active only once a group lists namespaces", () => {
  assert.equal(new TenancyRules([group("default")]).active, false);
  assert.equal(new TenancyRules([group("default"), group("a", [])]).active, true);
  assert.deepEqual(new TenancyRules([group("a", ["x", "y"])]).boundNamespaces("a"), ["x", "y"]);
  assert.equal(new TenancyRules([group("a")]).boundNamespaces("a"), undefined);
});

// ---- The allocator under random edits --------------------------------------------------------

const NAMESPACES = ["ns1", "ns2", "ns3"] as const;
const GROUPS = ["default", "a", "b"] as const;
const POOLS: Readonly<Record<(typeof GROUPS)[number], string>> = {
  default: "192.0.2.0/30",
  a: "192.0.2.8/30",
  b: "192.0.2.16/30",
};
const ADDRESSES = ["192.0.2.1", "192.0.2.9", "192.0.2.17", "192.0.2.18"];

interface GroupState {
  readonly namespaces?: readonly string[];
  readonly enforce: boolean;
  readonly isDefault: boolean;
}

type Ask =
  | { readonly kind: "none" }
  | { readonly kind: "group"; readonly group: string }
  | { readonly kind: "address"; readonly address: string };

type Step =
  | {
    readonly kind: "editGroup";
    readonly group: (typeof GROUPS)[number];
    readonly state: GroupState;
  }
  | {
    readonly kind: "service";
    readonly namespace: string;
    readonly name: string;
    readonly ask: Ask;
    readonly sharingKey: string;
    readonly reEvaluate: boolean;
  }
  | { readonly kind: "delete"; readonly namespace: string; readonly name: string }
  /** A new leader: a fresh allocator registers what the Services' status shows. */
  | { readonly kind: "restart" };

const groupState: fc.Arbitrary<GroupState> = fc.record({
  listed: fc.option(fc.subarray([...NAMESPACES]), { nil: undefined }),
  enforce: fc.boolean(),
  isDefault: fc.boolean(),
}).map(({ listed, enforce, isDefault }) =>
  // The schema refuses the flags without namespaces; such a spec is not generated.
  listed === undefined
    ? { enforce: false, isDefault: false }
    : { namespaces: listed, enforce, isDefault }
);

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("editGroup" as const),
    group: fc.constantFrom(...GROUPS),
    state: groupState,
  }),
  fc.record({
    kind: fc.constant("service" as const),
    namespace: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom("s1", "s2", "s3"),
    ask: fc.oneof(
      fc.constant<Ask>({ kind: "none" }),
      fc.constantFrom(...GROUPS, "ghost").map((g): Ask => ({ kind: "group", group: g })),
      fc.constantFrom(...ADDRESSES).map((a): Ask => ({ kind: "address", address: a })),
    ),
    sharingKey: fc.constantFrom("", "", "web"),
    reEvaluate: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant("delete" as const),
    namespace: fc.constantFrom(...NAMESPACES),
    name: fc.constantFrom("s1", "s2", "s3"),
  }),
  fc.constant({ kind: "restart" as const }),
);

function groupInputs(states: ReadonlyMap<string, GroupState>): GroupInput[] {
  return GROUPS.map((name) => {
    const state = states.get(name) ?? { enforce: false, isDefault: false };
    return {
      name,
      creationTimestamp: "2026-01-01T00:00:00Z",
      spec: {
        local: { v4pools: [{ pool: POOLS[name], subnet: "192.0.2.0/24" }] },
        ...(state.namespaces === undefined ? {} : {
          namespaces: state.namespaces,
          enforceNamespaces: state.enforce,
          namespaceDefault: state.isDefault,
        }),
      },
    };
  });
}

/** The fence rule written out plainly, independent of TenancyRules. */
function allowed(states: ReadonlyMap<string, GroupState>, namespace: string, group: string) {
  const fenced = (ns: string) =>
    [...states.values()].some((s) => s.enforce && (s.namespaces ?? []).includes(ns));
  const listed = states.get(group)?.namespaces ?? [];
  if (listed.includes(namespace)) return true;
  return !fenced(namespace) && !listed.some(fenced);
}

function requestOf(s: Extract<Step, { kind: "service" }>): AllocationRequest {
  return {
    key: `${s.namespace}/${s.name}`,
    families: ["IPv4"],
    policy: "SingleStack",
    specificAddresses: s.ask.kind === "address" ? [s.ask.address] : [],
    group: s.ask.kind === "group" ? s.ask.group : "default",
    ...(s.ask.kind === "group" ? { groupAnnotated: true } : { groupAnnotated: false }),
    ...(s.reEvaluate ? { reEvaluate: true } : {}),
    sharingKey: s.sharingKey,
    ports: [{ protocol: "TCP", port: s.name === "s1" ? 80 : 443 }],
    localTrafficPolicy: false,
  };
}

Deno.test("tenancy property: no address ever goes to a namespace a fence excludes; edits never move one", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 40 }), (steps) => {
      let allocator = new Allocator();
      const states = new Map<string, GroupState>();
      const requests = new Map<string, AllocationRequest>();
      allocator.setGroups(groupInputs(states));
      const namespaceOf = (key: string) => key.split("/")[0] ?? "";

      for (const s of steps) {
        if (s.kind === "editGroup") {
          states.set(s.group, s.state);
          const before = new Map(requests.keys().map((k) => [k, allocator.addressesOf(k)]));
          allocator.setGroups(groupInputs(states));
          // The controller then syncs every Service with its unchanged request.
          for (const [key, request] of requests) {
            const { reEvaluate: _, ...again } = request;
            const outcome = allocator.allocate(again);
            const held = before.get(key) ?? [];
            if (held.length > 0) {
              assert.equal(outcome.kind, "unchanged", `${key} kept ${held[0]?.address}`);
            } else if (outcome.kind === "assigned") {
              for (const a of outcome.addresses) {
                assert.ok(allowed(states, namespaceOf(key), a.group), `${key} got ${a.address}`);
              }
            }
          }
        } else if (s.kind === "service") {
          const request = requestOf(s);
          requests.set(request.key, request);
          const outcome = allocator.allocate(request);
          if (outcome.kind === "assigned") {
            for (const a of outcome.addresses) {
              assert.ok(
                allowed(states, s.namespace, a.group),
                `${request.key} got ${a.address} of ${a.group}`,
              );
            }
          }
          if (s.reEvaluate) {
            assert.equal(allocator.outOfScope(request.key), undefined, "decided again");
          }
          if (outcome.kind === "failed" && outcome.failure === "namespace_refused") {
            assert.match(outcome.reason, new RegExp(`"${s.namespace}"`), "names the namespace");
          }
        } else if (s.kind === "restart") {
          const before = new Map(requests.keys().map((k) => [k, allocator.addressesOf(k)]));
          allocator = new Allocator();
          allocator.setGroups(groupInputs(states));
          for (const [key, request] of requests) {
            const { reEvaluate: _, ...again } = request;
            const held = (before.get(key) ?? []).map((a) => a.address);
            if (held.length > 0) allocator.register(again, held);
          }
          const rulesInUse = [...states.values()].some((g) => g.namespaces !== undefined);
          for (const [key, request] of requests) {
            const { reEvaluate: _, ...again } = request;
            const held = before.get(key) ?? [];
            const outcome = allocator.allocate(again);
            // Not knowable after a restart: whether an unannotated Service holding another
            // group's address got it by rules that are all gone now, or by an annotation
            // removed meanwhile (which asks for default). It is decided again.
            const ambiguous = !rulesInUse && request.specificAddresses.length === 0 &&
              request.groupAnnotated !== true && held.some((a) => a.group !== "default");
            if (held.length > 0 && !ambiguous) {
              assert.equal(outcome.kind, "unchanged", `${key} kept ${held[0]?.address}`);
            }
          }
        } else {
          const key = `${s.namespace}/${s.name}`;
          allocator.release(key);
          requests.delete(key);
        }
        // Whatever is held is allowed now, or counted as out of scope.
        for (const key of allocator.serviceKeys()) {
          for (const a of allocator.addressesOf(key)) {
            if (a.group === "" || allowed(states, namespaceOf(key), a.group)) continue;
            assert.notEqual(allocator.outOfScope(key), undefined, `${key} holds ${a.address}`);
          }
        }
      }
    }),
    { numRuns: 1000 },
  );
});
