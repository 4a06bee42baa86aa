/**
 * The BGP CRDs (deploy/crds/configs.bgp.purelb.io.yaml, bgpnodestatuses.bgp.purelb.io.yaml)
 * against the real API server: a PureLB v0.16 style BGPConfiguration applies unchanged, PureLB's
 * fields we do not act on included; each shape error is refused at admission naming its field;
 * BGPNodeStatus is cluster-scoped and written through its status subresource.
 */

import assert from "node:assert/strict";
import { CustomObjectsApi, mergePatch, typedApi } from "../k8s/client.ts";
import { clusterTest } from "./cluster.ts";
import { errorMessage } from "../k8s/errors.ts";
import { ApiConnection } from "../k8s/transport.ts";
import {
  BGP_CONFIGURATION_PLURAL,
  BGP_GROUP,
  BGP_NODE_STATUS_PLURAL,
  BGP_VERSION,
} from "../bgp/model.ts";

const API_VERSION = `${BGP_GROUP}/${BGP_VERSION}`;

/**
 * A BGPConfiguration as a PureLB v0.16 user writes one: every field we support, and some we do
 * not (peer groups, graceful restart, a neighbour's peer group, policies, PureLB's own BFD).
 */
const PURELB_SAMPLE = {
  global: {
    asn: 65000,
    routerID: "",
    listenPort: 179,
    families: ["ipv4-unicast", "ipv6-unicast"],
    nodeStatus: { enabled: true, heartbeatSeconds: 60 },
    // PureLB-only
    gracefulRestart: { enabled: true, restartTime: 120 },
    listenAddresses: ["0.0.0.0", "::"],
  },
  netlinkImport: { enabled: true, interfaceList: ["kube-lb0"], vrf: "" },
  neighbors: [
    {
      config: { neighborAddress: "192.0.2.1", peerAsn: 65001, description: "top of rack" },
      afiSafis: [
        { family: "ipv4-unicast", enabled: true, prefixLimit: { maxPrefixes: 100 } },
        { family: "ipv6-unicast", enabled: false },
      ],
      gracefulRestart: { enabled: true, helperOnly: true },
      applyPolicy: { exportPolicy: { policies: ["only-lb"], defaultAction: "reject" } },
    },
    {
      config: {
        neighborAddress: "2001:db8::1",
        peerAsn: 4200000000,
        localAsn: 4200000001,
        peerGroup: "spines",
        adminDown: false,
        authPasswordSecretRef: { name: "purelb-bgp-auth", key: "spine-1" },
      },
      timers: {
        config: {
          holdTime: 90,
          keepaliveInterval: 30,
          connectRetry: 10,
          minimumAdvertisementInterval: 5,
        },
      },
      ebgpMultihop: { enabled: true, multihopTtl: 4 },
      transport: { localAddress: "2001:db8::10", passiveMode: true, bindInterface: "eth0" },
      bfd: { enabled: true, desiredMinimumTxInterval: 300000, minRxMs: 300, multiplier: 3 },
    },
    {
      config: { neighborAddress: "fe80::1%eth1", peerAsn: 65002 },
      nodeSelector: {
        matchLabels: { "example.com/rack": "r1" },
        matchExpressions: [{ key: "node-role.kubernetes.io/edge", operator: "Exists" }],
      },
    },
  ],
  peerGroups: [{ config: { peerGroupName: "spines", peerAsn: 4200000000 } }],
  policyDefinitions: [{ name: "only-lb", statements: [] }],
};

/** A minimal valid spec with one neighbour, changed by `edit` into a bad one. */
function specWith(edit: (spec: Spec) => void): Spec {
  const spec: Spec = {
    global: { asn: 65000 },
    neighbors: [{ config: { neighborAddress: "192.0.2.1", peerAsn: 65001 } }],
  };
  edit(spec);
  return spec;
}

interface Neighbor {
  config: Record<string, unknown>;
  [field: string]: unknown;
}

interface Spec {
  global: Record<string, unknown>;
  neighbors: Neighbor[];
}

function firstNeighbor(spec: Spec): Neighbor {
  const neighbor = spec.neighbors[0];
  assert.ok(neighbor);
  return neighbor;
}

async function createExpectingRejection(
  api: CustomObjectsApi,
  namespace: string,
  spec: unknown,
): Promise<string> {
  try {
    await api.createNamespacedCustomObject({
      group: BGP_GROUP,
      version: BGP_VERSION,
      namespace,
      plural: BGP_CONFIGURATION_PLURAL,
      body: {
        apiVersion: API_VERSION,
        kind: "BGPConfiguration",
        metadata: { generateName: "bad-" },
        spec,
      },
    });
  } catch (error) {
    return errorMessage(error);
  }
  assert.fail(`the API server accepted BGPConfiguration spec ${JSON.stringify(spec)}`);
}

clusterTest(
  "BGPConfiguration: PureLB's v0.16 sample applies unchanged, unknown fields kept",
  async (c) => {
    const ns = await c.createNamespace("crd-bgp-ok");
    const api = typedApi(new ApiConnection(c.adminConfig()), CustomObjectsApi);
    const where = {
      group: BGP_GROUP,
      version: BGP_VERSION,
      namespace: ns,
      plural: BGP_CONFIGURATION_PLURAL,
    };
    await api.createNamespacedCustomObject({
      ...where,
      body: {
        apiVersion: API_VERSION,
        kind: "BGPConfiguration",
        metadata: { name: "default" },
        spec: PURELB_SAMPLE,
      },
    });
    const stored = await api.getNamespacedCustomObject({ ...where, name: "default" }) as {
      spec: unknown;
    };
    assert.deepEqual(stored.spec, PURELB_SAMPLE);

    // The edges of each range are admitted too.
    const edges = [
      specWith((s) => {
        s.global.asn = 4294967295;
        s.global.routerID = "203.0.113.9";
        s.global.listenPort = 65535;
        s.global.families = ["ipv6-unicast"];
        const n = firstNeighbor(s);
        n.config.peerAsn = 1;
        n.timers = { config: { holdTime: 3, keepaliveInterval: 1 } };
        n.ebgpMultihop = { enabled: true, multihopTtl: 255 };
        n.bfd = { enabled: true, minRxMs: 10, minTxMs: 60000, multiplier: 255 };
      }),
      specWith((s) => {
        s.global.listenPort = 1;
        s.global.nodeStatus = { heartbeatSeconds: 10 };
        const n = firstNeighbor(s);
        n.timers = { config: { holdTime: 0, keepaliveInterval: 0 } };
        n.ebgpMultihop = { enabled: true, multihopTtl: 1 };
        n.bfd = { enabled: false, multiplier: 1 };
      }),
      // PureLB's unnumbered form is admitted (the agent reports it as unsupported).
      specWith((s) => {
        firstNeighbor(s).config = { neighborInterface: "eth0", peerAsn: 65001 };
      }),
      { global: { asn: 65000 } },
    ];
    for (const [i, spec] of edges.entries()) {
      const name = `edge-${i}`;
      await api.createNamespacedCustomObject({
        ...where,
        body: { apiVersion: API_VERSION, kind: "BGPConfiguration", metadata: { name }, spec },
      });
      const read = await api.getNamespacedCustomObject({ ...where, name }) as { spec: unknown };
      assert.deepEqual(read.spec, spec, name);
    }

    // Status: conditions and observedGeneration, written through the status subresource.
    const status = {
      observedGeneration: 1,
      conditions: [{
        type: "Unsupported",
        status: "True",
        observedGeneration: 1,
        lastTransitionTime: "2025-01-01T00:00:00Z",
        reason: "UnsupportedFields",
        message: "accepted but not acted on: spec.peerGroups",
      }],
    };
    await api.patchNamespacedCustomObjectStatus(
      { ...where, name: "default", body: { status } },
      mergePatch(),
    );
    const withStatus = await api.getNamespacedCustomObject({ ...where, name: "default" }) as {
      status: unknown;
    };
    assert.deepEqual(withStatus.status, status);
    await c.deleteNamespace(ns);
  },
);

clusterTest(
  "BGPConfiguration shape errors are refused at admission, naming the field",
  async (c) => {
    const ns = await c.createNamespace("crd-bgp-bad");
    const api = typedApi(new ApiConnection(c.adminConfig()), CustomObjectsApi);
    const cases: ReadonlyArray<{ spec: unknown; field: string; says: RegExp }> = [
      {
        spec: specWith((s) => s.global.asn = 0),
        field: "spec.global.asn",
        says: /AS number from 1 to 4294967295/,
      },
      {
        spec: specWith((s) => s.global.asn = 4294967296),
        field: "spec.global.asn",
        says: /AS number from 1 to 4294967295/,
      },
      { spec: { global: {} }, field: "spec.global.asn", says: /Required value/ },
      { spec: {}, field: "spec.global", says: /Required value/ },
      {
        spec: specWith((s) => firstNeighbor(s).config.neighborAddress = "not-an-ip"),
        field: "spec.neighbors[0].config.neighborAddress",
        says: /must be an IP address/,
      },
      {
        // A zone belongs only to a link-local address.
        spec: specWith((s) => firstNeighbor(s).config.neighborAddress = "2001:db8::1%eth0"),
        field: "spec.neighbors[0].config.neighborAddress",
        says: /must be an IP address/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).config = { peerAsn: 65001 }),
        field: "spec.neighbors[0].config",
        says: /needs neighborAddress/,
      },
      {
        spec: specWith((s) => s.global.routerID = "2001:db8::1"),
        field: "spec.global.routerID",
        says: /must be an IPv4 address/,
      },
      {
        spec: specWith((s) => s.global.families = ["ipv4-unicast", "l2vpn-evpn"]),
        field: "spec.global.families[1]",
        says: /must be ipv4-unicast or ipv6-unicast/,
      },
      {
        spec: specWith((s) =>
          firstNeighbor(s).afiSafis = [{ family: "l2vpn-evpn", enabled: true }]
        ),
        field: "spec.neighbors[0].afiSafis[0].family",
        says: /must be ipv4-unicast or ipv6-unicast/,
      },
      {
        spec: specWith((s) =>
          firstNeighbor(s).timers = { config: { keepaliveInterval: 90, holdTime: 30 } }
        ),
        field: "spec.neighbors[0].timers.config.keepaliveInterval",
        says: /must be less than holdTime/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).timers = { config: { holdTime: 2 } }),
        field: "spec.neighbors[0].timers.config.holdTime",
        says: /must be 0 \(no keepalives\) or from 3 to 65535/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).ebgpMultihop = { enabled: true, multihopTtl: 0 }),
        field: "spec.neighbors[0].ebgpMultihop.multihopTtl",
        says: /TTL from 1 to 255/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).bfd = { enabled: true, minRxMs: 5 }),
        field: "spec.neighbors[0].bfd.minRxMs",
        says: /from 10 to 60000 milliseconds/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).bfd = { enabled: true, multiplier: 0 }),
        field: "spec.neighbors[0].bfd.multiplier",
        says: /from 1 to 255/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).config = { neighborAddress: "192.0.2.1" }),
        field: "spec.neighbors[0].config.peerAsn",
        says: /Required value/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).config.localAsn = 0),
        field: "spec.neighbors[0].config.localAsn",
        says: /AS number from 1 to 4294967295/,
      },
      {
        spec: specWith((s) => s.global.listenPort = 65536),
        field: "spec.global.listenPort",
        says: /TCP port from 1 to 65535/,
      },
      {
        spec: specWith((s) => s.global.nodeStatus = { heartbeatSeconds: 5 }),
        field: "spec.global.nodeStatus.heartbeatSeconds",
        says: /at least 10 seconds/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).transport = { localAddress: "192.0.2" }),
        field: "spec.neighbors[0].transport.localAddress",
        says: /must be an IP address/,
      },
      {
        spec: specWith((s) =>
          firstNeighbor(s).config.authPasswordSecretRef = { name: "purelb-bgp-auth" }
        ),
        field: "spec.neighbors[0].config.authPasswordSecretRef.key",
        says: /Required value/,
      },
      {
        spec: specWith((s) =>
          firstNeighbor(s).nodeSelector = {
            matchExpressions: [{ key: "zone", operator: "In", values: [] }],
          }
        ),
        field: "spec.neighbors[0].nodeSelector.matchExpressions[0].values",
        says: /must list values for operator In or NotIn/,
      },
      {
        spec: specWith((s) => firstNeighbor(s).nodeSelector = { matchLabels: { zone: "a b" } }),
        field: "spec.neighbors[0].nodeSelector.matchLabels.zone",
        says: /should match/,
      },
    ];
    for (const { spec, field, says } of cases) {
      const message = await createExpectingRejection(api, ns, spec);
      assert.ok(message.includes(`${field}:`), `message names ${field}: ${message}`);
      assert.match(message, says, field);
    }
    await c.deleteNamespace(ns);
  },
);

clusterTest(
  "BGPNodeStatus: cluster-scoped, one per node, written through its status subresource",
  async (c) => {
    const connection = new ApiConnection(c.adminConfig());
    const api = typedApi(connection, CustomObjectsApi);
    const where = { group: BGP_GROUP, version: BGP_VERSION, plural: BGP_NODE_STATUS_PLURAL };
    const name = `node-${crypto.randomUUID().slice(0, 8)}`;
    // Cluster-scoped: served without a namespace, and not under one.
    const namespaced = await connection.request(
      "GET",
      `/apis/${BGP_GROUP}/${BGP_VERSION}/namespaces/default/${BGP_NODE_STATUS_PLURAL}`,
    ).then(() => "served", (error: unknown) => errorMessage(error));
    assert.match(namespaced, /404/);
    try {
      // A status sent with the create is dropped: only the status subresource writes it.
      await api.createClusterCustomObject({
        ...where,
        body: {
          apiVersion: API_VERSION,
          kind: "BGPNodeStatus",
          metadata: { name },
          status: { nodeName: name, healthy: true },
        },
      });
      const created = await api.getClusterCustomObject({ ...where, name }) as {
        status?: unknown;
      };
      assert.equal(created.status, undefined);

      const status = {
        nodeName: name,
        routerID: "192.0.2.10",
        asn: 4200000000,
        heartbeatSeconds: 60,
        lastUpdated: "2025-01-01T00:00:00Z",
        neighborCount: 2,
        healthy: false,
        neighbors: [
          {
            address: "192.0.2.1",
            peerASN: 65001,
            localASN: 4200000000,
            state: "Established",
            sessionUpSince: "2025-01-01T00:00:00Z",
            prefixesSent: 3,
            prefixesReceived: 0,
            description: "top of rack",
          },
          {
            address: "2001:db8::1",
            peerASN: 65002,
            localASN: 4200000000,
            state: "Active",
            prefixesSent: 0,
            prefixesReceived: 0,
            lastError: "Received: Bad peer AS",
          },
        ],
        conditions: [{
          type: "Healthy",
          status: "False",
          lastTransitionTime: "2025-01-01T00:00:00Z",
          reason: "NeighborsDown",
          message: "1 of 2 sessions is not Established: 2001:db8::1 (Active)",
        }],
      };
      await api.patchClusterCustomObjectStatus({ ...where, name, body: { status } }, mergePatch());
      const read = await api.getClusterCustomObject({ ...where, name }) as { status: unknown };
      assert.deepEqual(read.status, status);

      // Shape errors in the status are refused, naming the field.
      const refused = async (body: unknown) => {
        try {
          await api.patchClusterCustomObjectStatus({ ...where, name, body }, mergePatch());
        } catch (error) {
          return errorMessage(error);
        }
        assert.fail(`accepted ${JSON.stringify(body)}`);
      };
      const wrongNode = await refused({ status: { nodeName: "another-node" } });
      assert.match(wrongNode, /status\.nodeName: .*named after its Node/);
      const badTime = await refused({ status: { lastUpdated: "yesterday" } });
      assert.match(badTime, /status\.lastUpdated/);
      const badNeighbor = await refused({ status: { neighbors: [{ address: "192.0.2.1" }] } });
      assert.match(badNeighbor, /status\.neighbors\[0\]\.(peerASN|localASN|state|prefixes)/);
    } finally {
      await api.deleteClusterCustomObject({ ...where, name });
      connection.close();
    }
  },
);
