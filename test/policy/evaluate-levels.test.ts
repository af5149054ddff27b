// evaluate() at level mac (only the MAC side), at level off and with the global switch off, and
// to-vm (anti-sniffing) at every level: docs/semantics.md, sections after the full from-vm table.
import { test } from "node:test";
import * as f from "../../src/policy/frame-builder.ts";
import {
  ALICE_LL,
  ALICE_MAC,
  ALL_NODES_MAC,
  ALL_ROUTERS_MAC,
  BCAST,
  BOB_LL,
  BOB_MAC,
  EVE_LL,
  EVE_MAC,
  VIP_MAC,
  aliceFull,
  aliceGlobalOff,
  aliceMac,
  aliceOff,
  checkPadded,
  checkRows,
  cutIpv6,
  e4,
  e6,
  earp,
  eveGlobalOff,
  eveMac,
  eveOff,
  ping4,
  ping6,
  type Row,
} from "./evaluate-fixture.ts";
import type { PortPolicy } from "../../src/policy/port-policy.ts";

const from = "from-vm" as const;
const to = "to-vm" as const;
const allow = { verdict: "allow", reason: "allowed" } as const;
const off = { verdict: "allow", reason: "protection-off" } as const;
const drop = (reason: string) => ({ verdict: "drop", reason }) as const;

const sn = f.solicitedNode;
const gratuitous = (mac: string, address: string, sha = mac): Uint8Array => earp(mac, BCAST, f.arp({ op: 2, sha, spa: address, tha: BCAST, tpa: address }));
const ns = (mac: string, src: string, target: string, options: readonly Uint8Array[] = [], extensions?: readonly f.Extension[]): Uint8Array =>
  e6(mac, sn(target).mac, f.neighborSolicitation({ src, dst: sn(target).ip, target, options, ...(extensions && { extensions }) }));
const na = (mac: string, src: string, target: string, options: readonly Uint8Array[] = []): Uint8Array =>
  e6(mac, ALL_NODES_MAC, f.neighborAdvertisement({ src, dst: "ff02::1", target, options }));
const rs = (mac: string, src: string, options: readonly Uint8Array[] = []): Uint8Array => e6(mac, ALL_ROUTERS_MAC, f.routerSolicitation({ src, dst: "ff02::2", options }));
const ra = (mac: string, src: string, options: readonly Uint8Array[] = []): Uint8Array => e6(mac, ALL_NODES_MAC, f.routerAdvertisement({ src, dst: "ff02::1", options }));
const offer = (mac: string, src: string): Uint8Array => e4(mac, BCAST, f.udp4(src, "255.255.255.255", 67, 68, f.dhcp(2, 2, BOB_MAC, "10.0.0.3")));
const advertise = (mac: string, src: string): Uint8Array => e6(mac, BOB_MAC, f.udp6(src, BOB_LL, 547, 546, Uint8Array.from([2, 0, 0, 1])));
const mtu = (): Uint8Array => f.ndOption(5, Uint8Array.from([0, 0, 0, 0, 0x05, 0xdc]));

const MAC_FROM_VM: Row[] = [
  // Rule 1 holds at level mac.
  { name: "Alice sends with her MAC and IP", frame: ping4(ALICE_MAC, "10.0.0.1"), direction: from, policy: aliceMac, ...allow },
  { name: "Alice sends with her pair MAC", frame: ping4(VIP_MAC, "10.0.0.200"), direction: from, policy: aliceMac, ...allow },
  { name: "Eve sends with Alice's MAC", frame: ping4(ALICE_MAC, "10.0.0.2"), direction: from, policy: eveMac, ...drop("mac-spoof") },
  { name: "Eve sends with Alice's pair MAC", frame: ping4(VIP_MAC, "10.0.0.2"), direction: from, policy: eveMac, ...drop("mac-spoof") },
  { name: "a multicast source MAC", frame: ping4("01:00:5e:00:00:01", "10.0.0.2"), direction: from, policy: eveMac, ...drop("mac-spoof") },
  { name: "the broadcast source MAC", frame: ping4(BCAST, "10.0.0.2"), direction: from, policy: eveMac, ...drop("mac-spoof") },
  { name: "a VLAN-tagged frame from a foreign MAC", frame: f.tag(ping4(ALICE_MAC, "10.0.0.2"), 5), direction: from, policy: eveMac, ...drop("mac-spoof") },
  { name: "LLC/SNAP from a foreign MAC", frame: f.llcSnap(BOB_MAC, ALICE_MAC, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3")), direction: from, policy: eveMac, ...drop("mac-spoof") },
  // Addresses, RA, DHCP, VLAN tags and ethertypes are not checked.
  { name: "Eve sends from Alice's IPv4 address", frame: ping4(EVE_MAC, "10.0.0.1"), direction: from, policy: eveMac, ...allow },
  { name: "Eve sends from Alice's IPv6 address", frame: ping6(EVE_MAC, "2001:db8::1"), direction: from, policy: eveMac, ...allow },
  { name: "Eve sends from ::", frame: ping6(EVE_MAC, "::"), direction: from, policy: eveMac, ...allow },
  { name: "Eve's DHCP offer", frame: offer(EVE_MAC, "10.0.0.2"), direction: from, policy: eveMac, ...allow },
  { name: "Eve's DHCPv6 advertise", frame: advertise(EVE_MAC, EVE_LL), direction: from, policy: eveMac, ...allow },
  { name: "Eve's RA", frame: ra(EVE_MAC, EVE_LL), direction: from, policy: eveMac, ...allow },
  { name: "Eve's RA whose SLL names Alice's MAC (RA options are not checked)", frame: ra(EVE_MAC, EVE_LL, [f.sll(ALICE_MAC)]), direction: from, policy: eveMac, ...allow },
  { name: "Eve's redirect", frame: e6(EVE_MAC, BOB_MAC, f.redirect({ src: EVE_LL, dst: BOB_LL, target: EVE_LL, destination: "2001:db8:99::1" })), direction: from, policy: eveMac, ...allow },
  { name: "802.1Q-tagged IPv4 from Eve's MAC", frame: f.tag(ping4(EVE_MAC, "10.0.0.2"), 5), direction: from, policy: eveMac, ...allow },
  { name: "802.1ad-tagged IPv4 from Eve's MAC", frame: f.tag(ping4(EVE_MAC, "10.0.0.2"), 5, 0x88a8), direction: from, policy: eveMac, ...allow },
  { name: "QinQ from Eve's MAC", frame: f.tag(f.tag(ping4(EVE_MAC, "10.0.0.2"), 10), 20, 0x88a8), direction: from, policy: eveMac, ...allow },
  { name: "0x9100-tagged IPv4 from Eve's MAC", frame: f.tag(ping4(EVE_MAC, "10.0.0.2"), 5, 0x9100), direction: from, policy: eveMac, ...allow },
  { name: "LLC/SNAP from Eve's MAC", frame: f.llcSnap(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3")), direction: from, policy: eveMac, ...allow },
  { name: "IPX from Eve's MAC", frame: f.ether(BOB_MAC, EVE_MAC, 0x8137, new Uint8Array(46)), direction: from, policy: eveMac, ...allow },
  { name: "LLDP from Eve's MAC", frame: f.ether("01:80:c2:00:00:0e", EVE_MAC, 0x88cc, new Uint8Array(46)), direction: from, policy: eveMac, ...allow },
  { name: "a RARP reply from Eve's MAC", frame: f.ether(BCAST, EVE_MAC, 0x8035, f.arp({ op: 4, sha: EVE_MAC, spa: "10.0.0.2", tha: EVE_MAC, tpa: "10.0.0.2" })), direction: from, policy: eveMac, ...allow },
  { name: "a truncated IPv4 header (nothing past the MAC side is read)", frame: e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3").subarray(0, 10)), direction: from, policy: eveMac, ...allow, paddable: false },
  { name: "a first fragment that stops inside destination options", frame: cutIpv6(e6(EVE_MAC, ALL_NODES_MAC, f.routerAdvertisement({ src: EVE_LL, dst: "ff02::1", extensions: [{ kind: "fragment", offset: 0, more: true }, { kind: "destination", padBytes: 20 }] })), 8 + 16), direction: from, policy: eveMac, ...allow },
  // ARP: the sender hardware address, on untagged frames.
  { name: "Eve's gratuitous ARP for Alice's IP with her own sha", frame: gratuitous(EVE_MAC, "10.0.0.1"), direction: from, policy: eveMac, ...allow },
  { name: "Eve's ARP for her IP with Alice's sha", frame: gratuitous(EVE_MAC, "10.0.0.2", ALICE_MAC), direction: from, policy: eveMac, ...drop("arp-spoof") },
  { name: "Eve's ARP probe with Alice's sha", frame: earp(EVE_MAC, BCAST, f.arp({ sha: ALICE_MAC, spa: "0.0.0.0", tpa: "10.0.0.2" })), direction: from, policy: eveMac, ...drop("arp-spoof") },
  { name: "Eve's ARP probe with her own sha", frame: earp(EVE_MAC, BCAST, f.arp({ sha: EVE_MAC, spa: "0.0.0.0", tpa: "10.0.0.2" })), direction: from, policy: eveMac, ...allow },
  { name: "Alice's ARP from her pair MAC with the pair MAC as sha", frame: gratuitous(VIP_MAC, "10.0.0.200"), direction: from, policy: aliceMac, ...allow },
  { name: "Alice's ARP from her pair MAC with the port MAC as sha", frame: gratuitous(VIP_MAC, "10.0.0.200", ALICE_MAC), direction: from, policy: aliceMac, ...drop("arp-spoof") },
  { name: "IEEE 802 ARP (htype 6) with Eve's own sha", frame: earp(EVE_MAC, BCAST, f.arp({ htype: 6, sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })), direction: from, policy: eveMac, ...allow },
  { name: "IEEE 802 ARP (htype 6) with Alice's sha", frame: earp(EVE_MAC, BCAST, f.arp({ htype: 6, sha: ALICE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })), direction: from, policy: eveMac, ...drop("arp-spoof") },
  { name: "802.1Q-tagged ARP with Alice's sha (level mac does not look inside tags)", frame: f.tag(gratuitous(EVE_MAC, "10.0.0.2", ALICE_MAC), 5), direction: from, policy: eveMac, ...allow },
  { name: "802.1Q-tagged ARP with Eve's own sha", frame: f.tag(gratuitous(EVE_MAC, "10.0.0.2"), 5), direction: from, policy: eveMac, ...allow },
  // ND: every link-layer option of NS, NA and RS, on untagged frames.
  { name: "Eve's NA for Alice's address with her own TLL (targets are not checked)", frame: na(EVE_MAC, EVE_LL, "2001:db8::1", [f.tll(EVE_MAC)]), direction: from, policy: eveMac, ...allow },
  { name: "Eve's NA whose TLL names Alice's MAC", frame: na(EVE_MAC, EVE_LL, "2001:db8::2", [f.tll(ALICE_MAC)]), direction: from, policy: eveMac, ...drop("nd-spoof") },
  { name: "Eve's NA whose TLL names Alice's MAC as second option", frame: na(EVE_MAC, EVE_LL, "2001:db8::2", [mtu(), f.tll(ALICE_MAC)]), direction: from, policy: eveMac, ...drop("nd-spoof") },
  { name: "Eve's NS with her own SLL", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(EVE_MAC)]), direction: from, policy: eveMac, ...allow },
  { name: "Eve's NS whose SLL names Alice's MAC", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(ALICE_MAC)]), direction: from, policy: eveMac, ...drop("nd-spoof") },
  { name: "Eve's NS whose SLL names Alice's MAC as second option, after a nonce", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.nonce(), f.sll(ALICE_MAC)]), direction: from, policy: eveMac, ...drop("nd-spoof") },
  { name: "Eve's NS with a foreign SLL behind destination options", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(ALICE_MAC)], [{ kind: "destination" }]), direction: from, policy: eveMac, ...drop("nd-spoof") },
  { name: "Eve's RS whose SLL names Alice's MAC", frame: rs(EVE_MAC, EVE_LL, [f.sll(ALICE_MAC)]), direction: from, policy: eveMac, ...drop("nd-spoof") },
  { name: "Eve's RS with her own SLL", frame: rs(EVE_MAC, EVE_LL, [f.sll(EVE_MAC)]), direction: from, policy: eveMac, ...allow },
  { name: "Eve's DAD for Alice's address (addresses are not checked)", frame: e6(EVE_MAC, sn("2001:db8::1").mac, f.neighborSolicitation({ src: "::", dst: sn("2001:db8::1").ip, target: "2001:db8::1", options: [f.nonce()] })), direction: from, policy: eveMac, ...allow },
  { name: "802.1Q-tagged NS with a foreign SLL (level mac does not look inside tags)", frame: f.tag(ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(ALICE_MAC)]), 5), direction: from, policy: eveMac, ...allow },
  { name: "Alice's NA from her pair MAC with the pair MAC as TLL", frame: na(VIP_MAC, "fe80::5054:ff:feaa:1", "2001:db8::200", [f.tll(VIP_MAC)]), direction: from, policy: aliceMac, ...allow },
];

/** Eve's attacks: every one of them passes when protection is off. */
const ATTACKS: readonly (readonly [string, Uint8Array])[] = [
  ["Eve sends with Alice's MAC and IP", ping4(ALICE_MAC, "10.0.0.1")],
  ["Eve sends with a multicast source MAC", ping4("01:00:5e:00:00:01", "10.0.0.2")],
  ["Eve sends from Alice's IPv4 address", ping4(EVE_MAC, "10.0.0.1")],
  ["Eve sends from Alice's IPv6 address", ping6(EVE_MAC, "2001:db8::1")],
  ["Eve's gratuitous ARP for Alice's IP", gratuitous(EVE_MAC, "10.0.0.1")],
  ["Eve's ARP with Alice's sha", gratuitous(EVE_MAC, "10.0.0.2", ALICE_MAC)],
  ["Eve's NA for Alice's address with Alice's MAC as TLL", na(EVE_MAC, EVE_LL, "2001:db8::1", [f.tll(ALICE_MAC)])],
  ["Eve's NS whose SLL names Alice's MAC", ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(ALICE_MAC)])],
  ["Eve's RA", ra(EVE_MAC, EVE_LL)],
  ["Eve's redirect", e6(EVE_MAC, BOB_MAC, f.redirect({ src: EVE_LL, dst: BOB_LL, target: EVE_LL, destination: "2001:db8:99::1" }))],
  ["Eve's DHCP offer", offer(EVE_MAC, "10.0.0.2")],
  ["Eve's DHCPv6 advertise", advertise(EVE_MAC, EVE_LL)],
  ["Eve's 802.1Q-tagged frame", f.tag(ping4(EVE_MAC, "10.0.0.2"), 5)],
  ["Eve's LLC/SNAP frame", f.llcSnap(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3"))],
  ["Eve's IPX frame", f.ether(BOB_MAC, EVE_MAC, 0x8137, new Uint8Array(46))],
  ["Eve's truncated first fragment", cutIpv6(e6(EVE_MAC, ALL_NODES_MAC, f.routerAdvertisement({ src: EVE_LL, dst: "ff02::1", extensions: [{ kind: "fragment", offset: 0, more: true }] })), 8)],
  ["Eve's truncated IPv4 header", e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3").subarray(0, 10))],
];

const offRows = (policy: PortPolicy, label: string): Row[] => [
  ...ATTACKS.map(([name, frame]): Row => ({ name: `${label}: ${name}`, frame, direction: from, policy, ...off, paddable: !name.includes("truncated IPv4") })),
  { name: `${label}: Alice's own traffic`, frame: ping4(ALICE_MAC, "10.0.0.1"), direction: from, policy: policy === eveOff ? aliceOff : aliceGlobalOff, ...off },
  { name: `${label}: to-vm unicast for Bob flooded to Eve`, frame: ping4(ALICE_MAC, "10.0.0.1"), direction: to, policy, ...off },
  { name: `${label}: to-vm unicast to Eve's MAC`, frame: e4(ALICE_MAC, EVE_MAC, f.icmp4Echo("10.0.0.1", "10.0.0.2")), direction: to, policy, ...off },
  { name: `${label}: to-vm broadcast`, frame: gratuitous(ALICE_MAC, "10.0.0.1"), direction: to, policy, ...off },
  { name: `${label}: to-vm multicast`, frame: ra(BOB_MAC, BOB_LL), direction: to, policy, ...off },
];

const OFF = offRows(eveOff, "level off");
const GLOBAL_OFF = offRows(eveGlobalOff, "antiSpoofing false");

/** To-vm rows for Alice at a level that filters (full or mac): only the destination MAC matters. */
const toVmRows = (policy: PortPolicy, label: string): Row[] => [
  { name: `${label}: unicast to Alice's MAC`, frame: e4(BOB_MAC, ALICE_MAC, f.icmp4Echo("10.0.0.3", "10.0.0.1")), direction: to, policy, ...allow },
  { name: `${label}: unicast to Alice's pair MAC`, frame: e4(BOB_MAC, VIP_MAC, f.icmp4Echo("10.0.0.3", "10.0.0.200")), direction: to, policy, ...allow },
  { name: `${label}: IPv6 unicast to Alice's MAC`, frame: e6(BOB_MAC, ALICE_MAC, f.icmp6Echo(BOB_LL, ALICE_LL)), direction: to, policy, ...allow },
  { name: `${label}: unicast for Bob flooded to Alice's port`, frame: e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3")), direction: to, policy, ...drop("not-for-this-port") },
  { name: `${label}: unicast for Eve flooded to Alice's port`, frame: e4(BOB_MAC, EVE_MAC, f.icmp4Echo("10.0.0.3", "10.0.0.2")), direction: to, policy, ...drop("not-for-this-port") },
  { name: `${label}: unicast to a locally administered MAC nobody has`, frame: e4(BOB_MAC, "02:00:00:00:00:99", f.icmp4Echo("10.0.0.3", "10.0.0.1")), direction: to, policy, ...drop("not-for-this-port") },
  { name: `${label}: unicast ARP reply for Bob`, frame: earp(EVE_MAC, BOB_MAC, f.arp({ op: 2, sha: EVE_MAC, spa: "10.0.0.2", tha: BOB_MAC, tpa: "10.0.0.3" })), direction: to, policy, ...drop("not-for-this-port") },
  { name: `${label}: 802.1Q-tagged unicast for Bob`, frame: f.tag(e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3")), 5), direction: to, policy, ...drop("not-for-this-port") },
  { name: `${label}: broadcast ARP request`, frame: earp(BOB_MAC, BCAST, f.arp({ sha: BOB_MAC, spa: "10.0.0.3", tpa: "10.0.0.1" })), direction: to, policy, ...allow },
  { name: `${label}: IPv6 all-nodes multicast (an RA from the router)`, frame: ra(BOB_MAC, BOB_LL), direction: to, policy, ...allow },
  { name: `${label}: IPv6 solicited-node multicast of another address`, frame: ns(BOB_MAC, BOB_LL, "2001:db8::2", [f.sll(BOB_MAC)]), direction: to, policy, ...allow },
  { name: `${label}: IPv4 multicast 224.0.0.251`, frame: e4(BOB_MAC, "01:00:5e:00:00:fb", f.udp4("10.0.0.3", "224.0.0.251", 5353, 5353, new Uint8Array(12))), direction: to, policy, ...allow },
  { name: `${label}: a DHCP offer unicast to Alice's MAC (server guards are from-vm only)`, frame: e4(BOB_MAC, ALICE_MAC, f.udp4("10.0.0.3", "10.0.0.1", 67, 68, f.dhcp(2, 2, ALICE_MAC, "10.0.0.1"))), direction: to, policy, ...allow },
  { name: `${label}: a frame to Alice from a spoofed source (sources are checked on the sender's port)`, frame: e4(ALICE_MAC, ALICE_MAC, f.icmp4Echo("10.0.0.9", "10.0.0.1")), direction: to, policy, ...allow },
  { name: `${label}: 802.1Q-tagged unicast to Alice's MAC`, frame: f.tag(e4(BOB_MAC, ALICE_MAC, f.icmp4Echo("10.0.0.3", "10.0.0.1")), 5), direction: to, policy, ...allow },
];

const TO_VM_FULL = toVmRows(aliceFull, "level full");
const TO_VM_MAC = toVmRows(aliceMac, "level mac");
const TO_VM_OFF: Row[] = [
  { name: "level off: unicast for Bob flooded to Alice's port", frame: e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3")), direction: to, policy: aliceOff, ...off },
  { name: "level off: unicast to Alice's MAC", frame: e4(BOB_MAC, ALICE_MAC, f.icmp4Echo("10.0.0.3", "10.0.0.1")), direction: to, policy: aliceOff, ...off },
  { name: "level off: unicast to Alice's pair MAC", frame: e4(BOB_MAC, VIP_MAC, f.icmp4Echo("10.0.0.3", "10.0.0.200")), direction: to, policy: aliceOff, ...off },
  { name: "level off: broadcast", frame: earp(BOB_MAC, BCAST, f.arp({ sha: BOB_MAC, spa: "10.0.0.3", tpa: "10.0.0.1" })), direction: to, policy: aliceOff, ...off },
  { name: "level off: multicast", frame: ra(BOB_MAC, BOB_LL), direction: to, policy: aliceOff, ...off },
  { name: "antiSpoofing false: unicast for Bob flooded to Alice's port", frame: e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3")), direction: to, policy: aliceGlobalOff, ...off },
];

test("evaluate() from-vm at level mac checks only the MAC side", (t) => checkRows(t, MAC_FROM_VM));
test("evaluate() at level off passes everything in both directions", (t) => checkRows(t, OFF));
test("evaluate() with antiSpoofing false passes everything, even on a shared network at level full", (t) => checkRows(t, GLOBAL_OFF));
test("evaluate() to-vm at level full delivers unicast only to the port's MACs", (t) => checkRows(t, TO_VM_FULL));
test("evaluate() to-vm at level mac delivers unicast only to the port's MACs", (t) => checkRows(t, TO_VM_MAC));
test("evaluate() to-vm at level off delivers everything", (t) => checkRows(t, TO_VM_OFF));
test("evaluate() at levels mac and off and to-vm: padded frames evaluate like unpadded ones", (t) =>
  checkPadded(t, [...MAC_FROM_VM, ...OFF, ...GLOBAL_OFF, ...TO_VM_FULL, ...TO_VM_MAC, ...TO_VM_OFF]));
