/**
 * The difference between the addresses a host has and the addresses it should have, as a
 * list of changes, and how those changes are written as `ip -batch` lines. Pure.
 *
 * @module
 */
import { canonicalAddress, type IpFamily, tryParseAddress } from "../ipam/mod.ts";
import type { LinkAddress, NetworkState } from "./state.ts";

/** An address that must be present on an interface. */
export interface AddressAssignment {
  /** The interface to carry the address. */
  readonly interfaceName: string;
  /** The address (any valid text form; compared canonically). */
  readonly address: string;
  /** Its prefix length. */
  readonly prefixLength: number;
  /** IPv6: add without duplicate address detection, usable at once (ignored for IPv4). */
  readonly noDad?: boolean;
}

/**
 * An address that exists on an interface, as offered to {@link DesiredAddresses.isOwned}.
 *
 * @example
 * ```ts
 * const existing: ExistingAddress = {
 *   interfaceName: "eth0", family: "IPv4", address: "192.0.2.50", prefixLength: 24,
 * };
 * ```
 */
export interface ExistingAddress {
  /** The interface that carries it. */
  readonly interfaceName: string;
  /** IPv4 or IPv6. */
  readonly family: IpFamily;
  /** Canonical address text. */
  readonly address: string;
  /** Its prefix length. */
  readonly prefixLength: number;
}

/**
 * What a host should have: the assignments, and which existing addresses are ours to remove
 * when no assignment asks for them (e.g. everything on the dummy interface, and addresses
 * inside a configured pool elsewhere). Addresses not owned are never touched.
 *
 * @example
 * ```ts
 * const desired: DesiredAddresses = {
 *   assignments: [{ interfaceName: "kube-lb0", address: "192.0.2.50", prefixLength: 32 }],
 *   isOwned: (existing) => existing.interfaceName === "kube-lb0" && existing.family === "IPv4",
 * };
 * ```
 */
export interface DesiredAddresses {
  /** Addresses that must be present. */
  readonly assignments: readonly AddressAssignment[];
  /** True for an existing address that may be removed when not assigned. */
  readonly isOwned: (existing: ExistingAddress) => boolean;
}

/**
 * One change to apply with `ip address add|del`.
 *
 * @example
 * ```ts
 * const change: AddressChange = {
 *   kind: "add", interfaceName: "kube-lb0", family: "IPv4", address: "192.0.2.50",
 *   prefixLength: 32, noDad: false,
 * };
 * ```
 */
export type AddressChange =
  | {
    readonly kind: "add";
    readonly interfaceName: string;
    readonly family: IpFamily;
    readonly address: string;
    readonly prefixLength: number;
    readonly noDad: boolean;
  }
  | {
    readonly kind: "delete";
    readonly interfaceName: string;
    readonly family: IpFamily;
    readonly address: string;
    readonly prefixLength: number;
  };

/**
 * True when applying `change` can remove addresses it does not name: deleting an IPv4 address
 * whose prefix is shorter than /32 makes the kernel drop the secondary addresses of its subnet
 * when it was the primary. Other changes leave the rest of the interface as it was.
 *
 * @example
 * ```ts
 * const change = { kind: "delete", interfaceName: "eth0", family: "IPv4", address: "192.0.2.50",
 *   prefixLength: 24 } as const;
 * mayRemoveOthers(change); // true
 * mayRemoveOthers({ ...change, prefixLength: 32 }); // false
 * ```
 */
export function mayRemoveOthers(change: AddressChange): boolean {
  return change.kind === "delete" && change.family === "IPv4" && change.prefixLength < 32;
}

/**
 * Thrown for an assignment or change that cannot be written safely as an `ip` command: an
 * invalid address, prefix length or interface name.
 *
 * @example
 * ```ts
 * try { batchLine({ kind: "delete", interfaceName: "a b", family: "IPv4", address: "192.0.2.1", prefixLength: 32 }); }
 * catch (e) { if (e instanceof InvalidChangeError) console.log(e.message); }
 * ```
 */
export class InvalidChangeError extends Error {
  /** Builds the error; the message says which value is wrong. */
  constructor(message: string) {
    super(message);
    this.name = "InvalidChangeError";
  }
}

// Linux interface names: 1 to 15 bytes, no whitespace, no slash, no colon (alias syntax).
const INTERFACE_NAME = /^[^\s/:]{1,15}$/;

function assertInterfaceName(name: string): void {
  if (!INTERFACE_NAME.test(name) || name === "." || name === "..") {
    throw new InvalidChangeError(`"${name}" is not a valid interface name`);
  }
}

function key(interfaceName: string, address: string, prefixLength: number): string {
  return `${interfaceName} ${address}/${prefixLength}`;
}

/**
 * The changes that turn `current` into `desired`: deletions first (owned addresses of global
 * scope that no assignment asks for, including an assigned address with another prefix
 * length; link-local and host addresses are never offered to `isOwned`), then
 * additions (assignments not present with exactly that interface, address and prefix length).
 * Each list is in a stable order. Throws {@link InvalidChangeError} for a bad assignment.
 *
 * @example
 * ```ts
 * const current = { links: [], defaultRoutes: [] };
 * planChanges(current, {
 *   assignments: [{ interfaceName: "kube-lb0", address: "192.0.2.50", prefixLength: 32 }],
 *   isOwned: () => false,
 * }); // [{ kind: "add", interfaceName: "kube-lb0", address: "192.0.2.50", ... }]
 * ```
 */
export function planChanges(
  current: NetworkState,
  desired: DesiredAddresses,
): readonly AddressChange[] {
  const wanted = new Map<string, AddressChange & { readonly kind: "add" }>();
  for (const assignment of desired.assignments) {
    const add = toAddChange(assignment);
    const existing = wanted.get(key(add.interfaceName, add.address, add.prefixLength));
    if (existing === undefined || (add.noDad && !existing.noDad)) {
      wanted.set(key(add.interfaceName, add.address, add.prefixLength), add);
    }
  }
  const present = new Set<string>();
  const deletes: AddressChange[] = [];
  for (const link of current.links) {
    for (const address of link.addresses) {
      const addressKey = key(link.name, address.local, address.prefixLength);
      present.add(addressKey);
      if (wanted.has(addressKey)) continue;
      // Link-local and host-scoped addresses (fe80::/10, loopback) are the kernel's, never ours.
      if (address.scope !== "global") continue;
      if (desired.isOwned(toExisting(link.name, address))) {
        deletes.push({
          kind: "delete",
          interfaceName: link.name,
          family: address.family,
          address: address.local,
          prefixLength: address.prefixLength,
        });
      }
    }
  }
  const adds = [...wanted.entries()]
    .filter(([addressKey]) => !present.has(addressKey))
    .map(([, add]) => add);
  return [...deletes.sort(compareChanges), ...adds.sort(compareChanges)];
}

function toExisting(interfaceName: string, address: LinkAddress): ExistingAddress {
  return {
    interfaceName,
    family: address.family,
    address: address.local,
    prefixLength: address.prefixLength,
  };
}

function compareChanges(left: AddressChange, right: AddressChange): number {
  return compareText(left.interfaceName, right.interfaceName) ||
    compareText(left.family, right.family) ||
    compareText(left.address, right.address) ||
    left.prefixLength - right.prefixLength;
}

function compareText(left: string, right: string): number {
  return left < right ? -1 : left > right ? 1 : 0;
}

function toAddChange(assignment: AddressAssignment): AddressChange & { readonly kind: "add" } {
  assertInterfaceName(assignment.interfaceName);
  const parsed = tryParseAddress(assignment.address);
  const address = canonicalAddress(assignment.address);
  if (parsed === undefined || address === undefined) {
    throw new InvalidChangeError(`"${assignment.address}" is not an IP address`);
  }
  const bits = parsed.family === "IPv4" ? 32 : 128;
  const { prefixLength } = assignment;
  if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > bits) {
    throw new InvalidChangeError(
      `prefix length ${prefixLength} of ${address} is not valid for ${parsed.family}`,
    );
  }
  return {
    kind: "add",
    interfaceName: assignment.interfaceName,
    family: parsed.family,
    address,
    prefixLength,
    noDad: parsed.family === "IPv6" && assignment.noDad === true,
  };
}

/**
 * The `ip -batch` line of a change, e.g. `address add 192.0.2.50/32 dev kube-lb0`. Validates
 * every value, so no change can smuggle a second command into the batch.
 *
 * @example
 * ```ts
 * batchLine({ kind: "add", interfaceName: "eth0", family: "IPv6", address: "2001:db8::5",
 *   prefixLength: 64, noDad: true }); // "address add 2001:db8::5/64 dev eth0 nodad"
 * ```
 */
export function batchLine(change: AddressChange): string {
  const add = toAddChange({
    interfaceName: change.interfaceName,
    address: change.address,
    prefixLength: change.prefixLength,
    noDad: change.kind === "add" && change.noDad,
  });
  if (add.family !== change.family) {
    throw new InvalidChangeError(`${change.address} is not an ${change.family} address`);
  }
  const verb = change.kind === "add" ? "add" : "del";
  const target = `${add.address}/${add.prefixLength} dev ${add.interfaceName}`;
  return `address ${verb} ${target}${add.noDad ? " nodad" : ""}`;
}

/**
 * The error messages of a `ip -force -batch -` run by line number (1-based). `ip` prints a
 * failed line's message(s), then `Command failed -:N`.
 *
 * @example
 * ```ts
 * parseBatchErrors("Error: ipv4: Address not found.\nCommand failed -:3\n");
 * // Map { 3 => "Error: ipv4: Address not found." }
 * ```
 */
export function parseBatchErrors(stderr: string): ReadonlyMap<number, string> {
  const errors = new Map<number, string>();
  let pending: string[] = [];
  for (const line of stderr.split("\n")) {
    const failed = /^Command failed .*:(\d+)\s*$/.exec(line);
    if (failed) {
      errors.set(Number(failed[1]), pending.join("\n"));
      pending = [];
    } else if (line.trim() !== "") {
      pending.push(line.trim());
    }
  }
  return errors;
}

/**
 * Whether a failed line's message means the change was not needed: adding an address that is
 * already there, or deleting one that is already gone.
 *
 * @example
 * ```ts
 * isAlreadyDone("delete", "Error: ipv4: Address not found."); // true
 * isAlreadyDone("add", "Cannot find device \"nope\""); // false
 * ```
 */
export function isAlreadyDone(kind: AddressChange["kind"], message: string): boolean {
  return kind === "add"
    ? /already assigned|file exists/i.test(message)
    : /address not found|cannot assign requested address/i.test(message);
}
