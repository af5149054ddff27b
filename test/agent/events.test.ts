// Spoof events from counters and sampled frames: episodes, counts, claims, the per-port-and-reason rate limit.
import assert from "node:assert/strict";
import { test } from "node:test";
import { EventTracker, sampleFrame } from "../../src/agent/events.ts";
import { guardOfLogPrefix } from "../../src/drivers/nftables/skeleton.ts";

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replaceAll(" ", ""), "hex"));
// Eve (52:54:00:00:00:02) says 10.0.0.1 is at her MAC: a gratuitous ARP.
const EVE_ARP = hex("ffffffffffff 525400000002 0806 0001 0800 06 04 0001 525400000002 0a000001 000000000000 0a000001");

test("sampleFrame() decodes a forged ARP and names the address it claimed", () => {
  const s = sampleFrame(EVE_ARP, "arp-spoof", 1000);
  assert.deepEqual([s.protocol, s.srcMac, s.arpSenderIp, s.arpTargetIp, s.claimed], ["ARP", "52:54:00:00:00:02", "10.0.0.1", "10.0.0.1", "10.0.0.1"]);
  assert.equal(sampleFrame(EVE_ARP, "mac-spoof", 1000).claimed, "52:54:00:00:00:02");
});

test("guardOfLogPrefix() reads the nftables log prefix, and nothing else", () => {
  assert.equal(guardOfLogPrefix("vg:arp-spoof "), "arp-spoof");
  assert.equal(guardOfLogPrefix("vg:no-such-guard "), undefined);
  assert.equal(guardOfLogPrefix("other"), undefined);
});

test("EventTracker: one event per port and reason and episode, at most one report per interval", () => {
  const tracker = new EventTracker({ quietMs: 60_000, minIntervalMs: 1_000 });
  tracker.sample("eve-0", "arp-spoof", sampleFrame(EVE_ARP, "arp-spoof", 0), 0);
  tracker.drops([{ port: "eve-0", reason: "arp-spoof", packets: 40 }, { port: "eve-0", reason: "ipv4-spoof", packets: 2 }], 500);
  const first = tracker.due(500, () => ({ tenant: "eve", network: "public" }));
  assert.deepEqual(first.map((e) => [e.id, e.reason, e.count, e.claimed, e.tenant]), [["eve-0/arp-spoof/0", "arp-spoof", 40, ["10.0.0.1"], "eve"], ["eve-0/ipv4-spoof/500", "ipv4-spoof", 2, [], "eve"]]);
  // More drops within the interval: held back, then reported as the same event with the sum.
  tracker.drops([{ port: "eve-0", reason: "arp-spoof", packets: 60 }], 900);
  assert.deepEqual(tracker.due(900), []);
  const later = tracker.due(1600);
  assert.deepEqual(later.map((e) => [e.id, e.count, e.firstSeenMs, e.lastSeenMs]), [["eve-0/arp-spoof/0", 100, 0, 900]]);
  assert.deepEqual(tracker.due(1700), [], "nothing new, nothing reported");
  // After quietMs without drops a new episode (a new event) begins.
  tracker.drops([{ port: "eve-0", reason: "arp-spoof", packets: 1 }], 100_000);
  assert.deepEqual(tracker.due(100_000).map((e) => [e.id, e.count]), [["eve-0/arp-spoof/100000", 1]]);
});
