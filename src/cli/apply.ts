// `vifguard apply`: make the host's filtering match a port file (adds, changes, removes), in one batch.
import type { Command } from "commander";
import { planSync } from "../agent/converge.ts";
import { readFile } from "node:fs/promises";
import { readPortFile, writeFileAtomic } from "../host/files.ts";
import { portPolicies } from "../policy/port-policy.ts";
import { addDriverOptions, appliedStatePath, driverFromFlags, type DriverFlags } from "./driver-options.ts";

export function registerApply(command: Command): void {
  addDriverOptions(
    command
      .requiredOption("-f, --file <ports.yaml>", "the port file (validated whole before anything changes)"),
  )
    .addHelpText("after", "\nExamples:\n  vifguard apply -f examples/ports.yaml\n  vifguard apply -f ports.yaml --netns hv1\n  vifguard apply -f ports.yaml --driver ovs --bridge br-int\n\nA bad port file changes nothing on the host.")
    .action(async (flags: DriverFlags & { file: string }) => {
      const file = await readPortFile(flags.file); // before touching the host: bad input changes nothing
      const driver = await driverFromFlags(flags);
      await driver.probe();
      const { desired, changes, observed } = await planSync(driver, portPolicies(file));
      const changed = changes.add.filter((u) => observed.units.has(u.key)).length;
      const awaiting = [...desired.values()].filter((u) => u.awaitingDevice).map((u) => u.port);
      if (changes.add.length === 0 && changes.remove.length === 0) {
        console.log(`${flags.file}: the host already matches (${desired.size} ports, driver ${driver.name})`);
      } else {
        const report = await driver.apply(changes);
        console.log(
          `${flags.file}: added ${changes.add.length - changed}, changed ${changed}, removed ${changes.remove.length} ports in ${report.durationMs.toFixed(1)} ms (driver ${driver.name}, ${desired.size} ports now)`,
        );
      }
      if (awaiting.length > 0) console.log(`awaiting their device (nothing installed until it appears; apply again then, or run the agent): ${awaiting.join(", ")}`);
      // What was applied, verbatim, so that status can show levels and guards even after the file changes.
      await writeFileAtomic(appliedStatePath(flags), JSON.stringify({ file: flags.file, text: await readFile(flags.file, "utf8") }) + "\n");
    });
}
