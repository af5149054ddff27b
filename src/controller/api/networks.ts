// /v1/config and /v1/networks. Tenants manage their own unshared networks and see shared ones;
// admins manage everything, shared networks and the global switch included.
import { createRoute, z } from "@hono/zod-openapi";
import { canSeeNetwork, requireAdmin, requireTenant } from "../auth.ts";
import { ApiError } from "../errors.ts";
import type { NetworkView } from "../store/store.ts";
import { body, errors, jsonBody, security, type Api, type ApiDeps } from "./common.ts";
import { config, configPatch, network, networkCreate, networkPatch } from "./schemas.ts";

const idParam = z.object({ id: z.string() });

export function registerNetworks(app: Api, { store }: ApiDeps) {
  return app
    .openapi(createRoute({
      method: "get", path: "/v1/config", operationId: "getConfig", tags: ["config"], security,
      summary: "Get the global config",
      description: "The global switch (`antiSpoofing`: when false every port is effectively off) and `failClosed` (agents drop the traffic of VM devices that have no policy yet), with the revision of their last change.",
      responses: { 200: body(config, "The global config"), 401: errors[401] },
    }), async (c) => c.json(await store.config(), 200))
    .openapi(createRoute({
      method: "get", path: "/v1/revision", operationId: "getRevision", tags: ["config"], security,
      summary: "Get the global revision",
      description: "Every change to networks, ports, hosts, tokens or the config bumps it: a cheap way to see whether anything changed.",
      responses: { 200: body(z.object({ revision: z.number().int() }), "The current revision"), 401: errors[401] },
    }), async (c) => c.json({ revision: await store.revision() }, 200))
    .openapi(createRoute({
      method: "patch", path: "/v1/config", operationId: "updateConfig", tags: ["config"], security,
      summary: "Set the global switch or fail-closed",
      description: "Admin only. The change reaches every host's desired state (their long-polls wake).",
      request: jsonBody(configPatch), responses: { 200: body(config, "The new global config"), 400: errors[400], 401: errors[401], 403: errors[403] },
    }), async (c) => {
      requireAdmin(c.var.principal, "change the global config");
      return c.json(await store.setConfig(c.req.valid("json")), 200);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/networks", operationId: "listNetworks", tags: ["networks"], security,
      summary: "List networks",
      description: "The networks the token may see: all for admins; for tenants their own and the shared ones; none for agents.",
      responses: { 200: body(z.array(network), "Networks"), 401: errors[401] },
    }), async (c) => {
      const p = c.var.principal;
      if (p.role === "agent") return c.json([] as NetworkView[], 200);
      return c.json(await store.networks.list(p.role === "tenant" ? { visibleTo: p.tenant } : {}), 200);
    })
    .openapi(createRoute({
      method: "post", path: "/v1/networks", operationId: "createNetwork", tags: ["networks"], security,
      summary: "Create a network",
      description: "Tenants create unshared networks of their own; admins name the tenant and may create shared networks (several tenants on one L2 segment), whose level must be full.",
      request: jsonBody(networkCreate), responses: { 201: body(network, "Created"), 400: errors[400], 401: errors[401], 403: errors[403], 409: errors[409] },
    }), async (c) => {
      const p = c.var.principal;
      const input = c.req.valid("json");
      const tenant = input.tenant ?? (p.role === "tenant" ? p.tenant : undefined);
      if (tenant === undefined) throw new ApiError("VG_INVALID", "The request is not valid; nothing was stored", [{ path: "tenant", value: undefined, expected: "this field (admins must name the network's tenant)" }]);
      requireTenant(p, tenant, "create networks of another tenant");
      if (input.shared) requireAdmin(p, "create shared networks");
      if (input.widestPair) requireAdmin(p, "set a network's widest allowed pair");
      return c.json(await store.networks.create({ ...input, tenant }), 201);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/networks/{id}", operationId: "getNetwork", tags: ["networks"], security,
      summary: "Get a network",
      description: "A network the token may see (404 otherwise).",
      request: { params: idParam }, responses: { 200: body(network, "The network"), 401: errors[401], 404: errors[404] },
    }), async (c) => {
      const { id } = c.req.valid("param");
      const n = await store.networks.get(id);
      if (!n || !canSeeNetwork(c.var.principal, n)) throw new ApiError("VG_NOT_FOUND", `No network ${id}`, [{ path: "id", value: id, expected: "an existing network" }]);
      return c.json(n, 200);
    })
    .openapi(createRoute({
      method: "patch", path: "/v1/networks/{id}", operationId: "updateNetwork", tags: ["networks"], security,
      summary: "Change a network",
      description: "Change its default level, its own address ranges, or (admins) its sharing and widest pair. Sharing a network whose ports are below full, or narrowing its ranges under a port that holds something outside them, is refused (409), naming the ports.",
      request: { params: idParam, ...jsonBody(networkPatch) }, responses: { 200: body(network, "The network"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409] },
    }), async (c) => {
      const p = c.var.principal;
      const patch = c.req.valid("json");
      return c.json(await store.networks.update(c.req.valid("param").id, patch, {
        canChange: (n) => {
          if (!canSeeNetwork(p, n)) throw new ApiError("VG_NOT_FOUND", `No network ${n.id}`, [{ path: "id", value: n.id, expected: "an existing network" }]);
          requireTenant(p, n.tenant, "change another tenant's network", "id");
          if (n.shared || patch.shared !== undefined) requireAdmin(p, "change shared networks or sharing");
          if (patch.widestPair !== undefined) requireAdmin(p, "change a network's widest allowed pair");
        },
      }), 200);
    })
    .openapi(createRoute({
      method: "delete", path: "/v1/networks/{id}", operationId: "deleteNetwork", tags: ["networks"], security,
      summary: "Delete a network",
      description: "Only a network without ports (409 otherwise); shared networks only by admins.",
      request: { params: idParam }, responses: { 204: { description: "Deleted" }, 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409] },
    }), async (c) => {
      const p = c.var.principal;
      await store.networks.delete(c.req.valid("param").id, {
        canChange: (n) => {
          if (!canSeeNetwork(p, n)) throw new ApiError("VG_NOT_FOUND", `No network ${n.id}`, [{ path: "id", value: n.id, expected: "an existing network" }]);
          requireTenant(p, n.tenant, "delete another tenant's network", "id");
          if (n.shared) requireAdmin(p, "delete shared networks");
        },
      });
      return c.body(null, 204);
    });
}
