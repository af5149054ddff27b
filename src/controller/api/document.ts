// The API's OpenAPI 3.1 document without a running controller: the same app, asked for
// /v1/openapi.json (the route needs no store, watch or token). Pure.
import type { Authenticator } from "../auth.ts";
import { createApi, type ApiOptions } from "./app.ts";

const UNUSED = new Proxy({}, { get: () => { throw new Error("the OpenAPI document needs no store"); } });

export async function openApiDocument(): Promise<Record<string, unknown>> {
  const app = createApi({ store: UNUSED, watch: UNUSED, auth: UNUSED as Authenticator } as ApiOptions);
  return (await (await app.request("/v1/openapi.json")).json()) as Record<string, unknown>;
}
