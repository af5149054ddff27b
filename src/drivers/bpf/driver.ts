// The bpf driver: vifguard.bpf.c attached to each port's tap (clsact ingress: from the VM; egress: to
// the VM), its maps filled in batches (`bpftool batch file`, one process per apply), read back with
// `bpftool map dump -j`. Programs and maps are pinned on a bpffs of their own (`bpffs`/<prefix>),
// mounted there if need be: `ip netns exec` remounts /sys, so /sys/fs/bpf is not the same inside a
// namespace. The object is built with clang on first use and cached by the source's hash. Effects.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { FAIL_CLOSED_KEY, type ApplyReport, type Capabilities, type ChangeSet, type Device, type Driver, type DriverOptions, type DriverWatch, type DropCounter, type HostFacts, type Limitation, type Observed, type Unit, type UnitMap } from "../contract.ts";
import { ApplyError, DriverUnavailableError } from "../../errors.ts";
import { followChanges } from "../../host/follow.ts";
import { readLinks } from "../../host/links.ts";
import { CommandError, run, type RunOptions, type RunResult } from "../../host/run.ts";
import { GUARDS } from "../../policy/guards.ts";
import type { PlacedPolicy } from "../../policy/port-policy.ts";
import { COUNTS_MAP, compileBpf, compileFailClosed, MAP_NAMES, matchesPattern, observedUnits, ownerOf, parseEntryLine, patternOf, portIdOf, type MapName } from "./compile.ts";

/** None: every case of the kit is enforced as the reference evaluator says. */
export const BPF_LIMITATIONS: readonly Limitation[] = [];
export const BPF_CAPABILITIES: Capabilities = { guards: new Set(GUARDS), limitations: BPF_LIMITATIONS, atomicBatch: false };

export const DEFAULT_BPFFS = "/run/vifguard/bpf";
export const DEFAULT_CACHE = "/var/cache/vifguard/bpf";
/** The tc filter priority of vifguard's programs on a tap (both directions). */
const TC_PREF = "49000";
const SOURCE = join(dirname(fileURLToPath(import.meta.url)), "vifguard.bpf.c");
let sourceHash: string | undefined;
/**
 * The program's version: pins live under it, so an upgraded program comes with fresh maps (filled by
 * the next apply). Read on first use, so that importing the registry never needs the C source.
 */
function programVersion(): string {
  if (sourceHash === undefined) {
    let source: Buffer;
    try {
      source = readFileSync(SOURCE);
    } catch (error) {
      throw new DriverUnavailableError("bpf", `the program's source ${SOURCE} is missing (a build must ship it beside driver.js)`, { cause: error });
    }
    sourceHash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  }
  return sourceHash;
}

export type BpfDriverOptions = DriverOptions & Readonly<{ bpffs?: string; cacheDir?: string }>;

type State = Map<string, Map<string, string>>; // map name → key hex → value hex
type Attachment = { ingress: boolean; egress: boolean };

const spaced = (h: string): string => h.replace(/(..)(?!$)/g, "$1 ");
const unhex = (xs: readonly string[]): string => xs.map((x) => x.replace(/^0x/, "").padStart(2, "0")).join("");

export class BpfDriver implements Driver {
  readonly name = "bpf" as const;
  readonly capabilities = BPF_CAPABILITIES;
  private readonly options: BpfDriverOptions;
  /** `bpffs`/<prefix>: every version's pins; removeAll() takes it all. */
  readonly prefixDir: string;
  /** `bpffs`/<prefix>/<source hash>: this version's programs (prog/) and maps (maps/). */
  get pinDir(): string {
    return join(this.prefixDir, programVersion());
  }
  private state: State | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Duration of the last `bpftool batch` (ms), for benchmarks. */
  lastBatchMs = 0;

  constructor(options: BpfDriverOptions = {}) {
    this.options = options;
    this.prefixDir = join(options.bpffs ?? DEFAULT_BPFFS, options.prefix ?? "vifguard");

  }

  private mapPath(name: string): string {
    return join(this.pinDir, "maps", name);
  }
  private progPath(name: "from_vm" | "to_vm"): string {
    return join(this.pinDir, "prog", name);
  }

  /** In the driver's namespace but our mount namespace (the bpffs): nsenter, not `ip netns exec`. */
  private inNetns(command: string, args: readonly string[], extra: RunOptions = {}): Promise<RunResult> {
    if (!this.options.netns) return run(command, args, extra);
    return run("nsenter", [`--net=/run/netns/${this.options.netns}`, command, ...args], extra);
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** The object file for the current source, built with clang unless cached. */
  async buildObject(): Promise<string> {
    const dir = this.options.cacheDir ?? DEFAULT_CACHE;
    const object = join(dir, `vifguard-${programVersion()}.bpf.o`);
    if (existsSync(object)) return object;
    await mkdir(dir, { recursive: true });
    const arch = (await run("uname", ["-m"])).stdout.trim();
    const partial = `${object}.${process.pid}.tmp`;
    try {
      await run("clang", ["-O2", "-g", "-target", "bpf", `-I/usr/include/${arch}-linux-gnu`, "-c", SOURCE, "-o", partial], { timeoutMs: 120_000 });
    } catch (error) {
      throw new DriverUnavailableError("bpf", `clang could not build ${SOURCE} (Debian: apt-get install clang libbpf-dev): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    await rename(partial, object);
    return object;
  }

  /** Mounts a bpffs at the pin root unless one is there. */
  private async ensureBpffs(): Promise<void> {
    const root = dirname(this.prefixDir);
    await mkdir(root, { recursive: true });
    const type = (await run("stat", ["-f", "-c", "%T", root])).stdout.trim();
    if (type !== "bpf_fs") await run("mount", ["-t", "bpf", "bpf", root]);
  }

  /** Loads and pins the programs and maps, unless pinned already (the maps then keep their entries). */
  private async ensureLoaded(): Promise<void> {
    if (existsSync(this.progPath("from_vm")) && existsSync(this.progPath("to_vm")) && MAP_NAMES.every((m) => existsSync(this.mapPath(m)))) return;
    const object = await this.buildObject();
    await this.ensureBpffs();
    // Another version's pins go (programs still attached stay loaded until the first apply replaces them).
    await rm(this.prefixDir, { recursive: true, force: true });
    await mkdir(this.pinDir, { recursive: true });
    await run("bpftool", ["prog", "loadall", object, join(this.pinDir, "prog"), "pinmaps", join(this.pinDir, "maps"), "type", "classifier"], { timeoutMs: 120_000 });
    this.state = undefined;
  }

  private async dump(name: string): Promise<Map<string, string>> {
    const entries = new Map<string, string>();
    if (!existsSync(this.mapPath(name))) return entries;
    const out = (await run("bpftool", ["-j", "map", "dump", "pinned", this.mapPath(name)], { timeoutMs: 120_000 })).stdout;
    for (const e of JSON.parse(out || "[]") as { key: string[]; value: string[] }[]) entries.set(unhex(e.key), unhex(e.value));
    return entries;
  }

  private async read(): Promise<State> {
    const state: State = new Map();
    for (const name of MAP_NAMES) state.set(name, await this.dump(name));
    return state;
  }

  /**
   * Where our programs are attached, among `devices` (by ifindex): one `tc -j -batch` of `filter
   * show` per device and direction (`bpftool net show` asks every device of the namespace, minutes
   * at 10,000 taps). A device gone meanwhile fails its command, which prints nothing: skipped.
   */
  private async attachments(devices: readonly Device[]): Promise<Map<number, Attachment>> {
    const found = new Map<number, Attachment>();
    const present = devices.filter((d): d is Device & { ifindex: number } => d.ifindex !== undefined);
    if (!existsSync(this.progPath("from_vm")) || present.length === 0) return found;
    const idOf = async (p: "from_vm" | "to_vm") => (JSON.parse((await run("bpftool", ["-j", "prog", "show", "pinned", this.progPath(p)])).stdout) as { id: number }).id;
    const ids = { ingress: await idOf("from_vm"), egress: await idOf("to_vm") };
    const commands = present.flatMap((d) => (["ingress", "egress"] as const).map((direction) => ({ d, direction, line: `filter show dev ${d.name} ${direction}` })));
    let result: RunResult | undefined;
    await this.withFile("show.batch", commands.map((c) => c.line), async (file) => {
      result = await this.inNetns("tc", ["-j", "-force", "-batch", file], { allowFailure: true, timeoutMs: Math.max(60_000, commands.length * 5) });
    });
    const failed = new Set([...result!.stderr.matchAll(/Command failed \S+:(\d+)/g)].map((m) => Number(m[1])));
    const outputs = result!.stdout.split("\n").filter((l) => l.startsWith("["));
    let next = 0;
    commands.forEach((c, i) => {
      if (failed.has(i + 1)) return;
      const filters = JSON.parse(outputs[next++] ?? "[]") as { pref?: number; options?: { prog?: { id?: number } } }[];
      const ours = filters.some((f) => String(f.pref) === TC_PREF && f.options?.prog?.id === ids[c.direction]);
      const a = found.get(c.d.ifindex) ?? { ingress: false, egress: false };
      a[c.direction] ||= ours;
      found.set(c.d.ifindex, a);
    });
    return found;
  }

  /** The devices that may carry our programs: the ports' (by ifindex) and those a fail-closed pattern matches. */
  private static ofInterest(state: State, devices: readonly Device[]): Device[] {
    const owners = new Set([...state.get("vg_ports")!.keys()].map((key) => ownerOf({ map: "vg_ports", key })!));
    const patterns = [...state.get("vg_failclosed")!.keys()].map(patternOf);
    return devices.filter((d) => d.ifindex !== undefined && (owners.has(d.ifindex) || patterns.some((p) => matchesPattern(d.name, p))));
  }

  async probe(): Promise<HostFacts> {
    try {
      const bpftool = (await run("bpftool", ["version"])).stdout.split("\n")[0]!.trim();
      const clang = (await run("clang", ["--version"])).stdout.split("\n")[0]!.trim();
      await this.buildObject();
      await this.ensureLoaded(); // the verifier checks the program here, not at the first apply
      return { driver: "bpf", versions: { bpftool: bpftool.replace(/^bpftool\s+/, ""), clang }, notes: [`programs and maps pinned in ${this.pinDir}${this.options.netns ? `, taps in netns ${this.options.netns}` : ""}`] };
    } catch (error) {
      if (error instanceof DriverUnavailableError) throw error;
      throw new DriverUnavailableError("bpf", error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  compile(policies: readonly PlacedPolicy[], devices: readonly Device[]): UnitMap {
    return compileBpf(policies, devices);
  }

  compileFailClosed(devices: readonly string[]): Unit {
    return compileFailClosed(devices, FAIL_CLOSED_KEY);
  }

  apply(changes: ChangeSet): Promise<ApplyReport> {
    return this.serial(async () => {
      const started = performance.now();
      const ports = [...changes.add.map((u) => u.port), ...changes.remove];
      for (let attempt = 1; ; attempt++) {
        try {
          await this.ensureLoaded();
          this.state = await this.applyOnce(this.state ?? (await this.read()), changes);
          break;
        } catch (error) {
          this.state = undefined;
          // What we knew may be stale (maps changed or unpinned by hand): read again and retry once.
          if (attempt === 1 && error instanceof CommandError) continue;
          const result = error instanceof CommandError ? error.result : undefined;
          throw new ApplyError({ driver: "bpf", ports, command: result?.command ?? "bpftool batch", stderr: result?.stderr ?? String(error), cause: error });
        }
      }
      return { added: changes.add.map((u) => u.key), removed: [...changes.remove], durationMs: performance.now() - started };
    });
  }

  private async applyOnce(state: State, changes: ChangeSet): Promise<State> {
    const desired: State = new Map([...state].map(([name, entries]) => [name, new Map(entries)]));
    const ifindexOfPort = new Map([...state.get("vg_ports")!].map(([key, value]) => [portIdOf(value), ownerOf({ map: "vg_ports", key })!]));
    // Each device's entries, indexed once: a lookup per port, not a scan of every map per port.
    const byOwner = new Map<number, { map: MapName; key: string }[]>();
    const own = (map: MapName, key: string): void => {
      const owner = ownerOf({ map, key })!;
      const list = byOwner.get(owner);
      if (list) list.push({ map, key });
      else byOwner.set(owner, [{ map, key }]);
    };
    for (const name of MAP_NAMES) if (name !== "vg_failclosed") for (const key of desired.get(name)!.keys()) own(name, key);
    const dropOwner = (ifindex: number): void => {
      for (const { map, key } of byOwner.get(ifindex) ?? []) desired.get(map)!.delete(key);
      byOwner.delete(ifindex);
    };
    const fresh = new Set<number>(); // ifindexes whose port is new there: its counters start at zero
    const touched = new Set<number>(); // devices of the ports this apply adds, changes or removes
    for (const key of changes.remove) {
      if (key === FAIL_CLOSED_KEY) desired.get("vg_failclosed")!.clear();
      else if (ifindexOfPort.has(key)) {
        touched.add(ifindexOfPort.get(key)!);
        dropOwner(ifindexOfPort.get(key)!);
        fresh.add(ifindexOfPort.get(key)!);
      }
    }
    for (const unit of changes.add) {
      if (unit.awaitingDevice) continue;
      if (unit.key === FAIL_CLOSED_KEY) desired.get("vg_failclosed")!.clear();
      const entries = unit.text.split("\n").filter(Boolean).map(parseEntryLine);
      const port = entries.find((e) => e.map === "vg_ports");
      const old = ifindexOfPort.get(unit.key);
      if (old !== undefined) {
        touched.add(old);
        dropOwner(old);
      }
      if (port) {
        // What the device held before (this port's old entries, or another port's) goes first.
        const ifindex = ownerOf(port)!;
        const before = state.get("vg_ports")!.get(port.key);
        if (before === undefined || portIdOf(before) !== unit.key) fresh.add(ifindex);
        touched.add(ifindex);
        dropOwner(ifindex);
      }
      for (const e of entries) {
        desired.get(e.map)!.set(e.key, e.value);
        if (e.map !== "vg_failclosed") own(e.map, e.key);
      }
    }
    // Entries of no port (a batch cut short) go too.
    const owners = new Set([...desired.get("vg_ports")!.keys()].map((key) => ownerOf({ map: "vg_ports", key })!));
    for (const name of MAP_NAMES) {
      if (name === "vg_failclosed" || name === "vg_ports") continue;
      for (const key of [...desired.get(name)!.keys()]) if (!owners.has(ownerOf({ map: name, key })!)) desired.get(name)!.delete(key);
    }

    // Devices: which taps carry the programs after this apply. Only the touched ports' devices and
    // those a (new or old) fail-closed pattern matches are asked: a one-port change stays small at
    // 10,000 taps, and observe() checks every port's device (a missing program is drift, re-applied).
    const devices = await readLinks(this.options.netns);
    const patterns = [...desired.get("vg_failclosed")!.keys()].map(patternOf);
    const oldPatterns = [...state.get("vg_failclosed")!.keys()].map(patternOf);
    const interest = devices.filter((d) => d.ifindex !== undefined && (touched.has(d.ifindex) || [...patterns, ...oldPatterns].some((p) => matchesPattern(d.name, p))));
    const attached = await this.attachments(interest);
    const wanted = new Set<number>(owners);
    for (const d of devices) if (d.ifindex !== undefined && patterns.some((p) => matchesPattern(d.name, p))) wanted.add(d.ifindex);
    const nameOf = new Map(devices.flatMap((d) => (d.ifindex !== undefined ? [[d.ifindex, d.name] as const] : [])));

    // Detach first what no port or pattern keeps (its traffic flows unfiltered again, as when nft rules go).
    const detach = [...attached.entries()].filter(([i, a]) => (a.ingress || a.egress) && !wanted.has(i) && nameOf.has(i)).map(([i]) => i);
    await this.tcBatch(detach.flatMap((i) => [`filter del dev ${nameOf.get(i)} ingress pref ${TC_PREF}`, `filter del dev ${nameOf.get(i)} egress pref ${TC_PREF}`]), true);

    // The maps: additions and changes (bindings before their port's entry), then removals (port entries first).
    const lines: string[] = [];
    const update = (name: MapName, key: string, value: string) => lines.push(`map update pinned ${this.mapPath(name)} key hex ${spaced(key)} value hex ${spaced(value)}`);
    const remove = (name: string, key: string) => lines.push(`map delete pinned ${this.mapPath(name)} key hex ${spaced(key)}`);
    const order: MapName[] = ["vg_macs", "vg_bind4", "vg_bind6", "vg_lpm4", "vg_lpm6", "vg_failclosed", "vg_ports"];
    for (const name of order) for (const [key, value] of desired.get(name)!) if (state.get(name)!.get(key) !== value) update(name, key, value);
    for (const name of [...order].reverse()) for (const key of state.get(name)!.keys()) if (!desired.get(name)!.has(key)) remove(name, key);
    if (fresh.size > 0) for (const key of (await this.dump(COUNTS_MAP)).keys()) if (fresh.has(ownerOf({ map: "vg_ports", key })!)) remove(COUNTS_MAP, key);
    if (lines.length > 0) await this.bpftoolBatch(lines);

    // Then attach the programs where they are missing (replacing is harmless: same pref and handle).
    const attach = interest.map((d) => d.ifindex!).filter((i) => wanted.has(i) && !(attached.get(i)?.ingress && attached.get(i)?.egress));
    await this.tcBatch(
      attach.flatMap((i) => [
        `qdisc replace dev ${nameOf.get(i)} clsact`,
        `filter replace dev ${nameOf.get(i)} ingress pref ${TC_PREF} handle 1 bpf da pinned ${this.progPath("from_vm")}`,
        `filter replace dev ${nameOf.get(i)} egress pref ${TC_PREF} handle 1 bpf da pinned ${this.progPath("to_vm")}`,
      ]),
      false,
    );
    return desired;
  }

  private async withFile(name: string, lines: readonly string[], use: (file: string) => Promise<unknown>): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), "vifguard-bpf-"));
    try {
      const file = join(dir, name);
      await writeFile(file, lines.join("\n") + "\n", { mode: 0o600 });
      await use(file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async bpftoolBatch(lines: readonly string[]): Promise<void> {
    const started = performance.now();
    await this.withFile("maps.batch", lines, (file) => run("bpftool", ["batch", "file", file], { timeoutMs: Math.max(60_000, lines.length * 10) }));
    this.lastBatchMs = performance.now() - started;
  }

  /** `tc -batch` in the namespace; `force`: go on past errors (a device gone meanwhile). */
  private async tcBatch(lines: readonly string[], force: boolean): Promise<void> {
    if (lines.length === 0) return;
    await this.withFile("tc.batch", lines, (file) => this.inNetns("tc", [...(force ? ["-force"] : []), "-batch", file], { timeoutMs: Math.max(60_000, lines.length * 20), allowFailure: force }));
  }

  observe(): Promise<Observed> {
    return this.serial(async () => {
      const [state, devices] = [await this.read(), await readLinks(this.options.netns)];
      const attached = await this.attachments(BpfDriver.ofInterest(state, devices));
      this.state = state;
      return { units: observedUnits(state, (i) => attached.get(i)?.ingress === true && attached.get(i)?.egress === true, devices), devices };
    });
  }

  counters(): Promise<DropCounter[]> {
    return this.serial(async () => {
      const ports = await this.dump("vg_ports");
      const counts = await this.dump(COUNTS_MAP);
      const result: DropCounter[] = [];
      const le64 = (h: string): number => Number(BigInt(`0x${(h.match(/../g) ?? []).reverse().join("") || "0"}`));
      for (const [key, value] of counts) {
        const port = ports.get(key.slice(0, 8));
        const reason = GUARDS[ownerOf({ map: "vg_ports", key: key.slice(8, 16) })!];
        if (port === undefined || reason === undefined) continue;
        result.push({ port: portIdOf(port), reason, packets: le64(value.slice(0, 16)), bytes: le64(value.slice(16, 32)) });
      }
      return result;
    });
  }

  /** The change feed: links appearing, going or changing in the driver's namespace (`ip monitor link`). */
  watchChanges(onChange: () => void): Promise<DriverWatch> {
    return Promise.resolve(followChanges("ip", ["-o", "monitor", "link"], { ...(this.options.netns && { netns: this.options.netns }) }, () => true, onChange));
  }

  removeAll(): Promise<void> {
    return this.serial(async () => {
      // A namespace already gone took its taps (and their filters) with it: only the pins are left.
      const netnsGone = this.options.netns !== undefined && !existsSync(`/run/netns/${this.options.netns}`);
      if (existsSync(this.progPath("from_vm")) && !netnsGone) {
        const devices = await readLinks(this.options.netns);
        const attached = await this.attachments(BpfDriver.ofInterest(await this.read(), devices));
        const nameOf = new Map(devices.flatMap((d) => (d.ifindex !== undefined ? [[d.ifindex, d.name] as const] : [])));
        const lines = [...attached.entries()].filter(([i, a]) => (a.ingress || a.egress) && nameOf.has(i)).flatMap(([i]) => [`filter del dev ${nameOf.get(i)} ingress pref ${TC_PREF}`, `filter del dev ${nameOf.get(i)} egress pref ${TC_PREF}`]);
        await this.tcBatch(lines, true);
      }
      await rm(this.prefixDir, { recursive: true, force: true }); // unpinning frees the maps and programs
      this.state = undefined;
    });
  }
}
