// The controller's HTTP API under /v1 (hono + zod-openapi), its OpenAPI 3.1 document at
// /v1/openapi.json, bearer authentication, the body size limit, and one place that turns errors
// into {code, message, issues} with the HTTP status of HTTP_STATUS. Effects: none of its own.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { formatPath } from "../../model/port-file.ts";
import type { Authenticator } from "../auth.ts";
import { ApiError, HTTP_STATUS } from "../errors.ts";
import type { Api, ApiDeps, ApiEnv } from "./common.ts";
import { registerHosts } from "./hosts.ts";
import { registerNetworks } from "./networks.ts";
import { registerPorts } from "./ports.ts";
import { registerTokens } from "./tokens.ts";

export type ApiOptions = ApiDeps & Readonly<{ auth: Authenticator; maxBodyBytes?: number; logError?: (error: unknown) => void }>;

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;

function answer(c: Context, error: ApiError): Response {
  return c.json({ code: error.code, message: error.summary, issues: error.issues }, HTTP_STATUS[error.code]);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/**
 * Every route group of the API. Each returns its chain of app.openapi(...) calls, whose type holds
 * its routes; ApiRoutes joins them, and the typed client (../client.ts) is built from that. A new
 * group goes in this list and is in the client's types with no other step.
 */
function registerRoutes(app: Api, deps: ApiDeps) {
  return [registerNetworks(app, deps), registerPorts(app, deps), registerHosts(app, deps), registerTokens(app, deps)] as const;
}

type RoutesOf<T> = T extends OpenAPIHono<ApiEnv, infer S, "/"> ? S : never;
type Joined<U> = (U extends unknown ? (u: U) => void : never) extends (all: infer I) => void ? I : never;
/** The API's routes as types: paths, methods, inputs and the answers of each status code a handler returns. */
export type ApiRoutes = OpenAPIHono<ApiEnv, Joined<RoutesOf<ReturnType<typeof registerRoutes>[number]>>, "/">;

export function createApi(options: ApiOptions): OpenAPIHono<ApiEnv> {
  const app = new OpenAPIHono<ApiEnv>({
    defaultHook: async (result, c) => {
      if (result.success) return;
      const where = result.target === "json" ? "" : `${result.target === "param" ? "path" : result.target}.`;
      const given: unknown = result.target === "json" ? await c.req.json<unknown>() : result.target === "query" ? c.req.query() : result.target === "param" ? c.req.param() : undefined;
      const issues = result.error.issues.map((i) => {
        const path = i.code === "unrecognized_keys" ? [...i.path, i.keys[0] ?? ""] : i.path;
        const value = valueAt(given, path);
        const expected = i.code === "unrecognized_keys" ? "no such field (misspelt?)" : value === undefined ? "this field (it is required)" : i.message.replace(/^Invalid input: expected /, "");
        return { path: `${where}${formatPath(path)}`, value, expected };
      });
      return answer(c, new ApiError("VG_INVALID", "The request is not valid; nothing was stored", issues));
    },
  });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", { type: "http", scheme: "bearer", description: "A token from POST /v1/tokens, or the bootstrap admin token" });
  app.doc31("/v1/openapi.json", {
    openapi: "3.1.0",
    info: { title: "vifguard controller", version: "1", description: "Networks, ports, allowed address pairs, protection levels, the global switch; hosts watch their desired state by revision." },
  });

  app.use("/v1/*", bodyLimit({
    maxSize: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    onError: (c) => answer(c, new ApiError("VG_TOO_LARGE", `The body exceeds ${options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES} bytes`, [{ path: "(body)", value: c.req.header("content-length") ?? "(chunked)", expected: `at most ${options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES} bytes` }])),
  }));
  app.use("/v1/*", async (c, next) => {
    if (c.req.path === "/v1/openapi.json") return next();
    c.set("principal", await options.auth.authenticate(c.req.header("authorization")));
    return next();
  });

  registerRoutes(app, options);

  app.notFound((c) => answer(c, new ApiError("VG_NOT_FOUND", `No route ${c.req.method} ${c.req.path}`, [{ path: "(url)", value: c.req.path, expected: "a path of /v1/openapi.json" }])));
  app.onError((error, c) => {
    if (error instanceof ApiError) {
      if (error.code === "VG_UNAUTHENTICATED") c.header("WWW-Authenticate", 'Bearer realm="vifguard"');
      return answer(c, error);
    }
    if (error instanceof HTTPException && error.status === 400) {
      // hono's validator could not parse the body
      return answer(c, new ApiError("VG_INVALID", "The body is not valid JSON", [{ path: "(body)", value: undefined, expected: `a JSON object (${error.message})` }]));
    }
    options.logError?.(error);
    return c.json({ code: "VG_INTERNAL", message: "Internal error (logged on the controller)", issues: [] }, 500);
  });
  return app;
}
