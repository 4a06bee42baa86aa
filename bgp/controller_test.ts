import assert from "node:assert/strict";
import type { V1Node, V1Secret } from "@kubernetes/client-node";
import { MemoryCache } from "../k8s/cache.ts";
import { NamedObjectCaches } from "../k8s/named_objects.ts";
import type { EventSink, EventType } from "../k8s/events.ts";
import { KubeApiError } from "../k8s/transport.ts";
import { waitFor } from "../tests/wait.ts";
import { birdProtocolName } from "./bird_config.ts";
import {
  type BgpApi,
  type BgpConfigurationObject,
  BgpController,
  type BgpMetricsSink,
  chooseConfiguration,
  type SessionMetric,
} from "./controller.ts";
import type { ConfigureOutcome, ProtocolsOutcome, RoutingDaemon } from "./daemon.ts";
import type { BirdBgpState } from "./model.ts";
import type { NodeBgpStatus } from "./status.ts";

const NAMESPACE = "purelb-system";
const NODE = "node-a";

/** A BIRD that records configs and answers as told. */
class FakeDaemon implements RoutingDaemon {
  readonly configPath = "/run/purelb-bgp/bird.conf";
  file: string | undefined;
  loaded: string | undefined;
  loads = 0;
  configureAnswer: ConfigureOutcome = { kind: "reconfigured" };
  available = true;
  sessions: BirdBgpState[] = [];

  hasConfig(): Promise<boolean> {
    return Promise.resolve(this.file !== undefined && this.file !== "");
  }
  writeConfig(text: string): Promise<void> {
    this.file = text;
    return Promise.resolve();
  }
  configure(): Promise<ConfigureOutcome> {
    if (!this.available) {
      return Promise.resolve({ kind: "unreachable", message: "BIRD is not running" });
    }
    if (this.configureAnswer.kind === "reconfigured") {
      this.loaded = this.file;
      this.loads++;
    }
    return Promise.resolve(this.configureAnswer);
  }
  protocols(): Promise<ProtocolsOutcome> {
    return Promise.resolve(
      this.available
        ? { kind: "read", protocols: this.sessions }
        : { kind: "unreachable", message: "BIRD is not running" },
    );
  }
}

interface Written {
  readonly kind: "create" | "nodeStatus" | "configStatus";
  readonly name: string;
  readonly body: unknown;
}

function recordingApi(written: Written[]): BgpApi {
  let exists = false;
  return {
    createClusterCustomObject: (param) => {
      written.push({ kind: "create", name: "", body: param.body });
      if (exists) {
        return Promise.reject(new KubeApiError(409, undefined, "exists"));
      }
      exists = true;
      return Promise.resolve({});
    },
    patchClusterCustomObjectStatus: (param) => {
      written.push({ kind: "nodeStatus", name: param.name, body: param.body });
      return Promise.resolve({});
    },
    patchNamespacedCustomObjectStatus: (param) => {
      written.push({ kind: "configStatus", name: param.name, body: param.body });
      return Promise.resolve({});
    },
  };
}

function recordingEvents(
  events: { type: EventType; reason: string; message: string }[],
): EventSink {
  return {
    record: (_subject, type, reason, message) => {
      events.push({ type, reason, message });
      return Promise.resolve();
    },
  };
}

class RecordingMetrics implements BgpMetricsSink {
  sessions: readonly SessionMetric[] = [];
  outcomes: string[] = [];
  daemonUp: boolean | undefined;
  setSessions(sessions: readonly SessionMetric[]): void {
    this.sessions = sessions;
  }
  configured(outcome: "applied" | "refused" | "unavailable"): void {
    this.outcomes.push(outcome);
  }
  setDaemonUp(up: boolean): void {
    this.daemonUp = up;
  }
}

function configuration(name: string, spec: unknown, generation = 1): BgpConfigurationObject {
  return { metadata: { name, namespace: NAMESPACE, generation }, spec };
}

function established(address: string, exported: number): BirdBgpState {
  return {
    name: birdProtocolName(address),
    bgpState: "Established",
    since: "2026-12-02 02:34:05",
    neighborAddress: address,
    neighborAs: 65000,
    localAs: 65001,
    lastError: undefined,
    channels: [{ family: "ipv4", state: "UP", imported: 0, exported }],
  };
}

const SPEC = {
  global: { asn: 65001 },
  neighbors: [
    { config: { neighborAddress: "192.0.2.1", peerAsn: 65000, description: "tor-a" } },
    {
      config: { neighborAddress: "192.0.2.2", peerAsn: 65000 },
      nodeSelector: { matchLabels: { rack: "b" } },
    },
  ],
};

function scene(options: { readonly labels?: Record<string, string> } = {}) {
  const configs = new MemoryCache<BgpConfigurationObject>({ synced: true });
  const node = new MemoryCache<V1Node>({ synced: true });
  node.put({ metadata: { name: NODE, labels: options.labels ?? { rack: "a" } } });
  const secretCaches = new Map<string, MemoryCache<V1Secret>>();
  const secrets = new NamedObjectCaches<V1Secret>((name) => {
    const cache = secretCaches.get(name) ?? new MemoryCache<V1Secret>({ synced: true });
    secretCaches.set(name, cache);
    return cache;
  });
  const daemon = new FakeDaemon();
  const written: Written[] = [];
  const events: { type: EventType; reason: string; message: string }[] = [];
  const metrics = new RecordingMetrics();
  const facts = { dummyInterface: "kube-lb0", defaultIPv4: "192.0.2.11" };
  const controller = new BgpController({
    caches: { configs, node, secrets },
    api: recordingApi(written),
    daemon,
    events: recordingEvents(events),
    metrics,
    namespace: NAMESPACE,
    nodeName: NODE,
    nodeFacts: () => facts,
    pollMs: 60_000,
  });
  const nodeStatuses = () =>
    written.filter((w) => w.kind === "nodeStatus").map((w) =>
      (w.body as { status: NodeBgpStatus }).status
    );
  const settle = () => controller.syncNow();
  return {
    configs,
    node,
    secretCaches,
    daemon,
    written,
    events,
    metrics,
    facts,
    controller,
    nodeStatuses,
    settle,
  };
}

Deno.test("the neighbours selected for this node are configured once; an unchanged sync loads nothing", async () => {
  const s = scene();
  s.configs.put(configuration("default", SPEC));
  s.controller.start();
  try {
    await waitFor(() => Promise.resolve(s.daemon.loads === 1), 2_000, "one config load");
    const text = s.daemon.loaded ?? "";
    assert.match(text, new RegExp(`protocol bgp ${birdProtocolName("192.0.2.1")}\\b`));
    assert.doesNotMatch(text, new RegExp(birdProtocolName("192.0.2.2")), "rack b only");
    assert.match(text, /router id 192\.0\.2\.11;/);
    assert.match(text, /"kube-lb0"/);
    await s.settle();
    await s.settle();
    assert.equal(s.daemon.loads, 1, "the same text is not loaded again");
    assert.equal(s.controller.reloads, 1);
    assert.deepEqual(s.metrics.outcomes, ["applied"]);
  } finally {
    await s.controller.stop();
  }
});

Deno.test("a node label change adds the neighbour it selects", async () => {
  const s = scene();
  s.configs.put(configuration("default", SPEC));
  s.controller.start();
  try {
    await waitFor(() => Promise.resolve(s.daemon.loads === 1), 2_000, "first load");
    s.node.put({ metadata: { name: NODE, labels: { rack: "b" } } });
    await waitFor(() => Promise.resolve(s.daemon.loads === 2), 2_000, "second load");
    assert.match(s.daemon.loaded ?? "", new RegExp(birdProtocolName("192.0.2.2")));
  } finally {
    await s.controller.stop();
  }
});

Deno.test("BGPNodeStatus: created, then written only when something changes", async () => {
  const s = scene();
  s.configs.put(configuration("default", SPEC));
  s.daemon.sessions = [established("192.0.2.1", 3)];
  s.controller.start();
  try {
    await waitFor(() => Promise.resolve(s.nodeStatuses().length === 1), 2_000, "a status");
    const [status] = s.nodeStatuses();
    assert.equal(s.written.filter((w) => w.kind === "create").length, 1);
    assert.equal(status?.nodeName, NODE);
    assert.equal(status?.routerID, "192.0.2.11");
    assert.equal(status?.asn, 65001);
    assert.equal(status?.healthy, true);
    assert.deepEqual(status?.neighbors, [{
      address: "192.0.2.1",
      peerASN: 65000,
      localASN: 65001,
      state: "Established",
      sessionUpSince: new Date(2026, 11, 2, 2, 34, 5).toISOString().replace(/\.\d+Z$/, "Z"),
      prefixesSent: 3,
      prefixesReceived: 0,
      description: "tor-a",
    }]);
    assert.deepEqual(s.metrics.sessions, [{ peer: "192.0.2.1", up: true, announcedPrefixes: 3 }]);
    await s.settle();
    assert.equal(s.nodeStatuses().length, 1, "nothing changed: nothing written");
    s.daemon.sessions = [{ ...established("192.0.2.1", 0), bgpState: "Active" }];
    await s.settle();
    const last = s.nodeStatuses().at(-1);
    assert.equal(s.nodeStatuses().length, 2);
    assert.equal(last?.healthy, false);
    const sessions = last?.conditions.find((c) => c.type === "SessionsEstablished");
    assert.equal(sessions?.status, "False");
    assert.match(sessions?.message ?? "", /192\.0\.2\.1 Active/);
    assert.equal(s.written.filter((w) => w.kind === "create").length, 1, "created once");
  } finally {
    await s.controller.stop();
  }
});

Deno.test("a refused config: reported, the accepted one is put back for a restart, not offered again", async () => {
  const s = scene();
  s.configs.put(configuration("default", SPEC));
  s.controller.start();
  try {
    await waitFor(() => Promise.resolve(s.daemon.loads === 1), 2_000, "first load");
    const accepted = s.daemon.loaded;
    s.daemon.configureAnswer = { kind: "refused", message: "bird.conf:12:3 syntax error" };
    s.configs.put(configuration("default", { ...SPEC, global: { asn: 65002 } }, 2));
    await waitFor(
      () => Promise.resolve(s.controller.problem !== undefined),
      2_000,
      "the refusal reported",
    );
    assert.match(s.controller.problem ?? "", /refused.*syntax error/);
    assert.equal(s.daemon.file, accepted, "the file holds the config BIRD runs");
    const event = s.events.find((e) => e.reason === "BGPConfigurationRefused");
    assert.match(event?.message ?? "", /node node-a: bird\.conf:12:3 syntax error/);
    const before = s.metrics.outcomes.length;
    await s.settle();
    assert.equal(s.metrics.outcomes.length, before, "the refused text is not offered again");
    const daemonReady = s.nodeStatuses().at(-1)?.conditions.find((c) => c.type === "DaemonReady");
    assert.equal(daemonReady?.reason, "ConfigRefused");
  } finally {
    await s.controller.stop();
  }
});

Deno.test("BIRD absent: reported, and the config is loaded once it answers", async () => {
  const s = scene();
  s.daemon.available = false;
  s.configs.put(configuration("default", SPEC));
  s.controller.start();
  try {
    await waitFor(
      () => Promise.resolve(s.controller.problem !== undefined),
      2_000,
      "the absence reported",
    );
    assert.match(s.controller.problem ?? "", /not running/);
    assert.equal(s.metrics.daemonUp, false);
    assert.ok(s.daemon.file?.includes("protocol bgp"), "the file waits for BIRD");
    assert.ok(s.events.some((e) => e.reason === "BGPDaemonUnavailable"));
    const status = s.nodeStatuses().at(-1);
    assert.equal(
      status?.conditions.find((c) => c.type === "DaemonReady")?.reason,
      "DaemonUnreachable",
    );
    assert.equal(
      status?.conditions.find((c) => c.type === "SessionsEstablished")?.status,
      "Unknown",
    );
    s.daemon.available = true;
    await s.settle();
    assert.equal(s.controller.problem, undefined);
    assert.equal(s.daemon.loads, 1);
  } finally {
    await s.controller.stop();
  }
});

Deno.test("a password comes from its Secret; until the Secret exists the neighbour is left out and named", async () => {
  const s = scene();
  const spec = {
    global: { asn: 65001 },
    neighbors: [{
      config: {
        neighborAddress: "192.0.2.1",
        peerAsn: 65000,
        authPasswordSecretRef: { name: "purelb-bgp-auth", key: "tor-a" },
      },
    }],
  };
  s.configs.put(configuration("default", spec));
  s.controller.start();
  try {
    await waitFor(
      () => Promise.resolve(s.nodeStatuses().at(-1)?.neighbors[0]?.state === "NotConfigured"),
      2_000,
      "the neighbour reported as not configured",
    );
    assert.match(
      s.nodeStatuses().at(-1)?.neighbors[0]?.lastError ?? "",
      /purelb-bgp-auth not found/,
    );
    assert.ok(s.events.some((e) => e.reason === "BGPSecretMissing"));
    assert.doesNotMatch(s.daemon.file ?? "", /protocol bgp/);
    const cache = s.secretCaches.get("purelb-bgp-auth");
    assert.ok(cache, "the Secret is watched by name");
    cache.put({
      metadata: { name: "purelb-bgp-auth", namespace: NAMESPACE },
      data: { "tor-a": btoa("s3cret") },
    });
    await waitFor(
      () => Promise.resolve((s.daemon.loaded ?? "").includes("s3cret")),
      2_000,
      "the password in the loaded config",
    );
  } finally {
    await s.controller.stop();
  }
});

Deno.test("BGPConfiguration conditions: accepted, unsupported fields named, written once", async () => {
  const s = scene();
  s.configs.put(
    configuration("default", { ...SPEC, peerGroups: [{ config: { peerGroupName: "x" } }] }),
  );
  s.configs.put(configuration("other", SPEC));
  s.controller.start();
  try {
    await waitFor(
      () => Promise.resolve(s.written.filter((w) => w.kind === "configStatus").length === 2),
      2_000,
      "both configurations' conditions",
    );
    const byName = (name: string) =>
      (s.written.find((w) => w.kind === "configStatus" && w.name === name)?.body as {
        status: { conditions: { type: string; status: string; reason: string; message: string }[] };
      }).status.conditions;
    const unsupported = byName("default").find((c) => c.type === "UnsupportedFields");
    assert.equal(unsupported?.status, "True");
    assert.match(unsupported?.message ?? "", /spec\.peerGroups/);
    assert.equal(byName("default").find((c) => c.type === "Accepted")?.status, "True");
    assert.equal(byName("other").find((c) => c.type === "Accepted")?.reason, "NotInUse");
    await s.settle();
    assert.equal(s.written.filter((w) => w.kind === "configStatus").length, 2, "not rewritten");
  } finally {
    await s.controller.stop();
  }
});

Deno.test("an invalid BGPConfiguration leaves the running config alone; a deleted one idles BIRD", async () => {
  const s = scene();
  s.configs.put(configuration("default", SPEC));
  s.controller.start();
  try {
    await waitFor(() => Promise.resolve(s.daemon.loads === 1), 2_000, "first load");
    s.configs.put(configuration("default", { global: {}, neighbors: [] }, 2));
    await waitFor(
      () => Promise.resolve(s.events.some((e) => e.reason === "BGPConfigurationInvalid")),
      2_000,
      "the invalid configuration reported",
    );
    assert.match(
      s.events.find((e) => e.reason === "BGPConfigurationInvalid")?.message ?? "",
      /spec\.global\.asn/,
    );
    await s.settle();
    assert.equal(s.daemon.loads, 1, "nothing loaded for an invalid configuration");
    s.configs.remove("default", NAMESPACE);
    await waitFor(() => Promise.resolve(s.daemon.loads === 2), 2_000, "the idle config");
    assert.doesNotMatch(s.daemon.loaded ?? "", /protocol bgp/);
  } finally {
    await s.controller.stop();
  }
});

Deno.test("chooseConfiguration: the one named default, else the first by name", () => {
  const a = configuration("a", {});
  const b = configuration("b", {});
  const d = configuration("default", {});
  assert.deepEqual(chooseConfiguration([b, d, a]), { inUse: d, ignored: [a, b] });
  assert.deepEqual(chooseConfiguration([b, a]), { inUse: a, ignored: [b] });
  assert.deepEqual(chooseConfiguration([]), { inUse: undefined, ignored: [] });
});

Deno.test("graceful stop: the routes are withdrawn by a config without announced interfaces, the sessions stay", async () => {
  const s = scene();
  s.configs.put(configuration("default", SPEC));
  s.daemon.sessions = [established("192.0.2.1", 2)];
  s.controller.start();
  try {
    await waitFor(() => Promise.resolve(s.daemon.loads === 1), 2_000, "first load");
    assert.match(s.daemon.loaded ?? "", /protocol direct/);
    // BIRD reports the withdrawal once it loaded the drained config.
    const configure = s.daemon.configure.bind(s.daemon);
    s.daemon.configure = async () => {
      const outcome = await configure();
      s.daemon.sessions = [established("192.0.2.1", 0)];
      return outcome;
    };
    await s.controller.withdrawRoutes();
    assert.equal(s.daemon.loads, 2);
    assert.doesNotMatch(s.daemon.loaded ?? "", /protocol direct/, "nothing announced");
    assert.match(
      s.daemon.loaded ?? "",
      new RegExp(`protocol bgp ${birdProtocolName("192.0.2.1")}`),
    );
  } finally {
    await s.controller.stop();
  }
});
