// Spoof events: the agent turns drop counters and sampled dropped frames into one event per port and
// reason and episode (first and last seen, count, a few decoded frames), and says which are due to be
// reported, at most one update per port and reason per interval. Pure (time is passed in).
import { formatAddress } from "../model/ip.ts";
import { ETH_ARP, ETH_IPV4, ETH_IPV6, parseFrame } from "../policy/frame.ts";
import { isGuard, type Guard } from "../policy/guards.ts";
import type { DropSample } from "./plan.ts";

/** The decoded fields of one dropped frame. */
export type FrameSample = Readonly<{
  atMs: number;
  srcMac: string;
  dstMac: string;
  /** "ARP", "IPv4", "IPv6", "802.1Q", or the ethertype in hex. */
  protocol: string;
  srcIp?: string;
  dstIp?: string;
  /** ARP: request/reply, sender and target. */
  arpOp?: number;
  arpSenderMac?: string;
  arpSenderIp?: string;
  arpTargetIp?: string;
  /** NS/NA target. */
  ndTarget?: string;
  /** What the frame claimed that the port may not use: the address or MAC of its reason. */
  claimed?: string;
}>;

export type SpoofEvent = Readonly<{
  /** Unique on its host: port, reason and when the episode began. */
  id: string;
  port: string;
  tenant?: string;
  network?: string;
  reason: Guard;
  firstSeenMs: number;
  lastSeenMs: number;
  /** Frames dropped in this episode (from the counters; at least the samples'). */
  count: number;
  /** What the sampled frames claimed, most frequent first. */
  claimed: string[];
  /** The first few sampled frames. */
  samples: FrameSample[];
}>;

export type EventOptions = Readonly<{
  /** An episode ends after this long without drops; the next drop opens a new event. */
  quietMs: number;
  /** At most one report per port and reason per this interval. */
  minIntervalMs: number;
  /** Samples kept per event. */
  samplesPerEvent: number;
}>;

export const DEFAULT_EVENT_OPTIONS: EventOptions = { quietMs: 60_000, minIntervalMs: 1_000, samplesPerEvent: 3 };

const PROTOCOLS: Record<number, string> = { [ETH_ARP]: "ARP", [ETH_IPV4]: "IPv4", [ETH_IPV6]: "IPv6", 0x8035: "RARP", 0x8100: "802.1Q", 0x88a8: "802.1ad" };

/** Decodes a dropped frame, and what it claimed given why it was dropped. Pure. */
export function sampleFrame(bytes: Uint8Array, reason: Guard, atMs: number): FrameSample {
  const f = parseFrame(bytes);
  const outer = f.tags[0];
  const protocol = outer !== undefined ? (PROTOCOLS[outer] ?? `0x${outer.toString(16)}`) : f.llc ? "LLC" : (PROTOCOLS[f.type] ?? `0x${f.type.toString(16).padStart(4, "0")}`);
  const sample: { -readonly [K in keyof FrameSample]: FrameSample[K] } = { atMs, srcMac: f.src, dstMac: f.dst, protocol };
  if (f.arp && f.arp.plen === 4) {
    sample.arpOp = f.arp.op;
    sample.arpSenderMac = f.arp.sha;
    sample.arpSenderIp = formatAddress(4, f.arp.spa);
    sample.arpTargetIp = formatAddress(4, f.arp.tpa);
  }
  if (f.ipv4) {
    sample.srcIp = formatAddress(4, f.ipv4.src);
    sample.dstIp = formatAddress(4, f.ipv4.dst);
  }
  if (f.ipv6) {
    sample.srcIp = formatAddress(6, f.ipv6.src);
    sample.dstIp = formatAddress(6, f.ipv6.dst);
    if (f.ipv6.icmpv6?.target) sample.ndTarget = formatAddress(6, f.ipv6.icmpv6.target);
  }
  const claimed = claimedBy(sample, reason);
  if (claimed !== undefined) sample.claimed = claimed;
  return sample;
}

function claimedBy(s: FrameSample, reason: Guard): string | undefined {
  switch (reason) {
    case "mac-spoof":
      return s.srcMac;
    case "arp-spoof":
      // A forged sender MAC is the claim when it differs from the frame's; else the sender IP.
      return s.arpSenderMac !== undefined && s.arpSenderMac !== s.srcMac ? s.arpSenderMac : s.arpSenderIp;
    case "ipv4-spoof":
    case "ipv6-spoof":
    case "dhcp-server-guard":
    case "dhcpv6-server-guard":
    case "ra-guard":
    case "redirect-guard":
      return s.srcIp;
    case "nd-spoof":
      return s.ndTarget ?? s.srcIp;
    case "not-for-this-port":
      return s.dstMac;
    default:
      return undefined;
  }
}

type Episode = {
  id: string;
  port: string;
  reason: Guard;
  firstSeenMs: number;
  lastSeenMs: number;
  count: number;
  counted: number;
  sampled: number;
  claims: Map<string, number>;
  samples: FrameSample[];
  reportedMs: number | undefined;
  dirty: boolean;
};

/** Port facts an event carries (standalone mode has no controller to add them). */
export type PortFacts = Readonly<{ tenant?: string; network?: string }>;

/**
 * The open episodes per port and reason. Counter deltas add to the count; samples add decoded
 * frames (a sample without a counter delta yet counts one). due() hands out changed events, each
 * port and reason at most once per minIntervalMs, and forgets episodes quiet for quietMs.
 */
export class EventTracker {
  private readonly options: EventOptions;
  private readonly open = new Map<string, Episode>();

  constructor(options: Partial<EventOptions> = {}) {
    this.options = { ...DEFAULT_EVENT_OPTIONS, ...options };
  }

  private episode(port: string, reason: Guard, nowMs: number): Episode {
    const key = `${port}\u0000${reason}`;
    let e = this.open.get(key);
    if (!e || nowMs - e.lastSeenMs > this.options.quietMs) {
      e = { id: `${port}/${reason}/${nowMs}`, port, reason, firstSeenMs: nowMs, lastSeenMs: nowMs, count: 0, counted: 0, sampled: 0, claims: new Map(), samples: [], reportedMs: undefined, dirty: true };
      this.open.set(key, e);
    }
    return e;
  }

  /** Counter deltas (dropDeltas()) seen at `nowMs`. */
  drops(deltas: readonly DropSample[], nowMs: number): void {
    for (const d of deltas) {
      if (!isGuard(d.reason) || d.packets <= 0) continue;
      const e = this.episode(d.port, d.reason, nowMs);
      e.counted += d.packets;
      e.count = Math.max(e.counted, e.sampled);
      e.lastSeenMs = nowMs;
      e.dirty = true;
    }
  }

  /** One sampled dropped frame of `port` for `reason`. */
  sample(port: string, reason: Guard, sample: FrameSample, nowMs: number): void {
    const e = this.episode(port, reason, nowMs);
    e.sampled++;
    e.count = Math.max(e.counted, e.sampled);
    e.lastSeenMs = Math.max(e.lastSeenMs, nowMs);
    if (sample.claimed !== undefined) e.claims.set(sample.claimed, (e.claims.get(sample.claimed) ?? 0) + 1);
    if (e.samples.length < this.options.samplesPerEvent) e.samples.push(sample);
    e.dirty = true;
  }

  /** Changed events whose port and reason were last reported at least minIntervalMs ago; forgets quiet episodes. */
  due(nowMs: number, facts: (port: string) => PortFacts | undefined = () => undefined): SpoofEvent[] {
    const out: SpoofEvent[] = [];
    for (const [key, e] of this.open) {
      if (e.dirty && (e.reportedMs === undefined || nowMs - e.reportedMs >= this.options.minIntervalMs)) {
        e.dirty = false;
        e.reportedMs = nowMs;
        out.push(eventOf(e, facts(e.port)));
      }
      if (!e.dirty && nowMs - e.lastSeenMs > this.options.quietMs) this.open.delete(key);
    }
    return out.sort((a, b) => a.firstSeenMs - b.firstSeenMs || (a.id < b.id ? -1 : 1));
  }
}

function eventOf(e: Episode, facts: PortFacts | undefined): SpoofEvent {
  const claimed = [...e.claims].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([c]) => c).slice(0, 5);
  return {
    id: e.id,
    port: e.port,
    ...(facts?.tenant !== undefined && { tenant: facts.tenant }),
    ...(facts?.network !== undefined && { network: facts.network }),
    reason: e.reason,
    firstSeenMs: e.firstSeenMs,
    lastSeenMs: e.lastSeenMs,
    count: e.count,
    claimed,
    samples: [...e.samples],
  };
}

/** The newest `limit` events of a list kept by id (the standalone agent's memory of them). Pure. */
export function keepNewest(events: ReadonlyMap<string, SpoofEvent>, limit: number): Map<string, SpoofEvent> {
  if (events.size <= limit) return new Map(events);
  return new Map([...events].sort((a, b) => b[1].lastSeenMs - a[1].lastSeenMs).slice(0, limit));
}
