import assert from "node:assert/strict";
import {
  type AddressHolder,
  checkSharing,
  findPortConflict,
  formatPort,
  type ServicePort,
  type SharingRequest,
} from "./sharing.ts";

const tcp80: ServicePort = { protocol: "TCP", port: 80 };
const tcp443: ServicePort = { protocol: "TCP", port: 443 };
const udp80: ServicePort = { protocol: "UDP", port: 80 };
const sctp80: ServicePort = { protocol: "SCTP", port: 80 };

Deno.test("formatPort", () => {
  assert.equal(formatPort(tcp80), "TCP/80");
  assert.equal(formatPort(sctp80), "SCTP/80");
});

Deno.test("a port conflicts only on the same protocol and number", () => {
  assert.deepEqual(findPortConflict([tcp443, tcp80], [tcp80]), tcp80);
  assert.equal(findPortConflict([tcp80], [udp80, sctp80]), undefined);
  assert.equal(findPortConflict([], [tcp80]), undefined);
  assert.equal(findPortConflict([tcp80], []), undefined);
});

const holderA: AddressHolder = { serviceKey: "ns/a", sharingKey: "web", ports: [tcp80] };
const loner: AddressHolder = { serviceKey: "ns/lone", sharingKey: "", ports: [tcp80] };

const CASES: readonly {
  readonly why: string;
  readonly holders: readonly AddressHolder[];
  readonly serviceKey: string;
  readonly request: SharingRequest;
  readonly reason: string | undefined;
}[] = [
  {
    why: "same key, different ports",
    holders: [holderA],
    serviceKey: "ns/b",
    request: { sharingKey: "web", ports: [tcp443] },
    reason: undefined,
  },
  {
    why: "same key, same port number on another protocol",
    holders: [holderA],
    serviceKey: "ns/b",
    request: { sharingKey: "web", ports: [udp80] },
    reason: undefined,
  },
  {
    why: "same key, same port",
    holders: [holderA],
    serviceKey: "ns/b",
    request: { sharingKey: "web", ports: [tcp443, tcp80] },
    reason: "address 192.0.2.5 is shared with ns/a, which already uses TCP/80",
  },
  {
    why: "different keys",
    holders: [holderA],
    serviceKey: "ns/b",
    request: { sharingKey: "mail", ports: [tcp443] },
    reason:
      'address 192.0.2.5 is in use by ns/a and the sharing keys differ ("mail" here, "web" there)',
  },
  {
    why: "the newcomer has no key",
    holders: [holderA],
    serviceKey: "ns/b",
    request: { sharingKey: "", ports: [tcp443] },
    reason: "address 192.0.2.5 is in use by ns/a and ns/b has no sharing key",
  },
  {
    why: "the holder has no key",
    holders: [loner],
    serviceKey: "ns/b",
    request: { sharingKey: "", ports: [tcp443] },
    reason: "address 192.0.2.5 is in use by ns/lone, which does not allow sharing",
  },
  {
    why: "the only holder is the service itself",
    holders: [loner],
    serviceKey: "ns/lone",
    request: { sharingKey: "", ports: [tcp80] },
    reason: undefined,
  },
  {
    why: "a clash with the second of two sharers",
    holders: [holderA, { serviceKey: "ns/c", sharingKey: "web", ports: [tcp443] }],
    serviceKey: "ns/b",
    request: { sharingKey: "web", ports: [tcp443] },
    reason: "address 192.0.2.5 is shared with ns/c, which already uses TCP/443",
  },
];

for (const { why, holders, serviceKey, request, reason } of CASES) {
  Deno.test(`checkSharing: ${why}`, () => {
    const verdict = checkSharing("192.0.2.5", holders, serviceKey, request);
    if (reason === undefined) assert.deepEqual(verdict, { kind: "allowed" });
    else assert.deepEqual(verdict, { kind: "refused", reason });
  });
}
