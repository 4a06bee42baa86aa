import assert from "node:assert/strict";
import { groupStatusOf, NETBOX_CONDITION, type ServiceGroupObject } from "./groupstatus.ts";
import type { GroupReport } from "./allocator.ts";

const NOW = new Date("2026-11-21T07:00:00Z");
const NETBOX_REPORT: GroupReport = {
  name: "nb",
  kind: "netbox",
  source: { url: "https://netbox.example/", tenant: "lab", aggregation: { kind: "default" } },
  inUse: { IPv4: 2, IPv6: 0 },
};

function group(status?: ServiceGroupObject["status"]): ServiceGroupObject {
  return { metadata: { name: "nb", generation: 1 }, ...(status ? { status } : {}) };
}

Deno.test("group status: a Netbox group is Valid, reports Netbox's health and counts in use", () => {
  const down = { available: false, reason: "Timeout", message: "Netbox did not answer" };
  const first = groupStatusOf(group(), NETBOX_REPORT, NOW, down);
  assert.equal(first.changed, true);
  assert.deepEqual(
    first.status.conditions?.map((c) => [c.type, c.status, c.reason]),
    [["Valid", "True", "Valid"], [NETBOX_CONDITION, "False", "Timeout"]],
  );
  assert.match(
    first.status.conditions?.[0]?.message ?? "",
    /Netbox at https:\/\/netbox\.example\//,
  );
  assert.deepEqual(first.status.ipv4, { size: null, inUse: 2, free: null });

  // What the API server stores drops the nulls: written once, not again.
  const stored = group({
    observedGeneration: 1,
    conditions: first.status.conditions ?? [],
    ipv4: { inUse: 2 },
    ipv6: { inUse: 0 },
  });
  assert.equal(groupStatusOf(stored, NETBOX_REPORT, NOW, down).changed, false);

  const up = { available: true, reason: "Answering", message: "the last call succeeded" };
  const recovered = groupStatusOf(stored, NETBOX_REPORT, new Date(NOW.getTime() + 1000), up);
  assert.equal(recovered.changed, true);
  const condition = recovered.status.conditions?.find((c) => c.type === NETBOX_CONDITION);
  assert.deepEqual([condition?.status, condition?.lastTransitionTime], [
    "True",
    "2026-11-21T07:00:01Z",
  ]);
});

Deno.test("group status: a local group that became a Netbox group loses its size and free", () => {
  const stored = group({ ipv4: { size: "4", inUse: 1, free: "3" } });
  const { status, changed } = groupStatusOf(stored, NETBOX_REPORT, NOW);
  assert.equal(changed, true);
  assert.deepEqual(status.ipv4, { size: null, inUse: 2, free: null });
  assert.deepEqual(status.conditions?.map((c) => c.type), ["Valid"], "no health known yet");
});

Deno.test("group status: the tenancy fields are written while reported and removed after", () => {
  const report: GroupReport = { ...NETBOX_REPORT, boundNamespaces: ["team-a"], outOfScope: 2 };
  const first = groupStatusOf(group(), report, NOW);
  assert.deepEqual([first.status.boundNamespaces, first.status.outOfScope], [["team-a"], 2]);
  const stored = group({
    observedGeneration: 1,
    conditions: first.status.conditions ?? [],
    ipv4: { inUse: 2 },
    ipv6: { inUse: 0 },
    boundNamespaces: ["team-a"],
    outOfScope: 2,
  });
  assert.equal(groupStatusOf(stored, report, NOW).changed, false);
  assert.equal(groupStatusOf(stored, { ...report, outOfScope: 1 }, NOW).changed, true);
  const gone = groupStatusOf(stored, NETBOX_REPORT, NOW);
  assert.equal(gone.changed, true);
  assert.deepEqual([gone.status.boundNamespaces, gone.status.outOfScope], [null, null]);
  // Without namespace rules, nothing of them is written.
  assert.equal("boundNamespaces" in groupStatusOf(group(), NETBOX_REPORT, NOW).status, false);
});
