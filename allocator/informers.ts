/**
 * The allocator's real caches: informers on Services (in the allocator's view), on the
 * ServiceGroups of its namespace and on the node Leases there (what they say about announcing). `main.ts` starts and stops them; the controller only reads.
 *
 * @module
 */

import type { V1Lease, V1Service } from "@kubernetes/client-node";
import { getLogger } from "@logtape/logtape";
import { type ApiConnection, logWatchFailure, ResilientInformer } from "../k8s/mod.ts";
import { PURELB_GROUP, PURELB_VERSION, SERVICE_GROUP_PLURAL } from "../k8s/types.ts";
import type { ServiceGroupObject } from "./groupstatus.ts";
import { allocatorServiceView, groupView } from "./relevance.ts";
import type { RequestSettings } from "./request.ts";
import { announcingLeaseView } from "./announcing.ts";

/** The informers the allocator reads. */
export interface AllocatorInformers {
  readonly services: ResilientInformer<V1Service>;
  readonly groups: ResilientInformer<ServiceGroupObject>;
  readonly leases: ResilientInformer<V1Lease>;
}

const log = getLogger(["purelb", "allocator"]);

/** Builds (does not start) the allocator's informers; a failed watch is logged and retried. */
export function allocatorInformers(
  connection: ApiConnection,
  namespace: string,
  settings: RequestSettings,
): AllocatorInformers {
  const onError = (what: string) => logWatchFailure(log, what);
  return {
    services: new ResilientInformer<V1Service>(connection, {
      name: "services",
      path: "/api/v1/services",
      transform: allocatorServiceView(settings),
      onError: onError("services"),
    }),
    groups: new ResilientInformer<ServiceGroupObject>(connection, {
      name: "servicegroups",
      path:
        `/apis/${PURELB_GROUP}/${PURELB_VERSION}/namespaces/${namespace}/${SERVICE_GROUP_PLURAL}`,
      transform: groupView,
      onError: onError("servicegroups"),
    }),
    leases: new ResilientInformer<V1Lease>(connection, {
      name: "leases",
      path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      transform: announcingLeaseView,
      onError: onError("leases"),
    }),
  };
}
