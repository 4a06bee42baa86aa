import assert from "node:assert/strict";
import type { CoreV1Event } from "@kubernetes/client-node";
import { CoreApi } from "./api.ts";
import { AuthorizationV1Api, CoreV1Api, CustomObjectsApi, typedApi } from "./client.ts";
import type { ClusterAccess } from "./config.ts";
import {
  EventRecorder,
  EventRecorderError,
  type EventRecorderOptions,
  type EventsClient,
  type EventSubject,
  MAX_EVENT_MESSAGE_BYTES,
  type RecordedEvent,
  truncateEventMessage,
} from "./events.ts";
import { apiStatusCode, errorMessage } from "./errors.ts";
import { ApiConnection } from "./transport.ts";
import {
  EventReason,
  PURELB_API_VERSION,
  PURELB_GROUP,
  PURELB_VERSION,
  SERVICE_GROUP_KIND,
  SERVICE_GROUP_PLURAL,
  type ServiceGroup,
} from "./types.ts";
import { clusterTest, type TestCluster } from "../tests/cluster.ts";
import { waitFor } from "../tests/wait.ts";

// ---------------------------------------------------------------------------------------------
// Unit tests against an in-memory API
// ---------------------------------------------------------------------------------------------

interface PatchCall {
  readonly namespace: string;
  readonly name: string;
  readonly body: unknown;
}

class HttpStatusError extends Error {
  override name = "HttpStatusError";
  constructor(readonly code: number) {
    super(`HTTP ${code}`);
  }
}

/** An in-memory Events API whose calls can be held open and made to fail. */
class FakeEventsApi {
  readonly created: CoreV1Event[] = [];
  readonly patched: PatchCall[] = [];
  inFlight = 0;
  maxInFlight = 0;
  createError: ((body: CoreV1Event) => unknown) | undefined;
  patchError: ((call: PatchCall) => unknown) | undefined;
  #held: (() => void)[] = [];
  #holding = false;

  readonly client: EventsClient = {
    createNamespacedEvent: async ({ namespace, body }) => {
      await this.#enter();
      try {
        const error = this.createError?.(body);
        if (error !== undefined) throw error;
        const name = `${body.metadata.generateName ?? ""}${this.created.length}`;
        const stored = { ...body, metadata: { ...body.metadata, name, namespace } };
        this.created.push(stored);
        return stored;
      } finally {
        this.inFlight -= 1;
      }
    },
    patchNamespacedEvent: async ({ namespace, name, body }) => {
      await this.#enter();
      try {
        const call = { namespace, name, body: body as unknown };
        const error = this.patchError?.(call);
        if (error !== undefined) throw error;
        this.patched.push(call);
        const count = (body as { count?: unknown }).count;
        return {
          metadata: { name, namespace },
          involvedObject: {},
          ...(typeof count === "number" ? { count } : {}),
        };
      } finally {
        this.inFlight -= 1;
      }
    },
  };

  /** From now on, calls wait until {@linkcode release}. */
  hold(): void {
    this.#holding = true;
  }

  release(): void {
    this.#holding = false;
    for (const resolve of this.#held.splice(0)) resolve();
  }

  async #enter(): Promise<void> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    if (this.#holding) await new Promise<void>((resolve) => this.#held.push(resolve));
  }
}

interface Harness {
  readonly api: FakeEventsApi;
  readonly recorder: EventRecorder;
  readonly errors: { error: unknown; event: RecordedEvent }[];
  readonly clock: { now: number };
}

function harness(options: Partial<EventRecorderOptions> = {}): Harness {
  const api = new FakeEventsApi();
  const errors: { error: unknown; event: RecordedEvent }[] = [];
  const clock = { now: Date.parse("2025-03-01T12:00:00Z") };
  const recorder = new EventRecorder(api.client, {
    component: "purelb-allocator",
    onError: (error, event) => errors.push({ error, event }),
    now: () => clock.now,
    ...options,
  });
  return { api, recorder, errors, clock };
}

function service(name: string, uid = `uid-${name}`): EventSubject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace: "shop", uid, resourceVersion: "41" },
  };
}

/** Fails naming every error reported to onError. */
function assertNoErrors(errors: readonly unknown[]): void {
  const described = errors.map((entry) =>
    errorMessage(
      typeof entry === "object" && entry !== null && "error" in entry ? entry.error : entry,
    )
  );
  assert.equal(errors.length, 0, `onError was called: ${described.join("; ")}`);
}

function timestampOf(date: Date | undefined): number | undefined {
  return date?.getTime();
}

Deno.test("an event carries the object reference, source, reporter, times and count 1", async () => {
  const { api, recorder, errors, clock } = harness({ host: "node-a", instance: "allocator-0" });
  await recorder.record(
    service("web"),
    "Normal",
    EventReason.AddressAssigned,
    "Assigned 192.0.2.1",
  );
  assertNoErrors(errors);
  assert.equal(api.created.length, 1);
  const event = api.created[0];
  assert.equal(event?.metadata.generateName, "web.");
  assert.equal(event?.metadata.namespace, "shop");
  assert.deepEqual(event?.involvedObject, {
    apiVersion: "v1",
    kind: "Service",
    name: "web",
    namespace: "shop",
    uid: "uid-web",
    resourceVersion: "41",
  });
  assert.equal(event?.type, "Normal");
  assert.equal(event?.reason, "AddressAssigned");
  assert.equal(event?.message, "Assigned 192.0.2.1");
  assert.deepEqual(event?.source, { component: "purelb-allocator", host: "node-a" });
  assert.equal(event?.reportingComponent, "purelb-allocator");
  assert.equal(event?.reportingInstance, "allocator-0");
  assert.equal(timestampOf(event?.firstTimestamp), clock.now);
  assert.equal(timestampOf(event?.lastTimestamp), clock.now);
  assert.equal(event?.count, 1);
});

Deno.test("a cluster-scoped object's event goes to default; reporter defaults", async () => {
  const { api, recorder } = harness();
  const node = { apiVersion: "v1", kind: "Node", metadata: { name: "node-a", uid: "n1" } };
  await recorder.record(node, "Warning", EventReason.Withdrawn, "lost the lease");
  const event = api.created[0];
  assert.equal(event?.metadata.namespace, "default");
  assert.deepEqual(event?.involvedObject, {
    apiVersion: "v1",
    kind: "Node",
    name: "node-a",
    uid: "n1",
  });
  assert.deepEqual(event?.source, { component: "purelb-allocator" });
  assert.equal(event?.reportingInstance, "purelb-allocator");
});

Deno.test("a repeat within the window bumps count and lastTimestamp with a merge patch", async () => {
  const { api, recorder, clock } = harness();
  const web = service("web");
  await recorder.record(web, "Warning", EventReason.AllocationFailed, "pool exhausted");
  clock.now += 9 * 60_000;
  await recorder.record(web, "Warning", EventReason.AllocationFailed, "pool exhausted");
  clock.now += 9 * 60_000;
  await recorder.record(web, "Warning", EventReason.AllocationFailed, "pool exhausted");
  assert.equal(api.created.length, 1);
  const name = api.created[0]?.metadata.name;
  assert.deepEqual(api.patched, [
    {
      namespace: "shop",
      name,
      body: { count: 2, lastTimestamp: new Date(clock.now - 9 * 60_000).toISOString() },
    },
    {
      namespace: "shop",
      name,
      body: { count: 3, lastTimestamp: new Date(clock.now).toISOString() },
    },
  ]);
});

Deno.test("a repeat after the window, or any other difference, makes a new Event", async () => {
  const { api, recorder, clock } = harness();
  const web = service("web");
  await recorder.record(web, "Warning", EventReason.AllocationFailed, "pool exhausted");
  clock.now += 10 * 60_000 + 1;
  await recorder.record(web, "Warning", EventReason.AllocationFailed, "pool exhausted");
  await recorder.record(web, "Warning", EventReason.AllocationFailed, "pool gone");
  await recorder.record(web, "Normal", EventReason.AllocationFailed, "pool gone");
  await recorder.record(web, "Normal", EventReason.ConfigurationWarning, "pool gone");
  await recorder.record(
    service("web", "new-uid"),
    "Normal",
    EventReason.ConfigurationWarning,
    "pool gone",
  );
  assert.equal(api.created.length, 6);
  assert.deepEqual(api.patched, []);
});

Deno.test("objects without a uid correlate by kind, namespace and name", async () => {
  const { api, recorder } = harness();
  const subject = { apiVersion: "v1", kind: "Service", metadata: { name: "web", namespace: "a" } };
  await recorder.record(subject, "Normal", EventReason.AddressReleased, "released");
  await recorder.record(subject, "Normal", EventReason.AddressReleased, "released");
  const otherNamespace = { ...subject, metadata: { name: "web", namespace: "b" } };
  await recorder.record(otherNamespace, "Normal", EventReason.AddressReleased, "released");
  assert.equal(api.created.length, 2);
  assert.equal(api.patched.length, 1);
});

Deno.test("a patch that finds the Event gone (404) creates it anew; other errors are reported", async () => {
  const { api, recorder, errors } = harness();
  const web = service("web");
  await recorder.record(web, "Normal", EventReason.AddressAssigned, "a");
  api.patchError = () => new HttpStatusError(404);
  await recorder.record(web, "Normal", EventReason.AddressAssigned, "a");
  assert.equal(api.created.length, 2);
  assert.equal(api.created[1]?.count, 1);
  assertNoErrors(errors);

  api.patchError = () => new HttpStatusError(403);
  await recorder.record(web, "Normal", EventReason.AddressAssigned, "a");
  assert.equal(api.created.length, 2);
  assert.equal(errors.length, 1);
  assert.equal(apiStatusCode(errors[0]?.error), 403);
});

Deno.test("repeats recorded while a write is queued fold into it", async () => {
  const { api, recorder, clock } = harness({ maxConcurrentWrites: 1 });
  api.hold();
  const first = recorder.record(service("a"), "Normal", EventReason.AddressAssigned, "x");
  const folded = [0, 1, 2].map((step) => {
    clock.now += step * 1000;
    return recorder.record(service("b"), "Normal", EventReason.AddressAssigned, "y");
  });
  // Same key as the write in flight: must wait for it, then patch the Event it created.
  const repeatOfFirst = recorder.record(service("a"), "Normal", EventReason.AddressAssigned, "x");
  api.release();
  await Promise.all([first, ...folded, repeatOfFirst]);
  assert.deepEqual(api.created.map((event) => [event.involvedObject.name, event.count]), [
    ["a", 1],
    ["b", 3],
  ]);
  assert.notEqual(
    timestampOf(api.created[1]?.firstTimestamp),
    timestampOf(api.created[1]?.lastTimestamp),
  );
  assert.equal(timestampOf(api.created[1]?.lastTimestamp), clock.now);
  assert.deepEqual(api.patched.map((call) => (call.body as { count: number }).count), [2]);
});

Deno.test("a repeat recorded while its event is being written waits, then patches it", async () => {
  const { api, recorder } = harness();
  api.hold();
  const first = recorder.record(service("a"), "Normal", EventReason.AddressAssigned, "x");
  await waitFor(() => api.inFlight === 1, 1_000, "the first write in flight");
  const repeat = recorder.record(service("a"), "Normal", EventReason.AddressAssigned, "x");
  const other = recorder.record(service("b"), "Normal", EventReason.AddressAssigned, "x");
  await waitFor(() => api.inFlight === 2, 1_000, "the other write in flight");
  api.release();
  await Promise.all([first, repeat, other]);
  assert.equal(api.maxInFlight, 2, "the repeat must not be written alongside the first");
  assert.deepEqual(api.created.map((event) => event.involvedObject.name), ["a", "b"]);
  assert.deepEqual(api.patched.map((call) => [call.name, call.body]), [
    [api.created[0]?.metadata.name, { count: 2, lastTimestamp: "2025-03-01T12:00:00.000Z" }],
  ]);
});

Deno.test("at most maxConcurrentWrites are in flight", async () => {
  const { api, recorder } = harness();
  api.hold();
  const records = Array.from(
    { length: 50 },
    (_, i) => recorder.record(service(`s${i}`), "Normal", EventReason.AddressAssigned, "x"),
  );
  await waitFor(() => api.inFlight === 16, 1_000, "16 writes in flight");
  api.release();
  await Promise.all(records);
  assert.equal(api.maxInFlight, 16);
  assert.equal(api.created.length, 50);
});

Deno.test("a full queue drops the oldest waiting events and counts them", async () => {
  const { api, recorder } = harness({ maxConcurrentWrites: 1, maxQueuedEvents: 3 });
  api.hold();
  const records = ["s0", "s1", "s1", "s2", "s3", "s4"].map((name) =>
    recorder.record(service(name), "Normal", EventReason.AddressAssigned, "x")
  );
  await waitFor(() => api.inFlight === 1, 1_000, "the first write in flight");
  // s0 in flight; s1 (twice), s2, s3 queued; s4 pushes s1 out.
  assert.equal(recorder.dropped, 2);
  await Promise.all(records.slice(1, 3)); // dropped records resolve at once, with nothing written
  assert.equal(api.created.length, 0);
  api.release();
  await Promise.all(records);
  assert.deepEqual(api.created.map((event) => event.involvedObject.name), ["s0", "s2", "s3", "s4"]);
});

Deno.test("failed writes go to onError and record still resolves", async () => {
  let calls = 0;
  const { api, recorder } = harness({
    onError: () => {
      calls += 1;
      throw new Error("a broken error callback");
    },
  });
  api.createError = () => new HttpStatusError(500);
  await recorder.record(service("web"), "Warning", EventReason.ParseFailed, "bad");
  assert.equal(calls, 1);
  api.createError = undefined;
  await recorder.record(service("web"), "Warning", EventReason.ParseFailed, "bad");
  assert.equal(api.created.length, 1, "the recorder keeps working after a throwing onError");
});

Deno.test("an object without a name is reported, not written", async () => {
  const { api, recorder, errors } = harness();
  await recorder.record(
    { apiVersion: "v1", kind: "Service", metadata: { namespace: "shop" } },
    "Normal",
    EventReason.AddressAssigned,
    "x",
  );
  assert.equal(api.created.length, 0);
  assert.equal(errors.length, 1);
  assert.ok(errors[0]?.error instanceof EventRecorderError);
  assert.equal(errors[0]?.event.namespace, "shop");
});

Deno.test("the correlation cache is bounded, least recently used out first", async () => {
  const { api, recorder } = harness({ correlationCacheSize: 2 });
  for (const name of ["a", "b", "a", "c", "a", "b"]) {
    await recorder.record(service(name), "Normal", EventReason.AddressAssigned, "x");
  }
  // a, b created; a patched (b, a kept); c created (b out); a patched; b created again.
  assert.deepEqual(api.created.map((event) => event.involvedObject.name), ["a", "b", "c", "b"]);
  assert.equal(api.patched.length, 2);
});

Deno.test("flush resolves at once when idle and after every pending write otherwise", async () => {
  const { api, recorder } = harness();
  await recorder.flush();
  api.hold();
  let written = false;
  void recorder.record(service("a"), "Normal", EventReason.AddressAssigned, "x").then(() =>
    written = true
  );
  const flushed = recorder.flush();
  await waitFor(() => api.inFlight === 1, 1_000, "the write in flight");
  assert.equal(written, false);
  api.release();
  await flushed;
  assert.equal(written, true);
  assert.equal(api.created.length, 1);
});

Deno.test("messages are cut to 1 KiB of UTF-8 on a character boundary", () => {
  const encoder = new TextEncoder();
  const exact = "x".repeat(MAX_EVENT_MESSAGE_BYTES);
  assert.equal(truncateEventMessage(exact), exact);
  const long = truncateEventMessage("x".repeat(5000));
  assert.equal(encoder.encode(long).length, MAX_EVENT_MESSAGE_BYTES);
  assert.ok(long.endsWith("..."));
  for (const character of ["\u00e9", "\u20ac", "\u{1f600}"]) {
    const cut = truncateEventMessage(character.repeat(1000));
    const bytes = encoder.encode(cut).length;
    assert.ok(bytes <= MAX_EVENT_MESSAGE_BYTES && bytes > MAX_EVENT_MESSAGE_BYTES - 8, cut);
    assert.equal(cut, `${character.repeat((cut.length - 3) / character.length)}...`);
  }
});

// ---------------------------------------------------------------------------------------------
// Against the real API server
// ---------------------------------------------------------------------------------------------

const RECORDER_RULES = [{ apiGroups: [""], resources: ["events"], verbs: ["create", "patch"] }];

/** Waits until RBAC lets `access` do `verbs` on events in `namespace` (grants apply lazily). */
async function waitForEventsAccess(
  access: ClusterAccess,
  namespace: string,
  verbs: readonly string[],
): Promise<void> {
  const connection = new ApiConnection(access);
  try {
    const authorization = typedApi(connection, AuthorizationV1Api);
    for (const verb of verbs) {
      await waitFor(
        async () => {
          const review = await authorization.createSelfSubjectAccessReview({
            body: { spec: { resourceAttributes: { namespace, verb, resource: "events" } } },
          });
          return review.status?.allowed === true;
        },
        10_000,
        `permission to ${verb} events in ${namespace}`,
      );
    }
  } finally {
    connection.close();
  }
}

async function eventsAbout(
  core: CoreV1Api,
  namespace: string,
  uid: string,
): Promise<CoreV1Event[]> {
  const list = await core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.uid=${uid}`,
  });
  return list.items;
}

async function recorderFor(
  c: TestCluster,
  namespace: string,
  serviceAccount: string,
  errors: unknown[],
): Promise<{ recorder: EventRecorder; connection: ApiConnection }> {
  const connection = new ApiConnection(await c.serviceAccountConfig(namespace, serviceAccount));
  const recorder = new EventRecorder(new CoreApi(connection), {
    component: "purelb-allocator",
    host: "node-a",
    onError: (error) => errors.push(error),
  });
  return { recorder, connection };
}

clusterTest(
  "a service account with only events create+patch writes Events and bumps repeats",
  async (c) => {
    const ns = await c.createNamespace("events");
    const admin = new ApiConnection(c.adminConfig());
    const errors: unknown[] = [];
    const { recorder, connection } = await recorderFor(c, ns, "recorder", errors);
    try {
      await c.grant(ns, "recorder", RECORDER_RULES);
      await waitForEventsAccess(connection.access, ns, ["create", "patch"]);
      const core = typedApi(admin, CoreV1Api);
      const svc = await core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: "web" }, spec: { ports: [{ port: 80 }] } },
      });
      const uid = svc.metadata?.uid;
      assert.ok(uid);
      const subject = { apiVersion: "v1", kind: "Service", metadata: svc.metadata };

      const before = Date.now();
      await recorder.record(subject, "Normal", EventReason.AddressAssigned, "Assigned 192.0.2.1");
      assertNoErrors(errors);
      const [event, ...more] = await eventsAbout(core, ns, uid);
      assert.equal(more.length, 0);
      assert.ok(event);
      assert.match(event.metadata.name ?? "", /^web\.[a-z0-9]+$/);
      assert.equal(event.metadata.namespace, ns);
      assert.equal(event.involvedObject.apiVersion, "v1");
      assert.equal(event.involvedObject.kind, "Service");
      assert.equal(event.involvedObject.name, "web");
      assert.equal(event.involvedObject.namespace, ns);
      assert.equal(event.involvedObject.resourceVersion, svc.metadata?.resourceVersion);
      assert.equal(event.type, "Normal");
      assert.equal(event.reason, "AddressAssigned");
      assert.equal(event.message, "Assigned 192.0.2.1");
      assert.deepEqual({ ...event.source }, { component: "purelb-allocator", host: "node-a" });
      assert.equal(event.reportingComponent, "purelb-allocator");
      assert.equal(event.reportingInstance, "node-a");
      assert.equal(event.count, 1);
      const first = event.firstTimestamp?.getTime() ?? 0;
      // The API keeps whole seconds.
      assert.ok(first >= Math.floor(before / 1000) * 1000 && first <= Date.now(), String(first));

      await recorder.record(subject, "Normal", EventReason.AddressAssigned, "Assigned 192.0.2.1");
      assertNoErrors(errors);
      const [bumped, ...others] = await eventsAbout(core, ns, uid);
      assert.equal(others.length, 0, "a repeat must not add an Event");
      assert.equal(bumped?.metadata.name, event.metadata.name);
      assert.equal(bumped?.count, 2);
      assert.equal(bumped?.firstTimestamp?.getTime(), first);
      assert.ok((bumped?.lastTimestamp?.getTime() ?? 0) >= first);

      // Someone deleted the Event (or its TTL ran out): the next repeat starts a new one.
      await core.deleteNamespacedEvent({ namespace: ns, name: event.metadata.name ?? "" });
      await recorder.record(subject, "Normal", EventReason.AddressAssigned, "Assigned 192.0.2.1");
      await recorder.record(subject, "Warning", EventReason.ConfigurationWarning, "shared: Local");
      assertNoErrors(errors);
      const after = await eventsAbout(core, ns, uid);
      assert.deepEqual(
        after.map((e) => [e.reason, e.count, e.metadata.name === event.metadata.name]).sort(),
        [["AddressAssigned", 1, false], ["ConfigurationWarning", 1, false]],
      );
    } finally {
      await recorder.flush();
      connection.close();
      admin.close();
      await c.revoke(ns, "recorder");
      await c.deleteNamespace(ns);
    }
  },
);

clusterTest(
  "events about a ServiceGroup, and about a cluster-scoped object in default",
  async (c) => {
    const ns = await c.createNamespace("events");
    const admin = new ApiConnection(c.adminConfig());
    const errors: unknown[] = [];
    const { recorder, connection } = await recorderFor(c, ns, "recorder", errors);
    const core = typedApi(admin, CoreV1Api);
    let clusterEventName: string | undefined;
    try {
      await c.grant(ns, "recorder", RECORDER_RULES);
      await waitForEventsAccess(connection.access, ns, ["create"]);
      await waitForEventsAccess(connection.access, "default", ["create"]);
      const where = { group: PURELB_GROUP, version: PURELB_VERSION, namespace: ns };
      await typedApi(admin, CustomObjectsApi).createNamespacedCustomObject({
        ...where,
        plural: SERVICE_GROUP_PLURAL,
        body: {
          apiVersion: PURELB_API_VERSION,
          kind: SERVICE_GROUP_KIND,
          metadata: { name: "default" },
          spec: { local: { pool: "192.0.2.0/30", subnet: "192.0.2.0/24" } },
        },
      });
      const group: ServiceGroup | undefined = await typedApi(admin, CustomObjectsApi)
        .getNamespacedCustomObject({ ...where, plural: SERVICE_GROUP_PLURAL, name: "default" });
      assert.ok(group?.metadata.uid);
      await recorder.record(group, "Warning", EventReason.ParseFailed, "spec.local.pool: overlaps");
      const [groupEvent] = await eventsAbout(core, ns, group.metadata.uid);
      assert.equal(groupEvent?.involvedObject.apiVersion, "purelb.io/v1");
      assert.equal(groupEvent?.involvedObject.kind, "ServiceGroup");
      assert.equal(groupEvent?.type, "Warning");

      const namespace = await core.readNamespace({ name: ns });
      const nsUid = namespace.metadata?.uid;
      assert.ok(nsUid);
      await recorder.record(
        { apiVersion: "v1", kind: "Namespace", metadata: namespace.metadata },
        "Normal",
        EventReason.AddressReleased,
        "cluster-scoped",
      );
      assertNoErrors(errors);
      const [clusterEvent] = await eventsAbout(core, "default", nsUid);
      clusterEventName = clusterEvent?.metadata.name;
      assert.equal(clusterEvent?.involvedObject.namespace, undefined);
      assert.equal(clusterEvent?.involvedObject.name, ns);
    } finally {
      await recorder.flush();
      if (clusterEventName) {
        await core.deleteNamespacedEvent({
          namespace: "default",
          name: clusterEventName,
        });
      }
      connection.close();
      admin.close();
      await c.revoke(ns, "recorder");
      await c.deleteNamespace(ns);
    }
  },
);

clusterTest("without permission, writes fail into onError and record still resolves", async (c) => {
  const ns = await c.createNamespace("events");
  const errors: unknown[] = [];
  const { recorder, connection } = await recorderFor(c, ns, "nobody", errors);
  try {
    const subject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", namespace: ns } };
    const recorded = recorder.record(subject, "Warning", EventReason.AllocationFailed, "no");
    await recorded;
    assert.equal(errors.length, 1);
    assert.equal(apiStatusCode(errors[0]), 403);
    await recorder.flush();
  } finally {
    connection.close();
    await c.deleteNamespace(ns);
  }
});
