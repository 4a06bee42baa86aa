/**
 * The only code that runs iproute2 `ip` (and the gratuitous ARP / NA helpers). Knows nothing
 * of Kubernetes: reads links, addresses and default routes, plans the difference to the
 * wanted addresses (pure), applies it in one `ip -batch` process, and announces moved
 * addresses to the LAN.
 *
 * Processes: `readState` 3 (`ip -json address show`, `ip -json route show default`,
 * `ip -6 -json route show default`), `readLinks` 1 (the first of those), `applyChanges` 1 (0
 * when nothing changes).
 *
 * Programs run, by absolute path (for `--allow-run`): `ip` (first of {@link IP_PATHS} that
 * exists, normally /usr/sbin/ip), iputils `arping` (/usr/bin/arping) and `na6`
 * (/usr/sbin/na6, Debian package ipv6toolkit).
 *
 * @example
 * ```ts
 * import { Netlink, planChanges } from "./mod.ts";
 *
 * const netlink = await Netlink.create();
 * await netlink.ensureDummyInterface("kube-lb0");
 * const state = await netlink.readState();
 * const changes = planChanges(state, {
 *   assignments: [{ interfaceName: "kube-lb0", address: "192.0.2.50", prefixLength: 32 }],
 *   isOwned: (existing) => existing.interfaceName === "kube-lb0",
 * });
 * const result = await netlink.applyChanges(changes);
 * for (const failure of result.failed) console.error(failure.command, failure.message);
 * ```
 *
 * @module
 */
export {
  CommandError,
  ExecutableNotFoundError,
  type ProcessOptions,
  type ProcessOutput,
  resolveExecutable,
  runChecked,
  runProcess,
} from "./process.ts";
export { DEFAULT_IP_TIMEOUT_MS, IP_PATHS, IpCommand, type IpCommandOptions } from "./command.ts";
export {
  type AddressFlags,
  type DefaultRoute,
  defaultRouteInterfaces,
  findLink,
  IpJsonError,
  isUsableAddress,
  type Link,
  type LinkAddress,
  type NetworkState,
  parseAddressShow,
  parseDefaultRoutes,
} from "./state.ts";
export {
  type AddressAssignment,
  type AddressChange,
  batchLine,
  type DesiredAddresses,
  type ExistingAddress,
  InvalidChangeError,
  isAlreadyDone,
  mayRemoveOthers,
  parseBatchErrors,
  planChanges,
} from "./plan.ts";
export {
  type ApplyResult,
  type DummyInterfaceOutcome,
  DummyInterfaceUnsupportedError,
  type FailedChange,
  Netlink,
} from "./netlink.ts";
export {
  ARPING_PATHS,
  GratuitousAnnouncer,
  type GratuitousAnnouncerOptions,
  type GratuitousRequest,
  NA6_PATHS,
} from "./gratuitous.ts";
