// The nftables driver's entry point.
import type { DriverOptions } from "../contract.ts";
import { NftablesDriver } from "./driver.ts";

export { NFT_CAPABILITIES, NFT_LIMITATIONS, NftablesDriver, type NftablesDriverOptions } from "./driver.ts";
export { compileFailClosed, compileNftables, layoutFor, portElements, type NftLayout, type PortElements } from "./compile.ts";
export { renderRemoveAll, renderSkeleton, renderTransaction, SKELETON, type Installed } from "./render.ts";
export { observedUnits, parseListing } from "./listing.ts";

export function createNftablesDriver(options: DriverOptions = {}): NftablesDriver {
  return new NftablesDriver(options);
}
