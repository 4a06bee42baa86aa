import assert from "node:assert/strict";
import { FlagError } from "../k8s/flags.ts";
import { readAllocatorConfig } from "./config.ts";

const noEnv = () => undefined;

Deno.test("defaults, flags and environment fallbacks", () => {
  const defaults = readAllocatorConfig([], noEnv);
  assert.equal(defaults.leaderElection, "auto");
  assert.deepEqual(defaults.listen, { hostname: "0.0.0.0", port: 7472 });
  assert.equal(defaults.handleClasslessServices, true);
  assert.equal(defaults.leaseDurationMs, 15_000);
  const env: Record<string, string> = {
    PURELB_NAMESPACE: "from-env",
    PURELB_LISTEN: "127.0.0.1:9000",
    PURELB_HANDLE_CLASSLESS: "false",
  };
  const fromEnv = readAllocatorConfig(["--namespace", "from-flag"], (n) => env[n]);
  assert.equal(fromEnv.namespace, "from-flag", "a flag beats the environment");
  assert.deepEqual(fromEnv.listen, { hostname: "127.0.0.1", port: 9000 });
  assert.equal(fromEnv.handleClasslessServices, false);
  assert.deepEqual(readAllocatorConfig(["--listen", "[::1]:7472"], noEnv).listen, {
    hostname: "::1",
    port: 7472,
  });
});

Deno.test("bad values are refused naming the flag and the value", () => {
  const cases: ReadonlyArray<[string[], RegExp]> = [
    [["--leader-election", "maybe"], /--leader-election "maybe"/],
    [["--handle-classless", "yes"], /--handle-classless "yes"/],
    [["--workers", "0"], /--workers "0"/],
    [["--listen", "7472"], /--listen "7472" is not HOST:PORT/],
    [["--lease-duration", "abc"], /--lease-duration "abc"/],
    [["--renew-deadline", "20"], /--retry-period < --renew-deadline < --lease-duration/],
  ];
  for (const [args, message] of cases) {
    assert.throws(
      () => readAllocatorConfig(args, noEnv),
      (e: unknown) => e instanceof FlagError && message.test(e.message),
      args.join(" "),
    );
  }
  assert.throws(() => readAllocatorConfig(["--no-such-flag"], noEnv));
});
