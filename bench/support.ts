/**
 * Small pieces the benchmarks share: bounded concurrency, percentiles, and a watch that records
 * when each Service first has an address.
 *
 * @module
 */

import type { V1Service } from "@kubernetes/client-node";
import { ResilientInformer } from "../k8s/informer.ts";
import { withoutVersion } from "../k8s/slim.ts";
import type { ApiConnection } from "../k8s/transport.ts";
import { waitFor } from "../tests/wait.ts";

/** Runs `fn` on every item, at most `limit` at a time. */
export async function inParallel<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) {
      const item = items[next++];
      if (item !== undefined) await fn(item);
    }
  }));
}

/** The `p` quantile (0 to 1) of ascending `sorted` values. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** Records when each Service of `namespace` was first seen with an address. */
export async function watchAddressed(connection: ApiConnection, namespace: string) {
  const addressedAt = new Map<string, number>();
  const watcher = new ResilientInformer<V1Service>(connection, {
    name: "services",
    path: `/api/v1/namespaces/${namespace}/services`,
    transform: withoutVersion,
  });
  watcher.onChange((_type, svc) => {
    const name = svc.metadata?.name ?? "";
    if (!addressedAt.has(name) && (svc.status?.loadBalancer?.ingress ?? []).length > 0) {
      addressedAt.set(name, performance.now());
    }
  });
  watcher.start();
  await watcher.synced;
  return { addressedAt, stop: () => watcher.stop() };
}

/**
 * A single-stack LoadBalancer Service on port 80/TCP without node ports (thousands of Services
 * do not fit the default node port range, 30000-32767).
 */
export function loadBalancerService(
  name: string,
  family: "IPv4" | "IPv6",
  annotations: Record<string, string> = {},
): V1Service {
  return {
    metadata: { name, annotations },
    spec: {
      type: "LoadBalancer",
      allocateLoadBalancerNodePorts: false,
      ipFamilies: [family],
      ipFamilyPolicy: "SingleStack",
      ports: [{ port: 80, protocol: "TCP" }],
    },
  };
}

/** Waits until a program started by the test harness answers `/readyz` with 200. */
export async function waitUntilReady(program: { port(): Promise<number> }): Promise<void> {
  const port = await program.port();
  await waitFor(
    async () => {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      await response.body?.cancel();
      return response.ok;
    },
    30_000,
    "the program to be ready",
    10,
  );
}
