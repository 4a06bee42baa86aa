// Temporary: replaced by k8s/types.ts constants.
export const Annotations = {
  serviceGroup: "purelb.io/service-group",
  addresses: "purelb.io/addresses",
  allowSharedIp: "purelb.io/allow-shared-ip",
  allowLocal: "purelb.io/allow-local",
  allocatedBy: "purelb.io/allocated-by",
  allocatedFrom: "purelb.io/allocated-from",
} as const;
export const LOAD_BALANCER_CLASS = "purelb.io/purelb";
export const DEFAULT_SERVICE_GROUP = "default";
