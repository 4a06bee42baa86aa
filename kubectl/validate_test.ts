import assert from "node:assert/strict";
import { stringify } from "yaml";
import { BAD_SPECS, GOOD_SPECS, groupsYaml } from "./testdata.ts";
import { parseServiceGroupSpec } from "../ipam/mod.ts";
import { hasErrors, renderValidation, validateServiceGroups } from "./validate.ts";

Deno.test("validate: each bad group gets the allocator parser's messages", () => {
  const report = validateServiceGroups(groupsYaml(BAD_SPECS), "bad.yaml");
  assert.deepEqual(report.problems, []);
  assert.equal(report.groups.length, Object.keys(BAD_SPECS).length);
  for (const group of report.groups) {
    const parsed = parseServiceGroupSpec(BAD_SPECS[group.name]);
    assert.equal(parsed.kind, "invalid", group.name);
    assert.deepEqual(
      group.errors,
      parsed.kind === "invalid" ? parsed.errors.map((e) => e.message) : [],
    );
    assert.ok(group.errors.length > 0 && !group.valid, group.name);
  }
  assert.ok(hasErrors(report));
  const text = renderValidation(report, "table");
  assert.match(
    text,
    /^servicegroup\/bare: invalid\n {2}spec\.local\.v4pools\[0\]\.pool: "192\.0\.2\.5" is a bare address/,
  );
});

Deno.test("validate: good groups are valid, no errors", () => {
  const report = validateServiceGroups(groupsYaml(GOOD_SPECS), "good.yaml");
  assert.deepEqual(report.groups.map((g) => [g.name, g.valid, g.errors]), [
    ["default", true, []],
    ["netbox", true, []],
    ["legacy", true, []],
  ]);
  assert.equal(hasErrors(report), false);
  assert.equal(
    renderValidation(report, "table"),
    "servicegroup/default: valid\nservicegroup/netbox: valid\nservicegroup/legacy: valid",
  );
});

Deno.test("validate: of two overlapping groups in one file, the later one loses", () => {
  const report = validateServiceGroups(
    groupsYaml({
      first: { local: { v4pools: [{ pool: "192.0.2.0/28", subnet: "192.0.2.0/24" }] } },
      second: { local: { v4pools: [{ pool: "192.0.2.8-192.0.2.20", subnet: "192.0.2.0/24" }] } },
    }),
    "overlap.yaml",
  );
  assert.deepEqual(report.groups.map((g) => g.valid), [true, false]);
  assert.match(
    report.groups[1]?.errors[0] ?? "",
    /overlaps range .* of ServiceGroup first, which is older$/,
  );
});

Deno.test("validate: broken YAML, no ServiceGroup at all fails, other kinds are skipped", () => {
  assert.match(validateServiceGroups("a: [", "x.yaml").problems[0] ?? "", /^x\.yaml: document 1: /);
  const other = validateServiceGroups(
    "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n",
    "s.yaml",
  );
  assert.deepEqual(other.skipped, ["s.yaml: document 1 is a Service, not a ServiceGroup: skipped"]);
  assert.deepEqual(other.problems, ["s.yaml: no ServiceGroup found"]);
  assert.ok(hasErrors(other));
  // Other kinds beside ServiceGroups are left out without failing the file.
  const mixed = validateServiceGroups(
    `${groupsYaml(GOOD_SPECS)}---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n`,
    "m.yaml",
  );
  assert.equal(hasErrors(mixed), false);
  assert.equal(mixed.skipped.length, 1);
  assert.deepEqual(validateServiceGroups("", "e.yaml").problems, ["e.yaml: no ServiceGroup found"]);
});

Deno.test("validate: a List of ServiceGroups (kubectl get -o yaml) is opened", () => {
  const list = stringify({
    apiVersion: "v1",
    kind: "List",
    items: [{
      apiVersion: "purelb.io/v1",
      kind: "ServiceGroup",
      metadata: { name: "a" },
      spec: GOOD_SPECS["netbox"],
    }],
  });
  const report = validateServiceGroups(list, "list.yaml");
  assert.deepEqual(report.groups.map((g) => [g.name, g.valid]), [["a", true]]);
  assert.deepEqual(JSON.parse(renderValidation(report, "json")).groups[0].name, "a");
});
