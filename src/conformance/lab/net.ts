// The lab's plumbing: network namespaces, Linux bridges, and guests (a namespace behind a veth pair,
// its host end on a bridge). Effects: ip and sysctl through host/run.
import { run } from "../../host/run.ts";

export type Where = Readonly<{ netns?: string }>;
const at = (netns: string | undefined): Where => (netns ? { netns } : {});

/** A network namespace with its loopback up. */
export async function addNetns(name: string): Promise<void> {
  await run("ip", ["netns", "add", name]);
  await run("ip", ["link", "set", "lo", "up"], { netns: name });
}

export async function deleteNetns(name: string): Promise<void> {
  await run("ip", ["netns", "del", name], { allowFailure: true });
}

export type BridgeOptions = Readonly<{
  /** Learn no MAC (ageing 0), so every unicast floods: only a port's to-vm filter keeps frames from others. */
  flood?: boolean;
  /** Turn br_netfilter's calls off in the bridge's namespace: on, it trims bridged IP frames to their IP length (and so trailing markers). */
  noBrNetfilter?: boolean;
}>;

/**
 * A Linux bridge `name` in `netns` (undefined: the root namespace), up. No multicast snooping, so MLD
 * and DHCPv6 multicast reach every port; no STP, so ports forward at once.
 */
export async function addBridge(netns: string | undefined, name: string, options: BridgeOptions = {}): Promise<void> {
  await run("ip", ["link", "add", name, "type", "bridge", ...(options.flood ? ["ageing_time", "0"] : []), "mcast_snooping", "0", "stp_state", "0"], at(netns));
  await run("ip", ["link", "set", name, "up"], at(netns));
  if (options.noBrNetfilter) {
    for (const family of ["iptables", "ip6tables", "arptables"]) await run("sysctl", ["-qw", `net.bridge.bridge-nf-call-${family}=0`], { ...at(netns), allowFailure: true });
  }
}

/** Bridges that learn no MAC flood every unicast; `on` false: they learn again. */
export async function setFlooding(netns: string | undefined, bridge: string, on: boolean): Promise<void> {
  await run("ip", ["link", "set", bridge, "type", "bridge", "ageing_time", on ? "0" : "30000"], at(netns));
}

export type GuestSpec = Readonly<{
  /** The guest's namespace (made already). */
  netns: string;
  /** The guest's interface (default eth0). */
  iface?: string;
  mac: string;
  /** Addresses with their prefix length (IPv6 without DAD). */
  ipv4?: string;
  ipv6?: string;
  /** The host end: its name, its namespace (undefined: the root namespace), and the Linux bridge it joins (none: it is only set up, e.g. for OVS). */
  device: string;
  hostNetns?: string;
  bridge?: string;
  /** No IPv6 at all in the guest: no kernel chatter in captures. */
  noIpv6?: boolean;
  /** More sysctls for the guest's namespace (e.g. net.ipv6.conf.eth1.accept_dad=0). */
  sysctls?: readonly string[];
  promisc?: boolean;
  /** Turn off checksum offload on the guest side (userspace OVS reads the veth without the offload header). */
  noTxOffload?: boolean;
  /** false: the guest side stays down and unaddressed (a paused VM's). Default true. */
  up?: boolean;
}>;

/** A guest's port: the veth pair `device` (host side) – `iface` (in the guest), set up as `spec` says. */
export async function plugGuest(spec: GuestSpec): Promise<void> {
  const iface = spec.iface ?? "eth0";
  const guest = { netns: spec.netns };
  await run("ip", ["link", "add", spec.device, "type", "veth", "peer", "name", iface, "netns", spec.netns], at(spec.hostNetns));
  // A bridge port, not an interface of the host: no addresses, no chatter of its own.
  await run("sysctl", ["-qw", `net.ipv6.conf.${spec.device}.disable_ipv6=1`], { ...at(spec.hostNetns), allowFailure: true });
  const sysctls = [...(spec.noIpv6 ? ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"] : []), ...(spec.sysctls ?? [])];
  for (const setting of sysctls) await run("sysctl", ["-qw", setting], guest);
  await run("ip", ["link", "set", iface, "address", spec.mac, ...(spec.promisc ? ["promisc", "on"] : [])], guest);
  if (spec.noTxOffload) await run("ethtool", ["-K", iface, "tx", "off"], guest);
  if (spec.up !== false) {
    if (spec.ipv4) await run("ip", ["addr", "add", spec.ipv4, "dev", iface], guest);
    if (spec.ipv6) await run("ip", ["-6", "addr", "add", spec.ipv6, "dev", iface, "nodad"], guest);
    await run("ip", ["link", "set", iface, "up"], guest);
  }
  await run("ip", ["link", "set", spec.device, ...(spec.bridge ? ["master", spec.bridge] : []), "up"], at(spec.hostNetns));
}
