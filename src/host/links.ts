// The kernel's network interfaces of a namespace as device facts (`ip -j link show`): effects.
import type { Device } from "../drivers/contract.ts";
import { run } from "./run.ts";

type IpLink = { ifindex?: unknown; ifname?: unknown; address?: unknown; link_type?: unknown; master?: unknown };

/** Parses `ip -j link show`: name, ifindex, the MAC of Ethernet links, and which links are masters. Pure. */
export function parseLinks(json: string): Device[] {
  const links = JSON.parse(json || "[]") as IpLink[];
  const masters = new Set(links.flatMap((l) => (typeof l.master === "string" ? [l.master] : [])));
  return links.flatMap((l): Device[] => {
    if (typeof l.ifname !== "string") return [];
    const mac = l.link_type === "ether" && typeof l.address === "string" ? l.address.toLowerCase() : undefined;
    return [{ name: l.ifname, ...(typeof l.ifindex === "number" && { ifindex: l.ifindex }), ...(mac && { mac }), ...(masters.has(l.ifname) && { isMaster: true }) }];
  });
}

/**
 * The interfaces of `netns` (default: the root namespace). `ip -n`, not `ip netns exec`: the same
 * netlink answer without the mount namespace and /sys remount that `ip netns exec` sets up (the agent
 * reads links at every sync, so every plug waits for this).
 */
export async function readLinks(netns?: string): Promise<Device[]> {
  return parseLinks((await run("ip", [...(netns ? ["-n", netns] : []), "-j", "link", "show"], { timeoutMs: 30_000 })).stdout);
}
