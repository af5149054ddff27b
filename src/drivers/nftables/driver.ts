// The nftables driver: installs, observes and counts vifguard's bridge-family table with `nft -f FILE`
// transactions and `nft -j list`. Effects (through host/run.ts, and a temp file per transaction).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FAIL_CLOSED_KEY, type ApplyReport, type Capabilities, type ChangeSet, type Device, type Driver, type DriverOptions, type DriverWatch, type DropCounter, type DroppedFrame, type DropSampler, type HostFacts, type Limitation, type Observed, type Unit, type UnitMap } from "../contract.ts";
import { ApplyError, DriverUnavailableError } from "../../errors.ts";
import { LinkReader, readLinks } from "../../host/links.ts";
import { readNflog } from "../../host/nflog.ts";
import { CommandError, run, type RunOptions } from "../../host/run.ts";
import { GUARDS } from "../../policy/guards.ts";
import type { PlacedPolicy } from "../../policy/port-policy.ts";
import { compileFailClosed, compileNftables, layoutFor, type NftLayout } from "./compile.ts";
import { dropCounters, observedUnits, parseListing, type Listing } from "./listing.ts";
import { guardOfLogPrefix, ND_WALK_END, NFLOG_GROUP, NOTHING_INSTALLED, renderRemoveAll, renderSkeleton, renderTransaction, SKELETON, type Installed, type Transaction } from "./render.ts";
import { NftSession } from "./session.ts";
import { watchNftables } from "./watch.ts";

/** What nft 1.0.6 on Linux 6.x cannot express exactly; each checked with real frames (test/dataplane/nftables.test.ts). */
export const NFT_LIMITATIONS: readonly Limitation[] = [
  {
    id: "nft-nd-option-reach",
    guard: "nd-spoof",
    description: `the kernel allows 16 levels of jump/goto, so ND options are walked (by their length fields, one chain per position) only up to byte ${ND_WALK_END} of the ICMPv6 message; an NS, NA or RS with an option starting at or beyond byte ${ND_WALK_END} is dropped as nd-spoof even when legitimate (fail closed, also at level mac): e.g. SEND's CGA and RSA options`,
  },
  {
    id: "nft-ipv6-ah",
    guard: "ra-guard",
    description: "the kernel's extension-header walk also crosses AH (51): an ICMPv6 or UDP message behind AH is checked by ra-guard, redirect-guard, nd-spoof and dhcpv6-server-guard, where the reference stops at AH and lets it pass",
  },
  {
    id: "nft-truncated-reason",
    guard: "malformed",
    description: "nft reads Ethernet padding and trailing bytes as packet bytes: an IPv6 payload length past the frame drops as ipv6-fragment when a first-fragment header is reachable; UDP/ICMPv6 headers cut short inside padding pass the length check to their field checks; behind IPv6 extension headers the ND option walk is bounded by the packet, not the payload length, so an option running past the message into trailing bytes is not caught",
    cases: ["first fragment without the upper-layer header"],
  },
];

export const NFT_CAPABILITIES: Capabilities = { guards: new Set(GUARDS), limitations: NFT_LIMITATIONS, atomicBatch: true };

export type NftablesDriverOptions = DriverOptions &
  Readonly<{
    /** Small transactions go through one long-lived `nft -i` (default true); false spawns `nft -f` for each. */
    session?: boolean;
  }>;

/** Transactions up to this size go through the session; larger ones (installs, the skeleton) through a file. */
const SESSION_MAX_CHARS = 64 * 1024;

/** Larger transactions need more time: ~100 ms per 10,000 lines, at least a minute. */
function timeoutFor(text: string): number {
  return Math.max(60_000, Math.ceil(text.length / 100));
}

export class NftablesDriver implements Driver {
  readonly name = "nftables" as const;
  readonly capabilities = NFT_CAPABILITIES;
  readonly layout: NftLayout;
  private readonly options: NftablesDriverOptions;
  /** What apply() last saw or made; refreshed by observe() and after a failed transaction. */
  private installed: Installed | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly session: NftSession | undefined;
  /** `nft -j -i` for listings (every sync lists the table; a plug waits for one): no process start each time. */
  private readonly lister: NftSession | undefined;
  /** `ip -j -batch -` for the links observe() reads, for the same reason. */
  private readonly links: LinkReader | undefined;
  /** Duration of the last nft transaction (ms), for benchmarks and logs. */
  lastTransactionMs = 0;

  constructor(options: NftablesDriverOptions = {}) {
    this.options = options;
    this.layout = layoutFor(options.prefix);
    if (options.session !== false) {
      this.session = new NftSession({ ...(options.netns && { netns: options.netns }) });
      this.lister = new NftSession({ ...(options.netns && { netns: options.netns }), json: true, timeoutMs: 120_000 });
      this.links = new LinkReader(options.netns);
    }
  }

  private runOptions(extra: RunOptions = {}): RunOptions {
    return { ...(this.options.netns && { netns: this.options.netns }), ...extra };
  }

  /** One operation at a time: apply() relies on what the previous one left. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.queue.then(work, work);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Runs an nft script from a temp file (Node gives children a socketpair: /dev/stdin cannot be opened). */
  private async runScript(text: string, extra: RunOptions = {}): Promise<number> {
    const dir = await mkdtemp(join(tmpdir(), "vifguard-nft-"));
    try {
      const file = join(dir, "batch.nft");
      await writeFile(file, text, { mode: 0o600 });
      const started = performance.now();
      await run("nft", ["-f", file], this.runOptions({ timeoutMs: timeoutFor(text), ...extra }));
      return performance.now() - started;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** The session for small element changes; a file for the skeleton and big batches. */
  private async runTransaction(tx: Transaction): Promise<number> {
    if (!this.session || tx.skeleton || tx.text.length > SESSION_MAX_CHARS) return this.runScript(tx.text);
    const started = performance.now();
    await this.session.run(tx.text);
    return performance.now() - started;
  }

  private async list(): Promise<Listing> {
    if (this.lister) {
      try {
        return parseListing(await this.lister.query(`list table bridge ${this.layout.table}`), this.layout);
      } catch (error) {
        if (error instanceof CommandError && /No such file or directory/.test(error.result.stderr)) return parseListing(undefined, this.layout);
        throw error;
      }
    }
    const result = await run("nft", ["-j", "list", "table", "bridge", this.layout.table], this.runOptions({ allowFailure: true, timeoutMs: 120_000 }));
    if (result.code !== 0) {
      if (/No such file or directory/.test(result.stderr)) return parseListing(undefined, this.layout);
      throw new CommandError(result);
    }
    return parseListing(result.stdout, this.layout);
  }

  async probe(): Promise<HostFacts> {
    try {
      const version = (await run("nft", ["--version"], this.runOptions())).stdout.trim();
      // A dry run of the whole skeleton: the kernel checks every expression, set type and hook.
      const dir = await mkdtemp(join(tmpdir(), "vifguard-nft-"));
      try {
        const file = join(dir, "probe.nft");
        await writeFile(file, renderSkeleton(this.layout), { mode: 0o600 });
        const check = await run("nft", ["--check", "-f", file], this.runOptions({ allowFailure: true }));
        if (check.code !== 0) throw new DriverUnavailableError("nftables", `the kernel or nft refuses vifguard's table (bridge family, concatenated interval sets, raw payloads): ${check.stderr.trim()}`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      return {
        driver: "nftables",
        versions: { nft: version.replace(/^nftables\s+/, "") },
        notes: [`table bridge ${this.layout.table}${this.options.netns ? ` in netns ${this.options.netns}` : ""}, skeleton ${SKELETON.version}`],
      };
    } catch (error) {
      if (error instanceof DriverUnavailableError) throw error;
      throw new DriverUnavailableError("nftables", error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  /** Rules match devices by name, so they go in before a device exists: `devices` changes nothing here. */
  compile(policies: readonly PlacedPolicy[], _devices: readonly Device[]): UnitMap {
    return compileNftables(policies, this.layout, SKELETON.version);
  }

  compileFailClosed(devices: readonly string[]): Unit {
    return compileFailClosed(devices, this.layout, SKELETON.version, FAIL_CLOSED_KEY);
  }

  apply(changes: ChangeSet): Promise<ApplyReport> {
    return this.serial(async () => {
      const started = performance.now();
      const ports = [...changes.add.map((u) => u.port), ...changes.remove];
      let installed = this.installed ?? (await this.list()).installed;
      for (let attempt = 1; ; attempt++) {
        const tx = renderTransaction(this.layout, installed, changes);
        try {
          if (tx.text) this.lastTransactionMs = await this.runTransaction(tx);
          this.installed = tx.after;
          break;
        } catch (error) {
          this.installed = undefined;
          // What we knew may be stale (a table deleted or elements changed by hand): read and retry once.
          if (attempt === 1 && error instanceof CommandError) {
            installed = (await this.list()).installed;
            continue;
          }
          const result = error instanceof CommandError ? error.result : undefined;
          throw new ApplyError({ driver: "nftables", ports, command: result?.command ?? "nft -f", stderr: result?.stderr ?? String(error), cause: error });
        }
      }
      return { added: changes.add.map((u) => u.key), removed: [...changes.remove], durationMs: performance.now() - started };
    });
  }

  observe(): Promise<Observed> {
    return this.serial(async () => {
      const [listing, devices] = await Promise.all([this.list(), this.links ? this.links.read() : readLinks(this.options.netns)]);
      this.installed = listing.installed;
      return { units: observedUnits(listing.installed, this.layout), devices };
    });
  }

  /** The change feed: `nft monitor` events that name vifguard's table. */
  watchChanges(onChange: () => void): Promise<DriverWatch> {
    return Promise.resolve(watchNftables({ table: this.layout.table, ...(this.options.netns && { netns: this.options.netns }) }, onChange));
  }

  /** Frames the drop chains log to NFLOG_GROUP (at most SAMPLES_PER_SECOND per device and guard), read by nflog-read.py. */
  sampleDrops(onFrame: (frame: DroppedFrame) => void): DropSampler {
    const reader = readNflog({ group: NFLOG_GROUP, ...(this.options.netns && { netns: this.options.netns }) }, (packet) => {
      const reason = guardOfLogPrefix(packet.prefix);
      if (reason && packet.inDevice !== undefined) onFrame({ reason, device: packet.inDevice, frame: packet.frame, timeMs: packet.timeMs });
    });
    return { close: reader.close, stopped: reader.exited.then((code) => `the NFLOG reader (python3 nflog-read.py ${NFLOG_GROUP}) exited ${code}`) };
  }

  counters(): Promise<DropCounter[]> {
    return this.serial(async () => dropCounters(await this.list()));
  }

  /** Ends the long-lived nft and ip processes (idle, it never keeps this process alive; it ends with it). */
  close(): void {
    this.session?.close();
    this.lister?.close();
    this.links?.close();
  }

  removeAll(): Promise<void> {
    return this.serial(async () => {
      await this.runScript(renderRemoveAll(this.layout));
      this.installed = NOTHING_INSTALLED;
    });
  }
}
