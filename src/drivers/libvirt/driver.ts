// The libvirt nwfilter driver: defines vifguard's shared filters, and per port its own filter and a
// binding of its device to it, through one virsh shell session per batch; observes bindings, reads
// ebtables drop counters. Effects (through host/run; temp files for virsh, which cannot read /dev/stdin).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ApplyReport, Capabilities, ChangeSet, Device, Driver, DriverOptions, DriverWatch, DropCounter, HostFacts, Limitation, Observed, Unit, UnitMap } from "../contract.ts";
import { ApplyError, DriverUnavailableError } from "../../errors.ts";
import { followChanges } from "../../host/follow.ts";
import { readLinks } from "../../host/links.ts";
import { CommandError, run } from "../../host/run.ts";
import { GUARDS, type Guard } from "../../policy/guards.ts";
import type { PlacedPolicy } from "../../policy/port-policy.ts";
import { compileLibvirt, filterSet, portFilterName, STOCK_FILTERS, unitDocuments } from "./compile.ts";
import { NWFILTER_URI } from "./daemon.ts";
import {
  canonicalFilter,
  instantiatedDevices,
  ourAttachments,
  parseAttachmentList,
  parseDropCounters,
  parseFilterDumps,
  parseFilterNames,
  parsePortFilters,
  renderApply,
  virshErrors,
  virshQuote,
  type InstalledAttachment,
} from "./render.ts";

export type LibvirtDriverOptions = DriverOptions &
  Readonly<{
    /** libvirt connection URI; default nwfilter:///system. */
    uri?: string;
  }>;

/** What libvirt 9 nwfilter over ebtables cannot express exactly (each seen with real frames: test/dataplane/libvirt.test.ts). */
export const LIBVIRT_LIMITATIONS: readonly Limitation[] = [
  {
    id: "libvirt-arp-mac-level-mac",
    guard: "arp-spoof",
    description: "at level mac (stock no-arp-mac-spoofing) the ARP sender hardware address must be one of the port's MACs, not the frame's own source MAC; ARP that is not Ethernet/IPv4 drops where the reference lets it pass",
  },
  {
    id: "libvirt-icmpv6-fragments",
    guard: "ipv6-fragment",
    description: "only ICMPv6 is checked for a readable upper-layer header (so RA and redirect cannot hide in a later fragment); the kernel's extension-header walk behind --ip6-proto is bounded by the frame, not by the IPv6 payload length, so a first fragment whose header chain stops before the upper-layer header, or is cut inside its last extension header, passes when any bytes follow the payload (Ethernet padding of a short frame is enough); with ebtables-nft a non-first fragment of an ICMPv6 datagram drops (its type cannot be read)",
    cases: ["first fragment without the upper-layer header"],
  },
  {
    id: "libvirt-to-vm-multicast",
    guard: "not-for-this-port",
    description: "libvirt accepts only contiguous MAC masks, so the group bit cannot be matched: broadcast, 01:xx:xx:xx:xx:xx and 33:33:xx:xx:xx:xx pass to the guest, multicast with another first octet (03:…, 09:00:2b:…) drops",
  },
  {
    id: "libvirt-malformed",
    guard: "malformed",
    description: "ebtables does not report truncated headers: a truncated ARP or IPv6 header chain drops under arp-spoof or ipv6-fragment, a truncated IPv4 header is judged by its addresses",
  },
];

/** nd-spoof is absent: ebtables cannot read an NA's target or any ND link-layer option. */
export const LIBVIRT_GUARDS: ReadonlySet<Guard> = new Set(GUARDS.filter((g) => g !== "nd-spoof"));

export const LIBVIRT_CAPABILITIES: Capabilities = { guards: LIBVIRT_GUARDS, limitations: LIBVIRT_LIMITATIONS, atomicBatch: false };

/**
 * Lists ebtables rules. ebtables-nft fails a listing now and then while libvirt changes the same
 * table (seen: "RULE_DELETE failed (No such file or directory)" while another binding was being
 * deleted), so a failed listing is tried again a few times before it counts.
 */
async function listEbtables(args: readonly string[], attempts = 5): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await run("ebtables", args)).stdout;
    } catch (error) {
      if (!(error instanceof CommandError) || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    }
  }
}

export class LibvirtDriver implements Driver {
  readonly name = "libvirt" as const;
  readonly capabilities = LIBVIRT_CAPABILITIES;
  readonly prefix: string;
  readonly uri: string;
  private readonly netns: string | undefined;
  private filtersCurrent = false;

  constructor(options: LibvirtDriverOptions = {}) {
    const base = options.prefix ?? "vifguard";
    this.prefix = base.endsWith("-") ? base : `${base}-`;
    this.uri = options.uri ?? NWFILTER_URI;
    this.netns = options.netns;
  }

  /** Runs virsh commands in one virsh shell session; resolves with its output and the error lines. */
  async virsh(commands: readonly string[], timeoutMs?: number): Promise<{ stdout: string; stderr: string; errors: string[] }> {
    if (commands.length === 0) return { stdout: "", stderr: "", errors: [] };
    const input = commands.join("\n") + "\n";
    const r = await run("virsh", ["-q", "-c", this.uri], { input, timeoutMs: timeoutMs ?? Math.max(60_000, commands.length * 2_000) });
    return { stdout: r.stdout, stderr: r.stderr, errors: virshErrors(r.stderr) };
  }

  async probe(): Promise<HostFacts> {
    if (this.netns) throw new DriverUnavailableError("libvirt", `libvirt applies filter bindings in the root network namespace only; netns ${this.netns} cannot be used`);
    try {
      const version = (await run("virsh", ["--version"])).stdout.trim();
      const list = await run("virsh", ["-q", "-c", this.uri, "nwfilter-list"], { allowFailure: true, timeoutMs: 15_000 });
      if (list.code !== 0) throw new DriverUnavailableError("libvirt", `libvirtd does not answer on ${this.uri}: ${list.stderr.trim()}`);
      const missing = STOCK_FILTERS.filter((f) => !new RegExp(`\\s${f}\\s*$`, "m").test(list.stdout));
      if (missing.length > 0) throw new DriverUnavailableError("libvirt", `stock filters missing: ${missing.join(", ")} (install libvirt-daemon-config-nwfilter)`);
      const ebtables = (await run("ebtables", ["--version"], { allowFailure: true })).stdout.trim();
      return {
        driver: "libvirt",
        versions: { libvirt: version, ebtables },
        notes: [`filters ${this.prefix}*, bindings owned by ${this.prefix}<port>, ${this.uri}`],
      };
    } catch (error) {
      if (error instanceof DriverUnavailableError) throw error;
      throw new DriverUnavailableError("libvirt", error instanceof Error ? error.message : String(error), { cause: error });
    }
  }

  compile(policies: readonly PlacedPolicy[], devices: readonly Device[]): UnitMap {
    return compileLibvirt(policies, devices, this.prefix);
  }

  /** Defines (or redefines in place, same uuid) every shared filter that differs from what libvirt has. */
  async ensureFilters(force = false): Promise<string[]> {
    if (this.filtersCurrent && !force) return [];
    const defs = filterSet(this.prefix);
    const dumped = parseFilterDumps((await this.virsh(defs.map((d) => `nwfilter-dumpxml ${d.name}`))).stdout);
    const stale = defs.filter((d) => {
      const have = dumped.get(d.name);
      return have === undefined || canonicalFilter(have) !== canonicalFilter(d.xml);
    });
    if (stale.length > 0) {
      await this.withFiles(
        stale.map((d) => [d.name, d.xml]),
        async (fileOf) => {
          const { errors } = await this.virsh(stale.map((d) => `nwfilter-define ${virshQuote(fileOf(d.name))}`));
          if (errors.length > 0) throw new ApplyError({ driver: "libvirt", ports: [], command: "virsh nwfilter-define", stderr: errors.join("\n") });
        },
      );
    }
    this.filtersCurrent = true;
    return stale.map((d) => d.name);
  }

  private async withFiles<T>(files: ReadonlyArray<readonly [string, string]>, body: (fileOf: (name: string) => string) => Promise<T>): Promise<T> {
    const dir = await mkdtemp(join(tmpdir(), "vifguard-libvirt-"));
    try {
      const names = new Map<string, string>();
      let i = 0;
      for (const [name, text] of files) {
        const path = join(dir, `${i++}.xml`);
        names.set(name, path);
        await writeFile(path, text, { mode: 0o600 });
      }
      return await body((name) => {
        const path = names.get(name);
        if (!path) throw new Error(`bug: no temp file for ${name}`);
        return path;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** Every binding libvirt holds, ours or not, as [device, filter] rows. */
  private async attachmentRows(): Promise<Array<[device: string, filter: string]>> {
    return parseAttachmentList((await run("virsh", ["-q", "-c", this.uri, "nwfilter-binding-list"])).stdout);
  }

  /** Our bindings as libvirt holds them, each with its port filter's digest, and whether libvirt made its rules (one binding-list, one batch of dumpxml, one ebtables listing). */
  async bindings(): Promise<InstalledAttachment[]> {
    const ours = ourAttachments(await this.attachmentRows(), this.prefix);
    if (ours.length === 0) return [];
    const filters = [...new Set(ours.map((b) => b.filter))];
    const dumped = parsePortFilters((await this.virsh(filters.map((f) => `nwfilter-dumpxml ${virshQuote(f)}`))).stdout);
    const live = instantiatedDevices(await listEbtables(["-t", "nat", "-L", "PREROUTING"]));
    return ours.map((b) => {
      const top = dumped.get(b.filter)?.top ?? "";
      return { ...b, digest: dumped.get(b.filter)?.digest ?? "", top, instantiated: top === `${this.prefix}off` || live.has(b.device) };
    });
  }

  async apply(changes: ChangeSet): Promise<ApplyReport> {
    const started = performance.now();
    const ports = [...changes.add.map((u) => u.port), ...changes.remove];
    let commands: string[] = [];
    try {
      if (changes.add.length > 0) await this.ensureFilters();
      const installed = await this.bindings();
      const files = changes.add.flatMap((u): Array<[string, string]> => {
        const docs = unitDocuments(u);
        return [
          [`${u.key}\u0000filter`, docs.filter],
          [`${u.key}\u0000binding`, docs.attachment],
        ];
      });
      const errors = await this.withFiles(files, async (fileOf) => {
        commands = renderApply(changes, installed, this.prefix, (key, file) => fileOf(`${key}\u0000${file}`));
        return (await this.virsh(commands)).errors;
      });
      // virsh keeps going after a failed command: read back what landed.
      const now = new Map((await this.bindings()).map((b) => [b.key, b]));
      const failed = [...changes.add.filter((u) => now.get(u.key)?.digest !== u.digest).map((u) => u.port), ...changes.remove.filter((k) => now.has(k))];
      if (failed.length > 0 || errors.length > 0) {
        this.filtersCurrent = false;
        throw new ApplyError({ driver: "libvirt", ports: failed.length > 0 ? failed : ports, command: `virsh -c ${this.uri} (${commands.length} commands)`, stderr: errors.join("\n") || "bindings not as wanted after the batch" });
      }
    } catch (error) {
      if (error instanceof ApplyError) throw error;
      const result = error instanceof CommandError ? error.result : undefined;
      throw new ApplyError({ driver: "libvirt", ports, command: result?.command ?? "virsh", stderr: result?.stderr ?? String(error), cause: error });
    }
    return { added: changes.add.map((u) => u.key), removed: [...changes.remove], durationMs: performance.now() - started };
  }

  async observe(): Promise<Observed> {
    const [bindings, devices] = await Promise.all([this.bindings(), readLinks()]);
    const units = new Map<string, Unit>();
    // A binding libvirt holds without rules (its device was missing when it was created) awaits its
    // device: once the device is there, planning re-creates it.
    for (const b of bindings) units.set(b.key, { key: b.key, port: b.key, digest: b.digest, text: "", ...(!b.instantiated && { awaitingDevice: true as const }) });
    return { units, devices };
  }

  /**
   * The change feed: `ip monitor link` in the root namespace, so a port's device that appears (a
   * VM started) gets its binding at the sync that follows, and one that goes loses it. Restarted if
   * it exits (reporting a change, as events may have been missed). Changes to libvirt's filters and
   * bindings are found by the periodic check.
   */
  watchChanges(onChange: () => void): Promise<DriverWatch> {
    return Promise.resolve(followChanges("ip", ["-o", "monitor", "link"], {}, () => true, onChange));
  }

  async counters(): Promise<DropCounter[]> {
    // Device → port is all it needs: the binding list, without the filters' digests.
    const found = ourAttachments(await this.attachmentRows(), this.prefix);
    if (found.length === 0) return [];
    const stdout = await listEbtables(["-t", "nat", "-L", "--Lc"]);
    const byDevice = new Map(found.map((b) => [b.device, b.key]));
    return parseDropCounters(stdout, [...byDevice.keys()])
      .map((c) => ({ port: byDevice.get(c.device)!, reason: c.reason, packets: c.packets, bytes: c.bytes }))
      .sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0));
  }

  async removeAll(): Promise<void> {
    // Every binding to one of our filters (port filters, and shared ones a binding may reference
    // directly), then the port filters, then the shared filters top first: libvirt refuses to
    // undefine a filter that a binding or another filter still references. A shared filter that a
    // domain's own <filterref> uses stays (libvirt says "in use"); that is the operator's.
    const bound = (await this.attachmentRows()).filter(([, filter]) => filter.startsWith(this.prefix));
    const deleted = await this.virsh(bound.map(([device]) => `nwfilter-binding-delete ${virshQuote(device)}`));
    const portHead = portFilterName("", this.prefix);
    const portFilters = parseFilterNames((await run("virsh", ["-q", "-c", this.uri, "nwfilter-list"])).stdout).filter((n) => n.startsWith(portHead));
    const names = [...portFilters, ...filterSet(this.prefix).map((d) => d.name).reverse()];
    const undefined_ = await this.virsh(names.map((n) => `nwfilter-undefine ${virshQuote(n)}`));
    this.filtersCurrent = false;
    const errors = [...deleted.errors, ...undefined_.errors.filter((e) => !/not found|no nwfilter with matching name|in use/i.test(e))];
    const ports = ourAttachments(bound, this.prefix).map((b) => b.key);
    if (errors.length > 0) throw new ApplyError({ driver: "libvirt", ports, command: "virsh nwfilter-binding-delete / nwfilter-undefine", stderr: errors.join("\n") });
  }
}
