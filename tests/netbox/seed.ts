/**
 * Seeding and reading a real NetBox (tests/netbox/real.ts) through its REST API, for tests:
 * one scratch space per test (tenants and VRFs named after it, so that no two tests or runs
 * share an address), reserved addresses in bulk, and the records as NetBox holds them.
 *
 * @module
 */

import { addressBits, formatAddress, tryParseAddress } from "../../ipam/address.ts";
import { isRecord } from "../../json/mod.ts";
import type { RealNetboxAccess } from "./real.ts";

/** One IP address record as a test looks at it. */
export interface SeenRecord {
  readonly id: number;
  /** Host address, canonical, without the prefix length. */
  readonly address: string;
  readonly status: string;
  readonly description: string;
  readonly tenant: string | null;
  readonly vrf: string | null;
}

/** Raised when NetBox refuses a seeding call; quotes the answer. */
export class NetboxSeedError extends Error {
  override name = "NetboxSeedError";
}

/**
 * A test's scratch space in a real NetBox. Everything it created goes with
 * {@linkcode NetboxScratch.cleanup}.
 *
 * @example
 * ```ts
 * import type { RealNetboxAccess } from "./real.ts";
 * declare const access: RealNetboxAccess;
 *
 * const scratch = new NetboxScratch(access, "race");
 * const tenant = await scratch.tenant("lab");
 * await scratch.addRange("192.0.2.10/24", 5, { tenant, status: "reserved" });
 * await scratch.cleanup();
 * ```
 */
export class NetboxScratch {
  readonly access: RealNetboxAccess;
  /** Prefix of every slug and name this scratch space creates. */
  readonly prefix: string;
  readonly #tenants: { id: number; slug: string }[] = [];
  readonly #vrfs: { id: number; name: string }[] = [];

  constructor(access: RealNetboxAccess, label: string) {
    this.access = access;
    this.prefix = `t-${label}-${crypto.randomUUID().slice(0, 8)}`;
  }

  /** Creates tenant `<prefix>-<name>`; returns its slug. */
  async tenant(name: string): Promise<string> {
    const slug = `${this.prefix}-${name}`;
    const created = await this.call("POST", "api/tenancy/tenants/", { name: slug, slug });
    this.#tenants.push({ id: idOf(created), slug });
    return slug;
  }

  /** Creates VRF `<prefix>-<name>` (addresses are unique per VRF); returns its id. */
  async vrf(name: string): Promise<number> {
    const full = `${this.prefix}-${name}`;
    const created = await this.call("POST", "api/ipam/vrfs/", { name: full });
    const id = idOf(created);
    this.#vrfs.push({ id, name: full });
    return id;
  }

  /** Adds `count` consecutive addresses from `first` ("192.0.2.10/24") in one bulk request. */
  async addRange(
    first: string,
    count: number,
    options: {
      readonly tenant: string;
      readonly status: string;
      readonly vrf?: number;
      readonly description?: string;
    },
  ): Promise<void> {
    const [hostText = "", lengthText] = first.split("/");
    const host = tryParseAddress(hostText);
    if (host === undefined) throw new NetboxSeedError(`${first} is not an address`);
    const length = lengthText ?? String(addressBits(host.family));
    const tenant = this.#tenants.find((t) => t.slug === options.tenant);
    if (tenant === undefined) throw new NetboxSeedError(`no tenant ${options.tenant} here`);
    const body = Array.from({ length: count }, (_, i) => ({
      address: `${formatAddress({ family: host.family, value: host.value + BigInt(i) })}/${length}`,
      status: options.status,
      tenant: tenant.id,
      description: options.description ?? "",
      ...(options.vrf === undefined ? {} : { vrf: options.vrf }),
    }));
    for (let i = 0; i < body.length; i += 250) {
      await this.call("POST", "api/ipam/ip-addresses/", body.slice(i, i + 250));
    }
  }

  /** Every address record of `tenant`, in NetBox's order. */
  async records(tenant: string): Promise<SeenRecord[]> {
    const records: SeenRecord[] = [];
    let url: string | null = `api/ipam/ip-addresses/?tenant=${tenant}&limit=1000`;
    while (url !== null) {
      const page = await this.call("GET", url);
      if (!isRecord(page) || !Array.isArray(page.results)) {
        throw new NetboxSeedError(`not a list: ${JSON.stringify(page).slice(0, 200)}`);
      }
      records.push(...page.results.map(seenOf));
      url = typeof page.next === "string" ? page.next : null;
    }
    return records;
  }

  /** Records of `tenant` by host address. */
  async byAddress(tenant: string): Promise<Map<string, SeenRecord>> {
    return new Map((await this.records(tenant)).map((r) => [r.address, r]));
  }

  /** A PATCH of one record, conditional on `ifMatch` if given; resolves to the HTTP status. */
  async patch(id: number, body: unknown, ifMatch?: string): Promise<number> {
    const response = await fetch(`${this.access.url}api/ipam/ip-addresses/${id}/`, {
      method: "PATCH",
      headers: {
        ...this.#headers(),
        "Content-Type": "application/json",
        ...(ifMatch === undefined ? {} : { "If-Match": ifMatch }),
      },
      body: JSON.stringify(body),
    });
    await response.body?.cancel();
    return response.status;
  }

  /** One record with its ETag. */
  async get(id: number): Promise<{ readonly record: SeenRecord; readonly etag: string }> {
    const response = await fetch(`${this.access.url}api/ipam/ip-addresses/${id}/`, {
      headers: this.#headers(),
    });
    const body: unknown = await response.json();
    if (response.status !== 200) {
      throw new NetboxSeedError(`GET ${id}: ${response.status} ${JSON.stringify(body)}`);
    }
    return { record: seenOf(body), etag: response.headers.get("etag") ?? "" };
  }

  /** Deletes every address of the scratch tenants, then the tenants and VRFs. Best effort. */
  async cleanup(): Promise<void> {
    for (const { slug } of this.#tenants) {
      const ids = (await this.records(slug).catch(() => [])).map((r) => ({ id: r.id }));
      for (let i = 0; i < ids.length; i += 250) {
        await this.call("DELETE", "api/ipam/ip-addresses/", ids.slice(i, i + 250)).catch(() => {});
      }
    }
    for (const { id } of this.#tenants) {
      await this.call("DELETE", `api/tenancy/tenants/${id}/`).catch(() => {});
    }
    for (const { id } of this.#vrfs) {
      await this.call("DELETE", `api/ipam/vrfs/${id}/`).catch(() => {});
    }
  }

  /** A REST call with the v1 token; the JSON answer, or a thrown error quoting it. */
  async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const url = path.startsWith("http") ? path : `${this.access.url}${path}`;
    const response = await fetch(url, {
      method,
      headers: {
        ...this.#headers(),
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await response.text();
    if (response.status >= 300) {
      throw new NetboxSeedError(`${method} ${path}: ${response.status} ${text.slice(0, 500)}`);
    }
    return text === "" ? undefined : JSON.parse(text);
  }

  #headers(): Record<string, string> {
    return { Authorization: `Token ${this.access.tokenV1}`, Accept: "application/json" };
  }
}

function idOf(value: unknown): number {
  if (isRecord(value) && typeof value.id === "number") return value.id;
  throw new NetboxSeedError(`no id in ${JSON.stringify(value).slice(0, 200)}`);
}

function seenOf(value: unknown): SeenRecord {
  if (!isRecord(value)) throw new NetboxSeedError("a record is not an object");
  const status = isRecord(value.status) ? value.status.value : undefined;
  const tenant = isRecord(value.tenant) ? value.tenant.slug : null;
  const vrf = isRecord(value.vrf) ? value.vrf.name : null;
  const host = String(value.address ?? "").split("/")[0] ?? "";
  const parsed = tryParseAddress(host);
  return {
    id: idOf(value),
    address: parsed === undefined ? host : formatAddress(parsed),
    status: typeof status === "string" ? status : "",
    description: typeof value.description === "string" ? value.description : "",
    tenant: typeof tenant === "string" ? tenant : null,
    vrf: typeof vrf === "string" ? vrf : null,
  };
}
