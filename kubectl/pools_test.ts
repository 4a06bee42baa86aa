import assert from "node:assert/strict";
import { poolRows, renderPools } from "./pools.ts";

const condition = (status: "True" | "False", message: string) => ({
  type: "Valid",
  status,
  reason: status === "True" ? "Valid" : "ParseFailed",
  message,
  lastTransitionTime: "2026-01-01T00:00:00Z",
});

const groups = [
  {
    metadata: { name: "virtual" },
    spec: { local: {} },
    status: {
      conditions: [condition("True", "serving IPv4 addresses")],
      ipv4: { inUse: 1, size: "16", free: "15" },
      boundNamespaces: ["team-a", "team-b"],
      outOfScope: 1,
    },
  },
  {
    metadata: { name: "broken" },
    spec: { local: {} },
    status: { conditions: [condition("False", 'spec.local.v4pools[0].pool: "x" is bad')] },
  },
  { metadata: { name: "netbox" }, spec: { netbox: {} }, status: { ipv4: { inUse: 2 } } },
  { metadata: { name: "new" }, spec: {} },
];

Deno.test("pools: validity, usage per family, bound namespaces, out of scope", () => {
  const rows = poolRows(groups);
  assert.deepEqual(rows.map((r) => [r.name, r.source, r.valid, r.outOfScope]), [
    ["broken", "local", "False", 0],
    ["netbox", "netbox", "Unknown", 0],
    ["new", "", "Unknown", 0],
    ["virtual", "local", "True", 1],
  ]);
  assert.equal(
    renderPools(rows, "table"),
    [
      "NAME     SOURCE  VALID    IPV4  IPV6  BOUND          OUT-OF-SCOPE",
      "broken   local   False    -     -     -              0",
      "netbox   netbox  Unknown  2/?   -     -              0",
      "new      -       Unknown  -     -     -              0",
      "virtual  local   True     1/16  -     team-a,team-b  1",
    ].join("\n"),
  );
  assert.match(
    renderPools(rows, "wide").split("\n")[1] ?? "",
    /spec\.local\.v4pools\[0\]\.pool: "x" is bad$/,
  );
  assert.equal(JSON.parse(renderPools(rows, "json"))[3].ipv4.free, "15");
});
