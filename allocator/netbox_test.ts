import assert from "node:assert/strict";
import { markerDescription, NetboxBroker } from "./netbox.ts";
import type { NetboxSource } from "./allocator.ts";
import { NetboxTestServer } from "../tests/netbox/mod.ts";
import { waitFor } from "../tests/wait.ts";

async function withBroker(
  body: (netbox: NetboxTestServer, broker: NetboxBroker, source: NetboxSource) => Promise<void>,
  options: { timeoutMs?: number } = {},
): Promise<void> {
  const netbox = await NetboxTestServer.start({ tenants: ["lab"], pageSize: 3 });
  try {
    const broker = new NetboxBroker({ token: netbox.token, timeoutMs: options.timeoutMs ?? 2_000 });
    const source = { url: netbox.url, tenant: "lab", aggregation: { kind: "default" } } as const;
    await body(netbox, broker, source);
  } finally {
    await netbox.close();
  }
}

const marker = (service: string) => ({ groupUid: "uid-1", service });

Deno.test("broker: concurrent takes get distinct addresses, marked with group and Service", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.addRange("192.0.2.10/24", 8, { tenant: "lab", status: "reserved" });
    const takes = await Promise.all(
      Array.from(
        { length: 6 },
        (_, i) => broker.take(source, ["IPv4"], "SingleStack", marker(`ns/s${i}`)),
      ),
    );
    const addresses = takes.map((t) => t.offer.addresses[0]?.address);
    assert.equal(new Set(addresses).size, 6, `distinct: ${addresses}`);
    for (const [i, address] of addresses.entries()) {
      const record = netbox.find(address ?? "");
      assert.equal(record?.status, "active");
      assert.equal(record?.description, markerDescription(marker(`ns/s${i}`)));
    }
  });
});

Deno.test("broker: families by policy; an empty family is a failure, not an error", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.add("2001:db8::10/64", { tenant: "lab", status: "reserved" });
    netbox.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
    const anyOne = await broker.take(source, ["IPv6", "IPv4"], "AnyOne", marker("ns/a"));
    assert.deepEqual(anyOne.offer.addresses, [{ address: "2001:db8::10", family: "IPv6" }]);
    const required = await broker.take(
      source,
      ["IPv6", "IPv4"],
      "RequireDualStack",
      marker("ns/b"),
    );
    assert.deepEqual(required.offer.addresses, [], "stops at the first failure");
    assert.match(required.offer.failures.IPv6?.message ?? "", /no reserved IPv6 address left/);
    assert.equal(required.result.ok, true, "an empty Netbox is not a Netbox failure");
  });
});

Deno.test("broker: a refused activation moves on to the next reserved address", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.addRange("192.0.2.10/24", 2, { tenant: "lab", status: "reserved" });
    netbox.failNext(
      {
        kind: "status",
        status: 400,
        body: JSON.stringify({ status: ["illegal status change from active to active"] }),
      },
      1,
      { method: "PATCH" },
    );
    const taken = await broker.take(source, ["IPv4"], "SingleStack", marker("ns/a"));
    assert.deepEqual(taken.offer.addresses.map((a) => a.address), ["192.0.2.11"]);
    assert.equal(netbox.find("192.0.2.10")?.status, "reserved");
  });
});

Deno.test("broker: an activation whose answer is lost is undone", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.add("192.0.2.10/24", { tenant: "lab", status: "reserved", description: "spare" });
    netbox.failNext({ kind: "status", status: 502 }, 1, { method: "PATCH" });
    const taken = await broker.take(source, ["IPv4"], "SingleStack", marker("ns/a"));
    assert.equal(taken.result.ok, false);
    assert.match(taken.offer.failures.IPv4?.message ?? "", /\(502\)/);
    const record = netbox.find("192.0.2.10");
    assert.deepEqual([record?.status, record?.description], ["reserved", "spare"]);
    // The record was read again: not ours, so nothing was undone over it.
    const last = netbox.requests.at(-1);
    assert.deepEqual([last?.method, last?.path], ["GET", `/api/ipam/ip-addresses/${record?.id}/`]);
  });
});

Deno.test("broker: an activation that did happen although its answer was lost is undone", async () => {
  await withBroker(async (netbox, broker, source) => {
    const record = netbox.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
    netbox.failNext({ kind: "timeout" }, 1, { method: "PATCH" });
    const take = broker.take(source, ["IPv4"], "SingleStack", marker("ns/a"));
    await waitFor(() => netbox.pendingCount === 1, 5_000, "the PATCH to hang");
    // As if NetBox wrote it and the answer got lost.
    record.status = "active";
    record.description = markerDescription(marker("ns/a"));
    const taken = await take;
    assert.equal(taken.result.ok, false);
    assert.deepEqual([record.status, record.description], ["reserved", ""]);
  }, { timeoutMs: 300 });
});

Deno.test("broker: a second writer's activation between list and PATCH costs a 412, not a double allocation", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.addRange("192.0.2.10/24", 3, { tenant: "lab", status: "reserved" });
    // Warm the candidate list, then let someone else activate the next candidate.
    const first = await broker.take(source, ["IPv4"], "SingleStack", marker("ns/a"));
    assert.deepEqual(first.offer.addresses.map((a) => a.address), ["192.0.2.10"]);
    const stolen = netbox.find("192.0.2.11");
    if (stolen) {
      stolen.status = "active";
      stolen.description = "another cluster";
    }
    const second = await broker.take(source, ["IPv4"], "SingleStack", marker("ns/b"));
    assert.deepEqual(second.offer.addresses.map((a) => a.address), ["192.0.2.12"]);
    assert.equal(netbox.find("192.0.2.11")?.description, "another cluster");
    assert.ok(netbox.requests.some((r) => r.ifMatch !== undefined), "PATCHes carry If-Match");
  });
});

Deno.test("broker: addresses the allocator holds are never offered; one Netbox under two spellings is one", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.addRange("192.0.2.10/24", 3, { tenant: "lab", status: "reserved" });
    const other = { ...source, url: source.url.slice(0, -1) };
    const [a, b] = await Promise.all([
      broker.take(
        source,
        ["IPv4"],
        "SingleStack",
        marker("ns/a"),
        undefined,
        (x) => x === "192.0.2.10",
      ),
      broker.take(
        other,
        ["IPv4"],
        "SingleStack",
        marker("ns/b"),
        undefined,
        (x) => x === "192.0.2.10",
      ),
    ]);
    const got = [a.offer.addresses[0]?.address, b.offer.addresses[0]?.address].sort();
    assert.deepEqual(got, ["192.0.2.11", "192.0.2.12"]);
    assert.equal(netbox.find("192.0.2.10")?.status, "reserved");
  });
});

Deno.test("broker: giving back clears our description, keeps others', and is idempotent", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.add("192.0.2.10/24", { tenant: "lab", status: "active", description: "purelb:x ns/a" });
    netbox.add("192.0.2.11/24", { tenant: "lab", status: "active", description: "by hand" });
    await broker.giveBack(source, "192.0.2.10");
    await broker.giveBack(source, "192.0.2.11");
    await broker.giveBack(source, "192.0.2.10");
    await broker.giveBack(source, "192.0.2.99");
    assert.deepEqual(
      ["192.0.2.10", "192.0.2.11"].map((
        a,
      ) => [netbox.find(a)?.status, netbox.find(a)?.description]),
      [["reserved", ""], ["reserved", "by hand"]],
    );
    assert.equal(netbox.requests.filter((r) => r.method === "PATCH").length, 2);
  });
});

Deno.test("broker: a sweep reclaims, reports missing, and gives back only this group's strays", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.add("192.0.2.10/24", {
      tenant: "lab",
      status: "active",
      description: "purelb:uid-1 ns/a",
    });
    netbox.add("192.0.2.11/24", { tenant: "lab", status: "reserved" });
    netbox.add("192.0.2.12/24", {
      tenant: "lab",
      status: "active",
      description: "purelb:uid-1 ns/gone",
    });
    netbox.add("192.0.2.13/24", {
      tenant: "lab",
      status: "active",
      description: "purelb:uid-2 ns/x",
    });
    netbox.add("192.0.2.14/24", { tenant: "lab", status: "active", description: "router" });
    const held = new Map([["192.0.2.10", "ns/a"], ["192.0.2.11", "ns/b"], ["192.0.2.50", "ns/c"]]);
    const sweep = await broker.sweep(source, "uid-1", () => held);
    assert.deepEqual(sweep.reclaimed, ["192.0.2.11"]);
    assert.deepEqual(sweep.missing, ["192.0.2.50"]);
    assert.deepEqual(sweep.returned, ["192.0.2.12"]);
    assert.deepEqual(
      ["192.0.2.10", "192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14"].map((a) =>
        netbox.find(a)?.status
      ),
      ["active", "active", "reserved", "active", "active"],
    );
    assert.equal(netbox.find("192.0.2.11")?.description, "purelb:uid-1 ns/b");
  });
});

Deno.test("broker: a sweep never gives back an address taken but not yet settled", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.add("192.0.2.10/24", { tenant: "lab", status: "reserved" });
    const taken = await broker.take(source, ["IPv4"], "SingleStack", marker("ns/a"));
    const before = await broker.sweep(source, "uid-1", () => new Map());
    assert.deepEqual(before.returned, [], "in flight: left alone");
    broker.settle(taken.offer);
    const after = await broker.sweep(source, "uid-1", () => new Map());
    assert.deepEqual(after.returned, ["192.0.2.10"], "settled and held by nobody: given back");
  });
});

Deno.test("broker: concurrent takes go in conditional bulk PATCHes; after a 412 the batch is read again and retried", async () => {
  await withBroker(async (netbox, broker, source) => {
    netbox.addRange("192.0.2.10/24", 12, { tenant: "lab", status: "reserved" });
    // Takes arriving together are gathered into bulk PATCHes (in up to two lanes).
    const takes = await Promise.all(
      Array.from(
        { length: 5 },
        (_, i) => broker.take(source, ["IPv4"], "SingleStack", marker(`ns/a${i}`)),
      ),
    );
    const bulk = netbox.requests.filter((r) =>
      r.method === "PATCH" && r.path === "/api/ipam/ip-addresses/"
    );
    const sizes = bulk.map((r) => Array.isArray(r.body) ? r.body.length : 0);
    assert.deepEqual(sizes.filter((n) => n > 1).sort(), [2, 3], `bulk PATCH sizes: ${sizes}`);
    const singles = netbox.requests.filter((r) =>
      r.method === "PATCH" && r.path !== "/api/ipam/ip-addresses/"
    );
    assert.equal(singles.length, 0, "no single PATCH");
    assert.ok(bulk.every((r) => r.ifMatch !== undefined), "bulk PATCHes carry If-Match");
    const first = takes.map((t) => t.offer.addresses[0]?.address);
    assert.equal(new Set(first).size, 5);

    // Someone changes a candidate: the bulk PATCH gets 412, the batch is read again in one
    // list and retried in bulk.
    for (const record of netbox.records()) {
      if (record.status === "reserved") record.description = "edited";
    }
    const more = await Promise.all(
      Array.from(
        { length: 4 },
        (_, i) => broker.take(source, ["IPv4"], "SingleStack", marker(`ns/b${i}`)),
      ),
    );
    const all = [...first, ...more.map((t) => t.offer.addresses[0]?.address)];
    assert.equal(new Set(all).size, 9, `distinct: ${all}`);
    assert.ok(
      netbox.requests.some((r) => r.method === "GET" && r.query.id !== undefined),
      "the batch was read again by id after the 412",
    );
    assert.equal(
      netbox.requests.filter((r) => r.method === "PATCH" && r.path !== "/api/ipam/ip-addresses/")
        .length,
      0,
      "after a 412 the batch is read again and retried in bulk, not one by one",
    );
    for (const record of netbox.records()) {
      if (record.status === "active") assert.match(record.description, /^purelb:uid-1 ns\/[ab]\d$/);
    }
    // Give-backs of what we wrote last go in bulk too.
    await Promise.all(all.map((a) => broker.giveBack(source, a ?? "")));
    assert.ok(netbox.records().every((r) => r.status === "reserved"));
  });
});
