// `vifguard status`: each port with its level, guards enforced and missing, sync state and drop counters.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import { readPortFile } from "../host/files.ts";
import { parsePortFile } from "../model/port-file.ts";
import type { PortFile } from "../model/types.ts";
import { portPolicies } from "../policy/port-policy.ts";
import { portStatusRows, renderStatus } from "./status-view.ts";
import { addDriverOptions, appliedStatePath, driverFromFlags, type DriverFlags } from "./driver-options.ts";

async function desiredState(flags: DriverFlags & { file?: string }): Promise<PortFile> {
  if (flags.file) return readPortFile(flags.file);
  const path = appliedStatePath(flags);
  let saved: { file: string; text: string };
  try {
    saved = JSON.parse(await readFile(path, "utf8")) as { file: string; text: string };
  } catch {
    throw new UsageError(`no port file given and nothing applied yet with these options (${path} is missing): pass -f ports.yaml`);
  }
  return parsePortFile(saved.text, `${saved.file} (as applied)`);
}

export function registerStatus(program: Command): void {
  addDriverOptions(
    program
      .command("status")
      .description("Show each port: level, guards enforced, guards the driver cannot enforce, whether its rules are installed, and drop counters")
      .option("-f, --file <ports.yaml>", "compare with this port file (default: the one last applied with these options)")
      .option("--json", "print JSON"),
  )
    .addHelpText("after", "\nExample:\n  vifguard status --netns hv1\n")
    .action(async (flags: DriverFlags & { file?: string; json?: boolean }) => {
      const policies = portPolicies(await desiredState(flags));
      const driver = await driverFromFlags(flags);
      const desired = driver.compile(policies);
      const [installed, counters] = await Promise.all([driver.observe(), driver.counters()]);
      const rows = portStatusRows(policies, desired, installed, counters, driver.capabilities);
      console.log(flags.json ? JSON.stringify(rows, null, 2) : renderStatus(rows, driver.name));
    });
}
