/**
 * Objects the plugin's unit tests share: node Leases and Services as the API returns them.
 *
 * @module
 */

import type { V1Lease, V1Service } from "@kubernetes/client-node";
import { stringify } from "yaml";

/** A node Lease renewed at `renewMs` for `seconds`, publishing `subnets`. */
export function nodeLease(
  node: string,
  renewMs: number,
  subnets: string,
  seconds = 10,
): V1Lease {
  return {
    metadata: {
      name: `purelb-node-${node}`,
      ...(subnets === "" ? {} : { annotations: { "purelb.io/subnets": subnets } }),
    },
    spec: {
      holderIdentity: node,
      // The API sends MicroTime as text; client-node's type says Date.
      renewTime: new Date(renewMs).toISOString() as unknown as Date,
      leaseDurationSeconds: seconds,
    },
  };
}

/** A LoadBalancer Service in `namespace` with `addresses` and annotations. */
export function lbService(
  namespace: string,
  name: string,
  addresses: readonly string[],
  annotations: Record<string, string> = {},
): V1Service {
  return {
    metadata: { namespace, name, annotations },
    spec: { type: "LoadBalancer" },
    status: { loadBalancer: { ingress: addresses.map((ip) => ({ ip })) } },
  };
}

/** Bad specs, each with a different fault. */
export const BAD_SPECS: Readonly<Record<string, unknown>> = {
  bare: { local: { v4pools: [{ pool: "192.0.2.5", subnet: "192.0.2.0/24" }] } },
  outside: { local: { v4pools: [{ pool: "192.0.2.240-192.0.2.250", subnet: "198.51.100.0/24" }] } },
  both: { local: { v4pools: [] }, netbox: { url: "https://netbox.example/", tenant: "t" } },
  aggregation: {
    local: { v6pools: [{ pool: "2001:db8::/120", subnet: "2001:db8::/64", aggregation: "/129" }] },
  },
  fence: { local: { v4pools: [] }, enforceNamespaces: true },
  reversed: { local: { v4pools: [{ pool: "192.0.2.250-192.0.2.240", subnet: "192.0.2.0/24" }] } },
  mixed: { local: { v4pools: [{ pool: "192.0.2.1-2001:db8::1", subnet: "192.0.2.0/24" }] } },
  inside: {
    local: {
      v4pools: [
        { pool: "192.0.2.0/28", subnet: "192.0.2.0/24" },
        { pool: "192.0.2.8-192.0.2.20", subnet: "192.0.2.0/24" },
      ],
    },
  },
  wide: {
    local: { v4pools: [{ pool: "192.0.2.0/28", subnet: "192.0.2.0/24", aggregation: "/33" }] },
  },
  family: { local: { v6pools: [{ pool: "192.0.2.0/28", subnet: "192.0.2.0/24" }] } },
};

/** Good specs. */
export const GOOD_SPECS: Readonly<Record<string, unknown>> = {
  default: {
    local: {
      v4pools: [{
        pool: "192.0.2.240-192.0.2.250",
        subnet: "192.0.2.0/24",
        aggregation: "default",
      }],
      v6pools: [{ pool: "2001:db8:1::240-2001:db8:1::250", subnet: "2001:db8:1::/64" }],
    },
  },
  netbox: { netbox: { url: "https://netbox.example/", tenant: "team" } },
  legacy: { local: { pool: "198.51.100.0/28", subnet: "198.51.100.0/24", aggregation: "/32" } },
};

/** A multi-document YAML file of ServiceGroups. */
export function groupsYaml(specs: Readonly<Record<string, unknown>>): string {
  return Object.entries(specs).map(([name, spec]) =>
    stringify({
      apiVersion: "purelb.io/v1",
      kind: "ServiceGroup",
      metadata: { name, namespace: "purelb-system" },
      spec,
    })
  ).join("---\n");
}
