/**
 * Applies YAML manifests to a cluster with server-side apply, the way `kubectl apply
 * --server-side` does, and waits for CRDs to be established.
 *
 * @module
 */

import type { KubernetesObject } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { join } from "node:path";

const FIELD_MANAGER = "purelb-tests";

/** Reads every YAML document of the given files or folders (`*.yaml`, sorted by name). */
export async function readManifests(paths: readonly string[]): Promise<KubernetesObject[]> {
  const objects: KubernetesObject[] = [];
  for (const path of paths) {
    const files = (await Deno.stat(path)).isDirectory
      ? (await Array.fromAsync(Deno.readDir(path)))
        .filter((entry) => entry.isFile && /\.ya?ml$/.test(entry.name))
        .map((entry) => join(path, entry.name))
        .sort()
      : [path];
    for (const file of files) {
      for (const doc of parseAllDocuments(await Deno.readTextFile(file))) {
        if (doc.errors.length > 0) {
          throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
        }
        const value: unknown = doc.toJS();
        if (isKubernetesObject(value)) objects.push(value);
      }
    }
  }
  return objects;
}

/**
 * Applies every manifest under `paths` with `kubectl apply --server-side` (the same path users
 * take; client-node's typed serializer drops schema fields such as x-kubernetes-validations).
 * Returns the objects applied.
 */
export async function applyManifestFiles(
  kubectl: string,
  kubeconfigPath: string,
  paths: readonly string[],
): Promise<KubernetesObject[]> {
  const existing = [];
  for (const path of paths) {
    try {
      await Deno.stat(path);
      existing.push(path);
    } catch { /* a folder that does not exist yet holds nothing to apply */ }
  }
  if (existing.length === 0) return [];
  const args = ["--kubeconfig", kubeconfigPath, "apply", "--server-side", "--force-conflicts"];
  args.push(`--field-manager=${FIELD_MANAGER}`, ...existing.flatMap((path) => ["-f", path]));
  const out = await new Deno.Command(kubectl, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(
      `kubectl apply of ${existing.join(", ")} failed:\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return await readManifests(existing);
}

/** Waits until every CustomResourceDefinition among `objects` reports `Established`. */
export async function waitForCrdsEstablished(
  kubectl: string,
  kubeconfigPath: string,
  objects: readonly KubernetesObject[],
  timeoutSeconds: number,
): Promise<void> {
  const crds = objects
    .filter((o) => o.kind === "CustomResourceDefinition")
    .map((o) => `crd/${o.metadata?.name ?? ""}`);
  if (crds.length === 0) return;
  const args = ["--kubeconfig", kubeconfigPath, "wait", "--for=condition=Established"];
  args.push(`--timeout=${timeoutSeconds}s`, ...crds);
  const out = await new Deno.Command(kubectl, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`CRDs not established: ${new TextDecoder().decode(out.stderr)}`);
  }
}

function isKubernetesObject(value: unknown): value is KubernetesObject {
  return typeof value === "object" && value !== null && "kind" in value &&
    "apiVersion" in value;
}
