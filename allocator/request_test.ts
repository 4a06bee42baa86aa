import assert from "node:assert/strict";
import type { V1Service } from "@kubernetes/client-node";
import { readServiceIntent, type ServiceIntent } from "./request.ts";

const OURS = { handleClasslessServices: true };

function service(
  spec: NonNullable<V1Service["spec"]>,
  annotations: Record<string, string> = {},
): V1Service {
  return {
    metadata: { namespace: "ns", name: "svc", annotations },
    spec: { type: "LoadBalancer", ports: [{ port: 80 }], ...spec },
  };
}

function requestOf(intent: ServiceIntent) {
  assert.equal(intent.kind, "allocate", JSON.stringify(intent));
  return intent.kind === "allocate" ? intent.request : undefined;
}

Deno.test("class filtering: ours, classless (on/off), foreign", () => {
  assert.equal(readServiceIntent(service({}), OURS).kind, "allocate");
  assert.equal(
    readServiceIntent(service({}), { handleClasslessServices: false }).kind,
    "foreign",
  );
  assert.equal(
    readServiceIntent(service({ loadBalancerClass: "purelb.io/purelb" }), {
      handleClasslessServices: false,
    }).kind,
    "allocate",
  );
  assert.equal(
    readServiceIntent(service({ loadBalancerClass: "example.com/other" }), OURS).kind,
    "foreign",
  );
  assert.equal(readServiceIntent(service({ type: "ClusterIP" }), OURS).kind, "notLoadBalancer");
});

Deno.test("families follow ipFamilies; empty means one address, IPv6 first", () => {
  const dual = requestOf(readServiceIntent(
    service({ ipFamilies: ["IPv6", "IPv4"], ipFamilyPolicy: "RequireDualStack" }),
    OURS,
  ));
  assert.deepEqual(dual?.families, ["IPv6", "IPv4"]);
  assert.equal(dual?.policy, "RequireDualStack");
  const none = requestOf(readServiceIntent(service({}), OURS));
  assert.deepEqual(none?.families, ["IPv6", "IPv4"]);
  assert.equal(none?.policy, "AnyOne");
});

Deno.test("annotations: group, sharing key, ports, traffic policy", () => {
  const r = requestOf(readServiceIntent(
    service(
      {
        ipFamilies: ["IPv4"],
        externalTrafficPolicy: "Local",
        ports: [{ port: 53, protocol: "UDP" }, { port: 53 }],
      },
      { "purelb.io/service-group": " lab ", "purelb.io/allow-shared-ip": "dns" },
    ),
    OURS,
  ));
  assert.equal(r?.group, "lab");
  assert.equal(r?.sharingKey, "dns");
  assert.deepEqual(r?.ports, [{ protocol: "UDP", port: 53 }, { protocol: "TCP", port: 53 }]);
  assert.equal(r?.localTrafficPolicy, true);
  assert.equal(requestOf(readServiceIntent(service({}), OURS))?.group, "default");
});

Deno.test("specific addresses: trimmed, canonical, ordered by ipFamilies; group ignored", () => {
  const intent = readServiceIntent(
    service(
      { ipFamilies: ["IPv4", "IPv6"], ipFamilyPolicy: "RequireDualStack" },
      {
        "purelb.io/addresses": " 2001:DB8::0:5 , 192.0.2.5 ",
        "purelb.io/service-group": "lab",
      },
    ),
    OURS,
  );
  const r = requestOf(intent);
  assert.deepEqual(r?.specificAddresses, ["192.0.2.5", "2001:db8::5"]);
  assert.deepEqual(r?.families, ["IPv4", "IPv6"]);
  assert.deepEqual(intent.kind === "allocate" ? intent.warnings.map((w) => w.reason) : [], [
    "ConfigurationWarning",
  ]);
});

Deno.test("loadBalancerIP is read only without the annotation, with a deprecation warning", () => {
  const intent = readServiceIntent(service({ loadBalancerIP: "192.0.2.7" }), OURS);
  assert.deepEqual(requestOf(intent)?.specificAddresses, ["192.0.2.7"]);
  assert.deepEqual(intent.kind === "allocate" ? intent.warnings.map((w) => w.reason) : [], [
    "DeprecationWarning",
  ]);
  const annotated = readServiceIntent(
    service({ loadBalancerIP: "192.0.2.7" }, { "purelb.io/addresses": "192.0.2.8" }),
    OURS,
  );
  assert.deepEqual(requestOf(annotated)?.specificAddresses, ["192.0.2.8"]);
  assert.deepEqual(annotated.kind === "allocate" ? annotated.warnings : ["x"], []);
});

Deno.test("bad address annotations are invalid with a reason that names them", () => {
  const cases: ReadonlyArray<[NonNullable<V1Service["spec"]>, string, RegExp]> = [
    [{}, "not-an-ip", /"not-an-ip" is not an IP address/],
    [{}, "192.0.2.1,192.0.2.2", /two IPv4 addresses \(192\.0\.2\.1, 192\.0\.2\.2\)/],
    [{ ipFamilies: ["IPv4"] }, "2001:db8::1", /2001:db8::1 is IPv6, but .* ipFamilies are IPv4/],
    [
      { ipFamilies: ["IPv4", "IPv6"], ipFamilyPolicy: "RequireDualStack" },
      "192.0.2.1",
      /RequireDualStack needs one address per family/,
    ],
  ];
  for (const [spec, annotation, reason] of cases) {
    const intent = readServiceIntent(service(spec, { "purelb.io/addresses": annotation }), OURS);
    assert.equal(intent.kind, "invalid", annotation);
    assert.match(intent.kind === "invalid" ? intent.reason : "", reason);
    assert.match(intent.kind === "invalid" ? intent.reason : "", /purelb\.io\/addresses/);
  }
});

Deno.test("group annotation and re-evaluate are told apart from the default", () => {
  const plain = requestOf(readServiceIntent(service({}), OURS));
  assert.deepEqual([plain?.group, plain?.groupAnnotated, plain?.reEvaluate], [
    "default",
    undefined,
    undefined,
  ]);
  const named = requestOf(
    readServiceIntent(
      service({}, { "purelb.io/service-group": "default", "purelb.io/re-evaluate": "" }),
      OURS,
    ),
  );
  assert.deepEqual([named?.group, named?.groupAnnotated, named?.reEvaluate], [
    "default",
    true,
    true,
  ]);
});
