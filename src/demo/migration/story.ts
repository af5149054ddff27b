// The demo's multi-host act as told: build the two-hypervisor lab (lab.ts), migrate Alice under Eve's
// spoof stream and Bob's pings, report two of its figures (figures.ts), and remove everything.
import { MigrationLab } from "./lab.ts";

/**
 * The demo's multi-host act: builds the two-hypervisor lab, migrates Alice from hv1 to hv2 under
 * Eve's spoof stream and Bob's pings, narrates each step through `log`, and removes everything.
 */
export async function migrationAct(log: (line: string) => void): Promise<{ spoofedThrough: number; pingLossPercent: number }> {
  const lab = await MigrationLab.create(log);
  try {
    await lab.start();
    const figures = await lab.migrate();
    return { spoofedThrough: figures.spoofedThrough, pingLossPercent: figures.pingLossPercent };
  } finally {
    await lab.cleanup();
  }
}
