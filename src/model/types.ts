// The desired state as operators write it in a port file, after validation. Pure types.
import type { Mac } from "./mac.ts";
import type { Prefix } from "./ip.ts";

/** How much of a port's identity is enforced: everything, only the MAC side, or nothing. */
export type Level = "full" | "mac" | "off";
export const LEVELS: readonly Level[] = ["full", "mac", "off"];

export type Network = Readonly<{
  id: string;
  tenant: string;
  /** Several tenants on one L2 segment: ports there cannot be `off` or `mac`. */
  shared: boolean;
  /** Default level of its ports. */
  protection: Level;
  /**
   * On a shared network, the widest allowed-pair prefix per family (the shortest length); undefined:
   * DEFAULT_WIDEST_PAIR. An admin may raise it per network.
   */
  widestPair?: WidestPair | undefined;
  /**
   * The network's own address ranges (IPv4 and/or IPv6 prefixes, canonical text); undefined or
   * empty: any. A port's addresses and allowed pairs of a family with a range must lie inside one
   * (so no pair is wider than the range). IPv6 link-local is outside their scope (see semantics.md).
   */
  ranges?: string[] | undefined;
}>;

/** The shortest prefix length an allowed pair may have on a shared network, per family. */
export type WidestPair = Readonly<{ ipv4: number; ipv6: number }>;
export const DEFAULT_WIDEST_PAIR: WidestPair = { ipv4: 24, ipv6: 64 };

/** An extra (address or CIDR, MAC) a port may send with, e.g. a failover VIP. */
export type AllowedPair = Readonly<{ ip: Prefix; mac: Mac }>;

export type Port = Readonly<{
  id: string;
  tenant: string;
  network: string;
  /**
   * Host-side interface name (vnet3, tap-1a2b, vif3.0), or an OVS iface-id. Optional: without it
   * (or when the named device does not exist) the agent finds the port's device by MAC
   * (src/agent/device-match.ts).
   */
  device?: string;
  mac: Mac;
  ips: readonly Prefix[];
  allowed: readonly AllowedPair[];
  /** Set explicitly on the port; undefined inherits the network's. */
  protection: Level | undefined;
}>;

export type Config = Readonly<{
  /** The global switch; when false every port is effectively `off`. */
  antiSpoofing: boolean;
}>;

export type PortFile = Readonly<{
  config: Config;
  networks: readonly Network[];
  ports: readonly Port[];
}>;
