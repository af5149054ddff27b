// The skeleton of vifguard's table: the sets, maps and shared chains that hold every rule, its
// version, and the nft text that creates or repairs it. Pure.
//
// Layout (bridge family, one table named after the prefix):
//   from_vm_hook  prerouting -300 (before the bridge learns the source MAC): `iifname @ports_<level>`
//                 goes to the level's chain; then fail_closed_in
//   to_vm_forward forward -300, to_vm_output output -300: `oifname @ports_full/mac` to to_port,
//                 @ports_off accepted; then fail_closed_out
//   full, full_*  level full from-vm, docs/semantics.md rules 1-12 in order; mac, mac_*: level mac;
//   to_port       to-vm anti-sniffing (levels full and mac)
//   drop_<guard>  counts the drop in the dynamic set cnt_<guard> (one element per device, with a
//                 counter) and drops; counting in a chain of its own means a full counter set can
//                 never turn a drop into a pass; then logs a sample to NFLOG group NFLOG_GROUP
//                 (prefix "vg:<guard> "), at most SAMPLES_PER_SECOND per device and guard (the
//                 dynamic set log_<guard> holds each device's limit): over the limit the log rule
//                 does not match and the next rule drops all the same
// ND link-layer options are walked like the reference does, by their length fields: chain
// <level>_nd_<N> checks the option at byte N of the ICMPv6 message, then jumps by its length, for
// N = 8, 16, … below ND_WALK_END. Raw payload offsets are fixed, so each option position is a chain of
// its own; only ND messages pay for it.
import { createHash } from "node:crypto";
import { GUARDS, isGuard, type Guard } from "../../policy/guards.ts";
import { ELEMENT_SETS, type ElementSet, type NftLayout } from "./compile.ts";

export type SkeletonSet = Readonly<{ name: string; kind: "set" | "map"; spec: string }>;
export type SkeletonChain = Readonly<{ name: string; hook?: "prerouting" | "forward" | "output"; rules: readonly string[] }>;
export type Skeleton = Readonly<{ version: string; sets: readonly SkeletonSet[]; chains: readonly SkeletonChain[] }>;

/** ND options are walked up to this byte of the ICMPv6 message; an option starting at or after it drops. */
export const ND_WALK_END = 88;
export const HOOK_PRIORITY = -300;
export const VERSION_COMMENT = "vifguard skeleton";

export const dropChain = (guard: Guard): string => `drop_${guard.replaceAll("-", "_")}`;
export const counterSet = (guard: Guard): string => `cnt_${guard.replaceAll("-", "_")}`;
export const logSet = (guard: Guard): string => `log_${guard.replaceAll("-", "_")}`;
/** The NFLOG group dropped frames are sampled to (per network namespace; "VG"). */
export const NFLOG_GROUP = 0x5647;
/** Sampled frames per second per device and guard. */
export const SAMPLES_PER_SECOND = 5;
/** The log prefix of a sampled frame dropped for `guard`. */
export const logPrefix = (guard: Guard): string => `vg:${guard} `;
/** The guard of a log prefix logPrefix() wrote; undefined for any other prefix. */
export function guardOfLogPrefix(prefix: string): Guard | undefined {
  const m = /^vg:([a-z0-9-]+)\s*$/.exec(prefix);
  return m && isGuard(m[1]!) ? m[1] : undefined;
}

const SET_SPECS: Record<ElementSet, SkeletonSet> = {
  ports_full: { name: "ports_full", kind: "set", spec: "type ifname;" },
  ports_mac: { name: "ports_mac", kind: "set", spec: "type ifname;" },
  ports_off: { name: "ports_off", kind: "set", spec: "type ifname;" },
  macs: { name: "macs", kind: "set", spec: "type ifname . ether_addr;" },
  // device . source MAC . a MAC read raw (ARP sender, ND option): the pair is in the set iff equal.
  mac_pair: { name: "mac_pair", kind: "set", spec: "typeof iifname . ether saddr . @nh,64,48;" },
  v4: { name: "v4", kind: "set", spec: "type ifname . ether_addr . ipv4_addr;" },
  v4net: { name: "v4net", kind: "set", spec: "type ifname . ether_addr . ipv4_addr; flags interval;" },
  v6: { name: "v6", kind: "set", spec: "type ifname . ether_addr . ipv6_addr;" },
  v6net: { name: "v6net", kind: "set", spec: "type ifname . ether_addr . ipv6_addr; flags interval;" },
  // nft 1.0.6 has no `icmpv6 taddr`: the NS/NA target is read raw, 128 bits at byte 8 of ICMPv6.
  nd_target: { name: "nd_target", kind: "set", spec: "typeof iifname . ether saddr . @th,64,128;" },
  nd_target_net: { name: "nd_target_net", kind: "set", spec: "typeof iifname . ether saddr . @th,64,128; flags interval;" },
};

const byte = (n: number): string => `@th,${n * 8},8`;

/**
 * The ND option walk for one level. The kernel allows 16 levels of jump/goto (EMLINK beyond), so the
 * walk is one chain per option position, entered at depth 5 at the most: positions up to ND_WALK_END.
 * At `full` a broken option list drops (nd-spoof); at `mac` it ends the walk (the reference reads no
 * further). An option that starts beyond the walk drops at both levels (fail closed).
 */
function ndWalk(level: "full" | "mac"): SkeletonChain[] {
  const broken = level === "full" ? "goto drop_nd_spoof" : "accept";
  const chains: SkeletonChain[] = [];
  for (let at = 8; at < ND_WALK_END; at += 8) {
    const steps: string[] = [];
    for (let units = 1; at + units * 8 < ND_WALK_END; units++) steps.push(`${units} : goto ${level}_nd_${at + units * 8}`);
    chains.push({
      name: `${level}_nd_${at}`,
      rules: [
        // Without extension headers the IPv6 payload length bounds the message, so padding and
        // trailing bytes are never read as options; behind them only the packet's end can.
        `ip6 nexthdr ipv6-icmp ip6 length < ${at} ${broken}`, // the previous option runs past the message
        `ip6 nexthdr ipv6-icmp ip6 length ${at} accept`, // the message ends here
        `${byte(at + 1)} 0 ${broken}`, // option length 0
        `${byte(at)} { 1, 2 } iifname . ether saddr . @th,${(at + 2) * 8},48 != @mac_pair goto drop_nd_spoof`, // SLL/TLL ≠ source MAC
        ...(steps.length ? [`${byte(at + 1)} vmap { ${steps.join(", ")} }`] : []),
        `${byte(at)} 0-255 goto drop_nd_spoof`, // an option beyond the walk: fail closed
        "accept", // the packet ends here
      ],
    });
  }
  return chains;
}

function buildSkeleton(version: string): Omit<Skeleton, "version"> {
  const sets: SkeletonSet[] = [
    ...ELEMENT_SETS.map((s) => SET_SPECS[s]),
    ...GUARDS.map((g) => ({ name: counterSet(g), kind: "set" as const, spec: "type ifname; size 65535; flags dynamic; counter;" })),
    ...GUARDS.map((g) => ({ name: logSet(g), kind: "set" as const, spec: "type ifname; size 65535; flags dynamic,timeout; timeout 60s;" })),
  ];
  const chains: SkeletonChain[] = [
    {
      name: "from_vm_hook",
      hook: "prerouting",
      rules: [
        // Fast paths: a bound source's unicast IP traffic is decided with one lookup, where the level's
        // chain below takes four to six. They accept only what that chain accepts too, and anything
        // else falls through to it: a v4/v6 element exists only for a level-full port's own MAC; a
        // transport header is read only behind a valid IP header and never in a later fragment; and
        // the ports there are neither a DHCP server's source port nor a client's destination port (for
        // other protocols that only sends a few more frames the long way). IPv6: TCP and UDP with 4
        // header bytes only. `!= 68-68`, not `!= 68`: nft 1.0.6 merges two `!=` payload compares into
        // one 32-bit `!=` (sport.dport != 67.68, "not both"), which would let 67→67 and 1067→68 pass.
        `ether type ip @th,0,16 != 67 @th,16,16 != 68-68 iifname . ether saddr . ip saddr @v4 accept comment "${VERSION_COMMENT} ${version}"`,
        "ether type ip6 meta l4proto { tcp, udp } @th,16,16 0-65535 @th,0,16 != 547 @th,16,16 != 546-546 iifname . ether saddr . ip6 saddr @v6 accept",
        // ARP from a bound sender (rule 4 in two lookups where `full` takes seven): an Ethernet/IPv4
        // header of full length (htype 1, ptype 0x0800, hlen 6, plen 4 in one compare), sender MAC =
        // source MAC, (sender MAC, sender IP) bound. Probes, CIDR pairs and the rest go the long way.
        "ether type arp @nh,0,48 0x000108000604 meta length >= 28 iifname . ether saddr . @nh,64,48 @mac_pair iifname . ether saddr . arp saddr ip @v4 accept",
        // NS and NA from a bound source with exactly one option, the source's own SLL (NS) or TLL
        // (NA), and no extension header (rules 9-11 in two or three lookups where `full` walks eight
        // chains): an NS from a bound source needs no target check, an NA's target must be bound.
        "ether type ip6 ip6 nexthdr ipv6-icmp ip6 length 32 icmpv6 type nd-neighbor-solicit @th,192,16 0x0101 iifname . ether saddr . @th,208,48 @mac_pair iifname . ether saddr . ip6 saddr @v6 accept",
        "ether type ip6 ip6 nexthdr ipv6-icmp ip6 length 32 icmpv6 type nd-neighbor-advert @th,192,16 0x0201 iifname . ether saddr . @th,208,48 @mac_pair iifname . ether saddr . ip6 saddr @v6 iifname . ether saddr . @th,64,128 @nd_target accept",
        "iifname @ports_full goto full",
        "iifname @ports_mac goto mac",
        "iifname @ports_off accept",
        "jump fail_closed_in",
      ],
    },
    ...(["forward", "output"] as const).map((hook) => ({
      name: `to_vm_${hook}`,
      hook,
      // The first rule is to_port's unicast check, ahead of dispatch: one lookup for the common case.
      rules: ["oifname . ether daddr @macs accept", "oifname @ports_full goto to_port", "oifname @ports_mac goto to_port", "oifname @ports_off accept", "jump fail_closed_out"],
    })),
    { name: "fail_closed_in", rules: [] },
    { name: "fail_closed_out", rules: [] },
    // Level full, from-vm: docs/semantics.md rules in order; the first failing rule names the reason.
    {
      name: "full",
      rules: [
        "iifname . ether saddr != @macs goto drop_mac_spoof", // 1 (a multicast source is never in macs)
        "ether type { 0x8100, 0x88a8, 0x9100 } goto drop_vlan", // 2: `ether type` sees the outer tag (hwaccel tags are rebuilt)
        "ether type vmap { 0x0800 : goto full_ip, 0x0806 : goto full_arp, 0x86dd : goto full_ip6, 0x8035 : goto full_rarp }",
        "goto drop_ethertype", // 3: anything else, and 802.3 lengths (LLC/SNAP)
      ],
    },
    {
      name: "full_arp", // 4
      rules: [
        "meta length < 8 goto drop_malformed",
        "arp hlen 6 arp plen 4 meta length < 28 goto drop_malformed",
        "arp htype != 1 goto drop_arp_spoof",
        "arp ptype != 0x0800 goto drop_arp_spoof",
        "arp hlen != 6 goto drop_arp_spoof",
        "arp plen != 4 goto drop_arp_spoof",
        "iifname . ether saddr . @nh,64,48 != @mac_pair goto drop_arp_spoof", // sender hardware address = source MAC
        "arp saddr ip 0.0.0.0 accept", // probe
        "iifname . ether saddr . arp saddr ip @v4 accept",
        "iifname . ether saddr . arp saddr ip @v4net accept",
        "goto drop_arp_spoof",
      ],
    },
    {
      name: "full_rarp", // 3: RARP only as QEMU's announce-self
      rules: [
        "meta length < 8 goto drop_malformed",
        "@nh,32,16 0x0604 meta length < 28 goto drop_malformed",
        "ether daddr ff:ff:ff:ff:ff:ff @nh,0,64 0x0001080006040003 @nh,112,32 0 @nh,192,32 0 iifname . ether saddr . @nh,64,48 @mac_pair iifname . ether saddr . @nh,144,48 @mac_pair accept",
        "goto drop_ethertype",
      ],
    },
    // The kernel validates the IPv4 header (version, IHL, total length) before it sets the transport
    // protocol; without one `meta l4proto` does not match.
    { name: "full_ip", rules: ["meta l4proto 0-255 goto full_ip_valid", "goto drop_malformed"] },
    {
      name: "full_ip_valid", // 5
      rules: [
        "ip saddr 0.0.0.0 ip daddr 255.255.255.255 udp sport 68 udp dport 67 accept", // DHCP client
        "iifname . ether saddr . ip saddr @v4 goto full_ip_bound",
        "iifname . ether saddr . ip saddr @v4net goto full_ip_bound",
        "goto drop_ipv4_spoof",
      ],
    },
    // 6: a later fragment carries no UDP header, but in the bridge family `udp sport` reads its first
    // bytes all the same (Linux 6.x): let it pass before.
    { name: "full_ip_bound", rules: ["ip frag-off & 0x1fff != 0 accept", "udp sport 67 goto drop_dhcp_server_guard", "udp dport 68 goto drop_dhcp_server_guard", "accept"] },
    {
      // 7: nft walks the extension headers (ipv6_find_hdr) to the transport header; when the chain runs
      // off the packet it sets none, and `meta l4proto` does not match. Chains stay shallow: the kernel
      // allows 16 levels of goto, and the ND walk needs most of them.
      name: "full_ip6",
      rules: [
        "frag frag-off != 0 goto full_ip6_later",
        "meta l4proto != { 17, 58 } goto full_ip6_source",
        "meta l4proto { 17, 58 } @th,16,16 0-65535 goto full_ip6_source", // UDP and ICMPv6 need their first 4 bytes
        "meta l4proto { 17, 58 } frag frag-off 0 frag more-fragments 1 goto drop_ipv6_fragment",
        "meta l4proto { 17, 58 } goto drop_malformed",
        "frag frag-off 0 goto drop_ipv6_fragment", // the header chain runs off a first fragment
        "goto drop_malformed",
      ],
    },
    {
      name: "full_ip6_source", // 8
      rules: [
        "iifname . ether saddr . ip6 saddr @v6 goto full_ip6_bound",
        "iifname . ether saddr . ip6 saddr @v6net goto full_ip6_bound",
        "ip6 saddr :: ip6 daddr ff02::1:ff00:0/104 icmpv6 type nd-neighbor-solicit goto full_ip6_bound", // DAD
        "ip6 saddr :: icmpv6 type { mld-listener-report, mld2-listener-report } goto full_ip6_bound",
        "goto drop_ipv6_spoof",
      ],
    },
    {
      name: "full_ip6_later", // a non-first fragment: the source check, nothing else to read
      rules: ["iifname . ether saddr . ip6 saddr @v6 accept", "iifname . ether saddr . ip6 saddr @v6net accept", "goto drop_ipv6_spoof"],
    },
    {
      // 9-12; `icmpv6 type` reads the header found after the extension headers. 11: an NA's target, and
      // a DAD solicitation's, is bound to the source MAC; then the options of NS, NA and RS.
      name: "full_ip6_bound",
      rules: [
        "icmpv6 type vmap { nd-router-advert : goto drop_ra_guard, nd-redirect : goto drop_redirect_guard, nd-router-solicit : goto full_nd_8 }",
        "icmpv6 type nd-neighbor-advert iifname . ether saddr . @th,64,128 @nd_target goto full_nd_24",
        "icmpv6 type nd-neighbor-advert iifname . ether saddr . @th,64,128 @nd_target_net goto full_nd_24",
        "icmpv6 type nd-neighbor-solicit ip6 saddr != :: goto full_nd_24",
        "icmpv6 type nd-neighbor-solicit iifname . ether saddr . @th,64,128 @nd_target goto full_nd_24",
        "icmpv6 type nd-neighbor-solicit iifname . ether saddr . @th,64,128 @nd_target_net goto full_nd_24",
        "icmpv6 type { nd-neighbor-advert, nd-neighbor-solicit } goto drop_nd_spoof",
        "udp sport 547 goto drop_dhcpv6_server_guard",
        "udp dport 546 goto drop_dhcpv6_server_guard", // a server whatever its source port
        "accept",
      ],
    },
    ...ndWalk("full"),
    // Level mac, from-vm: the MAC side only; `ether type` is the outer one, so tagged frames pass unread.
    { name: "mac", rules: ["iifname . ether saddr != @macs goto drop_mac_spoof", "ether type arp goto mac_arp", "ether type ip6 goto mac_ip6", "accept"] },
    {
      name: "mac_arp",
      rules: [
        "meta length < 8 accept", // truncated: not read at level mac
        "arp hlen != 6 accept",
        "arp plen != 4 goto drop_arp_spoof", // the reference reads no sender address there: ≠ source MAC
        "meta length < 28 accept",
        "iifname . ether saddr . @nh,64,48 != @mac_pair goto drop_arp_spoof",
        "accept",
      ],
    },
    {
      name: "mac_ip6",
      rules: ["icmpv6 type vmap { nd-router-solicit : goto mac_nd_8, nd-neighbor-solicit : goto mac_nd_24, nd-neighbor-advert : goto mac_nd_24 }", "accept"],
    },
    ...ndWalk("mac"),
    // To the VM (levels full and mac): unicast only for the port's MACs.
    { name: "to_port", rules: ["ether daddr & 01:00:00:00:00:00 == 01:00:00:00:00:00 accept", "oifname . ether daddr @macs accept", "goto drop_not_for_this_port"] },
    ...GUARDS.map((g) => {
      const device = g === "not-for-this-port" ? "oifname" : "iifname";
      const sample = `update @${logSet(g)} { ${device} limit rate ${SAMPLES_PER_SECOND}/second } log prefix "${logPrefix(g)}" group ${NFLOG_GROUP}`;
      return { name: dropChain(g), rules: [`add @${counterSet(g)} { ${device} }`, sample, "drop"] };
    }),
  ];
  return { sets, chains };
}

/** The skeleton; its version is a hash of its own text, so any change to the rules re-applies every port. */
export function skeleton(): Skeleton {
  const draft = buildSkeleton("VERSION");
  const version = createHash("sha256").update(JSON.stringify(draft)).digest("hex").slice(0, 12);
  return { version, ...buildSkeleton(version) };
}

export const SKELETON = skeleton();

function hookSpec(chain: SkeletonChain): string {
  return chain.hook ? ` { type filter hook ${chain.hook} priority ${HOOK_PRIORITY}; policy accept; }` : "";
}

/**
 * Creates or repairs the skeleton in place: `add` of the table, sets, maps and chains is a no-op when
 * they exist, and each chain is flushed and refilled. Set elements (the ports) are not touched.
 */
export function renderSkeleton(layout: NftLayout, sk: Skeleton = SKELETON): string {
  const t = `bridge ${layout.table}`;
  const lines = [`add table ${t}`];
  for (const s of sk.sets) lines.push(`add ${s.kind} ${t} ${s.name} { ${s.spec} }`);
  for (const c of sk.chains) lines.push(`add chain ${t} ${c.name}${hookSpec(c)}`);
  for (const c of sk.chains) lines.push(`flush chain ${t} ${c.name}`);
  for (const c of sk.chains) for (const r of c.rules) lines.push(`add rule ${t} ${c.name} ${r}`);
  return lines.join("\n") + "\n";
}

