// `vifguard remove`: take away everything vifguard installed with this driver (and these options).
import type { Command } from "commander";
import { addDriverOptions, driverFromFlags, type DriverFlags } from "./driver-options.ts";

export function registerRemove(command: Command): void {
  addDriverOptions(command)
    .addHelpText("after", "\nExample:\n  vifguard remove --netns hv1\n\nPorts are unprotected afterwards.")
    .action(async (flags: DriverFlags) => {
      const driver = await driverFromFlags(flags);
      const before = await driver.observe();
      await driver.removeAll();
      console.log(`removed vifguard's ${driver.name} rules (${before.units.size} ports were installed)`);
    });
}
