// The web page's pure logic (src/web/app/derive.ts): a host's health, a port's badges, drop rates
// from polled counters (resets included), the chart's paths, merging the long-poll's events and the
// event lines. Also, at compile time, that the controller's answer schemas still fit the page's types.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { z } from "@hono/zod-openapi";
import type { host, port, portStatus, eventPage } from "../../src/controller/api/schemas.ts";
import type * as Web from "../../src/web/app/api-types.ts";
import { addSample, chartOf, dropRates, dropTotals, eventLines, formatAge, hostHealth, mergeEvents, portBadges, type CounterSample } from "../../src/web/app/derive.ts";

// Compile-time: what the controller answers is assignable to what the page reads.
type Fits<A extends B, B> = A;
export type SchemasFitThePage = [
  Fits<z.infer<typeof host>, Web.Host>,
  Fits<z.infer<typeof port>, Web.Port>,
  Fits<z.infer<typeof portStatus>, Web.PortStatus>,
  Fits<z.infer<typeof eventPage>, Web.EventPage>,
];

const T0 = Date.parse("2026-12-05T12:00:00Z");
const at = (ms: number): string => new Date(T0 + ms).toISOString();

test("formatAge and hostHealth: alive under three heartbeats, silent after", () => {
  assert.deepEqual([500, 4_000, 119_000, 600_000, 7_200_000, 3 * 86_400_000].map(formatAge), ["now", "4 s ago", "119 s ago", "10 min ago", "2 h ago", "3 d ago"]);
  const cases: [number, string, string][] = [
    [2_000, "ok", "alive, 2 s ago"],
    [30_000, "ok", "alive, 30 s ago"],
    [31_000, "bad", "silent, 31 s ago"],
    [900_000, "bad", "silent, 15 min ago"],
  ];
  for (const [age, tone, label] of cases) {
    const h = hostHealth({ lastSeenAt: at(0) }, T0 + age);
    assert.deepEqual([h.tone, h.label], [tone, label], `age ${age}`);
  }
  assert.equal(hostHealth({ lastSeenAt: "garbage" }, T0).label, "never seen");
});

const migration = (state: string, extra: Partial<Web.Migration> = {}): Web.Migration => ({ state, host: "hv1", source: null, boundRevision: 7, appliedRevision: null, ...extra });
const status = (over: Partial<Web.PortStatus> = {}): Web.PortStatus => ({
  port: "eve-0", host: "hv1", level: "full", guardsRequired: [], guardsMissing: [], limitations: [], hostRegistered: true,
  migration: migration("ready", { appliedRevision: 9 }), reports: [], ...over,
});
const report = (drops: Record<string, number>, host = "hv1", guardsMissing: string[] = [], over: Partial<Web.PortReport> = {}): Web.PortReport => ({
  host, appliedRevision: 9, state: "enforced", guardsEnforced: [], guardsMissing, drops: Object.entries(drops).map(([reason, packets]) => ({ reason, packets, bytes: packets * 60 })),
  driftRepairs: 0, lastDriftAt: null, reportedAt: at(0), ...over,
});

test("portBadges: applied, awaiting device, ambiguous device, awaiting sync, drifted, migrating, unbound, unregistered host, missing guards, limitations", () => {
  const labels = (p: Pick<Web.Port, "host" | "migration">, s?: Web.PortStatus): string[] => portBadges(p, s).map((b) => `${b.tone}:${b.label}`);
  assert.deepEqual(labels({ host: "hv1", migration: migration("ready") }, status()), ["ok:applied"]);
  // Not applied: the agent says why (its device is absent, or several match), or has not reported it yet.
  assert.deepEqual(labels({ host: "hv1", migration: migration("pending") }, status({ migration: migration("pending") })), ["warn:awaiting sync"]);
  assert.deepEqual(labels({ host: "hv1", migration: migration("pending") }, status({ migration: migration("pending"), reports: [report({}, "hv1", [], { state: "awaiting-device" })] })), ["warn:awaiting device"]);
  assert.deepEqual(labels({ host: "hv1", migration: migration("pending") }, status({ migration: migration("pending"), reports: [report({}, "hv1", [], { state: "ambiguous-device" })] })), ["bad:ambiguous device"]);
  // Another host's report (the source of an old migration) does not speak for this one.
  assert.deepEqual(labels({ host: "hv1", migration: migration("pending") }, status({ migration: migration("pending"), reports: [report({}, "hv2", [], { state: "awaiting-device" })] })), ["warn:awaiting sync"]);
  assert.deepEqual(labels({ host: "hv2", migration: migration("migrating") }, status({ migration: migration("migrating", { host: "hv2", source: "hv1" }), reports: [report({}, "hv1"), report({}, "hv2", [], { state: "awaiting-device" })] })), ["warn:migrating from hv1, awaiting device on hv2"]);
  const drifted = portBadges({ host: "hv1", migration: migration("ready") }, status({ reports: [report({}, "hv1", [], { driftRepairs: 3, lastDriftAt: at(5_000) })] }));
  assert.deepEqual(drifted.map((b) => `${b.tone}:${b.label}`), ["ok:applied", "warn:drifted, repaired 3×"]);
  assert.match(drifted[1]!.title, /2026-12-05T12:00:05\.000Z/);
  assert.deepEqual(labels({ host: null, migration: migration("unbound", { host: null }) }), ["idle:unbound"]);
  assert.deepEqual(labels({ host: "hv2", migration: migration("migrating") }, status({ migration: migration("migrating", { host: "hv2", source: "hv1" }) })), ["warn:migrating from hv1"]);
  assert.deepEqual(labels({ host: "hv2", migration: migration("ready") }, status({ migration: migration("ready-on-destination", { host: "hv2", source: "hv1" }) })), ["ok:applied on hv2, held by hv1"]);
  assert.deepEqual(labels({ host: "hv9", migration: migration("pending") }, status({ hostRegistered: false })), ["bad:host not registered"]);
  // The driver lacks nd-spoof; the agent reports ipv6-fragment missing too: both, once each.
  const lacking = status({ guardsMissing: ["nd-spoof"], limitations: [{ id: "x", guard: "nd-spoof", description: "no ND parsing" }], reports: [report({}, "hv1", ["nd-spoof", "ipv6-fragment"])] });
  assert.deepEqual(labels({ host: "hv1", migration: migration("ready") }, lacking), ["ok:applied", "bad:missing guards: nd-spoof, ipv6-fragment"]);
  const limited = status({ limitations: [{ id: "a", guard: "arp-spoof", description: "d1" }, { id: "b", guard: "vlan", description: "d2" }] });
  assert.deepEqual(labels({ host: "hv1", migration: migration("ready") }, limited), ["ok:applied", "warn:2 limitations"]);
  // Before its status is read, the port's own migration state speaks.
  assert.deepEqual(labels({ host: "hv1", migration: migration("pending") }), ["warn:not applied"]);
});

test("dropTotals sums the reports of both hosts of a migrating port", () => {
  assert.deepEqual(dropTotals(undefined), {});
  assert.deepEqual(dropTotals(status({ reports: [report({ "arp-spoof": 5, "ipv4-spoof": 2 }), report({ "arp-spoof": 1 }, "hv2")] })), { "arp-spoof": 6, "ipv4-spoof": 2 });
});

test("dropRates: per second between samples; a counter that went down was reset; new reasons start at zero", () => {
  const samples: CounterSample[] = [
    { atMs: T0, totals: {} },
    { atMs: T0 + 5_000, totals: { "arp-spoof": 500 } },
    { atMs: T0 + 10_000, totals: { "arp-spoof": 1_500, "ipv4-spoof": 10 } },
    { atMs: T0 + 10_000, totals: { "arp-spoof": 9_999 } }, // same time: no rate
    { atMs: T0 + 12_000, totals: { "arp-spoof": 200, "ipv4-spoof": 10 } }, // reset
  ];
  assert.deepEqual(dropRates(samples), [
    { reason: "arp-spoof", points: [{ atMs: T0 + 5_000, perSecond: 100 }, { atMs: T0 + 10_000, perSecond: 200 }, { atMs: T0 + 12_000, perSecond: 100 }] },
    { reason: "ipv4-spoof", points: [{ atMs: T0 + 5_000, perSecond: 0 }, { atMs: T0 + 10_000, perSecond: 2 }, { atMs: T0 + 12_000, perSecond: 5 }] },
  ]);
  assert.deepEqual(dropRates(samples.slice(0, 1)), []);
  let history: CounterSample[] = [];
  for (let i = 0; i < 5; i++) history = addSample(history, { atMs: i, totals: {} }, 3);
  assert.deepEqual(history.map((s) => s.atMs), [2, 3, 4]);
});

test("chartOf: paths and dots scaled into the box with 10% headroom, over the samples' span; nothing without points", () => {
  const chart = chartOf([
    { reason: "arp-spoof", points: [{ atMs: 0, perSecond: 0 }, { atMs: 1_000, perSecond: 100 }, { atMs: 2_000, perSecond: 50 }] },
    { reason: "ipv4-spoof", points: [{ atMs: 1_000, perSecond: 10 }] },
  ], 200, 110);
  assert.equal(chart.max, 100);
  assert.deepEqual(chart.lines, [
    { reason: "arp-spoof", d: "M0,110 L100,10 L200,60", dots: [{ x: 0, y: 110 }, { x: 100, y: 10 }, { x: 200, y: 60 }], max: 100 },
    { reason: "ipv4-spoof", d: "M100,100", dots: [{ x: 100, y: 100 }], max: 10 },
  ]);
  assert.deepEqual([chart.fromMs, chart.toMs], [0, 2_000]);
  // One rate point after a baseline sample at -2000: it sits at the right end, not alone at both.
  const spanned = chartOf([{ reason: "arp-spoof", points: [{ atMs: 2_000, perSecond: 50 }] }], 200, 110, { fromMs: -2_000, toMs: 2_000 });
  assert.deepEqual(spanned.lines[0]!.dots, [{ x: 200, y: 10 }]);
  assert.deepEqual([spanned.fromMs, spanned.toMs], [-2_000, 2_000]);
  assert.deepEqual(chartOf([], 200, 100).lines, []);
  assert.equal(chartOf([{ reason: "vlan", points: [{ atMs: 5, perSecond: 0 }] }], 200, 100).lines[0]!.d, "M200,100", "all zero: on the axis");
});

const event = (over: Partial<Web.SpoofEvent>): Web.SpoofEvent => ({
  id: "hv2/eve-0/arp-spoof/1", host: "hv2", port: "eve-0", tenant: "eve", network: "public", reason: "arp-spoof",
  firstSeenAt: at(0), lastSeenAt: at(120_000), count: 10, claimed: ["10.0.0.1"], claimedFrom: { port: "alice-0", tenant: "alice" },
  samples: [{ protocol: "ARP" }], updatedMs: 1, ...over,
});

test("mergeEvents: a newer version replaces an older, never the reverse; only the most recently seen are kept", () => {
  const first = mergeEvents(new Map(), [event({ count: 10, updatedMs: 5 })]);
  assert.equal(mergeEvents(first, [event({ count: 20, updatedMs: 6 })]).get("hv2/eve-0/arp-spoof/1")!.count, 20);
  assert.equal(mergeEvents(first, [event({ count: 3, updatedMs: 4 })]).get("hv2/eve-0/arp-spoof/1")!.count, 10);
  const many = mergeEvents(new Map(), [1, 2, 3, 4].map((i) => event({ id: `e${i}`, lastSeenAt: at(i * 1000) })), 2);
  assert.deepEqual([...many.keys()].sort(), ["e3", "e4"]);
});

test("eventLines: ARP and IPv4 claims of one address read as one line, newest first", () => {
  const events = mergeEvents(new Map(), [
    event({ count: 5_000 }),
    event({ id: "hv2/eve-0/ipv4-spoof/1", reason: "ipv4-spoof", count: 89, firstSeenAt: at(30_000), samples: [{ protocol: "IPv4" }] }),
    event({ id: "hv1/mallory-0/mac-spoof/1", host: "hv1", port: "mallory-0", tenant: "m", reason: "mac-spoof", claimed: ["52:54:00:00:00:99"], claimedFrom: null, firstSeenAt: at(-3_600_000), lastSeenAt: at(-3_500_000), count: 1, samples: [] }),
  ]);
  const lines = eventLines(events, { timeZone: "UTC", nowMs: T0 + 200_000 });
  assert.deepEqual(lines.map((l) => l.text), [
    "eve-0 on hv2 claimed 10.0.0.1 (alice-0's) 5,089 times, 12:00–12:02, ARP and IPv4 (arp-spoof, ipv4-spoof)",
    "mallory-0 on hv1 sent as MAC 52:54:00:00:00:99 once, 11:00–11:01, mac-spoof",
  ]);
  assert.deepEqual([lines[0]!.port, lines[0]!.reasons, lines[0]!.claimed], ["eve-0", ["arp-spoof", "ipv4-spoof"], "10.0.0.1"]);
  assert.equal(new Set(lines.map((l) => l.key)).size, 2, "keys are unique");
});
