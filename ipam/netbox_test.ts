import assert from "node:assert/strict";
import { NetboxClient, NetboxError, type NetboxFailure } from "./netbox.ts";
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

Deno.test("netbox client: illegal status changes and unknown tenants are refused with Netbox's words", async () => {
  await withServer(async (server) => {
    const record = server.add("192.0.2.10/24", { tenant: "lab", status: "active" });
    const netbox = client(server);
    const illegal = await failure(netbox.update(record.id, { status: "active" }));
    assert.equal(illegal.failure, "refused");
    assert.equal(illegal.status, 400);
    assert.match(illegal.message, /illegal status change from active to active/);
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
    assert.equal(wrong.status, 401);
    assert.match(wrong.message, /refused the token.*Invalid token/);
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
    message: /failed on GET .* \(500\): .*Server Error/,
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
    message: /redirect \(302\) to http:\/\/127\.0\.0\.1:\d+\/login\//,
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
      server.failNext(fault);
      const error = await failure(netbox.list({ tenant: "lab", status: "reserved" }));
      assert.equal(error.failure, expected, error.message);
      assert.match(error.message, message);
      const retried = await netbox.list({ tenant: "lab", status: "reserved" });
      assert.deepEqual(retried.map((a) => a.address), ["192.0.2.10"]);
    });
  });
}

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
