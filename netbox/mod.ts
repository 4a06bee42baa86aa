/**
 * The Netbox REST client: the allocator's only HTTP besides the Kubernetes API. It lists IP
 * addresses by tenant, status and family, and changes their status with conditional writes.
 *
 * @module
 */
export {
  authorizationOf,
  type NetboxAddress,
  type NetboxAddressChange,
  type NetboxAddressFilter,
  NetboxClient,
  type NetboxClientOptions,
  NetboxError,
  type NetboxFailure,
  netboxOrigin,
  netboxSourceKey,
  type NetboxUpdateOptions,
  parseAddressRecord,
} from "./client.ts";
