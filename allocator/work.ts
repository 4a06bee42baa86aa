/**
 * The allocator controller's units of work, and their keys in the work queue (which
 * de-duplicates by key). A work item's `kind` is also its `kind` label in
 * `purelb_allocator_reconciles_total`.
 *
 * @module
 */

/** One thing for a worker to do. */
export type Work =
  /** Make a Service's status match what it asks for (`namespace/name`). */
  | { readonly kind: "service"; readonly key: string }
  /** Read the ServiceGroups again. */
  | { readonly kind: "groups" }
  /** Write a ServiceGroup's status. */
  | { readonly kind: "group_status"; readonly group: string }
  /** Give one freed Netbox address back (the controller's id of that return). */
  | { readonly kind: "netbox_return"; readonly id: string }
  /** Compare a Netbox group's addresses with Netbox. */
  | { readonly kind: "netbox_sweep"; readonly group: string }
  /** Make a Service's announcing annotations name the nodes that carry its addresses. */
  | { readonly kind: "announcing"; readonly key: string };

/** The queue key of a work item. */
export function workKey(work: Work): string {
  switch (work.kind) {
    case "service":
      return `service:${work.key}`;
    case "groups":
      return "groups";
    case "group_status":
      return `group_status:${work.group}`;
    case "netbox_return":
      return `netbox_return:${work.id}`;
    case "netbox_sweep":
      return `netbox_sweep:${work.group}`;
    case "announcing":
      return `announcing:${work.key}`;
    default: {
      const unknown: never = work;
      throw new TypeError(`unknown work ${JSON.stringify(unknown)}`);
    }
  }
}

/** The work item of a key made by {@linkcode workKey}. Throws on any other string. */
export function workOfKey(key: string): Work {
  const colon = key.indexOf(":");
  const kind = colon < 0 ? key : key.slice(0, colon);
  const argument = colon < 0 ? undefined : key.slice(colon + 1);
  if (kind === "groups" && argument === undefined) return { kind };
  if (argument !== undefined) {
    switch (kind) {
      case "service":
      case "announcing":
        return { kind, key: argument };
      case "group_status":
      case "netbox_sweep":
        return { kind, group: argument };
      case "netbox_return":
        return { kind, id: argument };
    }
  }
  throw new TypeError(`not a work key: ${key}`);
}
