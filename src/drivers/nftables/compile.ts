// PlacedPolicy[] → one unit per port: the port's elements in the sets and verdict maps of vifguard's
// nftables table (bridge family). Pure.
//
// The rules live once, in shared chains (render.ts: the skeleton); a port is only data: its device in
// the dispatch set of its level (`iifname @ports_full goto full`, and `oifname` likewise to the VM) and
// `device . MAC . address` elements in concatenated sets. Dispatch uses plain sets, not verdict maps:
// the kernel re-validates every jump target of every verdict-map element (the whole rule tree) on each
// commit, which made 10,000 ports take seconds. So the per-packet cost does not grow with the number of ports (hash
// and pipapo lookups), and adding, changing or removing a port touches only that port's elements.
//
// A unit's key is its device: the dataplane knows ports only by interface name, and every element of
// a port starts with it, which is how observe() finds a port's objects without memory. The port id
// and the digest ride in the comment of the port's dispatch element.
import { createHash } from "node:crypto";
import type { Unit, UnitMap } from "../contract.ts";
import { formatAddress, type Prefix } from "../../model/ip.ts";
import type { Mac } from "../../model/mac.ts";
import type { PlacedPolicy } from "../../policy/port-policy.ts";

/** Where vifguard's objects live: one bridge-family table named after the prefix. */
export type NftLayout = Readonly<{ table: string }>;

export const DEFAULT_PREFIX = "vifguard";

/** The table of a prefix; prefixes are identifiers (letters, digits, '_', '-'), at most 32 characters. */
export function layoutFor(prefix = DEFAULT_PREFIX): NftLayout {
  if (!/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(prefix)) {
    throw new RangeError(`nftables prefix "${prefix}": expected a letter, then up to 31 letters, digits, '_' or '-'`);
  }
  return { table: prefix };
}

/** The sets and maps that hold per-port elements, in the order a unit lists them. */
export const ELEMENT_SETS = ["ports_full", "ports_mac", "ports_off", "macs", "mac_pair", "v4", "v4net", "v6", "v6net", "nd_target", "nd_target_net"] as const;
export type ElementSet = (typeof ELEMENT_SETS)[number];

/** One element: `key` is canonical nft text starting with the quoted device. */
export type Element = Readonly<{ set: ElementSet; key: string }>;

/** The set a port's level puts its device in; that element carries the owner comment. */
export const DISPATCH_SETS: readonly ElementSet[] = ["ports_full", "ports_mac", "ports_off"];
export const isDispatch = (set: ElementSet): boolean => DISPATCH_SETS.includes(set);

/** Everything one port owns in the table. */
export type PortElements = Readonly<{ device: string; port: string; elements: readonly Element[] }>;

const quote = (device: string): string => `"${device}"`;
const hex = (bytes: Uint8Array): string => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");

/** The MAC as the 48-bit integer a raw payload (`@nh,64,48`, `@th,208,48`) reads. */
export function macInteger(mac: Mac): string {
  return `0x${mac.replaceAll(":", "")}`;
}

/** The first and last address of a prefix as 128-bit integers (`@th,64,128`, the ND target). */
export function prefixRange(prefix: Prefix): { first: string; last: string } {
  const last = prefix.bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix.length - i * 8));
    return b | (0xff >> bits);
  });
  return { first: `0x${hex(prefix.bytes)}`, last: `0x${hex(last)}` };
}

const isHost = (p: Prefix): boolean => p.length === (p.family === 4 ? 32 : 128);

function contains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.length > inner.length) return false;
  for (let i = 0; i < outer.bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, outer.length - i * 8));
    const mask = (0xff << (8 - bits)) & 0xff;
    if (((inner.bytes[i] ?? 0) & mask) !== (outer.bytes[i] ?? 0)) return false;
  }
  return true;
}

/**
 * Interval sets refuse overlapping elements (nft: "File exists"), so per MAC keep only the prefixes no
 * other prefix of that MAC contains; the union is the same.
 */
function outermost(prefixes: readonly Prefix[]): Prefix[] {
  const sorted = [...prefixes].sort((a, b) => a.length - b.length);
  const kept: Prefix[] = [];
  for (const p of sorted) if (!kept.some((k) => contains(k, p))) kept.push(p);
  return kept;
}

const prefixText = (p: Prefix): string => `${formatAddress(p.family, p.bytes)}/${p.length}`;

/** A port's elements at its level; sorted, so equal policies give equal text. */
export function portElements(policy: PlacedPolicy): PortElements {
  const d = quote(policy.device);
  const elements: Element[] = [{ set: `ports_${policy.level}`, key: d }];
  if (policy.level !== "off") {
    for (const mac of policy.macs) {
      elements.push({ set: "macs", key: `${d} . ${mac}` });
      elements.push({ set: "mac_pair", key: `${d} . ${mac} . ${macInteger(mac)}` });
    }
  }
  if (policy.level === "full") {
    for (const mac of policy.macs) {
      const mine = policy.bindings.filter((b) => b.mac === mac).map((b) => b.prefix);
      for (const p of mine.filter(isHost)) {
        if (p.family === 4) elements.push({ set: "v4", key: `${d} . ${mac} . ${p.text}` });
        else {
          elements.push({ set: "v6", key: `${d} . ${mac} . ${p.text}` });
          elements.push({ set: "nd_target", key: `${d} . ${mac} . ${prefixRange(p).first}` });
        }
      }
      for (const p of outermost(mine.filter((p) => !isHost(p)))) {
        if (p.family === 4) elements.push({ set: "v4net", key: `${d} . ${mac} . ${prefixText(p)}` });
        else {
          const { first, last } = prefixRange(p);
          elements.push({ set: "v6net", key: `${d} . ${mac} . ${prefixText(p)}` });
          elements.push({ set: "nd_target_net", key: `${d} . ${mac} . ${first}-${last}` });
        }
      }
    }
  }
  return { device: policy.device, port: policy.port, elements: sortElements(elements) };
}

export function sortElements(elements: readonly Element[]): Element[] {
  const order = (s: ElementSet): number => ELEMENT_SETS.indexOf(s);
  return [...elements].sort((a, b) => order(a.set) - order(b.set) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/**
 * Identifies a port's content: the skeleton version (a new rule layout re-applies every port), the
 * device, the port id and every element. observe() recomputes it from what is installed.
 */
export function digestOf(skeletonVersion: string, ports: PortElements): string {
  const hash = createHash("sha256").update(`${skeletonVersion}\n${ports.device}\n${ports.port}\n`);
  for (const e of ports.elements) hash.update(`${e.set} ${e.key}\n`);
  return hash.digest("hex").slice(0, 16);
}

/** The dispatch element's comment: "<port> <digest>"; port ids and digests need no escaping (validated: [A-Za-z0-9_.-]). */
export function ownerComment(port: string, digest: string): string {
  return `${port} ${digest}`;
}

export function parseOwnerComment(comment: string | undefined): { port: string; digest: string } | undefined {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]*) ([0-9a-f]{16})$/.exec(comment ?? "");
  return m ? { port: m[1]!, digest: m[2]! } : undefined;
}

/** One element as nft text: `KEY [comment "C"]`. */
export function elementText(e: Element, comment?: string): string {
  return `${e.key}${comment === undefined ? "" : ` comment "${comment}"`}`;
}

/** A unit's text: one `add element` line per element (the owner comment on the dispatch element). */
export function unitText(layout: NftLayout, ports: PortElements, digest: string): string {
  return ports.elements
    .map((e) => `add element bridge ${layout.table} ${e.set} { ${elementText(e, isDispatch(e.set) ? ownerComment(ports.port, digest) : undefined)} }`)
    .join("\n") + "\n";
}

const UNIT_LINE = /^add element bridge \S+ (\S+) \{ (.*?)(?: comment "[^"]*")? \}$/;

/** The elements of a unit's text (inverse of unitText; the comment is recomputed from port and digest). */
export function parseUnitText(text: string): Element[] {
  const elements: Element[] = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const m = UNIT_LINE.exec(line);
    if (!m || !(ELEMENT_SETS as readonly string[]).includes(m[1]!)) throw new Error(`bug: not a unit line of the nftables driver: ${line}`);
    elements.push({ set: m[1] as ElementSet, key: m[2]! });
  }
  return elements;
}

/** Compiles every policy into one unit per port, keyed by device, sorted by device. */
export function compileNftables(policies: readonly PlacedPolicy[], layout: NftLayout, skeletonVersion: string): UnitMap {
  const units = new Map<string, Unit>();
  for (const p of [...policies].sort((a, b) => (a.device < b.device ? -1 : a.device > b.device ? 1 : 0))) {
    const ports = portElements(p);
    const digest = digestOf(skeletonVersion, ports);
    units.set(p.device, { key: p.device, port: p.port, digest, text: unitText(layout, ports, digest) });
  }
  return units;
}

// --- Fail closed -------------------------------------------------------------------------------

const PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}\*?$/;

/** Digest of the fail-closed unit from its patterns (sorted, deduplicated). */
export function failClosedDigest(skeletonVersion: string, patterns: readonly string[]): string {
  return createHash("sha256").update(`${skeletonVersion}\nfail-closed\n${[...patterns].sort().join("\n")}`).digest("hex").slice(0, 16);
}

export const FAIL_CLOSED_COMMENT = "vifguard fail-closed";

/**
 * The fail-closed unit: rules in the skeleton's fail_closed_in/out chains that drop every frame from
 * and to a device matching a pattern. The hook chains jump there after the dispatch maps, so a device
 * in a dispatch set (any level, accepted at off) never reaches them.
 */
export function compileFailClosed(devices: readonly string[], layout: NftLayout, skeletonVersion: string, key: string): Unit {
  const patterns = [...new Set(devices)].sort();
  for (const p of patterns) if (!PATTERN.test(p)) throw new RangeError(`fail-closed device pattern "${p}": expected an interface name, optionally ending in '*'`);
  const digest = failClosedDigest(skeletonVersion, patterns);
  const lines: string[] = [];
  for (const p of patterns) {
    lines.push(`add rule bridge ${layout.table} fail_closed_in iifname "${p}" counter drop comment "${FAIL_CLOSED_COMMENT} ${p}"`);
    lines.push(`add rule bridge ${layout.table} fail_closed_out oifname "${p}" counter drop comment "${FAIL_CLOSED_COMMENT} ${p}"`);
  }
  return { key, port: key, digest, text: lines.join("\n") + (lines.length ? "\n" : "") };
}

/** The patterns of a fail-closed unit's text. */
export function parseFailClosedText(text: string): string[] {
  return [...new Set([...text.matchAll(/ iifname "([^"]+)" /g)].map((m) => m[1]!))].sort();
}
