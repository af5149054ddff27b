// Creates a driver by name from command-line or config settings. Effects happen only in the drivers.
import { UsageError } from "../errors.ts";
import { DRIVER_NAMES, type Driver, type DriverName, type DriverOptions } from "./contract.ts";

/** Everything any driver can be configured with; each driver reads its own part. */
export type DriverSettings = DriverOptions &
  Readonly<{
    /** ovs: the bridge the ports are on. */
    bridge?: string;
    /** ovs: OVS run directory (where db.sock and the bridge's management socket are). */
    runDir?: string;
    /** ovs: first of vifguard's OpenFlow tables. */
    tableBase?: number;
  }>;

export function isDriverName(name: string): name is DriverName {
  return (DRIVER_NAMES as readonly string[]).includes(name);
}

export async function createDriver(name: string, settings: DriverSettings): Promise<Driver> {
  if (!isDriverName(name)) throw new UsageError(`--driver: got "${name}", expected one of ${DRIVER_NAMES.join(", ")}`);
  switch (name) {
    case "nftables": {
      const { createNftablesDriver } = await import("./nftables/index.ts");
      return createNftablesDriver(settings);
    }
    case "ovs": {
      if (!settings.bridge) throw new UsageError("--bridge: required with --driver ovs (the Open vSwitch bridge the ports are on)");
      const { createOvsDriver } = await import("./ovs/index.ts");
      return createOvsDriver({ ...settings, bridge: settings.bridge });
    }
    case "libvirt": {
      const { createLibvirtDriver } = await import("./libvirt/index.ts");
      return createLibvirtDriver(settings);
    }
  }
}
