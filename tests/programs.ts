/**
 * What the end-to-end harnesses of both programs share: a service account bound to the
 * program's ClusterRoles from `deploy/rbac/` (nothing else), handed to the process as a
 * kubeconfig file.
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { V1PolicyRule, V1RoleRef } from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { RbacAuthorizationV1Api, typedApi } from "../k8s/client.ts";
import { kubeconfigText } from "../k8s/config.ts";
import { apiStatusCode, isConflict } from "../k8s/errors.ts";
import { ApiConnection } from "../k8s/transport.ts";
import type { TestCluster } from "./cluster.ts";
import { waitFor } from "./wait.ts";

/** The programs and their service accounts (`deploy/rbac/<program>.yaml`). */
export type Program = "allocator" | "agent";

/** For a create that may find the object there already (409): anything else is thrown. */
function ignoreConflict(error: unknown): void {
  if (!isConflict(error)) throw error;
}

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

/** Deletes the ClusterRoleBinding {@linkcode programServiceAccount} made (it is cluster-scoped). */
export async function removeProgramBinding(
  cluster: TestCluster,
  program: Program,
  namespace: string,
): Promise<void> {
  const connection = new ApiConnection(cluster.adminConfig());
  try {
    await typedApi(connection, RbacAuthorizationV1Api).deleteClusterRoleBinding({
      name: programBindingName(program, namespace),
    });
  } catch (error) {
    if (apiStatusCode(error) !== 404) throw error;
  } finally {
    connection.close();
  }
}

/** A running program (allocator or agent) started by a test harness. */
export interface ProgramProcess {
  readonly pid: number;
  /** Everything it logged so far (JSON lines; the oldest part is dropped past 2 MB). */
  logs(): string;
  /** The operations port (metrics, health), once it has logged it. */
  port(): Promise<number>;
  /** SIGTERM and wait. */
  stop(): Promise<Deno.CommandStatus>;
  /** SIGKILL and wait. */
  kill(): Promise<Deno.CommandStatus>;
  readonly exited: Promise<Deno.CommandStatus>;
}

/**
 * Runs `deno <args>`, collecting stdout and stderr; `what` names it in timeouts. `env` is added
 * to the inherited environment.
 */
export function spawnProgram(
  args: readonly string[],
  what: string,
  env: Readonly<Record<string, string>> = {},
): ProgramProcess {
  const child = new Deno.Command(Deno.execPath(), {
    args: [...args],
    env: { ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      output += decoder.decode(chunk, { stream: true });
      if (output.length > 2_000_000) output = output.slice(-500_000);
    }
  };
  const reading = Promise.all([collect(child.stdout), collect(child.stderr)]);
  const exited = child.status.then(async (status) => {
    await reading;
    return status;
  });
  const signal = async (name: Deno.Signal) => {
    try {
      child.kill(name);
    } catch { /* already exited */ }
    return await exited;
  };
  return {
    pid: child.pid,
    logs: () => output,
    port: async () => {
      await waitFor(() => /"port":(\d+)/.test(output), 30_000, what);
      return Number(/"port":(\d+)/.exec(output)?.[1]);
    },
    stop: () => signal("SIGTERM"),
    kill: () => signal("SIGKILL"),
    exited,
  };
}

/**
 * The sum of the samples of metric `name` on the program's `/metrics` whose labels include
 * `labels` (all samples when none are given); throws when there is no such sample.
 */
export async function metricValue(
  program: ProgramProcess,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${await program.port()}/metrics`);
  return sumOfSamples(await response.text(), name, labels);
}

/** See {@linkcode metricValue}: the same on Prometheus text. */
export function sumOfSamples(
  text: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): number {
  let sum = 0;
  let found = false;
  const pattern = new RegExp(`^${name}(?:\\{([^}]*)\\})? ([0-9.eE+-]+)$`, "gm");
  for (const match of text.matchAll(pattern)) {
    const labelText = match[1] ?? "";
    if (!Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) {
      continue;
    }
    found = true;
    sum += Number(match[2]);
  }
  if (!found) throw new Error(`metric ${name}${JSON.stringify(labels)} not found`);
  return sum;
}

const BGP_RBAC_FILES = ["rbac.yaml", "secrets-rbac.yaml"].map((file) =>
  fileURLToPath(new URL(`../deploy/components/bgp/${file}`, import.meta.url))
);

/** The name of the ClusterRoleBinding {@linkcode grantAgentBgpRoles} creates. */
function bgpBindingName(namespace: string): string {
  return `test-agent-bgp-${namespace}`;
}

/**
 * Gives the `agent` service account of `namespace` what the BGP component grants
 * (`deploy/components/bgp/*rbac.yaml`, nothing else): its ClusterRole cluster wide, its Roles
 * re-created in `namespace`, each bound to that service account.
 */
export async function grantAgentBgpRoles(cluster: TestCluster, namespace: string): Promise<void> {
  const connection = new ApiConnection(cluster.adminConfig());
  const rbac = typedApi(connection, RbacAuthorizationV1Api);
  const subjects = [{ kind: "ServiceAccount", name: "agent", namespace }];
  try {
    for (const file of BGP_RBAC_FILES) {
      for (const document of parseAllDocuments(await Deno.readTextFile(file))) {
        const object = document.toJS() as {
          kind?: string;
          metadata?: { name?: string };
          rules?: V1PolicyRule[];
          roleRef?: V1RoleRef;
        };
        const name = object.metadata?.name ?? "";
        switch (object.kind) {
          case "ClusterRole":
            await rbac.createClusterRole({
              body: { metadata: { name }, rules: object.rules ?? [] },
            })
              .catch(ignoreConflict);
            break;
          case "Role":
            await rbac.createNamespacedRole({
              namespace,
              body: { metadata: { name }, rules: object.rules ?? [] },
            }).catch(ignoreConflict);
            break;
          case "ClusterRoleBinding":
            if (object.roleRef === undefined) break;
            await rbac.createClusterRoleBinding({
              body: {
                metadata: { name: bgpBindingName(namespace) },
                roleRef: object.roleRef,
                subjects,
              },
            }).catch(ignoreConflict);
            break;
          case "RoleBinding":
            if (object.roleRef === undefined) break;
            await rbac.createNamespacedRoleBinding({
              namespace,
              body: { metadata: { name }, roleRef: object.roleRef, subjects },
            }).catch(ignoreConflict);
            break;
        }
      }
    }
  } finally {
    connection.close();
  }
}

/** Deletes the ClusterRoleBinding {@linkcode grantAgentBgpRoles} made. */
export async function removeAgentBgpBinding(
  cluster: TestCluster,
  namespace: string,
): Promise<void> {
  const connection = new ApiConnection(cluster.adminConfig());
  try {
    await typedApi(connection, RbacAuthorizationV1Api).deleteClusterRoleBinding({
      name: bgpBindingName(namespace),
    });
  } catch (error) {
    if (apiStatusCode(error) !== 404) throw error;
  } finally {
    connection.close();
  }
}
