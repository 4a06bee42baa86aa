/**
 * The plugin's Deno permission set: it reads, nothing else. Network (the API server), the
 * kubeconfig and the files it names, the service account folder (in a Pod), the files given
 * with `-f`, and the few variables the client configuration looks at. No writes, no
 * subprocesses, no FFI, no system information.
 *
 * @module
 */

import { dirname, isAbsolute, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { isRecord } from "../json/mod.ts";
import { SERVICE_ACCOUNT_DIR } from "../k8s/config.ts";

/** The variables the plugin reads: where the kubeconfig is, whether it runs in a Pod. */
export const PLUGIN_ENV = [
  "HOME",
  "KUBECONFIG",
  "KUBERNETES_SERVICE_HOST",
  "KUBERNETES_SERVICE_PORT",
  // Read by npm yaml while it parses.
  "LOG_STREAM",
  "LOG_TOKENS",
] as const;

/**
 * The files a kubeconfig text refers to (CA, client certificate and key, token file), absolute.
 * An unreadable text refers to none.
 *
 * @example
 * ```ts
 * referencedFiles("users: [{name: u, user: {tokenFile: token}}]", "/home/me/.kube/config");
 * // ["/home/me/.kube/token"]
 * ```
 */
export function referencedFiles(text: string, path: string): string[] {
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch {
    return [];
  }
  if (!isRecord(document)) return [];
  const files = new Set<string>();
  const keys = ["certificate-authority", "client-certificate", "client-key", "tokenFile"];
  for (const [listKey, entryKey] of [["clusters", "cluster"], ["users", "user"]] as const) {
    const list = document[listKey];
    for (const item of Array.isArray(list) ? list : []) {
      const entry = isRecord(item) ? item[entryKey] : undefined;
      if (!isRecord(entry)) continue;
      for (const key of keys) {
        const value = entry[key];
        if (typeof value === "string" && value !== "") {
          files.add(isAbsolute(value) ? value : join(dirname(path), value));
        }
      }
    }
  }
  return [...files].sort();
}

/**
 * The permission flags for `deno run` of `kubectl/main.ts`: read only `readable` (the
 * kubeconfig, the files it names, `-f` files) and the service account folder.
 *
 * @example
 * ```ts
 * pluginPermissions(["/home/me/.kube/config"]);
 * // ["--allow-net", "--allow-env=HOME,KUBECONFIG,...", "--allow-read=...", "--deny-write", ...]
 * ```
 */
export function pluginPermissions(readable: readonly string[]): string[] {
  const read = [...new Set([SERVICE_ACCOUNT_DIR, ...readable])];
  return [
    "--allow-net",
    `--allow-env=${PLUGIN_ENV.join(",")}`,
    `--allow-read=${read.join(",")}`,
    "--deny-write",
    "--deny-run",
    "--deny-ffi",
    "--deny-sys",
    "--no-prompt",
  ];
}
