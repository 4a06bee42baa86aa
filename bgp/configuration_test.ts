import assert from "node:assert/strict";
import fc from "fast-check";
import { formatAddress, parseAddress } from "../ipam/address.ts";
import { compileLabelSelector } from "../k8s/selector.ts";
import { neighborsForNode, readBgpConfiguration } from "./configuration.ts";
import type {
  BgpConfigurationReading,
  BgpFamily,
  BgpNeighbor,
  BgpSettings,
  FieldProblem,
} from "./model.ts";

type Json = Readonly<Record<string, unknown>>;

/** A whole object around `spec`, as the API returns it. */
function configuration(spec: unknown): Json {
  return {
    apiVersion: "bgp.purelb.io/v1",
    kind: "BGPConfiguration",
    metadata: { name: "default", namespace: "purelb-system" },
    spec,
  };
}

type Valid = Extract<BgpConfigurationReading, { kind: "valid" }>;

function valid(reading: BgpConfigurationReading): Valid {
  if (reading.kind !== "valid") {
    assert.fail(`expected valid, got problems ${JSON.stringify(reading.problems)}`);
  }
  return reading;
}

function problemsOf(reading: BgpConfigurationReading): readonly FieldProblem[] {
  if (reading.kind !== "invalid") assert.fail("expected invalid, got valid");
  return reading.problems;
}

/** A neighbour as read from `{ neighborAddress, peerAsn }` alone, with `changes`. */
function neighbor(changes: Partial<BgpNeighbor> = {}): BgpNeighbor {
  return {
    address: "192.0.2.1",
    addressFamily: "ipv4",
    peerAsn: 65001,
    localAsn: undefined,
    description: undefined,
    adminDown: false,
    passwordRef: undefined,
    nodeSelector: undefined,
    families: ["ipv4-unicast"],
    holdTimeSeconds: undefined,
    keepaliveSeconds: undefined,
    connectRetrySeconds: undefined,
    multihopTtl: undefined,
    localAddress: undefined,
    passive: false,
    bfd: undefined,
    ...changes,
  };
}

const PEER = { config: { neighborAddress: "192.0.2.1", peerAsn: 65001 } };

/** The one neighbour read from a spec with `global.asn` 65000 and `entry`. */
function readOne(entry: unknown): Valid {
  return valid(readBgpConfiguration(configuration({ global: { asn: 65000 }, neighbors: [entry] })));
}

Deno.test("PureLB's sample reads without problems; ipv6-unicast over IPv4 is unsupported", () => {
  const reading = valid(readBgpConfiguration(configuration({
    global: {
      asn: 65000,
      routerID: "",
      listenPort: 179,
      families: ["ipv4-unicast", "ipv6-unicast"],
    },
    netlinkImport: { enabled: true, interfaceList: ["kube-lb0"] },
    neighbors: [{
      config: { neighborAddress: "192.0.2.1", peerAsn: 65001, description: "upstream router" },
      afiSafis: [
        { family: "ipv4-unicast", enabled: true },
        { family: "ipv6-unicast", enabled: true },
      ],
    }],
  })));
  const expected: BgpSettings = {
    asn: 65000,
    routerId: undefined,
    listenPort: 179,
    families: ["ipv4-unicast", "ipv6-unicast"],
    neighbors: [neighbor({ description: "upstream router" })],
    netlinkImport: { enabled: true, interfaces: ["kube-lb0"] },
    heartbeatSeconds: undefined,
  };
  assert.deepEqual(reading.settings, expected);
  assert.deepEqual(reading.rejectedNeighbors, []);
  assert.deepEqual(reading.unsupported, ["spec.neighbors[0].afiSafis[1].family"]);
});

Deno.test("a dual-stack pair of neighbours, each carrying its own family", () => {
  const reading = valid(readBgpConfiguration(configuration({
    global: { asn: 65000, routerID: "192.0.2.10", families: ["ipv6-unicast", "ipv4-unicast"] },
    neighbors: [
      { config: { neighborAddress: "192.0.2.1", peerAsn: 65001 } },
      { config: { neighborAddress: "2001:DB8:0:0::1", peerAsn: 65001 } },
    ],
  })));
  assert.equal(reading.settings.routerId, "192.0.2.10");
  assert.deepEqual(reading.settings.families, ["ipv4-unicast", "ipv6-unicast"]);
  assert.deepEqual(reading.settings.neighbors, [
    neighbor(),
    neighbor({ address: "2001:db8::1", addressFamily: "ipv6", families: ["ipv6-unicast"] }),
  ]);
  assert.deepEqual(reading.unsupported, []);
});

Deno.test("a neighbour with a password Secret, timers, multihop, transport and BFD", () => {
  const reading = readOne({
    config: {
      neighborAddress: "192.0.2.1",
      peerAsn: 65001,
      localAsn: 65100,
      adminDown: true,
      authPasswordSecretRef: { name: "bgp-secrets", key: "router1" },
    },
    timers: { config: { holdTime: 90, keepaliveInterval: 30, connectRetry: 5 } },
    ebgpMultihop: { enabled: true, multihopTtl: 4 },
    transport: { localAddress: "192.0.2.10", passiveMode: true },
    bfd: { enabled: true, minRxMs: 100, multiplier: 5 },
  });
  assert.deepEqual(reading.settings.neighbors, [neighbor({
    localAsn: 65100,
    adminDown: true,
    passwordRef: { name: "bgp-secrets", key: "router1" },
    holdTimeSeconds: 90,
    keepaliveSeconds: 30,
    connectRetrySeconds: 5,
    multihopTtl: 4,
    localAddress: "192.0.2.10",
    passive: true,
    bfd: { minRxMs: 100, minTxMs: 300, multiplier: 5 },
  })]);
  assert.deepEqual(reading.rejectedNeighbors, []);
  assert.deepEqual(reading.unsupported, []);
});

Deno.test("defaults: multihop TTL 255, BFD 300/300/3, hold time 0, BFD off unless enabled", () => {
  const on = readOne({
    ...PEER,
    ebgpMultihop: { enabled: true },
    bfd: { enabled: true },
    timers: { config: { holdTime: 0, keepaliveInterval: 30 } },
  });
  assert.deepEqual(on.settings.neighbors, [neighbor({
    multihopTtl: 255,
    bfd: { minRxMs: 300, minTxMs: 300, multiplier: 3 },
    holdTimeSeconds: 0,
    keepaliveSeconds: 30,
  })]);
  const off = readOne({
    ...PEER,
    ebgpMultihop: { enabled: false, multihopTtl: 3 },
    bfd: { minRxMs: 50 },
  });
  assert.deepEqual(off.settings.neighbors, [neighbor()]);
});

Deno.test("spec.netlinkImport: absent, disabled, and its interface list", () => {
  const absent = valid(readBgpConfiguration(configuration({ global: { asn: 65000 } })));
  assert.deepEqual(absent.settings.netlinkImport, { enabled: true, interfaces: [] });
  assert.deepEqual(absent.settings.neighbors, []);
  const disabled = valid(readBgpConfiguration(configuration({
    global: { asn: 65000 },
    netlinkImport: { enabled: false, interfaceList: ["kube-lb0", "lo", "kube-lb0"] },
  })));
  assert.deepEqual(disabled.settings.netlinkImport, {
    enabled: false,
    interfaces: ["kube-lb0", "lo"],
  });
});

Deno.test("spec.global.nodeStatus: heartbeatSeconds is read, enabled: false is unsupported", () => {
  const reading = valid(readBgpConfiguration(configuration({
    global: { asn: 65000, nodeStatus: { enabled: false, heartbeatSeconds: 30 } },
  })));
  assert.equal(reading.settings.heartbeatSeconds, 30);
  assert.deepEqual(reading.unsupported, ["spec.global.nodeStatus.enabled"]);
  const enabled = valid(readBgpConfiguration(configuration({
    global: { asn: 65000, nodeStatus: { enabled: true } },
  })));
  assert.equal(enabled.settings.heartbeatSeconds, undefined);
  assert.deepEqual(enabled.unsupported, []);
});

Deno.test("nodeSelector chooses the nodes of a neighbour; none means every node", () => {
  const reading = valid(readBgpConfiguration(configuration({
    global: { asn: 65000 },
    neighbors: [
      {
        config: { neighborAddress: "192.0.2.1", peerAsn: 65001 },
        nodeSelector: { matchLabels: { rack: "r1" } },
      },
      {
        config: { neighborAddress: "192.0.2.2", peerAsn: 65001 },
        nodeSelector: {
          matchExpressions: [{ key: "rack", operator: "In", values: ["r2", "r3"] }],
        },
      },
      { config: { neighborAddress: "192.0.2.3", peerAsn: 65001 } },
    ],
  })));
  const expectedSelector = compileLabelSelector({ matchLabels: { rack: "r1" } }, "x");
  assert.equal(expectedSelector.kind, "valid");
  if (expectedSelector.kind === "valid") {
    assert.deepEqual(reading.settings.neighbors[0]?.nodeSelector, expectedSelector.selector);
  }
  const addresses = (labels: Record<string, string>) =>
    neighborsForNode(reading.settings, labels).selected.map((n) => n.address);
  assert.deepEqual(addresses({ rack: "r1" }), ["192.0.2.1", "192.0.2.3"]);
  assert.deepEqual(addresses({ rack: "r3", zone: "a" }), ["192.0.2.2", "192.0.2.3"]);
  assert.deepEqual(addresses({}), ["192.0.2.3"]);
});

const GLOBAL_CASES: readonly {
  readonly name: string;
  readonly global: Json;
  readonly problems: readonly FieldProblem[];
}[] = [
  {
    name: "asn missing",
    global: { routerID: "192.0.2.10" },
    problems: [{
      field: "spec.global.asn",
      message: "is required: an AS number (1 to 4294967295)",
    }],
  },
  {
    name: "asn 0",
    global: { asn: 0 },
    problems: [{ field: "spec.global.asn", message: "0 is not an AS number (1 to 4294967295)" }],
  },
  {
    name: "asn too large",
    global: { asn: 4294967296 },
    problems: [{
      field: "spec.global.asn",
      message: "4294967296 is not an AS number (1 to 4294967295)",
    }],
  },
  {
    name: "asn as a string",
    global: { asn: "65000" },
    problems: [{
      field: "spec.global.asn",
      message: 'must be a whole number, not a string ("65000")',
    }],
  },
  {
    name: "asn not whole",
    global: { asn: 65000.5 },
    problems: [{
      field: "spec.global.asn",
      message: "65000.5 is not a whole number; an AS number (1 to 4294967295) is wanted",
    }],
  },
  {
    name: "routerID not an address",
    global: { asn: 65000, routerID: "router-1" },
    problems: [{
      field: "spec.global.routerID",
      message: '"router-1" is not an IPv4 address such as 192.0.2.1',
    }],
  },
  {
    name: "routerID IPv6",
    global: { asn: 65000, routerID: "2001:db8::1" },
    problems: [{
      field: "spec.global.routerID",
      message: "2001:db8::1 is an IPv6 address; a router ID is an IPv4 address",
    }],
  },
  {
    name: "routerID zero",
    global: { asn: 65000, routerID: "0.0.0.0" },
    problems: [{
      field: "spec.global.routerID",
      message: "0.0.0.0 is not a router ID; it must not be zero",
    }],
  },
  {
    name: "routerID a number",
    global: { asn: 65000, routerID: 5 },
    problems: [{ field: "spec.global.routerID", message: "must be a string, not a number (5)" }],
  },
  {
    name: "listenPort 0",
    global: { asn: 65000, listenPort: 0 },
    problems: [{ field: "spec.global.listenPort", message: "0 is not a TCP port (1 to 65535)" }],
  },
  {
    name: "listenPort 65536",
    global: { asn: 65000, listenPort: 65536 },
    problems: [{
      field: "spec.global.listenPort",
      message: "65536 is not a TCP port (1 to 65535)",
    }],
  },
  {
    name: "unknown family",
    global: { asn: 65000, families: ["ipv4-unicast", "l2vpn-evpn"] },
    problems: [{
      field: "spec.global.families[1]",
      message: '"l2vpn-evpn" is not a family carried here (ipv4-unicast or ipv6-unicast)',
    }],
  },
  {
    name: "families not a list",
    global: { asn: 65000, families: "ipv4-unicast" },
    problems: [{
      field: "spec.global.families",
      message: 'must be a list, not a string ("ipv4-unicast")',
    }],
  },
  {
    name: "heartbeat too short",
    global: { asn: 65000, nodeStatus: { heartbeatSeconds: 5 } },
    problems: [{
      field: "spec.global.nodeStatus.heartbeatSeconds",
      message: "5 is not a heartbeat (10 seconds or more)",
    }],
  },
  {
    name: "nodeStatus.enabled not a boolean",
    global: { asn: 65000, nodeStatus: { enabled: "true" } },
    problems: [{
      field: "spec.global.nodeStatus.enabled",
      message: 'must be true or false, not a string ("true")',
    }],
  },
  {
    name: "every problem at once",
    global: { asn: -1, routerID: "10.1", listenPort: 1.5, families: [4] },
    problems: [
      { field: "spec.global.asn", message: "-1 is not an AS number (1 to 4294967295)" },
      {
        field: "spec.global.routerID",
        message: '"10.1" is not an IPv4 address such as 192.0.2.1',
      },
      {
        field: "spec.global.listenPort",
        message: "1.5 is not a whole number; a TCP port (1 to 65535) is wanted",
      },
      { field: "spec.global.families[0]", message: "must be a family name, not a number (4)" },
    ],
  },
];

for (const { name, global, problems } of GLOBAL_CASES) {
  Deno.test(`spec.global is invalid: ${name}`, () => {
    const reading = readBgpConfiguration(configuration({ global, neighbors: [PEER] }));
    assert.deepEqual(problemsOf(reading), problems);
  });
}

const OBJECT_CASES: readonly {
  readonly name: string;
  readonly object: unknown;
  readonly problems: readonly FieldProblem[];
}[] = [
  {
    name: "not an object",
    object: [],
    problems: [{ field: "object", message: "must be an object, not a list" }],
  },
  {
    name: "null",
    object: null,
    problems: [{ field: "object", message: "must be an object, not null" }],
  },
  {
    name: "no spec",
    object: { apiVersion: "bgp.purelb.io/v1", kind: "BGPConfiguration" },
    problems: [{ field: "spec", message: "is required (it holds global and neighbors)" }],
  },
  {
    name: "spec not an object",
    object: configuration("global"),
    problems: [{ field: "spec", message: 'must be an object, not a string ("global")' }],
  },
  {
    name: "no spec.global",
    object: configuration({ neighbors: [PEER] }),
    problems: [{ field: "spec.global", message: "is required (it holds asn)" }],
  },
  {
    name: "another apiVersion and kind",
    object: { ...configuration({ global: { asn: 65000 } }), apiVersion: "purelb.io/v1", kind: 3 },
    problems: [
      { field: "apiVersion", message: 'must be "bgp.purelb.io/v1", not a string ("purelb.io/v1")' },
      { field: "kind", message: 'must be "BGPConfiguration", not a number (3)' },
    ],
  },
  {
    name: "spec.neighbors not a list",
    object: configuration({ global: { asn: 65000 }, neighbors: PEER }),
    problems: [{ field: "spec.neighbors", message: "must be a list, not an object" }],
  },
  {
    name: "spec.netlinkImport with a bad interface and flag",
    object: configuration({
      global: { asn: 65000 },
      netlinkImport: {
        enabled: "yes",
        interfaceList: ["kube-lb0", "eth 0", "a-very-long-name0", 7],
      },
    }),
    problems: [
      {
        field: "spec.netlinkImport.enabled",
        message: 'must be true or false, not a string ("yes")',
      },
      {
        field: "spec.netlinkImport.interfaceList[1]",
        message:
          '"eth 0" is not an interface name (1 to 15 characters, no "/", ":" or white space)',
      },
      {
        field: "spec.netlinkImport.interfaceList[2]",
        message:
          '"a-very-long-name0" is not an interface name (1 to 15 characters, no "/", ":" or white space)',
      },
      {
        field: "spec.netlinkImport.interfaceList[3]",
        message: "must be an interface name, not a number (7)",
      },
    ],
  },
];

for (const { name, object, problems } of OBJECT_CASES) {
  Deno.test(`the object is invalid: ${name}`, () => {
    assert.deepEqual(problemsOf(readBgpConfiguration(object)), problems);
  });
}

/** `PEER` with `config` fields changed. */
function peerWith(config: Json, rest: Json = {}): Json {
  return { config: { ...PEER.config, ...config }, ...rest };
}

const NEIGHBOR_CASES: readonly {
  readonly name: string;
  readonly entry: unknown;
  readonly problems: readonly FieldProblem[];
}[] = [
  {
    name: "not an object",
    entry: "192.0.2.1",
    problems: [{
      field: "spec.neighbors[1]",
      message: 'must be an object, not a string ("192.0.2.1")',
    }],
  },
  {
    name: "no config",
    entry: { afiSafis: [{ family: "ipv4-unicast" }] },
    problems: [{
      field: "spec.neighbors[1].config",
      message: "is required (it holds neighborAddress and peerAsn)",
    }],
  },
  {
    name: "no neighborAddress, no peerAsn",
    entry: { config: { description: "x" } },
    problems: [
      {
        field: "spec.neighbors[1].config.neighborAddress",
        message: "is required: the neighbour's IPv4 or IPv6 address",
      },
      {
        field: "spec.neighbors[1].config.peerAsn",
        message: "is required: an AS number (1 to 4294967295)",
      },
    ],
  },
  {
    name: "neighborAddress not an address",
    entry: peerWith({ neighborAddress: "192.0.2.300" }),
    problems: [{
      field: "spec.neighbors[1].config.neighborAddress",
      message: '"192.0.2.300" is not an IPv4 or IPv6 address',
    }],
  },
  {
    name: "neighborAddress with a zone",
    entry: peerWith({ neighborAddress: "fe80::1%eth0" }),
    problems: [{
      field: "spec.neighbors[1].config.neighborAddress",
      message: '"fe80::1%eth0" is not an IPv4 or IPv6 address',
    }],
  },
  {
    name: "unnumbered",
    entry: { config: { neighborInterface: "eth1", peerAsn: 65001 } },
    problems: [{
      field: "spec.neighbors[1].config.neighborInterface",
      message: "unnumbered BGP is not supported; give config.neighborAddress",
    }],
  },
  {
    name: "peerAsn a string",
    entry: peerWith({ peerAsn: "65001" }),
    problems: [{
      field: "spec.neighbors[1].config.peerAsn",
      message: 'must be a whole number, not a string ("65001")',
    }],
  },
  {
    name: "localAsn 0",
    entry: peerWith({ localAsn: 0 }),
    problems: [{
      field: "spec.neighbors[1].config.localAsn",
      message: "0 is not an AS number (1 to 4294967295)",
    }],
  },
  {
    name: "description and adminDown of the wrong type",
    entry: peerWith({ description: 5, adminDown: "yes" }),
    problems: [
      {
        field: "spec.neighbors[1].config.description",
        message: "must be a string, not a number (5)",
      },
      {
        field: "spec.neighbors[1].config.adminDown",
        message: 'must be true or false, not a string ("yes")',
      },
    ],
  },
  {
    name: "a Secret without a key",
    entry: peerWith({ authPasswordSecretRef: { name: "bgp-secrets" } }),
    problems: [{
      field: "spec.neighbors[1].config.authPasswordSecretRef.key",
      message: "is required: the key of the password in that Secret",
    }],
  },
  {
    name: "a Secret key without a Secret name",
    entry: peerWith({ authPasswordSecretRef: { name: "", key: "router1" } }),
    problems: [{
      field: "spec.neighbors[1].config.authPasswordSecretRef.name",
      message: "is required: the name of a Secret in the agent's namespace",
    }],
  },
  {
    name: "hold time 2",
    entry: { ...PEER, timers: { config: { holdTime: 2 } } },
    problems: [{
      field: "spec.neighbors[1].timers.config.holdTime",
      message: "2 is not a hold time (0 for none, or 3 to 65535 seconds)",
    }],
  },
  {
    name: "hold time too long",
    entry: { ...PEER, timers: { config: { holdTime: 65536 } } },
    problems: [{
      field: "spec.neighbors[1].timers.config.holdTime",
      message: "65536 is not a hold time (0 for none, or 3 to 65535 seconds)",
    }],
  },
  {
    name: "keepalive not shorter than the hold time",
    entry: { ...PEER, timers: { config: { holdTime: 30, keepaliveInterval: 30 } } },
    problems: [{
      field: "spec.neighbors[1].timers.config.keepaliveInterval",
      message: "30 seconds is not shorter than the hold time (30 seconds); a third of it is usual",
    }],
  },
  {
    name: "keepalive and connectRetry 0",
    entry: { ...PEER, timers: { config: { keepaliveInterval: 0, connectRetry: 0 } } },
    problems: [
      {
        field: "spec.neighbors[1].timers.config.keepaliveInterval",
        message: "0 is not a timer (1 to 65535 seconds)",
      },
      {
        field: "spec.neighbors[1].timers.config.connectRetry",
        message: "0 is not a timer (1 to 65535 seconds)",
      },
    ],
  },
  {
    name: "multihop TTL 256",
    entry: { ...PEER, ebgpMultihop: { enabled: true, multihopTtl: 256 } },
    problems: [{
      field: "spec.neighbors[1].ebgpMultihop.multihopTtl",
      message: "256 is not a TTL (1 to 255)",
    }],
  },
  {
    name: "local address of the other family",
    entry: { ...PEER, transport: { localAddress: "2001:db8::10" } },
    problems: [{
      field: "spec.neighbors[1].transport.localAddress",
      message: "2001:db8::10 is IPv6, but the neighbour 192.0.2.1 is IPv4",
    }],
  },
  {
    name: "local address not an address",
    entry: { ...PEER, transport: { localAddress: "node-1", passiveMode: 1 } },
    problems: [
      {
        field: "spec.neighbors[1].transport.passiveMode",
        message: "must be true or false, not a number (1)",
      },
      {
        field: "spec.neighbors[1].transport.localAddress",
        message: '"node-1" is not an IPv4 or IPv6 address',
      },
    ],
  },
  {
    name: "BFD intervals and multiplier out of range",
    entry: { ...PEER, bfd: { enabled: true, minRxMs: 5, minTxMs: 60001, multiplier: 0 } },
    problems: [
      {
        field: "spec.neighbors[1].bfd.minRxMs",
        message: "5 is not a BFD interval (10 to 60000 milliseconds)",
      },
      {
        field: "spec.neighbors[1].bfd.minTxMs",
        message: "60001 is not a BFD interval (10 to 60000 milliseconds)",
      },
      {
        field: "spec.neighbors[1].bfd.multiplier",
        message: "0 is not a BFD multiplier (1 to 255)",
      },
    ],
  },
  {
    name: "timers not an object",
    entry: { ...PEER, timers: [90, 30] },
    problems: [{ field: "spec.neighbors[1].timers", message: "must be an object, not a list" }],
  },
  {
    name: "nodeSelector with an unknown operator",
    entry: { ...PEER, nodeSelector: { matchExpressions: [{ key: "rack", operator: "Is" }] } },
    problems: [{
      field: "spec.neighbors[1].nodeSelector.matchExpressions[0].operator",
      message: 'must be one of In, NotIn, Exists, DoesNotExist, not "Is"',
    }],
  },
  {
    name: "nodeSelector with a bad label key holding ': '",
    entry: { ...PEER, nodeSelector: { matchLabels: { "a: b": "x" } } },
    problems: [{
      field: 'spec.neighbors[1].nodeSelector.matchLabels["a: b"]',
      message: '"a: b" is not a label key: the name must be 1 to 63 letters, digits, "-", "_" ' +
        'or ".", beginning and ending with a letter or digit',
    }],
  },
  {
    name: "nodeSelector with a label value that is not a string",
    entry: { ...PEER, nodeSelector: { matchLabels: { rack: 1 } } },
    problems: [{
      field: "spec.neighbors[1].nodeSelector.matchLabels.rack",
      message: "must be a string, not a number (1)",
    }],
  },
  {
    name: "nodeSelector expression without a key",
    entry: { ...PEER, nodeSelector: { matchExpressions: [{ operator: "Exists" }] } },
    problems: [{
      field: "spec.neighbors[1].nodeSelector.matchExpressions[0].key",
      message: "is required",
    }],
  },
  {
    name: "afiSafis with an unknown family and one without a family",
    entry: { ...PEER, afiSafis: [{ family: "ipv4-flowspec" }, { enabled: true }] },
    problems: [
      {
        field: "spec.neighbors[1].afiSafis[0].family",
        message: '"ipv4-flowspec" is not a family carried here (ipv4-unicast or ipv6-unicast)',
      },
      {
        field: "spec.neighbors[1].afiSafis[1].family",
        message: "is required: ipv4-unicast or ipv6-unicast",
      },
    ],
  },
  {
    name: "afiSafis enabling only the other family",
    entry: {
      ...PEER,
      afiSafis: [{ family: "ipv6-unicast" }, { family: "ipv4-unicast", enabled: false }],
    },
    problems: [{
      field: "spec.neighbors[1].afiSafis",
      message: "enables no family that 192.0.2.1 can carry (IPv4: ipv4-unicast)",
    }],
  },
  {
    name: "afiSafis entry not an object",
    entry: { ...PEER, afiSafis: ["ipv4-unicast"] },
    problems: [{
      field: "spec.neighbors[1].afiSafis[0]",
      message: 'must be an object, not a string ("ipv4-unicast")',
    }],
  },
  {
    name: "the same address as neighbour 0, written differently",
    entry: peerWith({ neighborAddress: "2001:DB8:0::0:1" }),
    problems: [{
      field: "spec.neighbors[1].config.neighborAddress",
      message: "2001:db8::1 is already the address of spec.neighbors[0], and one of them " +
        "selects every node (give both a nodeSelector to configure this neighbour differently " +
        "per node)",
    }],
  },
];

Deno.test("one address in two entries with node selectors: each node gets the first that selects it", () => {
  const reading = readBgpConfiguration({
    spec: {
      global: { asn: 65001 },
      neighbors: [
        {
          config: { neighborAddress: "192.0.2.1", peerAsn: 65000, description: "rack a" },
          nodeSelector: { matchLabels: { rack: "a" } },
        },
        {
          config: { neighborAddress: "192.0.2.1", peerAsn: 65000, description: "zone 1" },
          nodeSelector: { matchLabels: { zone: "1" } },
        },
      ],
    },
  });
  assert.equal(reading.kind, "valid");
  if (reading.kind !== "valid") return;
  assert.deepEqual(reading.rejectedNeighbors, []);
  const both = neighborsForNode(reading.settings, { rack: "a", zone: "1" });
  assert.deepEqual(both.selected.map((n) => n.description), ["rack a"]);
  assert.deepEqual(both.shadowed.map((n) => n.description), ["zone 1"]);
  const zoneOnly = neighborsForNode(reading.settings, { zone: "1" });
  assert.deepEqual(zoneOnly.selected.map((n) => n.description), ["zone 1"]);
  assert.deepEqual(zoneOnly.shadowed, []);
});

for (const { name, entry, problems } of NEIGHBOR_CASES) {
  Deno.test(`a neighbour is rejected, the others kept: ${name}`, () => {
    const first = { config: { neighborAddress: "2001:db8::1", peerAsn: 65001 } };
    const last = { config: { neighborAddress: "192.0.2.3", peerAsn: 65003 } };
    const reading = valid(readBgpConfiguration(configuration({
      global: { asn: 65000 },
      neighbors: [first, entry, last],
    })));
    assert.deepEqual(reading.rejectedNeighbors, problems);
    assert.deepEqual(reading.settings.neighbors.map((n) => n.address), [
      "2001:db8::1",
      "192.0.2.3",
    ]);
  });
}

Deno.test("spec.global.families leaves a neighbour without a family: rejected", () => {
  const reading = valid(readBgpConfiguration(configuration({
    global: { asn: 65000, families: ["ipv4-unicast"] },
    neighbors: [
      { config: { neighborAddress: "2001:db8::1", peerAsn: 65001 } },
      {
        config: { neighborAddress: "2001:db8::2", peerAsn: 65001 },
        afiSafis: [{ family: "ipv6-unicast" }],
      },
      PEER,
    ],
  })));
  assert.deepEqual(reading.rejectedNeighbors, [
    {
      field: "spec.neighbors[0].config.neighborAddress",
      message:
        "2001:db8::1 is IPv6, but spec.global.families (ipv4-unicast) leaves out ipv6-unicast",
    },
    {
      field: "spec.neighbors[1].afiSafis",
      message:
        "2001:db8::2 is IPv6, but spec.global.families (ipv4-unicast) leaves out ipv6-unicast",
    },
  ]);
  assert.deepEqual(reading.settings.neighbors, [neighbor()]);
});

Deno.test("a later duplicate is rejected even when the earlier one is rejected too", () => {
  const reading = valid(readBgpConfiguration(configuration({
    global: { asn: 65000 },
    neighbors: [peerWith({ peerAsn: 0 }), PEER],
  })));
  assert.deepEqual(reading.rejectedNeighbors.map((p) => p.field), [
    "spec.neighbors[0].config.peerAsn",
    "spec.neighbors[1].config.neighborAddress",
  ]);
  assert.deepEqual(reading.settings.neighbors, []);
});

Deno.test("every key not read is listed as unsupported, at any depth, by its top-most path", () => {
  const reading = valid(readBgpConfiguration({
    ...configuration({
      global: {
        asn: 65000,
        gracefulRestart: { enabled: true },
        listenAddresses: ["0.0.0.0"],
        useMultiplePaths: false,
      },
      peerGroups: [{ config: { peerGroupName: "rr" } }],
      neighbors: [
        {
          config: {
            neighborAddress: "192.0.2.1",
            peerAsn: 65001,
            neighborInterface: "eth1",
            authPassword: "secret",
          },
          afiSafis: [{ family: "ipv4-unicast", prefixLimit: { maxPrefixes: 100 } }],
          timers: { config: { holdTime: 90 }, state: { uptime: 1 } },
          transport: { localAddress: "192.0.2.10", remotePort: 1179 },
          bfd: { enabled: true, echo: true },
          nodeSelector: { matchLabels: { rack: "r1" }, matchFields: { x: "y" } },
          ebgpMultihop: { enabled: true, extra: 1 },
          routeReflector: { routeReflectorClient: true },
        },
        {
          config: {
            neighborAddress: "192.0.2.2",
            peerAsn: 65001,
            peerGroup: "rr",
            authPasswordSecretRef: { name: "s", key: "k", namespace: "other" },
          },
        },
      ],
      netlinkImport: { enabled: true, vrf: "blue" },
      netlinkExport: { enabled: true },
      vrfs: [{ name: "blue" }],
      policyDefinitions: [{ name: "p" }],
      definedSets: { prefixSets: [{ name: "s" }] },
      dynamicNeighbors: [{ prefix: "192.0.2.0/24" }],
      "odd key": 1,
    }),
    status: { anything: true },
  }));
  assert.deepEqual(reading.unsupported, [
    "spec.peerGroups",
    "spec.netlinkExport",
    "spec.vrfs",
    "spec.policyDefinitions",
    "spec.definedSets",
    "spec.dynamicNeighbors",
    'spec["odd key"]',
    "spec.global.gracefulRestart",
    "spec.global.listenAddresses",
    "spec.global.useMultiplePaths",
    "spec.netlinkImport.vrf",
    "spec.neighbors[0].routeReflector",
    "spec.neighbors[0].config.neighborInterface",
    "spec.neighbors[0].config.authPassword",
    "spec.neighbors[0].nodeSelector.matchFields",
    "spec.neighbors[0].timers.state",
    "spec.neighbors[0].ebgpMultihop.extra",
    "spec.neighbors[0].transport.remotePort",
    "spec.neighbors[0].bfd.echo",
    "spec.neighbors[0].afiSafis[0].prefixLimit",
    "spec.neighbors[1].config.peerGroup",
    "spec.neighbors[1].config.authPasswordSecretRef.namespace",
  ]);
  assert.deepEqual(reading.rejectedNeighbors, []);
  assert.equal(reading.settings.neighbors.length, 2);
});

Deno.test("unsupported fields are listed for an invalid object too", () => {
  const reading = readBgpConfiguration(configuration({
    global: { asn: 0, gracefulRestart: { enabled: true } },
    neighbors: [{ ...PEER, gracefulRestart: { enabled: true } }],
  }));
  assert.equal(reading.kind, "invalid");
  assert.deepEqual(reading.unsupported, [
    "spec.global.gracefulRestart",
    "spec.neighbors[0].gracefulRestart",
  ]);
});

Deno.test("empty values PureLB's tools write are neither problems nor unsupported", () => {
  const reading = valid(readBgpConfiguration(configuration({
    global: { asn: 65000, routerID: "", families: [], gracefulRestart: {}, listenAddresses: [] },
    neighbors: [{
      config: {
        neighborAddress: "192.0.2.1",
        peerAsn: 65001,
        description: "",
        neighborInterface: "",
        peerGroup: "",
        authPassword: "",
        authPasswordSecretRef: { name: "" },
      },
      afiSafis: [],
      nodeSelector: {},
      transport: { localAddress: "" },
      timers: { config: {} },
      applyPolicy: { config: { importPolicyList: [], defaultImportPolicy: "" } },
    }],
    netlinkImport: null,
    peerGroups: null,
  })));
  assert.deepEqual(reading.unsupported, []);
  assert.deepEqual(reading.rejectedNeighbors, []);
  assert.equal(reading.settings.routerId, undefined);
  assert.equal(reading.settings.families, undefined);
  assert.deepEqual(reading.settings.netlinkImport, { enabled: true, interfaces: [] });
  assert.deepEqual(reading.settings.neighbors, [neighbor()]);
});

// Property: objects made of valid parts.

const ADDRESS_TEXTS = [
  "192.0.2.1",
  "192.0.2.2",
  "198.51.100.7",
  "2001:db8::1",
  "2001:DB8::1",
  "2001:db8:0:0:0:0:0:1",
  "2001:db8::a",
  "2001:0db8::000a",
  "fe80::1",
];

const familyArbitrary = fc.constantFrom<BgpFamily>("ipv4-unicast", "ipv6-unicast");

const neighborArbitrary = fc.record({
  address: fc.constantFrom(...ADDRESS_TEXTS),
  peerAsn: fc.integer({ min: 1, max: 4294967295 }),
  afiSafis: fc.option(
    fc.array(fc.record({ family: familyArbitrary, enabled: fc.option(fc.boolean()) }), {
      maxLength: 3,
    }),
  ),
  holdTime: fc.option(fc.constantFrom(0, 3, 90, 65535)),
  passive: fc.option(fc.boolean()),
});

type NeighborParts = typeof neighborArbitrary extends fc.Arbitrary<infer T> ? T : never;

function neighborObject(parts: NeighborParts): Json {
  const entry: Record<string, unknown> = {
    config: { neighborAddress: parts.address, peerAsn: parts.peerAsn },
  };
  if (parts.afiSafis !== null) {
    entry.afiSafis = parts.afiSafis.map(({ family, enabled }) =>
      enabled === null ? { family } : { family, enabled }
    );
  }
  if (parts.holdTime !== null) entry.timers = { config: { holdTime: parts.holdTime } };
  if (parts.passive !== null) entry.transport = { passiveMode: parts.passive };
  return entry;
}

/** The families `parts` asks for, before the address family and the global list are applied. */
function askedFamilies(parts: NeighborParts): readonly BgpFamily[] | undefined {
  if (parts.afiSafis === null || parts.afiSafis.length === 0) return undefined;
  return parts.afiSafis.filter((entry) => entry.enabled !== false).map((entry) => entry.family);
}

function neighborIndex(field: string): number {
  const match = /^spec\.neighbors\[(\d+)\]/.exec(field);
  if (match === null) assert.fail(`${field} is not a neighbour's field`);
  return Number(match[1]);
}

Deno.test("property: every input neighbour is kept or rejected; kept ones are consistent", () => {
  fc.assert(
    fc.property(
      fc.array(neighborArbitrary, { maxLength: 6 }),
      fc.option(fc.uniqueArray(familyArbitrary, { minLength: 1, maxLength: 2 })),
      (neighbors, globalFamilies) => {
        const global = globalFamilies === null
          ? { asn: 65000 }
          : { asn: 65000, families: globalFamilies };
        const reading = valid(readBgpConfiguration(configuration({
          global,
          neighbors: neighbors.map(neighborObject),
        })));
        const rejected = new Set(reading.rejectedNeighbors.map((p) => neighborIndex(p.field)));
        const keptParts = neighbors.filter((_, index) => !rejected.has(index));
        assert.equal(rejected.size + reading.settings.neighbors.length, neighbors.length);
        assert.deepEqual(
          reading.settings.neighbors.map((n) => n.address),
          keptParts.map((parts) => formatAddress(parseAddress(parts.address))),
        );
        assert.equal(
          new Set(reading.settings.neighbors.map((n) => n.address)).size,
          reading.settings.neighbors.length,
        );
        reading.settings.neighbors.forEach((kept, index) => {
          const parts = keptParts[index];
          if (parts === undefined) assert.fail(`no input for kept neighbour ${index}`);
          const address = parseAddress(kept.address);
          assert.equal(formatAddress(address), kept.address);
          assert.equal(kept.addressFamily, address.family === "IPv4" ? "ipv4" : "ipv6");
          assert.ok(kept.families.length > 0);
          const own = kept.addressFamily === "ipv4" ? "ipv4-unicast" : "ipv6-unicast";
          assert.deepEqual(kept.families, [own]);
          assert.ok(globalFamilies === null || globalFamilies.includes(own));
          const asked = askedFamilies(parts);
          assert.ok(asked === undefined || asked.includes(own));
          assert.equal(kept.peerAsn, parts.peerAsn);
          assert.equal(kept.passive, parts.passive === true);
          assert.equal(kept.holdTimeSeconds, parts.holdTime ?? undefined);
        });
        // A neighbour is rejected only for a duplicate address or for having no family.
        for (const index of rejected) {
          const parts = neighbors[index];
          if (parts === undefined) assert.fail(`no input for rejected neighbour ${index}`);
          const address = formatAddress(parseAddress(parts.address));
          const own = address.includes(":") ? "ipv6-unicast" : "ipv4-unicast";
          const asked = askedFamilies(parts);
          const duplicate = neighbors.slice(0, index).some((earlier) =>
            formatAddress(parseAddress(earlier.address)) === address
          );
          const noFamily = (asked !== undefined && !asked.includes(own)) ||
            (globalFamilies !== null && !globalFamilies.includes(own));
          assert.ok(duplicate || noFamily, `neighbour ${index} rejected without a reason`);
        }
        // Every family left out for not matching the address is listed as unsupported.
        neighbors.forEach((parts, index) => {
          const own = parts.address.includes(":") ? "ipv6-unicast" : "ipv4-unicast";
          (parts.afiSafis ?? []).forEach((entry, at) => {
            const path = `spec.neighbors[${index}].afiSafis[${at}].family`;
            const listed = reading.unsupported.includes(path);
            assert.equal(listed, entry.family !== own && entry.enabled !== false, path);
          });
        });
      },
    ),
    { numRuns: 500 },
  );
});
