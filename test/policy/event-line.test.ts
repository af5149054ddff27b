// The one-line description of spoof events (src/policy/event-line.ts): table of events in the agent's
// and the controller's shapes, and the grouping of related events into one line.
import assert from "node:assert/strict";
import { test } from "node:test";
import { describeEvent, groupEvents, describeGroup, type EventLike } from "../../src/policy/event-line.ts";

const t0 = Date.parse("2026-12-05T12:03:00Z");
const arp = { protocol: "ARP" };
const ipv4 = { protocol: "IPv4" };

const cases: readonly [string, EventLike, string, { timeZone?: string; nowMs?: number }?][] = [
  ["controller event, owner known", { host: "hv2", port: "eve-0", reason: "arp-spoof", count: 5089, claimed: ["10.0.0.1"], claimedFrom: { port: "alice-0", tenant: "alice" }, firstSeenAt: "2026-12-05T12:03:10.000Z", lastSeenAt: "2026-12-05T12:05:59.000Z", samples: [arp, arp] },
    "eve-0 on hv2 claimed 10.0.0.1 (alice-0's) 5,089 times, 12:03–12:05, ARP (arp-spoof)"],
  ["owner hidden from this reader", { host: "hv2", port: "eve-0", reason: "ipv4-spoof", count: 2, claimed: ["10.0.0.1"], claimedFrom: null, firstSeenAt: "2026-12-05T12:03:00Z", lastSeenAt: "2026-12-05T12:03:30Z", samples: [ipv4] },
    "eve-0 on hv2 claimed 10.0.0.1 2 times, 12:03, IPv4 (ipv4-spoof)"],
  ["agent event (ms, no host), once", { port: "eve-0", reason: "mac-spoof", count: 1, claimed: ["52:54:00:00:00:01"], firstSeenMs: t0, lastSeenMs: t0, samples: [arp] },
    "eve-0 sent as MAC 52:54:00:00:00:01 once, 12:03, ARP (mac-spoof)"],
  ["counters only: nothing claimed, no samples", { port: "eve-0", reason: "vlan", count: 12_345_678, claimed: [], firstSeenMs: t0, lastSeenMs: t0 + 60_000, samples: [] },
    "eve-0 had 12,345,678 frames dropped, 12:03–12:04, vlan"],
  ["a reason without a claim verb keeps its claim out", { port: "eve-0", reason: "ethertype", count: 3, claimed: ["x"], firstSeenMs: t0, lastSeenMs: t0, samples: [{ protocol: "0x88cc" }] },
    "eve-0 had 3 frames dropped, 12:03, 0x88cc (ethertype)"],
  ["DHCP server", { host: "hv1", port: "eve-0", reason: "dhcp-server-guard", count: 40, claimed: ["10.0.0.2"], firstSeenMs: t0, lastSeenMs: t0 + 1000, samples: [ipv4] },
    "eve-0 on hv1 answered DHCP as 10.0.0.2 40 times, 12:03, IPv4 (dhcp-server-guard)"],
  ["over midnight: the last time carries its day", { port: "eve-0", reason: "nd-spoof", count: 9, claimed: ["2001:db8::1"], firstSeenMs: Date.parse("2026-12-05T23:59:00Z"), lastSeenMs: Date.parse("2026-12-06T00:01:00Z"), samples: [{ protocol: "IPv6" }] },
    "eve-0 claimed 2001:db8::1 9 times, 23:59–2026-12-06 00:01, IPv6 (nd-spoof)"],
  ["another day than today: the first time carries its day", { port: "eve-0", reason: "ra-guard", count: 2, claimed: ["fe80::1"], firstSeenMs: t0, lastSeenMs: t0, samples: [{ protocol: "IPv6" }] },
    "eve-0 sent router advertisements as fe80::1 2 times, 2026-12-05 12:03, IPv6 (ra-guard)", { nowMs: t0 + 86_400_000 }],
  ["in another time zone", { port: "eve-0", reason: "arp-spoof", count: 2, claimed: ["10.0.0.1"], firstSeenMs: t0, lastSeenMs: t0 + 120_000, samples: [] },
    "eve-0 claimed 10.0.0.1 2 times, 13:03–13:05, arp-spoof", { timeZone: "Europe/Berlin" }],
];

for (const [name, event, line, options] of cases) {
  test(`describeEvent: ${name}`, () => assert.equal(describeEvent(event, options), line));
}

test("groupEvents: ARP and IPv4 claims of one address at overlapping times are one line; others stay apart", () => {
  const base = { host: "hv2", port: "eve-0", claimed: ["10.0.0.1"], claimedFrom: { port: "alice-0", tenant: "alice" } };
  const events: EventLike[] = [
    { ...base, reason: "arp-spoof", count: 5000, firstSeenMs: t0, lastSeenMs: t0 + 120_000, samples: [arp] },
    { ...base, reason: "ipv4-spoof", count: 89, claimedFrom: null, firstSeenMs: t0 + 30_000, lastSeenMs: t0 + 150_000, samples: [ipv4, arp] },
    { ...base, reason: "ipv4-spoof", count: 1, firstSeenMs: t0 + 3_600_000, lastSeenMs: t0 + 3_600_000, samples: [ipv4] }, // an hour later: another episode
    { ...base, port: "eve-1", reason: "arp-spoof", count: 7, firstSeenMs: t0, lastSeenMs: t0, samples: [arp] }, // another port
    { host: "hv2", port: "eve-0", reason: "vlan", count: 4, claimed: [], firstSeenMs: t0, lastSeenMs: t0, samples: [] }, // claims nothing
  ];
  assert.deepEqual(groupEvents(events).map((g) => describeGroup(g)), [
    "eve-0 on hv2 claimed 10.0.0.1 (alice-0's) 5,089 times, 12:03–12:05, ARP and IPv4 (arp-spoof, ipv4-spoof)",
    "eve-0 on hv2 claimed 10.0.0.1 (alice-0's) once, 13:03, IPv4 (ipv4-spoof)",
    "eve-1 on hv2 claimed 10.0.0.1 (alice-0's) 7 times, 12:03, ARP (arp-spoof)",
    "eve-0 on hv2 had 4 frames dropped, 12:03, vlan",
  ]);
});
