// Change sets → virsh shell commands, and parsers of what virsh and ebtables print. Pure.
//
// A changed port whose binding already references its own filter is one nwfilter-define (libvirt
// swaps the chains in place). A binding cannot be replaced (nwfilter-binding-create refuses a device
// that has one): a port that moved to another device, or whose device had another binding, gets a
// delete followed at once by a create, in the same virsh session.
import { XMLParser } from "fast-xml-parser";
import type { ChangeSet } from "../contract.ts";
import type { Guard } from "../../policy/guards.ts";
import { chainGuard, deviceOf, portFilterName } from "./compile.ts";

/**
 * One of our bindings as libvirt reports it: `filter` is the port's filter, `top` the shared filter
 * that one references; `instantiated` false when libvirt holds the binding but made no rules (its
 * device was missing when it was created: libvirt does not watch for the device).
 */
export type InstalledAttachment = Readonly<{ key: string; device: string; filter: string; digest: string; top?: string; instantiated?: boolean }>;

/** Quotes one argument for the virsh shell (it splits on blanks and understands single quotes). */
export function virshQuote(arg: string): string {
  if (arg.includes("'") || arg.includes("\n")) throw new RangeError(`cannot pass ${JSON.stringify(arg)} to virsh`);
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg}'`;
}

/** Which of a unit's two temp files: its port filter or its binding. */
export type UnitFile = "filter" | "binding";

/**
 * The virsh commands for a change set. Removals first (binding, then the port's filter). Then per
 * added unit: its filter is (re)defined; if its device already has a binding to that filter, that is
 * all; otherwise the binding(s) in the way (same key on another device, another binding on its
 * device) are deleted right before the create. `fileOf` names the temp file of a unit's document.
 */
export function renderApply(changes: ChangeSet, installed: readonly InstalledAttachment[], prefix: string, fileOf: (key: string, file: UnitFile) => string): string[] {
  const commands: string[] = [];
  const live = new Map(installed.map((b) => [b.device, b]));
  const drop = (device: string): void => {
    if (!live.has(device)) return;
    live.delete(device);
    commands.push(`nwfilter-binding-delete ${virshQuote(device)}`);
  };
  for (const key of [...changes.remove].sort()) {
    for (const b of installed) if (b.key === key) drop(b.device);
    commands.push(`nwfilter-undefine ${virshQuote(portFilterName(key, prefix))}`);
  }
  for (const unit of changes.add) {
    const device = deviceOf(unit);
    if (device === undefined) continue;
    for (const b of installed) if (b.key === unit.key && b.device !== device) drop(b.device);
    const there = live.get(device);
    const inPlace = there !== undefined && there.key === unit.key && there.filter === portFilterName(unit.key, prefix) && there.instantiated !== false;
    commands.push(`nwfilter-define ${virshQuote(fileOf(unit.key, "filter"))}`);
    if (inPlace) continue;
    if (there) drop(there.device);
    commands.push(`nwfilter-binding-create ${virshQuote(fileOf(unit.key, "binding"))}`);
    live.set(device, { key: unit.key, device, filter: portFilterName(unit.key, prefix), digest: unit.digest });
  }
  return commands;
}

/** `virsh nwfilter-binding-list` → [device, filter] rows. */
export function parseAttachmentList(text: string): Array<[device: string, filter: string]> {
  const rows: Array<[string, string]> = [];
  for (const line of text.split("\n")) {
    const m = /^\s*(\S+)\s+(\S+)\s*$/.exec(line);
    if (!m || line.startsWith("---") || /^\s*Port Dev\s/.test(line) || m[1] === "virsh") continue;
    rows.push([m[1]!, m[2]!]);
  }
  return rows;
}

/** Our bindings among `nwfilter-binding-list` rows: those whose filter is one of our port filters. */
export function ourAttachments(rows: ReadonlyArray<readonly [device: string, filter: string]>, prefix: string): Array<{ key: string; device: string; filter: string }> {
  const head = portFilterName("", prefix);
  return rows
    .filter(([, filter]) => filter.startsWith(head) && filter.length > head.length)
    .map(([device, filter]) => ({ key: filter.slice(head.length), device, filter }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.device < b.device ? -1 : 1));
}

/** Each port filter in a batch of `nwfilter-dumpxml`, by name: its VG_DIGEST and the filter it references. */
export function parsePortFilters(text: string): Map<string, { digest: string; top: string }> {
  const out = new Map<string, { digest: string; top: string }>();
  for (const [name, xml] of parseFilterDumps(text)) {
    const digest = /<parameter name='VG_DIGEST' value='([^']*)'\/>/.exec(xml)?.[1] ?? "";
    const top = /<filterref filter='([^']*)'/.exec(xml)?.[1] ?? "";
    out.set(name, { digest, top });
  }
  return out;
}

/** Filter names in `virsh nwfilter-list` (rows of uuid and name). */
export function parseFilterNames(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*[0-9a-f]{8}-[0-9a-f-]{27}\s+(\S+)\s*$/.exec(line);
    if (m) names.push(m[1]!);
  }
  return names;
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
