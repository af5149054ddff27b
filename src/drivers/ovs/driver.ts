// The Open vSwitch driver: installs, observes and counts vifguard's OpenFlow flows with ovs-ofctl
// bundles, and follows interfaces' OpenFlow port numbers in OVSDB. Effects (through host/run).
import { join } from "node:path";
import type { ApplyReport, Capabilities, ChangeSet, Driver, DriverOptions, DriverWatch, DropCounter, HostFacts, Limitation, Unit, UnitMap } from "../contract.ts";
import { ApplyError, DriverUnavailableError } from "../../errors.ts";
import { CommandError, run, type RunOptions } from "../../host/run.ts";
import { GUARDS } from "../../policy/guards.ts";
import type { PortPolicy } from "../../policy/port-policy.ts";
import { allCookieMask, CLASSIFY, compileOvs, guardOfKind, magicFor, parseNote, TABLE_COUNT, type OvsLayout, type PassAction } from "./compile.ts";
import { ofportMap, readInterfaces, watchInterfaces, type InterfaceWatch } from "./ovsdb.ts";
import { renderChanges, renderRemoveAll } from "./render.ts";

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
  }>;

/** What OpenFlow in OVS 3.1 cannot express exactly; each found with ofproto/trace (test/drivers/ovs/trace.test.ts). */
export const OVS_LIMITATIONS: readonly Limitation[] = [
  {
    id: "ovs-llc-snap",
    guard: "ethertype",
    description: "OVS parses LLC/SNAP frames whose SNAP type is IPv4, ARP or IPv6 as that ethertype: such a frame passes when its payload would (other 802.3 frames drop)",
  },
  {
    id: "ovs-nd-options",
    guard: "nd-spoof",
    description: "OVS reads one source and one target link-layer option of length 1 in NS/NA; an NS's target option, an NA's source option, options of another length and RS options are not checked (repeated options are caught: OVS clears the target)",
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
  },
];

export const OVS_CAPABILITIES: Capabilities = { guards: new Set(GUARDS), limitations: OVS_LIMITATIONS, atomicBatch: true };

type DumpedFlow = Readonly<{ cookie: bigint; table: number; packets: number; bytes: number; note?: string; inPort?: number }>;

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
      packets: Number(/n_packets=(\d+)/.exec(line)?.[1] ?? 0),
      bytes: Number(/n_bytes=(\d+)/.exec(line)?.[1] ?? 0),
      ...(note && { note }),
      ...(inPort && { inPort: Number(inPort) }),
    });
  }
  return flows;
}

/** The system's OVSDB socket (Debian's openvswitch-switch). */
const DEFAULT_DB_SOCKET = "/var/run/openvswitch/db.sock";

function sameNumbers(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  return a.size === b.size && [...a].every(([name, ofport]) => b.get(name) === ofport);
}

export class OvsDriver implements Driver {
  readonly name = "ovs" as const;
  readonly capabilities = OVS_CAPABILITIES;
  readonly layout: OvsLayout;
  readonly bridge: string;
  private readonly options: OvsDriverOptions;
  private ofports: ReadonlyMap<string, number> = new Map();
  private readsStarted = 0;
  private readApplied = 0;

  constructor(options: OvsDriverOptions) {
    this.options = options;
    this.bridge = options.bridge;
    const tableBase = options.tableBase ?? 0;
    if (!Number.isInteger(tableBase) || tableBase < 0 || tableBase + TABLE_COUNT > 254) throw new RangeError(`tableBase ${tableBase}: expected 0 to ${254 - TABLE_COUNT}`);
    const pass = options.pass ?? "normal";
    if (pass !== "normal" && pass.table >= tableBase && pass.table < tableBase + TABLE_COUNT) throw new RangeError(`pass table ${pass.table} is one of vifguard's tables ${tableBase}–${tableBase + TABLE_COUNT - 1}`);
    this.layout = { tableBase, pass, magic: magicFor(options.prefix ?? "vifguard"), portRegister: options.portRegister ?? 7 };
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

  /**
   * Re-reads the interfaces of the bridge; compile() uses their ofports. Reads overlap (the change
   * feed's and observe()'s): a read that started earlier never replaces the result of a later one.
   */
  async refreshPorts(): Promise<ReadonlyMap<string, number>> {
    const read = ++this.readsStarted;
    const db = this.dbSocket;
    const interfaces = await readInterfaces({ env: this.env, ...(db && { db: `unix:${db}` }), ...(this.options.netns && { netns: this.options.netns }) }, this.bridge);
    if (read > this.readApplied) {
      this.readApplied = read;
      this.ofports = ofportMap(interfaces);
    }
    return this.ofports;
  }

  /** The device → ofport map compile() uses now. */
  get portNumbers(): ReadonlyMap<string, number> {
    return this.ofports;
  }

  /**
   * The agent's change feed. compile() needs each port's OpenFlow port number, and an interface
   * re-created (a VM restarted, a VIF re-plugged) usually gets another: its flows then match a port
   * that is gone. An OVSDB monitor of the Interface table re-reads the port map on every change and
   * calls `onChange` when the map differs, after updating it, so the compile() of the sync that
   * follows uses the new numbers. (Flows outlive a deleted port: one re-added under its old number
   * needs nothing. Interfaces of other bridges change nothing here.)
   */
  async watchChanges(onChange: () => void): Promise<DriverWatch> {
    const db = this.dbSocket ?? DEFAULT_DB_SOCKET;
    const changed = (): void => {
      const before = this.ofports;
      const done = (): void => {
        if (!sameNumbers(before, this.ofports)) onChange();
      };
      void this.refreshPorts().then(done, onChange); // a failed read: the sync reports the problem
    };
    // ovsdb-server restarts (upgrades, crashes) end the monitor: reconnect with backoff, and let the
    // new monitor's first rows, compared with the map we had, tell whether anything moved meanwhile.
    let closed = false;
    let retryMs = WATCH_RETRY_MS.first;
    let timer: NodeJS.Timeout | undefined;
    const connect = (): InterfaceWatch => {
      const watch = watchInterfaces(db, changed);
      watch.ready.then(() => (retryMs = WATCH_RETRY_MS.first), () => undefined);
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
      await this.refreshPorts();
      return {
        driver: "ovs",
        versions: { "ovs-ofctl": version.replace(/^.*\)\s*/, "") },
        notes: [`bridge ${this.bridge}, tables ${this.layout.tableBase}–${this.layout.tableBase + TABLE_COUNT - 1}, pass ${this.layout.pass === "normal" ? "NORMAL" : `table ${this.layout.pass.table}`}, ${this.ofports.size} port names known`],
      };
    } catch (error) {
      if (error instanceof DriverUnavailableError) throw error;
      throw new DriverUnavailableError("ovs", error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  compile(policies: readonly PortPolicy[]): UnitMap {
    return compileOvs(policies, this.ofports, this.layout);
  }

  async apply(changes: ChangeSet): Promise<ApplyReport> {
    const started = performance.now();
    const bundle = renderChanges(changes, this.layout);
    try {
      // In OVS's default fragment handling ("normal") every fragment's transport ports and ICMP type
      // read as 0, so an RA, or a DHCP server's reply, in a first fragment would pass the guards.
      // nx-match keeps them for first fragments. It is bridge state outside the flow table (a bundle
      // cannot carry it, a restarted vswitchd forgets it): set it with every apply, it is idempotent.
      await this.ofctl(["set-frags", this.bridge, "nx-match"]);
      // ~420,000 flows (10,000 ports) take over a minute in one bundle on a small host: scale the timeout.
      const lines = Math.ceil(bundle.length / 100);
      await this.ofctl(["--bundle", "add-flows", this.bridge, "-"], { input: bundle, timeoutMs: Math.max(60_000, lines) });
    } catch (error) {
      const result = error instanceof CommandError ? error.result : undefined;
      throw new ApplyError({
        driver: "ovs",
        ports: [...changes.add.map((u) => u.port), ...changes.remove],
        command: result?.command ?? "ovs-ofctl --bundle add-flows",
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

  async observe(): Promise<UnitMap> {
    await this.refreshPorts();
    const units = new Map<string, Unit>();
    for (const flow of await this.dump(this.layout.tableBase + CLASSIFY)) {
      const note = flow.note && parseNote(flow.note);
      if (note) units.set(note.key, { key: note.key, port: note.key, digest: note.digest, text: "" });
    }
    return units;
  }

  async counters(): Promise<DropCounter[]> {
    const flows = await this.dump();
    const keys = new Map<bigint, string>();
    const unitBits = ~0xffn & 0xffffffffffffffffn;
    for (const f of flows) {
      const note = f.note && parseNote(f.note);
      if (note) keys.set(f.cookie & unitBits, note.key);
    }
    const sums = new Map<string, DropCounter>();
    for (const f of flows) {
      const reason = guardOfKind(Number(f.cookie & 0xffn));
      const port = keys.get(f.cookie & unitBits);
      if (!reason || !port) continue;
      const id = `${port}\u0000${reason}`;
      const previous = sums.get(id);
      sums.set(id, { port, reason, packets: (previous?.packets ?? 0) + f.packets, bytes: (previous?.bytes ?? 0) + f.bytes });
    }
    return [...sums.values()].sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0));
  }

  async removeAll(): Promise<void> {
    await this.ofctl(["--bundle", "add-flows", this.bridge, "-"], { input: renderRemoveAll(this.layout) });
  }
}
