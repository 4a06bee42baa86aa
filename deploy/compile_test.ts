import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import {
  allowsBirdc,
  compileArgs,
  CompileError,
  missingAgentHelpers,
  parseCompileArgs,
  type ProgramName,
  PROGRAMS,
} from "./compile.ts";
import { agentPermissions, allocatorPermissions } from "./permissions.ts";
import { ARPING_PATHS, IP_PATHS, NA6_PATHS } from "../netlink/mod.ts";
import { isRecord } from "../json/mod.ts";

const REPO_ROOT = fileURLToPath(new URL("..", import.meta.url));
const PROGRAM_NAMES: readonly ProgramName[] = ["allocator", "agent"];

Deno.test("compile: each program is built under exactly its permission set for a Pod", () => {
  const expected: Record<ProgramName, string[]> = {
    allocator: allocatorPermissions(undefined),
    agent: agentPermissions(undefined),
  };
  assert.deepEqual(Object.keys(PROGRAMS).sort(), [...PROGRAM_NAMES].sort());
  for (const program of PROGRAM_NAMES) {
    const args = compileArgs(program, { outDir: "/out" });
    const permissions = expected[program];
    assert.ok(permissions.length > 0);
    assert.deepEqual(args.slice(0, 1 + permissions.length), ["compile", ...permissions]);
    assert.deepEqual(args.slice(1 + permissions.length), [
      "--output",
      `/out/${program}`,
      join(REPO_ROOT, PROGRAMS[program].main),
    ]);
    // In a Pod the configuration is in-cluster: no kubeconfig path is readable.
    const read = args.find((a) => a.startsWith("--allow-read=")) ?? "";
    assert.ok(!/kubeconfig/i.test(read), `${program} reads only what it needs: ${read}`);
    assert.ok(!args.includes("--allow-all") && !args.includes("-A"), program);
  }
});

Deno.test("compile: the entry modules exist", async () => {
  for (const program of PROGRAM_NAMES) {
    const info = await Deno.stat(join(REPO_ROOT, PROGRAMS[program].main));
    assert.ok(info.isFile, PROGRAMS[program].main);
  }
});

Deno.test("compile: --target goes before the output", () => {
  const args = compileArgs("allocator", { outDir: "dist", target: "aarch64-unknown-linux-gnu" });
  const at = args.indexOf("--target");
  assert.ok(at > 0);
  assert.equal(args[at + 1], "aarch64-unknown-linux-gnu");
  assert.ok(at < args.indexOf("--output"));
});

Deno.test("compile: command line", () => {
  assert.deepEqual(parseCompileArgs(["--", "--out", "/out", "agent"]), {
    programs: ["agent"],
    outDir: "/out",
    target: undefined,
  });
  const both = parseCompileArgs([]);
  assert.deepEqual(both.programs, ["allocator", "agent"]);
  assert.equal(both.outDir, join(REPO_ROOT, "dist"));
  assert.deepEqual(parseCompileArgs(["agent", "allocator", "agent"]).programs, [
    "agent",
    "allocator",
  ]);
  assert.throws(() => parseCompileArgs(["controller"]), CompileError);
  assert.throws(() => parseCompileArgs(["--kubeconfig", "x"]), /kubeconfig/);
});

Deno.test("compile: an agent that could not run its helpers is refused", () => {
  const ip = IP_PATHS[0] ?? "";
  const arping = ARPING_PATHS[0] ?? "";
  const na6 = NA6_PATHS.at(-1) ?? "";
  assert.deepEqual(missingAgentHelpers([`--allow-run=${ip},${arping},${na6}`]), []);
  assert.deepEqual(missingAgentHelpers([`--allow-run=${ip}`]), ["arping", "na6"]);
  assert.deepEqual(missingAgentHelpers(["--deny-run"]), ["ip", "arping", "na6"]);
  // A helper outside the agent's own search paths does not count.
  assert.deepEqual(missingAgentHelpers([`--allow-run=/opt/ip,${arping},${na6}`]), ["ip"]);
});

Deno.test("compile: birdc counts only by one of the agent's own search paths", () => {
  assert.ok(allowsBirdc([`--allow-run=${IP_PATHS[0] ?? ""},/usr/sbin/birdc`]));
  assert.ok(allowsBirdc(["--allow-run=/usr/bin/birdc"]));
  assert.ok(!allowsBirdc(["--allow-run=/opt/bird/birdc"]));
  assert.ok(!allowsBirdc(["--deny-run"]));
});

// ---------------------------------------------------------------------------------------------
// The Dockerfile: parsed, not built (no container engine here).

interface Instruction {
  readonly keyword: string;
  readonly rest: string;
}

interface Stage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined. */
function parseDockerfile(text: string): { globalArgs: Instruction[]; stages: Stage[] } {
  const logical: string[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) continue;
    if (line.endsWith("\\")) {
      pending += line.slice(0, -1) + " ";
      continue;
    }
    logical.push((pending + line).trim());
    pending = "";
  }
  const globalArgs: Instruction[] = [];
  const stages: { from: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const line of logical) {
    const match = /^(\w+)\s+(.*)$/.exec(line);
    assert.ok(match, `Dockerfile line not understood: ${line}`);
    const keyword = (match[1] ?? "").toUpperCase();
    const rest = match[2] ?? "";
    if (keyword === "FROM") {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(from, `FROM not understood: ${rest}`);
      stages.push({ from: from[1] ?? "", name: from[2], instructions: [] });
    } else if (stages.length === 0) {
      globalArgs.push({ keyword, rest });
    } else {
      stages.at(-1)?.instructions.push({ keyword, rest });
    }
  }
  return { globalArgs, stages };
}

async function readDockerfile(): Promise<{ globalArgs: Instruction[]; stages: Stage[] }> {
  return parseDockerfile(await Deno.readTextFile(join(REPO_ROOT, "deploy", "Dockerfile")));
}

function stage(stages: readonly Stage[], name: string): Stage {
  const found = stages.find((s) => s.name === name);
  assert.ok(found, `the Dockerfile has a stage "${name}"`);
  return found;
}

Deno.test("Dockerfile: the executables come from deno task compile, nothing else", async () => {
  const { stages } = await readDockerfile();
  const runs = stages.flatMap((s) =>
    s.instructions.filter((i) => i.keyword === "RUN").map((i) => ({ stage: s.name, run: i.rest }))
  );
  const denoRuns = runs.filter(({ run }) => /\bdeno\b/.test(run));
  assert.deepEqual(denoRuns, [{ stage: "build", run: "deno task compile --out /out" }]);
  // The task runs the compile script (and only adds its own permissions to it).
  const denoJson: unknown = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json")));
  const tasks = isRecord(denoJson) && isRecord(denoJson.tasks) ? denoJson.tasks : {};
  assert.equal(
    tasks.compile,
    "deno run --allow-read --allow-write --allow-run deploy/compile.ts",
  );
  // No stage compiles by other means.
  for (const { run } of runs) assert.doesNotMatch(run, /deno\s+compile/);
  // The build stage copies the sources and the lock file in.
  const build = stage(stages, "build");
  assert.ok(build.instructions.some((i) => i.keyword === "COPY" && i.rest === ". ."));
  assert.ok(build.instructions.some((i) => i.keyword === "COPY" && /\/deno\b/.test(i.rest)));
});

Deno.test("Dockerfile: each image carries its own executable as entry point", async () => {
  const { stages } = await readDockerfile();
  const images: Record<string, { program: ProgramName; port: number }> = {
    allocator: { program: "allocator", port: 7472 },
    lbnodeagent: { program: "agent", port: 7473 },
  };
  for (const [name, { program, port }] of Object.entries(images)) {
    const s = stage(stages, name);
    const copy = s.instructions.find((i) => i.keyword === "COPY");
    assert.ok(copy, `${name} copies its executable`);
    const match = /^--from=build\s+\/out\/(\S+)\s+(\S+)$/.exec(copy.rest);
    assert.ok(match, `${name}: ${copy.rest}`);
    assert.equal(match[1], program);
    const entrypoint = s.instructions.find((i) => i.keyword === "ENTRYPOINT");
    assert.ok(entrypoint, `${name} has an ENTRYPOINT`);
    assert.deepEqual(JSON.parse(entrypoint.rest), [match[2]]);
    assert.ok(s.instructions.some((i) => i.keyword === "EXPOSE" && i.rest === String(port)));
  }
  // The last stage is what a plain `docker build` produces: make that a deliberate choice.
  assert.ok(["allocator", "lbnodeagent"].includes(stages.at(-1)?.name ?? ""));
});

Deno.test("Dockerfile: bases are pinned; the agent compiles where its helpers are", async () => {
  const { globalArgs, stages } = await readDockerfile();
  const ci = await Deno.readTextFile(join(REPO_ROOT, ".ci", "run"));
  const ciDeno = /^DENO_VERSION=(\S+)$/m.exec(ci)?.[1];
  assert.ok(ciDeno, ".ci/run pins DENO_VERSION");
  assert.deepEqual(globalArgs, [{ keyword: "ARG", rest: `DENO_VERSION=${ciDeno}` }]);

  const names = new Set(stages.map((s) => s.name));
  for (const s of stages) {
    if (names.has(s.from)) continue; // built on an earlier stage
    const image = s.from.replace("${DENO_VERSION}", ciDeno);
    assert.match(image, /^[\w./-]+:[\w.-]+$/, `${s.from} is pinned by tag`);
    assert.doesNotMatch(image, /:latest$/, s.from);
  }
  assert.equal(stage(stages, "deno").from, "denoland/deno:bin-${DENO_VERSION}");
  assert.match(stage(stages, "allocator").from, /^gcr\.io\/distroless\/cc-debian\d+:nonroot$/);
  const allocatorUser = stage(stages, "allocator").instructions.find((i) => i.keyword === "USER");
  assert.equal(allocatorUser?.rest, "65532:65532");

  // The agent image and the build stage share one base that carries ip, arping and na6, so the
  // absolute paths agentPermissions() finds while compiling are the paths in the image.
  const helpers = stage(stages, "helpers");
  assert.match(helpers.from, /^debian:[\d.]+-slim$/);
  const install = helpers.instructions.find((i) => i.keyword === "RUN")?.rest ?? "";
  for (const pkg of ["iproute2", "iputils-arping", "ipv6toolkit", "bird2"]) {
    assert.match(install, new RegExp(`\\b${pkg}\\b`), `helpers installs ${pkg}`);
  }
  assert.equal(stage(stages, "build").from, "helpers");
  assert.equal(stage(stages, "lbnodeagent").from, "helpers");
});

Deno.test(".dockerignore keeps caches, git and build output out of the context", async () => {
  const lines = (await Deno.readTextFile(join(REPO_ROOT, ".dockerignore"))).split("\n")
    .map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  for (const entry of [".cache/", ".git/", "dist/", "node_modules/"]) {
    assert.ok(lines.includes(entry), `.dockerignore lists ${entry}`);
  }
  // deno.json, deno.lock and the sources must stay in.
  for (const kept of ["deno.json", "deno.lock", "*.ts", "deploy/", "allocator/", "agent/"]) {
    assert.ok(!lines.includes(kept), `.dockerignore must not exclude ${kept}`);
  }
});

Deno.test("versions: images, chart and deno.json agree", async () => {
  const denoJson: unknown = JSON.parse(await Deno.readTextFile(join(REPO_ROOT, "deno.json")));
  const version = isRecord(denoJson) ? denoJson.version : undefined;
  assert.equal(typeof version, "string");
  const chart: unknown = parseYaml(
    await Deno.readTextFile(join(REPO_ROOT, "deploy", "helm", "purelb", "Chart.yaml")),
  );
  assert.ok(isRecord(chart));
  assert.equal(chart.version, version);
  assert.equal(chart.appVersion, version);
  for (
    const [file, image] of [
      ["allocator.yaml", "ghcr.io/purelb-deno/allocator"],
      ["agent.yaml", "ghcr.io/purelb-deno/lbnodeagent"],
      // The BIRD sidecar runs the agent's image.
      ["components/bgp/agent-patch.yaml", "ghcr.io/purelb-deno/lbnodeagent"],
    ] as const
  ) {
    const text = await Deno.readTextFile(join(REPO_ROOT, "deploy", file));
    assert.ok(text.includes(`image: ${image}:${version}\n`), `${file} runs ${image}:${version}`);
  }
});
