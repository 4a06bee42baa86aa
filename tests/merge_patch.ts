/**
 * A JSON merge patch (RFC 7386) applied in memory, for fakes of the API server: a `null`
 * removes the key, an object merges into the object, anything else replaces.
 *
 * @module
 */

/** `patch` merged into a copy of `target`. */
export function merged(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, unknown> = typeof target === "object" && target !== null &&
      !Array.isArray(target)
    ? { ...target }
    : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = merged(result[key], value);
  }
  return result;
}
