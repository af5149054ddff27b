// One-line human summaries of parsed frames, for `vifguard explain`. Pure.
import { formatAddress } from "../model/ip.ts";
import { ETH_ARP, ETH_IPV4, ETH_IPV6, ETH_RARP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP, type Frame } from "./frame.ts";

const ICMPV6_NAMES: Record<number, string> = {
  1: "dest-unreachable", 128: "echo-request", 129: "echo-reply", 130: "mld-query", 131: "mld-report", 143: "mldv2-report",
  133: "router-solicit", 134: "router-advert", 135: "neighbor-solicit", 136: "neighbor-advert", 137: "redirect",
};
const ARP_OPS: Record<number, string> = { 1: "request", 2: "reply", 3: "rarp-request", 4: "rarp-reply" };

const v4 = (b: Uint8Array): string => formatAddress(4, b);
const v6 = (b: Uint8Array): string => formatAddress(6, b);

export function summarizeFrame(frame: Frame): string {
  const l2 = `${frame.src} > ${frame.dst}`;
  const tags = frame.tags.map((t) => `tag 0x${t.toString(16)}`).join(" ");
  const head = tags ? `${l2} ${tags}` : l2;
  if (frame.malformed) return `${head} malformed (${frame.malformed})`;
  if (frame.llc) return `${head} 802.3/LLC length ${frame.type}`;
  if ((frame.type === ETH_ARP || frame.type === ETH_RARP) && frame.arp) {
    const a = frame.arp;
    const kind = frame.type === ETH_RARP ? "RARP" : "ARP";
    return `${head} ${kind} ${ARP_OPS[a.op] ?? `op ${a.op}`} ${v4(a.spa)} (${a.sha}) → ${v4(a.tpa)}`;
  }
  if (frame.type === ETH_IPV4 && frame.ipv4) {
    const ip = frame.ipv4;
    const proto = ip.protocol === PROTO_UDP ? "UDP" : ip.protocol === PROTO_TCP ? "TCP" : ip.protocol === 1 ? "ICMP" : `proto ${ip.protocol}`;
    const ports = ip.ports ? ` ${ip.ports.sport} → ${ip.ports.dport}` : "";
    const frag = ip.fragmentOffset > 0 || ip.moreFragments ? ` frag@${ip.fragmentOffset}${ip.moreFragments ? "+" : ""}` : "";
    return `${head} IPv4 ${v4(ip.src)} → ${v4(ip.dst)} ${proto}${ports}${frag}`;
  }
  if (frame.type === ETH_IPV6 && frame.ipv6) {
    const ip = frame.ipv6;
    const ext = ip.extensions.length ? ` ext[${ip.extensions.join(",")}]` : "";
    const frag = ip.fragment ? ` frag@${ip.fragment.offset}${ip.fragment.more ? "+" : ""}` : "";
    let upper = ip.upper === undefined ? "" : ` proto ${ip.upper}`;
    if (ip.upper === PROTO_ICMPV6 && ip.icmpv6) {
      const target = ip.icmpv6.target ? ` target ${v6(ip.icmpv6.target)}` : "";
      upper = ` ICMPv6 ${ICMPV6_NAMES[ip.icmpv6.type] ?? `type ${ip.icmpv6.type}`}${target}`;
    } else if (ip.upper === PROTO_UDP || ip.upper === PROTO_TCP) {
      upper = ` ${ip.upper === PROTO_UDP ? "UDP" : "TCP"}${ip.ports ? ` ${ip.ports.sport} → ${ip.ports.dport}` : ""}`;
    }
    return `${head} IPv6 ${v6(ip.src)} → ${v6(ip.dst)}${ext}${frag}${upper}`;
  }
  return `${head} ethertype 0x${frame.type.toString(16).padStart(4, "0")}`;
}
