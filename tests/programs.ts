/**
 * What the end-to-end harnesses of both programs share: a service account bound to the
 * program's ClusterRoles from `deploy/rbac/` (nothing else), handed to the process as a
 * kubeconfig file.
 *
 * @module
 */

import { join } from "node:path";
import { RbacAuthorizationV1Api, typedApi } from "../k8s/client.ts";
import { kubeconfigText } from "../k8s/config.ts";
import { isConflict } from "../k8s/errors.ts";
import { ApiConnection } from "../k8s/transport.ts";
import type { TestCluster } from "./cluster.ts";

/** The programs and their service accounts (`deploy/rbac/<program>.yaml`). */
export type Program = "allocator" | "agent";

/** The name of the ClusterRoleBinding {@linkcode programServiceAccount} creates. */
export function programBindingName(program: Program, namespace: string): string {
  return `test-${program}-${namespace}`;
}

/**
 * Creates service account `program` in `namespace`, binds it to `purelb:<program>` (cluster
 * wide) and `purelb:<program>-namespaced` (in `namespace`), and writes a kubeconfig with a
 * real token for it into `dir`. Returns the file's path.
 */
export async function programServiceAccount(
  cluster: TestCluster,
  namespace: string,
  program: Program,
  dir: string,
): Promise<string> {
  const connection = new ApiConnection(cluster.adminConfig());
  const rbac = typedApi(connection, RbacAuthorizationV1Api);
  const subjects = [{ kind: "ServiceAccount", name: program, namespace }];
  const roleRef = (name: string) => ({
    apiGroup: "rbac.authorization.k8s.io",
    kind: "ClusterRole",
    name,
  });
  const ignoreConflict = (error: unknown) => {
    if (!isConflict(error)) throw error;
  };
  try {
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: programBindingName(program, namespace) },
        roleRef: roleRef(`purelb:${program}`),
        subjects,
      },
    }).catch(ignoreConflict);
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: `purelb:${program}` },
        roleRef: roleRef(`purelb:${program}-namespaced`),
        subjects,
      },
    }).catch(ignoreConflict);
  } finally {
    connection.close();
  }
  const access = await cluster.serviceAccountConfig(namespace, program);
  const path = join(dir, `${program}-${namespace}.kubeconfig`);
  await Deno.writeTextFile(path, kubeconfigText(access, namespace), { mode: 0o600 });
  return path;
}
