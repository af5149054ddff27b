// The reference evaluator: is this frame, from or to this port, allowed? The executable form of
// docs/semantics.md; every driver is tested against it. Pure.
import { prefixContains } from "../model/ip.ts";
import type { Mac } from "../model/mac.ts";
import { ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_RARP, parseFrame, PROTO_ICMPV6, PROTO_UDP, type Frame, type Ipv4, type Ipv6 } from "./frame.ts";
import type { Guard } from "./guards.ts";
import type { PortPolicy } from "./port-policy.ts";

export type Direction = "from-vm" | "to-vm";
export const DIRECTIONS: readonly Direction[] = ["from-vm", "to-vm"];

/** Why a frame passed: checked and fine, or not checked at all. */
export type AllowReason = "allowed" | "protection-off";

export type Decision =
  | Readonly<{ verdict: "allow"; reason: AllowReason; detail: string }>
  | Readonly<{ verdict: "drop"; reason: Guard; detail: string }>;

const allow = (detail: string): Decision => ({ verdict: "allow", reason: "allowed", detail });
const drop = (reason: Guard, detail: string): Decision => ({ verdict: "drop", reason, detail });

const ICMPV6_RS = 133;
const ICMPV6_RA = 134;
const ICMPV6_NS = 135;
const ICMPV6_NA = 136;
const ICMPV6_REDIRECT = 137;
const MLD_REPORTS: readonly number[] = [131, 143];
const ND_SLL = 1;
const ND_TLL = 2;

const BROADCAST4 = Uint8Array.from([255, 255, 255, 255]);
const ZERO4 = new Uint8Array(4);
const ZERO6 = new Uint8Array(16);

const equalBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const isGroupMac = (mac: Mac): boolean => (parseInt(mac.slice(0, 2), 16) & 1) === 1;
const hex = (bytes: Uint8Array): string => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");

/** Is `address` bound to `mac` by one of the policy's bindings? */
export function isBound(policy: PortPolicy, mac: Mac, address: Uint8Array): boolean {
  return policy.bindings.some((b) => b.mac === mac && prefixContains(b.prefix, address));
}

/** ff02::1:ffXX:XXXX */
function isSolicitedNode(address: Uint8Array): boolean {
  const prefix = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff];
  return prefix.every((b, i) => address[i] === b);
}

/** Decides one frame (raw bytes or already parsed) in one direction for one port. */
export function evaluate(policy: PortPolicy, frame: Uint8Array | Frame, direction: Direction): Decision {
  const parsed = frame instanceof Uint8Array ? parseFrame(frame) : frame;
  if (policy.level === "off") return { verdict: "allow", reason: "protection-off", detail: `port ${policy.port} is at level off` };
  if (direction === "to-vm") return toVm(policy, parsed);
  return policy.level === "full" ? fromVmFull(policy, parsed) : fromVmMac(policy, parsed);
}

function toVm(policy: PortPolicy, frame: Frame): Decision {
  if (isGroupMac(frame.dst)) return allow("broadcast or multicast destination");
  if (policy.macs.includes(frame.dst)) return allow("addressed to the port");
  return drop("not-for-this-port", `unicast for ${frame.dst}, not one of the port's MACs`);
}

function sourceMac(policy: PortPolicy, frame: Frame): Decision | undefined {
  if (frame.malformed && frame.type === 0) return drop("malformed", frame.malformed);
  if (isGroupMac(frame.src)) return drop("mac-spoof", `multicast source MAC ${frame.src}`);
  if (!policy.macs.includes(frame.src)) return drop("mac-spoof", `source MAC ${frame.src} is not the port's`);
  return undefined;
}

/** Level mac: the MAC side only, and only on untagged frames. */
function fromVmMac(policy: PortPolicy, frame: Frame): Decision {
  const mac = sourceMac(policy, frame);
  if (mac) return mac;
  if (frame.tags.length > 0) return allow("tagged frame: level mac does not look inside tags");
  if (frame.type === ETH_ARP && frame.arp && frame.arp.hlen === 6 && frame.arp.sha !== frame.src) {
    return drop("arp-spoof", `ARP sender hardware address ${frame.arp.sha} ≠ source MAC ${frame.src}`);
  }
  const icmp = frame.ipv6?.icmpv6;
  if (icmp) {
    const lladdr = foreignLinkLayerOption(frame, icmp);
    if (lladdr) return drop("nd-spoof", lladdr);
  }
  return allow("source MAC is the port's");
}

function fromVmFull(policy: PortPolicy, frame: Frame): Decision {
  const mac = sourceMac(policy, frame);
  if (mac) return mac;
  if (frame.tags.length > 0) return drop("vlan", `tagged frame (TPID 0x${frame.tags[0]!.toString(16).padStart(4, "0")})`);
  if (frame.llc) return drop("ethertype", `802.3/LLC frame (length ${frame.type})`);
  if (frame.malformed) return drop("malformed", frame.malformed);
  switch (frame.type) {
    case ETH_ARP:
      return arpFull(policy, frame);
    case ETH_RARP:
      return isAnnounceSelf(frame) ? allow("RARP announce-self") : drop("ethertype", "RARP other than QEMU's announce-self");
    case ETH_IPV4:
      return ipv4Full(policy, frame, frame.ipv4!);
    case ETH_IPV6:
      return ipv6Full(policy, frame, frame.ipv6!);
    default:
      return drop("ethertype", `ethertype 0x${frame.type.toString(16).padStart(4, "0")}`);
  }
}

/** QEMU's announce-self: broadcast RARP request (op 3) with sha = tha = source MAC and zero addresses. */
function isAnnounceSelf(frame: Frame): boolean {
  const a = frame.arp;
  return (
    !!a && frame.dst === "ff:ff:ff:ff:ff:ff" && a.htype === 1 && a.ptype === ETH_IPV4 && a.hlen === 6 && a.plen === 4 && a.op === 3 &&
    a.sha === frame.src && a.tha === frame.src && equalBytes(a.spa, ZERO4) && equalBytes(a.tpa, ZERO4)
  );
}

function arpFull(policy: PortPolicy, frame: Frame): Decision {
  const a = frame.arp!;
  if (a.htype !== 1 || a.ptype !== ETH_IPV4 || a.hlen !== 6 || a.plen !== 4) {
    return drop("arp-spoof", `ARP that is not Ethernet/IPv4 (htype ${a.htype}, ptype 0x${a.ptype.toString(16)}, hlen ${a.hlen}, plen ${a.plen})`);
  }
  if (a.sha !== frame.src) return drop("arp-spoof", `ARP sender hardware address ${a.sha} ≠ source MAC ${frame.src}`);
  if (equalBytes(a.spa, ZERO4)) return allow("ARP probe from 0.0.0.0");
  if (!isBound(policy, frame.src, a.spa)) return drop("arp-spoof", `ARP sender IP ${[...a.spa].join(".")} is not bound to ${frame.src}`);
  return allow("ARP from a bound address");
}

function ipv4Full(policy: PortPolicy, frame: Frame, ip: Ipv4): Decision {
  // Rules 5 and 6 read the UDP ports: a first fragment (or whole datagram) cut inside them is malformed, as in IPv6.
  if (ip.protocol === PROTO_UDP && ip.fragmentOffset === 0 && !ip.ports) return drop("malformed", "UDP header runs past the IPv4 packet");
  const dhcpClient =
    equalBytes(ip.src, ZERO4) && equalBytes(ip.dst, BROADCAST4) && ip.protocol === PROTO_UDP && ip.ports?.sport === 68 && ip.ports.dport === 67;
  if (dhcpClient) return allow("DHCP client from 0.0.0.0");
  if (!isBound(policy, frame.src, ip.src)) return drop("ipv4-spoof", `IPv4 source ${[...ip.src].join(".")} is not bound to ${frame.src}`);
  // A server is a server whatever its source port: only a server or relay sends to a client's port 68.
  if (ip.protocol === PROTO_UDP && ip.ports?.sport === 67) return drop("dhcp-server-guard", "UDP from port 67 (DHCP server or relay)");
  if (ip.protocol === PROTO_UDP && ip.ports?.dport === 68) return drop("dhcp-server-guard", `UDP to port 68 (a DHCP client's) from port ${ip.ports.sport}`);
  return allow(ip.fragmentOffset > 0 ? "non-first IPv4 fragment from a bound address" : "IPv4 from a bound address");
}

function ipv6Text(bytes: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

/** An SLL/TLL option of an NS, NA or RS that names another MAC, wherever it sits. */
function foreignLinkLayerOption(frame: Frame, icmp: NonNullable<Ipv6["icmpv6"]>): string | undefined {
  if (![ICMPV6_RS, ICMPV6_NS, ICMPV6_NA].includes(icmp.type)) return undefined;
  for (const [index, option] of icmp.options.entries()) {
    if (option.type !== ND_SLL && option.type !== ND_TLL) continue;
    const address = option.data.subarray(0, 6);
    if (option.data.length < 6 || hex(address) !== frame.src) {
      const name = option.type === ND_SLL ? "source" : "target";
      return `${name} link-layer option #${index + 1} names ${hex(address)}, not the source MAC ${frame.src}`;
    }
  }
  return undefined;
}

const IPV6_NO_NEXT_HEADER = 59;

function upperHeaderComplete(ip: Ipv6): boolean {
  if (ip.upper === PROTO_UDP) return ip.ports !== undefined;
  if (ip.upper === PROTO_ICMPV6) return ip.icmpv6 !== undefined;
  return true;
}

function ipv6Full(policy: PortPolicy, frame: Frame, ip: Ipv6): Decision {
  const firstFragment = ip.fragment !== undefined && ip.fragment.offset === 0 && ip.fragment.more;
  // A first fragment that holds no byte of the upper-layer header (TCP, say) ends its chain before it (RFC 7112).
  const upperMissing = firstFragment && ip.upper !== IPV6_NO_NEXT_HEADER && ip.upperLength === 0;
  if (ip.chainTruncated || upperMissing || (ip.upper !== undefined && !upperHeaderComplete(ip))) {
    if (firstFragment || (ip.chainTruncated && ip.fragment?.offset === 0)) {
      return drop("ipv6-fragment", "first fragment without the whole header chain (RFC 7112)");
    }
    return drop("malformed", "IPv6 extension headers or upper-layer header run past the packet");
  }
  const icmp = ip.icmpv6;
  if (equalBytes(ip.src, ZERO6)) {
    const dad = icmp?.type === ICMPV6_NS && isSolicitedNode(ip.dst);
    const mld = icmp !== undefined && MLD_REPORTS.includes(icmp.type);
    if (!dad && !mld) return drop("ipv6-spoof", "source :: is only for DAD solicitations and MLD reports");
  } else if (!isBound(policy, frame.src, ip.src)) {
    return drop("ipv6-spoof", `IPv6 source ${ipv6Text(ip.src)} is not bound to ${frame.src}`);
  }
  if (ip.fragment && ip.fragment.offset > 0) return allow("non-first IPv6 fragment from a bound address");
  if (icmp) {
    if (icmp.type === ICMPV6_RA) return drop("ra-guard", "router advertisement from a VM");
    if (icmp.type === ICMPV6_REDIRECT) return drop("redirect-guard", "ICMPv6 redirect from a VM");
    if (icmp.type === ICMPV6_NA && (!icmp.target || !isBound(policy, frame.src, icmp.target))) {
      return drop("nd-spoof", `neighbour advertisement for ${icmp.target ? ipv6Text(icmp.target) : "(no target)"}, not bound to ${frame.src}`);
    }
    if (icmp.type === ICMPV6_NS && equalBytes(ip.src, ZERO6) && (!icmp.target || !isBound(policy, frame.src, icmp.target))) {
      return drop("nd-spoof", `DAD for ${icmp.target ? ipv6Text(icmp.target) : "(no target)"}, not bound to ${frame.src}`);
    }
    const lladdr = foreignLinkLayerOption(frame, icmp);
    if (lladdr) return drop("nd-spoof", lladdr);
    if (icmp.badOptions && [ICMPV6_RS, ICMPV6_NS, ICMPV6_NA].includes(icmp.type)) return drop("nd-spoof", "ND option with length 0 or past the message");
  }
  if (ip.upper === PROTO_UDP && ip.ports?.sport === 547) return drop("dhcpv6-server-guard", "UDP from port 547 (DHCPv6 server or relay)");
  if (ip.upper === PROTO_UDP && ip.ports?.dport === 546) return drop("dhcpv6-server-guard", `UDP to port 546 (a DHCPv6 client's) from port ${ip.ports.sport}`);
  return allow(equalBytes(ip.src, ZERO6) ? "DAD/MLD from ::" : "IPv6 from a bound address");
}
