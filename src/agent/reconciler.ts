// Makes the dataplane match the desired state: observe, compile, apply the difference (plan.ts decides).
// Effects only through the driver. Never flushes: before any desired state is known it keeps
// whatever is installed, and it only ever removes units the desired state no longer names.
// Runs are serialized; requests made during a run share one follow-up run.
import type { Device, Driver, Unit } from "../drivers/contract.ts";
import { FAIL_CLOSED_KEY } from "../drivers/contract.ts";
import type { PortPolicy } from "../policy/port-policy.ts";
import { compileMatched, type DeviceMatch } from "./device-match.ts";
import { convergedDigests, countDrift, countStates, driftedPorts, planChanges, portStates, splitChanges, type PortState } from "./plan.ts";

export type SyncReport = Readonly<{
  reason: string;
  /** The revision given with the policies this run applied (setDesired), if any, and those policies. */
  revision: string | undefined;
  policies: readonly PortPolicy[];
  added: number;
  removed: number;
  drift: number;
  durationMs: number;
  states: ReadonlyMap<string, PortState>;
  /** Per port, the drift repaired since the agent started: how many syncs re-installed its unit, the last when (ms). */
  driftRepairs: ReadonlyMap<string, DriftRepairs>;
}>;

export type DriftRepairs = Readonly<{ count: number; lastMs: number }>;

export type ReconcilerLog = Readonly<{
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}>;

export type ReconcilerHooks = Readonly<{
  synced?(report: SyncReport, nowMs: number): void;
  failed?(error: unknown, durationMs: number): void;
}>;

export type ReconcilerOptions = Readonly<{
  driver: Driver;
  log: ReconcilerLog;
  hooks?: ReconcilerHooks;
  /** Device patterns that fail closed (needs driver.compileFailClosed); empty: off. */
  failClosedDevices?: readonly string[];
  /** At most this many ports per driver.apply() (one transaction each). */
  batchSize?: number;
  now?: () => number;
}>;

export class Reconciler {
  readonly driver: Driver;
  private readonly log: ReconcilerLog;
  private readonly hooks: ReconcilerHooks;
  private readonly failClosed: Unit | undefined;
  private readonly batchSize: number;
  private readonly now: () => number;
  private policies: readonly PortPolicy[] = [];
  private revision: string | undefined;
  private known = false;
  private failClosedOn = true;
  private readonly unpluggedPorts = new Set<string>();
  private readonly hints = new Map<string, string>();
  private lastMatches: ReadonlyMap<string, DeviceMatch> = new Map();
  private converged: ReadonlyMap<string, string> = new Map();
  private current: Promise<SyncReport> | undefined;
  private queued: Promise<SyncReport> | undefined;
  private lastStates: ReadonlyMap<string, PortState> = new Map();
  private readonly driftRepairs = new Map<string, DriftRepairs>();
  private lastOk = false;

  constructor(options: ReconcilerOptions) {
    this.driver = options.driver;
    this.log = options.log;
    this.hooks = options.hooks ?? {};
    this.batchSize = options.batchSize ?? 250;
    this.now = options.now ?? Date.now;
    const devices = options.failClosedDevices ?? [];
    this.failClosed = devices.length > 0 && this.driver.compileFailClosed ? this.driver.compileFailClosed(devices) : undefined;
    if (devices.length > 0 && !this.failClosed) {
      this.log.warn({ driver: this.driver.name }, `driver ${this.driver.name} cannot fail closed: devices without a policy pass traffic until their policy arrives`);
    }
  }

  /** The policies to enforce from now on (as of `revision`, reported back by the sync that applies them); the next sync applies them. */
  setDesired(policies: readonly PortPolicy[], revision?: string): void {
    this.policies = policies;
    this.revision = revision;
    this.known = true;
  }

  /**
   * Turns the fail-closed unit on or off (the controller's switch); the next sync installs or
   * removes it. Without fail-closed devices (or driver support) there is nothing to turn on.
   */
  setFailClosed(on: boolean): void {
    this.failClosedOn = on;
  }

  /** Is the fail-closed unit wanted now? */
  get failingClosed(): boolean {
    return this.failClosed !== undefined && this.failClosedOn;
  }

  get hasDesired(): boolean {
    return this.known;
  }

  get desiredPolicies(): readonly PortPolicy[] {
    return this.policies;
  }

  get unplugged(): ReadonlySet<string> {
    return this.unpluggedPorts;
  }

  /** Marks a port unplugged (its rules go at the next sync) or plugged again. */
  setUnplugged(port: string, unplugged: boolean): void {
    if (unplugged) this.unpluggedPorts.add(port);
    else this.unpluggedPorts.delete(port);
  }

  /**
   * A hook's word on which device carries a guest MAC (libvirt's <target dev> for each <interface>'s
   * <mac>): used when the port names no existing device, while that device exists. `undefined`
   * forgets the MAC's hint (the VM stopped: libvirt may give its vnetN to another VM).
   */
  setDeviceHint(mac: string, device: string | undefined): void {
    if (device === undefined) this.hints.delete(mac.toLowerCase());
    else this.hints.set(mac.toLowerCase(), device);
  }

  /** How each port met its device at the last successful sync (src/agent/device-match.ts). */
  get matches(): ReadonlyMap<string, DeviceMatch> {
    return this.lastMatches;
  }

  /** Port → the device it was placed on at the last successful sync. */
  get matchedDevices(): ReadonlyMap<string, string> {
    return new Map([...this.lastMatches.values()].flatMap((m) => ("device" in m ? [[m.port, m.device] as const] : [])));
  }

  /** Port states after the last successful sync. */
  get states(): ReadonlyMap<string, PortState> {
    return this.lastStates;
  }

  /** Did the last sync succeed? */
  get healthy(): boolean {
    return this.lastOk;
  }

  /** Resolves when no run is in progress or queued. */
  async idle(): Promise<void> {
    while (this.current || this.queued) await (this.queued ?? this.current)?.catch(() => undefined);
  }

  /** Reconciles now, or right after the run in progress; resolves when a run that started after this call ends. */
  sync(reason: string): Promise<SyncReport> {
    if (this.queued) return this.queued;
    if (!this.current) return this.begin(reason);
    this.queued = this.current
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.begin(reason);
      });
    return this.queued;
  }

  private begin(reason: string): Promise<SyncReport> {
    const run: Promise<SyncReport> = this.once(reason).finally(() => {
      if (this.current === run) this.current = undefined;
    });
    this.current = run;
    return run;
  }

  /**
   * The units wanted now, given the devices there are: every plugged port's on the device it met
   * (named, hinted or by MAC), plus the fail-closed unit (when on).
   */
  private wanted(policies: readonly PortPolicy[], devices: readonly Device[]): { desired: Map<string, Unit>; matches: ReadonlyMap<string, DeviceMatch> } {
    const plugged = policies.filter((p) => !this.unpluggedPorts.has(p.port));
    const { units: desired, matches } = compileMatched((p, d) => this.driver.compile(p, d), plugged, devices, this.hints);
    if (this.failClosed && this.failClosedOn) desired.set(FAIL_CLOSED_KEY, this.failClosed);
    return { desired, matches };
  }

  private async once(reason: string): Promise<SyncReport> {
    const started = performance.now();
    try {
      // What this run applies; setDesired() during the run is for the next one.
      const revision = this.revision;
      const policies = this.policies;
      // Observe first: compile() depends on the devices it finds (and on nothing the driver holds).
      const { units: installed, devices } = await this.driver.observe();
      const { desired, matches } = this.wanted(policies, devices);
      // Knowing nothing yet (no source, nothing saved) is no reason to take protection away.
      if (!this.known) for (const [key, unit] of installed) if (!desired.has(key)) desired.set(key, unit);
      const changes = planChanges(desired, installed);
      const drift = countDrift(changes, desired, this.converged);
      for (const batch of splitChanges(changes, this.batchSize)) await this.driver.apply(batch);
      // Counted once applied: a failed repair is no repair (the next run finds the drift again).
      for (const port of driftedPorts(changes, this.converged)) {
        this.driftRepairs.set(port, { count: (this.driftRepairs.get(port)?.count ?? 0) + 1, lastMs: this.now() });
      }
      const named = new Set(policies.map((p) => p.port));
      for (const port of this.driftRepairs.keys()) if (!named.has(port)) this.driftRepairs.delete(port);
      this.converged = convergedDigests(desired);
      this.lastMatches = matches;
      const ambiguous = new Set([...matches.values()].filter((m) => m.how === "ambiguous").map((m) => m.port));
      for (const port of ambiguous) {
        const m = matches.get(port)!;
        if (m.how === "ambiguous") this.log.warn({ port, candidates: m.candidates }, `port ${port}: no device chosen, ${m.reason}; nothing installed for it (fail-closed covers the devices)`);
      }
      this.lastStates = portStates(policies.map((p) => p.port), desired, desired, this.unpluggedPorts, ambiguous);
      this.lastOk = true;
      const report: SyncReport = { reason, revision, policies, added: changes.add.length, removed: changes.remove.length, drift, durationMs: performance.now() - started, states: this.lastStates, driftRepairs: new Map(this.driftRepairs) };
      if (changes.add.length + changes.remove.length > 0) {
        const counts = countStates(this.lastStates);
        const fields = { reason, added: report.added, removed: report.removed, drift, durationMs: Math.round(report.durationMs), ...counts };
        if (drift > 0) this.log.warn(fields, `repaired drift: ${drift} unit${drift === 1 ? "" : "s"} had changed behind vifguard's back`);
        else this.log.info(fields, `applied ${report.added} and removed ${report.removed} units`);
      }
      this.hooks.synced?.(report, this.now());
      return report;
    } catch (error) {
      this.lastOk = false;
      const durationMs = performance.now() - started;
      this.log.error({ reason, err: error }, `reconcile failed (retrying at the next check): ${error instanceof Error ? error.message : String(error)}`);
      this.hooks.failed?.(error, durationMs);
      throw error;
    }
  }
}

export { countStates };
