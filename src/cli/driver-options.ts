// Command-line options that choose and configure a driver, shared by apply, status, remove and conformance.
import { join } from "node:path";
import type { Command } from "commander";
import { formatIssue, UsageError } from "../errors.ts";
import type { Driver } from "../drivers/contract.ts";
import { checkDriverSettings, DEFAULT_DRIVER, driverModule, driverNames, DRIVER_MODULES, type DriverSettings } from "../drivers/registry.ts";

export type DriverFlags = Readonly<Record<string, unknown>> & { driver: string; netns?: string; prefix?: string; stateDir: string };

/** commander's attribute for a flag: --table-base → tableBase. */
const attributeOf = (flag: string): string => flag.replace(/^--/, "").replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The common driver options, and every registered driver's own (each once; help names the driver). */
export function addDriverOptions(command: Command): Command {
  command
    .option("--driver <name>", `the dataplane: ${driverNames().join(", ")}`, DEFAULT_DRIVER)
    .option("--netns <name>", "work inside this named network namespace (ip netns)")
    .option("--prefix <prefix>", "name of vifguard's table / filter prefix / cookie owner", "vifguard");
  const seen = new Set<string>();
  for (const module of DRIVER_MODULES) {
    for (const option of module.options) {
      if (seen.has(option.flag)) continue;
      seen.add(option.flag);
      command.option(`${option.flag} <value>`, `${module.name}: ${option.description}`);
    }
  }
  return command.option("--state-dir <dir>", "where apply records what it applied (read by status)", "/var/lib/vifguard");
}

/** Throws a UsageError naming --prefix unless `prefix` can name vifguard's table, filters or cookie owner. */
export function checkPrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9_-]{0,23}$/.test(prefix)) {
    throw new UsageError(`--prefix: got "${prefix}", expected 1-24 characters: lower-case letters, digits, '_' or '-', starting with a letter`);
  }
}

/**
 * The chosen driver's settings from the flags, checked by its module: a value out of range is a
 * UsageError naming the flag, the value and what is accepted. Other drivers' flags are ignored.
 */
export function driverSettings(flags: DriverFlags): DriverSettings {
  const module = driverModule(flags.driver);
  if (flags.prefix !== undefined) checkPrefix(flags.prefix);
  const raw: Record<string, unknown> = {};
  const flagOf = new Map<string, string>();
  for (const option of module.options) {
    flagOf.set(option.key, option.flag);
    const value = flags[attributeOf(option.flag)];
    if (value !== undefined) raw[option.key] = value;
  }
  const checked = checkDriverSettings(module, raw, (key) => flagOf.get(key) ?? key);
  if (checked.issues.length > 0) throw new UsageError(checked.issues.map(formatIssue).join("\n  "));
  return { ...checked.settings, ...(flags.netns !== undefined && { netns: flags.netns }), ...(flags.prefix !== undefined && { prefix: flags.prefix }) };
}

export function driverFromFlags(flags: DriverFlags): Driver {
  return driverModule(flags.driver).create(driverSettings(flags));
}

/** Where `apply` records the port file it applied, per driver, namespace and prefix. */
export function appliedStatePath(flags: DriverFlags): string {
  const scope = [flags.driver, flags.netns ?? "host", flags.prefix ?? "vifguard"].join("-");
  return join(flags.stateDir, `applied-${scope}.json`);
}
