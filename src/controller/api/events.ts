// /v1/events: spoof events the agents reported, newest first, filtered and paginated, or (with
// changedAfter) a long-poll for events stored after a cursor. A tenant sees her own ports' events
// only; the admin all; an agent its own host's. Effects: none of its own (the store).
import { createRoute, z } from "@hono/zod-openapi";
import type { Principal } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { eventView, type EventQuery } from "../store/events.ts";
import { body, errors, security, type Api, type ApiDeps } from "./common.ts";
import { eventPage, guard } from "./schemas.ts";

const time = z.string().refine((t) => !Number.isNaN(Date.parse(t)), "an ISO 8601 time, e.g. 2026-12-05T12:00:00Z");

export const eventsQuery = z.object({
  tenant: z.string().optional().openapi({ description: "Only this tenant's ports (a tenant token: its own, whatever is given)" }),
  port: z.string().optional(),
  host: z.string().optional(),
  reason: guard.optional(),
  since: time.optional().openapi({ description: "Last seen at or after this time" }),
  until: time.optional().openapi({ description: "First seen before this time" }),
  limit: z.coerce.number().int().min(1).max(1000).optional().openapi({ description: "Events per page, at most 1000; default 100" }),
  before: z.string().regex(/^\d+:.+$/, "the `next` of a previous page").optional().openapi({ description: "The `next` of the previous page" }),
  changedAfter: z.coerce.number().int().min(0).optional().openapi({ description: "Long-poll: only events stored after this cursor (oldest change first); waits up to timeoutMs for one" }),
  timeoutMs: z.coerce.number().int().min(0).max(120_000).optional().openapi({ description: "Long-poll wait with changedAfter, at most 120000; default 30000" }),
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function scope(p: Principal, tenant: string | undefined, host: string | undefined): { tenant?: string; host?: string } {
  if (p.role === "admin") return { ...(tenant !== undefined && { tenant }), ...(host !== undefined && { host }) };
  if (p.role === "tenant") {
    if (tenant !== undefined && tenant !== p.tenant) throw new ApiError("VG_FORBIDDEN", `A tenant token may read its own tenant's events only (${p.tenant})`, [{ path: "query.tenant", value: tenant, expected: `your own tenant (${p.tenant}) or nothing` }]);
    return { tenant: p.tenant, ...(host !== undefined && { host }) };
  }
  if (host !== undefined && host !== p.host) throw new ApiError("VG_FORBIDDEN", `An agent token may read its own host's events only (${p.host})`, [{ path: "query.host", value: host, expected: `your own host (${p.host}) or nothing` }]);
  return { ...(tenant !== undefined && { tenant }), host: p.host };
}

export function registerEvents(app: Api, { store }: ApiDeps) {
  return app.openapi(createRoute({
    method: "get", path: "/v1/events", tags: ["events"], security, operationId: "listEvents",
    summary: "Spoof events: newest first, or a long-poll for new ones",
    description: "Spoof events the agents reported (a port dropped frames for a reason: when, how many, what the sampled frames claimed). Filter by tenant, port, host, reason and time; page with `before` = the previous page's `next`. With `changedAfter` = a previous answer's `cursor`, answers with the events stored since (oldest change first), waiting up to timeoutMs for one. A tenant token sees its own ports' events only; an agent token its own host's; the admin all.",
    request: { query: eventsQuery },
    responses: { 200: body(eventPage, "Events and the cursors to continue"), 400: errors[400], 401: errors[401], 403: errors[403] },
  }), async (c) => {
    const q = c.req.valid("query");
    const principal = c.var.principal;
    const limit = q.limit ?? 100;
    const m = q.before === undefined ? undefined : /^(\d+):(.+)$/.exec(q.before);
    const query: EventQuery = {
      ...scope(principal, q.tenant, q.host),
      ...(q.port !== undefined && { port: q.port }),
      ...(q.reason !== undefined && { reason: q.reason }),
      ...(q.since !== undefined && { sinceMs: Date.parse(q.since) }),
      ...(q.until !== undefined && { untilMs: Date.parse(q.until) }),
      ...(m && { before: { lastSeenMs: Number(m[1]), key: m[2]! } }),
      ...(q.changedAfter !== undefined && { changedAfterMs: q.changedAfter }),
      limit,
    };
    const showOwner = (ownerTenant: string): boolean => principal.role === "admin" || (principal.role === "tenant" && principal.tenant === ownerTenant);
    const cursorBefore = await store.spoofEvents.cursor();
    let rows = await store.spoofEvents.list(query);
    if (q.changedAfter !== undefined && rows.length === 0) {
      // Long-poll: woken by this process's writes, and polling for other replicas'.
      const deadline = Date.now() + (q.timeoutMs ?? 30_000);
      const signal = c.req.raw.signal;
      while (rows.length === 0 && Date.now() < deadline && !signal.aborted) {
        await new Promise<void>((resolve) => {
          const wake = (): void => (clearTimeout(timer), store.events.off("spoof-events", wake), resolve());
          const timer = setTimeout(wake, Math.min(500, Math.max(0, deadline - Date.now())));
          store.events.on("spoof-events", wake);
        });
        rows = await store.spoofEvents.list(query);
      }
      if (rows.length === 0) await sleep(0);
    }
    const events = rows.map((r) => eventView(r, showOwner));
    const last = rows.at(-1);
    const next = q.changedAfter === undefined && last && rows.length === limit ? `${Number(last.last_seen_ms)}:${last.key}` : null;
    const cursor = q.changedAfter !== undefined ? Math.max(q.changedAfter, ...events.map((e) => e.updatedMs)) : cursorBefore;
    return c.json({ events, next, cursor }, 200);
  });
}
