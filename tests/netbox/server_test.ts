import assert from "node:assert/strict";
import { waitFor } from "../wait.ts";
import { NetboxTestServer, type NetboxTestServerOptions } from "./mod.ts";

const LIST = "api/ipam/ip-addresses/";

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

/** Runs `body` against a fresh server and always closes it. */
async function withServer(
  options: NetboxTestServerOptions,
  body: (server: NetboxTestServer) => Promise<void>,
): Promise<void> {
  const server = await NetboxTestServer.start(options);
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

/** A request with the server's token (unless `init` sets headers); the body read as JSON. */
async function call(
  server: NetboxTestServer,
  target: string,
  init: RequestInit = {},
): Promise<Answer> {
  const url = target.startsWith("http") ? target : `${server.url}${target}`;
  const response = await fetch(url, {
    headers: { Authorization: `Token ${server.token}` },
    signal: AbortSignal.timeout(5_000),
    ...init,
  });
  const text = await response.text();
  const isJson = response.headers.get("Content-Type") === "application/json";
  return {
    status: response.status,
    headers: response.headers,
    body: isJson ? JSON.parse(text) : text,
  };
}

function patch(server: NetboxTestServer, id: number, body: unknown): Promise<Answer> {
  return call(server, `${LIST}${id}/`, {
    method: "PATCH",
    headers: { Authorization: `Token ${server.token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

interface Page {
  readonly count: number;
  readonly next: string | null;
  readonly previous: string | null;
  readonly results: readonly { readonly id: number; readonly address: string }[];
}

function asPage(answer: Answer): Page {
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const page = answer.body as Page;
  assert.ok(Array.isArray(page.results), "results is a list");
  return page;
}

async function listAddresses(server: NetboxTestServer, query: string): Promise<string[]> {
  const page = asPage(await call(server, `${LIST}?${query}`));
  assert.equal(page.count, page.results.length);
  return page.results.map((result) => result.address);
}

Deno.test("requests without a token or with a wrong one get 403, in NetBox's words", async () => {
  await withServer({ token: "a".repeat(40) }, async (server) => {
    const missing = await call(server, LIST, { headers: {} });
    assert.equal(missing.status, 403);
    assert.equal(missing.headers.get("Content-Type"), "application/json");
    assert.equal(missing.headers.get("WWW-Authenticate"), null);
    assert.equal(missing.headers.get("API-Version"), "4.7");
    assert.deepEqual(missing.body, { detail: "Authentication credentials were not provided." });

    const wrong = await call(server, LIST, {
      headers: { Authorization: `Token ${"b".repeat(40)}` },
    });
    assert.equal(wrong.status, 403);
    assert.deepEqual(wrong.body, { detail: "Invalid v1 token" });

    const wrongV2 = await call(server, LIST, {
      headers: { Authorization: "Bearer nbt_abc.def" },
    });
    assert.deepEqual([wrongV2.status, wrongV2.body], [403, { detail: "Invalid v2 token" }]);
    const v2 = await call(server, LIST, {
      headers: { Authorization: `Bearer ${server.tokenV2}` },
    });
    assert.equal(v2.status, 200);

    const right = await call(server, LIST);
    assert.equal(right.status, 200);
    assert.deepEqual(right.body, { count: 0, next: null, previous: null, results: [] });
    assert.deepEqual(server.requests.map((request) => request.authorized), [
      false,
      false,
      false,
      true,
      true,
    ]);
  });
});

Deno.test("the default token is 40 hex digits", async () => {
  await withServer({}, async (server) => {
    assert.match(server.token, /^[0-9a-f]{40}$/);
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    assert.equal((await call(server, LIST)).status, 200);
  });
});

Deno.test("an address object has every field Netbox returns", async () => {
  await withServer({}, async (server) => {
    server.add("192.0.2.9/24");
    const record = server.add("192.0.2.10/24", {
      status: "reserved",
      tenant: "my-tenant",
      description: "for lb",
    });
    const answer = await call(server, `${LIST}${record.id}/`);
    assert.equal(answer.status, 200);
    assert.equal(answer.headers.get("Content-Type"), "application/json");
    const object = answer.body as Record<string, unknown>;
    const { created, last_updated: lastUpdated, ...rest } = object;
    assert.equal(typeof created, "string");
    assert.ok(!Number.isNaN(Date.parse(String(created))), "created is a date");
    assert.equal(lastUpdated, created);
    assert.deepEqual(rest, {
      id: 2,
      url: `${server.url}api/ipam/ip-addresses/2/`,
      display_url: `${server.url}ipam/ip-addresses/2/`,
      display: "192.0.2.10/24",
      family: { value: 4, label: "IPv4" },
      address: "192.0.2.10/24",
      vrf: null,
      tenant: {
        id: 1,
        url: `${server.url}api/tenancy/tenants/1/`,
        display: "My tenant",
        name: "My tenant",
        slug: "my-tenant",
        description: "",
      },
      status: { value: "reserved", label: "Reserved" },
      role: null,
      assigned_object_type: null,
      assigned_object_id: null,
      assigned_object: null,
      nat_inside: null,
      nat_outside: [],
      dns_name: "",
      description: "for lb",
      owner: null,
      comments: "",
      tags: [],
      custom_fields: {},
    });

    const v6 = server.add("2001:DB8:0::5/64", { status: "dhcp" });
    assert.equal(v6.address, "2001:db8::5/64");
    const v6Object = (await call(server, `${LIST}${v6.id}/`)).body as Record<string, unknown>;
    assert.deepEqual(v6Object.family, { value: 6, label: "IPv6" });
    assert.deepEqual(v6Object.status, { value: "dhcp", label: "DHCP" });
    assert.equal(v6Object.tenant, null);
  });
});

Deno.test("GET of an unknown id, an unknown path or a wrong method", async () => {
  await withServer({}, async (server) => {
    server.add("192.0.2.1/24");
    assert.deepEqual(await call(server, `${LIST}2/`).then((a) => [a.status, a.body]), [
      404,
      { detail: "No IPAddress matches the given query." },
    ]);
    assert.equal((await call(server, "api/ipam/prefixes/")).status, 404);
    const noSlash = await call(server, "api/ipam/ip-addresses?limit=1", { redirect: "manual" });
    assert.equal(noSlash.status, 301);
    assert.equal(noSlash.headers.get("Location"), "/api/ipam/ip-addresses/?limit=1");
    const nowhere = await call(server, "nowhere");
    const again = await call(server, "nowhere");
    assert.equal(nowhere.status, 404);
    assert.match(String(nowhere.headers.get("Content-Type")), /^text\/html/);
    assert.notEqual(nowhere.body, again.body, "the page text changes with every request");

    const post = await call(server, LIST, { method: "POST", body: "{}" });
    assert.equal(post.status, 405);
    assert.deepEqual(post.body, { detail: 'Method "POST" not allowed.' });
    const remove = await call(server, `${LIST}1/`, { method: "DELETE" });
    assert.equal(remove.status, 405);
    assert.deepEqual(remove.body, { detail: 'Method "DELETE" not allowed.' });
    assert.ok(server.byId(1) !== undefined);
  });
});

Deno.test("list filters: status, tenant, family, id and address by host part", async () => {
  await withServer({ tenants: ["spare"] }, async (server) => {
    server.add("192.0.2.100/24", { status: "reserved", tenant: "lb" });
    server.add("2001:db8::5/64", { status: "reserved", tenant: "lb" });
    server.add("192.0.2.20/24", { status: "active", tenant: "lb" });
    server.add("198.51.100.7/32", { status: "deprecated" });
    server.add("2001:db8::1:0/64", { status: "active" });
    server.add("10.0.0.1/8", { status: "reserved", tenant: "other" });

    assert.deepEqual(await listAddresses(server, ""), [
      "10.0.0.1/8",
      "192.0.2.20/24",
      "192.0.2.100/24",
      "198.51.100.7/32",
      "2001:db8::5/64",
      "2001:db8::1:0/64",
    ]);
    assert.deepEqual(await listAddresses(server, "status=reserved"), [
      "10.0.0.1/8",
      "192.0.2.100/24",
      "2001:db8::5/64",
    ]);
    assert.deepEqual(await listAddresses(server, "status=reserved&status=deprecated"), [
      "10.0.0.1/8",
      "192.0.2.100/24",
      "198.51.100.7/32",
      "2001:db8::5/64",
    ]);
    assert.deepEqual(await listAddresses(server, "tenant=lb"), [
      "192.0.2.20/24",
      "192.0.2.100/24",
      "2001:db8::5/64",
    ]);
    assert.deepEqual(await listAddresses(server, "tenant=spare"), []);
    assert.deepEqual(await listAddresses(server, "status=reserved&tenant=lb&family=4"), [
      "192.0.2.100/24",
    ]);
    assert.deepEqual(await listAddresses(server, "family=6"), [
      "2001:db8::5/64",
      "2001:db8::1:0/64",
    ]);
    assert.deepEqual(await listAddresses(server, "id=1&id=4"), [
      "192.0.2.100/24",
      "198.51.100.7/32",
    ]);
    assert.deepEqual(await listAddresses(server, "address=192.0.2.20"), ["192.0.2.20/24"]);
    assert.deepEqual(await listAddresses(server, "address=192.0.2.20/24"), ["192.0.2.20/24"]);
    assert.deepEqual(await listAddresses(server, "address=192.0.2.20/25"), []);
    assert.deepEqual(await listAddresses(server, "address=192.0.2.2"), []);
    assert.deepEqual(await listAddresses(server, "address=not-an-address"), []);
    assert.deepEqual(
      await listAddresses(server, `address=${encodeURIComponent("2001:DB8:0:0::0005")}`),
      ["2001:db8::5/64"],
    );
    assert.deepEqual(
      await listAddresses(server, "address=2001:db8:0:0:0:0:1:0&address=10.0.0.1"),
      ["10.0.0.1/8", "2001:db8::1:0/64"],
    );
  });
});

Deno.test("unknown tenant, status or non-numeric family give 400", async () => {
  await withServer({ tenants: ["lb"] }, async (server) => {
    const tenant = await call(server, `${LIST}?tenant=nobody`);
    assert.equal(tenant.status, 400);
    assert.equal(tenant.headers.get("Content-Type"), "application/json");
    assert.deepEqual(tenant.body, {
      tenant: ["Select a valid choice. nobody is not one of the available choices."],
    });
    const status = await call(server, `${LIST}?status=free`);
    assert.equal(status.status, 400);
    assert.deepEqual(status.body, {
      status: ["Select a valid choice. free is not one of the available choices."],
    });
    const family = await call(server, `${LIST}?family=four`);
    assert.equal(family.status, 400);
    assert.deepEqual(family.body, { family: ["Enter a number."] });
  });
});

Deno.test("pagination walks every record once through next links", async () => {
  await withServer({ pageSize: 2 }, async (server) => {
    server.addRange("192.0.2.10/24", 5, { status: "reserved" });
    server.add("192.0.2.9/24", { status: "active" });
    const seen: number[] = [];
    const nexts: string[] = [];
    let page = asPage(await call(server, `${LIST}?status=reserved`));
    assert.equal(page.previous, null);
    for (;;) {
      assert.equal(page.count, 5);
      assert.ok(page.results.length <= 2);
      seen.push(...page.results.map((result) => result.id));
      if (page.next === null) break;
      nexts.push(page.next);
      page = asPage(await call(server, page.next));
      assert.notEqual(page.previous, null);
    }
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    const base = `${server.url}${LIST}`;
    assert.deepEqual(nexts, [
      `${base}?limit=2&offset=2&status=reserved`,
      `${base}?limit=2&offset=4&status=reserved`,
    ]);
    assert.equal(page.previous, `${base}?limit=2&offset=2&status=reserved`);

    const second = asPage(await call(server, `${LIST}?status=reserved&limit=2&offset=2`));
    assert.equal(second.previous, `${base}?limit=2&status=reserved`);

    const explicit = asPage(await call(server, `${LIST}?limit=4`));
    assert.equal(explicit.count, 6);
    assert.equal(explicit.results.length, 4);
    assert.equal(explicit.next, `${base}?limit=4&offset=4`);
    const everything = asPage(await call(server, `${LIST}?limit=0`));
    assert.equal(everything.results.length, 6);
    assert.equal(everything.next, null);
  });
});

Deno.test("PATCH accepts any valid status change (last write wins), If-Match makes it conditional", async () => {
  await withServer({}, async (server) => {
    const record = server.add("192.0.2.10/24", { status: "reserved" });
    const read = await call(server, `${LIST}1/`);
    const before = read.body as Record<string, unknown>;
    const etag = read.headers.get("ETag") ?? "";
    assert.equal(etag, `W/"${String(before.last_updated).replace(/Z$/, "+00:00")}"`);

    const activate = await patch(server, 1, { status: "active", description: "svc/a", vrf: 9 });
    assert.equal(activate.status, 200);
    const activated = activate.body as Record<string, unknown>;
    assert.deepEqual(activated.status, { value: "active", label: "Active" });
    assert.equal(activated.description, "svc/a");
    assert.equal(activated.vrf, null);
    assert.equal(activated.created, before.created);
    assert.ok(String(activated.last_updated) > String(before.last_updated), "last_updated bumped");
    assert.notEqual(activate.headers.get("ETag"), etag, "a new ETag");
    assert.equal(record.status, "active");

    const again = await patch(server, 1, { status: "active", description: "svc/b" });
    assert.equal(again.status, 200, "a second activation overwrites the first");
    assert.equal(record.description, "svc/b");

    const patchIfMatch = (ifMatch: string, fields: Record<string, unknown>) =>
      call(server, `${LIST}1/`, {
        method: "PATCH",
        headers: {
          Authorization: `Token ${server.token}`,
          "Content-Type": "application/json",
          "If-Match": ifMatch,
        },
        body: JSON.stringify(fields),
      });
    const stale = await patchIfMatch(etag, { status: "active", description: "svc/c" });
    assert.deepEqual([stale.status, stale.body], [412, { detail: "Precondition failed." }]);
    assert.equal(record.description, "svc/b");
    const current = stale.headers.get("ETag") ?? "";
    const fresh = await patchIfMatch(current, { status: "reserved", description: "" });
    assert.equal(fresh.status, 200);
    assert.equal(record.status, "reserved");

    record.description = "edited by a test";
    const edited = await call(server, `${LIST}1/`);
    assert.notEqual(edited.headers.get("ETag"), fresh.headers.get("ETag"), "direct edits count");

    const dhcp = await patch(server, 1, { status: "dhcp" });
    assert.equal(dhcp.status, 200);
    assert.equal(record.status, "dhcp");
  });
});

Deno.test("a latency knob delays every answer", async () => {
  await withServer({ latencyMs: 120 }, async (server) => {
    const started = performance.now();
    assert.equal((await call(server, LIST)).status, 200);
    assert.ok(performance.now() - started >= 110, "delayed");
  });
});

Deno.test("PATCH rejects bad values, bodies and content types", async () => {
  await withServer({}, async (server) => {
    const record = server.add("2001:db8::5/64", { status: "reserved", description: "keep" });

    const bogus = await patch(server, 1, { status: "bogus", description: "changed" });
    assert.equal(bogus.status, 400);
    assert.deepEqual(bogus.body, { status: ['"bogus" is not a valid choice.'] });
    assert.equal(record.description, "keep");

    const text = await call(server, `${LIST}1/`, {
      method: "PATCH",
      headers: { Authorization: `Token ${server.token}`, "Content-Type": "text/plain" },
      body: '{"status": "active"}',
    });
    assert.equal(text.status, 415);
    assert.deepEqual(text.body, { detail: 'Unsupported media type "text/plain" in request.' });

    const malformed = await call(server, `${LIST}1/`, {
      method: "PATCH",
      headers: { Authorization: `Token ${server.token}`, "Content-Type": "application/json" },
      body: '{"status": ',
    });
    assert.equal(malformed.status, 400);
    assert.match(String((malformed.body as { detail: unknown }).detail), /^JSON parse error - /);

    const list = await patch(server, 1, [{ status: "active" }]);
    assert.equal(list.status, 400);
    assert.deepEqual(list.body, {
      non_field_errors: ["Invalid data. Expected a dictionary, but got list."],
    });

    const missing = await patch(server, 2, { status: "active" });
    assert.equal(missing.status, 404);
    assert.equal(record.status, "reserved");
  });
});

Deno.test("fault timeout holds the request until the client gives up", async () => {
  await withServer({}, async (server) => {
    server.failNext({ kind: "timeout" });
    const held = fetch(`${server.url}${LIST}`, {
      headers: { Authorization: `Token ${server.token}` },
      signal: AbortSignal.timeout(200),
    });
    await waitFor(() => server.pendingCount === 1, 2_000, "the request to be held");
    await assert.rejects(held, (error: unknown) => error instanceof DOMException);
    await waitFor(() => server.pendingCount === 0, 2_000, "the held request to be dropped");
    assert.equal((await call(server, LIST)).status, 200);
    assert.equal(server.requests.length, 2);
  });
});

Deno.test("fault timeout: close answers held requests and still shuts down", async () => {
  const server = await NetboxTestServer.start();
  try {
    server.failNext({ kind: "timeout" }, 2);
    const held = [1, 2].map(() => call(server, LIST));
    await waitFor(() => server.pendingCount === 2, 2_000, "both requests to be held");
    await server.close();
    assert.equal(server.pendingCount, 0);
    for (const answer of await Promise.all(held)) assert.equal(answer.status, 503);
  } finally {
    await server.close();
  }
});

Deno.test("fault status: a Django-like HTML page by default, or the given body", async () => {
  await withServer({}, async (server) => {
    server.failNext({ kind: "status", status: 500 });
    server.failNext({ kind: "status", status: 503, body: '{"detail":"down"}' });
    server.failNext({
      kind: "status",
      status: 502,
      body: "bad gateway",
      contentType: "text/plain",
    });

    const first = await call(server, LIST);
    assert.equal(first.status, 500);
    assert.match(String(first.headers.get("Content-Type")), /^text\/html/);
    assert.match(String(first.body), /<title>Server Error \(500\)<\/title>/);
    const second = await call(server, LIST);
    assert.equal(second.status, 503);
    assert.deepEqual(second.body, { detail: "down" });
    const third = await call(server, LIST);
    assert.equal(third.status, 502);
    assert.equal(third.headers.get("Content-Type"), "text/plain");
    assert.equal(third.body, "bad gateway");
    assert.equal((await call(server, LIST)).status, 200);
    assert.throws(() => server.failNext({ kind: "status", status: 99 }), RangeError);
  });
});

Deno.test("fault html answers 200 with a login page", async () => {
  await withServer({}, async (server) => {
    server.failNext({ kind: "html" });
    const answer = await call(server, LIST);
    assert.equal(answer.status, 200);
    assert.match(String(answer.headers.get("Content-Type")), /^text\/html/);
    assert.match(String(answer.body), /<!DOCTYPE html>[\s\S]*name="password"/);
  });
});

Deno.test("fault redirect sends the client to the login page", async () => {
  await withServer({}, async (server) => {
    server.failNext({ kind: "redirect" }, 2);
    const manual = await call(server, `${LIST}?status=reserved`, {
      headers: { Authorization: `Token ${server.token}` },
      redirect: "manual",
    });
    assert.equal(manual.status, 302);
    assert.equal(
      manual.headers.get("Location"),
      `/login/?next=/api/ipam/ip-addresses/%3Fstatus%3Dreserved`,
    );

    const response = await fetch(`${server.url}${LIST}`, {
      headers: { Authorization: `Token ${server.token}` },
    });
    const page = await response.text();
    assert.equal(response.status, 200);
    assert.ok(response.redirected);
    assert.equal(response.url, `${server.url}login/?next=/api/ipam/ip-addresses/`);
    assert.match(page, /<form action="\/login\/"/);
    assert.deepEqual(server.requests.map((request) => request.path), [
      "/api/ipam/ip-addresses/",
      "/api/ipam/ip-addresses/",
      "/login/",
    ]);
    assert.equal((await call(server, LIST)).status, 200, "the login page took no fault");
  });
});

Deno.test("fault badJson answers 200 with JSON that does not parse", async () => {
  await withServer({}, async (server) => {
    server.failNext({ kind: "badJson" });
    const response = await fetch(`${server.url}${LIST}`, {
      headers: { Authorization: `Token ${server.token}` },
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("Content-Type"), "application/json");
    await assert.rejects(response.json(), SyntaxError);
  });
});

Deno.test("fault wrongShape answers an object for a list and a list for an object", async () => {
  await withServer({}, async (server) => {
    server.add("192.0.2.1/24");
    server.failNext({ kind: "wrongShape" }, 2);
    const list = await call(server, LIST);
    assert.equal(list.status, 200);
    assert.equal(list.headers.get("Content-Type"), "application/json");
    assert.deepEqual(list.body, { detail: "ok" });
    const item = await call(server, `${LIST}1/`);
    assert.equal(item.status, 200);
    assert.ok(Array.isArray(item.body));
  });
});

Deno.test("failNext counts and matches, queued faults keep their order", async () => {
  await withServer({}, async (server) => {
    server.add("192.0.2.1/24", { status: "reserved" });
    server.failNext({ kind: "status", status: 503 }, 2, { method: "patch" });
    server.failNext({ kind: "status", status: 502 }, 1, { path: /\/1\/$/ });

    assert.equal((await call(server, LIST)).status, 200, "GET of the list matches neither");
    assert.equal((await call(server, `${LIST}1/`)).status, 502);
    assert.equal((await call(server, `${LIST}1/`)).status, 200);
    assert.equal((await patch(server, 1, { status: "active" })).status, 503);
    assert.equal((await patch(server, 1, { status: "active" })).status, 503);
    assert.equal(server.byId(1)?.status, "reserved");
    assert.equal((await patch(server, 1, { status: "active" })).status, 200);

    server.failNext({ kind: "status", status: 500 });
    server.failNext({ kind: "html" });
    assert.equal((await call(server, LIST)).status, 500);
    assert.match(String((await call(server, LIST)).body), /<!DOCTYPE html>/);

    server.failNext({ kind: "status", status: 500 }, 3);
    server.clearFaults();
    assert.equal((await call(server, LIST)).status, 200);
  });
});

Deno.test("faults come before authentication", async () => {
  await withServer({}, async (server) => {
    server.failNext({ kind: "status", status: 500 });
    assert.equal((await call(server, LIST, { headers: {} })).status, 500);
    assert.equal((await call(server, LIST, { headers: {} })).status, 403);
  });
});

Deno.test("every request is logged with method, path, query, body and authorization", async () => {
  await withServer({}, async (server) => {
    server.add("192.0.2.1/24", { status: "reserved" });
    server.failNext({ kind: "status", status: 500 });
    await call(server, `${LIST}?status=reserved&limit=5`);
    await patch(server, 1, { status: "active" });
    await call(server, `${LIST}1/`, { headers: { Authorization: "Token nope" } });
    await call(server, `${LIST}1/`, {
      method: "PATCH",
      headers: { Authorization: `Token ${server.token}`, "Content-Type": "application/json" },
      body: "{oops",
    });
    assert.deepEqual(server.requests, [
      {
        method: "GET",
        path: "/api/ipam/ip-addresses/",
        query: { status: "reserved", limit: "5" },
        body: undefined,
        authorized: true,
      },
      {
        method: "PATCH",
        path: "/api/ipam/ip-addresses/1/",
        query: {},
        body: { status: "active" },
        authorized: true,
      },
      {
        method: "GET",
        path: "/api/ipam/ip-addresses/1/",
        query: {},
        body: undefined,
        authorized: false,
      },
      {
        method: "PATCH",
        path: "/api/ipam/ip-addresses/1/",
        query: {},
        body: "{oops",
        authorized: true,
      },
    ]);
    server.clearRequests();
    assert.equal(server.requests.length, 0);
  });
});

Deno.test("add, addRange, find and byId", async () => {
  await withServer({}, async (server) => {
    const v4 = server.addRange("192.0.2.254/23", 3, { status: "reserved", tenant: "lb" });
    assert.deepEqual(v4.map((record) => [record.id, record.address]), [
      [1, "192.0.2.254/23"],
      [2, "192.0.2.255/23"],
      [3, "192.0.3.0/23"],
    ]);
    assert.ok(v4.every((record) => record.status === "reserved" && record.tenant === "lb"));
    const v6 = server.addRange("2001:db8::ffff/64", 2);
    assert.deepEqual(v6.map((record) => record.address), ["2001:db8::ffff/64", "2001:db8::1:0/64"]);
    assert.equal(v6[0]?.status, "active");
    assert.equal(server.add("198.51.100.1").address, "198.51.100.1/32");

    assert.equal(server.find("192.0.3.0")?.id, 3);
    assert.equal(server.find("2001:DB8:0:0:0:0:1:0")?.id, 5);
    assert.equal(server.find("192.0.2.253"), undefined);
    assert.equal(server.byId(4)?.address, "2001:db8::ffff/64");
    assert.equal(server.byId(99), undefined);
    assert.equal(server.records().length, 6);

    assert.throws(() => server.add("192.0.2.254/24"), /already present/);
    assert.throws(() => server.addRange("192.0.2.250/24", 5), /already present/);
    assert.equal(server.records().length, 6, "a refused range adds nothing");
    assert.throws(() => server.add("192.0.2.300/24"), TypeError);
    assert.throws(() => server.add("192.0.2.1/33"), TypeError);
    assert.throws(() => server.addRange("255.255.255.255/32", 2), RangeError);

    const listed = asPage(await call(server, `${LIST}?tenant=lb`));
    assert.equal(listed.count, 3);
  });
});
