/**
 * A fake Netbox REST API for tests of the Netbox client: see {@linkcode NetboxTestServer}.
 *
 * @example
 * ```ts
 * import { NetboxTestServer } from "./mod.ts";
 *
 * const netbox = await NetboxTestServer.start();
 * try {
 *   netbox.add("192.0.2.10/24", { status: "reserved" });
 *   // ... point the client at netbox.url with netbox.token
 * } finally {
 *   await netbox.close();
 * }
 * ```
 *
 * @module
 */
export {
  type NetboxAddOptions,
  type NetboxAddressRecord,
  type NetboxFault,
  type NetboxFaultMatch,
  type NetboxStatus,
  NetboxTestServer,
  type NetboxTestServerOptions,
  type RecordedRequest,
} from "./server.ts";
