// The hypervisor contract every dataplane driver implements. Types only.
import type { Guard } from "../policy/guards.ts";
import type { PlacedPolicy } from "../policy/port-policy.ts";
import type { z } from "zod";

/** A known way in which a driver enforces a guard less exactly than the reference evaluator. */
export type Limitation = Readonly<{
  /** Stable id; conformance cases that depend on it name it. */
  id: string;
  guard: Guard;
  description: string;
  /** The conformance cases (by name, src/conformance/cases.ts) whose outcome this limitation may change: the kit reports them as declared, not failed. */
  cases?: readonly string[];
}>;

export interface Capabilities {
  /** What this dataplane can enforce at all; a port missing one of its level's guards shows it in status. */
  readonly guards: ReadonlySet<Guard>;
  /** Partial enforcement of a listed guard, said out loud. */
  readonly limitations: readonly Limitation[];
  /** A batch of changes lands whole or not at all. */
  readonly atomicBatch: boolean;
}

/**
 * One port's compiled rules: `key` names the port in the dataplane, `digest` identifies its content.
 * `awaitingDevice`: the port's device is not there (yet), and the dataplane cannot hold its rules
 * without it (an OpenFlow port number, a libvirt binding's instantiation); `digest` and `text` are
 * then empty. compile() marks such a unit; planning installs nothing for it and removes what a
 * vanished device left, status and metrics show the port as `awaiting-device`, and it is never drift.
 * observe() marks an installed unit the same way when the dataplane holds it but it has no effect
 * because its device was missing (a libvirt binding without rules): it is replaced once the device is there.
 */
export type Unit = Readonly<{ key: string; port: string; digest: string; text: string; awaitingDevice?: true }>;
export type UnitMap = ReadonlyMap<string, Unit>;

/**
 * A network device of the host as a driver observes it: the facts compile() may depend on besides
 * the policies. `mac` lets a port meet its device by MAC (a libvirt or Xen tap carries the guest's
 * MAC with first octet fe).
 */
export type Device = Readonly<{
  /** The interface name on the host (vnet0, tap…, vif1.0): what a port file's `device` names. */
  name: string;
  /** Lower-case, colon-separated; absent when the host does not report one. */
  mac?: string;
  /** The kernel's interface index, when the device is a kernel interface the driver can see. */
  ifindex?: number;
  /** Open vSwitch: the device's OpenFlow port number on the bridge. */
  ofport?: number;
  /** Open vSwitch: external_ids:iface-id (OpenStack, OVN, libvirt's virtualport), which a port file may name instead of the name. */
  ifaceId?: string;
  /** Open vSwitch: external_ids:attached-mac, the guest's own MAC (libvirt and OpenStack set it), lower-case. */
  attachedMac?: string;
  /** Other interfaces are enslaved to it (a bridge or a bond). A Linux bridge whose ports are all taps
   *  takes the lowest tap's MAC, so it carries a guest's tap MAC without being that guest's device. */
  isMaster?: boolean;
}>;

/** What observe() finds: the units of ours installed now, and the devices the driver can see. */
export type Observed = Readonly<{ units: UnitMap; devices: readonly Device[] }>;

/** What apply() does: install or replace `add` (make before break), remove the units keyed `remove`. */
export type ChangeSet = Readonly<{ add: readonly Unit[]; remove: readonly string[] }>;

export type HostFacts = Readonly<{ driver: string; versions: Readonly<Record<string, string>>; notes: readonly string[] }>;

export type ApplyReport = Readonly<{ added: readonly string[]; removed: readonly string[]; durationMs: number }>;

/** Dropped frames of one port for one reason, since the port's rules were installed. */
export type DropCounter = Readonly<{ port: string; reason: Guard; packets: number; bytes: number }>;

export interface Driver {
  readonly name: string;
  readonly capabilities: Capabilities;
  /** Is the dataplane there and usable? Resolves with versions, or rejects with DriverUnavailableError. */
  probe(): Promise<HostFacts>;
  /**
   * Pure and deterministic: one unit per port, from the policies and the devices observe() found
   * (a port whose device the dataplane needs and cannot see gets an `awaitingDevice` unit). Each
   * policy's `device` is the one the agent matched (src/agent/device-match.ts: named, or by MAC).
   */
  compile(policies: readonly PlacedPolicy[], devices: readonly Device[]): UnitMap;
  /** Idempotent; atomic per batch when capabilities.atomicBatch. */
  apply(changes: ChangeSet): Promise<ApplyReport>;
  /** What of ours is installed now (keys and digests; text may be empty), and the devices compile() needs. */
  observe(): Promise<Observed>;
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
   * The change feed (required): calls `onChange` soon after the dataplane objects vifguard owns, or
   * the devices compile() depends on, may have changed (nftables: `nft monitor`; OVS: an OVSDB
   * monitor of the Interface table; libvirt: `ip monitor link`), so the agent syncs before its
   * periodic check. A spurious call costs one sync that finds nothing to do. A dataplane without
   * any feed resolves with a watch that never calls (the periodic check then finds everything).
   * Resolves once following; rejects if it cannot follow.
   */
  watchChanges(onChange: () => void): Promise<DriverWatch>;
  /**
   * Frames the dataplane drops and samples itself (nftables: `log group` to NFLOG, rate-limited per
   * device and guard in the kernel), for spoof events. Optional: without it, events come from
   * counters() alone. Sampling never delays enforcement; `stopped` resolves, with why, if it ends
   * before close().
   */
  sampleDrops?(onFrame: (frame: DroppedFrame) => void): DropSampler;
  /** Ends long-lived helper processes (e.g. nftables' `nft -i`); the installed rules stay. */
  close?(): void;
}

/** The key of the fail-closed unit (no port id starts with '*'). */
export const FAIL_CLOSED_KEY = "*fail-closed";

/** A running watchChanges(); close() stops it. */
export type DriverWatch = Readonly<{ close(): void }>;

/** One frame the dataplane dropped and sampled: the guard that dropped it, the device it came from. */
export type DroppedFrame = Readonly<{ reason: Guard; device: string; frame: Uint8Array; timeMs: number }>;

/** A running sampleDrops(): close() stops it; `stopped` says why it ended on its own. */
export type DropSampler = Readonly<{ close(): void; stopped: Promise<string> }>;

/** A capability of the kernel's that a driver may need (linux/capability.h). */
export type CapabilityName = "CAP_NET_ADMIN" | "CAP_SYS_ADMIN";

/**
 * What the agent must hold to run a driver, checked at start (src/agent/privileges.ts) so that a
 * unit granting too little stops with one line naming what is missing.
 */
export type DriverPrivileges = Readonly<{
  capabilities: readonly Readonly<{ capability: CapabilityName; why: string }>[];
  /** Sockets it needs read-write access to; `what` names one in the message, `hint` says how to grant it. */
  sockets: readonly Readonly<{ path: string; what: string; hint: string }>[];
}>;

/** Options every driver understands; drivers ignore what does not apply to them. */
export type DriverOptions = Readonly<{
  /** Run the dataplane commands inside this named network namespace (ip netns). */
  netns?: string;
  /** Prefix of every dataplane object vifguard owns (table, filters, cookies); default "vifguard". */
  prefix?: string;
}>;

/** A command-line option of a driver: `--flag <value>` sets the driver's setting `key` (validated by its schema). */
export type DriverOption = Readonly<{ flag: `--${string}`; key: string; description: string }>;

/** The conformance sandbox's switch a driver filters (src/conformance/switch.ts). */
export type SandboxSwitchKind = "linux-bridge" | "ovs" | "linux-bridge-root";

/**
 * A driver as one module: everything vifguard needs to know about a dataplane. Each driver folder's
 * index.ts exports one; src/drivers/registry.ts lists them. Nothing else names a driver.
 */
export interface DriverModule {
  /** `--driver NAME`, agent.yaml's `driver.name`. */
  readonly name: string;
  readonly description: string;
  /** Guards it enforces, and limitations with the conformance cases they excuse (Limitation.cases). */
  readonly capabilities: Capabilities;
  /**
   * Its own settings (besides the common `netns` and `prefix`): a strict zod object, applied to
   * agent.yaml's `driver` section and to the values of `options` (command-line strings: coerce
   * numbers). Its messages say what is accepted: an out-of-range value is an Issue, never a throw.
   */
  readonly settings: z.ZodType<Record<string, unknown>>;
  readonly options: readonly DriverOption[];
  /** The switch `vifguard conformance --driver NAME` builds for it. */
  readonly sandbox: SandboxSwitchKind;
  /** What the agent needs to run it with these settings (the common `netns` aside); absent: nothing. */
  privileges?(settings: DriverOptions & Readonly<Record<string, unknown>>): DriverPrivileges;
  /** A driver from validated settings; its watchChanges() is the module's change feed. */
  create(settings: DriverOptions & Readonly<Record<string, unknown>>): Driver;
}
