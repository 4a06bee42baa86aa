/**
 * Re-makes the fixtures in this directory from a real BIRD 2 talking to a real FRR, each in a
 * network namespace of its own (run as root, from the repository root):
 *
 * ```sh
 * deno run --allow-all bgp/testdata/birdc/capture.ts
 * ```
 *
 * Namespaces `hb-cap-node` (BIRD, config rendered by `renderBirdConfig`) and `hb-cap-peer`
 * (FRR zebra, bgpd, bfdd, AS 65000) are joined by a veth; the node's `kube-lb0` (a bridge
 * standing in for the dummy interface) carries 203.0.113.5/32, 198.51.100.17/28 and
 * 2001:db8:5::5/128. The node's neighbours cover the cases the parser meets: established over
 * IPv4 (IPv4 and IPv6 channels) and IPv6, a peer that refuses our AS, a peer whose AS we
 * refuse, an MD5 password mismatch, BFD, an administratively down neighbour, a neighbour that
 * does not exist and one that is not on a connected network. Then it runs `birdc configure`
 * with an unchanged, a changed, a shrunk and a broken config, and finally stops FRR's bfdd.
 *
 * Written here: `*.txt` (birdc output), `configure_*.status` (birdc's exit code) and
 * `bird_log.txt` (BIRD's own log, with times). The unit tests only read these files. Everything
 * started is stopped and both namespaces are deleted, also on failure. Only documentation
 * addresses are used.
 *
 * @module
 */

import { renderBirdConfig } from "../../bird_config.ts";
import { parseBirdConfigureReply, parseBirdProtocols } from "../../birdc.ts";
import type { BirdBgpState, BirdConfigInput, RenderedNeighbor } from "../../model.ts";

const OUT = new URL("./", import.meta.url).pathname;
const NODE = "hb-cap-node";
const PEER = "hb-cap-peer";
const FRR_BIN = "/usr/lib/frr";

/** Undo steps, run last first. */
const cleanups: Array<() => Promise<void>> = [];
const started = Date.now();
/** The temporary directory of FRR's and BIRD's files, once made. */
let workDir: string | undefined;

function log(message: string): void {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${message}`);
}

async function run(cmd: string, args: string[], check = true) {
  const out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  if (check && !out.success) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${out.code}): ${stderr}${stdout}`);
  }
  return { code: out.code, stdout, stderr };
}

function inNs(ns: string, cmd: string, args: string[], check = true) {
  return run("ip", ["netns", "exec", ns, cmd, ...args], check);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function setUpNetwork(): Promise<void> {
  for (const ns of [NODE, PEER]) {
    await run("ip", ["netns", "add", ns]);
    cleanups.push(async () => {
      await run("ip", ["netns", "del", ns], false);
    });
    await inNs(ns, "ip", ["link", "set", "lo", "up"]);
  }
  await run("ip", [
    "link",
    "add",
    "hb-n0",
    "netns",
    NODE,
    "type",
    "veth",
    "peer",
    "hb-p0",
    "netns",
    PEER,
  ]);
  const node = [
    "addr add 192.0.2.11/24 dev hb-n0",
    "addr add 192.0.2.12/24 dev hb-n0",
    "addr add 192.0.2.13/24 dev hb-n0",
    "addr add 192.0.2.14/24 dev hb-n0",
    "addr add 192.0.2.16/24 dev hb-n0",
    "addr add 2001:db8:1::11/64 dev hb-n0 nodad",
    "link set hb-n0 up",
    "link add kube-lb0 type bridge",
    "link set kube-lb0 up",
    "addr add 203.0.113.5/32 dev kube-lb0",
    "addr add 198.51.100.17/28 dev kube-lb0",
    "addr add 2001:db8:5::5/128 dev kube-lb0 nodad",
  ];
  for (const line of node) await inNs(NODE, "ip", line.split(" "));
  const peer = [
    "addr add 192.0.2.1/24 dev hb-p0",
    "addr add 192.0.2.2/24 dev hb-p0",
    "addr add 192.0.2.3/24 dev hb-p0",
    "addr add 192.0.2.4/24 dev hb-p0",
    "addr add 192.0.2.6/24 dev hb-p0",
    "addr add 2001:db8:1::1/64 dev hb-p0 nodad",
    "link set hb-p0 up",
  ];
  for (const line of peer) await inNs(PEER, "ip", line.split(" "));
}

const FRR_CONF = `frr defaults traditional
hostname hb-cap-peer
!
bfd
 profile fast
  receive-interval 100
  transmit-interval 100
  detect-multiplier 3
 !
!
router bgp 65000
 bgp router-id 192.0.2.1
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor 192.0.2.11 remote-as 65001
 neighbor 2001:db8:1::11 remote-as 65001
 neighbor 192.0.2.12 remote-as 65002
 neighbor 192.0.2.12 update-source 192.0.2.2
 neighbor 192.0.2.13 remote-as 65001
 neighbor 192.0.2.13 update-source 192.0.2.3
 neighbor 192.0.2.13 password frr-side-key
 neighbor 192.0.2.14 remote-as 65001
 neighbor 192.0.2.14 update-source 192.0.2.4
 neighbor 192.0.2.14 bfd profile fast
 neighbor 192.0.2.16 remote-as 65001
 neighbor 192.0.2.16 update-source 192.0.2.6
 !
 address-family ipv4 unicast
  network 198.51.100.128/25
  neighbor 192.0.2.11 activate
  neighbor 192.0.2.12 activate
  neighbor 192.0.2.13 activate
  neighbor 192.0.2.14 activate
  neighbor 192.0.2.16 activate
 exit-address-family
 !
 address-family ipv6 unicast
  neighbor 192.0.2.11 activate
  neighbor 2001:db8:1::11 activate
 exit-address-family
!
`;

/** Starts zebra, bgpd and bfdd in the peer namespace and loads {@linkcode FRR_CONF}. */
async function startFrr(dir: string): Promise<void> {
  await Deno.chmod(dir, 0o777);
  for (const daemon of ["zebra", "bgpd", "bfdd"]) {
    const pidFile = `${dir}/${daemon}.pid`;
    const extra = daemon === "bgpd"
      ? ["-p", "179"]
      : daemon === "bfdd"
      ? ["--bfdctl", `${dir}/bfdd.sock`]
      : [];
    // In a UTS namespace of their own, so that the hostname bgpd announces (BGP hostname
    // capability, shown by BIRD) is this one and not the capturing machine's.
    await inNs(PEER, "unshare", [
      "--uts",
      "sh",
      "-c",
      'hostname hb-cap-peer && exec "$0" "$@"',
      `${FRR_BIN}/${daemon}`,
      "-d",
      "-f",
      "/dev/null",
      "--vty_socket",
      dir,
      "-i",
      pidFile,
      "-z",
      `${dir}/zserv.api`,
      "-u",
      "frr",
      "-g",
      "frr",
      ...extra,
    ]);
    cleanups.push(() => stopByPidFile(pidFile));
    await waitFor(`${daemon} pid file`, async () => (await readPid(pidFile)) !== undefined, 10_000);
  }
  const conf = `${dir}/frr.conf`;
  await Deno.writeTextFile(conf, FRR_CONF);
  await run("vtysh", ["--vty_socket", dir, "-f", conf]);
}

async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await Deno.readTextFile(pidFile)).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Stops the process (started by this script) whose id is in `pidFile`. */
async function stopByPidFile(pidFile: string): Promise<void> {
  const pid = await readPid(pidFile);
  if (pid === undefined) return;
  try {
    Deno.kill(pid, "SIGTERM");
  } catch { /* already gone */ }
  for (let i = 0; i < 50; i++) {
    try {
      Deno.kill(pid, "SIGCONT");
    } catch {
      return;
    }
    await sleep(100);
  }
  try {
    Deno.kill(pid, "SIGKILL");
  } catch { /* gone */ }
}

async function waitFor(what: string, ready: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await ready()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}`);
}

function neighbor(address: string, more: Partial<RenderedNeighbor>): RenderedNeighbor {
  return {
    address,
    addressFamily: address.includes(":") ? "ipv6" : "ipv4",
    peerAsn: 65000,
    localAsn: undefined,
    description: undefined,
    adminDown: false,
    password: undefined,
    families: address.includes(":") ? ["ipv6-unicast"] : ["ipv4-unicast"],
    holdTimeSeconds: 9,
    keepaliveSeconds: 3,
    connectRetrySeconds: 5,
    multihopTtl: undefined,
    localAddress: undefined,
    passive: false,
    bfd: undefined,
    ...more,
  };
}

const NEIGHBORS: readonly RenderedNeighbor[] = [
  neighbor("192.0.2.1", {
    description: "FRR over IPv4, both families",
    localAddress: "192.0.2.11",
    families: ["ipv4-unicast", "ipv6-unicast"],
  }),
  neighbor("2001:db8:1::1", { description: "FRR over IPv6" }),
  neighbor("192.0.2.2", { description: "FRR expects AS 65002", localAddress: "192.0.2.12" }),
  neighbor("192.0.2.3", {
    description: "MD5 password mismatch",
    localAddress: "192.0.2.13",
    password: "bird-side-key",
  }),
  neighbor("192.0.2.4", {
    description: "FRR with BFD",
    localAddress: "192.0.2.14",
    bfd: { minRxMs: 100, minTxMs: 100, multiplier: 3 },
  }),
  neighbor("192.0.2.5", { description: "administratively down", adminDown: true }),
  neighbor("192.0.2.6", {
    description: "we expect AS 65099",
    localAddress: "192.0.2.16",
    peerAsn: 65099,
  }),
  neighbor("192.0.2.99", { description: "nobody at this address" }),
  neighbor("198.51.100.99", { description: "not on a connected network" }),
];

function configInput(neighbors: readonly RenderedNeighbor[]): BirdConfigInput {
  return {
    routerId: "192.0.2.11",
    asn: 65001,
    listenPort: undefined,
    interfaces: ["kube-lb0"],
    neighbors,
  };
}

interface Bird {
  readonly socket: string;
  readonly config: string;
}

async function startBird(dir: string, text: string): Promise<Bird> {
  const config = `${dir}/bird.conf`;
  const socket = `${dir}/bird.ctl`;
  await Deno.writeTextFile(config, text);
  const logFile = await Deno.open(`${dir}/bird.log`, { write: true, create: true, truncate: true });
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      NODE,
      "bird",
      "-f",
      "-c",
      config,
      "-s",
      socket,
      "-P",
      `${dir}/bird.pid`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const logged = child.stderr.pipeTo(logFile.writable);
  cleanups.push(async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await logged.catch(() => {});
  });
  await waitFor(
    "BIRD's socket",
    async () => (await birdc({ socket, config }, ["show", "status"], false)).code === 0,
    10_000,
  );
  return { socket, config };
}

function birdc(bird: Bird, args: string[], check = true) {
  return inNs(NODE, "birdc", ["-s", bird.socket, ...args], check);
}

async function protocols(bird: Bird): Promise<readonly BirdBgpState[]> {
  return parseBirdProtocols((await birdc(bird, ["show", "protocols", "all"])).stdout);
}

function byName(states: readonly BirdBgpState[]): Map<string, BirdBgpState> {
  return new Map(states.map((state) => [state.name, state]));
}

async function save(name: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${OUT}${name}`, text);
  log(`wrote ${name}`);
}

async function saveCommand(bird: Bird, name: string, args: string[]): Promise<string> {
  const text = (await birdc(bird, args)).stdout;
  await save(name, text);
  return text;
}

/** Runs `birdc configure` after writing `text` as the config; saves reply and exit code. */
async function configure(bird: Bird, name: string, text: string) {
  await Deno.writeTextFile(bird.config, text);
  const t0 = Date.now();
  const reply = await birdc(bird, ["configure"], false);
  log(
    `configure ${name}: exit ${reply.code} after ${Date.now() - t0} ms: ${
      JSON.stringify(reply.stdout)
    }`,
  );
  await save(`configure_${name}.txt`, reply.stdout);
  await save(`configure_${name}.status`, `${reply.code}\n`);
  return parseBirdConfigureReply(reply.stdout, reply.code);
}

/** Logs which protocols' Since changed between two snapshots. */
function compareSince(before: readonly BirdBgpState[], after: readonly BirdBgpState[]): void {
  const old = byName(before);
  for (const state of after) {
    const was = old.get(state.name);
    const change = was === undefined
      ? "new"
      : was.since === state.since
      ? "unchanged"
      : `${was.since} -> ${state.since}`;
    log(`  ${state.name}: ${state.bgpState}, since ${change}`);
  }
  for (const name of old.keys()) {
    if (!after.some((state) => state.name === name)) log(`  ${name}: removed`);
  }
}

async function main(): Promise<void> {
  if (Deno.uid() !== 0) throw new Error("run as root (network namespaces)");
  const dir = await Deno.makeTempDir({ prefix: "hb-capture-" });
  workDir = dir;
  cleanups.push(() => Deno.remove(dir, { recursive: true }));
  await setUpNetwork();
  await startFrr(dir);
  log("FRR started");

  const full = renderBirdConfig(configInput(NEIGHBORS));
  const bird = await startBird(dir, full);
  log("BIRD started");
  await saveCommand(bird, "starting.txt", ["show", "protocols", "all"]);

  let firstEstablished: number | undefined;
  await waitFor("sessions and BFD", async () => {
    const states = byName(await protocols(bird));
    const up = ["peer_192_0_2_1", "peer_2001_db8_1__1", "peer_192_0_2_4"].every((name) =>
      states.get(name)?.bgpState === "Established"
    );
    if (up && firstEstablished === undefined) {
      firstEstablished = Date.now();
      log("the three reachable sessions are Established");
    }
    const errors = ["peer_192_0_2_2", "peer_192_0_2_6"].every((name) =>
      states.get(name)?.lastError !== undefined
    );
    const bfd = (await birdc(bird, ["show", "bfd", "sessions"])).stdout;
    const bfdUp = /192\.0\.2\.4\s.*\sUp\s/.test(bfd);
    return up && errors && bfdUp;
  }, 60_000);
  log(
    `BFD Up ${
      firstEstablished === undefined ? "?" : Date.now() - firstEstablished
    } ms after Established`,
  );
  await sleep(3_000); // let counters and the password-mismatch connect attempt settle
  const steady = await protocols(bird);
  await saveCommand(bird, "show_protocols_all.txt", ["show", "protocols", "all"]);
  await saveCommand(bird, "show_protocols.txt", ["show", "protocols"]);
  await saveCommand(bird, "show_bfd_sessions.txt", ["show", "bfd", "sessions"]);
  await saveCommand(bird, "show_protocols_all_one.txt", [
    "show",
    "protocols",
    "all",
    "peer_192_0_2_1",
  ]);

  log("configure with the same config:");
  await configure(bird, "unchanged", full);
  await sleep(1_000);
  const afterSame = await protocols(bird);
  compareSince(steady, afterSame);

  log("configure with one neighbour added and a description changed:");
  const added = NEIGHBORS.map((n) =>
    n.address === "2001:db8:1::1" ? { ...n, description: "FRR over IPv6, renamed" } : n
  );
  added.push(neighbor("192.0.2.98", { description: "added later" }));
  await configure(bird, "reconfigured", renderBirdConfig(configInput(added)));
  await sleep(1_000);
  const afterAdd = await protocols(bird);
  compareSince(afterSame, afterAdd);

  log("configure with the hold time of the IPv6 neighbour changed:");
  const held = added.map((n) =>
    n.address === "2001:db8:1::1" ? { ...n, holdTimeSeconds: 12, keepaliveSeconds: 4 } : n
  );
  await configure(bird, "hold_time_changed", renderBirdConfig(configInput(held)));
  await sleep(1_000);
  const afterHold = await protocols(bird);
  compareSince(afterAdd, afterHold);
  await waitFor(
    "IPv6 session back",
    async () => byName(await protocols(bird)).get("peer_2001_db8_1__1")?.bgpState === "Established",
    30_000,
  );
  log("IPv6 session Established again");

  log("configure with the established IPv4 neighbour removed:");
  const removed = held.filter((n) => n.address !== "192.0.2.1");
  const removal = await configure(bird, "removed", renderBirdConfig(configInput(removed)));
  log(`  parsed as ${JSON.stringify(removal)}`);
  await sleep(1_000);
  compareSince(afterHold, await protocols(bird));

  log("configure with a syntax error:");
  const broken = renderBirdConfig(configInput(removed)) + "GARBAGE\n";
  const refused = await configure(bird, "syntax_error", broken);
  log(`  parsed as ${JSON.stringify(refused)}; broken line ${broken.split("\n").length - 1}`);

  log("configure back to the full config:");
  await configure(bird, "restored", full);
  await waitFor("sessions back", async () => {
    const states = byName(await protocols(bird));
    return ["peer_192_0_2_1", "peer_2001_db8_1__1", "peer_192_0_2_4"].every((name) =>
      states.get(name)?.bgpState === "Established"
    );
  }, 60_000);
  await sleep(2_000);

  log("stopping FRR's bfdd:");
  const bfdStopped = Date.now();
  await stopByPidFile(`${dir}/bfdd.pid`);
  await waitFor(
    "BFD down",
    async () => byName(await protocols(bird)).get("peer_192_0_2_4")?.bgpState !== "Established",
    30_000,
  );
  log(`peer_192_0_2_4 left Established ${Date.now() - bfdStopped} ms after bfdd was stopped`);
  await saveCommand(bird, "bfd_down.txt", ["show", "protocols", "all"]);
  await saveCommand(bird, "bfd_down_sessions.txt", ["show", "bfd", "sessions"]);
  await sleep(3_000);
  await saveCommand(bird, "bfd_down_later.txt", ["show", "protocols", "all", "peer_192_0_2_4"]);
}

try {
  await main();
} finally {
  while (cleanups.length > 0) {
    const undo = cleanups.pop();
    if (undo === undefined) break;
    // The temporary directory goes last: keep BIRD's log (BIRD is stopped by then).
    if (cleanups.length === 0 && workDir !== undefined) await copyBirdLog(workDir);
    try {
      await undo();
    } catch (error) {
      console.error(`cleanup: ${error}`);
    }
  }
  log("cleaned up");
}

async function copyBirdLog(dir: string): Promise<void> {
  try {
    await save("bird_log.txt", await Deno.readTextFile(`${dir}/bird.log`));
  } catch (error) {
    console.error(`no BIRD log: ${error}`);
  }
}
