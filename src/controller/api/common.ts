// Shared pieces of the API routes: the app's type, response helpers, the error answers. Pure.
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { Principal } from "../auth.ts";
import type { Store } from "../store/store.ts";
import type { RevisionWatch } from "../watch.ts";
import { errorBody } from "./schemas.ts";

export type ApiDeps = Readonly<{ store: Store; watch: RevisionWatch }>;
export type ApiEnv = { Variables: { principal: Principal } };
export type Api = OpenAPIHono<ApiEnv>;

export function body<T extends z.ZodType>(schema: T, description: string) {
  return { content: { "application/json": { schema } }, description };
}

export const errors = {
  400: body(errorBody, "Malformed input; issues name each field"),
  401: body(errorBody, "No or unknown bearer token"),
  403: body(errorBody, "The token's role may not do this"),
  404: body(errorBody, "No such object (or not visible to this token)"),
  409: body(errorBody, "Conflicts with stored state: an address another tenant holds, a taken id, a missing guard"),
  413: body(errorBody, "The body is too large, or a port exceeds the per-port limits (maxAddressesPerPort, maxAllowedPairsPerPort; VG_TOO_LARGE names the limit)"),
  500: body(errorBody, "Internal error (logged on the controller); code VG_INTERNAL"),
} as const;

export const security = [{ bearer: [] }];

/** A JSON request body for a route. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return { body: { content: { "application/json": { schema } }, required: true } };
}
