// The one rule for tests that need root: skip with the reason on a developer's machine, fail under CI.
import type { TestContext } from "node:test";

/** True when running as root; otherwise skips `t` with `why` (or throws when CI=true, so CI never passes by skipping). */
export function requireRoot(t: TestContext, why: string): boolean {
  if (typeof process.getuid === "function" && process.getuid() === 0) return true;
  if (process.env.CI === "true") throw new Error(`this test needs root (CI=true: not skipping): ${why}`);
  t.skip(`needs root: ${why}`);
  return false;
}
