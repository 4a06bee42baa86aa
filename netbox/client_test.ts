import assert from "node:assert/strict";
import { NetboxClient, NetboxError, type NetboxFailure, netboxOrigin } from "./client.ts";
import { NetboxTestServer } from "../tests/netbox/mod.ts";

async function withServer(
  body: (server: NetboxTestServer) => Promise<void>,
  options: { pageSize?: number } = {},
): Promise<void> {
  const server = await NetboxTestServer.start({ tenants: ["lab", "other"], ...options });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

function client(
  server: NetboxTestServer,
  overrides: Partial<
    {
      token: string | undefined;
      timeoutMs: number;
      cacheTtlMs: number;
      pageSize: number;
      now: () => number;
    }
  > = {},
) {
  return new NetboxClient({ url: server.url, token: server.token, ...overrides });
}

async function failure(promise: Promise<unknown>): Promise<NetboxError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof NetboxError) return error;
    throw error;
  }
  throw new Error("expected a NetboxError, the call succeeded");
}

Deno.test("netbox client: lists by tenant, status and family across pages", async () => {
  await withServer(async (server) => {
    server.addRange("192.0.2.10/24", 5, { tenant: "lab", status: "reserved" });
    server.add("192.0.2.99/24", { tenant: "other", status: "reserved" });
    server.add("2001:db8::10/64", { tenant: "lab", status: "reserved" });
    server.add("192.0.2.50/24", { tenant: "lab", status: "active" });
    const netbox = client(server, { pageSize: 2 });
    const v4 = await netbox.list({ tenant: "lab", status: "reserved", family: "IPv4" });
    assert.deepEqual(v4.map((a) => a.address), [
      "192.0.2.10",
      "192.0.2.11",
      "192.0.2.12",
      "192.0.2.13",
      "192.0.2.14",
    ]);
    assert.deepEqual(v4.map((a) => [a.prefixLength, a.family, a.status, a.tenant])[0], [
      24,
      "IPv4",
      "reserved",
      "lab",
    ]);
    const pages = server.requests.filter((r) => r.method === "GET").length;
    assert.equal(pages, 3, "5 results at 2 per page is 3 requests");
    const v6 = await netbox.list({ tenant: "lab", status: "reserved", family: "IPv6" });
    assert.deepEqual(v6.map((a) => [a.address, a.prefixLength]), [["2001:db8::10", 64]]);
    const one = await netbox.list({ tenant: "lab", address: "192.0.2.50" });
    assert.deepEqual(one.map((a) => a.status), ["active"]);
  }, {});
});

Deno.test("netbox client: reads are cached briefly, and any write empties the cache", async () => {
  await withServer(async (server) => {
    const [record] = server.addRange("192.0.2.10/24", 2, { tenant: "lab", status: "reserved" });
    let now = 0;
    const netbox = client(server, { cacheTtlMs: 1_000, now: () => now });
    const gets = () => server.requests.filter((r) => r.method === "GET").length;
    await netbox.list({ tenant: "lab", status: "reserved" });
    await netbox.list({ tenant: "lab", status: "reserved" });
    assert.equal(gets(), 1, "the second read came from the cache");
    now = 1_500;
    await netbox.list({ tenant: "lab", status: "reserved" });
    assert.equal(gets(), 2, "an expired entry is read again");
    const changed = await netbox.update(record?.id ?? 0, { status: "active", description: "x" });
    assert.deepEqual([changed.status, changed.description], ["active", "x"]);
    const after = await netbox.list({ tenant: "lab", status: "reserved" });
    assert.equal(gets(), 3, "the write emptied the cache");
    assert.deepEqual(after.map((a) => a.address), ["192.0.2.11"]);
  });
});

Deno.test("netbox client: invalid values and unknown tenants are refused with Netbox's words", async () => {
  await withServer(async (server) => {
    const record = server.add("192.0.2.10/24", { tenant: "lab", status: "active" });
    const netbox = client(server);
    const illegal = await failure(netbox.update(record.id, { status: "bogus" }));
    assert.equal(illegal.failure, "refused");
    assert.equal(illegal.status, 400);
    assert.match(illegal.message, /"bogus" is not a valid choice/);
    const tenant = await failure(netbox.list({ tenant: "nobody" }));
    assert.equal(tenant.failure, "refused");
    assert.match(tenant.message, /nobody is not one of the available choices/);
  });
});

Deno.test("netbox client: no token, a wrong token", async () => {
  await withServer(async (server) => {
    const none = await failure(client(server, { token: undefined }).list({ tenant: "lab" }));
    assert.equal(none.failure, "noToken");
    assert.match(none.message, /NETBOX_USER_TOKEN is not set.*netbox-client/);
    assert.equal(server.requests.length, 0, "nothing is sent without a token");
    const wrong = await failure(client(server, { token: "nope" }).list({ tenant: "lab" }));
    assert.equal(wrong.failure, "unauthorized");
    assert.equal(wrong.status, 403);
    assert.match(wrong.message, /refused the token.*Invalid v1 token/);
  });
});

const FAULTS: readonly {
  readonly name: string;
  readonly fault: Parameters<NetboxTestServer["failNext"]>[0];
  readonly failure: NetboxFailure;
  readonly message: RegExp;
}[] = [
  {
    name: "a timeout",
    fault: { kind: "timeout" },
    failure: "timeout",
    message: /did not answer .* within 300 ms/,
  },
  {
    name: "a 500 HTML page",
    fault: { kind: "status", status: 500 },
    failure: "serverError",
    message: /^Netbox failed on GET \S+ \(500\) and a text\/html page$/,
  },
  {
    name: "an HTML page with 200",
    fault: { kind: "html" },
    failure: "contentType",
    message: /text\/html.* instead of JSON/,
  },
  {
    name: "a redirect to the login page",
    fault: { kind: "redirect" },
    failure: "redirect",
    message: /redirect \(302\) to \/login\/\?next=.*check spec\.netbox\.url/,
  },
  {
    name: "malformed JSON",
    fault: { kind: "badJson" },
    failure: "body",
    message: /malformed JSON/,
  },
  {
    name: "JSON of the wrong shape",
    fault: { kind: "wrongShape" },
    failure: "body",
    message: /not what the API returns/,
  },
];

for (const { name, fault, failure: expected, message } of FAULTS) {
  Deno.test(`netbox client: ${name} is a NetboxError that says so, and the next call works`, async () => {
    await withServer(async (server) => {
      server.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
      const netbox = client(server, { timeoutMs: 300, cacheTtlMs: 0 });
      await netbox.list({ tenant: "lab" }); // answered once: no second try from here on
      server.failNext(fault);
      const error = await failure(netbox.list({ tenant: "lab", status: "reserved" }));
      assert.equal(error.failure, expected, error.message);
      assert.match(error.message, message);
      const retried = await netbox.list({ tenant: "lab", status: "reserved" });
      assert.deepEqual(retried.map((a) => a.address), ["192.0.2.10"]);
    });
  });
}

Deno.test("netbox client: the first request is tried twice (a cold NetBox), later ones once", async () => {
  await withServer(async (server) => {
    server.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
    const netbox = client(server, { timeoutMs: 300, cacheTtlMs: 0 });
    server.failNext({ kind: "timeout" });
    assert.equal((await netbox.list({ tenant: "lab" })).length, 1);
    assert.equal(server.requests.length, 2);
    server.failNext({ kind: "timeout" });
    assert.equal((await failure(netbox.list({ tenant: "lab" }))).failure, "timeout");
  });
});

Deno.test("netbox client: HTML error pages give the same message every time", async () => {
  await withServer(async (server) => {
    const netbox = client(server, { cacheTtlMs: 0 });
    const messages = new Set<string>();
    for (let i = 0; i < 3; i++) {
      server.failNext({ kind: "status", status: 502 });
      messages.add((await failure(netbox.list({ tenant: "lab" }))).message);
    }
    assert.equal(messages.size, 1, [...messages].join("\n"));
    const wrongUrl = new NetboxClient({ url: `${server.url}nowhere/`, token: server.token });
    const notFound = await failure(wrongUrl.list({ tenant: "lab" }));
    assert.equal(notFound.failure, "notFound");
    assert.match(
      notFound.message,
      /404 and a text\/html page, not the API: check spec\.netbox\.url/,
    );
  });
});

Deno.test("netbox client: v2 tokens go as Bearer, v1 as Token", async () => {
  await withServer(async (server) => {
    const v2 = client(server, { token: server.tokenV2 });
    assert.equal((await v2.list({ tenant: "lab" })).length, 0);
    const wrong = await failure(client(server, { token: "nbt_nope.nope" }).list({ tenant: "lab" }));
    assert.deepEqual([wrong.failure, wrong.status], ["unauthorized", 403]);
    assert.match(wrong.message, /Invalid v2 token/);
  });
});

Deno.test("netbox client: updates with If-Match; a stale ETag is a conflict", async () => {
  await withServer(async (server) => {
    const record = server.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
    const netbox = client(server);
    const [listed] = await netbox.list({ tenant: "lab" });
    const read = await netbox.get(record.id);
    assert.equal(listed?.etag, read.etag, "the list's ETag guess is the record's ETag");
    const changed = await netbox.update(record.id, { status: "active" }, { ifMatch: read.etag });
    assert.equal(changed.status, "active");
    assert.equal(netbox.conditional, true);
    const stale = await failure(netbox.update(record.id, { status: "active" }, {
      ifMatch: read.etag,
    }));
    assert.deepEqual([stale.failure, stale.status], ["conflict", 412]);
  });
});

Deno.test("netbox client: origins are normalised", () => {
  for (
    const [given, origin] of [
      ["http://127.0.0.1:8001", "http://127.0.0.1:8001/"],
      ["http://127.0.0.1:8001/", "http://127.0.0.1:8001/"],
      ["HTTP://NetBox.Example:80/api/", "http://netbox.example/"],
      ["https://netbox.example:443//nb/api", "https://netbox.example/nb/"],
      ["http://[2001:db8::1]:8080/?x=1#y", "http://[2001:db8::1]:8080/"],
    ]
  ) {
    assert.equal(netboxOrigin(given ?? ""), origin, given ?? "");
  }
});

Deno.test("netbox client: a failed list is not cached", async () => {
  await withServer(async (server) => {
    server.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
    const netbox = client(server, { cacheTtlMs: 60_000 });
    server.failNext({ kind: "status", status: 503 });
    await failure(netbox.list({ tenant: "lab" }));
    assert.equal((await netbox.list({ tenant: "lab" })).length, 1);
  });
});

Deno.test("netbox client: a base URL without the slash or with api/ works", async () => {
  await withServer(async (server) => {
    server.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
    for (const url of [server.url.slice(0, -1), `${server.url}api/`]) {
      const netbox = new NetboxClient({ url, token: server.token });
      assert.equal(netbox.baseUrl, server.url);
      assert.equal((await netbox.list({ tenant: "lab" })).length, 1);
    }
  });
});

Deno.test("netbox client: first() reads pages only until it finds a match", async () => {
  await withServer(async (server) => {
    server.addRange("192.0.2.10/24", 5, { tenant: "lab", status: "reserved" });
    const netbox = client(server, { pageSize: 2 });
    const gets = () => server.requests.filter((r) => r.method === "GET").length;
    const filter = { tenant: "lab", status: "reserved" };
    assert.equal((await netbox.first(filter, () => true))?.address, "192.0.2.10");
    assert.equal(gets(), 1);
    const last = await netbox.first(filter, (a) => a.address === "192.0.2.14");
    assert.equal(last?.address, "192.0.2.14");
    assert.equal(gets(), 4, "three more pages");
    assert.equal(await netbox.first(filter, () => false), undefined);
  });
});
