/**
 * The network state of a host as `ip -json` reports it, parsed into typed, readonly records:
 * links with their addresses and flags, and the default routes. Pure parsing; the commands
 * that produce the JSON live in `netlink.ts`.
 *
 * @module
 */
import { canonicalAddress, type IpFamily } from "../ipam/mod.ts";
import { isRecord } from "../json/mod.ts";

/**
 * Address flags that matter for announcing (names as `ip` prints them).
 *
 * @example
 * ```ts
 * const flags: AddressFlags = {
 *   tentative: false, dadfailed: false, deprecated: false, permanent: true,
 *   noprefixroute: false, mngtmpaddr: false, nodad: true, optimistic: false,
 *   secondary: false, temporary: false,
 * };
 * ```
 */
export interface AddressFlags {
  /** IPv6: duplicate address detection still running; the address is not usable yet. */
  readonly tentative: boolean;
  /** IPv6: duplicate address detection failed. */
  readonly dadfailed: boolean;
  /** IPv6: preferred lifetime over; kept only for existing connections. */
  readonly deprecated: boolean;
  /** Configured without a lifetime (`ip` prints `dynamic` when this is false). */
  readonly permanent: boolean;
  /** No prefix route was added for the address. */
  readonly noprefixroute: boolean;
  /** IPv6: template for temporary (privacy) addresses. */
  readonly mngtmpaddr: boolean;
  /** IPv6: added without duplicate address detection. */
  readonly nodad: boolean;
  /** IPv6: optimistic duplicate address detection. */
  readonly optimistic: boolean;
  /** IPv4: a secondary address of its subnet. */
  readonly secondary: boolean;
  /** IPv6: a temporary (privacy) address. */
  readonly temporary: boolean;
}

/**
 * One address configured on a link.
 *
 * @example
 * ```ts
 * const address: LinkAddress = {
 *   family: "IPv4", local: "192.0.2.11", prefixLength: 24, scope: "global", label: "eth0",
 *   flags: { tentative: false, dadfailed: false, deprecated: false, permanent: true,
 *     noprefixroute: false, mngtmpaddr: false, nodad: false, optimistic: false,
 *     secondary: false, temporary: false },
 * };
 * ```
 */
export interface LinkAddress {
  /** IPv4 or IPv6. */
  readonly family: IpFamily;
  /** The address in canonical text (IPv6 compressed, lowercase). */
  readonly local: string;
  /** Prefix length. */
  readonly prefixLength: number;
  /** `global`, `link`, `host`, ... */
  readonly scope: string;
  /** IPv4 address label, when `ip` reports one. */
  readonly label?: string;
  /** The flags. */
  readonly flags: AddressFlags;
}

/**
 * One network interface.
 *
 * @example
 * ```ts
 * const link: Link = {
 *   index: 2, name: "eth0", up: true, lowerUp: true, mac: "02:00:00:00:00:11",
 *   linkType: "ether", flags: ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], addresses: [],
 * };
 * ```
 */
export interface Link {
  /** Interface index. */
  readonly index: number;
  /** Interface name. */
  readonly name: string;
  /** Administratively up (`UP` flag). */
  readonly up: boolean;
  /** Carrier present (`LOWER_UP` flag). */
  readonly lowerUp: boolean;
  /** Link-layer address, lowercase, or `undefined` when the link has none. */
  readonly mac: string | undefined;
  /** `ether`, `loopback`, `none`, ... */
  readonly linkType: string;
  /** Interface flags as `ip` prints them. */
  readonly flags: readonly string[];
  /** Its addresses, in the order `ip` lists them. */
  readonly addresses: readonly LinkAddress[];
}

/** A default route (one per next hop of a multipath route). */
export interface DefaultRoute {
  /** IPv4 or IPv6. */
  readonly family: IpFamily;
  /** The outgoing interface. */
  readonly interfaceName: string;
  /** The gateway, when the route has one. */
  readonly gateway?: string;
}

/**
 * Links, their addresses and the default routes, read at one moment.
 *
 * @example
 * ```ts
 * const state: NetworkState = { links: [], defaultRoutes: [] };
 * defaultRouteInterfaces(state); // []
 * ```
 */
export interface NetworkState {
  /** Every link, by index order as `ip` lists them. */
  readonly links: readonly Link[];
  /** Default routes, IPv4 first. */
  readonly defaultRoutes: readonly DefaultRoute[];
}

/**
 * Thrown when `ip -json` output does not have the expected shape.
 *
 * @example
 * ```ts
 * try { parseAddressShow("not json"); } catch (e) {
 *   if (e instanceof IpJsonError) console.log(e.message);
 * }
 * ```
 */
export class IpJsonError extends Error {
  /** Builds the error; the message says what was expected. */
  constructor(message: string) {
    super(message);
    this.name = "IpJsonError";
  }
}

type JsonObject = Readonly<Record<string, unknown>>;

function parseJsonArray(text: string, what: string): readonly unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.trim() === "" ? "[]" : text);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new IpJsonError(`${what}: output is not JSON (${reason})`);
  }
  if (!Array.isArray(parsed)) throw new IpJsonError(`${what}: expected a JSON array`);
  return parsed;
}

function stringField(object: JsonObject, field: string, what: string): string {
  const value = object[field];
  if (typeof value !== "string") throw new IpJsonError(`${what}: "${field}" is not a string`);
  return value;
}

function numberField(object: JsonObject, field: string, what: string): number {
  const value = object[field];
  if (typeof value !== "number") throw new IpJsonError(`${what}: "${field}" is not a number`);
  return value;
}

function familyOf(text: unknown): IpFamily | undefined {
  if (text === "inet") return "IPv4";
  if (text === "inet6") return "IPv6";
  return undefined;
}

function parseAddress(object: JsonObject, linkName: string): LinkAddress | undefined {
  const family = familyOf(object["family"]);
  if (family === undefined) return undefined;
  const what = `address on ${linkName}`;
  const localText = stringField(object, "local", what);
  const local = canonicalAddress(localText);
  if (local === undefined) throw new IpJsonError(`${what}: "${localText}" is not an address`);
  const flag = (name: string) => object[name] === true;
  const label = object["label"];
  return {
    family,
    local,
    prefixLength: numberField(object, "prefixlen", what),
    scope: typeof object["scope"] === "string" ? object["scope"] : "global",
    ...(typeof label === "string" ? { label } : {}),
    flags: {
      tentative: flag("tentative"),
      dadfailed: flag("dadfailed"),
      deprecated: flag("deprecated"),
      permanent: !flag("dynamic"),
      noprefixroute: flag("noprefixroute"),
      mngtmpaddr: flag("mngtmpaddr"),
      nodad: flag("nodad"),
      optimistic: flag("optimistic"),
      secondary: flag("secondary"),
      temporary: flag("temporary"),
    },
  };
}

/**
 * Parses the output of `ip -json address show` into links with their addresses. Address
 * families other than IPv4 and IPv6 are left out; an unexpected shape throws
 * {@link IpJsonError}.
 *
 * @example
 * ```ts
 * const links = parseAddressShow(
 *   '[{"ifindex":2,"ifname":"eth0","flags":["UP"],"link_type":"ether","address":"02:00:00:00:00:11",' +
 *     '"addr_info":[{"family":"inet","local":"192.0.2.11","prefixlen":24,"scope":"global"}]}]',
 * );
 * links[0]?.addresses[0]?.local; // "192.0.2.11"
 * ```
 */
export function parseAddressShow(json: string): readonly Link[] {
  return parseJsonArray(json, "ip -json address show").map((entry) => {
    if (!isRecord(entry)) throw new IpJsonError("ip -json address show: a link is not an object");
    const name = stringField(entry, "ifname", "link");
    const flags = Array.isArray(entry["flags"])
      ? entry["flags"].filter((flag): flag is string => typeof flag === "string")
      : [];
    const mac = entry["address"];
    const addrInfo = Array.isArray(entry["addr_info"]) ? entry["addr_info"] : [];
    const addresses: LinkAddress[] = [];
    for (const info of addrInfo) {
      if (!isRecord(info)) throw new IpJsonError(`address on ${name}: not an object`);
      const address = parseAddress(info, name);
      if (address !== undefined) addresses.push(address);
    }
    return {
      index: numberField(entry, "ifindex", `link ${name}`),
      name,
      up: flags.includes("UP"),
      lowerUp: flags.includes("LOWER_UP"),
      mac: typeof mac === "string" ? mac.toLowerCase() : undefined,
      linkType: typeof entry["link_type"] === "string" ? entry["link_type"] : "unknown",
      flags,
      addresses,
    };
  });
}

/**
 * Parses the output of `ip [-6] -json route show default`; a multipath route yields one
 * entry per next hop.
 *
 * @example
 * ```ts
 * parseDefaultRoutes('[{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]}]', "IPv4");
 * // [{ family: "IPv4", interfaceName: "eth0", gateway: "192.0.2.1" }]
 * ```
 */
export function parseDefaultRoutes(json: string, family: IpFamily): readonly DefaultRoute[] {
  const routes: DefaultRoute[] = [];
  const add = (hop: JsonObject) => {
    const device = hop["dev"];
    if (typeof device !== "string") return;
    const gateway = hop["gateway"];
    routes.push({
      family,
      interfaceName: device,
      ...(typeof gateway === "string" ? { gateway } : {}),
    });
  };
  for (const entry of parseJsonArray(json, "ip -json route show default")) {
    if (!isRecord(entry)) throw new IpJsonError("ip -json route show default: not an object");
    const nexthops = entry["nexthops"];
    if (Array.isArray(nexthops)) {
      for (const hop of nexthops) if (isRecord(hop)) add(hop);
    } else {
      add(entry);
    }
  }
  return routes;
}

/**
 * Names of the interfaces that carry a default route, each once, IPv4 routes first.
 *
 * @example
 * ```ts
 * defaultRouteInterfaces({ links: [], defaultRoutes: [{ family: "IPv6", interfaceName: "eth0" }] });
 * // ["eth0"]
 * ```
 */
export function defaultRouteInterfaces(state: NetworkState): readonly string[] {
  return [...new Set(state.defaultRoutes.map((route) => route.interfaceName))];
}

/**
 * Whether an interface address can define a local subnet for announcing (README "How it works"): every
 * IPv4 address; an IPv6 address unless tentative, dadfailed or deprecated (flags such as
 * mngtmpaddr or noprefixroute do not disqualify it).
 *
 * @example
 * ```ts
 * const link = parseAddressShow(
 *   '[{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet6","local":"2001:db8::1",' +
 *     '"prefixlen":64,"tentative":true}]}]',
 * )[0];
 * link && link.addresses[0] && isUsableAddress(link.addresses[0]); // false
 * ```
 */
export function isUsableAddress(address: LinkAddress): boolean {
  if (address.family === "IPv4") return true;
  const { tentative, dadfailed, deprecated } = address.flags;
  return !tentative && !dadfailed && !deprecated;
}

/**
 * The link called `name`, or `undefined`.
 *
 * @example
 * ```ts
 * findLink({ links: [], defaultRoutes: [] }, "eth0"); // undefined
 * ```
 */
export function findLink(state: NetworkState, name: string): Link | undefined {
  return state.links.find((link) => link.name === name);
}
