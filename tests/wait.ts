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

/**
 * Reads `sample` every `intervalMs` until two reads in a row give the same `key` (nothing moved
 * for one interval); returns the last sample. Throws like {@linkcode waitFor}.
 */
export async function waitUntilSteady<T>(
  sample: () => Promise<T>,
  key: (value: T) => unknown,
  timeoutMs: number,
  what: string,
  intervalMs: number,
): Promise<T> {
  let last = await sample();
  await waitFor(
    async () => {
      const now = await sample();
      const steady = key(now) === key(last);
      last = now;
      return steady;
    },
    timeoutMs,
    what,
    intervalMs,
  );
  return last;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}
