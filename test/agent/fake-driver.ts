// An in-memory driver for the agent's unit tests: units live in a Map, every apply() is recorded,
// failures and drift can be injected.
import { createHash } from "node:crypto";
import type { ApplyReport, ChangeSet, Device, Driver, DriverWatch, DropCounter, HostFacts, Observed, Unit, UnitMap } from "../../src/drivers/contract.ts";
import { FAIL_CLOSED_KEY } from "../../src/drivers/contract.ts";
import { GUARDS } from "../../src/policy/guards.ts";
import type { PlacedPolicy } from "../../src/policy/port-policy.ts";

const digestOf = (text: string): string => createHash("sha256").update(text).digest("hex").slice(0, 12);

export class FakeDriver implements Driver {
  readonly name = "nftables" as const;
  readonly capabilities = { guards: new Set(GUARDS), limitations: [], atomicBatch: true };
  readonly installed = new Map<string, Unit>();
  readonly applied: ChangeSet[] = [];
  drops: DropCounter[] = [];
  failNextApply: Error | undefined;
  observeCount = 0;
  /** The host's devices, as observe() reports them. */
  devices: Device[] = [];
  /** Like OVS and libvirt: a port whose device is not among `devices` awaits it (default: like nftables, rules need no device). */
  needsDevices = false;
  private listeners = new Set<() => void>();

  async probe(): Promise<HostFacts> {
    return { driver: "nftables", versions: { fake: "1" }, notes: [] };
  }

  compile(policies: readonly PlacedPolicy[], devices: readonly Device[]): UnitMap {
    const present = new Set(devices.map((d) => d.name));
    return new Map(
      policies.map((p) => {
        if (this.needsDevices && !present.has(p.device)) return [p.port, { key: p.port, port: p.port, digest: "", text: "", awaitingDevice: true }];
        const text = JSON.stringify({ device: p.device, level: p.level, macs: p.macs, bindings: p.bindings.map((b) => `${b.mac} ${b.prefix.text}`) });
        return [p.port, { key: p.port, port: p.port, digest: digestOf(text), text }];
      }),
    );
  }

  compileFailClosed(devices: readonly string[]): Unit {
    const text = `drop ${devices.join(",")}`;
    return { key: FAIL_CLOSED_KEY, port: FAIL_CLOSED_KEY, digest: digestOf(text), text };
  }

  async apply(changes: ChangeSet): Promise<ApplyReport> {
    if (this.failNextApply) {
      const e = this.failNextApply;
      this.failNextApply = undefined;
      throw e;
    }
    this.applied.push(changes);
    for (const key of changes.remove) this.installed.delete(key);
    for (const unit of changes.add) this.installed.set(unit.key, unit);
    return { added: changes.add.map((u) => u.key), removed: [...changes.remove], durationMs: 0 };
  }

  async observe(): Promise<Observed> {
    this.observeCount++;
    return { units: new Map([...this.installed].map(([k, u]) => [k, { ...u, text: "" }])), devices: [...this.devices] };
  }

  async counters(): Promise<DropCounter[]> {
    return this.drops;
  }

  async removeAll(): Promise<void> {
    this.installed.clear();
  }

  async watchChanges(onChange: () => void): Promise<DriverWatch> {
    this.listeners.add(onChange);
    return { close: () => this.listeners.delete(onChange) };
  }

  /** Changes a unit behind the agent's back and tells the watchers, as nft monitor would. */
  tamper(mutate: (installed: Map<string, Unit>) => void): void {
    mutate(this.installed);
    for (const l of this.listeners) l();
  }

  /** Keys added and removed by the applies since `from`. */
  touched(from = 0): { added: string[]; removed: string[] } {
    const since = this.applied.slice(from);
    return { added: since.flatMap((c) => c.add.map((u) => u.key)).sort(), removed: since.flatMap((c) => [...c.remove]).sort() };
  }
}
