/**
 * What a Service asks of the allocator, read from its spec and annotations (pure).
 *
 * @module
 */

import type { V1Service } from "@kubernetes/client-node";
import { type IpFamily, type ServicePort, tryParseAddress } from "../ipam/mod.ts";
import { formatAddress } from "../ipam/mod.ts";
import { Annotations, DEFAULT_SERVICE_GROUP, LOAD_BALANCER_CLASS } from "../k8s/types.ts";

/** How the Service's IP families are to be filled. */
export type FamilyPolicy =
  | "SingleStack"
  | "PreferDualStack"
  | "RequireDualStack"
  /** `spec.ipFamilies` empty: one address, the first family that works. */
  | "AnyOne";

/** A Service's request for load balancer addresses. */
export interface AllocationRequest {
  /** `namespace/name` */
  readonly key: string;
  /** Wanted families in order (`spec.ipFamilies`; IPv6 then IPv4 when empty). */
  readonly families: readonly IpFamily[];
  readonly policy: FamilyPolicy;
  /** Canonical specific addresses, in `families` order; empty = any from `group`. */
  readonly specificAddresses: readonly string[];
  /**
   * The ServiceGroup to allocate from (ignored when specific addresses are given): the
   * annotation's, else `default` (the namespace rules may choose another, see `groupAnnotated`).
   */
  readonly group: string;
  /** True when `group` comes from the `purelb.io/service-group` annotation. */
  readonly groupAnnotated?: boolean;
  /** True while the Service carries `purelb.io/re-evaluate`: decide its group again. */
  readonly reEvaluate?: boolean;
  /** `purelb.io/allow-shared-ip`; "" = no sharing. */
  readonly sharingKey: string;
  readonly ports: readonly ServicePort[];
  /** `externalTrafficPolicy: Local` */
  readonly localTrafficPolicy: boolean;
}

/** A warning to report as an event on the Service (the request is still served). */
export interface RequestWarning {
  readonly reason: "ConfigurationWarning" | "DeprecationWarning";
  readonly message: string;
}

/** What the allocator should do with a Service. */
export type ServiceIntent =
  /** Not ours (another class, or classless while default handling is off): never write. */
  | { readonly kind: "foreign" }
  /** Ours by class but not (or no longer) `type: LoadBalancer`: release what it holds. */
  | { readonly kind: "notLoadBalancer" }
  | {
    readonly kind: "allocate";
    readonly request: AllocationRequest;
    readonly warnings: readonly RequestWarning[];
  }
  /** Ours, but the request itself is unusable: report `AllocationFailed` with the reason. */
  | {
    readonly kind: "invalid";
    readonly reason: string;
    readonly warnings: readonly RequestWarning[];
  };

/** Allocator settings that change which Services are ours. */
export interface RequestSettings {
  /** Whether Services without `spec.loadBalancerClass` are ours (default true). */
  readonly handleClasslessServices: boolean;
}

/** The `namespace/name` key of a Service. */
export function serviceKey(service: V1Service): string {
  return `${service.metadata?.namespace ?? ""}/${service.metadata?.name ?? ""}`;
}

/** True when the Service's class makes it ours. */
export function isOurClass(service: V1Service, settings: RequestSettings): boolean {
  const serviceClass = service.spec?.loadBalancerClass;
  if (serviceClass === undefined || serviceClass === "") return settings.handleClasslessServices;
  return serviceClass === LOAD_BALANCER_CLASS;
}

/**
 * Reads what a Service asks for. Pure: the same Service always gives the same intent.
 *
 * @example
 * ```ts
 * const service = {
 *   metadata: { name: "web", namespace: "shop" },
 *   spec: { type: "LoadBalancer", ports: [{ port: 443, protocol: "TCP" }] },
 * };
 * const intent = readServiceIntent(service, { handleClasslessServices: true });
 * if (intent.kind === "allocate") console.log(intent.request.families);
 * ```
 */
export function readServiceIntent(service: V1Service, settings: RequestSettings): ServiceIntent {
  if (!isOurClass(service, settings)) return { kind: "foreign" };
  if (service.spec?.type !== "LoadBalancer") return { kind: "notLoadBalancer" };

  const annotations = service.metadata?.annotations ?? {};
  const warnings: RequestWarning[] = [];
  const families = wantedFamilies(service);
  const policy = familyPolicy(service);

  const addressesAnnotation = annotations[Annotations.addresses];
  let addressTexts: string[] = [];
  let source: string = Annotations.addresses;
  if (addressesAnnotation !== undefined) {
    addressTexts = addressesAnnotation.split(",").map((a) => a.trim()).filter((a) => a !== "");
  } else if (service.spec.loadBalancerIP) {
    addressTexts = [service.spec.loadBalancerIP.trim()];
    source = "spec.loadBalancerIP";
    warnings.push({
      reason: "DeprecationWarning",
      message: `spec.loadBalancerIP is deprecated; use the ${Annotations.addresses} annotation`,
    });
  }

  const groupAnnotation = annotations[Annotations.serviceGroup]?.trim();
  if (addressTexts.length > 0 && groupAnnotation) {
    warnings.push({
      reason: "ConfigurationWarning",
      message: `${Annotations.serviceGroup} "${groupAnnotation}" is ignored because ` +
        `${source} asks for specific addresses`,
    });
  }

  const specific = readSpecificAddresses(addressTexts, source, families, policy);
  if (specific.kind === "invalid") return { kind: "invalid", reason: specific.reason, warnings };

  const request: AllocationRequest = {
    key: serviceKey(service),
    families: specific.addresses.length > 0
      ? specific.addresses.map((a) => a.family)
      : families.length > 0
      ? families
      : ["IPv6", "IPv4"],
    policy: families.length === 0 ? "AnyOne" : policy,
    specificAddresses: specific.addresses.map((a) => a.text),
    group: groupAnnotation || DEFAULT_SERVICE_GROUP,
    sharingKey: annotations[Annotations.allowSharedIp]?.trim() ?? "",
    ports: (service.spec.ports ?? []).map((p) => ({
      protocol: (p.protocol ?? "TCP") as ServicePort["protocol"],
      port: p.port,
    })),
    localTrafficPolicy: service.spec.externalTrafficPolicy === "Local",
    ...(groupAnnotation ? { groupAnnotated: true } : {}),
    ...(annotations[Annotations.reEvaluate] === undefined ? {} : { reEvaluate: true }),
  };
  return { kind: "allocate", request, warnings };
}

function wantedFamilies(service: V1Service): IpFamily[] {
  return (service.spec?.ipFamilies ?? []).filter((f): f is IpFamily =>
    f === "IPv4" || f === "IPv6"
  );
}

function familyPolicy(service: V1Service): FamilyPolicy {
  const policy = service.spec?.ipFamilyPolicy;
  return policy === "PreferDualStack" || policy === "RequireDualStack" ? policy : "SingleStack";
}

type SpecificAddresses =
  | { readonly kind: "ok"; readonly addresses: readonly { family: IpFamily; text: string }[] }
  | { readonly kind: "invalid"; readonly reason: string };

function readSpecificAddresses(
  texts: readonly string[],
  source: string,
  families: readonly IpFamily[],
  policy: FamilyPolicy,
): SpecificAddresses {
  const byFamily = new Map<IpFamily, string>();
  for (const text of texts) {
    const parsed = tryParseAddress(text);
    if (!parsed) {
      return { kind: "invalid", reason: `${source}: "${text}" is not an IP address` };
    }
    const canonical = formatAddress(parsed);
    const other = byFamily.get(parsed.family);
    if (other !== undefined) {
      return {
        kind: "invalid",
        reason: `${source}: two ${parsed.family} addresses (${other}, ${canonical}); ` +
          `give at most one per family`,
      };
    }
    if (families.length > 0 && !families.includes(parsed.family)) {
      return {
        kind: "invalid",
        reason: `${source}: ${canonical} is ${parsed.family}, but the service's ipFamilies ` +
          `are ${families.join(", ")}`,
      };
    }
    byFamily.set(parsed.family, canonical);
  }
  if (byFamily.size > 0 && policy === "RequireDualStack" && byFamily.size < 2) {
    return {
      kind: "invalid",
      reason: `${source}: ipFamilyPolicy RequireDualStack needs one address per family, ` +
        `got only ${[...byFamily.keys()].join(", ")}`,
    };
  }
  const order = families.length > 0 ? families : ["IPv6", "IPv4"] as const;
  const addresses = order.flatMap((family) => {
    const text = byFamily.get(family);
    return text === undefined ? [] : [{ family, text }];
  });
  return { kind: "ok", addresses };
}
