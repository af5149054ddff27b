// Spoof events in one readable line each ("eve-0 on hv2 claimed 10.0.0.1 (alice-0's) 5,089 times,
// 12:03–12:05, ARP and IPv4"), for `vifguard events` and the web page. Takes both shapes an event
// comes in: the agent's (src/agent/events.ts, times in ms) and the controller's (GET /v1/events,
// ISO times, host and claimedFrom). Pure: the time zone is passed in (default UTC, so a line reads
// the same on every machine).

/** The fields of an event the line needs; both the agent's and the controller's events have them. */
export type EventLike = Readonly<{
  port: string;
  reason: string;
  count: number;
  claimed: readonly string[];
  host?: string;
  /** Who holds claimed[0] on the port's network (controller only; null when nobody or hidden). */
  claimedFrom?: Readonly<{ port: string; tenant: string }> | null;
  firstSeenMs?: number;
  lastSeenMs?: number;
  firstSeenAt?: string;
  lastSeenAt?: string;
  samples: readonly Readonly<{ protocol?: unknown }>[];
}>;

export type LineOptions = Readonly<{
  /** IANA time zone for the times; default "UTC". */
  timeZone?: string;
  /** With a time (ms), the times of an event on another day than this one carry their date. */
  nowMs?: number;
}>;

/** Events of one port that claimed the same thing at overlapping times read as one line (ARP and IPv4 spoofing of one address). */
export type EventGroup = Readonly<{
  port: string;
  host: string | undefined;
  claimed: string | undefined;
  claimedFrom: Readonly<{ port: string; tenant: string }> | null;
  reasons: string[];
  protocols: string[];
  count: number;
  firstSeenMs: number;
  lastSeenMs: number;
}>;

const VERBS: Readonly<Record<string, string>> = {
  "mac-spoof": "sent as MAC",
  "arp-spoof": "claimed",
  "ipv4-spoof": "claimed",
  "ipv6-spoof": "claimed",
  "nd-spoof": "claimed",
  "ra-guard": "sent router advertisements as",
  "redirect-guard": "sent ICMPv6 redirects as",
  "dhcp-server-guard": "answered DHCP as",
  "dhcpv6-server-guard": "answered DHCPv6 as",
  "not-for-this-port": "was sent frames for",
};

function msOf(ms: number | undefined, iso: string | undefined): number {
  if (ms !== undefined) return ms;
  const parsed = iso === undefined ? Number.NaN : Date.parse(iso);
  return Number.isNaN(parsed) ? 0 : parsed;
}

function protocolsOf(e: EventLike): string[] {
  const seen: string[] = [];
  for (const s of e.samples) if (typeof s.protocol === "string" && !seen.includes(s.protocol)) seen.push(s.protocol);
  return seen;
}

/** The event as a group of one. */
export function groupOf(e: EventLike): EventGroup {
  return {
    port: e.port,
    host: e.host,
    claimed: e.claimed[0],
    claimedFrom: e.claimedFrom ?? null,
    reasons: [e.reason],
    protocols: protocolsOf(e),
    count: e.count,
    firstSeenMs: msOf(e.firstSeenMs, e.firstSeenAt),
    lastSeenMs: msOf(e.lastSeenMs, e.lastSeenAt),
  };
}

const union = (a: readonly string[], b: readonly string[]): string[] => [...a, ...b.filter((x) => !a.includes(x))];

/**
 * Merges events of the same host and port that claimed the same address (or MAC) at overlapping
 * times; events that claimed nothing stay alone. Keeps the order of the first event of each group
 * (callers pass newest first).
 */
export function groupEvents(events: readonly EventLike[]): EventGroup[] {
  const groups: EventGroup[] = [];
  for (const e of events) {
    const g = groupOf(e);
    const i = g.claimed === undefined ? -1 : groups.findIndex((o) => o.port === g.port && o.host === g.host && o.claimed === g.claimed && o.firstSeenMs <= g.lastSeenMs && g.firstSeenMs <= o.lastSeenMs);
    if (i < 0) {
      groups.push(g);
      continue;
    }
    const o = groups[i]!;
    groups[i] = {
      ...o,
      claimedFrom: o.claimedFrom ?? g.claimedFrom,
      reasons: union(o.reasons, g.reasons),
      protocols: union(o.protocols, g.protocols),
      count: o.count + g.count,
      firstSeenMs: Math.min(o.firstSeenMs, g.firstSeenMs),
      lastSeenMs: Math.max(o.lastSeenMs, g.lastSeenMs),
    };
  }
  return groups;
}

function list(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items.at(-1)!}`;
}

function times(firstMs: number, lastMs: number, options: LineOptions): string {
  const timeZone = options.timeZone ?? "UTC";
  const day = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
  const clock = new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const today = options.nowMs === undefined ? undefined : day.format(options.nowMs);
  const at = (ms: number, withDay: boolean): string => (withDay ? `${day.format(ms)} ${clock.format(ms)}` : clock.format(ms));
  const firstDay = day.format(firstMs);
  const lastDay = day.format(lastMs);
  const first = at(firstMs, today !== undefined && firstDay !== today);
  if (firstDay === lastDay && clock.format(firstMs) === clock.format(lastMs)) return first;
  return `${first}–${at(lastMs, firstDay !== lastDay)}`;
}

/** One line for a group of events (or one event: describeEvent). */
export function describeGroup(g: EventGroup, options: LineOptions = {}): string {
  const who = g.host === undefined ? g.port : `${g.port} on ${g.host}`;
  const verb = VERBS[g.reasons[0]!];
  const times_ = g.count === 1 ? "once" : `${g.count.toLocaleString("en-US")} times`;
  const what =
    verb !== undefined && g.claimed !== undefined
      ? `${verb} ${g.claimed}${g.claimedFrom ? ` (${g.claimedFrom.port}'s)` : ""} ${times_}`
      : `had ${g.count.toLocaleString("en-US")} frame${g.count === 1 ? "" : "s"} dropped`;
  const how = g.protocols.length > 0 ? `${list(g.protocols)} (${g.reasons.join(", ")})` : g.reasons.join(", ");
  return `${who} ${what}, ${times(g.firstSeenMs, g.lastSeenMs, options)}, ${how}`;
}

/** One line for one event. */
export function describeEvent(e: EventLike, options: LineOptions = {}): string {
  return describeGroup(groupOf(e), options);
}
