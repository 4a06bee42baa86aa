/**
 * Which addresses belong on which interface of this node. Pure: the controller reads Services,
 * EndpointSlices, ServiceGroups, Leases and the network state, and this module decides; the
 * difference to the network is planned by `netlink.planChanges`.
 *
 * - Local address: inside the subnet of a usable address of a local interface (`localint`).
 *   Only the elected node (SHA-256 winner among the live nodes whose published subnets contain
 *   it) carries it, with that interface address's prefix length.
 * - Virtual address: every eligible node carries it on the dummy interface (`extlbint`) with the
 *   aggregation prefix of its ServiceGroup range.
 * - `externalTrafficPolicy: Local`: only nodes with a healthy endpoint are eligible; for a local
 *   address only with `purelb.io/allow-local` (otherwise announced as Cluster, with a warning).
 * - Shared addresses: an address is wanted while any of its services wants it.
 *
 * @module
 */

import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import {
  addressBits,
  canonicalAddress,
  type Cidr,
  type IpFamily,
  parseCidr,
  type PoolRange,
  tryParseAddress,
} from "../ipam/mod.ts";
import { candidatesFor, type NodeLeaseRecord, winner } from "../election/mod.ts";
import {
  type AddressAssignment,
  defaultRouteInterfaces,
  type ExistingAddress,
  isUsableAddress,
  type NetworkState,
} from "../netlink/mod.ts";
import { ALLOCATED_BY_PURELB, Annotations, SERVICE_NAME_LABEL } from "../k8s/types.ts";

/**
 * What the decision needs from one Service we allocated.
 */
export interface ServiceAnnouncement {
  /** `namespace/name`. */
  readonly key: string;
  /** Its ingress addresses, canonical text. */
  readonly addresses: readonly string[];
  /** `spec.externalTrafficPolicy: Local`. */
  readonly localTrafficPolicy: boolean;
  /** The `purelb.io/allow-local` annotation is set (not "false"). */
  readonly allowLocal: boolean;
  /** The ServiceGroup it was allocated from (`purelb.io/allocated-from`), when known. */
  readonly group?: string;
}

/**
 * How this node announces: the applying LBNodeAgent's `spec.local`, defaults filled in.
 */
export interface AnnounceSettings {
  /** `default` (interfaces of the default routes) or a regular expression on names. */
  readonly localInterface: string;
  /** The dummy interface for virtual addresses. */
  readonly dummyInterface: string;
  /** Send gratuitous ARP / unsolicited NA on taking a local address. */
  readonly sendGarp: boolean;
}

/**
 * Everything {@link decideAnnouncements} looks at.
 */
export interface AnnounceInput {
  /** This node. */
  readonly nodeName: string;
  /** The applying LBNodeAgent's settings. */
  readonly settings: AnnounceSettings;
  /** Services we allocated that have addresses. */
  readonly services: readonly ServiceAnnouncement[];
  /** Per Service key, the nodes with a healthy endpoint (see {@link healthyEndpointNodes}). */
  readonly endpointNodes: ReadonlyMap<string, ReadonlySet<string>>;
  /** Every range of every valid local ServiceGroup. */
  readonly pools: readonly PoolRange[];
  /**
   * Per Netbox ServiceGroup with an explicit `aggregation: /N`: N. The agent does not ask Netbox,
   * so a virtual Netbox address is otherwise announced as a host route.
   */
  readonly netboxAggregations?: ReadonlyMap<string, number>;
  /** This node's links, addresses and default routes. */
  readonly network: NetworkState;
  /** The live node Leases (see `liveNodes` in election/). */
  readonly liveNodes: readonly NodeLeaseRecord[];
  /** This node could not renew its Lease for a full duration: it must hold no local address. */
  readonly fenced: boolean;
}

/**
 * What this node does with one address.
 */
export type AddressDecision =
  | {
    readonly address: string;
    /** Every Service that has the address. */
    readonly services: readonly string[];
    readonly kind: "local";
    /** The local interface whose subnet holds it. */
    readonly interfaceName: string;
    readonly prefixLength: number;
    /** True when this node is the winner and not fenced. */
    readonly announce: boolean;
    /** The elected node, `undefined` when no live node can announce it. */
    readonly winner: string | undefined;
  }
  | {
    readonly address: string;
    readonly services: readonly string[];
    readonly kind: "virtual";
    /** The dummy interface. */
    readonly interfaceName: string;
    /** The aggregation prefix. */
    readonly prefixLength: number;
    /** True when some Service makes this node eligible. */
    readonly announce: boolean;
  };

/**
 * A problem to report on a Service (as a Warning event).
 */
export interface ServiceWarning {
  /** `namespace/name`. */
  readonly service: string;
  /** What is wrong and what we do instead. */
  readonly message: string;
}

/**
 * The outcome of {@link decideAnnouncements}.
 */
export interface AnnouncePlan {
  /** Addresses this node must carry. */
  readonly assignments: readonly AddressAssignment[];
  /** One decision per address of any Service, sorted by address. */
  readonly decisions: readonly AddressDecision[];
  /** Problems to report, one per Service at most. */
  readonly warnings: readonly ServiceWarning[];
  /** The local interfaces chosen by `localint`, in link order. */
  readonly localInterfaces: readonly string[];
  /** CIDRs of the local interfaces, for the `purelb.io/subnets` annotation, sorted. */
  readonly subnets: readonly string[];
  /** `localint` is not a valid regular expression: the reason (no local interface then). */
  readonly settingsProblem: string | undefined;
}

interface InterfaceNetwork {
  readonly interfaceName: string;
  readonly cidr: Cidr;
}

/**
 * The local interfaces for `localInterface`: `default` = those carrying a default route;
 * otherwise the links whose names match the regular expression. The dummy interface and
 * loopback never count.
 *
 * @example
 * ```ts
 * const state = { links: [], defaultRoutes: [{ family: "IPv4" as const, interfaceName: "eth0" }] };
 * localInterfaces(state, { localInterface: "default", dummyInterface: "kube-lb0", sendGarp: false });
 * // { kind: "ok", names: ["eth0"] }
 * ```
 */
export function localInterfaces(
  network: NetworkState,
  settings: AnnounceSettings,
):
  | { readonly kind: "ok"; readonly names: readonly string[] }
  | { readonly kind: "invalid"; readonly problem: string } {
  const eligible = (name: string) =>
    name !== settings.dummyInterface &&
    network.links.find((link) => link.name === name)?.linkType !== "loopback";
  if (settings.localInterface === "default") {
    return { kind: "ok", names: defaultRouteInterfaces(network).filter(eligible) };
  }
  let pattern: RegExp;
  try {
    pattern = new RegExp(settings.localInterface);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return {
      kind: "invalid",
      problem: `localint "${settings.localInterface}" is not a regular expression: ${reason}`,
    };
  }
  return {
    kind: "ok",
    names: network.links.map((link) => link.name).filter((name) =>
      pattern.test(name) && eligible(name)
    ),
  };
}

function interfaceNetworks(
  network: NetworkState,
  names: readonly string[],
): readonly InterfaceNetwork[] {
  const result: InterfaceNetwork[] = [];
  for (const name of names) {
    const link = network.links.find((candidate) => candidate.name === name);
    for (const address of link?.addresses ?? []) {
      if (address.scope !== "global" || !isUsableAddress(address)) continue;
      result.push({
        interfaceName: name,
        cidr: parseCidr(`${address.local}/${address.prefixLength}`),
      });
    }
  }
  return result;
}

/**
 * The CIDRs this node publishes in `purelb.io/subnets`: the networks of the usable global
 * addresses of its local interfaces, sorted, each once.
 *
 * @example
 * ```ts
 * announceSubnets({ links: [], defaultRoutes: [] },
 *   { localInterface: "default", dummyInterface: "kube-lb0", sendGarp: false }); // []
 * ```
 */
export function announceSubnets(
  network: NetworkState,
  settings: AnnounceSettings,
): readonly string[] {
  const chosen = localInterfaces(network, settings);
  const names = chosen.kind === "ok" ? chosen.names : [];
  return [...new Set(interfaceNetworks(network, names).map((n) => n.cidr.toString()))].sort();
}

function contains(cidr: Cidr, family: IpFamily, value: bigint): boolean {
  return cidr.family === family && cidr.network.firstValue <= value &&
    value <= cidr.network.lastValue;
}

/**
 * The prefix length a virtual address gets: the aggregation of the pool range that holds it;
 * else the first of `groupAggregations` (explicit `/N` of the Netbox groups it came from) that
 * fits its family; else a host route (/32, /128).
 *
 * @example
 * ```ts
 * virtualPrefixLength("192.0.2.50", []); // 32
 * virtualPrefixLength("192.0.2.50", [], [24]); // 24
 * ```
 */
export function virtualPrefixLength(
  address: string,
  pools: readonly PoolRange[],
  groupAggregations: readonly number[] = [],
): number {
  const parsed = tryParseAddress(address);
  if (parsed === undefined) throw new RangeError(`"${address}" is not an IP address`);
  const range = pools.find((pool) => pool.range.contains(parsed));
  const bits = addressBits(parsed.family);
  return range?.aggregationPrefixLength ?? groupAggregations.find((n) => n <= bits) ?? bits;
}

/**
 * Decides every address: local or virtual, announced here or not, on which interface with
 * which prefix length. Deterministic: the same input gives the same plan on every node.
 *
 * @example
 * ```ts
 * declare const input: AnnounceInput;
 * const { assignments, decisions, warnings } = decideAnnouncements(input);
 * ```
 */
export function decideAnnouncements(input: AnnounceInput): AnnouncePlan {
  const { settings, nodeName } = input;
  const chosen = localInterfaces(input.network, settings);
  const names = chosen.kind === "ok" ? chosen.names : [];
  const networks = interfaceNetworks(input.network, names);
  const subnets = [...new Set(networks.map((n) => n.cidr.toString()))].sort();

  // address -> service key -> service (a service listing an address twice is one user)
  const servicesByAddress = new Map<string, Map<string, ServiceAnnouncement>>();
  for (const service of input.services) {
    for (const address of service.addresses) {
      const users = servicesByAddress.get(address) ?? new Map<string, ServiceAnnouncement>();
      users.set(service.key, service);
      servicesByAddress.set(address, users);
    }
  }

  const assignments: AddressAssignment[] = [];
  const decisions: AddressDecision[] = [];
  const warnings = new Map<string, string>();
  const addresses = [...servicesByAddress.keys()].sort();
  for (const address of addresses) {
    const parsed = tryParseAddress(address);
    const services = [...(servicesByAddress.get(address)?.values() ?? [])];
    if (parsed === undefined) continue;
    const keys = services.map((s) => s.key).sort();
    const local = networks.find((n) => contains(n.cidr, parsed.family, parsed.value));
    if (local !== undefined) {
      const candidates = localCandidates(address, services, input, warnings);
      const elected = winner(candidates, address);
      const announce = elected === nodeName && !input.fenced;
      decisions.push({
        address,
        services: keys,
        kind: "local",
        interfaceName: local.interfaceName,
        prefixLength: local.cidr.prefixLength,
        announce,
        winner: elected,
      });
      if (announce) {
        assignments.push({
          interfaceName: local.interfaceName,
          address,
          prefixLength: local.cidr.prefixLength,
          noDad: true,
        });
      }
      continue;
    }
    const announce = services.some((service) =>
      !service.localTrafficPolicy || services.length > 1 ||
      (input.endpointNodes.get(service.key)?.has(nodeName) ?? false)
    );
    const prefixLength = virtualPrefixLength(
      address,
      input.pools,
      services.flatMap((s) =>
        s.group === undefined ? [] : input.netboxAggregations?.get(s.group) ?? []
      ),
    );
    decisions.push({
      address,
      services: keys,
      kind: "virtual",
      interfaceName: settings.dummyInterface,
      prefixLength,
      announce,
    });
    if (announce) {
      assignments.push({
        interfaceName: settings.dummyInterface,
        address,
        prefixLength,
        noDad: true,
      });
    }
  }
  return {
    assignments,
    decisions,
    warnings: [...warnings].map(([service, message]) => ({ service, message })),
    localInterfaces: names,
    subnets,
    settingsProblem: chosen.kind === "invalid" ? chosen.problem : undefined,
  };
}

/**
 * The nodes that may win a local address: live nodes whose subnets contain it; narrowed to the
 * nodes with a healthy endpoint when every Service of the address asks for
 * `externalTrafficPolicy: Local` with `allow-local` (a shared address counts as Cluster).
 */
function localCandidates(
  address: string,
  services: readonly ServiceAnnouncement[],
  input: AnnounceInput,
  warnings: Map<string, string>,
): readonly string[] {
  const base = candidatesFor(address, input.liveNodes);
  const shared = services.length > 1;
  let cluster = false;
  const withEndpoints = new Set<string>();
  for (const service of services) {
    if (!service.localTrafficPolicy) {
      cluster = true;
    } else if (!service.allowLocal) {
      cluster = true;
      warnings.set(
        service.key,
        `${address} is a local address (on the node network): externalTrafficPolicy Local is ` +
          `announced as Cluster (set the purelb.io/allow-local annotation to keep Local)`,
      );
    } else if (shared) {
      cluster = true;
    } else {
      for (const node of input.endpointNodes.get(service.key) ?? []) withEndpoints.add(node);
    }
  }
  return cluster ? base : base.filter((node) => withEndpoints.has(node));
}

/**
 * Whether an existing address is ours to remove when no assignment asks for it: everything
 * global on the dummy interface; elsewhere, addresses inside a configured pool range or used
 * by a Service, except an interface's primary IPv4 address (the node's own).
 *
 * @example
 * ```ts
 * const owns = ownedAddressPredicate({
 *   dummyInterface: "kube-lb0", pools: [], serviceAddresses: new Set(["192.0.2.50"]),
 *   network: { links: [], defaultRoutes: [] },
 * });
 * owns({ interfaceName: "eth0", family: "IPv4", address: "192.0.2.50", prefixLength: 24 }); // true
 * ```
 */
export function ownedAddressPredicate(options: {
  readonly dummyInterface: string;
  readonly pools: readonly PoolRange[];
  readonly serviceAddresses: ReadonlySet<string>;
  readonly network: NetworkState;
}): (existing: ExistingAddress) => boolean {
  const primaries = new Set<string>();
  for (const link of options.network.links) {
    if (link.name === options.dummyInterface) continue;
    for (const address of link.addresses) {
      if (address.family === "IPv4" && !address.flags.secondary) {
        primaries.add(`${link.name} ${address.local}/${address.prefixLength}`);
      }
    }
  }
  return (existing) => {
    if (existing.interfaceName === options.dummyInterface) return true;
    const key = `${existing.interfaceName} ${existing.address}/${existing.prefixLength}`;
    if (primaries.has(key)) return false;
    return options.serviceAddresses.has(existing.address) ||
      options.pools.some((pool) => pool.range.contains(existing.address));
  };
}

/**
 * Reads what {@link decideAnnouncements} needs from a Service: only LoadBalancer Services we
 * allocated (`purelb.io/allocated-by: PureLB`) with at least one ingress address; otherwise
 * `undefined`.
 *
 * @example
 * ```ts
 * serviceAnnouncement({
 *   metadata: { name: "web", namespace: "shop", annotations: { "purelb.io/allocated-by": "PureLB" } },
 *   spec: { type: "LoadBalancer" },
 *   status: { loadBalancer: { ingress: [{ ip: "192.0.2.50" }] } },
 * }); // { key: "shop/web", addresses: ["192.0.2.50"], localTrafficPolicy: false, allowLocal: false }
 * ```
 */
export function serviceAnnouncement(service: V1Service): ServiceAnnouncement | undefined {
  const annotations = service.metadata?.annotations ?? {};
  if (annotations[Annotations.allocatedBy] !== ALLOCATED_BY_PURELB) return undefined;
  if (service.spec?.type !== "LoadBalancer") return undefined;
  const addresses = new Set<string>();
  for (const ingress of service.status?.loadBalancer?.ingress ?? []) {
    const address = ingress.ip === undefined ? undefined : canonicalAddress(ingress.ip);
    if (address !== undefined) addresses.add(address);
  }
  if (addresses.size === 0) return undefined;
  const allowLocal = annotations[Annotations.allowLocal];
  const group = annotations[Annotations.allocatedFrom];
  return {
    key: `${service.metadata?.namespace ?? ""}/${service.metadata?.name ?? ""}`,
    addresses: [...addresses].sort(),
    localTrafficPolicy: service.spec.externalTrafficPolicy === "Local",
    allowLocal: allowLocal !== undefined && allowLocal.trim().toLowerCase() !== "false",
    ...(group ? { group } : {}),
  };
}

/**
 * Per Service key (`namespace/name`), the nodes that run a healthy endpoint of it. An endpoint
 * is healthy when Ready or Serving (an absent `ready` counts as ready, an absent `serving` as
 * `ready`); an endpoint address is healthy only if it is healthy in every slice it appears
 * in. Every slice labelled `kubernetes.io/service-name` counts, whoever manages it.
 *
 * @example
 * ```ts
 * healthyEndpointNodes([{
 *   metadata: { namespace: "shop", labels: { "kubernetes.io/service-name": "web" } },
 *   addressType: "IPv4",
 *   endpoints: [{ addresses: ["10.0.0.5"], nodeName: "node-a", conditions: { ready: true } }],
 * }]); // Map { "shop/web" => Set { "node-a" } }
 * ```
 */
export function healthyEndpointNodes(
  slices: readonly V1EndpointSlice[],
): ReadonlyMap<string, ReadonlySet<string>> {
  // service key -> endpoint address -> { healthy in every slice so far, nodes seen }
  const byService = new Map<string, Map<string, { healthy: boolean; nodes: Set<string> }>>();
  for (const slice of slices) {
    const serviceName = slice.metadata?.labels?.[SERVICE_NAME_LABEL];
    if (serviceName === undefined || serviceName === "") continue;
    const key = `${slice.metadata?.namespace ?? ""}/${serviceName}`;
    let endpoints = byService.get(key);
    if (endpoints === undefined) {
      endpoints = new Map();
      byService.set(key, endpoints);
    }
    for (const endpoint of slice.endpoints ?? []) {
      const ready = endpoint.conditions?.ready ?? true;
      const serving = endpoint.conditions?.serving ?? ready;
      const healthy = ready || serving;
      for (const address of endpoint.addresses ?? []) {
        const entry = endpoints.get(address) ?? { healthy: true, nodes: new Set<string>() };
        entry.healthy &&= healthy;
        if (endpoint.nodeName) entry.nodes.add(endpoint.nodeName);
        endpoints.set(address, entry);
      }
    }
  }
  const result = new Map<string, ReadonlySet<string>>();
  for (const [key, endpoints] of byService) {
    const nodes = new Set<string>();
    for (const entry of endpoints.values()) {
      if (entry.healthy) { for (const node of entry.nodes) nodes.add(node); }
    }
    result.set(key, nodes);
  }
  return result;
}
