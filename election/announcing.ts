/**
 * The `purelb.io/announcing` annotation of node Leases: which local addresses a node carries
 * now, and on which interface. The agent writes it, the allocator copies it to Services.
 *
 * @module
 */
import { canonicalAddress } from "../ipam/mod.ts";

/** A local address a node carries, and the interface it is on. */
export interface AnnouncedAddress {
  readonly interfaceName: string;
  readonly address: string;
}

/**
 * The `purelb.io/announcing` annotation text: `interface,address` entries (canonical
 * addresses), sorted by address then interface, each once, space separated; entries whose
 * address is not one, or whose interface name is empty or holds a comma or a space, are left out.
 *
 * @example
 * ```ts
 * formatAnnouncingAnnotation([
 *   { interfaceName: "eth0", address: "2001:DB8::5" },
 *   { interfaceName: "eth0", address: "192.0.2.5" },
 * ]); // "eth0,192.0.2.5 eth0,2001:db8::5"
 * ```
 */
export function formatAnnouncingAnnotation(entries: Iterable<AnnouncedAddress>): string {
  const texts = new Map<string, string>();
  for (const { interfaceName, address } of entries) {
    const canonical = canonicalAddress(address.trim());
    if (canonical === undefined || !validInterfaceName(interfaceName)) continue;
    texts.set(`${canonical} ${interfaceName}`, `${interfaceName},${canonical}`);
  }
  return [...texts.keys()].sort().map((key) => texts.get(key) ?? "").join(" ");
}

/**
 * The entries of a `purelb.io/announcing` annotation (canonical addresses; malformed entries
 * are skipped).
 *
 * @example
 * ```ts
 * parseAnnouncingAnnotation("eth0,192.0.2.5 junk eth1,2001:DB8::5");
 * // [{ interfaceName: "eth0", address: "192.0.2.5" }, { interfaceName: "eth1", address: "2001:db8::5" }]
 * ```
 */
export function parseAnnouncingAnnotation(text: string): AnnouncedAddress[] {
  const result: AnnouncedAddress[] = [];
  for (const entry of text.split(/\s+/)) {
    const comma = entry.indexOf(",");
    if (comma <= 0) continue;
    const interfaceName = entry.slice(0, comma);
    const address = canonicalAddress(entry.slice(comma + 1));
    if (address !== undefined) result.push({ interfaceName, address });
  }
  return result;
}

function validInterfaceName(name: string): boolean {
  return name !== "" && !/[\s,]/.test(name);
}
