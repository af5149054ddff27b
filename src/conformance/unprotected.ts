// A driver that installs nothing and declares no guard: the kit's baseline (what gets through with
// no protection at all) and the demo's first act. Pure.
import type { Capabilities, Driver, UnitMap } from "../drivers/contract.ts";

const NOTHING: Capabilities = { guards: new Set(), limitations: [], atomicBatch: true };

export function unprotectedDriver(): Driver {
  return {
    name: "unprotected",
    capabilities: NOTHING,
    probe: () => Promise.resolve({ driver: "unprotected", versions: {}, notes: ["unprotected: installs nothing"] }),
    compile: (): UnitMap => new Map(),
    apply: () => Promise.resolve({ added: [], removed: [], durationMs: 0 }),
    observe: () => Promise.resolve({ units: new Map(), devices: [] }),
    watchChanges: () => Promise.resolve({ close: () => undefined }),
    counters: () => Promise.resolve([]),
    removeAll: () => Promise.resolve(),
  };
}
