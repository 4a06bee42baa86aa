/**
 * The shared test cluster: one real control plane per test run, tests isolated by namespace.
 *
 * `deno task test` starts the control plane once and hands its admin kubeconfig to every test
 * file through `PURELB_TEST_KUBECONFIG`. A test file run directly with `deno test` starts a
 * private control plane instead (slower, same behaviour), removed when the process ends.
 *
 * @module
 */

import type { V1PolicyRule } from "@kubernetes/client-node";
import { CoreV1Api, RbacAuthorizationV1Api, typedApi } from "../k8s/client.ts";
import { type ClusterAccess, parseKubeconfig } from "../k8s/config.ts";
import { ControlPlane } from "./controlplane/controlplane.ts";
import { isConflict } from "../k8s/errors.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { assertRoot, rootTestOptions } from "./system.ts";

/** Environment variable through which the test runner passes the admin kubeconfig. */
export const TEST_KUBECONFIG_ENV = "PURELB_TEST_KUBECONFIG";

/** What a cluster test gets: admin access and helpers to act as real service accounts. */
export interface TestCluster {
  readonly kubeconfigPath: string;
  /** Access as the admin user (system:masters). */
  adminConfig(): ClusterAccess;
  /** Creates a namespace `<prefix>-<random>` for one test and returns its name. */
  createNamespace(prefix: string): Promise<string>;
  /** Deletes a namespace (does not wait for finalization). */
  deleteNamespace(name: string): Promise<void>;
  /**
   * Access that authenticates as service account `namespace/name` with a real token from
   * the TokenRequest API; the service account is created if missing. RBAC is whatever the
   * cluster holds: grant it with the deploy/ manifests or {@linkcode grant}.
   */
  serviceAccountConfig(namespace: string, name: string): Promise<ClusterAccess>;
  /** Binds a new ClusterRole with `rules` to service account `namespace/name`. */
  grant(namespace: string, name: string, rules: readonly V1PolicyRule[]): Promise<void>;
  /** Removes what {@linkcode grant} gave `namespace/name`. */
  revoke(namespace: string, name: string): Promise<void>;
}

let privateControlPlane: Promise<ControlPlane> | undefined;

/** The cluster for this test run (starting a private control plane when run without the runner). */
export async function testCluster(): Promise<TestCluster> {
  const fromRunner = Deno.env.get(TEST_KUBECONFIG_ENV);
  if (fromRunner) return makeTestCluster(fromRunner);
  if (Deno.env.get("CI") === "true") {
    throw new Error(
      `${TEST_KUBECONFIG_ENV} is not set: under CI, run the tests with deno task test`,
    );
  }
  privateControlPlane ??= ControlPlane.start({
    log: (line) => console.error(`controlplane: ${line}`),
  }).then((cp) => {
    globalThis.addEventListener("unload", () => cp.killSync());
    return cp;
  });
  return makeTestCluster((await privateControlPlane).kubeconfigPath);
}

/**
 * Registers a test that runs against the real API server. Sanitizers are off: API clients keep
 * connection pools alive across tests, which is what they are for.
 */
export function clusterTest(name: string, fn: (cluster: TestCluster) => Promise<void>): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => fn(await testCluster()),
  });
}

/**
 * A {@linkcode clusterTest} that also needs root (network namespaces): ignored without root
 * locally, a clear failure without root in CI.
 */
export function rootClusterTest(
  name: string,
  fn: (cluster: TestCluster) => Promise<void>,
): void {
  if (rootTestOptions().ignore) {
    Deno.test({ name, ignore: true, fn: () => {} });
    return;
  }
  clusterTest(name, async (cluster) => {
    assertRoot();
    await fn(cluster);
  });
}

function makeTestCluster(kubeconfigPath: string): TestCluster {
  const admin = parseKubeconfig(Deno.readTextFileSync(kubeconfigPath), kubeconfigPath).access;
  const adminConfig = () => admin;
  const connection = new ApiConnection(adminConfig());
  const core = typedApi(connection, CoreV1Api);
  const rbac = typedApi(connection, RbacAuthorizationV1Api);

  return {
    kubeconfigPath,
    adminConfig,
    async createNamespace(prefix) {
      const name = `${prefix}-${crypto.randomUUID().slice(0, 8)}`;
      await core.createNamespace({ body: { metadata: { name } } });
      return name;
    },
    async deleteNamespace(name) {
      await core.deleteNamespace({ name });
    },
    async serviceAccountConfig(namespace, name) {
      try {
        await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
      const tokenRequest = await core.createNamespacedServiceAccountToken({
        namespace,
        name,
        body: { spec: { audiences: [], expirationSeconds: 3600 } },
      });
      const token = tokenRequest.status?.token;
      if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
      return { ...admin, bearerToken: () => token };
    },
    async grant(namespace, name, rules) {
      const roleName = grantName(namespace, name);
      await rbac.createClusterRole({ body: { metadata: { name: roleName }, rules: [...rules] } });
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name: roleName },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: roleName },
          subjects: [{ kind: "ServiceAccount", name, namespace }],
        },
      });
    },
    async revoke(namespace, name) {
      await rbac.deleteClusterRoleBinding({ name: grantName(namespace, name) });
      await rbac.deleteClusterRole({ name: grantName(namespace, name) });
    },
  };
}

function grantName(namespace: string, serviceAccount: string): string {
  return `test-${namespace}-${serviceAccount}`;
}
