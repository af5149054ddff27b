// (port, network, config) → PortPolicy: what a port may send with, and the guards at its level. Pure.
import { comparePrefixes, eui64LinkLocal, type Prefix } from "../model/ip.ts";
import type { Mac } from "../model/mac.ts";
import type { Config, Level, Network, Port, PortFile } from "../model/types.ts";
import { guardsForLevel, type Guard } from "./guards.ts";

/** One allowed (MAC, address or prefix) pair: frames from `mac` may use sources in `prefix`. */
export type Binding = Readonly<{ mac: Mac; prefix: Prefix }>;

/** The effective policy of one port: everything a driver needs, nothing it must look up. */
export type PortPolicy = Readonly<{
  port: string;
  tenant: string;
  network: string;
  /**
   * The device the source names (interface name or OVS iface-id); absent: found by MAC. What a
   * driver compiles is a PlacedPolicy, whose device is the one the agent matched.
   */
  device?: string;
  /** The effective level: the port's, else its network's; `off` when the global switch is off. */
  level: Level;
  /** The port's own MAC first, then the other allowed MACs, sorted. */
  macs: readonly Mac[];
  /** Sorted by family, address, length, then MAC; includes each allowed MAC's EUI-64 link-local. */
  bindings: readonly Binding[];
  guards: readonly Guard[];
}>;

export function effectiveLevel(port: Port, network: Network, config: Config): Level {
  return config.antiSpoofing ? (port.protection ?? network.protection) : "off";
}

export function portPolicy(port: Port, network: Network, config: Config): PortPolicy {
  const level = effectiveLevel(port, network, config);
  const otherMacs = [...new Set(port.allowed.map((p) => p.mac))].filter((m) => m !== port.mac).sort();
  const macs = [port.mac, ...otherMacs];
  const raw: Binding[] = [
    ...port.ips.map((prefix) => ({ mac: port.mac, prefix })),
    ...port.allowed.map((pair) => ({ mac: pair.mac, prefix: pair.ip })),
    ...macs.map((mac) => ({ mac, prefix: eui64LinkLocal(mac) })),
  ];
  const seen = new Set<string>();
  const bindings = raw
    .filter((b) => {
      const key = `${b.mac} ${b.prefix.text}`;
      return seen.has(key) ? false : (seen.add(key), true);
    })
    .sort((a, b) => comparePrefixes(a.prefix, b.prefix) || (a.mac < b.mac ? -1 : a.mac > b.mac ? 1 : 0));
  return { port: port.id, tenant: port.tenant, network: port.network, ...(port.device !== undefined && { device: port.device }), level, macs, bindings, guards: guardsForLevel(level) };
}

/** A policy with the device it was matched to (src/agent/device-match.ts): what drivers compile. */
export type PlacedPolicy = PortPolicy & Readonly<{ device: string }>;

/** Policies of every port in a validated port file, in file order. */
export function portPolicies(file: PortFile): PortPolicy[] {
  const networks = new Map(file.networks.map((n) => [n.id, n]));
  return file.ports.map((port) => {
    const network = networks.get(port.network);
    if (!network) throw new Error(`bug: port ${port.id} names unknown network ${port.network} after validation`);
    return portPolicy(port, network, file.config);
  });
}
