/**
 * Building blocks for informer transforms: each program caches only the fields it reads, so
 * that its memory grows with what matters to it and an update of any other field (status of
 * others, `managedFields`, foreign labels and annotations, `resourceVersion`) is no change.
 *
 * @module
 */

import type { V1ObjectMeta } from "@kubernetes/client-node";

/** Which parts of `metadata` a transform keeps besides name and namespace. */
export interface MetadataFields {
  /** Keep `uid` (Events name their object by it). */
  readonly uid?: boolean;
  readonly creationTimestamp?: boolean;
  readonly generation?: boolean;
  /** Keep the annotations whose key starts with this prefix (e.g. `purelb.io/`). */
  readonly annotationPrefix?: string;
  /** Keep these labels. */
  readonly labels?: readonly string[];
}

/**
 * `metadata` reduced to name, namespace and the fields asked for; an empty annotation or label
 * map is left out, so that "none" has one form.
 *
 * @example
 * ```ts
 * slimMetadata(
 *   { name: "web", namespace: "default", resourceVersion: "7", annotations: { "a/b": "1", "purelb.io/x": "y" } },
 *   { annotationPrefix: "purelb.io/" },
 * ); // { name: "web", namespace: "default", annotations: { "purelb.io/x": "y" } }
 * ```
 */
export function slimMetadata(
  metadata: V1ObjectMeta | undefined,
  keep: MetadataFields = {},
): V1ObjectMeta {
  const slim: V1ObjectMeta = {};
  if (metadata?.name !== undefined) slim.name = metadata.name;
  if (metadata?.namespace !== undefined) slim.namespace = metadata.namespace;
  if (keep.uid && metadata?.uid !== undefined) slim.uid = metadata.uid;
  if (keep.creationTimestamp && metadata?.creationTimestamp !== undefined) {
    // JSON from the API server carries RFC 3339 text here, whatever the generated type says.
    slim.creationTimestamp = metadata.creationTimestamp;
  }
  if (keep.generation && metadata?.generation !== undefined) {
    slim.generation = metadata.generation;
  }
  const prefix = keep.annotationPrefix;
  if (prefix !== undefined) {
    const annotations = pickEntries(metadata?.annotations, (key) => key.startsWith(prefix));
    if (annotations !== undefined) slim.annotations = annotations;
  }
  const labelNames = keep.labels;
  if (labelNames !== undefined) {
    const labels = pickEntries(metadata?.labels, (key) => labelNames.includes(key));
    if (labels !== undefined) slim.labels = labels;
  }
  return slim;
}

function pickEntries(
  map: Readonly<Record<string, string>> | undefined,
  wanted: (key: string) => boolean,
): Record<string, string> | undefined {
  if (map === undefined) return undefined;
  let picked: Record<string, string> | undefined;
  for (const key of Object.keys(map).sort()) {
    const value = map[key];
    if (value === undefined || !wanted(key)) continue;
    picked ??= {};
    picked[key] = value;
  }
  return picked;
}

/**
 * The whole object less `resourceVersion` and `managedFields`: a transform for caches that
 * read everything (tests, benchmarks), so that an update changing nothing else is no change.
 *
 * @example
 * ```ts
 * withoutVersion({ metadata: { name: "a", resourceVersion: "5" }, spec: { type: "ClusterIP" } });
 * // { metadata: { name: "a" }, spec: { type: "ClusterIP" } }
 * ```
 */
export function withoutVersion<T extends { readonly metadata?: V1ObjectMeta }>(object: T): T {
  if (object.metadata === undefined) return object;
  const { resourceVersion: _version, managedFields: _fields, ...metadata } = object.metadata;
  return { ...object, metadata };
}
