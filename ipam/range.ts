/**
 * Address ranges and CIDRs on bigint values: parsing, containment, overlap, lazy iteration.
 *
 * @module
 */
import {
  addressBits,
  formatAddress,
  type IpAddress,
  type IpFamily,
  maxAddressValue,
  tryParseAddress,
} from "./address.ts";

/**
 * Thrown when a text is not a valid range or CIDR. The message starts with the quoted text,
 * followed by {@link RangeParseError.problem}.
 *
 * @example
 * ```ts
 * try { parseRange("10.0.0.5"); } catch (e) {
 *   if (e instanceof RangeParseError) console.log(e.message);
 *   // "10.0.0.5" is a bare address; write a range A-B or a CIDR
 * }
 * ```
 */
export class RangeParseError extends Error {
  /** The text that failed to parse, as given. */
  readonly text: string;
  /** What is wrong, without the text itself. */
  readonly problem: string;

  /** Builds the error; the message is the quoted text followed by the problem. */
  constructor(text: string, problem: string) {
    super(`"${text}" ${problem}`);
    this.name = "RangeParseError";
    this.text = text;
    this.problem = problem;
  }
}

/**
 * An inclusive range of addresses of one family, `first` to `last`.
 *
 * @example
 * ```ts
 * const range = parseRange("192.0.2.10-192.0.2.19");
 * range.size; // 10n
 * range.contains("192.0.2.12"); // true
 * ```
 */
export class AddressRange {
  /** The family of every address in the range. */
  readonly family: IpFamily;
  /** Value of the first address. */
  readonly firstValue: bigint;
  /** Value of the last address (inclusive). */
  readonly lastValue: bigint;
  /** Canonical text of the first address. */
  readonly first: string;
  /** Canonical text of the last address. */
  readonly last: string;
  /** Number of addresses in the range. */
  readonly size: bigint;

  /**
   * Builds the range `firstValue..lastValue`; throws a RangeError when the values are out of
   * order or outside the family.
   */
  constructor(family: IpFamily, firstValue: bigint, lastValue: bigint) {
    if (firstValue < 0n || lastValue > maxAddressValue(family) || firstValue > lastValue) {
      throw new RangeError(`${firstValue}..${lastValue} is not a valid ${family} range`);
    }
    this.family = family;
    this.firstValue = firstValue;
    this.lastValue = lastValue;
    this.first = formatAddress({ family, value: firstValue });
    this.last = formatAddress({ family, value: lastValue });
    this.size = lastValue - firstValue + 1n;
  }

  /**
   * Whether the address (parsed, or as text) lies in the range. Text that is not an address is
   * not contained.
   */
  contains(address: IpAddress | string): boolean {
    const parsed = typeof address === "string" ? tryParseAddress(address) : address;
    return parsed !== undefined && parsed.family === this.family &&
      parsed.value >= this.firstValue && parsed.value <= this.lastValue;
  }

  /** Whether every address of `other` lies in this range. */
  containsRange(other: AddressRange): boolean {
    return other.family === this.family && other.firstValue >= this.firstValue &&
      other.lastValue <= this.lastValue;
  }

  /** Whether the two ranges have at least one address in common. */
  overlaps(other: AddressRange): boolean {
    return other.family === this.family && other.firstValue <= this.lastValue &&
      this.firstValue <= other.lastValue;
  }

  /**
   * The addresses in ascending order, produced one at a time (an IPv6 /64 is fine to start
   * iterating, never to exhaust).
   */
  *[Symbol.iterator](): Generator<IpAddress, void, undefined> {
    for (let value = this.firstValue; value <= this.lastValue; value++) {
      yield { family: this.family, value };
    }
  }

  /** `first-last` in canonical text. */
  toString(): string {
    return `${this.first}-${this.last}`;
  }
}

/**
 * A network in CIDR notation, remembering the address as written.
 *
 * @example
 * ```ts
 * const subnet = parseCidr("192.0.2.7/24");
 * subnet.toString(); // "192.0.2.0/24"
 * subnet.network.size; // 256n
 * ```
 */
export class Cidr {
  /** The family of the network. */
  readonly family: IpFamily;
  /** The address as written before the slash (host bits may be set). */
  readonly address: IpAddress;
  /** The prefix length after the slash. */
  readonly prefixLength: number;
  /** Every address of the network, network address to broadcast address. */
  readonly network: AddressRange;

  /** Builds the CIDR `address/prefixLength`; throws a RangeError for a bad prefix length. */
  constructor(address: IpAddress, prefixLength: number) {
    const bits = addressBits(address.family);
    if (!Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > bits) {
      throw new RangeError(`prefix length ${prefixLength} is not valid for ${address.family}`);
    }
    const hostMask = (1n << BigInt(bits - prefixLength)) - 1n;
    const networkValue = address.value & ~hostMask;
    this.family = address.family;
    this.address = address;
    this.prefixLength = prefixLength;
    this.network = new AddressRange(address.family, networkValue, networkValue | hostMask);
  }

  /** Canonical text: network address, slash, prefix length. */
  toString(): string {
    return `${this.network.first}/${this.prefixLength}`;
  }
}

const PREFIX_LENGTH = /^(0|[1-9][0-9]{0,2})$/;

function describeAddressProblem(text: string): string {
  return text === "" ? "an address is missing" : `"${text}" is not an IP address`;
}

/**
 * Parses `A/N`. Surrounding whitespace is ignored; inside, none is allowed.
 * Throws {@link RangeParseError} naming the text.
 *
 * @example
 * ```ts
 * parseCidr("2001:db8::/64").prefixLength; // 64
 * ```
 */
export function parseCidr(text: string): Cidr {
  const trimmed = text.trim();
  const slash = trimmed.indexOf("/");
  if (slash < 0) {
    const problem = tryParseAddress(trimmed) === undefined
      ? "is not a CIDR; write an address, a slash and a prefix length, e.g. 192.0.2.0/24"
      : "is a bare address; write a CIDR such as 192.0.2.0/24";
    throw new RangeParseError(text, problem);
  }
  const addressText = trimmed.slice(0, slash);
  const prefixText = trimmed.slice(slash + 1);
  const address = tryParseAddress(addressText);
  if (address === undefined) {
    throw new RangeParseError(text, `is not a valid CIDR: ${describeAddressProblem(addressText)}`);
  }
  const bits = addressBits(address.family);
  if (!PREFIX_LENGTH.test(prefixText) || Number(prefixText) > bits) {
    throw new RangeParseError(
      text,
      `has prefix length "${prefixText}"; ${address.family} allows 0 to ${bits}`,
    );
  }
  return new Cidr(address, Number(prefixText));
}

/**
 * Parses a pool: a range `A-B` (whitespace around either end is ignored) or a CIDR `A/N`.
 * A CIDR whose address has host bits set starts at that address (`2001:db8::1/112` is
 * `2001:db8::1` to `2001:db8::ffff`); network and broadcast addresses are included.
 * Throws {@link RangeParseError} naming the text for a bare address, garbage, mixed families,
 * or a first address above the last.
 *
 * @example
 * ```ts
 * const range = parseRange(" 10.0.0.1 - 10.0.0.9 ");
 * range.first; // "10.0.0.1"
 * range.size; // 9n
 * parseRange("2001:db8::1/112").size; // 65535n
 * ```
 */
export function parseRange(text: string): AddressRange {
  const trimmed = text.trim();
  if (trimmed === "") {
    throw new RangeParseError(text, "is empty; write a range A-B or a CIDR");
  }
  const dash = trimmed.indexOf("-");
  if (dash < 0) {
    if (trimmed.includes("/")) {
      const cidr = parseCidr(text);
      return new AddressRange(cidr.family, cidr.address.value, cidr.network.lastValue);
    }
    const problem = tryParseAddress(trimmed) === undefined
      ? "is not a range A-B or a CIDR"
      : "is a bare address; write a range A-B or a CIDR";
    throw new RangeParseError(text, problem);
  }
  if (trimmed.indexOf("-", dash + 1) >= 0) {
    throw new RangeParseError(text, `has more than one "-"; write a range A-B or a CIDR`);
  }
  const firstText = trimmed.slice(0, dash).trim();
  const lastText = trimmed.slice(dash + 1).trim();
  const first = tryParseAddress(firstText);
  if (first === undefined) {
    throw new RangeParseError(text, `is not a valid range: ${describeAddressProblem(firstText)}`);
  }
  const last = tryParseAddress(lastText);
  if (last === undefined) {
    throw new RangeParseError(text, `is not a valid range: ${describeAddressProblem(lastText)}`);
  }
  if (first.family !== last.family) {
    throw new RangeParseError(
      text,
      `mixes families: ${firstText} is ${first.family} and ${lastText} is ${last.family}`,
    );
  }
  if (first.value > last.value) {
    throw new RangeParseError(
      text,
      `starts after it ends: ${formatAddress(first)} is above ${formatAddress(last)}`,
    );
  }
  return new AddressRange(first.family, first.value, last.value);
}
