/**
 * `deno task allocator -- [flags]`: the PureLB allocator.
 *
 * Every flag has an environment fallback; `--help` lists them.
 *
 * @module
 */

import { CoordinationApi, CoreApi, CustomObjectsLiteApi } from "../k8s/api.ts";
import { getLogger } from "@logtape/logtape";
import {
  ApiConnection,
  configureLogging,
  errorMessage,
  isInCluster,
  LeaderElector,
  loadClientConfig,
  registerApiRequestMetrics,
  registerInformerMetrics,
  serveOperations,
  stopOperations,
} from "../k8s/mod.ts";
import { EventRecorder } from "../k8s/events.ts";
import { AllocatorController } from "./controller.ts";
import { allocatorInformers } from "./informers.ts";
import { AllocatorMetrics } from "./metrics.ts";
import { NetboxBroker } from "./netbox.ts";
import { type AllocatorConfig, readAllocatorConfig, usage } from "./config.ts";

/** Longest wait for queued Events at shutdown. */
const EVENT_FLUSH_MS = 2_000;

async function main(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage());
    return 0;
  }
  let config: AllocatorConfig;
  try {
    config = readAllocatorConfig(args, (name) => Deno.env.get(name));
    await configureLogging("purelb", config.logLevel, config.logFormat);
  } catch (error) {
    console.error(`allocator: ${errorMessage(error)}\n${usage()}`);
    return 2;
  }
  const log = getLogger(["purelb", "allocator"]);
  let clientConfig: ReturnType<typeof loadClientConfig>;
  try {
    clientConfig = loadClientConfig({ kubeconfig: config.kubeconfig });
  } catch (error) {
    log.fatal("{error}", { error: errorMessage(error) });
    return 2;
  }
  const namespace = config.namespace ?? clientConfig.namespace ?? "purelb-system";
  const electing = config.leaderElection === "on" ||
    (config.leaderElection === "auto" && isInCluster());
  const connection = new ApiConnection(clientConfig.access);
  const metrics = new AllocatorMetrics();
  registerApiRequestMetrics(metrics.registry, [connection]);
  const core = new CoreApi(connection);
  const custom = new CustomObjectsLiteApi(connection);
  const events = new EventRecorder(core, {
    component: "purelb-allocator",
    instance: config.identity,
    // Events yield to allocations: they must not slow down status writes under load.
    maxConcurrentWrites: 2,
    onError: (error) => log.warn("event not written: {error}", { error: errorMessage(error) }),
  });
  const settings = { handleClasslessServices: config.handleClasslessServices };
  const informers = allocatorInformers(connection, namespace, settings);
  const caches = [informers.services, informers.groups, informers.leases];
  const controller = new AllocatorController({
    services: informers.services,
    groups: informers.groups,
    leases: informers.leases,
    api: {
      patchNamespacedServiceStatus: (param) => core.patchNamespacedServiceStatus(param),
      patchNamespacedCustomObjectStatus: (param) => custom.patchNamespacedCustomObjectStatus(param),
    },
    netbox: new NetboxBroker({ token: config.netboxToken, timeoutMs: config.netboxTimeoutMs }),
    namespace,
    settings,
    events,
    metrics,
    workers: config.workers,
  });
  registerInformerMetrics(metrics.registry, () => caches);
  for (const cache of caches) cache.start();

  let elector: LeaderElector | undefined;
  const server = serveOperations(config.listen, {
    registry: metrics.registry,
    healthy: () => true,
    ready: () => {
      if (!caches.every((cache) => cache.hasSynced)) {
        return { ready: false, reason: "caches not synced yet" };
      }
      return { ready: true };
    },
  });
  log.info(
    "allocator {identity} started: namespace {namespace}, leader election {electing}, " +
      "config from {source}, operations on port {port}",
    {
      identity: config.identity,
      namespace,
      electing: electing ? "on" : "off",
      source: clientConfig.source.kind,
      port: server.addr.port,
    },
  );

  const stopping = new AbortController();
  let leadership: Promise<void> = Promise.resolve();
  if (electing) {
    elector = new LeaderElector(new CoordinationApi(connection), {
      namespace,
      name: config.leaseName,
      identity: config.identity,
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      onStartedLeading: (signal) => {
        log.info("became leader");
        // A new term starts only after the previous one has wound down.
        leadership = leadership.then(() => controller.lead(signal));
      },
      onStoppedLeading: () => log.warn("lost leadership: stopped writing"),
      onNewLeader: (identity) => log.info("leader is {identity}", { identity }),
      onError: (message) => log.warn("leader election: {message}", { message }),
    });
    void elector.run();
  } else {
    leadership = controller.lead(stopping.signal);
  }

  const signal = await new Promise<string>((resolve) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  log.info("{signal}: shutting down", { signal });
  stopping.abort();
  await elector?.stop();
  await leadership;
  await Promise.all(caches.map((cache) => cache.stop()));
  // Events still queued (thousands after a burst) must not keep a stopping allocator alive.
  await Promise.race([
    events.flush(),
    new Promise((resolve) => setTimeout(resolve, EVENT_FLUSH_MS)),
  ]);
  await stopOperations(server);
  connection.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
