/**
 * End-to-end tests with the real NetBox the runner started: {@linkcode realNetboxClusterTest}
 * registers a test that gets the shared cluster, the NetBox access and a scratch space in it
 * (removed afterwards).
 *
 * @module
 */

import { type TestCluster, testCluster } from "../cluster.ts";
import { type RealNetboxAccess, realNetboxTestOptions, requireRealNetbox } from "./real.ts";
import { NetboxScratch } from "./seed.ts";

/** What a real NetBox test body gets. */
export interface RealNetboxTest {
  readonly cluster: TestCluster;
  readonly access: RealNetboxAccess;
  readonly scratch: NetboxScratch;
}

/**
 * A cluster test against the real NetBox: skipped (with the reason) where there is none,
 * except under `CI=true`, where it fails with the reason.
 */
export function realNetboxClusterTest(
  name: string,
  label: string,
  fn: (t: RealNetboxTest) => Promise<void>,
): void {
  Deno.test({
    name,
    ...realNetboxTestOptions(),
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async () => {
      const access = requireRealNetbox();
      const cluster = await testCluster();
      const scratch = new NetboxScratch(access, label);
      try {
        await fn({ cluster, access, scratch });
      } finally {
        await scratch.cleanup();
      }
    },
  });
}
