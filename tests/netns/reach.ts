/**
 * Reaching a virtual address from a client namespace, usually through a router: a bounded
 * ping, and a TCP request answered by a small responder in a node namespace that names the
 * node (so a test sees which path a flow took). Also putting an address on a node's dummy
 * interface by hand, for tests that run without the agent.
 *
 * Everything is bounded: pings by count and `-w`, TCP requests by a deadline, and the
 * responder is a tracked process stopped by the caller or the LAN's safety net.
 *
 * @module
 */
import { waitFor } from "../wait.ts";
import { type Daemon, startDaemon } from "./daemon.ts";
import { runChecked, runCommand, testbedIpPath } from "./exec.ts";

/** What one bounded `ping` run saw. */
export interface PingResult {
  /** Echo requests sent. */
  readonly transmitted: number;
  /** Echo replies received. */
  readonly received: number;
  /** Everything ping printed. */
  readonly output: string;
}

/**
 * Reads the `N packets transmitted, M received` summary of `ping` output.
 *
 * @example
 * ```ts
 * import { parsePingSummary } from "./reach.ts";
 *
 * parsePingSummary("3 packets transmitted, 2 received, 33% packet loss, time 402ms");
 * // { transmitted: 3, received: 2 }
 * ```
 */
export function parsePingSummary(output: string): { transmitted: number; received: number } {
  const match = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(output);
  return { transmitted: Number(match?.[1] ?? 0), received: Number(match?.[2] ?? 0) };
}

/**
 * Pings `address` from namespace `netns`: at most `count` echo requests (default 3) 200 ms
 * apart, and never longer than `deadlineSeconds` (default 5). Never throws for lost pings.
 *
 * @example
 * ```ts
 * import { ping } from "./reach.ts";
 *
 * const result = await ping("plb1a2b3-remote", "192.0.2.200", { count: 3 });
 * result.received > 0;
 * ```
 */
export async function ping(
  netns: string,
  address: string,
  options: { readonly count?: number; readonly deadlineSeconds?: number } = {},
): Promise<PingResult> {
  const count = options.count ?? 3;
  const deadlineSeconds = options.deadlineSeconds ?? 5;
  const result = await runCommand(
    [
      testbedIpPath(),
      "netns",
      "exec",
      netns,
      "ping",
      "-n",
      "-i",
      "0.2",
      "-c",
      String(count),
      "-w",
      String(deadlineSeconds),
      address,
    ],
    { timeoutMs: (deadlineSeconds + 5) * 1000 },
  );
  const output = `${result.stdout}${result.stderr}`;
  return { ...parsePingSummary(output), output };
}

/**
 * Waits (deadline) until one ping from `netns` to `address` is answered; throws a
 * `WaitTimeoutError` with the last ping's output otherwise.
 *
 * @example
 * ```ts
 * import { waitForPing } from "./reach.ts";
 *
 * await waitForPing("plb1a2b3-remote", "2001:db8:5::200", 10_000);
 * ```
 */
export async function waitForPing(
  netns: string,
  address: string,
  timeoutMs: number,
): Promise<void> {
  let last = "";
  await waitFor(
    async () => {
      const result = await ping(netns, address, { count: 1, deadlineSeconds: 1 });
      last = result.output;
      return result.received > 0;
    },
    timeoutMs,
    `a ping answered by ${address} from ${netns}`,
  ).catch((error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`${message}; last ping said: ${last.trim().slice(-400)}`, { cause: error });
  });
}

/**
 * A TCP responder in a node namespace: every connection gets `reply` and is closed.
 *
 * @example
 * ```ts
 * import { startTcpResponder, tcpRequest } from "./reach.ts";
 *
 * const responder = await startTcpResponder("plb1a2b3-node-a", 8080, "node-a");
 * try {
 *   await tcpRequest("plb1a2b3-remote", "192.0.2.200", 8080); // "node-a"
 * } finally {
 *   await responder.stop();
 * }
 * ```
 */
export interface TcpResponder {
  /** The port it listens on (every address, IPv4 and IPv6). */
  readonly port: number;
  /** Stops it. */
  stop(): Promise<void>;
}

/** The responder: Deno itself, listening dual-stack on `[::]:port` (args: port, reply). */
const RESPONDER_SOURCE = `
const [port, reply] = Deno.args;
const listener = Deno.listen({ hostname: "::", port: Number(port) });
const bytes = new TextEncoder().encode(reply);
console.log("listening");
for await (const connection of listener) {
  connection.write(bytes).catch(() => {}).finally(() => {
    try { connection.close(); } catch { /* closed by the peer */ }
  });
}
`;

/**
 * Starts a {@link TcpResponder} on `port` in `netns` (this Deno binary, `deno eval`) and
 * resolves once it listens. It answers on every address of the namespace, so put the virtual
 * address on the node first or later, as the test needs.
 *
 * @example
 * ```ts
 * import { startTcpResponder } from "./reach.ts";
 *
 * const responder = await startTcpResponder("plb1a2b3-node-b", 8080, "node-b");
 * await responder.stop();
 * ```
 */
export async function startTcpResponder(
  netns: string,
  port: number,
  reply: string,
  timeoutMs = 15_000,
): Promise<TcpResponder> {
  const daemon: Daemon = await startDaemon(
    netns,
    [Deno.execPath(), "eval", "--no-config", "--quiet", RESPONDER_SOURCE, String(port), reply],
    { cwd: "/" },
  );
  try {
    await waitFor(
      () => daemon.hasExited() || daemon.output().includes("listening"),
      timeoutMs,
      `a TCP responder on port ${port} in ${netns}`,
    );
    if (daemon.hasExited()) throw new Error(`responder exited: ${daemon.output().trim()}`);
  } catch (error) {
    await daemon.kill();
    throw error;
  }
  return {
    port,
    stop: async () => {
      await daemon.stop();
    },
  };
}

/**
 * Connects from `netns` to `address`:`port` (bash's `/dev/tcp`, so every request has a new
 * source port) and returns what the server sent before closing. Throws a `CommandError` when
 * the connection fails or the deadline (default 3 s) passes.
 *
 * @example
 * ```ts
 * import { tcpRequest } from "./reach.ts";
 *
 * const servedBy = await tcpRequest("plb1a2b3-remote", "2001:db8:5::200", 8080);
 * ```
 */
export async function tcpRequest(
  netns: string,
  address: string,
  port: number,
  timeoutMs = 3_000,
): Promise<string> {
  const result = await runCommand(
    [
      testbedIpPath(),
      "netns",
      "exec",
      netns,
      "bash",
      "-c",
      'exec 3<>"/dev/tcp/$1/$2" && cat <&3',
      "tcp-request",
      address,
      String(port),
    ],
    { timeoutMs },
  );
  if (result.exitCode !== 0) {
    throw new Error(`TCP request to [${address}]:${port} from ${netns} failed: ${result.stderr}`);
  }
  return result.stdout;
}

function hostCidr(address: string): string {
  if (address.includes("/")) return address;
  return `${address}/${address.includes(":") ? 128 : 32}`;
}

/**
 * Puts `address` (a host address, /32 or /128 unless a prefix is given) on `interfaceName` in
 * `netns`, as the agent does on the dummy interface; IPv6 without duplicate detection.
 *
 * @example
 * ```ts
 * import { addHostAddress } from "./reach.ts";
 *
 * await addHostAddress("plb1a2b3-node-a", "kube-lb0", "192.0.2.200");
 * ```
 */
export async function addHostAddress(
  netns: string,
  interfaceName: string,
  address: string,
): Promise<void> {
  const nodad = address.includes(":") ? ["nodad"] : [];
  await runChecked([
    testbedIpPath(),
    "-n",
    netns,
    "address",
    "add",
    hostCidr(address),
    "dev",
    interfaceName,
    ...nodad,
  ]);
}

/**
 * Takes `address` off `interfaceName` in `netns` (the reverse of {@link addHostAddress}).
 *
 * @example
 * ```ts
 * import { removeHostAddress } from "./reach.ts";
 *
 * await removeHostAddress("plb1a2b3-node-a", "kube-lb0", "192.0.2.200");
 * ```
 */
export async function removeHostAddress(
  netns: string,
  interfaceName: string,
  address: string,
): Promise<void> {
  await runChecked([
    testbedIpPath(),
    "-n",
    netns,
    "address",
    "del",
    hostCidr(address),
    "dev",
    interfaceName,
  ]);
}
