// Command-line options that choose and configure a driver, shared by apply, status, remove and conformance.
import { join } from "node:path";
import { Option, type Command } from "commander";
import { UsageError } from "../errors.ts";
import { DRIVER_NAMES } from "../drivers/contract.ts";
import { createDriver, type DriverSettings } from "../drivers/registry.ts";
import type { Driver } from "../drivers/contract.ts";

export type DriverFlags = { driver: string; netns?: string; prefix?: string; bridge?: string; ovsRundir?: string; tableBase?: string; stateDir: string };

export function addDriverOptions(command: Command): Command {
  return command
    .addOption(new Option("--driver <name>", "the dataplane").choices(DRIVER_NAMES).default("nftables"))
    .option("--netns <name>", "work inside this named network namespace (ip netns)")
    .option("--prefix <prefix>", "name of vifguard's table / filter prefix / cookie owner", "vifguard")
    .option("--bridge <bridge>", "ovs: the Open vSwitch bridge the ports are on")
    .option("--ovs-rundir <dir>", "ovs: the OVS run directory (default: the system's)")
    .option("--table-base <n>", "ovs: the first of vifguard's OpenFlow tables")
    .option("--state-dir <dir>", "where apply records what it applied (read by status)", "/var/lib/vifguard");
}

/** Throws a UsageError naming --prefix unless `prefix` can name vifguard's table, filters or cookie owner. */
export function checkPrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9_-]{0,23}$/.test(prefix)) {
    throw new UsageError(`--prefix: got "${prefix}", expected 1-24 characters: lower-case letters, digits, '_' or '-', starting with a letter`);
  }
}

export function driverSettings(flags: DriverFlags): DriverSettings {
  const tableBase = flags.tableBase === undefined ? undefined : Number(flags.tableBase);
  if (tableBase !== undefined && !(Number.isInteger(tableBase) && tableBase >= 0 && tableBase <= 250)) {
    throw new UsageError(`--table-base: got "${flags.tableBase}", expected an integer from 0 to 250`);
  }
  if (flags.prefix !== undefined) checkPrefix(flags.prefix);
  return {
    ...(flags.netns !== undefined && { netns: flags.netns }),
    ...(flags.prefix !== undefined && { prefix: flags.prefix }),
    ...(flags.bridge !== undefined && { bridge: flags.bridge }),
    ...(flags.ovsRundir !== undefined && { runDir: flags.ovsRundir }),
    ...(tableBase !== undefined && { tableBase }),
  };
}

export function driverFromFlags(flags: DriverFlags): Promise<Driver> {
  return createDriver(flags.driver, driverSettings(flags));
}

/** Where `apply` records the port file it applied, per driver, namespace and prefix. */
export function appliedStatePath(flags: DriverFlags): string {
  const scope = [flags.driver, flags.netns ?? "host", flags.prefix ?? "vifguard"].join("-");
  return join(flags.stateDir, `applied-${scope}.json`);
}
