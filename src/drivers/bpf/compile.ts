// Port policies → the BPF maps' entries (vifguard.bpf.c), one unit per port. Pure and deterministic.
// A unit's text is its map entries, one per line: `<map> <key hex> <value hex>`, sorted; observe()
// rebuilds the same lines from the maps, so a digest names what the kernel holds, not what we meant.
// Keys start with the tap's ifindex (host byte order: little-endian, as on every host vifguard runs
// on), so a port whose device is absent waits for it (awaitingDevice).
import { createHash } from "node:crypto";
import { FAIL_CLOSED_KEY, type Device, type Unit, type UnitMap } from "../contract.ts";
import type { Level } from "../../model/types.ts";
import { macToBytes, type Mac } from "../../model/mac.ts";
import type { PlacedPolicy } from "../../policy/port-policy.ts";

export const MAP_NAMES = ["vg_ports", "vg_macs", "vg_bind4", "vg_bind6", "vg_lpm4", "vg_lpm6", "vg_failclosed"] as const;
export type MapName = (typeof MAP_NAMES)[number];
/** The drop counters: not part of any unit. */
export const COUNTS_MAP = "vg_counts";

export const LEVEL_CODE: Readonly<Record<Level, number>> = { off: 0, mac: 1, full: 2 };
const FLAG_V4_PREFIXES = 1;
const FLAG_V6_PREFIXES = 2;
/** struct port's id field: a longer port id cannot be stored. */
export const PORT_ID_BYTES = 252;
const PATTERN_BYTES = 16;
/** An interface name, or a prefix ending in '*' (IFNAMSIZ: 15 characters and the '*'). */
const PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}\*?$/;

export type Entry = Readonly<{ map: MapName; key: string; value: string }>;

const hex = (bytes: Uint8Array | readonly number[]): string => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
export const le32 = (n: number): string => hex([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
const readLe32 = (h: string, at: number): number => parseInt(h.slice(at + 6, at + 8) + h.slice(at + 4, at + 6) + h.slice(at + 2, at + 4) + h.slice(at, at + 2), 16);

export function entryLine(e: Entry): string {
  return `${e.map} ${e.key} ${e.value}`;
}

export function parseEntryLine(line: string): Entry {
  const [map, key, value] = line.split(" ");
  if (!map || !key || value === undefined || !(MAP_NAMES as readonly string[]).includes(map)) throw new RangeError(`not a BPF map entry: "${line}"`);
  return { map: map as MapName, key, value };
}

/** The ifindex an entry belongs to (LPM keys start with the prefix length), or undefined (fail-closed patterns). */
export function ownerOf(e: Pick<Entry, "map" | "key">): number | undefined {
  if (e.map === "vg_failclosed") return undefined;
  return readLe32(e.key, e.map === "vg_lpm4" || e.map === "vg_lpm6" ? 8 : 0);
}

export function digestOf(lines: readonly string[]): string {
  return createHash("sha256").update(lines.join("\n")).digest("hex").slice(0, 16);
}

/** A unit from its entry lines (sorted here). */
export function unitOf(key: string, port: string, lines: readonly string[]): Unit {
  const sorted = [...lines].sort();
  return { key, port, digest: digestOf(sorted), text: sorted.length ? sorted.join("\n") + "\n" : "" };
}

/** struct port: level, flags, two bytes of padding, the id zero-padded. */
export function portValue(level: Level, flags: number, id: string): string {
  const idBytes = new TextEncoder().encode(id);
  if (idBytes.length >= PORT_ID_BYTES) throw new RangeError(`port id "${id.slice(0, 40)}…": the bpf driver stores ids of at most ${PORT_ID_BYTES - 1} bytes`);
  const value = new Uint8Array(4 + PORT_ID_BYTES);
  value[0] = LEVEL_CODE[level];
  value[1] = flags;
  value.set(idBytes, 4);
  return hex(value);
}

/** The id in a vg_ports value. */
export function portIdOf(value: string): string {
  const bytes = Buffer.from(value.slice(8), "hex");
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString("utf8");
}

const macKey = (ifindex: number, mac: Mac): string => `${le32(ifindex)}${hex(macToBytes(mac))}0000`;

/** The entries of one port on the device with `ifindex`. */
export function portEntries(policy: PlacedPolicy, ifindex: number): Entry[] {
  const entries: Entry[] = [];
  let flags = 0;
  if (policy.level !== "off") {
    for (const b of policy.bindings) {
      const full = b.prefix.family === 4 ? 32 : 128;
      const v = b.prefix.family === 4 ? "4" : "6";
      if (b.prefix.length === full) {
        entries.push({ map: `vg_bind${v}`, key: `${macKey(ifindex, b.mac)}${hex(b.prefix.bytes)}`, value: "01" });
      } else {
        flags |= b.prefix.family === 4 ? FLAG_V4_PREFIXES : FLAG_V6_PREFIXES;
        entries.push({ map: `vg_lpm${v}`, key: `${le32(64 + b.prefix.length)}${macKey(ifindex, b.mac)}${hex(b.prefix.bytes)}`, value: "01" });
      }
    }
  }
  // struct mac_value: the level and flags, so the program's fast path needs no vg_ports lookup.
  if (policy.level !== "off") for (const mac of policy.macs) entries.push({ map: "vg_macs", key: macKey(ifindex, mac), value: hex([LEVEL_CODE[policy.level], flags]) });
  entries.push({ map: "vg_ports", key: le32(ifindex), value: portValue(policy.level, flags, policy.port) });
  return entries;
}

/** One unit per port; a port whose device (by name) has no ifindex here awaits it. */
export function compileBpf(policies: readonly PlacedPolicy[], devices: readonly Device[]): UnitMap {
  const ifindexOf = new Map(devices.flatMap((d) => (d.ifindex !== undefined ? [[d.name, d.ifindex] as const] : [])));
  const units = new Map<string, Unit>();
  for (const policy of policies) {
    const ifindex = ifindexOf.get(policy.device);
    if (ifindex === undefined) {
      units.set(policy.port, { key: policy.port, port: policy.port, digest: "", text: "", awaitingDevice: true });
      continue;
    }
    units.set(policy.port, unitOf(policy.port, policy.port, portEntries(policy, ifindex).map(entryLine)));
  }
  return units;
}

/** The fail-closed unit: its device patterns as vg_failclosed keys (the name, zero-padded to 16 bytes). */
export function compileFailClosed(devices: readonly string[], key: string): Unit {
  const patterns = [...new Set(devices)].sort();
  for (const p of patterns) if (!PATTERN.test(p)) throw new RangeError(`fail-closed device pattern "${p}": expected an interface name, optionally ending in '*'`);
  return unitOf(key, key, patterns.map((p) => entryLine({ map: "vg_failclosed", key: patternKey(p), value: "01" })));
}

export function patternKey(pattern: string): string {
  const bytes = new Uint8Array(PATTERN_BYTES);
  bytes.set(new TextEncoder().encode(pattern));
  return hex(bytes);
}

export function patternOf(key: string): string {
  const bytes = Buffer.from(key, "hex");
  const end = bytes.indexOf(0);
  return bytes.subarray(0, end < 0 ? bytes.length : end).toString("utf8");
}

/** Does a device name match a fail-closed pattern ("vnet*" or an exact name)? */
export function matchesPattern(name: string, pattern: string): boolean {
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

/** The digest of a unit whose entries are right but whose device lacks the programs: drift, re-applied. */
export const DETACHED = "detached";

/** The maps' contents as bpftool dumps them: map name → key hex → value hex. */
export type MapContents = ReadonlyMap<string, ReadonlyMap<string, string>>;

/**
 * The units the maps hold, rebuilt line by line as compile() writes them (so equal entries give the
 * compiled digest). `isAttached(ifindex)`: are both programs on that device? A port whose device lacks
 * them, or a fail-closed pattern matching such a device, gets the digest DETACHED (drift, re-applied).
 */
export function observedUnits(maps: MapContents, isAttached: (ifindex: number) => boolean, devices: readonly Device[]): Map<string, Unit> {
  const lines = new Map<number, string[]>();
  for (const name of MAP_NAMES) {
    if (name === "vg_failclosed") continue;
    for (const [key, value] of maps.get(name) ?? []) {
      const owner = ownerOf({ map: name, key })!;
      const list = lines.get(owner);
      if (list) list.push(entryLine({ map: name, key, value }));
      else lines.set(owner, [entryLine({ map: name, key, value })]);
    }
  }
  const units = new Map<string, Unit>();
  for (const [key, value] of maps.get("vg_ports") ?? []) {
    const ifindex = ownerOf({ map: "vg_ports", key })!;
    const id = portIdOf(value);
    const unit = unitOf(id, id, lines.get(ifindex) ?? []);
    units.set(id, isAttached(ifindex) ? unit : { ...unit, digest: DETACHED });
  }
  const failClosed = [...(maps.get("vg_failclosed") ?? [])];
  if (failClosed.length > 0) {
    const unit = unitOf(FAIL_CLOSED_KEY, FAIL_CLOSED_KEY, failClosed.map(([key, value]) => entryLine({ map: "vg_failclosed", key, value })));
    const patterns = failClosed.map(([key]) => patternOf(key));
    const missing = devices.some((d) => d.ifindex !== undefined && patterns.some((p) => matchesPattern(d.name, p)) && !isAttached(d.ifindex));
    units.set(FAIL_CLOSED_KEY, missing ? { ...unit, digest: DETACHED } : unit);
  }
  return units;
}

const macText = (h: string): string => (h.match(/../g) ?? []).join(":");
function addressText(h: string): string {
  const bytes = (h.match(/../g) ?? []).map((x) => parseInt(x, 16));
  if (bytes.length === 4) return bytes.join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

/** One entry in words (golden files, debugging): which device, MAC, address or prefix, level. */
export function describeEntry(e: Entry): string {
  const levels = Object.keys(LEVEL_CODE) as Level[];
  switch (e.map) {
    case "vg_ports": {
      const flags = parseInt(e.value.slice(2, 4), 16);
      return `port ${portIdOf(e.value)} on ifindex ${ownerOf(e)}: level ${levels[parseInt(e.value.slice(0, 2), 16)]}${flags ? `, flags ${flags}` : ""}`;
    }
    case "vg_macs":
      return `ifindex ${ownerOf(e)} may use MAC ${macText(e.key.slice(8, 20))} (level ${levels[parseInt(e.value.slice(0, 2), 16)]}, flags ${parseInt(e.value.slice(2, 4), 16)})`;
    case "vg_bind4":
    case "vg_bind6":
      return `ifindex ${ownerOf(e)}: ${macText(e.key.slice(8, 20))} may use ${addressText(e.key.slice(24))}`;
    case "vg_lpm4":
    case "vg_lpm6":
      return `ifindex ${ownerOf(e)}: ${macText(e.key.slice(16, 28))} may use ${addressText(e.key.slice(32))}/${readLe32(e.key, 0) - 64}`;
    case "vg_failclosed":
      return `fail closed: ${patternOf(e.key)}`;
  }
}
