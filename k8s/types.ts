/**
 * Our API surface as TypeScript: the names PureLB users already rely on (API group, plurals,
 * annotations, load balancer class, Lease conventions, event reasons), the shapes of the
 * ServiceGroup and LBNodeAgent custom resources as `deploy/crds/*.yaml` define them, and
 * structural narrowing of JSON from the API into those shapes.
 *
 * Narrowing checks JSON types only. Whether a pool is a valid range, a subnet a CIDR, and so on
 * is the IPAM parser's business (`ipam/servicegroup.ts`), which can name the field that is wrong.
 *
 * @module
 */

import { isRecord, jsonTypeName } from "../json/mod.ts";
import type { LabelSelector } from "./selector.ts";

/** API group of our custom resources. */
export const PURELB_GROUP = "purelb.io";
/** API version of our custom resources within {@linkcode PURELB_GROUP}. */
export const PURELB_VERSION = "v1";
/** `apiVersion` of our custom resources: `purelb.io/v1`. */
export const PURELB_API_VERSION = "purelb.io/v1";

/** `kind` of a ServiceGroup. */
export const SERVICE_GROUP_KIND = "ServiceGroup";
/** Resource name (plural) of ServiceGroups, as in `/apis/purelb.io/v1/servicegroups`. */
export const SERVICE_GROUP_PLURAL = "servicegroups";
/** `kind` of an LBNodeAgent. */
export const LB_NODE_AGENT_KIND = "LBNodeAgent";
/** Resource name (plural) of LBNodeAgents, as in `/apis/purelb.io/v1/lbnodeagents`. */
export const LB_NODE_AGENT_PLURAL = "lbnodeagents";

/**
 * Service annotations (README "Service annotations and fields"). `serviceGroup`, `addresses`,
 * `allowSharedIp`, `allowLocal` and `reEvaluate` are set by users, `allocatedBy`,
 * `allocatedFrom`, `announcingIPv4` and `announcingIPv6` by the allocator (which also removes
 * `reEvaluate`).
 *
 * @example
 * ```ts
 * declare const annotations: Record<string, string>;
 * const group = annotations[Annotations.serviceGroup] ?? DEFAULT_SERVICE_GROUP;
 * ```
 */
export const Annotations = {
  /** Take the address from this ServiceGroup. */
  serviceGroup: "purelb.io/service-group",
  /** Comma list of specific addresses, at most one per family. */
  addresses: "purelb.io/addresses",
  /** Sharing key: services with equal keys may share an address. */
  allowSharedIp: "purelb.io/allow-shared-ip",
  /** Keep `externalTrafficPolicy: Local` on a local address. */
  allowLocal: "purelb.io/allow-local",
  /** Marks services whose addresses we manage; the value is {@linkcode ALLOCATED_BY_PURELB}. */
  allocatedBy: "purelb.io/allocated-by",
  /** The ServiceGroup the address came from. */
  allocatedFrom: "purelb.io/allocated-from",
  /** One-shot: decide this Service's group again; the allocator removes it once done. */
  reEvaluate: "purelb.io/re-evaluate",
  /**
   * Set by the allocator: the nodes announcing the Service's IPv4 local addresses, in PureLB's
   * wire form (space-separated `node,interface,address` entries); absent when none does.
   */
  announcingIPv4: "purelb.io/announcing-IPv4",
  /** As {@linkcode Annotations.announcingIPv4}, for IPv6 addresses. */
  announcingIPv6: "purelb.io/announcing-IPv6",
} as const;

/** One of the annotation names in {@linkcode Annotations}. */
export type Annotation = typeof Annotations[keyof typeof Annotations];

/** Value of the `purelb.io/allocated-by` annotation on services we manage. */
export const ALLOCATED_BY_PURELB = "PureLB";
/** The ServiceGroup used when a service names none. */
export const DEFAULT_SERVICE_GROUP = "default";
/** `spec.loadBalancerClass` that is ours. */
export const LOAD_BALANCER_CLASS = "purelb.io/purelb";

/** Annotation on a node's Lease: the CIDRs it can announce in, comma separated and sorted. */
export const SUBNETS_ANNOTATION = "purelb.io/subnets";
/**
 * Annotation on a node's Lease: the local (non-dummy interface) addresses the agent may have
 * put on the node's interfaces, canonical, comma separated and sorted. Read back when the agent
 * starts, so that addresses added by a previous run are still recognised as its own.
 */
export const LOCAL_ADDRESSES_ANNOTATION = "purelb.io/local-addresses";
/**
 * Annotation on a node's Lease: the local addresses the node carries now (won and applied), as
 * space-separated `interface,address` entries, sorted. The allocator copies them to Services.
 */
export const ANNOUNCING_ANNOTATION = "purelb.io/announcing";
/** A node's Lease is named this prefix followed by the node name. */
export const NODE_LEASE_PREFIX = "purelb-node-";
/** Label that ties an EndpointSlice to its Service (whoever manages the slice). */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

/** Reasons of the Events we write (what `kubectl describe` shows). */
export const EventReason = {
  AddressAssigned: "AddressAssigned",
  AddressReleased: "AddressReleased",
  AllocationFailed: "AllocationFailed",
  ConfigurationWarning: "ConfigurationWarning",
  DeprecationWarning: "DeprecationWarning",
  ParseFailed: "ParseFailed",
  AnnouncingLocal: "AnnouncingLocal",
  AnnouncingVirtual: "AnnouncingVirtual",
  Withdrawn: "Withdrawn",
  BGPConfigurationInvalid: "BGPConfigurationInvalid",
  BGPConfigurationRefused: "BGPConfigurationRefused",
  BGPDaemonUnavailable: "BGPDaemonUnavailable",
  BGPSecretMissing: "BGPSecretMissing",
} as const;

/** One of the reasons in {@linkcode EventReason}. */
export type EventReason = typeof EventReason[keyof typeof EventReason];

/**
 * The metadata fields we read from our custom resources. Timestamps are left out on purpose:
 * they arrive as strings in JSON while client-node's `V1ObjectMeta` declares `Date`, and
 * leaving them out keeps our objects assignable to client-node's `KubernetesObject`.
 */
export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * One address range of a ServiceGroup: `pool` is a range `A-B` or a CIDR, `subnet` the CIDR it
 * lives in, `aggregation` `default`, empty or `/N`.
 */
export interface PoolEntry {
  readonly pool: string;
  readonly subnet: string;
  readonly aggregation?: string;
}

/**
 * `spec.local` of a ServiceGroup: address ranges managed by PureLB itself. The schema wants at
 * least one of the pool fields, and `pool` together with `subnet`.
 *
 * @example
 * ```ts
 * const local: ServiceGroupLocalSpec = {
 *   v4pools: [{ pool: "192.168.10.240/30", subnet: "192.168.10.0/24", aggregation: "default" }],
 * };
 * ```
 */
export interface ServiceGroupLocalSpec {
  readonly v4pools?: readonly PoolEntry[];
  readonly v6pools?: readonly PoolEntry[];
  /** Legacy single IPv4 entry. */
  readonly v4pool?: PoolEntry;
  /** Legacy single IPv6 entry. */
  readonly v6pool?: PoolEntry;
  /** Legacy top-level range; comes with `subnet`. */
  readonly pool?: string;
  /** Legacy top-level subnet; comes with `pool`. */
  readonly subnet?: string;
  /** Legacy top-level aggregation. */
  readonly aggregation?: string;
  /** Skip IPv4 addresses ending in .0 and .255 when picking the next free address. */
  readonly avoidBuggyIPs?: boolean;
}

/** `spec.netbox` of a ServiceGroup: addresses reserved for `tenant` in Netbox at `url`. */
export interface ServiceGroupNetboxSpec {
  readonly url: string;
  readonly tenant: string;
  readonly aggregation?: string;
}

/**
 * `spec` of a ServiceGroup. The schema admits exactly one of `local` and `netbox`; both are
 * optional here so that the IPAM parser, not the narrowing, reports a group with neither.
 */
export interface ServiceGroupSpec {
  readonly local?: ServiceGroupLocalSpec;
  readonly netbox?: ServiceGroupNetboxSpec;
  /** The namespaces this group serves (DNS labels, at most 1024). */
  readonly namespaces?: readonly string[];
  /** Fence the listed namespaces: they use only groups that list them, and only they use this. */
  readonly enforceNamespaces?: boolean;
  /** The default group of the listed namespaces when several groups serve them. */
  readonly namespaceDefault?: boolean;
}

/** Status of a {@linkcode Condition}. */
export type ConditionStatus = "True" | "False" | "Unknown";

/**
 * A status condition (the shape of `metav1.Condition`), e.g. `type: Valid`.
 *
 * @example
 * ```ts
 * const valid: Condition = {
 *   type: "Valid", status: "True", reason: "Parsed", message: "2 ranges",
 *   lastTransitionTime: "2024-01-01T00:00:00Z",
 * };
 * ```
 */
export interface Condition {
  readonly type: string;
  readonly status: ConditionStatus;
  readonly observedGeneration?: number;
  /** RFC 3339 date-time text. */
  readonly lastTransitionTime: string;
  readonly reason: string;
  readonly message: string;
}

/**
 * Address counts of one family. `size` and `free` are decimal text because an IPv6 pool can
 * exceed 2^63 addresses.
 */
export interface FamilyUsage {
  readonly size?: string;
  readonly inUse?: number;
  readonly free?: string;
}

/** `status` of a ServiceGroup, written by the allocator. */
export interface ServiceGroupStatus {
  readonly observedGeneration?: number;
  readonly conditions?: readonly Condition[];
  readonly ipv4?: FamilyUsage;
  readonly ipv6?: FamilyUsage;
  /** The namespaces the group serves (its `spec.namespaces`), once namespace rules are in use. */
  readonly boundNamespaces?: readonly string[];
  /** Services that keep an address of this group although the namespace rules would not give it now. */
  readonly outOfScope?: number;
}

/**
 * A ServiceGroup: one address pool, or one external IPAM source.
 *
 * @example
 * ```ts
 * const group: ServiceGroup = {
 *   apiVersion: PURELB_API_VERSION,
 *   kind: SERVICE_GROUP_KIND,
 *   metadata: { name: "default", namespace: "purelb-system" },
 *   spec: { local: { v4pools: [{ pool: "192.168.10.240/30", subnet: "192.168.10.0/24" }] } },
 * };
 * ```
 */
export interface ServiceGroup {
  readonly apiVersion: typeof PURELB_API_VERSION;
  readonly kind: typeof SERVICE_GROUP_KIND;
  readonly metadata: ObjectMeta;
  readonly spec: ServiceGroupSpec;
  readonly status?: ServiceGroupStatus;
}

/**
 * `spec.local` of an LBNodeAgent. The API server fills in the defaults
 * (`default`, `kube-lb0`, `false`) on objects written after the CRD was installed.
 */
export interface LBNodeAgentLocalSpec {
  /** `default` (the interface of the default route) or a regular expression on interface names. */
  readonly localint?: string;
  /** Name of the dummy interface that carries virtual addresses. */
  readonly extlbint?: string;
  /** Send gratuitous ARP / unsolicited neighbour advertisements when taking a local address. */
  readonly sendgarp?: boolean;
}

/** `spec` of an LBNodeAgent. */
export interface LBNodeAgentSpec {
  readonly local?: LBNodeAgentLocalSpec;
  /**
   * The nodes this LBNodeAgent applies to (a label selector on Node objects); none or `{}`
   * selects every node not selected by a more specific one. Checked here for its shape only:
   * k8s/selector.ts says whether its operators and values make sense.
   */
  readonly nodeSelector?: LabelSelector;
}

/**
 * An LBNodeAgent: how nodes announce. Its status is free-form in the schema.
 *
 * @example
 * ```ts
 * const agent: LBNodeAgent = {
 *   apiVersion: PURELB_API_VERSION,
 *   kind: LB_NODE_AGENT_KIND,
 *   metadata: { name: "default", namespace: "purelb-system" },
 *   spec: { local: { localint: "default", extlbint: "kube-lb0", sendgarp: false } },
 * };
 * ```
 */
export interface LBNodeAgent {
  readonly apiVersion: typeof PURELB_API_VERSION;
  readonly kind: typeof LB_NODE_AGENT_KIND;
  readonly metadata: ObjectMeta;
  readonly spec: LBNodeAgentSpec;
  readonly status?: Readonly<Record<string, unknown>>;
}

/** Narrowed JSON: the value with its type, or the first problem found. */
export type Narrowed<T> =
  | { readonly kind: "valid"; readonly value: T }
  | { readonly kind: "invalid"; readonly problem: string };

/**
 * Narrows JSON from the API to an {@linkcode LBNodeAgent}, or explains why it is not one.
 *
 * @example
 * ```ts
 * const result = inspectLBNodeAgent({
 *   apiVersion: "purelb.io/v1", kind: "LBNodeAgent", metadata: { name: "a" },
 *   spec: { local: { sendgarp: "yes" } },
 * });
 * // { kind: "invalid", problem: "spec.local.sendgarp: must be a boolean, not a string" }
 * ```
 */
export function inspectLBNodeAgent(value: unknown): Narrowed<LBNodeAgent> {
  const problem = checkLBNodeAgent(value, "");
  return problem === undefined
    ? { kind: "valid", value: value as LBNodeAgent }
    : { kind: "invalid", problem };
}

/**
 * Narrows JSON from the API to an {@linkcode LBNodeAgent}; `undefined` when it is not one.
 *
 * @example
 * ```ts
 * declare const item: unknown;
 * const sendGarp = asLBNodeAgent(item)?.spec.local?.sendgarp ?? false;
 * ```
 */
export function asLBNodeAgent(value: unknown): LBNodeAgent | undefined {
  const result = inspectLBNodeAgent(value);
  return result.kind === "valid" ? result.value : undefined;
}

/** Returns the problem with `value` at `path`, or `undefined` when there is none. */
type Check = (value: unknown, path: string) => string | undefined;

/** How a problem names the place: the field path, or `object` for the value itself. */
function label(path: string): string {
  return path === "" ? "object" : path;
}

function child(path: string, key: string): string {
  return path === "" ? key : `${path}.${key}`;
}

const isString: Check = (value, path) =>
  typeof value === "string"
    ? undefined
    : `${label(path)}: must be a string, not ${jsonTypeName(value)}`;

const isBoolean: Check = (value, path) =>
  typeof value === "boolean"
    ? undefined
    : `${label(path)}: must be a boolean, not ${jsonTypeName(value)}`;

const isInteger: Check = (value, path) =>
  Number.isInteger(value)
    ? undefined
    : `${label(path)}: must be an integer, not ${jsonTypeName(value)}`;

function mapOf(entry: Check): Check {
  return (value, path) => {
    if (!isRecord(value)) return `${label(path)}: must be an object, not ${jsonTypeName(value)}`;
    for (const [key, element] of Object.entries(value)) {
      const problem = entry(element, `${path}[${JSON.stringify(key)}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

function listOf(element: Check): Check {
  return (value, path) => {
    if (!Array.isArray(value)) return `${label(path)}: must be a list, not ${jsonTypeName(value)}`;
    for (const [index, item] of value.entries()) {
      const problem = element(item, `${path}[${index}]`);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

interface FieldRule {
  readonly check: Check;
  readonly required: boolean;
}

const required = (check: Check): FieldRule => ({ check, required: true });
const optional = (check: Check): FieldRule => ({ check, required: false });

/** An object whose listed fields are checked; fields not listed are allowed and ignored. */
function objectWith(rules: Readonly<Record<string, FieldRule>>): Check {
  return (value, path) => {
    if (!isRecord(value)) return `${label(path)}: must be an object, not ${jsonTypeName(value)}`;
    for (const [key, rule] of Object.entries(rules)) {
      const field = value[key];
      if (field === undefined && !rule.required) continue;
      const problem = field === undefined
        ? `${child(path, key)}: is required`
        : rule.check(field, child(path, key));
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

function equalTo(expected: string): Check {
  return (value, path) =>
    value === expected
      ? undefined
      : `${label(path)}: must be ${JSON.stringify(expected)}, not ${
        JSON.stringify(value) ?? "undefined"
      }`;
}

const isNonEmptyString: Check = (value, path) =>
  isString(value, path) ?? (value === "" ? `${label(path)}: must not be empty` : undefined);

const checkObjectMeta = objectWith({
  name: required(isNonEmptyString),
  namespace: optional(isString),
  uid: optional(isString),
  resourceVersion: optional(isString),
  generation: optional(isInteger),
  labels: optional(mapOf(isString)),
  annotations: optional(mapOf(isString)),
});

const checkLBNodeAgent = objectWith({
  apiVersion: required(equalTo(PURELB_API_VERSION)),
  kind: required(equalTo(LB_NODE_AGENT_KIND)),
  metadata: required(checkObjectMeta),
  spec: required(objectWith({
    local: optional(objectWith({
      localint: optional(isString),
      extlbint: optional(isString),
      sendgarp: optional(isBoolean),
    })),
    nodeSelector: optional(objectWith({
      matchLabels: optional(mapOf(isString)),
      matchExpressions: optional(listOf(objectWith({
        key: required(isString),
        operator: required(isString),
        values: optional(listOf(isString)),
      }))),
    })),
  })),
  status: optional(mapOf(() => undefined)),
});
