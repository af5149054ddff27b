// The libvirt nwfilter driver's entry point.
import { LibvirtDriver, type LibvirtDriverOptions } from "./driver.ts";

export { LIBVIRT_CAPABILITIES, LIBVIRT_GUARDS, LIBVIRT_LIMITATIONS, LibvirtDriver, type LibvirtDriverOptions } from "./driver.ts";
export { bindingXml, compileLibvirt, DEFAULT_PREFIX, filterrefSnippet, filterSet, topFilter, type FilterDef } from "./compile.ts";
export { ensureLibvirtd, restartLibvirtd, stopLibvirtd, NWFILTER_URI } from "./daemon.ts";

export function createLibvirtDriver(options: LibvirtDriverOptions = {}): LibvirtDriver {
  return new LibvirtDriver(options);
}
