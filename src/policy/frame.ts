// Parses raw Ethernet frames (as captured) into the fields the evaluator checks. Pure.
// Lengths come from the headers (IPv4 total length, IPv6 payload length), so Ethernet
// padding and capture trailers are ignored; anything truncated is flagged, never guessed.
import { macFromBytes, type Mac } from "../model/mac.ts";

export const ETH_IPV4 = 0x0800;
export const ETH_ARP = 0x0806;
export const ETH_RARP = 0x8035;
export const ETH_IPV6 = 0x86dd;
export const VLAN_TPIDS: readonly number[] = [0x8100, 0x88a8, 0x9100];

export const PROTO_TCP = 6;
export const PROTO_UDP = 17;
export const PROTO_ICMPV6 = 58;
export const IPV6_EXTENSION_HEADERS: readonly number[] = [0, 43, 44, 60]; // hop-by-hop, routing, fragment, destination options

export type Arp = Readonly<{
  htype: number;
  ptype: number;
  hlen: number;
  plen: number;
  op: number;
  sha: Mac;
  spa: Uint8Array;
  tha: Mac;
  tpa: Uint8Array;
}>;

export type Ports = Readonly<{ sport: number; dport: number }>;

export type Ipv4 = Readonly<{
  src: Uint8Array;
  dst: Uint8Array;
  protocol: number;
  fragmentOffset: number;
  moreFragments: boolean;
  /** UDP/TCP ports, present on a first fragment that holds them. */
  ports?: Ports;
}>;

export type NdOption = Readonly<{ type: number; offset: number; data: Uint8Array }>;

export type Icmpv6 = Readonly<{
  type: number;
  code: number;
  /** NS/NA/redirect target address. */
  target?: Uint8Array;
  /** ND options in wire order (NS, NA, RS, RA, redirect). */
  options: readonly NdOption[];
  /** An option had length 0 or ran past the message. */
  badOptions: boolean;
}>;

export type Ipv6 = Readonly<{
  src: Uint8Array;
  dst: Uint8Array;
  hopLimit: number;
  /** Extension headers walked, in order. */
  extensions: readonly number[];
  fragment?: Readonly<{ offset: number; more: boolean }>;
  /** The upper-layer protocol, undefined when the header chain ends before it (truncated or non-first fragment). */
  upper?: number;
  ports?: Ports;
  icmpv6?: Icmpv6;
  /** Bytes from the start of the upper-layer header to the end of the payload (set when `upper` is). */
  upperLength?: number;
  /** The extension-header chain ran past the packet. */
  chainTruncated: boolean;
}>;

export type Frame = Readonly<{
  bytes: Uint8Array;
  dst: Mac;
  src: Mac;
  /** TPIDs of the VLAN tags in front of the payload, outermost first. */
  tags: readonly number[];
  /** The ethertype after the tags, or the 802.3 length (≤ 1500). */
  type: number;
  /** 802.3 frame with LLC (the type field is a length). */
  llc: boolean;
  arp?: Arp;
  ipv4?: Ipv4;
  ipv6?: Ipv6;
  /** What could not be read, if anything. */
  malformed?: string;
}>;

const u16 = (b: Uint8Array, o: number): number => ((b[o] ?? 0) << 8) | (b[o + 1] ?? 0);

export function parseFrame(bytes: Uint8Array): Frame {
  if (bytes.length < 14) {
    return { bytes, dst: macFromBytes(bytes, 0), src: macFromBytes(bytes, 6), tags: [], type: 0, llc: false, malformed: "frame shorter than an Ethernet header" };
  }
  const dst = macFromBytes(bytes, 0);
  const src = macFromBytes(bytes, 6);
  const tags: number[] = [];
  let offset = 12;
  let type = u16(bytes, offset);
  while (VLAN_TPIDS.includes(type)) {
    if (bytes.length < offset + 6) return { bytes, dst, src, tags: [...tags, type], type, llc: false, malformed: "truncated VLAN tag" };
    tags.push(type);
    offset += 4;
    type = u16(bytes, offset);
  }
  offset += 2;
  const base = { bytes, dst, src, tags, type, llc: type <= 1500 };
  const l3 = bytes.subarray(offset);
  switch (type) {
    case ETH_ARP:
    case ETH_RARP:
      return withPart(base, "arp", parseArp(l3));
    case ETH_IPV4:
      return withPart(base, "ipv4", parseIpv4(l3));
    case ETH_IPV6:
      return withPart(base, "ipv6", parseIpv6(l3));
    default:
      return base;
  }
}

type Parsed<T> = { ok: T } | { malformed: string };

function withPart<K extends "arp" | "ipv4" | "ipv6">(base: Frame, key: K, parsed: Parsed<NonNullable<Frame[K]>>): Frame {
  return "ok" in parsed ? { ...base, [key]: parsed.ok } : { ...base, malformed: parsed.malformed };
}

function parseArp(b: Uint8Array): Parsed<Arp> {
  if (b.length < 8) return { malformed: "truncated ARP header" };
  const htype = u16(b, 0);
  const ptype = u16(b, 2);
  const hlen = b[4] ?? 0;
  const plen = b[5] ?? 0;
  const op = u16(b, 6);
  if (hlen !== 6 || plen !== 4) {
    // Not Ethernet/IPv4 ARP: report the header, with addresses we cannot interpret zeroed.
    return { ok: { htype, ptype, hlen, plen, op, sha: macFromBytes(new Uint8Array(6)), spa: new Uint8Array(4), tha: macFromBytes(new Uint8Array(6)), tpa: new Uint8Array(4) } };
  }
  if (b.length < 28) return { malformed: "truncated ARP addresses" };
  return { ok: { htype, ptype, hlen, plen, op, sha: macFromBytes(b, 8), spa: b.slice(14, 18), tha: macFromBytes(b, 18), tpa: b.slice(24, 28) } };
}

function parsePorts(b: Uint8Array, offset: number, end: number): Ports | undefined {
  return end - offset >= 4 ? { sport: u16(b, offset), dport: u16(b, offset + 2) } : undefined;
}

function parseIpv4(b: Uint8Array): Parsed<Ipv4> {
  if (b.length < 20) return { malformed: "truncated IPv4 header" };
  const version = (b[0] ?? 0) >> 4;
  const ihl = ((b[0] ?? 0) & 0x0f) * 4;
  const total = u16(b, 2);
  if (version !== 4 || ihl < 20 || total < ihl || b.length < total) return { malformed: "inconsistent IPv4 header (version, IHL or total length)" };
  const flags = u16(b, 6);
  const fragmentOffset = (flags & 0x1fff) * 8;
  const moreFragments = (flags & 0x2000) !== 0;
  const protocol = b[9] ?? 0;
  const ports = fragmentOffset === 0 && (protocol === PROTO_UDP || protocol === PROTO_TCP) ? parsePorts(b, ihl, total) : undefined;
  return { ok: { src: b.slice(12, 16), dst: b.slice(16, 20), protocol, fragmentOffset, moreFragments, ...(ports && { ports }) } };
}

function parseIcmpv6(b: Uint8Array, start: number, end: number): Icmpv6 | undefined {
  if (end - start < 4) return undefined;
  const type = b[start] ?? 0;
  const code = b[start + 1] ?? 0;
  // Where options start, per message (RFC 4861 §4): RS 8, RA 16, NS/NA 24, redirect 40.
  const layout: Record<number, { options: number; target?: number }> = {
    133: { options: 8 },
    134: { options: 16 },
    135: { options: 24, target: 8 },
    136: { options: 24, target: 8 },
    137: { options: 40, target: 8 },
  };
  const shape = layout[type];
  if (!shape) return { type, code, options: [], badOptions: false };
  const target = shape.target !== undefined && end - start >= shape.target + 16 ? b.slice(start + shape.target, start + shape.target + 16) : undefined;
  const options: NdOption[] = [];
  let badOptions = end - start < shape.options;
  for (let o = start + shape.options; !badOptions && o < end; ) {
    const length = (b[o + 1] ?? 0) * 8;
    if (length === 0 || o + length > end) {
      badOptions = true;
      break;
    }
    options.push({ type: b[o] ?? 0, offset: o - start, data: b.slice(o + 2, o + length) });
    o += length;
  }
  return { type, code, ...(target && { target }), options, badOptions };
}

function parseIpv6(b: Uint8Array): Parsed<Ipv6> {
  if (b.length < 40) return { malformed: "truncated IPv6 header" };
  if ((b[0] ?? 0) >> 4 !== 6) return { malformed: "IPv6 ethertype with IP version ≠ 6" };
  const end = 40 + u16(b, 4);
  if (b.length < end) return { malformed: "IPv6 payload length runs past the frame" };
  const src = b.slice(8, 24);
  const dst = b.slice(24, 40);
  const hopLimit = b[7] ?? 0;
  const extensions: number[] = [];
  let next = b[6] ?? 0;
  let offset = 40;
  let fragment: Ipv6["fragment"];
  while (IPV6_EXTENSION_HEADERS.includes(next)) {
    const length = next === 44 ? 8 : ((b[offset + 1] ?? 0) + 1) * 8;
    if (offset + (next === 44 ? 8 : 2) > end || offset + length > end) {
      return { ok: { src, dst, hopLimit, extensions, ...(fragment && { fragment }), chainTruncated: true } };
    }
    extensions.push(next);
    if (next === 44) {
      const field = u16(b, offset + 2);
      fragment = { offset: field & 0xfff8, more: (field & 1) === 1 };
      if (fragment.offset !== 0) {
        return { ok: { src, dst, hopLimit, extensions, fragment, chainTruncated: false } };
      }
    }
    next = b[offset] ?? 0;
    offset += length;
  }
  const ports = next === PROTO_UDP || next === PROTO_TCP ? parsePorts(b, offset, end) : undefined;
  const icmpv6 = next === PROTO_ICMPV6 ? parseIcmpv6(b, offset, end) : undefined;
  return { ok: { src, dst, hopLimit, extensions, ...(fragment && { fragment }), upper: next, ...(ports && { ports }), ...(icmpv6 && { icmpv6 }), upperLength: end - offset, chainTruncated: false } };
}
