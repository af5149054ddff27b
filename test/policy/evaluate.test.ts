// evaluate() at level full, from-vm: rules 1–6 of docs/semantics.md (source MAC, VLAN tags,
// ethertypes, ARP, IPv4, DHCP) and malformed frames. IPv6 rules: evaluate-ipv6.test.ts; levels
// mac and off, the global switch and to-vm: evaluate-levels.test.ts.
import { test } from "node:test";
import * as f from "../../src/policy/frame-builder.ts";
import {
  ALICE_MAC,
  BCAST,
  BOB_MAC,
  EVE_MAC,
  VIP_MAC,
  aliceFull,
  checkPadded,
  checkRows,
  e4,
  earp,
  eveFull,
  ping4,
  udp4Fragment,
  withIpv4Options,
  type Row,
} from "./evaluate-fixture.ts";

const from = "from-vm" as const;
const allow = { verdict: "allow", reason: "allowed" } as const;
const drop = (reason: string) => ({ verdict: "drop", reason }) as const;

const gratuitous = (mac: string, address: string, sha = mac): Uint8Array => earp(mac, BCAST, f.arp({ op: 2, sha, spa: address, tha: BCAST, tpa: address }));
const announceSelf = (mac: string, over: Partial<f.ArpFields> = {}, dst = BCAST): Uint8Array =>
  f.ether(dst, mac, 0x8035, f.arp({ op: 3, sha: mac, spa: "0.0.0.0", tha: mac, tpa: "0.0.0.0", ...over }));
const discover = (mac: string, src = "0.0.0.0", dst = "255.255.255.255", sport = 68, dport = 67): Uint8Array =>
  e4(mac, dst === "255.255.255.255" ? BCAST : BOB_MAC, f.udp4(src, dst, sport, dport, f.dhcp(1, 1, mac)));
const offer = (mac: string, src: string): Uint8Array => e4(mac, BCAST, f.udp4(src, "255.255.255.255", 67, 68, f.dhcp(2, 2, BOB_MAC, "10.0.0.3")));
const dns = (mac: string, src: string): Uint8Array => e4(mac, BOB_MAC, f.udp4(src, "10.0.0.3", 40000, 53, new Uint8Array(12)));

/** An ARP header with chosen hardware/protocol sizes: hlen-byte and plen-byte addresses, all zero but the sender's first byte. */
function oddArp(src: string, htype: number, ptype: number, hlen: number, plen: number): Uint8Array {
  const body = new Uint8Array(8 + 2 * (hlen + plen));
  body.set([htype >> 8, htype & 0xff, ptype >> 8, ptype & 0xff, hlen, plen, 0, 1]);
  return earp(src, BCAST, body);
}

/** A frame with the IPv4 ethertype whose IP header is cut after `bytes` bytes. */
const cutIpv4 = (src: string, bytes: number): Uint8Array => e4(src, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3").subarray(0, bytes));

const SOURCE_MAC: Row[] = [
  { name: "Alice sends with her MAC and IP", frame: ping4(ALICE_MAC, "10.0.0.1"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice sends with her VIP pair's MAC and its IP", frame: ping4(VIP_MAC, "10.0.0.200"), direction: from, policy: aliceFull, ...allow },
  { name: "Eve sends with her own MAC and IP", frame: ping4(EVE_MAC, "10.0.0.2"), direction: from, policy: eveFull, ...allow },
  { name: "Eve sends with Alice's MAC (and IP)", frame: ping4(ALICE_MAC, "10.0.0.1"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "Eve sends with Alice's MAC and her own IP", frame: ping4(ALICE_MAC, "10.0.0.2"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "Eve sends with Alice's VIP pair MAC", frame: ping4(VIP_MAC, "10.0.0.2"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "Eve sends with a made-up MAC", frame: ping4("02:00:00:00:00:99", "10.0.0.2"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "a multicast source MAC (group bit set)", frame: ping4("53:54:00:00:00:02", "10.0.0.2"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "an IPv4-multicast source MAC 01:00:5e:00:00:01", frame: ping4("01:00:5e:00:00:01", "10.0.0.2"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "the broadcast source MAC", frame: ping4(BCAST, "10.0.0.2"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "the all-zero source MAC", frame: ping4("00:00:00:00:00:00", "10.0.0.2"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "a foreign source MAC is refused before the VLAN tag is looked at", frame: f.tag(ping4(BOB_MAC, "10.0.0.2"), 5), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "a foreign source MAC is refused before the ethertype is looked at", frame: f.ether(BOB_MAC, ALICE_MAC, 0x8137, new Uint8Array(46)), direction: from, policy: eveFull, ...drop("mac-spoof") },
];

const VLAN: Row[] = [
  { name: "802.1Q-tagged IPv4 (VLAN 5) from Eve's own MAC and IP", frame: f.tag(ping4(EVE_MAC, "10.0.0.2"), 5), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "802.1Q priority tag (VID 0)", frame: f.tag(ping4(EVE_MAC, "10.0.0.2"), 0), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "802.1ad-tagged IPv4", frame: f.tag(ping4(EVE_MAC, "10.0.0.2"), 5, 0x88a8), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "QinQ: 802.1ad outer, 802.1Q inner", frame: f.tag(f.tag(ping4(EVE_MAC, "10.0.0.2"), 10), 20, 0x88a8), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "double 802.1Q", frame: f.tag(f.tag(ping4(EVE_MAC, "10.0.0.2"), 10), 20), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "old QinQ TPID 0x9100", frame: f.tag(ping4(EVE_MAC, "10.0.0.2"), 5, 0x9100), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "802.1Q-tagged ARP for Eve's own IP", frame: f.tag(gratuitous(EVE_MAC, "10.0.0.2"), 5), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "802.1Q-tagged forged ARP for Alice's IP", frame: f.tag(gratuitous(EVE_MAC, "10.0.0.1"), 5), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "802.1Q-tagged IPv6 from Eve's link-local", frame: f.tag(f.ether(BOB_MAC, EVE_MAC, 0x86dd, f.icmp6Echo("fe80::5054:ff:fe00:2", "fe80::5054:ff:fe00:3")), 5), direction: from, policy: eveFull, ...drop("vlan") },
  { name: "Alice's tagged frame with her own MAC and IP", frame: f.tag(ping4(ALICE_MAC, "10.0.0.1"), 100), direction: from, policy: aliceFull, ...drop("vlan") },
];

const ETHERTYPES: Row[] = [
  { name: "LLC/SNAP carrying IPv4 from Eve's own IP", frame: f.llcSnap(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3")), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "LLC/SNAP carrying ARP", frame: f.llcSnap(BCAST, EVE_MAC, 0x0806, f.arp({ sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "LLC/SNAP carrying IPX", frame: f.llcSnap(BOB_MAC, EVE_MAC, 0x8137, new Uint8Array(40)), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "802.3 raw LLC (STP BPDU, length 38)", frame: f.ether("01:80:c2:00:00:00", EVE_MAC, 38, f.withTrailer(Uint8Array.from([0x42, 0x42, 0x03]), new Uint8Array(35))), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "IPX ethertype 0x8137", frame: f.ether(BOB_MAC, EVE_MAC, 0x8137, new Uint8Array(46)), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "LLDP ethertype 0x88cc", frame: f.ether("01:80:c2:00:00:0e", EVE_MAC, 0x88cc, new Uint8Array(46)), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "MPLS unicast ethertype 0x8847 carrying Eve's IPv4", frame: f.ether(BOB_MAC, EVE_MAC, 0x8847, f.withTrailer(Uint8Array.from([0, 0x01, 0x01, 0x40]), f.icmp4Echo("10.0.0.2", "10.0.0.3"))), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "PPPoE discovery ethertype 0x8863", frame: f.ether(BCAST, EVE_MAC, 0x8863, new Uint8Array(46)), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "local experimental ethertype 0x88b5", frame: f.ether(BOB_MAC, EVE_MAC, 0x88b5, new Uint8Array(46)), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "Alice's LLC/SNAP IPv4 from her own IP", frame: f.llcSnap(BOB_MAC, ALICE_MAC, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), direction: from, policy: aliceFull, ...drop("ethertype") },
  // RARP: only QEMU's announce-self.
  { name: "QEMU's announce-self after migration (RARP op 3, broadcast)", frame: announceSelf(ALICE_MAC), direction: from, policy: aliceFull, ...allow },
  { name: "announce-self from the VIP pair's MAC", frame: announceSelf(VIP_MAC), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's announce-self for her own MAC", frame: announceSelf(EVE_MAC), direction: from, policy: eveFull, ...allow },
  { name: "Eve's announce-self with Alice's MAC as source", frame: announceSelf(ALICE_MAC), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "RARP reply (op 4)", frame: announceSelf(EVE_MAC, { op: 4 }), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "RARP request (op 3) unicast to Bob", frame: announceSelf(EVE_MAC, {}, BOB_MAC), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "RARP op 3 whose sender hardware address is Alice's", frame: announceSelf(EVE_MAC, { sha: ALICE_MAC }), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "RARP op 3 whose target hardware address is Alice's", frame: announceSelf(EVE_MAC, { tha: ALICE_MAC }), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "RARP op 3 with sender IP 10.0.0.2", frame: announceSelf(EVE_MAC, { spa: "10.0.0.2" }), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "RARP op 3 with target IP 10.0.0.1", frame: announceSelf(EVE_MAC, { tpa: "10.0.0.1" }), direction: from, policy: eveFull, ...drop("ethertype") },
  { name: "RARP op 3 with ARP opcode 1", frame: announceSelf(EVE_MAC, { op: 1 }), direction: from, policy: eveFull, ...drop("ethertype") },
];

const ARP: Row[] = [
  { name: "Alice's ARP request for Bob", frame: earp(ALICE_MAC, BCAST, f.arp({ sha: ALICE_MAC, spa: "10.0.0.1", tpa: "10.0.0.3" })), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's ARP reply to Bob", frame: earp(ALICE_MAC, BOB_MAC, f.arp({ op: 2, sha: ALICE_MAC, spa: "10.0.0.1", tha: BOB_MAC, tpa: "10.0.0.3" })), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's gratuitous ARP for her own IP", frame: gratuitous(ALICE_MAC, "10.0.0.1"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's ARP probe from 0.0.0.0 (RFC 5227)", frame: earp(ALICE_MAC, BCAST, f.arp({ sha: ALICE_MAC, spa: "0.0.0.0", tpa: "10.0.0.1" })), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's ARP probe from 0.0.0.0 for Alice's IP (a probe claims nothing)", frame: earp(EVE_MAC, BCAST, f.arp({ sha: EVE_MAC, spa: "0.0.0.0", tpa: "10.0.0.1" })), direction: from, policy: eveFull, ...allow },
  { name: "ARP probe whose sender hardware address is Alice's", frame: earp(EVE_MAC, BCAST, f.arp({ sha: ALICE_MAC, spa: "0.0.0.0", tpa: "10.0.0.2" })), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "Alice's failover: gratuitous ARP for her VIP 10.0.0.100 in 10.0.0.96/28", frame: gratuitous(ALICE_MAC, "10.0.0.100"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's gratuitous ARP for the last address of 10.0.0.96/28", frame: gratuitous(ALICE_MAC, "10.0.0.111"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's gratuitous ARP just past 10.0.0.96/28", frame: gratuitous(ALICE_MAC, "10.0.0.112"), direction: from, policy: aliceFull, ...drop("arp-spoof") },
  { name: "Alice's gratuitous ARP for 10.0.0.200 from its pair MAC", frame: gratuitous(VIP_MAC, "10.0.0.200"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's ARP request from the pair MAC for its IP", frame: earp(VIP_MAC, BCAST, f.arp({ sha: VIP_MAC, spa: "10.0.0.200", tpa: "10.0.0.3" })), direction: from, policy: aliceFull, ...allow },
  { name: "gratuitous ARP for 10.0.0.200 from Alice's port MAC (the pair is bound to its own MAC)", frame: gratuitous(ALICE_MAC, "10.0.0.200"), direction: from, policy: aliceFull, ...drop("arp-spoof") },
  { name: "gratuitous ARP for Alice's fixed IP from her pair MAC", frame: gratuitous(VIP_MAC, "10.0.0.1"), direction: from, policy: aliceFull, ...drop("arp-spoof") },
  { name: "pair-MAC frame whose sender hardware address is the port's MAC", frame: gratuitous(VIP_MAC, "10.0.0.200", ALICE_MAC), direction: from, policy: aliceFull, ...drop("arp-spoof") },
  { name: "Eve's gratuitous ARP for Alice's IP", frame: gratuitous(EVE_MAC, "10.0.0.1"), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "Eve's gratuitous ARP for Alice's VIP", frame: gratuitous(EVE_MAC, "10.0.0.100"), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "Eve's forged ARP reply to Bob for Alice's IP", frame: earp(EVE_MAC, BOB_MAC, f.arp({ op: 2, sha: EVE_MAC, spa: "10.0.0.1", tha: BOB_MAC, tpa: "10.0.0.3" })), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "Eve's ARP request with Alice's IP as sender", frame: earp(EVE_MAC, BCAST, f.arp({ sha: EVE_MAC, spa: "10.0.0.1", tpa: "10.0.0.3" })), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "Eve's ARP with her IP but Alice's sender hardware address (sha ≠ source MAC)", frame: earp(EVE_MAC, BCAST, f.arp({ sha: ALICE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "Eve's ARP with a made-up sender hardware address", frame: earp(EVE_MAC, BCAST, f.arp({ sha: "02:00:00:00:00:99", spa: "10.0.0.2", tpa: "10.0.0.3" })), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "Eve's own ARP request for Bob", frame: earp(EVE_MAC, BCAST, f.arp({ sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })), direction: from, policy: eveFull, ...allow },
  { name: "Eve's ARP with the target hardware address Alice's (tha is not checked)", frame: earp(EVE_MAC, BOB_MAC, f.arp({ op: 2, sha: EVE_MAC, spa: "10.0.0.2", tha: ALICE_MAC, tpa: "10.0.0.1" })), direction: from, policy: eveFull, ...allow },
  { name: "ARP with IEEE 802 hardware type (htype 6)", frame: earp(EVE_MAC, BCAST, f.arp({ htype: 6, sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "ARP whose protocol type is IPv6", frame: earp(EVE_MAC, BCAST, f.arp({ ptype: 0x86dd, sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "ARP with 8-byte hardware addresses", frame: oddArp(EVE_MAC, 1, 0x0800, 8, 4), direction: from, policy: eveFull, ...drop("arp-spoof") },
  { name: "ARP with 16-byte protocol addresses", frame: oddArp(EVE_MAC, 1, 0x0800, 6, 16), direction: from, policy: eveFull, ...drop("arp-spoof") },
];

const IPV4: Row[] = [
  { name: "Alice's ICMP echo from her fixed IP", frame: ping4(ALICE_MAC, "10.0.0.1"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's VIP 10.0.0.100 (in her /28 pair)", frame: ping4(ALICE_MAC, "10.0.0.100"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice just outside her /28 pair (10.0.0.95)", frame: ping4(ALICE_MAC, "10.0.0.95"), direction: from, policy: aliceFull, ...drop("ipv4-spoof") },
  { name: "Alice's pair IP 10.0.0.200 from its pair MAC", frame: ping4(VIP_MAC, "10.0.0.200"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's pair IP 10.0.0.200 from her port MAC", frame: ping4(ALICE_MAC, "10.0.0.200"), direction: from, policy: aliceFull, ...drop("ipv4-spoof") },
  { name: "Alice's fixed IP from the pair MAC", frame: ping4(VIP_MAC, "10.0.0.1"), direction: from, policy: aliceFull, ...drop("ipv4-spoof") },
  { name: "Eve sends from Alice's IP", frame: ping4(EVE_MAC, "10.0.0.1"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "Eve sends from Alice's VIP", frame: ping4(EVE_MAC, "10.0.0.100"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "Eve sends from an address nobody holds", frame: ping4(EVE_MAC, "10.0.0.77"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "Eve sends from 0.0.0.0 (not a DHCP client)", frame: ping4(EVE_MAC, "0.0.0.0"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "Eve sends from 255.255.255.255", frame: ping4(EVE_MAC, "255.255.255.255"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "Eve's UDP from her own IP to a broadcast", frame: e4(EVE_MAC, BCAST, f.udp4("10.0.0.2", "255.255.255.255", 5353, 5353, new Uint8Array(8))), direction: from, policy: eveFull, ...allow },
  { name: "Eve's IGMP-style packet to 224.0.0.22 from her IP", frame: e4(EVE_MAC, "01:00:5e:00:00:16", f.ipv4({ src: "10.0.0.2", dst: "224.0.0.22", protocol: 2, payload: new Uint8Array(8), ttl: 1 })), direction: from, policy: eveFull, ...allow },
  { name: "Eve's TCP from her own IP", frame: e4(EVE_MAC, BOB_MAC, f.ipv4({ src: "10.0.0.2", dst: "10.0.0.3", protocol: 6, payload: Uint8Array.from([0x9c, 0x40, 0, 80, ...new Uint8Array(16)]) })), direction: from, policy: eveFull, ...allow },
  { name: "Eve's IPv4 with header options from her IP", frame: e4(EVE_MAC, BOB_MAC, withIpv4Options(f.icmp4Echo("10.0.0.2", "10.0.0.3"), Uint8Array.from([1, 1, 1, 0]))), direction: from, policy: eveFull, ...allow },
  { name: "Eve's IPv4 with header options from Alice's IP", frame: e4(EVE_MAC, BOB_MAC, withIpv4Options(f.icmp4Echo("10.0.0.1", "10.0.0.3"), Uint8Array.from([1, 1, 1, 0]))), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  // DHCP client: 0.0.0.0 → 255.255.255.255, UDP 68 → 67.
  { name: "Alice's DHCP discover from 0.0.0.0", frame: discover(ALICE_MAC), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's DHCP discover from 0.0.0.0", frame: discover(EVE_MAC), direction: from, policy: eveFull, ...allow },
  { name: "DHCP discover from the VIP pair's MAC", frame: discover(VIP_MAC), direction: from, policy: aliceFull, ...allow },
  { name: "DHCP discover from a foreign MAC", frame: discover(BOB_MAC), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "UDP 68 → 67 from 0.0.0.0 to a unicast server", frame: discover(EVE_MAC, "0.0.0.0", "10.0.0.254"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "UDP 68 → 67 from 0.0.0.0 to the subnet broadcast 10.0.0.255", frame: discover(EVE_MAC, "0.0.0.0", "10.0.0.255"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "UDP 67 → 68 from 0.0.0.0 to 255.255.255.255 (swapped ports)", frame: discover(EVE_MAC, "0.0.0.0", "255.255.255.255", 67, 68), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "UDP 68 → 68 from 0.0.0.0 to 255.255.255.255", frame: discover(EVE_MAC, "0.0.0.0", "255.255.255.255", 68, 68), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "UDP 1234 → 67 from 0.0.0.0 to 255.255.255.255", frame: discover(EVE_MAC, "0.0.0.0", "255.255.255.255", 1234, 67), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "TCP 68 → 67 from 0.0.0.0 to 255.255.255.255", frame: e4(EVE_MAC, BCAST, f.ipv4({ src: "0.0.0.0", dst: "255.255.255.255", protocol: 6, payload: Uint8Array.from([0, 68, 0, 67, ...new Uint8Array(16)]) })), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "Alice's DHCP renewal from her bound IP to the server", frame: discover(ALICE_MAC, "10.0.0.1", "10.0.0.254"), direction: from, policy: aliceFull, ...allow },
  { name: "DHCP request from Alice's IP via Eve", frame: discover(EVE_MAC, "10.0.0.1", "255.255.255.255"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  // DHCP server: UDP source port 67.
  { name: "Eve's DHCP offer from her own IP", frame: offer(EVE_MAC, "10.0.0.2"), direction: from, policy: eveFull, ...drop("dhcp-server-guard") },
  { name: "Alice's DHCP offer from her own IP", frame: offer(ALICE_MAC, "10.0.0.1"), direction: from, policy: aliceFull, ...drop("dhcp-server-guard") },
  { name: "a DHCP offer from the VIP pair (bound)", frame: offer(VIP_MAC, "10.0.0.200"), direction: from, policy: aliceFull, ...drop("dhcp-server-guard") },
  { name: "a DHCP relay (67 → 67) from Eve's own IP", frame: e4(EVE_MAC, BOB_MAC, f.udp4("10.0.0.2", "10.0.0.3", 67, 67, f.dhcp(1, 1, BOB_MAC))), direction: from, policy: eveFull, ...drop("dhcp-server-guard") },
  // A server whatever its source port: UDP to a client's port 68 (issue 12).
  { name: "Eve's DHCP offer from port 1067 to port 68", frame: e4(EVE_MAC, BCAST, f.udp4("10.0.0.2", "255.255.255.255", 1067, 68, f.dhcp(2, 2, BOB_MAC, "10.0.0.3"))), direction: from, policy: eveFull, ...drop("dhcp-server-guard") },
  { name: "Eve's DHCP ack unicast to Bob from port 40000 to port 68", frame: e4(EVE_MAC, BOB_MAC, f.udp4("10.0.0.2", "10.0.0.3", 40000, 68, f.dhcp(2, 5, BOB_MAC, "10.0.0.3"))), direction: from, policy: eveFull, ...drop("dhcp-server-guard") },
  { name: "first IPv4 fragment of a DHCP offer from port 1067", frame: e4(EVE_MAC, BCAST, udp4Fragment("10.0.0.2", "255.255.255.255", 1067, 68, 0, true)), direction: from, policy: eveFull, ...drop("dhcp-server-guard") },
  { name: "Alice's UDP from port 68 to port 53 (68 is only a destination to the guard)", frame: e4(ALICE_MAC, BOB_MAC, f.udp4("10.0.0.1", "10.0.0.3", 68, 53, new Uint8Array(8))), direction: from, policy: aliceFull, ...allow },
  { name: "TCP to port 68 (the guard is UDP only)", frame: e4(EVE_MAC, BOB_MAC, f.ipv4({ src: "10.0.0.2", dst: "10.0.0.3", protocol: 6, payload: Uint8Array.from([0x9c, 0x40, 0, 68, ...new Uint8Array(16)]) })), direction: from, policy: eveFull, ...allow },
  { name: "a DHCP offer from Alice's IP via Eve (address first)", frame: offer(EVE_MAC, "10.0.0.1"), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "Eve's DNS query (UDP 53) from her own IP", frame: dns(EVE_MAC, "10.0.0.2"), direction: from, policy: eveFull, ...allow },
  { name: "Alice's DNS query (UDP 53)", frame: dns(ALICE_MAC, "10.0.0.1"), direction: from, policy: aliceFull, ...allow },
  { name: "UDP to port 67 from Eve's IP (a client talking to a server)", frame: e4(EVE_MAC, BOB_MAC, f.udp4("10.0.0.2", "10.0.0.3", 40000, 67, new Uint8Array(8))), direction: from, policy: eveFull, ...allow },
  { name: "TCP from source port 67 (rule 6 is UDP only)", frame: e4(EVE_MAC, BOB_MAC, f.ipv4({ src: "10.0.0.2", dst: "10.0.0.3", protocol: 6, payload: Uint8Array.from([0, 67, 0, 68, ...new Uint8Array(16)]) })), direction: from, policy: eveFull, ...allow },
  { name: "a DHCP offer behind IPv4 header options", frame: e4(EVE_MAC, BCAST, withIpv4Options(f.udp4("10.0.0.2", "255.255.255.255", 67, 68, f.dhcp(2, 2, BOB_MAC)), Uint8Array.from([1, 1, 1, 0]))), direction: from, policy: eveFull, ...drop("dhcp-server-guard") },
  // Fragments.
  { name: "first IPv4 fragment of a DHCP offer", frame: e4(EVE_MAC, BCAST, udp4Fragment("10.0.0.2", "255.255.255.255", 67, 68, 0, true)), direction: from, policy: eveFull, ...drop("dhcp-server-guard") },
  { name: "first IPv4 fragment of Alice's DNS datagram", frame: e4(ALICE_MAC, BOB_MAC, udp4Fragment("10.0.0.1", "10.0.0.3", 40000, 53, 0, true)), direction: from, policy: aliceFull, ...allow },
  { name: "non-first IPv4 fragment from Alice's bound IP", frame: e4(ALICE_MAC, BOB_MAC, udp4Fragment("10.0.0.1", "10.0.0.3", 40000, 53, 16, false)), direction: from, policy: aliceFull, ...allow },
  {
    name: "non-first IPv4 fragment whose data starts like a UDP header from port 67 (no UDP header there)",
    frame: e4(EVE_MAC, BOB_MAC, f.ipv4({ src: "10.0.0.2", dst: "10.0.0.3", protocol: 17, payload: Uint8Array.from([0, 67, 0, 68, 0, 16, 0, 0]), fragmentOffset: 8, moreFragments: true })),
    direction: from,
    policy: eveFull,
    ...allow,
  },
  { name: "non-first IPv4 fragment from Alice's IP via Eve", frame: e4(EVE_MAC, BOB_MAC, udp4Fragment("10.0.0.1", "10.0.0.3", 40000, 53, 16, false)), direction: from, policy: eveFull, ...drop("ipv4-spoof") },
  { name: "middle IPv4 fragment (offset 8, more fragments) from Eve's IP", frame: e4(EVE_MAC, BOB_MAC, f.ipv4({ src: "10.0.0.2", dst: "10.0.0.3", protocol: 17, payload: new Uint8Array(8), fragmentOffset: 8, moreFragments: true })), direction: from, policy: eveFull, ...allow },
];

const MALFORMED: Row[] = [
  { name: "a frame shorter than an Ethernet header", frame: f.ether(BOB_MAC, EVE_MAC, 0x0800, new Uint8Array(0)).subarray(0, 13), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  { name: "an IPv4 header cut after 10 bytes", frame: cutIpv4(EVE_MAC, 10), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  { name: "an IPv4 header cut after 19 bytes", frame: cutIpv4(EVE_MAC, 19), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  { name: "an IPv4 header with options cut inside the options (IHL 6, 20 bytes)", frame: e4(EVE_MAC, BOB_MAC, withIpv4Options(f.icmp4Echo("10.0.0.2", "10.0.0.3"), Uint8Array.from([1, 1, 1, 0])).subarray(0, 22)), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  { name: "an IPv4 total length past the end of the frame", frame: cutIpv4(EVE_MAC, 24), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  {
    name: "IPv4 with IHL 4 (below the minimum)",
    frame: e4(EVE_MAC, BOB_MAC, Uint8Array.from(f.icmp4Echo("10.0.0.2", "10.0.0.3"), (b, i) => (i === 0 ? 0x44 : b))),
    direction: from,
    policy: eveFull,
    ...drop("malformed"),
  },
  {
    name: "the IPv4 ethertype carrying IP version 6",
    frame: f.ether(BOB_MAC, EVE_MAC, 0x0800, f.icmp6Echo("fe80::5054:ff:fe00:2", "fe80::5054:ff:fe00:3")),
    direction: from,
    policy: eveFull,
    ...drop("malformed"),
  },
  { name: "an ARP cut after 20 bytes (sender IP incomplete)", frame: earp(EVE_MAC, BCAST, f.arp({ sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" }).subarray(0, 20)), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  { name: "an ARP cut after 27 bytes", frame: earp(EVE_MAC, BCAST, f.arp({ sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" }).subarray(0, 27)), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  { name: "an ARP cut after 6 bytes (no opcode)", frame: earp(EVE_MAC, BCAST, f.arp({ sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" }).subarray(0, 6)), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  {
    name: "a UDP datagram from port 67 cut inside its UDP header",
    frame: e4(EVE_MAC, BCAST, f.ipv4({ src: "10.0.0.2", dst: "255.255.255.255", protocol: 17, payload: Uint8Array.from([0, 67]) })),
    direction: from,
    policy: eveFull,
    ...drop("malformed"),
  },
];

test("evaluate() from-vm at level full: source MAC (rule 1)", (t) => checkRows(t, SOURCE_MAC));
test("evaluate() from-vm at level full: VLAN tags (rule 2)", (t) => checkRows(t, VLAN));
test("evaluate() from-vm at level full: ethertypes and RARP (rule 3)", (t) => checkRows(t, ETHERTYPES));
test("evaluate() from-vm at level full: ARP (rule 4)", (t) => checkRows(t, ARP));
test("evaluate() from-vm at level full: IPv4 sources, DHCP and fragments (rules 5–6)", (t) => checkRows(t, IPV4));
test("evaluate() from-vm at level full: truncated or inconsistent headers are malformed", (t) => checkRows(t, MALFORMED));
test("evaluate() from-vm at level full: padded frames evaluate like unpadded ones", (t) =>
  checkPadded(t, [...SOURCE_MAC, ...VLAN, ...ETHERTYPES, ...ARP, ...IPV4, ...MALFORMED]));
