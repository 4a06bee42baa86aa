/**
 * `kubectl purelb COMMAND [flags]`: where PureLB's addresses are, how full its pools are, who
 * wins an address's election and why, whether a ServiceGroup file is valid, and what each node's
 * BGP sessions do. Reads only.
 * Started by `kubectl/launch.ts` (which grants exactly the files it needs to read).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ClientConfigError, loadClientConfig } from "../k8s/config.ts";
import { ApiConnection } from "../k8s/transport.ts";
import { PluginError, PluginReader } from "./api.ts";
import { OPTIONS } from "./flags.ts";
import { bgpRows, renderBgp } from "./bgp.ts";
import { AddressArgumentError, explainElection, renderElection } from "./election.ts";
import { poolRows, renderPools } from "./pools.ts";
import { type OutputFormat, renderStatus, statusRows } from "./status.ts";
import { hasErrors, renderValidation, validateServiceGroups } from "./validate.ts";

/** Where PureLB runs unless `--namespace` says otherwise. */
export const DEFAULT_NAMESPACE = "purelb-system";

/** The help text. */
export const USAGE = `usage: kubectl purelb COMMAND [flags]

Commands:
  status              every LoadBalancer Service address: pool, node(s), interface, state, reason
  pools               the ServiceGroups: valid or not, addresses in use/size, bound namespaces
  election ADDRESS    the candidates for ADDRESS, winner and runner-up, and why each node is or
                      is not a candidate
  validate -f FILE    check the ServiceGroups of a YAML file offline with the allocator's parser
                      (exit 1 when one is invalid)
  bgp                 each node's BGP neighbours: state, up since, prefixes sent, why not up;
                      and the BGPConfigurations that are refused or have unsupported fields

Flags:
  --kubeconfig PATH       the kubeconfig (default: KUBECONFIG, else ~/.kube/config)
  -n, --namespace NS      where PureLB runs: its Leases, ServiceGroups, LBNodeAgents,
                          BGPConfigurations (default ${DEFAULT_NAMESPACE})
  --service-namespace NS  status: only the Services of NS (default: every namespace)
  -o, --output FORMAT     wide or json (default: a table)
  -f, --filename FILE     validate: the file to check (- for standard input)
  -h, --help              this text`;

/** The flags after parsing. */
interface Invocation {
  readonly command: string;
  readonly positionals: readonly string[];
  readonly kubeconfig: string | undefined;
  readonly namespace: string;
  readonly serviceNamespace: string | undefined;
  readonly output: OutputFormat;
  readonly files: readonly string[];
  readonly help: boolean;
}

/** A command line the plugin cannot run (exit 2). */
class UsageError extends Error {
  override name = "UsageError";
}

function parseInvocation(args: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const output = values.output ?? "table";
  if (output !== "table" && output !== "wide" && output !== "json") {
    throw new UsageError(`-o ${output}: the formats are wide and json`);
  }
  const [command = "", ...rest] = positionals;
  return {
    command,
    positionals: rest,
    kubeconfig: values.kubeconfig,
    namespace: values.namespace ?? DEFAULT_NAMESPACE,
    serviceNamespace: values["service-namespace"],
    output,
    files: values.filename ?? [],
    help: values.help ?? false,
  };
}

function reader(invocation: Invocation): PluginReader {
  const config = loadClientConfig({ kubeconfig: invocation.kubeconfig });
  const connection = new ApiConnection(config.access, 15_000);
  return new PluginReader((path) => connection.request("GET", path), config.access.server);
}

async function readFile(path: string): Promise<string> {
  if (path === "-") return await new Response(Deno.stdin.readable).text();
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    throw new PluginError(
      `cannot read ${path}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** Runs one command; returns the exit code and the text for standard output. */
async function runCommand(invocation: Invocation): Promise<{ code: number; out: string }> {
  const { command, positionals, output, namespace } = invocation;
  const noArguments = () => {
    if (positionals.length > 0) {
      throw new UsageError(`${command} takes no arguments (got ${positionals.join(" ")})`);
    }
  };
  switch (command) {
    case "status": {
      noArguments();
      const api = reader(invocation);
      const services = invocation.serviceNamespace;
      const [serviceList, failures, leases, nodeAgents] = await Promise.all([
        api.services(services),
        api.allocationFailures(services),
        api.leases(namespace),
        api.nodeAgents(namespace),
      ]);
      const rows = statusRows({
        services: serviceList,
        failures,
        leases,
        nodeAgents,
        qualifyNames: services === undefined,
        nowMs: Date.now(),
      });
      return { code: 0, out: renderStatus(rows, output) };
    }
    case "pools": {
      noArguments();
      const groups = await reader(invocation).serviceGroups(namespace);
      return { code: 0, out: renderPools(poolRows(groups), output) };
    }
    case "election": {
      const [address, ...extra] = positionals;
      if (address === undefined || extra.length > 0) {
        throw new UsageError("election takes one ADDRESS");
      }
      const api = reader(invocation);
      const [leases, nodes] = await Promise.all([api.leases(namespace), api.nodes()]);
      const names = nodes?.map((n) => n.metadata?.name ?? "").filter(Boolean);
      return {
        code: 0,
        out: renderElection(explainElection(address, leases, names, Date.now()), output),
      };
    }
    case "validate": {
      noArguments();
      if (invocation.files.length === 0) throw new UsageError("validate needs -f FILE");
      let failed = false;
      const outputs: string[] = [];
      for (const file of invocation.files) {
        const report = validateServiceGroups(await readFile(file), file);
        failed ||= hasErrors(report);
        outputs.push(renderValidation(report, output));
      }
      return { code: failed ? 1 : 0, out: outputs.join("\n") };
    }
    case "bgp": {
      noArguments();
      const api = reader(invocation);
      const [statuses, configurations] = await Promise.all([
        api.bgpNodeStatuses(),
        api.bgpConfigurations(namespace),
      ]);
      return { code: 0, out: renderBgp(bgpRows(statuses, configurations, Date.now()), output) };
    }
    case "":
      throw new UsageError("no command");
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/**
 * Runs the plugin with `args`; returns the exit code: 0 done, 1 a failure (validation errors,
 * an API the user may not read, CRDs missing, no API server), 2 a bad command line.
 */
export async function main(args: readonly string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(args);
  } catch (error) {
    console.error(`kubectl purelb: ${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    return 2;
  }
  if (invocation.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    const { code, out } = await runCommand(invocation);
    if (out !== "") console.log(out);
    return code;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`kubectl purelb: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    if (
      error instanceof PluginError || error instanceof ClientConfigError ||
      error instanceof AddressArgumentError
    ) {
      console.error(`kubectl purelb: ${error.message}`);
      return 1;
    }
    if (error instanceof Deno.errors.NotCapable) {
      console.error(
        `kubectl purelb: not permitted: ${error.message} (run it with deno task kubectl-purelb ` +
          `or the installed kubectl-purelb, which grant the files it needs)`,
      );
      return 1;
    }
    console.error(`kubectl purelb: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args.filter((a, i) => !(i === 0 && a === "--"))));
