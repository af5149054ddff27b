// The controller's HTTP API under /v1 (hono + zod-openapi), its OpenAPI 3.1 document at
// /v1/openapi.json, bearer authentication, the body size limit, and one place that turns errors
// into {code, message, issues} with the HTTP status of HTTP_STATUS. Effects: none of its own.
import { OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { formatPath } from "../../model/port-file.ts";
import type { Authenticator } from "../auth.ts";
import { ApiError, HTTP_STATUS } from "../errors.ts";
import { VERSION } from "../../version.ts";
import type { ControllerMetrics } from "../metrics.ts";
import { registerUi, type UiAssets } from "../ui.ts";
import { errors, type Api, type ApiDeps, type ApiEnv } from "./common.ts";
import { registerEvents } from "./events.ts";
import { registerHosts } from "./hosts.ts";
import { registerNetworks } from "./networks.ts";
import { registerPorts } from "./ports.ts";
import { registerTokens } from "./tokens.ts";

export type ApiOptions = ApiDeps & Readonly<{ auth: Authenticator; maxBodyBytes?: number; logError?: (error: unknown) => void; metrics?: ControllerMetrics;
  /** The web page's files (../ui.ts): served at /ui/ when given. */
  ui?: UiAssets }>;

export const DEFAULT_MAX_BODY_BYTES = 1 << 20;
const DOCUMENT_PATH = "/v1/openapi.json";

/** The document's tags: every route's `tags` names one of these (a new group adds its own here). */
const TAGS = [
  { name: "config", description: "The global switch, fail-closed and the global revision" },
  { name: "networks", description: "L2 networks: tenant, shared or not, default protection level" },
  { name: "ports", description: "VM ports: addresses, allowed address pairs, protection level, host binding, enforcement status and migration" },
  { name: "events", description: "Spoof events: what the agents' dataplanes dropped, per port and reason, with sampled frames" },
  { name: "hosts", description: "Hypervisor hosts (their agents): registration with the driver's capabilities, heartbeats, watching the desired state, status reports" },
  { name: "tokens", description: "Bearer tokens of admins, tenants and agents" },
  { name: "meta", description: "This document" },
];

/** Whether a request part (a zod object of path or query parameters) can fail validation. */
function canRefuse(schema: unknown, part: "path" | "query"): boolean {
  if (!(schema instanceof z.ZodObject)) return schema !== undefined;
  return Object.values(schema.shape as Record<string, z.ZodType>).some((field) => {
    const optional = field instanceof z.ZodOptional;
    const inner = optional ? (field.unwrap() as z.ZodType) : field;
    const plainText = inner instanceof z.ZodString && (inner._zod.def.checks ?? []).length === 0;
    return !plainText || (part === "query" && !optional);
  });
}

/**
 * Adds to every route the answers it can give whatever its handler does, unless it declares them
 * itself: 401 (the token check), 400 (a body, or parameters that can fail validation), 413 (the body
 * size limit), 500. So the document lists every status a route can answer.
 */
function documentCommonAnswers(app: Api): void {
  for (const definition of app.openAPIRegistry.definitions) {
    if (definition.type !== "route") continue;
    const { route } = definition;
    const responses = route.responses as Record<string, unknown>;
    const add = (status: keyof typeof errors, when: boolean): void => {
      if (when) responses[status] ??= errors[status];
    };
    const request = route.request;
    add(400, request?.body !== undefined || canRefuse(request?.params, "path") || canRefuse(request?.query, "query"));
    add(401, route.security === undefined || route.security.length > 0);
    add(413, request?.body !== undefined);
    add(500, true);
  }
}

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
  return [registerNetworks(app, deps), registerPorts(app, deps), registerHosts(app, deps), registerTokens(app, deps), registerEvents(app, deps)] as const;
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
  app.openAPIRegistry.registerPath({
    method: "get", path: DOCUMENT_PATH, operationId: "getOpenApiDocument", tags: ["meta"], security: [],
    summary: "Get this OpenAPI document",
    description: "The API's OpenAPI 3.1 document; the one request that needs no token.",
    responses: { 200: { description: "The OpenAPI 3.1 document", content: { "application/json": { schema: { type: "object" } } } }, 413: errors[413] },
  });
  app.doc31(DOCUMENT_PATH, {
    openapi: "3.1.0",
    info: {
      title: "vifguard controller",
      version: VERSION,
      description: "Networks, ports, allowed address pairs, protection levels and the global switch of vifguard, which keeps virtual machines from spoofing each other; hosts register their driver's capabilities and watch their desired state by revision.",
      license: { name: "Apache-2.0", url: "https://www.apache.org/licenses/LICENSE-2.0" },
      contact: { name: "vifguard maintainers" },
    },
    servers: [{ url: "/", description: "The controller serving this document" }],
    tags: TAGS,
  });

  const metrics = options.metrics;
  if (metrics) {
    // Prometheus scrapes without a token, like the agent's /metrics: counts and host names only.
    app.get("/metrics", async (c) => c.body(await metrics.registry.metrics(), 200, { "content-type": metrics.registry.contentType }));
    app.use("/v1/*", async (c, next) => {
      const started = performance.now();
      try {
        await next();
      } finally {
        // The matched pattern, not the path: ids would make a label per port.
        const route = c.req.routePath === "/v1/*" || c.req.routePath === "*" ? "(unmatched)" : c.req.routePath;
        metrics.observe(c.req.method, route, c.res.status, (performance.now() - started) / 1000);
      }
    });
  }
  app.use("/v1/*", bodyLimit({
    maxSize: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    onError: (c) => answer(c, new ApiError("VG_TOO_LARGE", `The body exceeds ${options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES} bytes`, [{ path: "(body)", value: c.req.header("content-length") ?? "(chunked)", expected: `at most ${options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES} bytes` }])),
  }));
  app.use("/v1/*", async (c, next) => {
    if (c.req.path === DOCUMENT_PATH) return next();
    c.set("principal", await options.auth.authenticate(c.req.header("authorization")));
    return next();
  });

  registerRoutes(app, options);
  documentCommonAnswers(app);
  // After the document is complete: the page's routes are plain hono routes, not in it.
  if (options.ui) registerUi(app, options.ui);

  app.notFound((c) => answer(c, new ApiError("VG_NOT_FOUND", `No route ${c.req.method} ${c.req.path}`, [{ path: "(url)", value: c.req.path, expected: `a path of ${DOCUMENT_PATH}` }])));
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
