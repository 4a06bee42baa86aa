/**
 * Reading and changing a host's addresses with iproute2: state in at most three `ip -json`
 * calls, every address change of a reconcile in one `ip -force -batch -` process, and the
 * dummy interface for virtual addresses.
 *
 * @module
 */
import { IpCommand, type IpCommandOptions } from "./command.ts";
import { CommandError } from "./process.ts";
import { type AddressChange, batchLine, isAlreadyDone, parseBatchErrors } from "./plan.ts";
import { type Link, type NetworkState, parseAddressShow, parseDefaultRoutes } from "./state.ts";

/**
 * A change that `ip` refused, with the batch line and `ip`'s message.
 *
 * @example
 * ```ts
 * const failure: FailedChange = {
 *   change: { kind: "delete", interfaceName: "nope", family: "IPv4", address: "192.0.2.5", prefixLength: 32 },
 *   line: 1, command: "address del 192.0.2.5/32 dev nope", message: 'Cannot find device "nope"',
 * };
 * ```
 */
export interface FailedChange {
  /** The change. */
  readonly change: AddressChange;
  /** Its line number in the batch (1-based). */
  readonly line: number;
  /** The batch line. */
  readonly command: string;
  /** What `ip` wrote to stderr for that line. */
  readonly message: string;
}

/** The outcome of {@link Netlink.applyChanges}. */
export interface ApplyResult {
  /** Changes that took effect. */
  readonly applied: readonly AddressChange[];
  /** Changes that were not needed (address already there, or already gone). */
  readonly alreadyDone: readonly AddressChange[];
  /** Changes that failed; the others were still attempted. */
  readonly failed: readonly FailedChange[];
}

/**
 * Thrown when the dummy interface for virtual addresses cannot be created because the kernel
 * has no `dummy` link type (module not loaded or not built).
 *
 * @example
 * ```ts
 * const netlink = await Netlink.create();
 * try { await netlink.ensureDummyInterface("kube-lb0"); } catch (e) {
 *   if (e instanceof DummyInterfaceUnsupportedError) console.log(e.interfaceName);
 * }
 * ```
 */
export class DummyInterfaceUnsupportedError extends Error {
  /** The interface that was to be created. */
  readonly interfaceName: string;
  /** The `ip` failure. */
  override readonly cause: CommandError;

  /** Builds the error; the message says what to do instead. */
  constructor(interfaceName: string, cause: CommandError) {
    super(
      `cannot create ${interfaceName}: this kernel has no "dummy" link type (${cause.stderr}); ` +
        `load the dummy module (modprobe dummy) or create an interface named ${interfaceName} ` +
        `beforehand (any type): it is reused`,
    );
    this.name = "DummyInterfaceUnsupportedError";
    this.interfaceName = interfaceName;
    this.cause = cause;
  }
}

/** What {@link Netlink.ensureDummyInterface} did. */
export type DummyInterfaceOutcome =
  | { readonly kind: "created" }
  | { readonly kind: "reused"; readonly linkType: string; readonly broughtUp: boolean };

const INTERFACE_NAME = /^[^\s/:]{1,15}$/;

/**
 * The host's addresses through iproute2. Every process goes through one {@link IpCommand},
 * whose `processesSpawned` counts them: {@link Netlink.readState} spawns 3,
 * {@link Netlink.applyChanges} 1 (0 when there is nothing to do).
 *
 * @example
 * ```ts
 * const netlink = await Netlink.create({ netns: "node-a" });
 * const state = await netlink.readState();
 * const result = await netlink.applyChanges([
 *   { kind: "add", interfaceName: "kube-lb0", family: "IPv4", address: "192.0.2.50", prefixLength: 32, noDad: false },
 * ]);
 * result.failed.length; // 0
 * ```
 */
export class Netlink {
  /** The runner every `ip` process goes through. */
  readonly ip: IpCommand;

  /** Wraps an existing runner. */
  constructor(ip: IpCommand) {
    this.ip = ip;
  }

  /** Resolves `ip` and returns a Netlink acting in `options.netns` (or the current namespace). */
  static async create(options: IpCommandOptions = {}): Promise<Netlink> {
    return new Netlink(await IpCommand.create(options));
  }

  /**
   * Links with addresses and flags (`ip -json address show`) and default routes
   * (`ip -json route show default`, `ip -6 -json route show default`): three processes,
   * started together. iproute2 cannot list IPv6 routes inside an IPv4 batch, hence three.
   */
  async readState(): Promise<NetworkState> {
    const [addresses, routes4, routes6] = await Promise.all([
      this.ip.run(["-json", "address", "show"]),
      this.ip.run(["-json", "route", "show", "default"]),
      this.ip.run(["-6", "-json", "route", "show", "default"]),
    ]);
    return {
      links: parseAddressShow(addresses.stdout),
      defaultRoutes: [
        ...parseDefaultRoutes(routes4.stdout, "IPv4"),
        ...parseDefaultRoutes(routes6.stdout, "IPv6"),
      ],
    };
  }

  /**
   * The links and their addresses alone (1 process): what changes when addresses are applied,
   * while default routes stay as {@link Netlink.readState} read them.
   */
  async readLinks(): Promise<NetworkState["links"]> {
    return parseAddressShow((await this.ip.run(["-json", "address", "show"])).stdout);
  }

  /**
   * Applies every change in one `ip -force -batch -` process (none when `changes` is empty).
   * A failing line does not stop the others; failures are reported per change with `ip`'s
   * message, and adding a present / deleting an absent address counts as already done.
   * Throws {@link CommandError} only when `ip` itself failed (could not run, timed out, or
   * exited with an error that names no line).
   */
  async applyChanges(changes: readonly AddressChange[]): Promise<ApplyResult> {
    if (changes.length === 0) return { applied: [], alreadyDone: [], failed: [] };
    const lines = changes.map(batchLine);
    const args = ["-force", "-batch", "-"];
    const output = await this.ip.runUnchecked(args, `${lines.join("\n")}\n`);
    const errors = parseBatchErrors(output.stderr);
    if (output.exitCode !== 0 && errors.size === 0) {
      throw new CommandError(this.ip.commandLine(args), output.exitCode, output.stderr);
    }
    const applied: AddressChange[] = [];
    const alreadyDone: AddressChange[] = [];
    const failed: FailedChange[] = [];
    changes.forEach((change, index) => {
      const message = errors.get(index + 1);
      if (message === undefined) applied.push(change);
      else if (isAlreadyDone(change.kind, message)) alreadyDone.push(change);
      else failed.push({ change, line: index + 1, command: lines[index] ?? "", message });
    });
    return { applied, alreadyDone, failed };
  }

  /**
   * Makes sure an interface called `name` exists and is up: an existing one is reused
   * whatever its type; otherwise a `dummy` link is created. Throws
   * {@link DummyInterfaceUnsupportedError} when the kernel has no dummy link type.
   */
  async ensureDummyInterface(name: string): Promise<DummyInterfaceOutcome> {
    if (!INTERFACE_NAME.test(name)) throw new RangeError(`"${name}" is not an interface name`);
    const shown = await this.ip.runUnchecked(["-json", "address", "show", "dev", name]);
    if (shown.exitCode === 0) {
      const link: Link | undefined = parseAddressShow(shown.stdout)[0];
      if (link === undefined) {
        throw new CommandError(
          this.ip.commandLine(["-json", "address", "show", "dev", name]),
          0,
          "",
          { problem: "listed no link" },
        );
      }
      if (!link.up) await this.ip.run(["link", "set", "dev", name, "up"]);
      return { kind: "reused", linkType: link.linkType, broughtUp: !link.up };
    }
    if (!/does not exist|cannot find device/i.test(shown.stderr)) {
      throw new CommandError(
        this.ip.commandLine(["-json", "address", "show", "dev", name]),
        shown.exitCode,
        shown.stderr,
      );
    }
    try {
      await this.ip.run(["link", "add", name, "type", "dummy"]);
    } catch (error) {
      // Created by someone else in the meantime: reuse it.
      if (error instanceof CommandError && /file exists/i.test(error.stderr)) {
        return await this.ensureDummyInterface(name);
      }
      if (
        error instanceof CommandError &&
        /unknown device type|not supported|no such device/i.test(error.stderr)
      ) {
        throw new DummyInterfaceUnsupportedError(name, error);
      }
      throw error;
    }
    await this.ip.run(["link", "set", "dev", name, "up"]);
    return { kind: "created" };
  }
}
