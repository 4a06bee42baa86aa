import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type AddressAssignment,
  type AddressChange,
  batchLine,
  type DesiredAddresses,
  InvalidChangeError,
  isAlreadyDone,
  mayRemoveOthers,
  parseBatchErrors,
  planChanges,
} from "./plan.ts";
import type { Link, LinkAddress, NetworkState } from "./state.ts";
import { canonicalAddress } from "../ipam/mod.ts";

const NO_FLAGS: LinkAddress["flags"] = {
  tentative: false,
  dadfailed: false,
  deprecated: false,
  permanent: true,
  noprefixroute: false,
  mngtmpaddr: false,
  nodad: false,
  optimistic: false,
  secondary: false,
  temporary: false,
};

function link(name: string, index: number, addresses: readonly string[]): Link {
  return {
    index,
    name,
    up: true,
    lowerUp: true,
    mac: "02:00:00:00:00:01",
    linkType: "ether",
    flags: ["UP"],
    addresses: addresses.map((text) => {
      const [local = "", prefix = ""] = text.split("/");
      return {
        family: local.includes(":") ? "IPv6" : "IPv4",
        local,
        prefixLength: Number(prefix),
        scope: "global",
        flags: NO_FLAGS,
      };
    }),
  };
}

function describe(changes: readonly AddressChange[]): readonly string[] {
  return changes.map((change) => batchLine(change));
}

const STATE: NetworkState = {
  links: [
    link("eth0", 2, ["192.0.2.11/24", "192.0.2.50/24", "2001:db8:1::11/64", "192.0.2.60/24"]),
    link("kube-lb0", 3, ["198.51.100.7/32", "198.51.100.8/32", "2001:db8:2::1/128"]),
  ],
  defaultRoutes: [],
};

// Ours: anything on kube-lb0, and 192.0.2.48-63 / 2001:db8:1::40-4f on other interfaces.
function isOwned(existing: { interfaceName: string; address: string }): boolean {
  if (existing.interfaceName === "kube-lb0") return true;
  const last = existing.address.split(/[.:]/).at(-1) ?? "";
  return /^(4[89]|5\d|6[0-3])$/.test(last) && existing.address.startsWith("192.0.2.");
}

Deno.test("planChanges removes owned leftovers, keeps what is wanted, adds what is missing", () => {
  const changes = planChanges(STATE, {
    assignments: [
      { interfaceName: "eth0", address: "192.0.2.50", prefixLength: 24 },
      { interfaceName: "kube-lb0", address: "198.51.100.8", prefixLength: 32 },
      { interfaceName: "kube-lb0", address: "2001:DB8:2::0:9", prefixLength: 128, noDad: true },
      { interfaceName: "kube-lb0", address: "198.51.100.9", prefixLength: 32 },
      { interfaceName: "kube-lb0", address: "198.51.100.9", prefixLength: 32 },
    ],
    isOwned,
  });
  assert.deepEqual(describe(changes), [
    "address del 192.0.2.60/24 dev eth0",
    "address del 198.51.100.7/32 dev kube-lb0",
    "address del 2001:db8:2::1/128 dev kube-lb0",
    "address add 198.51.100.9/32 dev kube-lb0",
    "address add 2001:db8:2::9/128 dev kube-lb0 nodad",
  ]);
});

Deno.test("planChanges replaces an owned address whose prefix length changed", () => {
  const changes = planChanges(STATE, {
    assignments: [{ interfaceName: "kube-lb0", address: "198.51.100.7", prefixLength: 24 }],
    isOwned: (existing) => existing.address === "198.51.100.7",
  });
  assert.deepEqual(describe(changes), [
    "address del 198.51.100.7/32 dev kube-lb0",
    "address add 198.51.100.7/24 dev kube-lb0",
  ]);
});

Deno.test("planChanges never touches addresses that are not owned", () => {
  const changes = planChanges(STATE, { assignments: [], isOwned: () => false });
  assert.deepEqual(changes, []);
  const everything = planChanges(STATE, { assignments: [], isOwned: () => true });
  assert.equal(everything.length, 7);
  const withLinkLocal: NetworkState = {
    links: [{
      ...link("eth0", 2, []),
      addresses: [{
        family: "IPv6",
        local: "fe80::1",
        prefixLength: 64,
        scope: "link",
        flags: NO_FLAGS,
      }],
    }],
    defaultRoutes: [],
  };
  assert.deepEqual(planChanges(withLinkLocal, { assignments: [], isOwned: () => true }), []);
  assert.ok(everything.every((change) => change.kind === "delete"));
});

Deno.test("planChanges and batchLine refuse values that could break a batch line", () => {
  const bad: readonly AddressAssignment[] = [
    { interfaceName: "eth0\naddress flush dev eth0", address: "192.0.2.5", prefixLength: 32 },
    { interfaceName: "eth 0", address: "192.0.2.5", prefixLength: 32 },
    { interfaceName: "a-very-long-interface", address: "192.0.2.5", prefixLength: 32 },
    { interfaceName: "eth0", address: "192.0.2.5 dev lo", prefixLength: 32 },
    { interfaceName: "eth0", address: "192.0.2.5", prefixLength: 33 },
    { interfaceName: "eth0", address: "2001:db8::5", prefixLength: 129 },
    { interfaceName: "eth0", address: "2001:db8::5", prefixLength: 1.5 },
  ];
  for (const assignment of bad) {
    assert.throws(
      () => planChanges(STATE, { assignments: [assignment], isOwned: () => false }),
      (error: unknown) =>
        error instanceof InvalidChangeError && error.name === "InvalidChangeError",
      JSON.stringify(assignment),
    );
  }
  assert.throws(
    () =>
      batchLine({
        kind: "delete",
        interfaceName: "eth0",
        family: "IPv6",
        address: "192.0.2.5",
        prefixLength: 32,
      }),
    InvalidChangeError,
  );
});

Deno.test("parseBatchErrors maps messages to line numbers; isAlreadyDone spots no-ops", () => {
  const stderr = [
    "Error: ipv4: Address already assigned.",
    "Command failed -:2",
    "Error: ipv4: Address not found.",
    "Command failed -:3",
    'Cannot find device "nope"',
    "Command failed -:6",
    "Error: ipv6: address not found.",
    "Command failed -:1000",
    "",
  ].join("\n");
  const errors = parseBatchErrors(stderr);
  assert.deepEqual([...errors.keys()], [2, 3, 6, 1000]);
  assert.equal(errors.get(6), 'Cannot find device "nope"');
  assert.equal(isAlreadyDone("add", errors.get(2) ?? ""), true);
  assert.equal(isAlreadyDone("delete", errors.get(3) ?? ""), true);
  assert.equal(isAlreadyDone("delete", errors.get(1000) ?? ""), true);
  assert.equal(isAlreadyDone("add", errors.get(6) ?? ""), false);
  assert.equal(isAlreadyDone("delete", errors.get(2) ?? ""), false);
  assert.equal(isAlreadyDone("add", "Error: ipv6: address already assigned."), true);
  assert.equal(parseBatchErrors("").size, 0);
});

/** Applies changes to a state the way the kernel would (for the property below). */
function apply(state: NetworkState, changes: readonly AddressChange[]): NetworkState {
  const links = state.links.map((current) => {
    let addresses = [...current.addresses];
    for (const change of changes) {
      if (change.interfaceName !== current.name) continue;
      const same = (a: LinkAddress) =>
        a.local === change.address && a.prefixLength === change.prefixLength;
      if (change.kind === "delete") addresses = addresses.filter((a) => !same(a));
      else if (!addresses.some(same)) {
        addresses.push({
          family: change.family,
          local: change.address,
          prefixLength: change.prefixLength,
          scope: "global",
          flags: NO_FLAGS,
        });
      }
    }
    return { ...current, addresses };
  });
  return { ...state, links };
}

const interfaceName = fc.constantFrom("eth0", "eth1", "kube-lb0");
const addressText = fc.oneof(
  fc.integer({ min: 0, max: 15 }).map((n) => `192.0.2.${n}`),
  fc.integer({ min: 0, max: 15 }).map((n) => canonicalAddress(`2001:db8::${n.toString(16)}`) ?? ""),
);
const entry = fc.record({
  interfaceName,
  address: addressText,
  prefixLength: fc.constantFrom(24, 32),
}).map((e) => ({
  ...e,
  prefixLength: e.address.includes(":") ? e.prefixLength + 96 : e.prefixLength,
}));

Deno.test("property: applying the plan reaches the desired state and touches only owned addresses", () => {
  fc.assert(
    fc.property(
      fc.array(entry, { maxLength: 20 }),
      fc.array(entry, { maxLength: 20 }),
      fc.func(fc.boolean()),
      (existing, assignments, ownedBy) => {
        const names = ["eth0", "eth1", "kube-lb0"];
        const state: NetworkState = {
          links: names.map((name, index) =>
            link(
              name,
              index + 2,
              [
                ...new Set(
                  existing.filter((e) => e.interfaceName === name).map((e) =>
                    `${e.address}/${e.prefixLength}`
                  ),
                ),
              ],
            )
          ),
          defaultRoutes: [],
        };
        const ownedCache = new Map<string, boolean>();
        const desired: DesiredAddresses = {
          assignments,
          isOwned: (e) => {
            const key = `${e.interfaceName} ${e.address}/${e.prefixLength}`;
            if (!ownedCache.has(key)) ownedCache.set(key, ownedBy(key));
            return ownedCache.get(key) === true;
          },
        };
        const changes = planChanges(state, desired);
        const after = apply(state, changes);
        const has = (s: NetworkState, n: string, a: string, p: number) =>
          s.links.some((l) =>
            l.name === n && l.addresses.some((x) => x.local === a && x.prefixLength === p)
          );
        for (const wanted of assignments) {
          assert.ok(has(after, wanted.interfaceName, wanted.address, wanted.prefixLength));
        }
        for (const before of state.links) {
          for (const address of before.addresses) {
            const wanted = assignments.some((w) =>
              w.interfaceName === before.name && w.address === address.local &&
              w.prefixLength === address.prefixLength
            );
            const owned = desired.isOwned({
              interfaceName: before.name,
              family: address.family,
              address: address.local,
              prefixLength: address.prefixLength,
            });
            assert.equal(
              has(after, before.name, address.local, address.prefixLength),
              wanted || !owned,
            );
          }
        }
        const firstDelete = changes.findIndex((c) => c.kind === "add");
        assert.ok(firstDelete < 0 || changes.slice(firstDelete).every((c) => c.kind === "add"));
        assert.deepEqual(planChanges(after, desired), [], "a second plan has nothing to do");
      },
    ),
  );
});

Deno.test("mayRemoveOthers: only deleting an IPv4 address shorter than /32", () => {
  const del = (family: "IPv4" | "IPv6", prefixLength: number) =>
    ({
      kind: "delete",
      interfaceName: "eth0",
      family,
      address: family === "IPv4" ? "192.0.2.5" : "2001:db8::5",
      prefixLength,
    }) as const;
  assert.equal(mayRemoveOthers(del("IPv4", 24)), true);
  assert.equal(mayRemoveOthers(del("IPv4", 32)), false);
  assert.equal(mayRemoveOthers(del("IPv6", 64)), false);
  assert.equal(
    mayRemoveOthers({ ...del("IPv4", 24), kind: "add", noDad: false }),
    false,
  );
});
