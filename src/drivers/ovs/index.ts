// The Open vSwitch driver's entry point: its module (the registry's entry) and what tests and benches use.
import { join } from "node:path";
import { z } from "zod";
import type { DriverModule } from "../contract.ts";
import { TABLE_COUNT } from "./compile.ts";
import { OVS_CAPABILITIES, OvsDriver, type OvsDriverOptions } from "./driver.ts";

export { OVS_CAPABILITIES, OVS_LIMITATIONS, OvsDriver, type OvsDriverOptions } from "./driver.ts";
export { compileOvs, ofportMap, TABLE_COUNT, type OvsLayout, type PassAction } from "./compile.ts";
export { interfaceDevices, readInterfaces, watchInterfaces, type OvsInterface } from "./ovsdb.ts";

export function createOvsDriver(options: OvsDriverOptions): OvsDriver {
  return new OvsDriver(options);
}

/** vifguard's TABLE_COUNT tables must fit below OpenFlow's last usable table (254). */
const MAX_TABLE_BASE = 254 - TABLE_COUNT;
/** The Open vSwitch run directory when the settings name none (Debian's). */
export const DEFAULT_OVS_RUN_DIR = "/var/run/openvswitch";
const TABLE_BASE = `an integer from 0 to ${MAX_TABLE_BASE} (vifguard uses ${TABLE_COUNT} tables from there)`;

export const ovsModule: DriverModule = {
  name: "ovs",
  description: "Open vSwitch OpenFlow flows (OVS hosts: XenServer/XCP-ng, KVM)",
  capabilities: OVS_CAPABILITIES,
  settings: z.strictObject({
    bridge: z.string({ message: "the Open vSwitch bridge the ports are on (required with driver ovs)" }).min(1, "the Open vSwitch bridge the ports are on (required with driver ovs)"),
    runDir: z.string().min(1, "the OVS run directory").optional(),
    tableBase: z.coerce.number({ message: TABLE_BASE }).int(TABLE_BASE).min(0, TABLE_BASE).max(MAX_TABLE_BASE, TABLE_BASE).optional(),
  }),
  options: [
    { flag: "--bridge", key: "bridge", description: "the Open vSwitch bridge the ports are on" },
    { flag: "--ovs-rundir", key: "runDir", description: "the OVS run directory (default: the system's)" },
    { flag: "--table-base", key: "tableBase", description: `the first of vifguard's OpenFlow tables (0-${MAX_TABLE_BASE})` },
  ],
  sandbox: "ovs",
  // No capability: ovs-ofctl and ovs-vsctl only need the run directory's sockets.
  privileges: (settings) => ({
    capabilities: [],
    sockets: [{
      path: join((typeof settings.runDir === "string" ? settings.runDir : undefined) ?? DEFAULT_OVS_RUN_DIR, "db.sock"),
      what: "Open vSwitch's socket",
      hint: "Open vSwitch's sockets belong to root (mode 0750): run the agent with root's uid (User=root, as contrib/systemd/vifguard-agent.service does); it needs no capability for them.",
    }],
  }),
  create: (settings) => createOvsDriver(settings as OvsDriverOptions),
};
