// The driver registry: every DriverModule vifguard knows, by name. Adding a driver is a folder with
// an index.ts exporting its module, and one line below. Validation of a driver's settings (from
// agent.yaml or the command line) happens here, by the module's own schema. Effects only in drivers.
import { UsageError, formatIssue, type Issue } from "../errors.ts";
import { zodIssues } from "../model/zod-issues.ts";
import type { Driver, DriverModule, DriverOptions } from "./contract.ts";
import { bpfModule } from "./bpf/index.ts";
import { libvirtModule } from "./libvirt/index.ts";
import { nftablesModule } from "./nftables/index.ts";
import { ovsModule } from "./ovs/index.ts";

/** The modules, in the order help lists them; the first is the default. */
export const DRIVER_MODULES: DriverModule[] = [nftablesModule, libvirtModule, ovsModule, bpfModule];

/** Settings of any driver: the common ones, and each driver's own (its module's schema checks them). */
export type DriverSettings = DriverOptions & Readonly<Record<string, unknown>>;

/** Registers another module (a test's stub dataplane, an out-of-tree driver); a name is taken once. */
export function registerDriverModule(module: DriverModule): void {
  if (DRIVER_MODULES.some((m) => m.name === module.name)) throw new RangeError(`a driver named ${module.name} is already registered`);
  DRIVER_MODULES.push(module);
}

export function driverNames(): string[] {
  return DRIVER_MODULES.map((m) => m.name);
}

export const DEFAULT_DRIVER = "nftables";

export function findDriverModule(name: string): DriverModule | undefined {
  return DRIVER_MODULES.find((m) => m.name === name);
}

/** The module named `name`, or a UsageError naming the known ones (`where`: "--driver", "driver.name"). */
export function driverModule(name: string, where = "--driver"): DriverModule {
  const module = findDriverModule(name);
  if (!module) throw new UsageError(`${where}: got "${name}", expected one of ${driverNames().join(", ")}`);
  return module;
}

/**
 * Validates a driver's own settings (`raw`: without name, netns and prefix) by its module's schema.
 * Returns the parsed settings, or the issues, each path made by `pathOf` (e.g. "driver.tableBase",
 * "--table-base").
 */
export function checkDriverSettings(module: DriverModule, raw: Readonly<Record<string, unknown>>, pathOf: (key: string) => string): { settings: Record<string, unknown>; issues: Issue[] } {
  const parsed = module.settings.safeParse(raw);
  if (parsed.success) return { settings: parsed.data, issues: [] };
  const issues = zodIssues(raw, parsed.error.issues).map((i) => ({ ...i, path: pathOf(i.path.split(/[.[]/)[0]!) + i.path.slice(i.path.split(/[.[]/)[0]!.length) }));
  return { settings: {}, issues };
}

/** Creates a driver by name; its settings are validated first (a UsageError lists what is wrong). */
export function createDriver(name: string, settings: DriverSettings): Driver {
  const module = driverModule(name);
  const { netns, prefix, ...own } = settings;
  const checked = checkDriverSettings(module, own, (key) => key);
  if (checked.issues.length > 0) throw new UsageError(`driver ${name}: ${checked.issues.map(formatIssue).join("; ")}`);
  return module.create({ ...checked.settings, ...(netns !== undefined && { netns }), ...(prefix !== undefined && { prefix }) });
}
