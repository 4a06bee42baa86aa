/**
 * `deno task demo [-- --once] [--timeout S] [--logs DIR]`: PureLB on a LAN of network
 * namespaces, from nothing to a hand-over, on one machine (root).
 *
 * This file only reads the flags and checks for root; everything else is loaded afterwards
 * (`demo/run.ts`), so that without root the demo does nothing at all.
 *
 * @module
 */

import { parseArgs } from "node:util";

const USAGE = `usage: deno task demo [-- --once] [--timeout SECONDS] [--logs DIR]

Starts a Kubernetes control plane on 127.0.0.1, three "nodes" (network namespaces on one LAN,
documentation addresses 192.0.2.0/24 and 2001:db8:1::/64) and a client, an upstream router (FRR,
AS 65000, host .1 of the LAN) with a second client behind it (203.0.113.100), BIRD in every node
(AS 65001, configured by PureLB from demo/bgpconfiguration.yaml), the PureLB allocator and one
agent per node, creates sample Services and shows a live table of their addresses, pools,
announcing nodes and, for virtual addresses, the router's next hops. Then it stops the agent
announcing web-ipv4's address and shows the hand-over, with the gap a client pinging that address
every 10 ms saw, and the router dropping that node for the virtual address. Ctrl-C cleans up.

  --once          no live table: wait until every sample service is in its expected state,
                  print the table, do the hand-over, print the gap, clean up, exit (0 = all as
                  expected)
  --timeout S     how long the sample services may take to settle (default 120)
  --logs DIR      keep the allocator's and agents' logs (JSON lines) in DIR
  -h, --help      this text

Needs root (network namespaces), iproute2, iputils-ping, iputils-arping, ipv6toolkit, bird2 and
frr (installed with apt-get when missing), and Go on the first run (it builds kube-apiserver,
several minutes).`;

/** The message for a run without root (pure, for the test). */
export function notRootMessage(): string {
  return "demo: this demo needs root: it creates network namespaces, veth links and addresses " +
    "(ip netns, ip link, ip address) and installs missing packages with apt-get. Nothing was " +
    "done. Run it as root, for example:\n  sudo npx -y deno@2.8.3 task demo";
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args.filter((arg, i) => !(i === 0 && arg === "--")),
      options: {
        once: { type: "boolean", default: false },
        timeout: { type: "string", default: "120" },
        logs: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`demo: ${error instanceof Error ? error.message : error}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const timeout = Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > 3600) {
    console.error(`demo: --timeout "${values.timeout}" is not a number of seconds from 1 to 3600`);
    return 2;
  }
  if (Deno.uid() !== 0) {
    console.error(notRootMessage());
    return 1;
  }
  const { runDemo } = await import("./run.ts");
  return await runDemo({ once: values.once, timeoutMs: timeout * 1000, logsDir: values.logs });
}

if (import.meta.main) Deno.exit(await main());
