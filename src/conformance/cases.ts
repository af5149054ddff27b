// The attack table: Eve's stories from DESIGN.md as real frames, each with legitimate twins. What
// must happen to each frame comes from the reference evaluator, never from this file. Pure.
import * as f from "../policy/frame-builder.ts";
import { SUBNET4, VIP4, VIP6, type GuestName } from "./sandbox.ts";

export type Case = Readonly<{
  story: string;
  name: string;
  /** The guest that sends it. */
  from: GuestName;
  frame: Uint8Array;
}>;

export type Addresses = Readonly<Record<GuestName, Readonly<{ mac: string; ipv4: string; ipv6: string }>>>;

const BCAST = "ff:ff:ff:ff:ff:ff";
const ALL_NODES = { ip: "ff02::1", mac: "33:33:00:00:00:01" };
const linkLocal = (mac: string): string => {
  const b = mac.split(":").map((h) => parseInt(h, 16));
  const h = (x: number, y: number) => ((x << 8) | y).toString(16);
  return `fe80::${h(b[0]! ^ 2, b[1]!)}:${h(b[2]!, 0xff)}:${h(0xfe, b[3]!)}:${h(b[4]!, b[5]!)}`;
};

/** The first fragment (more fragments set) of a UDP datagram: the UDP header and the first 16 bytes of `data`. */
function udp4FirstFragment(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const whole = f.udp4(src, dst, sport, dport, data);
  return f.ipv4({ src, dst, protocol: 17, payload: whole.subarray(20, 20 + 24), moreFragments: true, id: 0x4243 });
}

export function buildCases(a: Addresses): Case[] {
  const { alice, eve, bob } = a;
  const eveLl = linkLocal(eve.mac);
  const aliceLl = linkLocal(alice.mac);
  const e4 = (src: string, dst: string, p: Uint8Array) => f.ether(dst, src, 0x0800, p);
  const e6 = (src: string, dst: string, p: Uint8Array) => f.ether(dst, src, 0x86dd, p);
  const earp = (src: string, dst: string, p: Uint8Array) => f.ether(dst, src, 0x0806, p);
  const bobSn = f.solicitedNode(bob.ipv6);
  const cases: Case[] = [];
  // Which cases a driver's limitation excuses is the driver's to declare (Limitation.cases).
  const add = (story: string, from: GuestName, name: string, frame: Uint8Array) => cases.push({ story, from, name, frame });

  const s1 = "1 IP spoof";
  add(s1, "eve", "Eve pings Bob from her own IP", e4(eve.mac, bob.mac, f.icmp4Echo(eve.ipv4, bob.ipv4)));
  add(s1, "eve", "Eve pings Bob from Alice's IP", e4(eve.mac, bob.mac, f.icmp4Echo(alice.ipv4, bob.ipv4)));
  add(s1, "eve", "Eve sends UDP from Alice's VIP", e4(eve.mac, bob.mac, f.udp4(VIP4, bob.ipv4, 4000, 53, new Uint8Array(8))));
  add(s1, "alice", "Alice sends UDP from her VIP", e4(alice.mac, bob.mac, f.udp4(VIP4, bob.ipv4, 4000, 53, new Uint8Array(8))));
  add(s1, "eve", "Eve sends from an unassigned IP", e4(eve.mac, bob.mac, f.icmp4Echo(`${SUBNET4}.77`, bob.ipv4)));
  add(s1, "eve", "Eve's DHCP discover from 0.0.0.0", e4(eve.mac, BCAST, f.udp4("0.0.0.0", "255.255.255.255", 68, 67, f.dhcp(1, 1, eve.mac))));
  add(s1, "eve", "UDP 68→67 from 0.0.0.0, unicast to Bob", e4(eve.mac, bob.mac, f.udp4("0.0.0.0", bob.ipv4, 68, 67, f.dhcp(1, 1, eve.mac))));
  add(s1, "eve", "non-first IPv4 fragment from her IP", e4(eve.mac, bob.mac, f.ipv4({ src: eve.ipv4, dst: bob.ipv4, protocol: 17, payload: new Uint8Array(16), fragmentOffset: 64 })));
  add(s1, "eve", "non-first IPv4 fragment from Alice's IP", e4(eve.mac, bob.mac, f.ipv4({ src: alice.ipv4, dst: bob.ipv4, protocol: 17, payload: new Uint8Array(16), fragmentOffset: 64 })));

  const s2 = "2 MAC+IP spoof";
  add(s2, "eve", "Eve uses Alice's MAC and IP", e4(alice.mac, bob.mac, f.icmp4Echo(alice.ipv4, bob.ipv4)));
  add(s2, "eve", "Eve uses Alice's MAC and her own IP", e4(alice.mac, bob.mac, f.icmp4Echo(eve.ipv4, bob.ipv4)));
  add(s2, "eve", "Eve uses a multicast source MAC", e4("01:00:5e:00:00:01", bob.mac, f.icmp4Echo(eve.ipv4, bob.ipv4)));
  add(s2, "eve", "Eve uses Alice's MAC for IPv6", e6(alice.mac, bob.mac, f.icmp6Echo(alice.ipv6, bob.ipv6)));

  const s3 = "3 ARP poisoning";
  add(s3, "eve", "gratuitous ARP reply claiming Alice's IP", earp(eve.mac, BCAST, f.arp({ op: 2, sha: eve.mac, spa: alice.ipv4, tha: BCAST, tpa: alice.ipv4 })));
  add(s3, "eve", "ARP request claiming Alice's IP", earp(eve.mac, BCAST, f.arp({ op: 1, sha: eve.mac, spa: alice.ipv4, tpa: bob.ipv4 })));
  add(s3, "eve", "forged ARP reply to Bob for the gateway", earp(eve.mac, bob.mac, f.arp({ op: 2, sha: eve.mac, spa: `${SUBNET4}.254`, tha: bob.mac, tpa: bob.ipv4 })));
  add(s3, "eve", "ARP with sender hardware address ≠ source MAC", earp(eve.mac, BCAST, f.arp({ op: 2, sha: alice.mac, spa: eve.ipv4, tha: BCAST, tpa: eve.ipv4 })));
  add(s3, "eve", "ARP claiming Alice's VIP", earp(eve.mac, BCAST, f.arp({ op: 2, sha: eve.mac, spa: VIP4, tha: BCAST, tpa: VIP4 })));
  add(s3, "eve", "Eve's ARP request for Bob", earp(eve.mac, BCAST, f.arp({ op: 1, sha: eve.mac, spa: eve.ipv4, tpa: bob.ipv4 })));
  add(s3, "eve", "Eve's ARP probe from 0.0.0.0", earp(eve.mac, BCAST, f.arp({ op: 1, sha: eve.mac, spa: "0.0.0.0", tpa: eve.ipv4 })));
  add(s3, "alice", "Alice claims her VIP by gratuitous ARP", earp(alice.mac, BCAST, f.arp({ op: 2, sha: alice.mac, spa: VIP4, tha: BCAST, tpa: VIP4 })));
  add(s3, "eve", "QEMU announce-self (RARP)", f.ether(BCAST, eve.mac, 0x8035, f.arp({ op: 3, sha: eve.mac, spa: "0.0.0.0", tha: eve.mac, tpa: "0.0.0.0" })));
  add(s3, "eve", "RARP reply", f.ether(BCAST, eve.mac, 0x8035, f.arp({ op: 4, sha: eve.mac, spa: "0.0.0.0", tha: eve.mac, tpa: eve.ipv4 })));

  const s4 = "4 IPv6 / ND / RA";
  add(s4, "eve", "Eve pings Bob from her IPv6", e6(eve.mac, bob.mac, f.icmp6Echo(eve.ipv6, bob.ipv6)));
  add(s4, "eve", "Eve pings Bob from her link-local", e6(eve.mac, bob.mac, f.icmp6Echo(eveLl, linkLocal(bob.mac))));
  add(s4, "eve", "Eve pings Bob from Alice's IPv6", e6(eve.mac, bob.mac, f.icmp6Echo(alice.ipv6, bob.ipv6)));
  add(s4, "eve", "Eve pings from Alice's link-local", e6(eve.mac, bob.mac, f.icmp6Echo(aliceLl, linkLocal(bob.mac))));
  add(s4, "eve", "echo from ::", e6(eve.mac, bob.mac, f.icmp6Echo("::", bob.ipv6)));
  add(s4, "eve", "NA for Alice's address", e6(eve.mac, ALL_NODES.mac, f.neighborAdvertisement({ src: eve.ipv6, dst: ALL_NODES.ip, target: alice.ipv6, options: [f.tll(eve.mac)] })));
  add(s4, "eve", "NA for Alice's VIP", e6(eve.mac, ALL_NODES.mac, f.neighborAdvertisement({ src: eveLl, dst: ALL_NODES.ip, target: VIP6, options: [f.tll(eve.mac)] })));
  add(s4, "alice", "Alice's unsolicited NA for her VIP", e6(alice.mac, ALL_NODES.mac, f.neighborAdvertisement({ src: aliceLl, dst: ALL_NODES.ip, target: VIP6, options: [f.tll(alice.mac)] })));
  add(s4, "eve", "NA for her address with Alice's MAC in TLL", e6(eve.mac, bob.mac, f.neighborAdvertisement({ src: eve.ipv6, dst: bob.ipv6, target: eve.ipv6, options: [f.tll(alice.mac)] })));
  add(s4, "eve", "NA for her address with her TLL", e6(eve.mac, bob.mac, f.neighborAdvertisement({ src: eve.ipv6, dst: bob.ipv6, target: eve.ipv6, options: [f.tll(eve.mac)] })));
  add(s4, "eve", "NS with Alice's MAC in SLL", e6(eve.mac, bobSn.mac, f.neighborSolicitation({ src: eve.ipv6, dst: bobSn.ip, target: bob.ipv6, options: [f.sll(alice.mac)] })));
  add(s4, "eve", "NS with nonce, then Alice's MAC in SLL", e6(eve.mac, bobSn.mac, f.neighborSolicitation({ src: eve.ipv6, dst: bobSn.ip, target: bob.ipv6, options: [f.nonce(), f.sll(alice.mac)] })));
  add(s4, "eve", "NS with her own SLL", e6(eve.mac, bobSn.mac, f.neighborSolicitation({ src: eve.ipv6, dst: bobSn.ip, target: bob.ipv6, options: [f.sll(eve.mac)] })));
  const eveSn = f.solicitedNode(eve.ipv6);
  const aliceSn = f.solicitedNode(alice.ipv6);
  add(s4, "eve", "DAD from :: for her address", e6(eve.mac, eveSn.mac, f.neighborSolicitation({ src: "::", dst: eveSn.ip, target: eve.ipv6, options: [f.nonce()] })));
  add(s4, "eve", "DAD from :: for Alice's address", e6(eve.mac, aliceSn.mac, f.neighborSolicitation({ src: "::", dst: aliceSn.ip, target: alice.ipv6, options: [f.nonce()] })));
  add(s4, "eve", "MLDv2 report from ::", e6(eve.mac, "33:33:00:00:00:16", f.mldv2Report("::")));
  add(s4, "eve", "router solicitation with her SLL", e6(eve.mac, "33:33:00:00:00:02", f.routerSolicitation({ src: eveLl, dst: "ff02::2", options: [f.sll(eve.mac)] })));
  add(s4, "eve", "router solicitation with Alice's SLL", e6(eve.mac, "33:33:00:00:00:02", f.routerSolicitation({ src: eveLl, dst: "ff02::2", options: [f.sll(alice.mac)] })));
  add(s4, "eve", "rogue router advertisement", e6(eve.mac, ALL_NODES.mac, f.routerAdvertisement({ src: eveLl, dst: ALL_NODES.ip, options: [f.sll(eve.mac)] })));
  add(s4, "eve", "RA behind a destination-options header", e6(eve.mac, ALL_NODES.mac, f.routerAdvertisement({ src: eveLl, dst: ALL_NODES.ip, extensions: [{ kind: "destination" }] })));
  add(s4, "eve", "RA behind hop-by-hop and routing headers", e6(eve.mac, ALL_NODES.mac, f.routerAdvertisement({ src: eveLl, dst: ALL_NODES.ip, extensions: [{ kind: "hop-by-hop" }, { kind: "routing" }] })));
  add(s4, "eve", "RA in a first fragment", e6(eve.mac, ALL_NODES.mac, f.routerAdvertisement({ src: eveLl, dst: ALL_NODES.ip, extensions: [{ kind: "fragment", offset: 0, more: true }] })));
  // The kit's marker trails the packet; nft reads such padding as header bytes, and so does the
  // kernel's walk behind ebtables' --ip6-proto (both declared limitations; an attacker controls
  // those bytes too).
  add(s4, "eve", "first fragment without the upper-layer header", e6(eve.mac, bob.mac, f.ipv6({ src: eve.ipv6, dst: bob.ipv6, next: 60, payload: new Uint8Array(0), extensions: [{ kind: "fragment", offset: 0, more: true }] })));
  add(s4, "eve", "ICMPv6 redirect", e6(eve.mac, bob.mac, f.redirect({ src: eveLl, dst: linkLocal(bob.mac), target: eveLl, destination: alice.ipv6 })));
  add(s4, "eve", "fragmented UDP from her IPv6 (first)", e6(eve.mac, bob.mac, f.udp6(eve.ipv6, bob.ipv6, 4000, 53, new Uint8Array(16), [{ kind: "fragment", offset: 0, more: true }])));
  add(s4, "eve", "non-first IPv6 fragment from her IPv6", e6(eve.mac, bob.mac, f.ipv6({ src: eve.ipv6, dst: bob.ipv6, next: 17, payload: new Uint8Array(16), extensions: [{ kind: "fragment", offset: 64, more: false }] })));

  const s5 = "5 DHCP servers";
  add(s5, "eve", "DHCP offer to Bob", e4(eve.mac, BCAST, f.udp4(eve.ipv4, "255.255.255.255", 67, 68, f.dhcp(2, 2, bob.mac, `${SUBNET4}.66`))));
  add(s5, "eve", "DHCP offer from 0.0.0.0", e4(eve.mac, BCAST, f.udp4("0.0.0.0", "255.255.255.255", 67, 68, f.dhcp(2, 2, bob.mac))));
  add(s5, "eve", "DHCP relay 67→67", e4(eve.mac, bob.mac, f.udp4(eve.ipv4, bob.ipv4, 67, 67, f.dhcp(1, 1, eve.mac))));
  add(s5, "eve", "DHCPv6 advertise", e6(eve.mac, bob.mac, f.udp6(eveLl, linkLocal(bob.mac), 547, 546, new Uint8Array(8))));
  add(s5, "eve", "DHCPv6 advertise behind a destination-options header", e6(eve.mac, bob.mac, f.udp6(eveLl, linkLocal(bob.mac), 547, 546, new Uint8Array(8), [{ kind: "destination" }])));
  // A server is a server whatever its source port: judged by the client port it answers too.
  add(s5, "eve", "DHCP offer from port 1067 to 68", e4(eve.mac, BCAST, f.udp4(eve.ipv4, "255.255.255.255", 1067, 68, f.dhcp(2, 2, bob.mac, `${SUBNET4}.66`))));
  add(s5, "eve", "DHCP ack from a random port, unicast to Bob", e4(eve.mac, bob.mac, f.udp4(eve.ipv4, bob.ipv4, 49152, 68, f.dhcp(2, 5, bob.mac, bob.ipv4))));
  add(s5, "eve", "first fragment of a DHCP offer from port 1067", e4(eve.mac, BCAST, udp4FirstFragment(eve.ipv4, "255.255.255.255", 1067, 68, f.dhcp(2, 2, bob.mac, `${SUBNET4}.66`))));
  add(s5, "eve", "DHCPv6 advertise from port 1547", e6(eve.mac, bob.mac, f.udp6(eveLl, linkLocal(bob.mac), 1547, 546, new Uint8Array(8))));
  add(s5, "eve", "DHCPv6 reply from a random port behind a destination-options header", e6(eve.mac, bob.mac, f.udp6(eveLl, linkLocal(bob.mac), 49152, 546, new Uint8Array(8), [{ kind: "destination" }])));
  add(s5, "eve", "DHCPv6 advertise from port 1547 in a first fragment", e6(eve.mac, bob.mac, f.udp6(eveLl, linkLocal(bob.mac), 1547, 546, new Uint8Array(16), [{ kind: "fragment", offset: 0, more: true }])));
  add(s5, "alice", "Alice's UDP from port 68 to Bob's port 5001", e4(alice.mac, bob.mac, f.udp4(alice.ipv4, bob.ipv4, 68, 5001, new Uint8Array(8))));
  add(s5, "eve", "Eve's DHCPv6 solicit", e6(eve.mac, "33:33:00:01:00:02", f.udp6(eveLl, "ff02::1:2", 546, 547, new Uint8Array(8))));
  add(s5, "eve", "Eve's DNS query", e4(eve.mac, bob.mac, f.udp4(eve.ipv4, bob.ipv4, 40000, 53, new Uint8Array(12))));

  const s6 = "6 VLAN / LLC / ethertypes";
  const ping = e4(eve.mac, bob.mac, f.icmp4Echo(eve.ipv4, bob.ipv4));
  add(s6, "eve", "802.1Q-tagged ping", f.tag(ping, 5));
  add(s6, "eve", "802.1Q priority tag (VID 0)", f.tag(ping, 0));
  add(s6, "eve", "802.1ad QinQ", f.tag(f.tag(ping, 5), 7, 0x88a8));
  add(s6, "eve", "0x9100-tagged", f.tag(ping, 8, 0x9100));
  add(s6, "eve", "tagged ARP claiming Alice's IP", f.tag(earp(eve.mac, BCAST, f.arp({ op: 2, sha: eve.mac, spa: alice.ipv4, tha: BCAST, tpa: alice.ipv4 })), 5));
  add(s6, "eve", "tagged spoofed ping", f.tag(e4(eve.mac, bob.mac, f.icmp4Echo(alice.ipv4, bob.ipv4)), 5));
  add(s6, "eve", "LLC/SNAP carrying IPv4", f.llcSnap(bob.mac, eve.mac, 0x0800, f.icmp4Echo(eve.ipv4, bob.ipv4)));
  add(s6, "eve", "LLC/SNAP carrying spoofed IPv4", f.llcSnap(bob.mac, eve.mac, 0x0800, f.icmp4Echo(alice.ipv4, bob.ipv4)));
  add(s6, "eve", "IPX", f.ether(bob.mac, eve.mac, 0x8137, new Uint8Array(40)));
  add(s6, "eve", "LLDP to Bob", f.ether(bob.mac, eve.mac, 0x88cc, new Uint8Array(40)));
  add(s6, "eve", "MPLS", f.ether(bob.mac, eve.mac, 0x8847, new Uint8Array(40)));

  const s7 = "7 sniffing";
  add(s7, "bob", "Bob → Alice unicast (flooded: the bridge learns nothing)", e4(bob.mac, alice.mac, f.udp4(bob.ipv4, alice.ipv4, 5000, 5001, new Uint8Array(16))));
  add(s7, "bob", "Bob → an unknown MAC", e4(bob.mac, "52:54:00:99:99:99", f.udp4(bob.ipv4, `${SUBNET4}.99`, 5000, 5001, new Uint8Array(16))));
  // UDP, not an echo: the echo would be the same bytes as Eve's spoof in story 2, and a trimmed copy
  // (br_netfilter cuts the marker) could then not be told apart.
  add(s7, "alice", "Alice → Bob IPv6 unicast", e6(alice.mac, bob.mac, f.udp6(alice.ipv6, bob.ipv6, 5000, 5001, new Uint8Array(16))));
  add(s7, "bob", "Bob → all nodes (multicast reaches everyone)", e6(bob.mac, ALL_NODES.mac, f.icmp6Echo(bob.ipv6, ALL_NODES.ip)));
  add(s7, "bob", "Bob → broadcast", e4(bob.mac, BCAST, f.udp4(bob.ipv4, `${SUBNET4}.255`, 5000, 5001, new Uint8Array(8))));
  return cases;
}
