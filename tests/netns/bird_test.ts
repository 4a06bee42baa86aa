import assert from "node:assert/strict";
import { BIRD_CONFIG_FILE } from "../../bgp/model.ts";
import { assertRoot, rootTestOptions } from "../system.ts";
import { WaitTimeoutError } from "../wait.ts";
import { startBird } from "./bird.ts";
import { makeDaemonDir } from "./daemon.ts";
import { createLan } from "./lan.ts";

const LAN = { nodes: ["node-a"], ipv4Subnet: "192.0.2.0/24", ipv6Subnet: "2001:db8:1::/64" };
const CONFIG = "log stderr all;\nrouter id 192.0.2.11;\nprotocol device {}\n";

Deno.test({
  name: "startBird waits for the config, runs BIRD in the namespace, stops it",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const lan = await createLan(LAN);
    const dir = await makeDaemonDir("purelb-bird-test-");
    try {
      const configPath = `${dir.path}/${BIRD_CONFIG_FILE}`;
      await Deno.writeTextFile(configPath, "");
      const starting = startBird({ netns: lan.node("node-a").netns, dir: dir.path });
      // An empty file is not a config yet: BIRD starts only once the agent has written one.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await Deno.writeTextFile(configPath, CONFIG);
      const bird = await starting;
      try {
        assert.match(await bird.birdc("show status"), /Daemon is up and running/);
        assert.match(await bird.birdc("show interfaces"), /eth0/, "sees the node's eth0");
        assert.equal(
          (await Deno.readTextFile(`${dir.path}/bird.pid`)).trim(),
          String(bird.pid),
        );
      } finally {
        const status = await bird.stop();
        assert.equal(status.success, true, bird.stderrText());
      }
    } finally {
      await dir.remove();
      await lan.destroy();
    }
  },
});

Deno.test({
  name: "startBird: a config error is an error with BIRD's message; no config times out",
  ...rootTestOptions(),
  async fn() {
    assertRoot();
    const lan = await createLan(LAN);
    const dir = await makeDaemonDir("purelb-bird-test-");
    try {
      const netns = lan.node("node-a").netns;
      await assert.rejects(
        startBird({ netns, dir: dir.path, configTimeoutMs: 200 }),
        WaitTimeoutError,
      );
      await Deno.writeTextFile(`${dir.path}/${BIRD_CONFIG_FILE}`, "protocol nonsense {}\n");
      await assert.rejects(
        startBird({ netns, dir: dir.path }),
        (error: unknown) =>
          error instanceof Error &&
          /bird exited with 1: .*bird\.conf:1:10 syntax error/.test(error.message),
      );
    } finally {
      await dir.remove();
      await lan.destroy();
    }
  },
});
