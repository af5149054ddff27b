// The Open vSwitch driver: installs, observes and counts vifguard's OpenFlow flows with ovs-ofctl
// bundles; observes the bridge's interfaces (OpenFlow port numbers, iface-ids, MACs) in OVSDB and
// follows their changes. Effects (through host/run). It holds no device state: compile() is given it.
import { join } from "node:path";
import type { ApplyReport, Capabilities, ChangeSet, Device, Driver, DriverOptions, DriverWatch, DropCounter, HostFacts, Limitation, Observed, Unit, UnitMap } from "../contract.ts";
import { ApplyError, DriverUnavailableError } from "../../errors.ts";
import { CommandError, run, type RunOptions } from "../../host/run.ts";
import { GUARDS } from "../../policy/guards.ts";
import type { PlacedPolicy } from "../../policy/port-policy.ts";
import { allCookieMask, CLASSIFY, CLASSIFY_RANK, compileOvs, cookieOf, guardOfPriority, magicFor, parseNote, priorityOf, TABLE_COUNT, type OvsLayout, type PassAction } from "./compile.ts";
import { interfaceDevices, readInterfaces, watchInterfaces, type InterfaceWatch, type OvsInterface } from "./ovsdb.ts";
import { OfConnection, OpenFlowConnectionError, OpenFlowError, StaleConnectionError } from "./ofconn.ts";
import { UnsupportedFlowError } from "./openflow.ts";
import { changeOps, encodeOp, removeAllOps, renderOps, type BundleOp } from "./render.ts";

/** Reconnecting the OVSDB monitor after it ended: first delay, doubled per failure up to max. */
const WATCH_RETRY_MS: Readonly<{ first: number; max: number }> = { first: 500, max: 30_000 };

export type OvsDriverOptions = DriverOptions &
  Readonly<{
    /** The bridge the protected ports are on. */
    bridge: string;
    /** First of vifguard's TABLE_COUNT (5) consecutive tables; every frame of the bridge must enter here (0 = the bridge's first table). */
    tableBase?: number;
    /** What frames that pass do: "normal" (default) or continue at the operator's table. */
    pass?: PassAction;
    /** pass = table: register holding the output port when the operator's pipeline resubmits to vifguard's to-vm table; default 7. */
    portRegister?: number;
    /** OVS run directory (OVS_RUNDIR: the bridge's management socket lives there); default the system's. */
    runDir?: string;
    /** OVSDB socket; default `<runDir>/db.sock`. */
    dbSocket?: string;
    /**
     * How bundles reach ovs-vswitchd: "openflow" (default) over one long-lived connection to the
     * bridge's management socket, ovs-ofctl being the fallback; "ovs-ofctl" always spawns it (what
     * vifguard did before the connection; bench/ovs.ts measures both side by side).
     */
    transport?: "openflow" | "ovs-ofctl";
  }>;

/** What OpenFlow in OVS 3.1 cannot express exactly; each found with ofproto/trace (test/drivers/ovs/trace.test.ts). */
export const OVS_LIMITATIONS: readonly Limitation[] = [
  {
    id: "ovs-llc-snap",
    guard: "ethertype",
    description: "OVS parses LLC/SNAP frames whose SNAP type is IPv4, ARP or IPv6 as that ethertype: such a frame passes when its payload would (other 802.3 frames drop)",
    cases: ["LLC/SNAP carrying IPv4"],
  },
  {
    id: "ovs-nd-options",
    guard: "nd-spoof",
    description: "OVS reads one source and one target link-layer option of length 1 in NS/NA; an NS's target option, an NA's source option, options of another length and RS options are not checked (repeated options are caught: OVS clears the target)",
    cases: ["NS with nonce, then Alice's MAC in SLL", "router solicitation with Alice's SLL"],
  },
  {
    id: "ovs-truncated-reason",
    guard: "malformed",
    description: "OVS does not parse truncated headers; such frames drop under the guard of their protocol (arp-spoof, ipv4-spoof, ipv6-fragment) instead of malformed",
  },
  {
    id: "ovs-arp-not-ethernet",
    guard: "arp-spoof",
    description: "at level mac, ARP that is not Ethernet/IPv4 drops (OVS does not parse its addresses), where the reference lets it pass",
  },
  {
    id: "ovs-normal-flood",
    guard: "not-for-this-port",
    description: "with pass=normal, unicast to a protected MAC is output to its port directly, but NORMAL may still flood unicast for an unlearned non-protected MAC (or a MAC several ports share) to protected ports; with pass=table the operator's pipeline must resubmit to the to-vm table",
    cases: ["Bob → an unknown MAC"],
  },
];

export const OVS_CAPABILITIES: Capabilities = { guards: new Set(GUARDS), limitations: OVS_LIMITATIONS, atomicBatch: true };

type DumpedFlow = Readonly<{ cookie: bigint; table: number; priority: number; packets: number; bytes: number; note?: string; inPort?: number }>;

/** Parses `ovs-ofctl --no-names dump-flows` lines. */
export function parseDump(text: string): DumpedFlow[] {
  const flows: DumpedFlow[] = [];
  for (const line of text.split("\n")) {
    const cookie = /cookie=(0x[0-9a-f]+)/.exec(line)?.[1];
    const table = /table=(\d+)/.exec(line)?.[1];
    if (!cookie || !table) continue;
    const note = /note:([0-9a-f.]+)/.exec(line)?.[1];
    const inPort = /in_port=(\d+)/.exec(line)?.[1];
    flows.push({
      cookie: BigInt(cookie),
      table: Number(table),
      priority: Number(/priority=(\d+)/.exec(line)?.[1] ?? 32768), // OpenFlow's default priority is not printed
      packets: Number(/n_packets=(\d+)/.exec(line)?.[1] ?? 0),
      bytes: Number(/n_bytes=(\d+)/.exec(line)?.[1] ?? 0),
      ...(note && { note }),
      ...(inPort && { inPort: Number(inPort) }),
    });
  }
  return flows;
}

/** The system's OVS run directory (Debian's openvswitch-switch). */
const DEFAULT_RUN_DIR = "/var/run/openvswitch";

/** The system's OVSDB socket (Debian's openvswitch-switch). */
const DEFAULT_DB_SOCKET = "/var/run/openvswitch/db.sock";

/** What compile() reads of an interface row: its name, OpenFlow port number and iface-id. */
function rowFacts(i: OvsInterface): string {
  return JSON.stringify([i.name, i.ofport, i.externalIds["iface-id"] ?? null]);
}

/** What a driver committed to the ovs-vswitchd behind one connection (OvsDriver.committed). */
type Committed = { readonly connection: number; base: boolean; readonly units: Map<string, Unit> };

export class OvsDriver implements Driver {
  readonly name = "ovs" as const;
  readonly capabilities = OVS_CAPABILITIES;
  readonly layout: OvsLayout;
  readonly bridge: string;
  private readonly options: OvsDriverOptions;
  /** The long-lived OpenFlow connection bundles go through; ovs-ofctl is the fallback. */
  private readonly connection: OfConnection;
  /** Why the last bundle went through ovs-ofctl instead (undefined: the connection worked). */
  fallbackReason: string | undefined;
  /**
   * What this driver knows it committed to the ovs-vswitchd behind its connection (by the
   * connection's count): whether the base flows are there, and each unit it sent. A known unit is
   * changed by its difference (a one-port change: a few messages instead of ~40), and the base
   * flows are sent once. Forgotten on a new connection (perhaps a restarted ovs-vswitchd, which has
   * no flows), the ovs-ofctl fallback and removeAll(); a unit when observe() finds it otherwise
   * (its digest differs or it is gone), the base when observe() finds its classify flow gone.
   */
  private committed: Committed | undefined;
  /** Units observe() found written by an older vifguard (a cookie per kind): deleted kind by kind. */
  private legacy = new Set<string>();

  constructor(options: OvsDriverOptions) {
    this.options = options;
    this.bridge = options.bridge;
    const tableBase = options.tableBase ?? 0;
    if (!Number.isInteger(tableBase) || tableBase < 0 || tableBase + TABLE_COUNT > 254) throw new RangeError(`tableBase ${tableBase}: expected 0 to ${254 - TABLE_COUNT}`);
    const pass = options.pass ?? "normal";
    if (pass !== "normal" && pass.table >= tableBase && pass.table < tableBase + TABLE_COUNT) throw new RangeError(`pass table ${pass.table} is one of vifguard's tables ${tableBase}–${tableBase + TABLE_COUNT - 1}`);
    this.layout = { tableBase, pass, magic: magicFor(options.prefix ?? "vifguard"), portRegister: options.portRegister ?? 7 };
    this.connection = new OfConnection(join(options.runDir ?? DEFAULT_RUN_DIR, `${options.bridge}.mgmt`));
  }

  close(): void {
    this.connection.close();
  }

  /**
   * Sends one atomic bundle over the bridge's management socket: `opsFor(known)`, computed against
   * what this driver committed on the current connection (a connection that had to be made again
   * gets it computed anew), and returns that record for the caller to update. If the socket cannot
   * be used (missing, no permission, connection lost mid-bundle) or a flow is outside the encoder's
   * vocabulary, `ovs-ofctl --bundle` (and set-frags) sends `fallbackOps()` instead, which must not
   * depend on what was committed: every op is then idempotent, so a bundle that may or may not have
   * been committed is safe to send again. Returns undefined then, the record being forgotten.
   */
  private async sendBundle(opsFor: (known: Committed) => readonly BundleOp[], fallbackOps: () => readonly BundleOp[]): Promise<Committed | undefined> {
    if (this.options.transport === "ovs-ofctl") this.fallbackReason = "transport ovs-ofctl";
    for (let attempt = 0; this.options.transport !== "ovs-ofctl"; attempt++) {
      try {
        const connection = await this.connection.ready();
        if (this.committed?.connection !== connection) this.committed = { connection, base: false, units: new Map() };
        const known = this.committed;
        const ops = opsFor(known);
        await this.connection.bundle(
          ops.map((o) => (xid: number, headroom: number) => encodeOp(o, xid, headroom)),
          (i) => (ops[i] ? renderOps([ops[i]]).trim() : "request"),
          connection,
        );
        this.fallbackReason = undefined;
        return known;
      } catch (error) {
        if (error instanceof OpenFlowError) throw error; // refused: the atomic bundle changed nothing
        if (error instanceof StaleConnectionError && attempt === 0) continue;
        if (!(error instanceof OpenFlowConnectionError || error instanceof UnsupportedFlowError || error instanceof StaleConnectionError)) throw error;
        this.fallbackReason = error.message;
        break;
      }
    }
    this.committed = undefined;
    await this.sendThroughOfctl(fallbackOps());
    return undefined;
  }

  /** `changes` by their difference from what was committed, or whole through ovs-ofctl (sendBundle). */
  private async send(changes: ChangeSet): Promise<void> {
    const known = await this.sendBundle(
      (k) => changeOps(changes, this.layout, { base: !k.base, legacy: this.legacy, previous: k.units }),
      () => changeOps(changes, this.layout, { legacy: this.legacy }),
    );
    if (!known) return;
    known.base = true;
    for (const key of changes.remove) known.units.delete(key);
    for (const unit of changes.add) {
      if (unit.text === "") known.units.delete(unit.key);
      else known.units.set(unit.key, unit);
    }
  }

  private async sendThroughOfctl(ops: readonly BundleOp[]): Promise<void> {
    // In OVS's default fragment handling ("normal") every fragment's transport ports and ICMP type
    // read as 0, so an RA, or a DHCP server's reply, in a first fragment would pass the guards.
    // nx-match keeps them for first fragments. It is bridge state outside the flow table (a bundle
    // cannot carry it, a restarted vswitchd forgets it): set it with every apply, it is idempotent.
    // (The OpenFlow connection sets it once per connection, i.e. once per ovs-vswitchd.)
    await this.ofctl(["set-frags", this.bridge, "nx-match"]);
    const bundle = renderOps(ops);
    // ~420,000 flows (10,000 ports) take over a minute in one bundle on a small host: scale the timeout.
    await this.ofctl(["--bundle", "add-flows", this.bridge, "-"], { input: bundle, timeoutMs: Math.max(60_000, Math.ceil(bundle.length / 100)) });
  }

  private get env(): Record<string, string> {
    return this.options.runDir ? { OVS_RUNDIR: this.options.runDir } : {};
  }

  private runOptions(extra: RunOptions = {}): RunOptions {
    return { env: this.env, ...(this.options.netns && { netns: this.options.netns }), ...extra };
  }

  private ofctl(args: readonly string[], extra: RunOptions = {}): ReturnType<typeof run> {
    return run("ovs-ofctl", ["-O", "OpenFlow15", ...args], this.runOptions(extra));
  }

  private get dbSocket(): string | undefined {
    return this.options.dbSocket ?? (this.options.runDir ? join(this.options.runDir, "db.sock") : undefined);
  }

  /** The bridge's interfaces as device facts, from OVSDB. */
  async devices(): Promise<Device[]> {
    const db = this.dbSocket;
    return interfaceDevices(await readInterfaces({ env: this.env, ...(db && { db: `unix:${db}` }), ...(this.options.netns && { netns: this.options.netns }) }, this.bridge));
  }

  /**
   * The change feed. compile() needs each port's OpenFlow port number, and an interface created,
   * deleted or re-created (a VM started, stopped or restarted, a VIF re-plugged) gets or loses one:
   * an OVSDB monitor of the Interface table calls `onChange` when a row's name, ofport or iface-id
   * changes, so the sync that follows observes the new numbers. (Interfaces of other bridges cause
   * a sync that finds nothing to do.) Changes to vifguard's flows are found by the periodic check.
   */
  async watchChanges(onChange: () => void): Promise<DriverWatch> {
    const db = this.dbSocket ?? DEFAULT_DB_SOCKET;
    // ovsdb-server restarts (upgrades, crashes) end the monitor: reconnect with backoff. A
    // reconnected monitor's first rows are compared with the last rows seen, as any later update.
    const seen = new Map<string, string>();
    const changed = (rows: OvsInterface[]): void => {
      let differs = false;
      for (const row of rows) {
        const facts = row.ofport < 0 ? undefined : rowFacts(row); // deleted, or no OpenFlow port yet
        if (seen.get(row.name) !== facts) differs = true;
        if (facts === undefined) seen.delete(row.name);
        else seen.set(row.name, facts);
      }
      if (differs && !first) onChange();
    };
    let first = true;
    let closed = false;
    let retryMs = WATCH_RETRY_MS.first;
    let timer: NodeJS.Timeout | undefined;
    const connect = (): InterfaceWatch => {
      const watch = watchInterfaces(db, changed);
      watch.ready.then(() => {
        retryMs = WATCH_RETRY_MS.first;
        first = false;
      }, () => undefined);
      void watch.ended.then(() => {
        if (closed) return;
        timer = setTimeout(() => {
          if (!closed) current = connect();
        }, retryMs);
        retryMs = Math.min(retryMs * 2, WATCH_RETRY_MS.max);
      });
      return watch;
    };
    let current = connect();
    try {
      await current.ready;
    } catch (error) {
      closed = true;
      current.close();
      throw error;
    }
    return {
      close: () => {
        closed = true;
        clearTimeout(timer);
        current.close();
      },
    };
  }

  async probe(): Promise<HostFacts> {
    try {
      const version = (await run("ovs-ofctl", ["--version"], this.runOptions())).stdout.split("\n")[0] ?? "";
      const show = await this.ofctl(["show", this.bridge], { allowFailure: true });
      if (show.code !== 0) {
        throw new DriverUnavailableError("ovs", `bridge ${this.bridge} does not answer OpenFlow 1.5 (does it exist, and do its protocols include OpenFlow15?): ${show.stderr.trim()}`);
      }
      const devices = await this.devices();
      return {
        driver: "ovs",
        versions: { "ovs-ofctl": version.replace(/^.*\)\s*/, "") },
        notes: [`bridge ${this.bridge}, tables ${this.layout.tableBase}–${this.layout.tableBase + TABLE_COUNT - 1}, pass ${this.layout.pass === "normal" ? "NORMAL" : `table ${this.layout.pass.table}`}, ${devices.length} interfaces`],
      };
    } catch (error) {
      if (error instanceof DriverUnavailableError) throw error;
      throw new DriverUnavailableError("ovs", error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  compile(policies: readonly PlacedPolicy[], devices: readonly Device[]): UnitMap {
    return compileOvs(policies, devices, this.layout);
  }

  async apply(changes: ChangeSet): Promise<ApplyReport> {
    const started = performance.now();
    try {
      await this.send(changes);
      for (const key of [...changes.remove, ...changes.add.map((u) => u.key)]) this.legacy.delete(key);
    } catch (error) {
      const result = error instanceof CommandError ? error.result : undefined;
      throw new ApplyError({
        driver: "ovs",
        ports: [...changes.add.map((u) => u.port), ...changes.remove],
        command: result?.command ?? (error instanceof OpenFlowError ? `OpenFlow bundle on ${this.bridge}.mgmt` : "ovs-ofctl --bundle add-flows"),
        stderr: result?.stderr ?? String(error),
        cause: error,
      });
    }
    return {
      added: changes.add.filter((u) => u.text !== "").map((u) => u.key),
      removed: [...changes.remove],
      durationMs: performance.now() - started,
    };
  }

  private async dump(table?: number): Promise<DumpedFlow[]> {
    const filter = `${table === undefined ? "" : `table=${table},`}cookie=${allCookieMask(this.layout)}`;
    const { stdout } = await this.ofctl(["--no-names", "dump-flows", this.bridge, filter]);
    const tables = new Set(Array.from({ length: TABLE_COUNT }, (_, i) => this.layout.tableBase + i));
    return parseDump(stdout).filter((f) => tables.has(f.table));
  }

  async observe(): Promise<Observed> {
    const [devices, flows] = await Promise.all([this.devices(), this.dump(this.layout.tableBase + CLASSIFY)]);
    const units = new Map<string, Unit>();
    const legacy = new Set<string>();
    const baseCookie = BigInt(cookieOf(this.layout, "000000000000"));
    let base = false;
    for (const flow of flows) {
      if (flow.cookie === baseCookie && flow.priority === priorityOf(0)) base = true;
      const note = flow.note && parseNote(flow.note);
      if (!note) continue;
      // An older vifguard's unit never matches a compiled digest, so the plan replaces it.
      const older = flow.priority !== priorityOf(CLASSIFY_RANK);
      if (older) legacy.add(note.key);
      units.set(note.key, { key: note.key, port: note.key, digest: older ? `older ${note.digest}` : note.digest, text: "" });
    }
    this.legacy = legacy;
    if (this.committed) {
      if (!base) this.committed.base = false;
      for (const [key, unit] of this.committed.units) if (units.get(key)?.digest !== unit.digest) this.committed.units.delete(key);
    }
    return { units, devices };
  }

  async counters(): Promise<DropCounter[]> {
    const flows = await this.dump();
    const keys = new Map<bigint, string>();
    for (const f of flows) {
      const note = f.note && parseNote(f.note);
      if (note && f.priority === priorityOf(CLASSIFY_RANK)) keys.set(f.cookie, note.key); // an older vifguard's kinds are not in its priorities
    }
    const sums = new Map<string, DropCounter>();
    for (const f of flows) {
      const reason = guardOfPriority(f.priority);
      const port = keys.get(f.cookie);
      if (!reason || !port) continue;
      const id = `${port}\u0000${reason}`;
      const previous = sums.get(id);
      sums.set(id, { port, reason, packets: (previous?.packets ?? 0) + f.packets, bytes: (previous?.bytes ?? 0) + f.bytes });
    }
    return [...sums.values()].sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0));
  }

  async removeAll(): Promise<void> {
    const ops = removeAllOps(this.layout);
    await this.sendBundle(() => ops, () => ops);
    this.committed = undefined;
  }
}
