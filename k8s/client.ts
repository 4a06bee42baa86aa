/**
 * The parts of `@kubernetes/client-node` we run: the generated typed API classes and a few
 * helpers, imported from their own modules. The package root also loads client-node's
 * KubeConfig, whose dependencies read the whole environment on load (so a program importing it
 * cannot run under a short `--allow-env` list). Types may still come from the root with
 * `import type`, which loads nothing.
 *
 * @module
 */

export {
  ApiException,
  ApiextensionsV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  createConfiguration,
  CustomObjectsApi,
  DiscoveryV1Api,
  HttpMethod,
  RbacAuthorizationV1Api,
  RequestContext,
  ResponseContext,
  ServerConfiguration,
  wrapHttpLibrary,
} from "@kubernetes/client-node/dist/gen/index.js";
export type {
  Configuration,
  ConfigurationOptions,
  ObservableMiddleware,
} from "@kubernetes/client-node/dist/gen/index.js";
export { V1MicroTime } from "@kubernetes/client-node/dist/types.js";
export { setHeaderOptions } from "@kubernetes/client-node/dist/middleware.js";
export { PatchStrategy } from "@kubernetes/client-node/dist/patch.js";
