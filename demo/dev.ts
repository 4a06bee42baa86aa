/**
 * `deno task dev -- --kubeconfig PATH [--agent --node-name NODE]`: the allocator, and
 * optionally an agent for this host, from source against an existing cluster, for development.
 * Each runs under its production permission set, logs as text, its lines prefixed with its
 * name; Ctrl-C (or SIGTERM) stops both, and when one exits the other is stopped too.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { agentPermissions, allocatorPermissions } from "../deploy/permissions.ts";

const USAGE = `usage: deno task dev -- --kubeconfig PATH [flags]

Runs the allocator (and with --agent the node agent of this host) from source against an
existing cluster, each under its production permission set, logging as text. Ctrl-C stops both.

  --kubeconfig PATH      the cluster (default $KUBECONFIG)
  --namespace NS         PureLB's namespace: ServiceGroups, LBNodeAgents, Leases (default
                         purelb-system, whatever the kubeconfig's context says)
  --log-level LEVEL      trace|debug|info|warning|error (default debug)
  --allocator-listen A   the allocator's /metrics /healthz /readyz (default 127.0.0.1:7472)
  --agent                also run the agent for this host (needs root: it changes addresses)
  --node-name NODE       the agent's node name (required with --agent; default $NODE_NAME)
  --netns NETNS          the agent configures network namespace NETNS instead of this host's
  --agent-listen A       the agent's /metrics /healthz /readyz (default 127.0.0.1:7473)
  -h, --help             this text`;

/** How long a program may take to stop after SIGTERM before it is killed. */
const STOP_GRACE_MS = 15_000;

/** One program to start: its name (the log prefix) and its `deno` arguments. */
export interface DevProgram {
  readonly name: "allocator" | "agent";
  readonly args: readonly string[];
}

/** What {@link planDev} decided: programs to run, usage, or an error with its exit code. */
export type DevPlan =
  | { readonly kind: "run"; readonly programs: readonly DevProgram[] }
  | { readonly kind: "help"; readonly text: string }
  | { readonly kind: "error"; readonly message: string };

const ALLOCATOR_MAIN = fileURLToPath(new URL("../allocator/main.ts", import.meta.url));
const AGENT_MAIN = fileURLToPath(new URL("../agent/main.ts", import.meta.url));

/**
 * Decides what to run from the arguments, the environment and whether we are root (pure but
 * for the permission sets, which look up `ip`, `arping` and `na6`).
 *
 * @example
 * ```ts
 * const plan = planDev(["--kubeconfig", "/tmp/k"], () => undefined, false);
 * plan.kind; // "run": the allocator alone
 * ```
 */
export function planDev(
  args: readonly string[],
  env: (name: string) => string | undefined,
  root: boolean,
): DevPlan {
  let values;
  try {
    ({ values } = parseArgs({
      args: args.filter((arg, i) => !(i === 0 && arg === "--")),
      options: {
        kubeconfig: { type: "string" },
        namespace: { type: "string", default: "purelb-system" },
        "log-level": { type: "string", default: "debug" },
        "allocator-listen": { type: "string", default: "127.0.0.1:7472" },
        agent: { type: "boolean", default: false },
        "node-name": { type: "string" },
        netns: { type: "string" },
        "agent-listen": { type: "string", default: "127.0.0.1:7473" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    return { kind: "error", message: error instanceof Error ? error.message : String(error) };
  }
  if (values.help) return { kind: "help", text: USAGE };
  const kubeconfig = values.kubeconfig ?? env("KUBECONFIG");
  if (kubeconfig === undefined || kubeconfig === "") {
    return { kind: "error", message: "--kubeconfig PATH is required (or set KUBECONFIG)" };
  }
  const nodeName = values["node-name"] ?? env("NODE_NAME");
  if (!values.agent && (values["node-name"] !== undefined || values.netns !== undefined)) {
    return { kind: "error", message: "--node-name and --netns only go with --agent" };
  }
  const common = [
    "--kubeconfig",
    kubeconfig,
    "--log-format",
    "text",
    "--log-level",
    values["log-level"],
    "--namespace",
    values.namespace,
  ];
  const programs: DevProgram[] = [{
    name: "allocator",
    args: [
      "run",
      ...allocatorPermissions(kubeconfig),
      ALLOCATOR_MAIN,
      ...common,
      "--listen",
      values["allocator-listen"],
    ],
  }];
  if (values.agent) {
    if (nodeName === undefined || nodeName === "") {
      return { kind: "error", message: "--agent needs --node-name NODE (or NODE_NAME)" };
    }
    if (!root) {
      return {
        kind: "error",
        message: "--agent needs root: the agent adds and removes addresses with ip. Run as " +
          "root (sudo), or leave --agent out to run the allocator alone",
      };
    }
    programs.push({
      name: "agent",
      args: [
        "run",
        ...agentPermissions(kubeconfig),
        AGENT_MAIN,
        ...common,
        "--node-name",
        nodeName,
        "--listen",
        values["agent-listen"],
        ...(values.netns === undefined ? [] : ["--netns", values.netns]),
      ],
    });
  }
  return { kind: "run", programs };
}

/** Copies `stream` to our stdout line by line, each line prefixed. */
async function prefixLines(stream: ReadableStream<Uint8Array>, prefix: string): Promise<void> {
  const encoder = new TextEncoder();
  let pending = "";
  for await (const text of stream.pipeThrough(new TextDecoderStream())) {
    pending += text;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    if (lines.length > 0) {
      await Deno.stdout.write(encoder.encode(lines.map((l) => `${prefix}${l}\n`).join("")));
    }
  }
  if (pending !== "") await Deno.stdout.write(encoder.encode(`${prefix}${pending}\n`));
}

async function main(): Promise<number> {
  const plan = planDev(Deno.args, (name) => Deno.env.get(name), Deno.uid() === 0);
  if (plan.kind === "help") {
    console.log(plan.text);
    return 0;
  }
  if (plan.kind === "error") {
    console.error(`dev: ${plan.message}\n\n${USAGE}`);
    return 2;
  }
  const kubeconfig = plan.programs[0]?.args[plan.programs[0].args.indexOf("--kubeconfig") + 1];
  try {
    if (kubeconfig === undefined || !(await Deno.stat(kubeconfig)).isFile) throw new Error();
  } catch {
    console.error(`dev: kubeconfig ${kubeconfig} is not a readable file`);
    return 2;
  }
  const width = Math.max(...plan.programs.map((p) => p.name.length));
  const running = plan.programs.map((program) => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [...program.args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const prefix = `${program.name.padEnd(width)} | `;
    const copied = Promise.all([
      prefixLines(child.stdout, prefix),
      prefixLines(child.stderr, prefix),
    ]);
    const exited = child.status.then(async (status) => {
      await copied;
      return { program, status };
    });
    return { program, child, exited };
  });
  const names = running.map((r) => `${r.program.name} (pid ${r.child.pid})`).join(" and ");
  console.error(`dev: started ${names} from source under their permission sets; Ctrl-C stops all`);

  let stopping = false;
  const stopAll = (why: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`dev: ${why}: stopping`);
    for (const { child } of running) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
    }
    const timer = setTimeout(() => {
      for (const { child, program } of running) {
        try {
          child.kill("SIGKILL");
          console.error(
            `dev: ${program.name} did not stop within ${STOP_GRACE_MS / 1000} s: killed`,
          );
        } catch { /* exited */ }
      }
    }, STOP_GRACE_MS);
    Promise.all(running.map((r) => r.exited)).finally(() => clearTimeout(timer));
  };
  const onSignal = { SIGINT: () => stopAll("SIGINT"), SIGTERM: () => stopAll("SIGTERM") };
  for (const [signal, handler] of Object.entries(onSignal)) {
    Deno.addSignalListener(signal as Deno.Signal, handler);
  }
  const first = await Promise.race(running.map((r) => r.exited));
  let code = 0;
  if (!stopping) {
    code = first.status.code === 0 ? 1 : first.status.code;
    stopAll(`${first.program.name} exited with code ${first.status.code}`);
  }
  const all = await Promise.all(running.map((r) => r.exited));
  for (const [signal, handler] of Object.entries(onSignal)) {
    Deno.removeSignalListener(signal as Deno.Signal, handler);
  }
  const summary = all.map(({ program, status }) =>
    `${program.name} ${status.signal ? `signal ${status.signal}` : `code ${status.code}`}`
  );
  console.error(`dev: stopped (${summary.join(", ")})`);
  if (code === 0 && all.some(({ status }) => status.code !== 0 && status.signal === null)) {
    code = 1;
  }
  return code;
}

if (import.meta.main) Deno.exit(await main());
