// IPv4/IPv6 addresses and prefixes: strict parsing (ipaddr.js behind strict checks, since its
// lenient parse accepts "1.2.3" and octal "010.0.0.1"), canonical text, containment. Pure.
import ipaddr from "ipaddr.js";
import { eui64InterfaceId, type Mac } from "./mac.ts";

export type Family = 4 | 6;

/** An address or a network: `bytes` has its host bits zero; `text` is canonical (RFC 5952 for v6). */
export type Prefix = Readonly<{ family: Family; bytes: Uint8Array; length: number; text: string }>;

/** Four decimal parts without leading zeros, each at most 255 (ipaddr.js's own check is ~50× slower). */
const DOTTED_QUAD = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

function dottedQuad(text: string): number[] | undefined {
  const m = DOTTED_QUAD.exec(text);
  if (!m) return undefined;
  const octets = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])];
  return octets.every((o) => o <= 255) ? octets : undefined;
}

function strictAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  const octets = dottedQuad(text);
  if (octets) return new ipaddr.IPv4(octets);
  if (text.includes(":") && !text.includes("%") && ipaddr.IPv6.isValid(text)) {
    // Dotted-quad tails must be strict too ("::ffff:010.1.1.1" is octal to ipaddr.js), and are
    // rewritten as two hex groups: ipaddr.js reads "::10.0.0.1" (IPv4-compatible) as ::ffff:10.0.0.1.
    const colon = text.lastIndexOf(":");
    const tail = text.slice(colon + 1);
    if (!tail.includes(".")) return ipaddr.IPv6.parse(text);
    const quad = dottedQuad(tail);
    if (!quad) return undefined;
    const hex = `${((quad[0]! << 8) | quad[1]!).toString(16)}:${((quad[2]! << 8) | quad[3]!).toString(16)}`;
    const rewritten = text.slice(0, colon + 1) + hex;
    return ipaddr.IPv6.isValid(rewritten) ? ipaddr.IPv6.parse(rewritten) : undefined;
  }
  return undefined;
}

function prefixOf(address: ipaddr.IPv4 | ipaddr.IPv6, length: number): Prefix {
  const family: Family = address.kind() === "ipv4" ? 4 : 6;
  const bytes = Uint8Array.from(address.toByteArray());
  return { family, bytes, length, text: formatPrefix(family, bytes, length) };
}

export function formatAddress(family: Family, bytes: Uint8Array): string {
  return family === 4 ? `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}` : ipaddr.fromByteArray([...bytes]).toString();
}

function formatPrefix(family: Family, bytes: Uint8Array, length: number): string {
  const address = formatAddress(family, bytes);
  return length === (family === 4 ? 32 : 128) ? address : `${address}/${length}`;
}

/** A single address ("10.0.0.1", "2001:db8::1") as a full-length prefix; undefined if malformed. */
export function parseAddress(text: string): Prefix | undefined {
  const address = strictAddress(text);
  return address && prefixOf(address, address.kind() === "ipv4" ? 32 : 128);
}

export type PrefixParse = { ok: true; prefix: Prefix } | { ok: false; expected: string };

/** An address or a CIDR ("10.0.0.0/24"); host bits must be zero, so a typo never widens a grant silently. */
export function parsePrefix(text: string): PrefixParse {
  const slash = text.indexOf("/");
  if (slash < 0) {
    const single = parseAddress(text);
    return single ? { ok: true, prefix: single } : { ok: false, expected: "an IPv4/IPv6 address or CIDR, e.g. 10.0.0.5, 10.0.0.0/24 or 2001:db8::/64" };
  }
  const address = strictAddress(text.slice(0, slash));
  const lengthText = text.slice(slash + 1);
  if (!address || !/^\d{1,3}$/.test(lengthText)) {
    return { ok: false, expected: "an IPv4/IPv6 address or CIDR, e.g. 10.0.0.5, 10.0.0.0/24 or 2001:db8::/64" };
  }
  const max = address.kind() === "ipv4" ? 32 : 128;
  const length = Number(lengthText);
  if (length > max) return { ok: false, expected: `a prefix length from 0 to ${max}` };
  const given = prefixOf(address, length);
  const network = maskBytes(given.bytes, length);
  if (!network.every((b, i) => b === given.bytes[i])) {
    const suggestion = formatPrefix(given.family, network, length);
    return { ok: false, expected: `a network address with the host bits zero (did you mean ${suggestion}?)` };
  }
  return { ok: true, prefix: given };
}

function maskBytes(bytes: Uint8Array, length: number): Uint8Array {
  return bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, length - i * 8));
    return b & ((0xff << (8 - bits)) & 0xff);
  });
}

/** Does `prefix` contain the address `bytes` (same family)? */
export function prefixContains(prefix: Prefix, bytes: Uint8Array): boolean {
  if (bytes.length !== prefix.bytes.length) return false;
  const masked = maskBytes(bytes, prefix.length);
  return masked.every((b, i) => b === prefix.bytes[i]);
}

export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  return a.length <= b.length ? prefixContains(a, b.bytes) : prefixContains(b, a.bytes);
}

/** Why a fixed address cannot be a port's own source address, or undefined if it can. */
export function unusableHostAddress(p: Prefix): string | undefined {
  const range = ipaddr.fromByteArray([...p.bytes]).range();
  const bad: Record<string, string> = {
    unspecified: "not the unspecified address",
    multicast: "not a multicast address",
    broadcast: "not the broadcast address",
    loopback: "not a loopback address",
  };
  return bad[range];
}

/** fe80::/64 + the modified EUI-64 of `mac`: the link-local address SLAAC derives from a MAC. */
export function eui64LinkLocal(mac: Mac): Prefix {
  const bytes = new Uint8Array(16);
  bytes[0] = 0xfe;
  bytes[1] = 0x80;
  bytes.set(eui64InterfaceId(mac), 8);
  return { family: 6, bytes, length: 128, text: formatAddress(6, bytes) };
}

/** Sort order for prefixes: family, then bytes, then length. */
export function comparePrefixes(a: Prefix, b: Prefix): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.bytes.length; i++) {
    const d = (a.bytes[i] ?? 0) - (b.bytes[i] ?? 0);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function fixedPrefix(text: string): Prefix {
  const parsed = parsePrefix(text);
  if (!parsed.ok) throw new Error(`bug: ${text} is not a prefix`);
  return parsed.prefix;
}

/** fe80::/10: IPv6 link-local unicast (RFC 4291 2.5.6). */
export const LINK_LOCAL = fixedPrefix("fe80::/10");

/** IPv4-mapped (::ffff:0:0/96) and IPv4-compatible (::/96, deprecated) IPv6: an IPv4 address in IPv6 clothing. */
export const IPV4_IN_IPV6: readonly Prefix[] = [fixedPrefix("::ffff:0:0/96"), fixedPrefix("::/96")];

/** Ranges that embed IPv4 addresses: the two above, NAT64 (RFC 6052, RFC 8215) and 6to4 (RFC 3056). */
export const IPV4_EMBEDDING: readonly Prefix[] = [...IPV4_IN_IPV6, fixedPrefix("64:ff9b::/96"), fixedPrefix("64:ff9b:1::/48"), fixedPrefix("2002::/16")];

/** Does `outer` contain all of `inner` (same family)? */
export function prefixCovers(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.length <= inner.length && prefixContains(outer, inner.bytes);
}

/** Is `p` inside ::ffff:0:0/96 or ::/96, an IPv4 address (or range) written as IPv6? */
export function isIpv4InIpv6(p: Prefix): boolean {
  return IPV4_IN_IPV6.some((range) => prefixCovers(range, p));
}
