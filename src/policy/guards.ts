// The guards: each names one check of the reference evaluator, and is the reason a frame is dropped. Pure.
import type { Level } from "../model/types.ts";

/** Every reason the reference evaluator can drop a frame for. */
export const GUARDS = [
  "mac-spoof", // source MAC not one of the port's (or multicast)
  "arp-spoof", // ARP sender hardware address ≠ source MAC, or sender IP not bound to it
  "ipv4-spoof", // IPv4 source not bound to the source MAC
  "ipv6-spoof", // IPv6 source not bound to the source MAC (except :: for DAD and MLD)
  "nd-spoof", // NA target not bound, or an SLL/TLL option ≠ source MAC
  "ra-guard", // router advertisement from a VM
  "redirect-guard", // ICMPv6 redirect from a VM
  "dhcp-server-guard", // IPv4 UDP from port 67 or to port 68 (a client's) from a VM
  "dhcpv6-server-guard", // IPv6 UDP from port 547 or to port 546 (a client's) from a VM
  "ipv6-fragment", // IPv6 first fragment that does not carry the upper-layer header (RFC 7112)
  "vlan", // 802.1Q / 802.1ad / QinQ tagged frame from a VM
  "ethertype", // LLC/SNAP or an ethertype other than IPv4, ARP, IPv6 (RARP only as QEMU announce-self)
  "malformed", // a header we must read is truncated or inconsistent
  "not-for-this-port", // to-VM unicast whose destination MAC is not the port's (anti-sniffing)
] as const;

export type Guard = (typeof GUARDS)[number];

/**
 * The guards a level enforces. At `mac`, `arp-spoof` and `nd-spoof` mean only their MAC side
 * (sender hardware address, link-layer options).
 */
export function guardsForLevel(level: Level): readonly Guard[] {
  switch (level) {
    case "full":
      return GUARDS;
    case "mac":
      return ["mac-spoof", "arp-spoof", "nd-spoof", "not-for-this-port"];
    case "off":
      return [];
  }
}

export function isGuard(text: string): text is Guard {
  return (GUARDS as readonly string[]).includes(text);
}
