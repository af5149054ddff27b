// `nft -j list table bridge <prefix>` → what vifguard has installed: the skeleton's state, each
// port's elements (grouped by the device every element starts with), the fail-closed patterns and
// the drop counters. Pure. Elements are brought to the canonical text compile.ts writes, so a
// recomputed digest equals the compiled one exactly when the installed elements are the wanted ones.
import { FAIL_CLOSED_KEY, type DropCounter, type Unit, type UnitMap } from "../contract.ts";
import { formatAddress, parseAddress, type Family } from "../../model/ip.ts";
import { GUARDS, type Guard } from "../../policy/guards.ts";
import { digestOf, ELEMENT_SETS, failClosedDigest, FAIL_CLOSED_COMMENT, isDispatch, parseOwnerComment, sortElements, unitText, type Element, type ElementSet, type NftLayout, type PortElements } from "./compile.ts";
import { counterSet, SKELETON, VERSION_COMMENT, type Skeleton } from "./skeleton.ts";
import type { Installed } from "./transaction.ts";

type Json = unknown;
type Field = "ifname" | "ether" | "int48" | "int128" | "ipv4" | "ipv6" | "ipv4net" | "ipv6net" | "int128range";

const FIELDS: Record<ElementSet, readonly Field[]> = {
  ports_full: ["ifname"],
  ports_mac: ["ifname"],
  ports_off: ["ifname"],
  macs: ["ifname", "ether"],
  mac_pair: ["ifname", "ether", "int48"],
  v4: ["ifname", "ether", "ipv4"],
  v4net: ["ifname", "ether", "ipv4net"],
  v6: ["ifname", "ether", "ipv6"],
  v6net: ["ifname", "ether", "ipv6net"],
  nd_target: ["ifname", "ether", "int128"],
  nd_target_net: ["ifname", "ether", "int128range"],
};

const isObject = (v: Json): v is Record<string, Json> => typeof v === "object" && v !== null && !Array.isArray(v);

function hexInt(v: Json, bits: number): string | undefined {
  if (typeof v !== "string" && typeof v !== "number") return undefined;
  try {
    const n = BigInt(v);
    return `0x${n.toString(16).padStart(bits / 4, "0")}`;
  } catch {
    return undefined;
  }
}

function address(v: Json, family: Family): Uint8Array | undefined {
  if (typeof v !== "string") return undefined;
  const p = parseAddress(v);
  return p && p.family === family ? p.bytes : undefined;
}

/** A [first, last] range that is exactly a prefix: its length; undefined otherwise. */
function prefixLength(first: Uint8Array, last: Uint8Array): number | undefined {
  let length = 0;
  let inHost = false;
  for (let i = 0; i < first.length; i++) {
    for (let bit = 7; bit >= 0; bit--) {
      const a = ((first[i] ?? 0) >> bit) & 1;
      const b = ((last[i] ?? 0) >> bit) & 1;
      if (!inHost && a === b) length++;
      else if (a === 0 && b === 1) inHost = true;
      else return undefined;
    }
  }
  return length;
}

function field(kind: Field, v: Json): string | undefined {
  switch (kind) {
    case "ifname":
      return typeof v === "string" && /^[A-Za-z0-9_.-]{1,15}$/.test(v) ? `"${v}"` : undefined;
    case "ether":
      return typeof v === "string" && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(v) ? v.toLowerCase() : undefined;
    case "int48":
      return hexInt(v, 48);
    case "int128":
      return hexInt(v, 128);
    case "int128range": {
      if (isObject(v) && Array.isArray(v.range) && v.range.length === 2) {
        const [a, b] = [hexInt(v.range[0], 128), hexInt(v.range[1], 128)];
        return a && b ? `${a}-${b}` : undefined;
      }
      return hexInt(v, 128);
    }
    case "ipv4":
    case "ipv6": {
      const family: Family = kind === "ipv4" ? 4 : 6;
      const bytes = address(v, family);
      return bytes && formatAddress(family, bytes);
    }
    case "ipv4net":
    case "ipv6net": {
      const family: Family = kind === "ipv4net" ? 4 : 6;
      if (isObject(v) && isObject(v.prefix)) {
        const bytes = address(v.prefix.addr, family);
        return bytes && typeof v.prefix.len === "number" ? `${formatAddress(family, bytes)}/${v.prefix.len}` : undefined;
      }
      if (isObject(v) && Array.isArray(v.range) && v.range.length === 2) {
        const [a, b] = [address(v.range[0], family), address(v.range[1], family)];
        if (!a || !b) return undefined;
        const length = prefixLength(a, b);
        return length === undefined ? `${formatAddress(family, a)}-${formatAddress(family, b)}` : `${formatAddress(family, a)}/${length}`;
      }
      const bytes = address(v, family);
      return bytes && formatAddress(family, bytes);
    }
  }
}

type Parsed = Readonly<{ device: string; key: string; comment?: string; counter?: { packets: number; bytes: number } }>;

/** One listed element of a set of `fields` (the value may be wrapped in {"elem": {val, comment, counter}}). */
function parseElement(raw: Json, fields: readonly Field[]): Parsed | undefined {
  let value: Json = raw;
  let comment: string | undefined;
  let counter: { packets: number; bytes: number } | undefined;
  if (isObject(value) && isObject(value.elem)) {
    const e = value.elem;
    if (typeof e.comment === "string") comment = e.comment;
    if (isObject(e.counter)) counter = { packets: Number(e.counter.packets ?? 0), bytes: Number(e.counter.bytes ?? 0) };
    value = e.val;
  }
  const parts = fields.length === 1 ? [value] : isObject(value) && Array.isArray(value.concat) ? value.concat : undefined;
  if (!parts || parts.length !== fields.length) return undefined;
  const texts = parts.map((p, i) => field(fields[i]!, p));
  if (texts.some((t) => t === undefined)) return undefined;
  const key = texts.join(" . ");
  return { device: texts[0]!.slice(1, -1), key, ...(comment !== undefined && { comment }), ...(counter && { counter }) };
}

export type Listing = Readonly<{
  installed: Installed;
  /** Drop counters per device and guard. */
  drops: ReadonlyMap<string, ReadonlyMap<Guard, { packets: number; bytes: number }>>;
  /** The port id named by each device's dispatch-element comment. */
  portOf: ReadonlyMap<string, string>;
}>;

/** Reads `nft -j list table` output (the whole document, or undefined when there is no table). */
export function parseListing(json: string | undefined, layout: NftLayout, sk: Skeleton = SKELETON): Listing {
  if (json === undefined) return { installed: { version: undefined, intact: false, ports: new Map(), failClosed: undefined }, drops: new Map(), portOf: new Map() };
  const doc = JSON.parse(json) as Json;
  const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  const mine = (o: Record<string, Json>): boolean => o.family === "bridge" && o.table === layout.table;

  const elements = new Map<string, Element[]>();
  const comments = new Map<string, string>();
  const drops = new Map<string, Map<Guard, { packets: number; bytes: number }>>();
  const sets = new Set<string>();
  const ruleCounts = new Map<string, number>();
  const chains = new Set<string>();
  let version: string | undefined;
  let tablePresent = false;
  const failIn: string[] = [];
  const failOut: string[] = [];
  const guardOfCounter = new Map(GUARDS.map((g) => [counterSet(g), g]));

  for (const item of items) {
    if (!isObject(item)) continue;
    if (isObject(item.table) && item.table.family === "bridge" && item.table.name === layout.table) tablePresent = true;
    const set = isObject(item.set) ? item.set : isObject(item.map) ? item.map : undefined;
    if (set && mine(set) && typeof set.name === "string") {
      sets.add(set.name);
      const list = Array.isArray(set.elem) ? set.elem : [];
      const guard = guardOfCounter.get(set.name);
      if ((ELEMENT_SETS as readonly string[]).includes(set.name)) {
        const name = set.name as ElementSet;
        for (const raw of list) {
          const e = parseElement(raw, FIELDS[name]);
          if (!e) continue;
          elements.set(e.device, [...(elements.get(e.device) ?? []), { set: name, key: e.key }]);
          if (isDispatch(name) && e.comment !== undefined) comments.set(e.device, e.comment);
        }
      } else if (guard) {
        for (const raw of list) {
          const e = parseElement(raw, ["ifname"]);
          if (!e?.counter) continue;
          const byGuard = drops.get(e.device) ?? new Map<Guard, { packets: number; bytes: number }>();
          byGuard.set(guard, e.counter);
          drops.set(e.device, byGuard);
        }
      }
    }
    if (isObject(item.chain) && mine(item.chain) && typeof item.chain.name === "string") chains.add(item.chain.name);
    if (isObject(item.rule) && mine(item.rule) && typeof item.rule.chain === "string") {
      const chain = item.rule.chain;
      ruleCounts.set(chain, (ruleCounts.get(chain) ?? 0) + 1);
      const comment = typeof item.rule.comment === "string" ? item.rule.comment : "";
      if (chain === "from_vm_hook" && comment.startsWith(`${VERSION_COMMENT} `)) version = comment.slice(VERSION_COMMENT.length + 1);
      if (comment.startsWith(`${FAIL_CLOSED_COMMENT} `)) {
        const pattern = comment.slice(FAIL_CLOSED_COMMENT.length + 1);
        if (chain === "fail_closed_in") failIn.push(pattern);
        if (chain === "fail_closed_out") failOut.push(pattern);
      }
    }
  }
  if (!tablePresent) return parseListing(undefined, layout, sk);

  const intact =
    sk.sets.every((s) => sets.has(s.name)) &&
    sk.chains.every((c) => chains.has(c.name) && (ruleCounts.get(c.name) ?? 0) === c.rules.length + (c.name === "fail_closed_in" ? failIn.length : c.name === "fail_closed_out" ? failOut.length : 0));
  const ports = new Map<string, PortElements>();
  const portOf = new Map<string, string>();
  for (const [device, list] of [...elements.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const owner = parseOwnerComment(comments.get(device));
    if (owner) portOf.set(device, owner.port);
    ports.set(device, { device, port: owner?.port ?? "", elements: sortElements(list) });
  }
  const inSorted = [...failIn].sort();
  const failClosed = failIn.length || failOut.length ? inSorted : undefined;
  const failConsistent = JSON.stringify(inSorted) === JSON.stringify([...failOut].sort());
  return {
    installed: { version: version ?? "", intact: intact && failConsistent, ports, failClosed },
    drops,
    portOf,
  };
}

/** The UnitMap observe() returns: digests recomputed from what is installed (a damaged skeleton changes them all). */
export function observedUnits(installed: Installed, layout: NftLayout, sk: Skeleton = SKELETON): UnitMap {
  const version = installed.intact && installed.version === sk.version ? sk.version : `installed:${installed.version ?? "none"}`;
  const units = new Map<string, Unit>();
  for (const [device, ports] of installed.ports) {
    const digest = digestOf(version, ports);
    units.set(device, { key: device, port: ports.port, digest, text: unitText(layout, ports, digest) });
  }
  if (installed.failClosed) {
    units.set(FAIL_CLOSED_KEY, { key: FAIL_CLOSED_KEY, port: FAIL_CLOSED_KEY, digest: failClosedDigest(version, installed.failClosed), text: "" });
  }
  return units;
}

/** Drop counters per port and guard; devices whose port is unknown (no owner comment) are left out. */
export function dropCounters(listing: Listing): DropCounter[] {
  const counters: DropCounter[] = [];
  for (const [device, byGuard] of listing.drops) {
    const port = listing.portOf.get(device);
    if (port === undefined) continue;
    for (const [reason, c] of byGuard) counters.push({ port, reason, packets: c.packets, bytes: c.bytes });
  }
  return counters.sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : GUARDS.indexOf(a.reason) - GUARDS.indexOf(b.reason)));
}
