// The nftables driver's entry point: its module (the registry's entry) and what tests and benches use.
import { z } from "zod";
import type { DriverModule, DriverOptions } from "../contract.ts";
import { NFT_CAPABILITIES, NftablesDriver } from "./driver.ts";

export { NFT_CAPABILITIES, NFT_LIMITATIONS, NftablesDriver, type NftablesDriverOptions } from "./driver.ts";
export { compileFailClosed, compileNftables, layoutFor, portElements, type NftLayout, type PortElements } from "./compile.ts";
export { renderRemoveAll, renderSkeleton, renderTransaction, SKELETON, type Installed } from "./render.ts";
export { observedUnits, parseListing } from "./listing.ts";

export function createNftablesDriver(options: DriverOptions = {}): NftablesDriver {
  return new NftablesDriver(options);
}

export const nftablesModule: DriverModule = {
  name: "nftables",
  description: "Linux bridge family tables, sets and maps (KVM/Linux bridge hosts)",
  capabilities: NFT_CAPABILITIES,
  settings: z.strictObject({}),
  options: [],
  sandbox: "linux-bridge",
  privileges: () => ({ capabilities: [{ capability: "CAP_NET_ADMIN", why: "nft changes the bridge table over netlink" }], sockets: [] }),
  create: (settings) => createNftablesDriver(settings),
};
