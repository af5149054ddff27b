// What the page shows, derived from the controller's answers: a host's health, a port's status
// badges, drop rates over time from polled counters, the live event list as readable lines, and the
// chart's geometry. Pure: the time is passed in (test/web/derive.test.ts).
import { describeGroup, groupEvents } from "../../policy/event-line.ts";
import type { Host, Port, PortStatus, SpoofEvent } from "./api-types.ts";

export type Tone = "ok" | "warn" | "bad" | "idle";
export type Badge = Readonly<{ tone: Tone; label: string; title: string }>;

/** The agent heartbeats every 10 s by default (agent.yaml source.controller.heartbeatMs). */
export const HEARTBEAT_MS = 10_000;

/** "now", "4 s ago", "3 min ago", "2 h ago", "5 d ago". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 2) return "now";
  if (s < 120) return `${s} s ago`;
  const min = Math.round(s / 60);
  if (min < 120) return `${min} min ago`;
  const h = Math.round(min / 60);
  return h < 48 ? `${h} h ago` : `${Math.round(h / 24)} d ago`;
}

/** A host's agent is alive while its last heartbeat is under three heartbeats old. */
export function hostHealth(host: Pick<Host, "lastSeenAt">, nowMs: number, heartbeatMs = HEARTBEAT_MS): Badge {
  const age = nowMs - Date.parse(host.lastSeenAt);
  const seen = `last heartbeat ${formatAge(age)} (${host.lastSeenAt})`;
  if (Number.isNaN(age)) return { tone: "bad", label: "never seen", title: "no heartbeat recorded" };
  if (age <= 3 * heartbeatMs) return { tone: "ok", label: `alive, ${formatAge(age)}`, title: seen };
  return { tone: "bad", label: `silent, ${formatAge(age)}`, title: `${seen}: missed three heartbeats or more` };
}

/**
 * The port's status as badges. What the controller knows: whether its host applied it, or its agent
 * reports it awaiting its device (or with an ambiguous one); with no report it awaits the agent's
 * sync. Its migration, drift its agent repaired, the guards its host's driver lacks (and what the
 * agent reports missing), and whether the host registered at all.
 */
export function portBadges(port: Pick<Port, "host" | "migration">, status: PortStatus | undefined): Badge[] {
  const badges: Badge[] = [];
  const m = status?.migration ?? port.migration;
  // What the (destination) host's agent reports when it has not applied the port: why not.
  const waiting = status?.reports.find((r) => r.host === m.host && r.state !== "enforced");
  const why = waiting?.state === "awaiting-device" ? "its device is not there yet, so nothing is installed for it"
    : waiting?.state === "ambiguous-device" ? "several devices match its MAC, so none was chosen and nothing is installed for it (fail-closed covers them)"
    : "its agent has not reported it yet (not synced, or its device is not there yet)";
  if (port.host === null) badges.push({ tone: "idle", label: "unbound", title: "no host: the orchestrator has not placed it" });
  else if (status && !status.hostRegistered) badges.push({ tone: "bad", label: "host not registered", title: `${port.host} has no registered agent` });
  else if (m.state === "ready") badges.push({ tone: "ok", label: "applied", title: `${m.host} applied revision ${m.appliedRevision ?? "?"} (bound at ${m.boundRevision})` });
  else if (m.state === "pending" && waiting?.state === "ambiguous-device") badges.push({ tone: "bad", label: "ambiguous device", title: `${m.host}: ${why}` });
  else if (m.state === "pending") badges.push({ tone: "warn", label: waiting ? "awaiting device" : status ? "awaiting sync" : "not applied", title: `${m.host} has not enforced it since revision ${m.boundRevision}: ${why}` });
  else if (m.state === "migrating") badges.push({ tone: "warn", label: `migrating from ${m.source ?? "?"}${waiting ? `, ${waiting.state.replace("-", " ")} on ${m.host}` : ""}`, title: `the destination ${m.host} has not applied it yet (${why}); ${m.source ?? "the source"} keeps it` });
  else if (m.state === "ready-on-destination") badges.push({ tone: "ok", label: `applied on ${m.host}, held by ${m.source ?? "?"}`, title: "the destination applied it; the source keeps it until it releases it or its hold ends" });
  else badges.push({ tone: "idle", label: m.state, title: m.state });
  for (const r of status?.reports ?? []) {
    if (r.driftRepairs > 0) badges.push({ tone: "warn", label: `drifted, repaired ${r.driftRepairs}×`, title: `${r.host} re-installed its rules ${r.driftRepairs} time${r.driftRepairs === 1 ? "" : "s"} after they changed behind vifguard's back (since its agent started), last at ${r.lastDriftAt ?? "?"}` });
  }
  if (status) {
    const reported = status.reports.filter((r) => r.host === port.host).flatMap((r) => r.guardsMissing);
    const missing = [...new Set([...status.guardsMissing, ...reported])];
    if (missing.length > 0) {
      const why = status.limitations.map((l) => `${l.guard}: ${l.description}`);
      badges.push({ tone: "bad", label: `missing guards: ${missing.join(", ")}`, title: ["the host's driver cannot enforce these guards the level needs", ...why].join("\n") });
    } else if (status.limitations.length > 0) {
      badges.push({ tone: "warn", label: `${status.limitations.length} limitation${status.limitations.length === 1 ? "" : "s"}`, title: status.limitations.map((l) => `${l.guard}: ${l.description}`).join("\n") });
    }
  }
  return badges;
}

/** Dropped packets per reason, summed over the hosts that report the port (two while it migrates). */
export function dropTotals(status: PortStatus | undefined): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const r of status?.reports ?? []) for (const d of r.drops) totals[d.reason] = (totals[d.reason] ?? 0) + d.packets;
  return totals;
}

export type CounterSample = Readonly<{ atMs: number; totals: Readonly<Record<string, number>> }>;

/** Appends a sample, keeping the newest `keep`. */
export function addSample(history: readonly CounterSample[], sample: CounterSample, keep = 360): CounterSample[] {
  const next = [...history, sample];
  return next.length > keep ? next.slice(next.length - keep) : next;
}

export type RatePoint = Readonly<{ atMs: number; perSecond: number }>;
export type RateSeries = Readonly<{ reason: string; points: readonly RatePoint[] }>;

/**
 * Drops per second per reason between consecutive samples, at the later sample's time. A counter
 * that went down was reset (the agent restarted, the port's rules were replaced): its new value is
 * what was dropped since. Reasons sorted by name; a reason appears once any sample has it.
 */
export function dropRates(history: readonly CounterSample[]): RateSeries[] {
  const reasons = [...new Set(history.flatMap((s) => Object.keys(s.totals)))].sort();
  return reasons.map((reason) => {
    const points: RatePoint[] = [];
    for (let i = 1; i < history.length; i++) {
      const before = history[i - 1]!;
      const after = history[i]!;
      const seconds = (after.atMs - before.atMs) / 1000;
      if (seconds <= 0) continue;
      const was = before.totals[reason] ?? 0;
      const now = after.totals[reason] ?? 0;
      points.push({ atMs: after.atMs, perSecond: (now >= was ? now - was : now) / seconds });
    }
    return { reason, points };
  });
}

export type ChartLine = Readonly<{ reason: string; d: string; dots: readonly Readonly<{ x: number; y: number }>[]; max: number }>;
export type Chart = Readonly<{ lines: ChartLine[]; max: number; fromMs: number; toMs: number }>;

/**
 * SVG paths and dots (a lone point has no line) for rate series in a width × height box, y up with
 * 10% headroom; x spans `span` (the samples' times: the first sample is the baseline and has no
 * rate) or else the points' own times. No lines without points.
 */
export function chartOf(series: readonly RateSeries[], width: number, height: number, span?: Readonly<{ fromMs: number; toMs: number }>): Chart {
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return { lines: [], max: 0, fromMs: 0, toMs: 0 };
  const fromMs = Math.min(span?.fromMs ?? Infinity, ...all.map((p) => p.atMs));
  const toMs = Math.max(span?.toMs ?? -Infinity, ...all.map((p) => p.atMs));
  const max = Math.max(...all.map((p) => p.perSecond));
  const top = max > 0 ? max * 1.1 : 1;
  const r = (n: number): number => Math.round(n * 10) / 10;
  const x = (ms: number): number => r(toMs === fromMs ? width : ((ms - fromMs) / (toMs - fromMs)) * width);
  const y = (v: number): number => r(height - (v / top) * height);
  const lines = series.map((s) => ({
    reason: s.reason,
    d: s.points.map((p, i) => `${i === 0 ? "M" : "L"}${x(p.atMs)},${y(p.perSecond)}`).join(" "),
    dots: s.points.map((p) => ({ x: x(p.atMs), y: y(p.perSecond) })),
    max: Math.max(0, ...s.points.map((p) => p.perSecond)),
  }));
  return { lines, max, fromMs, toMs };
}

/** Events by id, newer versions replacing older; only the `keep` most recently seen stay. */
export function mergeEvents(current: ReadonlyMap<string, SpoofEvent>, incoming: readonly SpoofEvent[], keep = 500): Map<string, SpoofEvent> {
  const next = new Map(current);
  for (const e of incoming) {
    const had = next.get(e.id);
    if (!had || had.updatedMs <= e.updatedMs) next.set(e.id, e);
  }
  if (next.size <= keep) return next;
  return new Map(newestFirst([...next.values()]).slice(0, keep).map((e) => [e.id, e]));
}

function newestFirst(events: readonly SpoofEvent[]): SpoofEvent[] {
  return [...events].sort((a, b) => Date.parse(b.lastSeenAt) - Date.parse(a.lastSeenAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export type EventLine = Readonly<{ key: string; text: string; port: string; host: string | undefined; reasons: readonly string[]; claimed: string | undefined; lastSeenMs: number }>;

/** One readable line per group of events (src/policy/event-line.ts), newest first. */
export function eventLines(events: ReadonlyMap<string, SpoofEvent>, options: Readonly<{ timeZone?: string; nowMs?: number }> = {}): EventLine[] {
  return groupEvents(newestFirst([...events.values()]))
    .sort((a, b) => b.lastSeenMs - a.lastSeenMs)
    .map((g) => ({
      key: `${g.host ?? ""}/${g.port}/${g.claimed ?? g.reasons.join(",")}/${g.firstSeenMs}`,
      text: describeGroup(g, options),
      port: g.port,
      host: g.host,
      reasons: g.reasons,
      claimed: g.claimed,
      lastSeenMs: g.lastSeenMs,
    }));
}
