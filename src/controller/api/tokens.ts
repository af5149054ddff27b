// /v1/tokens: admins create, list and revoke bearer tokens. The secret is shown once.
import { createRoute, z } from "@hono/zod-openapi";
import { hashToken, requireAdmin } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { body, errors, jsonBody, security, type Api, type ApiDeps } from "./common.ts";
import { tokenCreate, tokenCreated, tokenView } from "./schemas.ts";

export function registerTokens(app: Api, { store }: ApiDeps) {
  return app
    .openapi(createRoute({
      method: "post", path: "/v1/tokens", operationId: "createToken", tags: ["tokens"], security,
      summary: "Create a token",
      description: "Admin only. The secret is in this answer only; the controller keeps its SHA-256.",
      request: jsonBody(tokenCreate), responses: { 201: body(tokenCreated, "Created"), 400: errors[400], 401: errors[401], 403: errors[403] },
    }), async (c) => {
      requireAdmin(c.var.principal, "create tokens");
      const input = c.req.valid("json");
      if (input.role === "tenant" && !input.tenant) throw new ApiError("VG_INVALID", "A tenant token needs its tenant", [{ path: "tenant", value: undefined, expected: "the tenant this token acts for" }]);
      if (input.role === "agent" && !input.host) throw new ApiError("VG_INVALID", "An agent token needs its host", [{ path: "host", value: undefined, expected: "the host this token acts for" }]);
      const { token, view } = await store.tokens.create({ role: input.role, tenant: input.role === "tenant" ? input.tenant : null, host: input.role === "agent" ? input.host : null, name: input.name ?? "" }, hashToken);
      return c.json({ ...view, token }, 201);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/tokens", operationId: "listTokens", tags: ["tokens"], security,
      summary: "List tokens",
      description: "Admin only; without secrets.",
      responses: { 200: body(z.array(tokenView), "Tokens"), 401: errors[401], 403: errors[403] },
    }), async (c) => {
      requireAdmin(c.var.principal, "list tokens");
      return c.json(await store.tokens.list(), 200);
    })
    .openapi(createRoute({
      method: "delete", path: "/v1/tokens/{id}", operationId: "revokeToken", tags: ["tokens"], security,
      summary: "Revoke a token",
      description: "Admin only; requests with it are refused (401) from then on.",
      request: { params: z.object({ id: z.string() }) }, responses: { 204: { description: "Revoked" }, 401: errors[401], 403: errors[403], 404: errors[404] },
    }), async (c) => {
      requireAdmin(c.var.principal, "revoke tokens");
      await store.tokens.delete(c.req.valid("param").id);
      return c.body(null, 204);
    });
}
