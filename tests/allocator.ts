/**
 * Runs the real allocator for end-to-end tests: as its own service account, bound to the
 * ClusterRoles of `deploy/rbac/allocator.yaml` (nothing else), under its production Deno
 * permission set, with the test namespace as its ServiceGroup namespace.
 *
 * @module
 */

import type { V1Service } from "@kubernetes/client-node";
import { CoreV1Api, CustomObjectsApi, typedApi } from "../k8s/client.ts";
import { fileURLToPath } from "node:url";
import { allocatorPermissions } from "../deploy/permissions.ts";
import { ApiConnection } from "../k8s/transport.ts";
import type { TestCluster } from "./cluster.ts";
import { type ProgramProcess, programServiceAccount, spawnProgram } from "./programs.ts";
import { waitFor } from "./wait.ts";

const MAIN = fileURLToPath(new URL("../allocator/main.ts", import.meta.url));

/** A running allocator process. */
export type AllocatorProcess = ProgramProcess;

/** Creates the allocator's service account in `namespace` with the deploy/ RBAC; returns its kubeconfig file. */
export function allocatorServiceAccount(
  cluster: TestCluster,
  namespace: string,
  dir: string,
): Promise<string> {
  return programServiceAccount(cluster, namespace, "allocator", dir);
}

/** `PURELB_PROFILE_DIR=dir` writes a V8 CPU profile (and a Markdown summary) per process. */
export function profilingFlags(): string[] {
  const dir = Deno.env.get("PURELB_PROFILE_DIR");
  return dir ? [`--cpu-prof-dir=${dir}`, "--cpu-prof-md"] : [];
}

/** Starts `allocator/main.ts` with the allocator's permission set. */
export function startAllocator(
  kubeconfig: string,
  namespace: string,
  extraArgs: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): AllocatorProcess {
  return spawnProgram(
    [
      "run",
      ...profilingFlags(),
      ...allocatorPermissions(kubeconfig),
      MAIN,
      "--kubeconfig",
      kubeconfig,
      "--namespace",
      namespace,
      "--listen",
      "127.0.0.1:0",
      "--log-level",
      "debug",
      ...extraArgs,
    ],
    "the allocator to start",
    env,
  );
}

/** API helpers for the tests' own (admin) writes and reads. */
export class TestApi {
  readonly connection: ApiConnection;
  readonly core: CoreV1Api;
  readonly custom: CustomObjectsApi;

  constructor(cluster: TestCluster, readonly namespace: string) {
    this.connection = new ApiConnection(cluster.adminConfig());
    this.core = typedApi(this.connection, CoreV1Api);
    this.custom = typedApi(this.connection, CustomObjectsApi);
  }

  async createGroup(name: string, spec: unknown): Promise<void> {
    await this.custom.createNamespacedCustomObject({
      group: "purelb.io",
      version: "v1",
      namespace: this.namespace,
      plural: "servicegroups",
      body: { apiVersion: "purelb.io/v1", kind: "ServiceGroup", metadata: { name }, spec },
    });
  }

  async replaceGroupSpec(name: string, spec: unknown): Promise<void> {
    await this.custom.patchNamespacedCustomObject({
      group: "purelb.io",
      version: "v1",
      namespace: this.namespace,
      plural: "servicegroups",
      name,
      body: [{ op: "replace", path: "/spec", value: spec }],
    });
  }

  async group(name: string): Promise<{ status?: Record<string, unknown> }> {
    return await this.custom.getNamespacedCustomObject({
      group: "purelb.io",
      version: "v1",
      namespace: this.namespace,
      plural: "servicegroups",
      name,
    }) as { status?: Record<string, unknown> };
  }

  /** Creates a LoadBalancer Service with port 80/TCP unless `spec` says otherwise. */
  async createService(
    name: string,
    spec: NonNullable<V1Service["spec"]> = {},
    annotations: Record<string, string> = {},
  ): Promise<void> {
    await this.core.createNamespacedService({
      namespace: this.namespace,
      body: {
        metadata: { name, annotations },
        spec: { type: "LoadBalancer", ports: [{ port: 80, protocol: "TCP" }], ...spec },
      },
    });
  }

  async ingress(name: string): Promise<string[]> {
    const svc = await this.core.readNamespacedService({ namespace: this.namespace, name });
    return (svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? "");
  }

  async waitForIngress(name: string, expected: readonly string[], timeoutMs = 15_000) {
    let last: string[] = [];
    await waitFor(
      async () => {
        last = await this.ingress(name);
        return last.join(",") === expected.join(",");
      },
      timeoutMs,
      `${name} to have ingress [${expected}]`,
    ).catch((error) => {
      throw new Error(`${error.message}; last seen [${last}]`);
    });
  }

  /** Messages of the events with `reason` on Service `name`. */
  async events(name: string, reason: string): Promise<string[]> {
    const list = await this.core.listNamespacedEvent({
      namespace: this.namespace,
      fieldSelector: `involvedObject.name=${name},reason=${reason}`,
    });
    return list.items.map((e) => e.message ?? "");
  }

  async waitForEvent(name: string, reason: string, message: RegExp, timeoutMs = 15_000) {
    await waitFor(
      async () => (await this.events(name, reason)).some((m) => message.test(m)),
      timeoutMs,
      `a ${reason} event on ${name} matching ${message}`,
    );
  }

  /** Deletes every Service of the namespace (there is no namespace controller to do it). */
  async deleteAllServices(): Promise<void> {
    const list = await this.core.listNamespacedService({ namespace: this.namespace });
    for (const svc of list.items) {
      await this.core.deleteNamespacedService({
        namespace: this.namespace,
        name: svc.metadata?.name ?? "",
      });
    }
  }

  close(): void {
    this.connection.close();
  }
}

/** What {@linkcode withAllocator} gives a test. */
export interface Scenario {
  readonly api: TestApi;
  readonly allocator: AllocatorProcess;
  readonly namespace: string;
  /** Starts another allocator replica (stopped at the end of the test). */
  spawn(extraArgs?: readonly string[]): AllocatorProcess;
}

/** Runs `body` with a fresh namespace, an allocator serving it, and cleans up after. */
export async function withAllocator(
  c: TestCluster,
  prefix: string,
  groups: Record<string, unknown>,
  body: (s: Scenario) => Promise<void>,
  extraArgs: readonly string[] = [],
  env: Readonly<Record<string, string>> = {},
): Promise<void> {
  const namespace = await c.createNamespace(prefix);
  const dir = await Deno.makeTempDir({ prefix: "purelb-alloc-" });
  const api = new TestApi(c, namespace);
  for (const [name, local] of Object.entries(groups)) await api.createGroup(name, { local });
  const kubeconfig = await allocatorServiceAccount(c, namespace, dir);
  const processes: AllocatorProcess[] = [];
  const spawn = (args: readonly string[] = extraArgs) => {
    const started = startAllocator(kubeconfig, namespace, args, env);
    processes.push(started);
    return started;
  };
  const allocator = spawn();
  try {
    await body({ api, allocator, namespace, spawn });
  } catch (error) {
    for (const p of processes) {
      console.error(`--- allocator ${p.pid} ---\n${p.logs().slice(-6000)}`);
    }
    throw error;
  } finally {
    for (const p of processes) await p.stop();
    await api.deleteAllServices();
    api.close();
    await Deno.remove(dir, { recursive: true });
  }
}
