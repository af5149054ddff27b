// The Open vSwitch driver's entry point.
import { OvsDriver, type OvsDriverOptions } from "./driver.ts";

export { OVS_CAPABILITIES, OVS_LIMITATIONS, OvsDriver, type OvsDriverOptions } from "./driver.ts";
export { compileOvs, ofportMap, TABLE_COUNT, type OvsLayout, type PassAction } from "./compile.ts";
export { interfaceDevices, readInterfaces, watchInterfaces, type OvsInterface } from "./ovsdb.ts";

export function createOvsDriver(options: OvsDriverOptions): OvsDriver {
  return new OvsDriver(options);
}
