/**
 * Reading errors that come back from the Kubernetes API.
 *
 * @module
 */

/**
 * The HTTP status of a failed API call (client-node's `ApiException.code`, or `statusCode` on
 * watch errors); `undefined` for anything else, such as a refused connection.
 *
 * @example
 * ```ts
 * import type { ApiConnection } from "./transport.ts";
 * declare const connection: ApiConnection;
 *
 * const body = { metadata: { name: "shop" } };
 * try {
 *   await connection.request("POST", "/api/v1/namespaces", { body });
 * } catch (e) {
 *   if (apiStatusCode(e) !== 409) throw e; // already there is fine
 * }
 * ```
 */
export function apiStatusCode(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  for (const field of ["code", "statusCode"] as const) {
    const value = (error as Record<string, unknown>)[field];
    if (typeof value === "number" && value >= 100 && value < 600) return value;
  }
  return undefined;
}

/** True when the API refused a write because the object changed meanwhile (409 Conflict). */
export function isConflict(error: unknown): boolean {
  return apiStatusCode(error) === 409;
}

/** A one-line description of any thrown value, for logs and events. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const code = apiStatusCode(error);
    const body = (error as { body?: unknown }).body;
    const detail = apiMessageOf(body);
    return [code ? `HTTP ${code}` : undefined, detail ?? error.message].filter(Boolean).join(": ");
  }
  return String(error);
}

function apiMessageOf(body: unknown): string | undefined {
  let parsed = body;
  if (typeof body === "string") {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.length > 0 && body.length < 300 ? body : undefined;
    }
  }
  if (typeof parsed === "object" && parsed !== null && "message" in parsed) {
    const message = (parsed as { message: unknown }).message;
    return typeof message === "string" ? message : undefined;
  }
  return undefined;
}
