// /v1/ports: ports, their allowed address pairs, status and migration. Tenants own their ports
// (also on shared networks); hosts are set by admins (the orchestrator); agents read the
// ports of their host.
import { createRoute, z } from "@hono/zod-openapi";
import type { Port } from "../../model/types.ts";
import { canSeePort, canUseNetwork, requireAdmin, requireTenant, type Principal } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { isReadyOnHost } from "../rules.ts";
import type { PortCreate, PortView } from "../store/store.ts";
import { body, errors, jsonBody, security, type Api, type ApiDeps } from "./common.ts";
import { allowed, allowedView, migrationWait, port, portBatch, portCreate, portPatch, portStatus, timeoutMs } from "./schemas.ts";

const idParam = z.object({ id: z.string() });

function notFound(id: string): ApiError {
  return new ApiError("VG_NOT_FOUND", `No port ${id}`, [{ path: "id", value: id, expected: "an existing port" }]);
}

/** Fills the tenant and checks who may create this port. */
function creation(p: Principal, input: z.infer<typeof portCreate>, at: string): PortCreate {
  if (p.role === "agent") throw new ApiError("VG_FORBIDDEN", "Your token may not create ports", [{ path: "(token)", value: "agent", expected: "an admin or tenant token" }]);
  if (input.host !== undefined && input.host !== null) requireAdmin(p, `bind ports to hosts (${at}host)`);
  if (p.role === "tenant" && input.tenant !== undefined) requireTenant(p, input.tenant, "create ports of another tenant", `${at}tenant`);
  return { ...input, tenant: input.tenant ?? (p.role === "tenant" ? p.tenant : "") };
}

export function registerPorts(app: Api, { store, watch }: ApiDeps) {
  const visible = async (p: Principal, id: string): Promise<PortView> => {
    const view = await store.ports.get(id);
    if (!view || !canSeePort(p, view, [view.host, view.migration.source])) throw notFound(id);
    return view;
  };
  // A tenant's refusals say "another tenant" instead of naming its ports and private networks.
  const audience = (p: Principal) => (p.role === "tenant" ? { tenant: p.tenant } : {});
  const owner = (p: Principal) => ({
    canChange: (port: Port): void => {
      if (p.role === "agent" || (p.role === "tenant" && port.tenant !== p.tenant)) throw notFound(port.id);
    },
    ...audience(p),
  });
  const networkAccess = (p: Principal) => ({ canUseNetwork: (n: Parameters<typeof canUseNetwork>[1]) => canUseNetwork(p, n), ...audience(p) });
  // Admins creating a port without a tenant give it the network's (as in a port file).
  const withTenant = async (input: PortCreate): Promise<PortCreate> => {
    if (input.tenant !== "") return input;
    return { ...input, tenant: (await store.networks.get(input.network))?.tenant ?? input.network };
  };

  return app
    .openapi(createRoute({
      method: "get", path: "/v1/ports", operationId: "listPorts", tags: ["ports"], security,
      summary: "List ports",
      description: "The ports the token may see (admins: all; tenants: their own; agents: their host's), optionally of one network or host.",
      request: { query: z.object({ network: z.string().optional(), host: z.string().optional() }) },
      responses: { 200: body(z.array(port), "Ports"), 401: errors[401] },
    }), async (c) => {
      const p = c.var.principal;
      const q = c.req.valid("query");
      if (p.role === "agent") return c.json(await store.ports.list({ network: q.network, host: p.host }), 200);
      return c.json(await store.ports.list({ ...q, ...(p.role === "tenant" ? { tenant: p.tenant } : {}) }), 200);
    })
    .openapi(createRoute({
      method: "post", path: "/v1/ports", operationId: "createPort", tags: ["ports"], security,
      summary: "Create a port",
      description: "Checked like a port file (addresses, MAC, level) and against other tenants' ports on the network: an address, prefix or MAC another tenant holds is refused with 409 VG_ADDRESS_CLAIMED. Binding it to a host (`host`) is for admins.",
      request: jsonBody(portCreate), responses: { 201: body(port, "Created"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409], 413: errors[413] },
    }), async (c) => {
      const p = c.var.principal;
      const input = await withTenant(creation(p, c.req.valid("json"), ""));
      const [view] = await store.ports.create([input], networkAccess(p));
      return c.json(view!, 201);
    })
    .openapi(createRoute({
      method: "post", path: "/v1/ports/batch", operationId: "createPorts", tags: ["ports"], security,
      summary: "Create many ports, all or none",
      description: "Like createPort for each; if any is refused nothing is stored, and the issues name `ports[i].…`.",
      request: jsonBody(portBatch), responses: { 201: body(z.array(port), "Created"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409], 413: errors[413] },
    }), async (c) => {
      const p = c.var.principal;
      const inputs = await Promise.all(c.req.valid("json").ports.map((input, i) => withTenant(creation(p, input, `ports[${i}].`))));
      return c.json(await store.ports.create(inputs, networkAccess(p), (i) => `ports[${i}].`), 201);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/ports/{id}", operationId: "getPort", tags: ["ports"], security,
      summary: "Get a port",
      description: "A port the token may see (404 otherwise), with its effective level and binding (migration) state.",
      request: { params: idParam }, responses: { 200: body(port, "The port"), 401: errors[401], 404: errors[404] },
    }), async (c) =>
      c.json(await visible(c.var.principal, c.req.valid("param").id), 200))
    .openapi(createRoute({
      method: "patch", path: "/v1/ports/{id}", operationId: "updatePort", tags: ["ports"], security,
      summary: "Change a port",
      description: "Change addresses, allowed pairs, device, MAC or level, checked like createPort. A new `host` (admins) binds the port, or starts a migration when it was bound elsewhere.",
      request: { params: idParam, ...jsonBody(portPatch) }, responses: { 200: body(port, "The port"), 400: errors[400], 401: errors[401], 403: errors[403], 404: errors[404], 409: errors[409], 413: errors[413] },
    }), async (c) => {
      const p = c.var.principal;
      const patch = c.req.valid("json");
      if (patch.host !== undefined) requireAdmin(p, "bind ports to hosts (host)");
      return c.json(await store.ports.update(c.req.valid("param").id, patch, owner(p)), 200);
    })
    .openapi(createRoute({
      method: "delete", path: "/v1/ports/{id}", operationId: "deletePort", tags: ["ports"], security,
      summary: "Delete a port",
      description: "Its host's agent removes its rules.",
      request: { params: idParam }, responses: { 204: { description: "Deleted" }, 401: errors[401], 404: errors[404] },
    }), async (c) => {
      await store.ports.delete(c.req.valid("param").id, owner(c.var.principal));
      return c.body(null, 204);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/ports/{id}/allowed", operationId: "listAllowedPairs", tags: ["ports"], security,
      summary: "List a port's allowed address pairs",
      description: "Each pair is an address or CIDR and the MAC it may be sent from (the port's, unless given).",
      request: { params: idParam }, responses: { 200: body(z.array(allowedView), "Allowed pairs"), 401: errors[401], 404: errors[404] },
    }), async (c) =>
      c.json([...(await visible(c.var.principal, c.req.valid("param").id)).allowed], 200))
    .openapi(createRoute({
      method: "post", path: "/v1/ports/{id}/allowed", operationId: "addAllowedPair", tags: ["ports"], security,
      summary: "Allow a port an extra address or CIDR",
      description: "Adds an allowed address pair (a failover VIP, say), optionally with its own MAC. An address another tenant's port holds on the network is refused (409); issues name the pair's own fields (ip, mac).",
      request: { params: idParam, ...jsonBody(allowed) }, responses: { 201: body(port, "The port"), 400: errors[400], 401: errors[401], 404: errors[404], 409: errors[409], 413: errors[413] },
    }), async (c) => {
      const pair = c.req.valid("json");
      const id = c.req.valid("param").id;
      const p = c.var.principal;
      let index = 0;
      try {
        const view = await store.ports.update(id, { editAllowed: (current) => ((index = current.length), [...current, pair]) }, owner(p));
        return c.json(view, 201);
      } catch (error) {
        // Issues name the pair's own fields (ip, mac), as the request gave them.
        if (error instanceof ApiError) throw new ApiError(error.code, error.summary, error.issues.map((i) => ({ ...i, path: i.path.replace(`allowed[${index}].`, "") })));
        throw error;
      }
    })
    .openapi(createRoute({
      method: "delete", path: "/v1/ports/{id}/allowed", operationId: "removeAllowedPairs", tags: ["ports"], security,
      summary: "Remove allowed address pairs",
      description: "Removes the pairs with this ip (and this mac, if given); 404 when there is none.",
      request: { params: idParam, query: z.object({ ip: z.string(), mac: z.string().optional() }) },
      responses: { 200: body(port, "The port"), 401: errors[401], 404: errors[404] },
    }), async (c) => {
      const { ip, mac } = c.req.valid("query");
      const id = c.req.valid("param").id;
      let removed = 0;
      const view = await store.ports.update(id, {
        editAllowed: (current) => {
          const kept = current.filter((a) => !(sameText(a.ip, ip) && (mac === undefined || a.mac === mac.toLowerCase().replaceAll("-", ":"))));
          removed = current.length - kept.length;
          if (removed === 0) throw new ApiError("VG_NOT_FOUND", `Port ${id} has no such allowed pair`, [{ path: "ip", value: ip, expected: `one of ${current.map((a) => a.ip).join(", ") || "(none)"}` }]);
          return kept;
        },
      }, owner(c.var.principal));
      return c.json(view, 200);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/ports/{id}/status", operationId: "getPortStatus", tags: ["ports"], security,
      summary: "Get a port's enforcement status",
      description: "The guards its level requires, those the bound host's driver lacks and its limitations, each agent's last report (applied revision, guards, drops) and the migration state.",
      request: { params: idParam }, responses: { 200: body(portStatus, "The port's status"), 401: errors[401], 404: errors[404] },
    }), async (c) => {
      const id = c.req.valid("param").id;
      await visible(c.var.principal, id);
      const status = await store.hosts.portStatus(id);
      if (!status) throw notFound(id);
      return c.json(status, 200);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/ports/{id}/migration", operationId: "getPortMigration", tags: ["ports"], security,
      summary: "Get (or wait for) a port's host and migration state",
      description: "The port's host and migration state. With timeoutMs it waits (long-poll) until the port is ready on its host — the destination while migrating — and that host is readyOn, if given; `ready` says whether it is.",
      request: { params: idParam, query: z.object({ readyOn: z.string().optional(), timeoutMs }) },
      responses: { 200: body(migrationWait, "The state when ready or when the wait ended"), 401: errors[401], 404: errors[404] },
    }), async (c) => {
      const id = c.req.valid("param").id;
      const { readyOn, timeoutMs: wait = 0 } = c.req.valid("query");
      const p = c.var.principal;
      const deadline = Date.now() + wait;
      for (;;) {
        const w = watch.waitFor(undefined, deadline - Date.now(), c.req.raw.signal);
        const view = await visible(p, id).catch((e: unknown) => (w.cancel(), Promise.reject(e)));
        const ready = isReadyOnHost(view.migration.state) && (readyOn === undefined || view.migration.host === readyOn);
        if (ready || Date.now() >= deadline || c.req.raw.signal.aborted) {
          w.cancel();
          return c.json({ ...view.migration, ready }, 200);
        }
        await w.done;
      }
    });
}

function sameText(stored: string, given: string): boolean {
  return stored === given || stored === given.replace(/\/(32|128)$/, "") || stored.toLowerCase() === given.toLowerCase();
}
