/**
 * Proof of a Deno permission set: a small script run under it tries named actions and reports,
 * for each, whether it was allowed or the name of the error it got (`NotCapable`).
 *
 * @module
 */

import assert from "node:assert/strict";

/**
 * Runs `attempts` (the body of an object literal of named functions, as TypeScript source)
 * under `permissions` and returns `name -> "allowed" | error name` for each.
 *
 * @example
 * ```ts
 * const results = await probePermissions(["--deny-write"], `
 *   write: () => Deno.writeTextFile("/tmp/probe", "x"),
 * `);
 * // { write: "NotCapable" }
 * ```
 */
export async function probePermissions(
  permissions: readonly string[],
  attempts: string,
): Promise<Record<string, string>> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    script,
    `
const attempts: Record<string, () => Promise<unknown> | unknown> = {${attempts}};
const results: Record<string, string> = {};
for (const [name, attempt] of Object.entries(attempts)) {
  try {
    await attempt();
    results[name] = "allowed";
  } catch (error) {
    results[name] = error instanceof Error ? error.name : String(error);
  }
}
console.log(JSON.stringify(results));
`,
  );
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      // Refused, never asked: a set that does not say --no-prompt gets it here.
      args: [
        "run",
        ...(permissions.includes("--no-prompt") ? [] : ["--no-prompt"]),
        ...permissions,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(script);
  }
}
