// /v1/hosts: agents register their driver's capabilities, heartbeat, long-poll their desired set
// and report their ports' status. An agent token acts for its own host only.
import { createRoute, z } from "@hono/zod-openapi";
import type { PortPolicy } from "../../policy/port-policy.ts";
import { requireAdmin, requireHost } from "../auth.ts";
import { ApiError } from "../errors.ts";
import type { HostView } from "../store/store.ts";
import { body, errors, jsonBody, security, type Api, type ApiDeps } from "./common.ts";
import { desired, host, hostRegistration, name, statusAccepted, statusReport, timeoutMs } from "./schemas.ts";

const hostParam = z.object({ host: name });

function hostAnswer(h: HostView): z.infer<typeof host> {
  const { guards, limitations, ...rest } = h;
  return { ...rest, capabilities: { guards, limitations } };
}

/** A PortPolicy as JSON: prefixes as their canonical text (the agent accepts text or {text}). */
function policyJson(p: PortPolicy): z.infer<typeof desired>["ports"][number] {
  return { ...p, macs: [...p.macs], guards: [...p.guards], bindings: p.bindings.map((b) => ({ mac: b.mac, prefix: b.prefix.text })) };
}

export function registerHosts(app: Api, { store, watch }: ApiDeps) {
  return app
    .openapi(createRoute({
      method: "get", path: "/v1/hosts", operationId: "listHosts", tags: ["hosts"], security,
      summary: "List registered hosts",
      description: "Admin only: each host's driver, version, capabilities and when it was last seen.",
      responses: { 200: body(z.array(host), "Hosts"), 401: errors[401], 403: errors[403] },
    }), async (c) => {
      requireAdmin(c.var.principal, "list hosts");
      return c.json((await store.hosts.list()).map(hostAnswer), 200);
    })
    .openapi(createRoute({
      method: "put", path: "/v1/hosts/{host}", operationId: "registerHost", tags: ["hosts"], security,
      summary: "Register a host",
      description: "The host's agent (or an admin) registers its driver, version and capabilities: the guards its dataplane can enforce and their limitations. A port's status names the guards its host lacks.",
      request: { params: hostParam, ...jsonBody(hostRegistration) }, responses: { 200: body(host, "Registered"), 400: errors[400], 401: errors[401], 403: errors[403] },
    }), async (c) => {
      const { host: name } = c.req.valid("param");
      requireHost(c.var.principal, name, "register another host");
      const r = c.req.valid("json");
      return c.json(hostAnswer(await store.hosts.register(name, { driver: r.driver, version: r.version, guards: r.capabilities.guards, limitations: r.capabilities.limitations })), 200);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/hosts/{host}", operationId: "getHost", tags: ["hosts"], security,
      summary: "Get a host's registration",
      description: "The host's own agent, or an admin.",
      request: { params: hostParam }, responses: { 200: body(host, "The host"), 401: errors[401], 403: errors[403], 404: errors[404] },
    }), async (c) => {
      const { host: name } = c.req.valid("param");
      requireHost(c.var.principal, name, "read another host");
      const h = await store.hosts.get(name);
      if (!h) throw new ApiError("VG_NOT_FOUND", `No host ${name}`, [{ path: "host", value: name, expected: "a registered host" }]);
      return c.json(hostAnswer(h), 200);
    })
    .openapi(createRoute({
      method: "delete", path: "/v1/hosts/{host}", operationId: "deleteHost", tags: ["hosts"], security,
      summary: "Forget a host's registration",
      description: "Admin only; its ports stay bound to it.",
      request: { params: hostParam }, responses: { 204: { description: "Deleted" }, 401: errors[401], 403: errors[403], 404: errors[404] },
    }), async (c) => {
      requireAdmin(c.var.principal, "delete hosts");
      await store.hosts.delete(c.req.valid("param").host);
      return c.body(null, 204);
    })
    .openapi(createRoute({
      method: "post", path: "/v1/hosts/{host}/heartbeat", operationId: "recordHeartbeat", tags: ["hosts"], security,
      summary: "Record a host's heartbeat",
      description: "Liveness: updates lastSeenAt without a new revision.",
      request: { params: hostParam }, responses: { 200: body(host, "The host"), 401: errors[401], 403: errors[403], 404: errors[404] },
    }), async (c) => {
      const { host: name } = c.req.valid("param");
      requireHost(c.var.principal, name, "heartbeat for another host");
      const h = await store.hosts.heartbeat(name);
      if (!h) throw new ApiError("VG_NOT_FOUND", `No host ${name}`, [{ path: "host", value: name, expected: "a registered host (PUT /v1/hosts/{host} first)" }]);
      return c.json(hostAnswer(h), 200);
    })
    .openapi(createRoute({
      method: "get", path: "/v1/hosts/{host}/desired", operationId: "getDesiredState", tags: ["hosts"], security,
      summary: "Get (or watch) a host's desired state",
      description: "The host's desired PortPolicies and the revision they are as of. With since=REV it waits (timeoutMs) until something for this host changed after REV, and answers 204 if nothing did.",
      request: { params: hostParam, query: z.object({ since: z.coerce.number().int().min(0).optional(), timeoutMs }) },
      responses: { 200: body(desired, "The full desired set and the revision it is as of"), 204: { description: "Nothing changed for this host after `since` within timeoutMs" }, 400: errors[400], 401: errors[401], 403: errors[403] },
    }), async (c) => {
      const { host: name } = c.req.valid("param");
      requireHost(c.var.principal, name, "read another host's desired state");
      const { since, timeoutMs: wait = 30_000 } = c.req.valid("query");
      const signal = c.req.raw.signal;
      const deadline = Date.now() + wait;
      const answer = async () => {
        const state = await store.hosts.desired(name);
        return c.json({ ...state, ports: state.ports.map(policyJson) }, 200);
      };
      if (since === undefined) return answer();
      for (;;) {
        // Register the wait first: a change committed after the check below still wakes it.
        const w = watch.waitFor(name, deadline - Date.now(), signal);
        if (since > (await store.revision()) || (await store.lastChangeFor(name, since)) !== undefined) {
          w.cancel();
          return answer();
        }
        if (!(await w.done) || Date.now() >= deadline) return c.body(null, 204);
        // Woken by a change to this host after `since`: answer without asking the store again. (A
        // replica whose watch lags behind `since` may wake it for an older one: then check again.)
        if ((w.revision ?? 0) > since) return answer();
      }
    })
    .openapi(createRoute({
      method: "put", path: "/v1/hosts/{host}/status", operationId: "reportHostStatus", tags: ["hosts"], security,
      summary: "Report a host's port status",
      description: "The agent reports its ports (applied revision, guards enforced and missing, drops) the ports it released, and its spoof events (new or updated since its last report). This makes migrating ports ready on their destination; a source's release ends the migration.",
      request: { params: hostParam, ...jsonBody(statusReport) }, responses: { 200: body(statusAccepted, "Stored"), 400: errors[400], 401: errors[401], 403: errors[403] },
    }), async (c) => {
      const { host: name } = c.req.valid("param");
      requireHost(c.var.principal, name, "report for another host");
      const body = c.req.valid("json");
      const { revision, ready, completed } = await store.hosts.report(name, body.ports, body.released);
      const { ignored } = await store.spoofEvents.record(name, body.events);
      return c.json({ revision, readyMigrations: ready, completedMigrations: completed, ...(ignored.length > 0 && { ignoredEvents: ignored }) }, 200);
    });
}
