/**
 * Waiting with a deadline: tests never sleep and hope.
 *
 * @module
 */

/** Raised when a condition did not hold before its deadline; names what was awaited. */
export class WaitTimeoutError extends Error {
  override name = "WaitTimeoutError";
}

/**
 * Polls `check` until it returns true, or throws a {@linkcode WaitTimeoutError} after
 * `timeoutMs` naming `what` (and the last error `check` threw, if any).
 *
 * @example
 * ```ts
 * await waitFor(() => Deno.stat("/tmp/x").then(() => true, () => false), 5_000, "/tmp/x");
 * ```
 */
export async function waitFor(
  check: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? ` (last error: ${lastError.message})` : "";
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}
