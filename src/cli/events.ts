// `vifguard events`: spoof events, one line each (src/policy/event-line.ts) or JSON, from the controller
// (--controller, GET /v1/events through the typed client) or from the agent running on this host (its
// control socket: the events it keeps, standalone or not). --follow waits for new ones (the
// controller's changedAfter long-poll; the agent is asked again every second).
// Effects: HTTP requests or control-socket requests, stdout.
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { LifecycleError, requestLifecycle } from "../agent/lifecycle.ts";
import type { SpoofEvent } from "../agent/events.ts";
import { succeed } from "../controller/client.ts";
import { UsageError } from "../errors.ts";
import { describeEvent, describeGroup, groupEvents, type EventLike, type LineOptions } from "../policy/event-line.ts";
import { GUARDS, isGuard } from "../policy/guards.ts";
import { agentSocket } from "./agent-socket.ts";
import { addControllerOptions, clientFromFlags, type ControllerFlags } from "./controller-options.ts";

type EventsFlags = ControllerFlags & {
  socket?: string;
  tenant?: string;
  port?: string;
  host?: string;
  reason?: string;
  since?: string;
  limit?: string;
  follow?: boolean;
  json?: boolean;
  timeZone?: string;
};

const UNITS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** --since: an ISO 8601 time, or a duration back from now ("90s", "10m", "2h", "7d"). Pure. */
export function parseSince(text: string, nowMs: number): number {
  const relative = /^(\d+)([smhd])$/.exec(text.trim());
  if (relative) return nowMs - Number(relative[1]) * UNITS[relative[2]!]!;
  const at = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(at)) throw new UsageError(`--since: got "${text}", expected a duration back from now (90s, 10m, 2h, 7d) or an ISO 8601 time (2026-12-05T12:00:00Z)`);
  return at;
}

type Filters = Readonly<{ tenant?: string; port?: string; reason?: string; sinceMs?: number }>;

/** The agent's events that pass the filters (the controller filters its own). Pure. */
export function filterEvents<E extends SpoofEvent>(events: readonly E[], f: Filters): E[] {
  return events.filter((e) => (f.tenant === undefined || e.tenant === f.tenant) && (f.port === undefined || e.port === f.port) && (f.reason === undefined || e.reason === f.reason) && (f.sinceMs === undefined || e.lastSeenMs >= f.sinceMs));
}

function checkFlags(flags: EventsFlags): { filters: Filters; limit: number; line: LineOptions } {
  if (flags.reason !== undefined && !isGuard(flags.reason)) throw new UsageError(`--reason: got "${flags.reason}", expected one of ${GUARDS.join(", ")}`);
  const limit = flags.limit === undefined ? 100 : Number(flags.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit: got "${flags.limit}", expected a whole number from 1 to 1000`);
  const timeZone = flags.timeZone ?? "UTC";
  try {
    new Intl.DateTimeFormat("en", { timeZone });
  } catch {
    throw new UsageError(`--time-zone: got "${timeZone}", expected an IANA time zone such as UTC or Europe/Berlin`);
  }
  const filters: Filters = {
    ...(flags.tenant !== undefined && { tenant: flags.tenant }),
    ...(flags.port !== undefined && { port: flags.port }),
    ...(flags.reason !== undefined && { reason: flags.reason }),
    ...(flags.since !== undefined && { sinceMs: parseSince(flags.since, Date.now()) }),
  };
  return { filters, limit, line: { timeZone, nowMs: Date.now() } };
}

/** Newest first: related events (ARP and IPv4 of one claimed address) as one line. */
function render(events: readonly EventLike[], where: string, line: LineOptions): string {
  if (events.length === 0) return `no spoof events (${where})`;
  return groupEvents(events).map((g) => describeGroup(g, line)).join("\n");
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function fromController(flags: EventsFlags, filters: Filters, limit: number, line: LineOptions): Promise<void> {
  const api = await clientFromFlags(flags);
  const query = {
    ...(filters.tenant !== undefined && { tenant: filters.tenant }),
    ...(filters.port !== undefined && { port: filters.port }),
    ...(flags.host !== undefined && { host: flags.host }),
    ...(filters.reason !== undefined && { reason: filters.reason as (typeof GUARDS)[number] }),
    ...(filters.sinceMs !== undefined && { since: new Date(filters.sinceMs).toISOString() }),
  };
  const what = `GET ${flags.controller}/v1/events`;
  const page = await succeed(api.v1.events.$get({ query: { ...query, limit: String(limit) } }), what);
  if (!flags.follow) {
    console.log(flags.json ? JSON.stringify(page.events, null, 2) : render(page.events, flags.controller!, line));
    return;
  }
  // Oldest first, then each change as it is stored (an event seen again prints again, with its new count).
  const print = (events: readonly EventLike[]): void => {
    for (const e of events) console.log(flags.json ? JSON.stringify(e) : describeEvent(e, line));
  };
  print([...page.events].reverse());
  let cursor = page.cursor;
  for (;;) {
    const next = await succeed(api.v1.events.$get({ query: { ...query, changedAfter: String(cursor), timeoutMs: "30000", limit: "1000" } }), what);
    print(next.events);
    cursor = next.cursor;
  }
}

async function agentEvents(socket: string): Promise<SpoofEvent[]> {
  const answer = await requestLifecycle(socket, { op: "events", timeoutMs: 5_000 }, 10_000);
  if (!answer.ok) throw new LifecycleError(answer.code, answer.message);
  return (answer.data as { events: SpoofEvent[] }).events;
}

async function fromAgent(socket: string, flags: EventsFlags, filters: Filters, limit: number, line: LineOptions): Promise<void> {
  const events = filterEvents(await agentEvents(socket), filters).slice(0, limit);
  if (!flags.follow) {
    console.log(flags.json ? JSON.stringify(events, null, 2) : render(events, `agent on ${socket}`, line));
    return;
  }
  const printed = new Map<string, number>();
  const print = (list: readonly SpoofEvent[]): void => {
    for (const e of [...list].reverse()) {
      if (printed.get(e.id) === e.count) continue;
      printed.set(e.id, e.count);
      console.log(flags.json ? JSON.stringify(e) : describeEvent(e, line));
    }
  };
  print(events);
  for (;;) {
    await sleep(1_000);
    print(filterEvents(await agentEvents(socket), filters));
  }
}

export function registerEvents(command: Command): void {
  addControllerOptions(command)
    .option("--socket <path>", "ask the agent on this control socket (default: the agent's, from its config)")
    .option("--tenant <id>", "only this tenant's ports")
    .option("--port <id>", "only this port")
    .option("--host <name>", "with --controller: only this host's events")
    .option("--reason <guard>", `only drops for this reason (${GUARDS.join(", ")})`)
    .option("--since <time>", "only events seen since: a duration back from now (10m, 2h, 7d) or an ISO 8601 time")
    .option("--limit <n>", "at most this many events, newest first (1-1000)", "100")
    .option("--time-zone <zone>", "print times in this IANA time zone", "UTC")
    .option("-F, --follow", "keep waiting for new events and print each as it comes (Ctrl-C ends)")
    .option("--json", "print JSON (with --follow: one event per line)")
    .addHelpText("after", "\nExamples:\n  vifguard events                              # on an agent host: the events the running agent keeps\n  vifguard events --since 1h --reason arp-spoof\n  VIFGUARD_TOKEN=... vifguard events --controller http://127.0.0.1:8700 --tenant alice --follow\n")
    .action(async (flags: EventsFlags) => {
      const { filters, limit, line } = checkFlags(flags);
      if (flags.controller) return fromController(flags, filters, limit, line);
      if (flags.tokenFile !== undefined) throw new UsageError("--token-file: needs --controller URL (without it, vifguard events asks the agent on this host)");
      if (flags.host !== undefined) throw new UsageError("--host: needs --controller URL (the agent on this host knows its own events only)");
      const socket = flags.socket ?? (await agentSocket());
      if (flags.socket === undefined && !existsSync(socket)) throw new UsageError(`no agent runs here (no control socket at ${socket}): pass --controller URL, or --socket PATH of a running agent`);
      return fromAgent(socket, flags, filters, limit, line);
    });
}
