/**
 * Writes are JSON merge patches of the fields we own: no read-modify-write races on the rest
 * of the object, and no conflicts with other writers of other fields.
 *
 * @module
 */

import type {
  ConfigurationOptions,
  ObservableMiddleware,
} from "@kubernetes/client-node/dist/gen/index.js";
import { setHeaderOptions } from "@kubernetes/client-node/dist/middleware.js";
import { PatchStrategy } from "@kubernetes/client-node/dist/patch.js";

/**
 * Request options that make a client-node `patch*` call send a JSON merge patch.
 *
 * @example
 * ```ts
 * await core.patchNamespacedServiceStatus({ namespace, name, body: { status } }, mergePatch());
 * ```
 */
export function mergePatch(): ConfigurationOptions<ObservableMiddleware> {
  return setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
}

/**
 * A merge patch body that sets or removes annotations: a `null` value removes the key.
 *
 * @example
 * ```ts
 * annotationsPatch({ "purelb.io/allocated-by": "PureLB", "purelb.io/allocated-from": null });
 * ```
 */
export function annotationsPatch(
  annotations: Readonly<Record<string, string | null>>,
): { metadata: { annotations: Record<string, string | null> } } {
  return { metadata: { annotations: { ...annotations } } };
}
