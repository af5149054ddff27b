// The hypervisor contract every dataplane driver implements. Types only.
import type { Guard } from "../policy/guards.ts";
import type { PortPolicy } from "../policy/port-policy.ts";

export type DriverName = "nftables" | "libvirt" | "ovs";
export const DRIVER_NAMES: readonly DriverName[] = ["nftables", "libvirt", "ovs"];

/** A known way in which a driver enforces a guard less exactly than the reference evaluator. */
export type Limitation = Readonly<{
  /** Stable id; conformance cases that depend on it name it. */
  id: string;
  guard: Guard;
  description: string;
}>;

export interface Capabilities {
  /** What this dataplane can enforce at all; a port missing one of its level's guards shows it in status. */
  readonly guards: ReadonlySet<Guard>;
  /** Partial enforcement of a listed guard, said out loud. */
  readonly limitations: readonly Limitation[];
  /** A batch of changes lands whole or not at all. */
  readonly atomicBatch: boolean;
}

/** One port's compiled rules: `key` names the port in the dataplane, `digest` identifies its content. */
export type Unit = Readonly<{ key: string; port: string; digest: string; text: string }>;
export type UnitMap = ReadonlyMap<string, Unit>;

/** What apply() does: install or replace `add` (make before break), remove the units keyed `remove`. */
export type ChangeSet = Readonly<{ add: readonly Unit[]; remove: readonly string[] }>;

export type HostFacts = Readonly<{ driver: DriverName; versions: Readonly<Record<string, string>>; notes: readonly string[] }>;

export type ApplyReport = Readonly<{ added: readonly string[]; removed: readonly string[]; durationMs: number }>;

/** Dropped frames of one port for one reason, since the port's rules were installed. */
export type DropCounter = Readonly<{ port: string; reason: Guard; packets: number; bytes: number }>;

export interface Driver {
  readonly name: DriverName;
  readonly capabilities: Capabilities;
  /** Is the dataplane there and usable? Resolves with versions, or rejects with DriverUnavailableError. */
  probe(): Promise<HostFacts>;
  /** Pure and deterministic: one unit per port. */
  compile(policies: readonly PortPolicy[]): UnitMap;
  /** Idempotent; atomic per batch when capabilities.atomicBatch. */
  apply(changes: ChangeSet): Promise<ApplyReport>;
  /** What of ours is installed now: keys and digests (text may be empty). */
  observe(): Promise<UnitMap>;
  counters(): Promise<DropCounter[]>;
  /** Takes away everything of vifguard's this driver installed. */
  removeAll(): Promise<void>;

  // --- Optional, for the host agent (issue 4) ---
  /**
   * Fail closed: a unit keyed FAIL_CLOSED_KEY that drops every frame from and to a device matching
   * one of `devices` (an interface name, or a prefix ending in '*': "vnet*") unless a port's unit
   * claims that device. apply() installs and removes it, and observe() reports it, like a port's
   * unit, so a restarted agent finds it and drift is repaired. Pure and deterministic.
   */
  compileFailClosed?(devices: readonly string[]): Unit;
  /**
   * Calls `onChange` soon after the dataplane objects vifguard owns, or what compile() reads from the
   * host, may have changed (e.g. `nft monitor`; OVS: an interface's OpenFlow port number, refreshed
   * before the call), so the agent repairs drift before its periodic check. Resolves once following.
   */
  watchChanges?(onChange: () => void): Promise<DriverWatch>;
  /** Ends long-lived helper processes (e.g. nftables' `nft -i`); the installed rules stay. */
  close?(): void;
}

/** The key of the fail-closed unit (no port id starts with '*'). */
export const FAIL_CLOSED_KEY = "*fail-closed";

/** A running watchChanges(); close() stops it. */
export type DriverWatch = Readonly<{ close(): void }>;

/** Options every driver understands; drivers ignore what does not apply to them. */
export type DriverOptions = Readonly<{
  /** Run the dataplane commands inside this named network namespace (ip netns). */
  netns?: string;
  /** Prefix of every dataplane object vifguard owns (table, filters, cookies); default "vifguard". */
  prefix?: string;
}>;
