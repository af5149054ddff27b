// A fourth driver for tests: a fake dataplane kept in memory (one per prefix), registered through the
// one DriverModule interface like the real three. Its ports need their device (like OVS and libvirt);
// `plugDevice()` makes one appear and tells the change feed.
import { createHash } from "node:crypto";
import { z } from "zod";
import type { Device, Driver, DriverModule, DriverWatch, UnitMap } from "../../../src/drivers/contract.ts";
import { GUARDS } from "../../../src/policy/guards.ts";

type Dataplane = { units: Map<string, { key: string; port: string; digest: string; text: string }>; devices: Device[]; feeds: Set<() => void> };
const dataplanes = new Map<string, Dataplane>();
export const stubDataplane = (prefix = "vifguard"): Dataplane => dataplanes.get(prefix) ?? (dataplanes.set(prefix, { units: new Map(), devices: [], feeds: new Set() }), dataplanes.get(prefix)!);

export function plugDevice(prefix: string, device: Device): void {
  const plane = stubDataplane(prefix);
  plane.devices.push(device);
  for (const feed of plane.feeds) feed();
}

export const stubModule: DriverModule = {
  name: "stub",
  description: "an in-memory dataplane for tests",
  capabilities: { guards: new Set(GUARDS.filter((g) => g !== "nd-spoof")), limitations: [{ id: "stub-nd", guard: "ra-guard", description: "a stub limitation", cases: ["rogue router advertisement"] }], atomicBatch: true },
  settings: z.strictObject({ flavour: z.enum(["plain", "salted"], { message: "plain or salted" }).default("plain") }),
  options: [{ flag: "--stub-flavour", key: "flavour", description: "plain or salted digests" }],
  sandbox: "linux-bridge",
  create(settings): Driver {
    const plane = stubDataplane(settings.prefix);
    const salt = settings.flavour === "salted" ? "salt" : "";
    return {
      name: "stub",
      capabilities: stubModule.capabilities,
      probe: () => Promise.resolve({ driver: "stub", versions: { stub: "1" }, notes: [] }),
      compile(policies, devices): UnitMap {
        const present = new Set(devices.map((d) => d.name));
        return new Map(policies.map((p) => {
          if (!present.has(p.device)) return [p.port, { key: p.port, port: p.port, digest: "", text: "", awaitingDevice: true as const }];
          const text = salt + JSON.stringify([p.device, p.level, p.macs, p.bindings.map((b) => b.prefix.text)]);
          return [p.port, { key: p.port, port: p.port, digest: createHash("sha256").update(text).digest("hex").slice(0, 12), text }];
        }));
      },
      apply(changes) {
        for (const key of changes.remove) plane.units.delete(key);
        for (const unit of changes.add) plane.units.set(unit.key, { ...unit });
        return Promise.resolve({ added: changes.add.map((u) => u.key), removed: [...changes.remove], durationMs: 0 });
      },
      observe: () => Promise.resolve({ units: new Map(plane.units), devices: [...plane.devices] }),
      counters: () => Promise.resolve([]),
      removeAll: () => Promise.resolve(void plane.units.clear()),
      watchChanges(onChange): Promise<DriverWatch> {
        plane.feeds.add(onChange);
        return Promise.resolve({ close: () => void plane.feeds.delete(onChange) });
      },
    };
  },
};
