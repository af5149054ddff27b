// Change sets → virsh shell commands, and parsers of what virsh and ebtables print. Pure.
//
// A port's binding cannot be replaced in place (nwfilter-binding-create refuses a device that has
// one), so a changed port is a delete followed at once by a create, in the same virsh session.
import { XMLParser } from "fast-xml-parser";
import type { ChangeSet } from "../contract.ts";
import type { Guard } from "../../policy/guards.ts";
import { chainGuard, deviceOf } from "./compile.ts";

/** One of our bindings as libvirt reports it. */
export type InstalledBinding = Readonly<{ key: string; device: string; filter: string; digest: string }>;

/** Quotes one argument for the virsh shell (it splits on blanks and understands single quotes). */
export function virshQuote(arg: string): string {
  if (arg.includes("'") || arg.includes("\n")) throw new RangeError(`cannot pass ${JSON.stringify(arg)} to virsh`);
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg}'`;
}

/**
 * The virsh commands for a change set: removals first, then per added unit the deletes of its old
 * binding(s) (same key on another device, or another of our keys on its device) followed at once by
 * the create. `fileOf` names the temp file holding a unit's binding XML.
 */
export function renderApply(changes: ChangeSet, installed: readonly InstalledBinding[], fileOf: (key: string) => string): string[] {
  const commands: string[] = [];
  const live = new Map(installed.map((b) => [b.device, b]));
  const drop = (device: string): void => {
    if (!live.has(device)) return;
    live.delete(device);
    commands.push(`nwfilter-binding-delete ${virshQuote(device)}`);
  };
  for (const key of [...changes.remove].sort()) for (const b of installed) if (b.key === key) drop(b.device);
  for (const unit of changes.add) {
    const device = deviceOf(unit);
    if (device === undefined) continue;
    for (const b of installed) if (b.key === unit.key && b.device !== device) drop(b.device);
    const there = live.get(device);
    if (there) drop(there.device);
    commands.push(`nwfilter-binding-create ${virshQuote(fileOf(unit.key))}`);
    live.set(device, { key: unit.key, device, filter: "", digest: unit.digest });
  }
  return commands;
}

/** `virsh nwfilter-binding-list` → [device, filter] rows. */
export function parseBindingList(text: string): Array<[device: string, filter: string]> {
  const rows: Array<[string, string]> = [];
  for (const line of text.split("\n")) {
    const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(line);
    if (!m || line.startsWith("---") || /^\s*Port Dev\s/.test(line) || m[1] === "virsh") continue;
    rows.push([m[1]!, m[2]!]);
  }
  return rows;
}

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@", isArray: (name) => name === "parameter" });

type DumpedBinding = {
  owner?: { name?: unknown; uuid?: unknown };
  portdev?: { "@name"?: string };
  filterref?: { "@filter"?: string; parameter?: Array<{ "@name"?: string; "@value"?: string }> };
};

/** Our bindings among the `<filterbinding>` documents of a batch of `nwfilter-binding-dumpxml`. */
export function parseBindings(text: string, prefix: string): InstalledBinding[] {
  const found: InstalledBinding[] = [];
  for (const m of text.matchAll(/<filterbinding>[\s\S]*?<\/filterbinding>/g)) {
    const doc = (parser.parse(m[0]) as { filterbinding?: DumpedBinding }).filterbinding;
    const owner = String(doc?.owner?.name ?? "");
    const device = doc?.portdev?.["@name"];
    const filter = doc?.filterref?.["@filter"] ?? "";
    if (!owner.startsWith(prefix) || !filter.startsWith(prefix) || !device) continue;
    const digest = doc?.filterref?.parameter?.find((p) => p["@name"] === "VG_DIGEST")?.["@value"] ?? "";
    found.push({ key: owner.slice(prefix.length), device, filter, digest });
  }
  return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** Error lines virsh printed in a batch (it keeps going and exits 0). */
export function virshErrors(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("error:") && !/^error: (Failed to|failed to get)/.test(l));
}

const canonicalParser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: "@", preserveOrder: true });

/** A filter definition without its uuid, attributes sorted: libvirt's dump and ours compare equal. */
export function canonicalFilter(xml: string): string {
  const strip = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.filter((n) => !(n && typeof n === "object" && "uuid" in n) && !(n && typeof n === "object" && "#text" in n)).map(strip);
    if (node && typeof node === "object") {
      const entries = Object.entries(node as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return Object.fromEntries(entries.map(([k, v]) => [k, strip(v)]));
    }
    return node;
  };
  return JSON.stringify(strip(canonicalParser.parse(xml)));
}

/** Splits the output of a batch of `nwfilter-dumpxml` into the filter documents, by name. */
export function parseFilterDumps(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/<filter name='([^']+)'[\s\S]*?<\/filter>/g)) out.set(m[1]!, m[0]);
  return out;
}

/** Names of the devices with libvirt's from-vm root chain in `ebtables -t nat -L PREROUTING`. */
export function instantiatedDevices(prerouting: string): Set<string> {
  const devices = new Set<string>();
  for (const m of prerouting.matchAll(/-j libvirt-I-(\S+)/g)) devices.add(m[1]!);
  return devices;
}

export type ChainCount = Readonly<{ device: string; reason: Guard; packets: number; bytes: number }>;

const SUFFIXES = ["mac", "arp-mac", "rarp", "mac-vgtovm", "ipv4-vgsrc", "ipv4-vgdhcp", "ipv6-vgfrag", "ipv6-vgsrc", "ipv6-vgguard", "arp-vg"];

/** DROP rule counters of `ebtables -t nat -L --Lc`, per device and guard, for the given devices. */
export function parseDropCounters(text: string, devices: readonly string[]): ChainCount[] {
  const chains = new Map<string, { device: string; suffix: string }>();
  for (const device of devices) {
    chains.set(`libvirt-I-${device}`, { device, suffix: "root" });
    for (const s of SUFFIXES) {
      chains.set(`I-${device}-${s}`, { device, suffix: s });
      chains.set(`O-${device}-${s}`, { device, suffix: s });
    }
  }
  const sums = new Map<string, ChainCount>();
  let current: { device: string; suffix: string } | undefined;
  for (const line of text.split("\n")) {
    const head = /^Bridge chain: ([^,]+),/.exec(line);
    if (head) {
      current = chains.get(head[1]!);
      continue;
    }
    const m = /-j DROP\s*,\s*pcnt = (\d+) -- bcnt = (\d+)/.exec(line);
    if (!current || !m) continue;
    const reason = chainGuard(current.suffix, line);
    if (!reason) continue;
    const id = `${current.device}\u0000${reason}`;
    const before = sums.get(id);
    sums.set(id, { device: current.device, reason, packets: (before?.packets ?? 0) + Number(m[1]), bytes: (before?.bytes ?? 0) + Number(m[2]) });
  }
  return [...sums.values()];
}
