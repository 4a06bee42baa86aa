/**
 * IP addresses as plain numbers: parsing (with ipaddr.js), canonical text and bigint values.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

/** An address family, spelled as in a Kubernetes Service's `spec.ipFamilies`. */
export type IpFamily = "IPv4" | "IPv6";

/** Both families, IPv4 first. */
export const IP_FAMILIES: readonly IpFamily[] = ["IPv4", "IPv6"];

/** One IP address: its family and its value as an unsigned integer. */
export interface IpAddress {
  /** IPv4 or IPv6. */
  readonly family: IpFamily;
  /** The address as an unsigned integer (32 or 128 bits). */
  readonly value: bigint;
}

/**
 * Thrown when a text is not an IP address.
 *
 * @example
 * ```ts
 * try { parseAddress("nope"); } catch (e) { if (e instanceof AddressParseError) console.log(e.text); }
 * ```
 */
export class AddressParseError extends Error {
  /** The text that failed to parse. */
  readonly text: string;

  /** Builds the error for `text`; the message names the text. */
  constructor(text: string) {
    super(`"${text}" is not an IP address`);
    this.name = "AddressParseError";
    this.text = text;
  }
}

/**
 * Number of bits in an address of the family.
 *
 * @example
 * ```ts
 * addressBits("IPv6"); // 128
 * ```
 */
export function addressBits(family: IpFamily): 32 | 128 {
  return family === "IPv4" ? 32 : 128;
}

/**
 * The largest address value of the family (all bits set).
 *
 * @example
 * ```ts
 * maxAddressValue("IPv4"); // 4294967295n
 * ```
 */
export function maxAddressValue(family: IpFamily): bigint {
  return (1n << BigInt(addressBits(family))) - 1n;
}

/**
 * Parses an IPv4 address in dotted decimal (four parts, no leading zeros) or an IPv6 address
 * (without a zone). Returns `undefined` for anything else; surrounding whitespace is not trimmed.
 *
 * @example
 * ```ts
 * tryParseAddress("2001:db8::1")?.family; // "IPv6"
 * tryParseAddress("10.1"); // undefined: shorthand forms are not accepted
 * ```
 */
export function tryParseAddress(text: string): IpAddress | undefined {
  const known = parsedTexts.get(text);
  if (known !== undefined) return known ?? undefined;
  const parsed = parseUncached(text);
  if (parsedTexts.size >= PARSED_TEXTS_LIMIT) parsedTexts.clear();
  parsedTexts.set(text, parsed ?? null);
  return parsed;
}

/**
 * Texts parsed lately (`null`: not an address). The programs parse the same few thousand
 * addresses (Services, interfaces) on every decision; ipaddr.js's IPv6 parser was a third of
 * the agent's CPU time before this cache. Results are immutable, so sharing them is safe.
 */
const parsedTexts = new Map<string, IpAddress | null>();
const PARSED_TEXTS_LIMIT = 8_192;

function parseUncached(text: string): IpAddress | undefined {
  // ipaddr.js validates by throwing and catching, which is slow; a colon rules IPv4 out cheaply.
  const maybeIPv6 = text.includes(":");
  if (!maybeIPv6 && ipaddr.IPv4.isValidFourPartDecimal(text)) {
    let value = 0n;
    for (const octet of ipaddr.IPv4.parse(text).octets) value = (value << 8n) | BigInt(octet);
    return { family: "IPv4", value };
  }
  if (maybeIPv6 && !text.includes("%") && ipaddr.IPv6.isValid(text)) {
    let value = 0n;
    for (const part of ipaddr.IPv6.parse(text).parts) value = (value << 16n) | BigInt(part);
    return { family: "IPv6", value };
  }
  return undefined;
}

/**
 * Parses an address like {@link tryParseAddress}, throwing {@link AddressParseError} on failure.
 *
 * @example
 * ```ts
 * parseAddress("192.0.2.5").value; // 3221225989n
 * ```
 */
export function parseAddress(text: string): IpAddress {
  const address = tryParseAddress(text);
  if (address === undefined) throw new AddressParseError(text);
  return address;
}

/**
 * Canonical text of an address value: dotted decimal for IPv4, the compressed lowercase form
 * of ipaddr.js `toString()` for IPv6.
 *
 * @example
 * ```ts
 * formatAddress({ family: "IPv6", value: 0x20010db8000000000000000000000001n }); // "2001:db8::1"
 * ```
 */
export function formatAddress(address: IpAddress): string {
  const { family, value } = address;
  if (value < 0n || value > maxAddressValue(family)) {
    throw new RangeError(`${value} is not a valid ${family} address value`);
  }
  if (family === "IPv4") {
    const n = Number(value);
    return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
  }
  const parts: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) parts.push(Number((value >> shift) & 0xffffn));
  return new ipaddr.IPv6(parts).toString();
}

/**
 * Canonical text of an address text, or `undefined` when it is not an address.
 *
 * @example
 * ```ts
 * canonicalAddress("2001:DB8:0::1"); // "2001:db8::1"
 * ```
 */
export function canonicalAddress(text: string): string | undefined {
  const known = canonicalTexts.get(text);
  if (known !== undefined) return known ?? undefined;
  const address = tryParseAddress(text);
  const canonical = address === undefined ? undefined : formatAddress(address);
  if (canonicalTexts.size >= PARSED_TEXTS_LIMIT) canonicalTexts.clear();
  canonicalTexts.set(text, canonical ?? null);
  return canonical;
}

/** Canonical forms found lately (`null`: not an address); see `parsedTexts`. */
const canonicalTexts = new Map<string, string | null>();
