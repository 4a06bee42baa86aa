/**
 * `deno task agent -- --node-name NODE [flags]`: the PureLB node agent (lbnodeagent).
 *
 * Every flag has an environment fallback; `--help` lists them. On SIGTERM or SIGINT it
 * withdraws every address it manages, then deletes its node Lease so that other nodes take
 * over at once.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { CoordinationApi, CoreApi, CustomObjectsLiteApi } from "../k8s/api.ts";
import {
  ApiConnection,
  configureLogging,
  errorMessage,
  loadClientConfig,
  registerApiRequestMetrics,
  registerInformerMetrics,
  serveOperations,
  stopOperations,
} from "../k8s/mod.ts";
import { EventRecorder } from "../k8s/events.ts";
import { GratuitousAnnouncer, Netlink } from "../netlink/mod.ts";
import { type AgentConfig, readAgentConfig, usage } from "./config.ts";
import { AgentController } from "./controller.ts";
import { agentInformers, bgpInformers } from "./informers.ts";
import { BgpController, BgpMetrics, BIRDC_PATHS, BirdDaemon } from "../bgp/mod.ts";
import { resolveExecutable } from "../netlink/process.ts";
import { NodeMembership } from "./membership.ts";
import { AgentMetrics } from "./metrics.ts";

/** Longest wait for Events of the shutdown to be written. */
const EVENT_FLUSH_MS = 2_000;

async function main(args: readonly string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage());
    return 0;
  }
  let config: AgentConfig;
  try {
    config = readAgentConfig(args, (name) => Deno.env.get(name));
    await configureLogging("purelb", config.logLevel, config.logFormat);
  } catch (error) {
    console.error(`agent: ${errorMessage(error)}\n${usage()}`);
    return 2;
  }
  const log = getLogger(["purelb", "agent"]);
  let clientConfig: ReturnType<typeof loadClientConfig>;
  let netlink: Netlink;
  try {
    clientConfig = loadClientConfig({ kubeconfig: config.kubeconfig });
    netlink = await Netlink.create(config.netns === undefined ? {} : { netns: config.netns });
  } catch (error) {
    log.fatal("{error}", { error: errorMessage(error) });
    return 2;
  }
  let announcer: GratuitousAnnouncer | undefined;
  try {
    announcer = await GratuitousAnnouncer.create({
      ...(config.netns === undefined ? {} : { netns: config.netns }),
      ipPath: netlink.ip.ipPath,
    });
  } catch (error) {
    log.warn("gratuitous ARP / NA unavailable (sendgarp will only warn): {error}", {
      error: errorMessage(error),
    });
  }
  const namespace = config.namespace ?? clientConfig.namespace ?? "purelb-system";
  const connection = new ApiConnection(clientConfig.access);
  // Lease writes get their own connection with a deadline inside the renew period, so a hung
  // request never delays the next renewal.
  const leaseConnection = new ApiConnection(
    clientConfig.access,
    Math.max(1_000, config.leaseRenewMs),
  );
  const metrics = new AgentMetrics(config.nodeName);
  registerApiRequestMetrics(metrics.registry, [connection, leaseConnection]);
  const events = new EventRecorder(new CoreApi(connection), {
    component: "purelb-lbnodeagent",
    host: config.nodeName,
    onError: (error) => log.warn("event not written: {error}", { error: errorMessage(error) }),
  });
  // The membership tells the controller about fence changes; the controller needs the membership.
  const controllerRef: { current?: AgentController } = {};
  const membership = new NodeMembership({
    api: new CoordinationApi(leaseConnection),
    namespace,
    nodeName: config.nodeName,
    leaseDurationMs: config.leaseDurationMs,
    renewMs: config.leaseRenewMs,
    onFenceChange: (fenced) => {
      if (fenced) {
        log.warn("Lease not renewed for a full duration: fenced, withdrawing local addresses");
      } else log.info("Lease {name} held", { name: membership.leaseName });
      controllerRef.current?.kick();
    },
    // The second renewal after start (or after the node came to be selected) ends the settling:
    // publish subnets and claim now, not at the next resync, so that other nodes stop counting
    // this one out at once.
    onRenewed: () => controllerRef.current?.renewed(),
    onError: (message) => {
      metrics.leaseErrors.inc();
      log.warn("{message}", { message });
    },
  });
  const informers = agentInformers(connection, namespace, config.nodeName);
  const running = new AgentController({
    caches: informers.caches,
    announcements: informers.announcements,
    namespace,
    nodeName: config.nodeName,
    netlink,
    announcer,
    membership,
    events,
    metrics,
    resyncMs: config.resyncMs,
  });
  controllerRef.current = running;
  let bgp: BgpController | undefined;
  if (config.bgp !== undefined) {
    const birdcPath = config.bgp.birdcPath ??
      await resolveExecutable("birdc", BIRDC_PATHS).catch(() => BIRDC_PATHS[0] ?? "birdc");
    const bgpCaches = bgpInformers(connection, namespace);
    bgp = new BgpController({
      caches: { ...bgpCaches, node: informers.caches.node },
      api: new CustomObjectsLiteApi(connection),
      daemon: new BirdDaemon({ dir: config.bgp.dir, birdcPath }),
      events,
      metrics: new BgpMetrics(metrics.registry),
      namespace,
      nodeName: config.nodeName,
      nodeFacts: () => running.nodeFacts,
      pollMs: config.bgp.pollMs,
    });
  }
  registerInformerMetrics(metrics.registry, () => informers.counts);
  metrics.observe({
    liveNodes: () => running.liveNodeCount,
    fenced: () => membership.fenced,
    localWon: () => running.localWonCount,
    ipProcesses: () => netlink.ip.processesSpawned,
  });
  const membershipRunning = membership.run();
  running.start();
  bgp?.start();

  const server = serveOperations(config.listen, {
    registry: metrics.registry,
    healthy: () => true,
    ready: () => {
      const readiness = running.readiness;
      const bgpProblem = bgp?.problem;
      if (!readiness.ready || bgpProblem === undefined) return readiness;
      return { ready: false, reason: `BGP: ${bgpProblem}` };
    },
  });
  log.info(
    "agent for node {node} started: namespace {namespace}, netns {netns}, lease {duration} s " +
      "renewed every {renew} s, resync {resync} s, BGP {bgp}, config from {source}, operations on port {port}",
    {
      node: config.nodeName,
      namespace,
      netns: config.netns ?? "(current)",
      duration: config.leaseDurationMs / 1000,
      renew: config.leaseRenewMs / 1000,
      resync: config.resyncMs / 1000,
      bgp: config.bgp === undefined ? "off" : `BIRD in ${config.bgp.dir}`,
      source: clientConfig.source.kind,
      port: server.addr.port,
    },
  );

  const signal = await new Promise<string>((resolve) => {
    for (const name of ["SIGINT", "SIGTERM"] as const) {
      Deno.addSignalListener(name, () => resolve(name));
    }
  });
  const stopStarted = performance.now();
  log.info("{signal}: withdrawing and leaving", { signal });
  await running.stop();
  // Routers first: they stop sending here while the addresses still answer.
  await bgp?.withdrawRoutes();
  await bgp?.stop();
  try {
    const result = await running.withdrawAll();
    log.info("withdrew {count} addresses", { count: result?.applied.length ?? 0 });
  } catch (error) {
    log.error("withdrawing failed: {error}", { error: errorMessage(error) });
  }
  await membership.stop();
  const released = await membership.release();
  log.info("Lease {name} {what} after {ms} ms", {
    name: membership.leaseName,
    what: released ? "deleted" : "NOT deleted",
    ms: Math.round(performance.now() - stopStarted),
  });
  await membershipRunning;
  await running.settle();
  await Promise.race([
    events.flush(),
    new Promise((resolve) => setTimeout(resolve, EVENT_FLUSH_MS)),
  ]);
  await stopOperations(server);
  connection.close();
  leaseConnection.close();
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
