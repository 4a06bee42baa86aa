/**
 * The plugin's flags, for `node:util` `parseArgs`: read by the plugin and by its launcher (which
 * must know the kubeconfig and the `-f` files to grant).
 *
 * @module
 */

/** The flags of `kubectl purelb`. */
export const OPTIONS = {
  kubeconfig: { type: "string" },
  namespace: { type: "string", short: "n" },
  "service-namespace": { type: "string" },
  output: { type: "string", short: "o" },
  filename: { type: "string", short: "f", multiple: true },
  help: { type: "boolean", short: "h" },
} as const;
