// Builds real Ethernet frames as bytes, with correct lengths and checksums, for the evaluator's
// tests and the conformance kit (which sends the very same bytes on a wire). Pure.
import { parseAddress } from "../model/ip.ts";
import { macToBytes, parseMac } from "../model/mac.ts";

export type Bytes = Uint8Array;

const concat = (...parts: readonly Bytes[]): Bytes => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
const be16 = (n: number): Bytes => Uint8Array.from([(n >> 8) & 0xff, n & 0xff]);
const be32 = (n: number): Bytes => Uint8Array.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

export function mac(text: string): Bytes {
  const parsed = parseMac(text);
  if (!parsed) throw new Error(`frame builder: bad MAC ${text}`);
  return macToBytes(parsed);
}

export function ip(text: string): Bytes {
  const parsed = parseAddress(text);
  if (!parsed) throw new Error(`frame builder: bad address ${text}`);
  return parsed.bytes;
}

/** The Internet checksum (RFC 1071) over the given parts. */
export function checksum(...parts: readonly Bytes[]): number {
  const data = concat(...parts);
  let sum = 0;
  for (let i = 0; i < data.length; i += 2) sum += ((data[i] ?? 0) << 8) | (data[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

// ---- Layer 2 ----

/** An Ethernet II frame. */
export function ether(dst: string, src: string, type: number, payload: Bytes): Bytes {
  return concat(mac(dst), mac(src), be16(type), payload);
}

/** Inserts a VLAN tag (TPID 0x8100 by default) right after the MAC addresses; call twice for QinQ. */
export function tag(frame: Bytes, vid: number, tpid = 0x8100): Bytes {
  return concat(frame.subarray(0, 12), be16(tpid), be16(vid & 0x0fff), frame.subarray(12));
}

/** An 802.3 frame with LLC/SNAP carrying `type` (e.g. IPv4) inside. */
export function llcSnap(dst: string, src: string, type: number, payload: Bytes): Bytes {
  const body = concat(Uint8Array.from([0xaa, 0xaa, 0x03, 0, 0, 0]), be16(type), payload);
  return concat(mac(dst), mac(src), be16(body.length), body);
}

export type ArpFields = { op?: number; sha: string; spa: string; tha?: string; tpa: string; htype?: number; ptype?: number };

export function arp(f: ArpFields): Bytes {
  return concat(
    be16(f.htype ?? 1),
    be16(f.ptype ?? 0x0800),
    Uint8Array.from([6, 4]),
    be16(f.op ?? 1),
    mac(f.sha),
    ip(f.spa),
    mac(f.tha ?? "00:00:00:00:00:00"),
    ip(f.tpa),
  );
}

// ---- IPv4 ----

export type Ipv4Fields = { src: string; dst: string; protocol: number; payload: Bytes; ttl?: number; id?: number; fragmentOffset?: number; moreFragments?: boolean };

export function ipv4(f: Ipv4Fields): Bytes {
  const flags = ((f.moreFragments ? 0x2000 : 0) | ((f.fragmentOffset ?? 0) / 8)) & 0xffff;
  const header = concat(
    Uint8Array.from([0x45, 0]),
    be16(20 + f.payload.length),
    be16(f.id ?? 1),
    be16(flags),
    Uint8Array.from([f.ttl ?? 64, f.protocol]),
    be16(0),
    ip(f.src),
    ip(f.dst),
  );
  header.set(be16(checksum(header)), 10);
  return concat(header, f.payload);
}

export function udp4(src: string, dst: string, sport: number, dport: number, data: Bytes): Bytes {
  const length = 8 + data.length;
  const segment = concat(be16(sport), be16(dport), be16(length), be16(0), data);
  const sum = checksum(ip(src), ip(dst), Uint8Array.from([0, 17]), be16(length), segment) || 0xffff;
  segment.set(be16(sum), 6);
  return ipv4({ src, dst, protocol: 17, payload: segment });
}

export function icmp4Echo(src: string, dst: string, data: Bytes = new Uint8Array(8)): Bytes {
  const message = concat(Uint8Array.from([8, 0, 0, 0]), be32(0x00010001), data);
  message.set(be16(checksum(message)), 2);
  return ipv4({ src, dst, protocol: 1, payload: message });
}

/** A minimal DHCP message (BOOTP header + magic cookie + message type + end). */
export function dhcp(op: 1 | 2, messageType: number, clientMac: string, yiaddr = "0.0.0.0"): Bytes {
  const bootp = new Uint8Array(236);
  bootp[0] = op;
  bootp[1] = 1;
  bootp[2] = 6;
  bootp.set(be32(0x1234abcd), 4);
  bootp.set(ip(yiaddr), 16);
  bootp.set(mac(clientMac), 28);
  return concat(bootp, Uint8Array.from([99, 130, 83, 99, 53, 1, messageType, 255]));
}

// ---- IPv6 ----

/** One extension header to put in front of the upper layer. */
export type Extension =
  | { kind: "hop-by-hop" | "destination"; padBytes?: number }
  | { kind: "routing" }
  | { kind: "fragment"; offset: number; more: boolean; id?: number };

const EXTENSION_NUMBERS = { "hop-by-hop": 0, routing: 43, fragment: 44, destination: 60 } as const;

function extensionBytes(e: Extension, next: number): Bytes {
  switch (e.kind) {
    case "fragment":
      return concat(Uint8Array.from([next, 0]), be16((e.offset & 0xfff8) | (e.more ? 1 : 0)), be32(e.id ?? 0x5151));
    case "routing":
      // Type 0 routing header with segments left 0 and no addresses: skipped by receivers, still walked.
      return concat(Uint8Array.from([next, 0, 0, 0]), be32(0));
    default: {
      // PadN option filling the header to a multiple of 8 bytes (minimum 8).
      const total = Math.max(8, Math.ceil((2 + 2 + (e.padBytes ?? 4)) / 8) * 8);
      const padLength = total - 4;
      return concat(Uint8Array.from([next, total / 8 - 1, 1, padLength]), new Uint8Array(padLength));
    }
  }
}

export type Ipv6Fields = { src: string; dst: string; next: number; payload: Bytes; hopLimit?: number; extensions?: readonly Extension[] };

export function ipv6(f: Ipv6Fields): Bytes {
  const extensions = f.extensions ?? [];
  let body = f.payload;
  let next = f.next;
  for (let i = extensions.length - 1; i >= 0; i--) {
    const e = extensions[i]!;
    body = concat(extensionBytes(e, next), body);
    next = EXTENSION_NUMBERS[e.kind];
  }
  return concat(Uint8Array.from([0x60, 0, 0, 0]), be16(body.length), Uint8Array.from([next, f.hopLimit ?? 64]), ip(f.src), ip(f.dst), body);
}

function pseudo6(src: string, dst: string, length: number, next: number): Bytes {
  return concat(ip(src), ip(dst), be32(length), Uint8Array.from([0, 0, 0, next]));
}

export function udp6(src: string, dst: string, sport: number, dport: number, data: Bytes, extensions?: readonly Extension[]): Bytes {
  const length = 8 + data.length;
  const segment = concat(be16(sport), be16(dport), be16(length), be16(0), data);
  segment.set(be16(checksum(pseudo6(src, dst, length, 17), segment) || 0xffff), 6);
  return ipv6({ src, dst, next: 17, payload: segment, ...(extensions && { extensions }) });
}

export type Icmpv6Fields = { src: string; dst: string; type: number; code?: number; body: Bytes; hopLimit?: number; extensions?: readonly Extension[] };

export function icmpv6(f: Icmpv6Fields): Bytes {
  const message = concat(Uint8Array.from([f.type, f.code ?? 0, 0, 0]), f.body);
  message.set(be16(checksum(pseudo6(f.src, f.dst, message.length, 58), message)), 2);
  return ipv6({ src: f.src, dst: f.dst, next: 58, payload: message, hopLimit: f.hopLimit ?? 255, ...(f.extensions && { extensions: f.extensions }) });
}

/** A source (1) or target (2) link-layer address option, or any other option type with raw data. */
export function ndOption(type: number, data: Bytes | string): Bytes {
  const value = typeof data === "string" ? mac(data) : data;
  const length = Math.ceil((2 + value.length) / 8) * 8;
  const out = new Uint8Array(length);
  out[0] = type;
  out[1] = length / 8;
  out.set(value, 2);
  return out;
}

export const sll = (address: string): Bytes => ndOption(1, address);
export const tll = (address: string): Bytes => ndOption(2, address);
/** RFC 7527 nonce option, as Linux puts in DAD solicitations. */
export const nonce = (): Bytes => ndOption(14, Uint8Array.from([1, 2, 3, 4, 5, 6]));

export type NdCommon = { src: string; dst: string; options?: readonly Bytes[]; extensions?: readonly Extension[] };

export function neighborSolicitation(f: NdCommon & { target: string }): Bytes {
  return icmpv6({ ...f, type: 135, body: concat(new Uint8Array(4), ip(f.target), ...(f.options ?? [])) });
}

export function neighborAdvertisement(f: NdCommon & { target: string; flags?: number }): Bytes {
  return icmpv6({ ...f, type: 136, body: concat(be32((f.flags ?? 0x20) << 24), ip(f.target), ...(f.options ?? [])) });
}

export function routerSolicitation(f: NdCommon): Bytes {
  return icmpv6({ ...f, type: 133, body: concat(new Uint8Array(4), ...(f.options ?? [])) });
}

export function routerAdvertisement(f: NdCommon): Bytes {
  // hop limit 64, no flags, router lifetime 1800 s, reachable and retrans timers 0
  return icmpv6({ ...f, type: 134, body: concat(Uint8Array.from([64, 0]), be16(1800), be32(0), be32(0), ...(f.options ?? [])) });
}

export function redirect(f: NdCommon & { target: string; destination: string }): Bytes {
  return icmpv6({ ...f, type: 137, body: concat(new Uint8Array(4), ip(f.target), ip(f.destination), ...(f.options ?? [])) });
}

/** MLDv2 report (143) with no records, behind the hop-by-hop router alert it always carries. */
export function mldv2Report(src: string): Bytes {
  return icmpv6({ src, dst: "ff02::16", type: 143, body: concat(be16(0), be16(0)), hopLimit: 1, extensions: [{ kind: "hop-by-hop" }] });
}

export function icmp6Echo(src: string, dst: string, f: { extensions?: readonly Extension[] } = {}): Bytes {
  return icmpv6({ src, dst, type: 128, body: concat(be32(0x00010001), new Uint8Array(8)), hopLimit: 64, ...(f.extensions && { extensions: f.extensions }) });
}

/** The solicited-node multicast group of an IPv6 address, and its MAC. */
export function solicitedNode(address: string): { ip: string; mac: string } {
  const b = ip(address);
  const tail = [...b.subarray(13)].map((x) => x.toString(16).padStart(2, "0"));
  return { ip: `ff02::1:ff${tail[0]}:${tail[1]}${tail[2]}`, mac: `33:33:ff:${tail.join(":")}` };
}

/** Appends opaque trailing bytes (a marker the conformance kit finds again); parsers ignore them. */
export function withTrailer(frame: Bytes, trailer: Bytes): Bytes {
  return concat(frame, trailer);
}
