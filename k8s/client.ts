/**
 * The parts of `@kubernetes/client-node` we run: the generated typed API classes and a few
 * helpers, imported from their own modules. The package root also loads client-node's
 * KubeConfig, whose dependencies read the whole environment on load (so a program importing it
 * cannot run under a short `--allow-env` list). Types may still come from the root with
 * `import type`, which loads nothing.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  type Configuration,
  createConfiguration,
  type RequestContext,
  ResponseContext,
  ServerConfiguration,
  wrapHttpLibrary,
} from "@kubernetes/client-node/dist/gen/index.js";
import type {
  ConfigurationOptions,
  ObservableMiddleware,
} from "@kubernetes/client-node/dist/gen/index.js";
import { setHeaderOptions } from "@kubernetes/client-node/dist/middleware.js";
import { PatchStrategy } from "@kubernetes/client-node/dist/patch.js";
import type { ApiConnection } from "./transport.ts";

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

/** Request options that make a client-node `patch*` call send a JSON merge patch. */
export function mergePatch(): ConfigurationOptions<ObservableMiddleware> {
  return setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
}

/**
 * A client-node generated API object (e.g. `CoreV1Api`) that sends through `connection`
 * (Deno's fetch). For tests and tools; the programs use the lighter `k8s/api.ts`.
 *
 * @example
 * ```ts
 * import { ApiConnection, type ClusterAccess } from "./mod.ts";
 * declare const access: ClusterAccess;
 *
 * const core = typedApi(new ApiConnection(access), CoreV1Api);
 * ```
 */
export function typedApi<T>(
  connection: ApiConnection,
  apiClass: new (configuration: Configuration) => T,
): T {
  const configuration = createConfiguration({
    baseServer: new ServerConfiguration(connection.access.server, {}),
    authMethods: {
      default: {
        getName: () => "BearerToken",
        applySecurityAuthentication: (context: RequestContext) => {
          const token = connection.access.bearerToken();
          if (token) context.setHeaderParam("Authorization", `Bearer ${token}`);
        },
      },
    },
    httpApi: wrapHttpLibrary({
      send: async (request: RequestContext) => {
        const body = request.getBody();
        const signal = request.getSignal();
        const response = await connection.fetch(request.getUrl(), {
          method: request.getHttpMethod(),
          headers: request.getHeaders(),
          ...(body === undefined ? {} : { body: body as BodyInit }),
          ...(signal ? { signal } : {}),
        });
        const headers: Record<string, string> = {};
        response.headers.forEach((value, name) => headers[name] = value);
        return new ResponseContext(response.status, headers, {
          text: () => response.text(),
          binary: async () => Buffer.from(await response.arrayBuffer()),
          stream: () => response.body,
        });
      },
    }),
  });
  return new apiClass(configuration);
}
