// The difference between what is wanted and what is installed, as a change set. Pure.
import type { ChangeSet, UnitMap } from "../drivers/contract.ts";

/**
 * Adds every wanted unit not installed as wanted (missing, different, or installed without effect
 * while its device was missing); removes every installed unit nobody wants, and what a vanished
 * device left behind (a unit now awaiting its device: its OpenFlow port number or device name may be
 * given to another device). A unit awaiting its device adds nothing.
 */
export function planChanges(desired: UnitMap, installed: UnitMap): ChangeSet {
  const add = [...desired.values()].filter((u) => {
    if (u.awaitingDevice) return false;
    const have = installed.get(u.key);
    return !have || have.awaitingDevice === true || have.digest !== u.digest;
  });
  const remove = [...installed.values()]
    .filter((have) => {
      const want = desired.get(have.key);
      return !want || (want.awaitingDevice === true && have.awaitingDevice !== true);
    })
    .map((u) => u.key)
    .sort();
  return { add, remove };
}

/**
 * Splits a change set into batches of at most `size` ports, removals first (they free names), so
 * that a large first sync is many bounded transactions: an interrupted agent leaves whole ports.
 */
export function splitChanges(changes: ChangeSet, size: number): ChangeSet[] {
  const batches: ChangeSet[] = [];
  for (let i = 0; i < changes.remove.length; i += size) batches.push({ add: [], remove: changes.remove.slice(i, i + size) });
  for (let i = 0; i < changes.add.length; i += size) batches.push({ add: changes.add.slice(i, i + size), remove: [] });
  return batches;
}

/**
 * How many of the planned changes repair drift: a unit whose wanted digest is what we last saw
 * installed (or a unit we last saw installed and still want, now missing) changed behind our back.
 * `converged` maps key → digest as of the last successful sync; empty after a (re)start.
 */
export function countDrift(changes: ChangeSet, desired: UnitMap, converged: ReadonlyMap<string, string>): number {
  // converged holds installed units only (never one awaiting its device: see convergedDigests).
  const readded = changes.add.filter((u) => converged.get(u.key) === u.digest).length;
  const strays = changes.remove.filter((key) => !converged.has(key) && !desired.has(key)).length;
  return readded + (converged.size > 0 ? strays : 0);
}

/**
 * The ports whose units countDrift() counts as re-added (changed or removed behind our back), sorted,
 * each once: what the agent reports per port as drift it repaired.
 */
export function driftedPorts(changes: ChangeSet, converged: ReadonlyMap<string, string>): string[] {
  return [...new Set(changes.add.filter((u) => converged.get(u.key) === u.digest).map((u) => u.port))].sort();
}

/** What a successful sync leaves installed, key → digest (for the next countDrift): units awaiting their device are not. */
export function convergedDigests(desired: UnitMap): Map<string, string> {
  return new Map([...desired.values()].filter((u) => !u.awaitingDevice).map((u) => [u.key, u.digest]));
}

/** Does `device` match `pattern` ("vnet*": a trailing '*' matches any rest, as nft ifname wildcards do)? */
export function matchesDevice(pattern: string, device: string): boolean {
  return pattern.endsWith("*") ? device.startsWith(pattern.slice(0, -1)) : device === pattern;
}

export type PortState = "enforced" | "pending" | "awaiting-device" | "ambiguous-device" | "unplugged";
export const PORT_STATES: readonly PortState[] = ["enforced", "pending", "awaiting-device", "ambiguous-device", "unplugged"];

/**
 * The state of each port the source names: enforced (its unit is installed as wanted), awaiting-device
 * (its device is not there yet, so nothing can be installed), ambiguous-device (`ambiguous` names it:
 * several devices match it, so nothing is installed), pending (anything else), or unplugged.
 */
export function portStates(ports: readonly string[], desired: UnitMap, installed: UnitMap, unplugged: ReadonlySet<string>, ambiguous: ReadonlySet<string> = new Set()): Map<string, PortState> {
  const byPort = new Map<string, string>();
  for (const unit of desired.values()) byPort.set(unit.port, unit.key);
  const states = new Map<string, PortState>();
  for (const port of ports) {
    if (unplugged.has(port)) states.set(port, "unplugged");
    else if (ambiguous.has(port)) states.set(port, "ambiguous-device");
    else {
      const key = byPort.get(port);
      const wanted = key === undefined ? undefined : desired.get(key);
      const have = wanted && installed.get(wanted.key);
      states.set(port, wanted?.awaitingDevice ? "awaiting-device" : have && !have.awaitingDevice && have.digest === wanted!.digest ? "enforced" : "pending");
    }
  }
  return states;
}

/** Counts of ports per state, every state present. */
export function countStates(states: ReadonlyMap<string, PortState>): Record<PortState, number> {
  const counts: Record<PortState, number> = { enforced: 0, pending: 0, "awaiting-device": 0, "ambiguous-device": 0, unplugged: 0 };
  for (const state of states.values()) counts[state]++;
  return counts;
}

export type DropSample = Readonly<{ port: string; reason: string; packets: number }>;

/**
 * What each port dropped since the previous sample, per reason, largest first; a counter that went
 * down (the port's rules were replaced) counts from zero.
 */
export function dropDeltas(previous: readonly DropSample[], current: readonly DropSample[]): DropSample[] {
  const before = new Map(previous.map((c) => [`${c.port}\u0000${c.reason}`, c.packets]));
  const deltas: DropSample[] = [];
  for (const c of current) {
    const was = before.get(`${c.port}\u0000${c.reason}`) ?? 0;
    const delta = c.packets >= was ? c.packets - was : c.packets;
    if (delta > 0) deltas.push({ port: c.port, reason: c.reason, packets: delta });
  }
  return deltas.sort((a, b) => b.packets - a.packets || (a.port < b.port ? -1 : a.port > b.port ? 1 : a.reason < b.reason ? -1 : 1));
}

/** One log line per port: "port eve-0 dropped 37 frames: arp-spoof 30, mac-spoof 7". */
export function describeDrops(deltas: readonly DropSample[]): { port: string; total: number; reasons: Record<string, number>; message: string }[] {
  const byPort = new Map<string, DropSample[]>();
  for (const d of deltas) byPort.set(d.port, [...(byPort.get(d.port) ?? []), d]);
  return [...byPort.entries()].map(([port, list]) => {
    const total = list.reduce((n, d) => n + d.packets, 0);
    const reasons = Object.fromEntries(list.map((d) => [d.reason, d.packets]));
    const detail = list.length === 1 ? list[0]!.reason : list.map((d) => `${d.reason} ${d.packets}`).join(", ");
    return { port, total, reasons, message: `port ${port} dropped ${total} frame${total === 1 ? "" : "s"}: ${detail}` };
  });
}

/**
 * The policy a lifecycle request names: by port id, else host device (the one its source names,
 * else the one it was matched to: `matched`, port → device), else MAC (lower-case).
 */
export function findPort<P extends Readonly<{ port: string; device?: string; macs: readonly string[] }>>(policies: readonly P[], name: string, matched: ReadonlyMap<string, string> = new Map()): P | undefined {
  const mac = name.toLowerCase();
  return policies.find((p) => p.port === name) ?? policies.find((p) => p.device === name) ?? policies.find((p) => matched.get(p.port) === name) ?? policies.find((p) => p.macs[0] === mac);
}
