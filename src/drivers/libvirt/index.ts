// The libvirt nwfilter driver's entry point: its module (the registry's entry) and what tests and benches use.
import { z } from "zod";
import type { DriverModule } from "../contract.ts";
import { LIBVIRT_CAPABILITIES, LibvirtDriver, type LibvirtDriverOptions } from "./driver.ts";

export { LIBVIRT_CAPABILITIES, LIBVIRT_GUARDS, LIBVIRT_LIMITATIONS, LibvirtDriver, type LibvirtDriverOptions } from "./driver.ts";
export { attachmentXml, compileLibvirt, DEFAULT_PREFIX, filterrefSnippet, filterSet, topFilter, type FilterDef } from "./compile.ts";
export { ensureLibvirtd, ensureVirtlogd, libvirtdPid, restartLibvirtd, stopLibvirtd, NWFILTER_URI } from "./daemon.ts";

export function createLibvirtDriver(options: LibvirtDriverOptions = {}): LibvirtDriver {
  return new LibvirtDriver(options);
}

export const libvirtModule: DriverModule = {
  name: "libvirt",
  description: "libvirt nwfilter filters and filter bindings (libvirt-managed KVM/QEMU hosts)",
  capabilities: LIBVIRT_CAPABILITIES,
  settings: z.strictObject({ uri: z.string().min(1, "a libvirt connection URI, e.g. nwfilter:///system").optional() }),
  options: [],
  sandbox: "linux-bridge-root",
  privileges: () => ({ capabilities: [{ capability: "CAP_NET_ADMIN", why: "the driver reads libvirt's ebtables drop counters" }], sockets: [] }),
  create: (settings) => createLibvirtDriver(settings as LibvirtDriverOptions),
};
