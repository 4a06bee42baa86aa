import assert from "node:assert/strict";
import { FlagError } from "../k8s/flags.ts";
import { FLAGS, readAgentConfig, usage } from "./config.ts";

const noEnv = () => undefined;

Deno.test("defaults: lease 6 s renewed every 2 s, resync 3 s, port 7473", () => {
  const config = readAgentConfig(["--node-name", "node-a"], noEnv);
  assert.equal(config.nodeName, "node-a");
  assert.equal(config.leaseDurationMs, 6_000);
  assert.equal(config.leaseRenewMs, 2_000);
  assert.equal(config.resyncMs, 3_000);
  assert.deepEqual(config.listen, { hostname: "0.0.0.0", port: 7473 });
  assert.equal(config.netns, undefined);
  assert.equal(config.logFormat, "json");
});

Deno.test("every flag falls back to its environment variable; flags win", () => {
  const env: Record<string, string> = {
    NODE_NAME: "from-env",
    PURELB_NETNS: "ns1",
    PURELB_LEASE_DURATION: "10",
    PURELB_LEASE_RENEW: "2.5",
    PURELB_RESYNC: "0.5",
    PURELB_LISTEN: "[::1]:9000",
    PURELB_NAMESPACE: "lb",
  };
  const config = readAgentConfig([], (name) => env[name]);
  assert.equal(config.nodeName, "from-env");
  assert.equal(config.netns, "ns1");
  assert.equal(config.leaseDurationMs, 10_000);
  assert.equal(config.leaseRenewMs, 2_500);
  assert.equal(config.resyncMs, 500);
  assert.deepEqual(config.listen, { hostname: "::1", port: 9000 });
  assert.equal(config.namespace, "lb");
  assert.equal(readAgentConfig(["--node-name", "flag"], (name) => env[name]).nodeName, "flag");
  for (const [name, flag] of Object.entries(FLAGS)) {
    assert.match(usage(), new RegExp(`--${name} .*\\[env ${flag.env}\\]`));
  }
});

Deno.test("bad values are refused with the flag named", () => {
  const cases: [string[], RegExp][] = [
    [[], /--node-name is required/],
    [["--node-name", "Node_A"], /not a valid node name/],
    [["--node-name", "a", "--lease-duration", "0"], /--lease-duration "0"/],
    [["--node-name", "a", "--lease-duration", "x"], /--lease-duration "x"/],
    [["--node-name", "a", "--lease-duration", "6", "--lease-renew", "4"], /at most half/],
    [["--node-name", "a", "--resync=-1"], /--resync "-1"/],
    [["--node-name", "a", "--listen", "7473"], /--listen "7473"/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => readAgentConfig(args, noEnv), (error: unknown) => {
      assert.ok(error instanceof FlagError, String(error));
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(() => readAgentConfig(["--node-name", "a", "--nope", "1"], noEnv));
});
