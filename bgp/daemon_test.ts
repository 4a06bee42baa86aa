import assert from "node:assert/strict";
import { BirdDaemon } from "./daemon.ts";
import { BIRD_CONFIG_FILE, BIRDC_PATHS } from "./model.ts";

const birdc = BIRDC_PATHS.find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

Deno.test("writeConfig replaces the file atomically, readable by its owner only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "purelb-bird-" });
  try {
    const daemon = new BirdDaemon({ dir, birdcPath: "/nonexistent/birdc" });
    assert.equal(await daemon.hasConfig(), false);
    await daemon.writeConfig("router id 192.0.2.11;\n");
    await daemon.writeConfig("router id 192.0.2.12;\n");
    assert.equal(await Deno.readTextFile(`${dir}/${BIRD_CONFIG_FILE}`), "router id 192.0.2.12;\n");
    assert.equal(((await Deno.stat(`${dir}/${BIRD_CONFIG_FILE}`)).mode ?? 0) & 0o777, 0o600);
    assert.equal(await daemon.hasConfig(), true);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [BIRD_CONFIG_FILE]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a missing birdc is cli_missing, naming the package", async () => {
  const daemon = new BirdDaemon({ dir: "/nonexistent", birdcPath: "/nonexistent/birdc" });
  const outcome = await daemon.protocols();
  assert.equal(outcome.kind, "cli_missing");
  assert.match(outcome.kind === "cli_missing" ? outcome.message : "", /bird2/);
  assert.equal((await daemon.configure()).kind, "cli_missing");
});

Deno.test({
  name: "no BIRD on the socket is unreachable, naming the socket",
  ignore: birdc === undefined && Deno.env.get("CI") !== "true",
  fn: async () => {
    assert.ok(birdc, "birdc (Debian package bird2) is needed; deno task test installs it as root");
    const dir = await Deno.makeTempDir({ prefix: "purelb-bird-" });
    try {
      const daemon = new BirdDaemon({ dir, birdcPath: birdc });
      const outcome = await daemon.protocols();
      assert.equal(outcome.kind, "unreachable");
      assert.match(
        outcome.kind === "unreachable" ? outcome.message : "",
        new RegExp(`BIRD is not running or not listening on ${dir}/bird\\.ctl`),
      );
      assert.equal((await daemon.configure()).kind, "unreachable");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
