// evaluate() at level full, from-vm: the IPv6 rules 7–12 of docs/semantics.md (fragments and the
// extension-header walk, sources with the DAD and MLD exceptions, RA, redirects, ND, DHCPv6).
import { test } from "node:test";
import * as f from "../../src/policy/frame-builder.ts";
import {
  ALICE_LL,
  ALICE_MAC,
  ALL_NODES_MAC,
  ALL_ROUTERS_MAC,
  BOB_LL,
  BOB_MAC,
  EVE_LL,
  EVE_MAC,
  VIP_LL,
  VIP_MAC,
  aliceFull,
  checkPadded,
  checkRows,
  cutIpv6,
  e6,
  eveFull,
  ping6,
  type Row,
} from "./evaluate-fixture.ts";

const from = "from-vm" as const;
const allow = { verdict: "allow", reason: "allowed" } as const;
const drop = (reason: string) => ({ verdict: "drop", reason }) as const;

const sn = f.solicitedNode;
const FIRST_FRAGMENT: f.Extension = { kind: "fragment", offset: 0, more: true };
const HBH: f.Extension = { kind: "hop-by-hop" };
const DEST: f.Extension = { kind: "destination" };
const ROUTING: f.Extension = { kind: "routing" };
/** A harmless option that is not a link-layer address (MTU, type 5), to push SLL/TLL to second place. */
const mtu = (): Uint8Array => f.ndOption(5, Uint8Array.from([0, 0, 0, 0, 0x05, 0xdc]));

/** DAD: NS from :: to the target's solicited-node group. */
function dad(mac: string, target: string, o: { options?: readonly Uint8Array[]; dst?: string } = {}): Uint8Array {
  const group = sn(target);
  const dst = o.dst ?? group.ip;
  return e6(mac, dst === group.ip ? group.mac : ALL_NODES_MAC, f.neighborSolicitation({ src: "::", dst, target, ...(o.options && { options: o.options }) }));
}

/** Address resolution: NS from `src` to the target's solicited-node group. */
function ns(mac: string, src: string, target: string, options: readonly Uint8Array[] = [], extensions?: readonly f.Extension[]): Uint8Array {
  const group = sn(target);
  return e6(mac, group.mac, f.neighborSolicitation({ src, dst: group.ip, target, options, ...(extensions && { extensions }) }));
}

/** Unsolicited NA (override) to all nodes. */
function na(mac: string, src: string, target: string, options: readonly Uint8Array[] = [], extensions?: readonly f.Extension[]): Uint8Array {
  return e6(mac, ALL_NODES_MAC, f.neighborAdvertisement({ src, dst: "ff02::1", target, options, ...(extensions && { extensions }) }));
}

const rs = (mac: string, src: string, options: readonly Uint8Array[] = []): Uint8Array => e6(mac, ALL_ROUTERS_MAC, f.routerSolicitation({ src, dst: "ff02::2", options }));
const ra = (mac: string, src: string, extensions?: readonly f.Extension[], options: readonly Uint8Array[] = []): Uint8Array =>
  e6(mac, ALL_NODES_MAC, f.routerAdvertisement({ src, dst: "ff02::1", options, ...(extensions && { extensions }) }));
const redirect = (mac: string, src: string, extensions?: readonly f.Extension[]): Uint8Array =>
  e6(mac, BOB_MAC, f.redirect({ src, dst: BOB_LL, target: src, destination: "2001:db8:99::1", ...(extensions && { extensions }) }));

/** MLDv1 report (131) for ff02::1:3 behind the hop-by-hop router alert. */
const mldv1 = (mac: string, src: string): Uint8Array =>
  e6(mac, "33:33:00:01:00:03", f.icmpv6({ src, dst: "ff02::1:3", type: 131, body: f.withTrailer(new Uint8Array(4), f.ip("ff02::1:3")), hopLimit: 1, extensions: [HBH] }));
const mld = (mac: string, src: string, type: number, extensions: readonly f.Extension[] = [HBH]): Uint8Array =>
  e6(mac, "33:33:00:00:00:16", f.icmpv6({ src, dst: "ff02::16", type, body: new Uint8Array(20), hopLimit: 1, extensions }));

const solicit = (mac: string, src: string): Uint8Array => e6(mac, "33:33:00:01:00:02", f.udp6(src, "ff02::1:2", 546, 547, Uint8Array.from([1, 0, 0, 1])));
const advertise = (mac: string, src: string, extensions?: readonly f.Extension[], sport = 547, dport = 546): Uint8Array =>
  e6(mac, BOB_MAC, f.udp6(src, BOB_LL, sport, dport, Uint8Array.from([2, 0, 0, 1]), extensions));

/** A non-first fragment (offset 8) whose data is `data`: no upper-layer header in it. */
const laterFragment = (mac: string, src: string, data: Uint8Array = new Uint8Array(16), more = false): Uint8Array =>
  e6(mac, BOB_MAC, f.ipv6({ src, dst: "2001:db8::3", next: 17, payload: data, extensions: [{ kind: "fragment", offset: 8, more }] }));

/** A first fragment: fragment header, destination options, then a whole 20-byte TCP header (SYN to port 80). */
const tcpFirstFragment = (mac: string, src: string): Uint8Array =>
  e6(mac, BOB_MAC, f.ipv6({ src, dst: BOB_LL, next: 6, payload: Uint8Array.from([0x9c, 0x40, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]), extensions: [FIRST_FRAGMENT, DEST] }));

/** Bytes that would read as an RA from Eve if a parser mistook them for an upper-layer header. */
const raLookalike = Uint8Array.from([134, 0, 0, 0, 64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]);

const SOURCES: Row[] = [
  { name: "Alice's echo from her fixed address 2001:db8::1", frame: ping6(ALICE_MAC, "2001:db8::1"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's echo from her SLAAC link-local (EUI-64 of her MAC)", frame: ping6(ALICE_MAC, ALICE_LL), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's echo from an address in her pair 2001:db8:0:ff::/64", frame: ping6(ALICE_MAC, "2001:db8:0:ff::1234"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's echo from just outside her /64 pair", frame: ping6(ALICE_MAC, "2001:db8:0:fe::1"), direction: from, policy: aliceFull, ...drop("ipv6-spoof") },
  { name: "Alice's pair address 2001:db8::200 from its pair MAC", frame: ping6(VIP_MAC, "2001:db8::200"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's pair address 2001:db8::200 from her port MAC", frame: ping6(ALICE_MAC, "2001:db8::200"), direction: from, policy: aliceFull, ...drop("ipv6-spoof") },
  { name: "the pair MAC's EUI-64 link-local from the pair MAC", frame: ping6(VIP_MAC, VIP_LL), direction: from, policy: aliceFull, ...allow },
  { name: "the pair MAC's EUI-64 link-local from the port MAC", frame: ping6(ALICE_MAC, VIP_LL), direction: from, policy: aliceFull, ...drop("ipv6-spoof") },
  { name: "the port MAC's link-local from the pair MAC", frame: ping6(VIP_MAC, ALICE_LL), direction: from, policy: aliceFull, ...drop("ipv6-spoof") },
  { name: "Eve's echo from her own link-local", frame: ping6(EVE_MAC, EVE_LL), direction: from, policy: eveFull, ...allow },
  { name: "Eve's echo from her fixed address", frame: ping6(EVE_MAC, "2001:db8::2"), direction: from, policy: eveFull, ...allow },
  { name: "Eve sends from Alice's address", frame: ping6(EVE_MAC, "2001:db8::1"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve sends from Alice's link-local", frame: ping6(EVE_MAC, ALICE_LL), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve sends from Alice's VIP range", frame: ping6(EVE_MAC, "2001:db8:0:ff::1"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve sends from a link-local not derived from her MAC", frame: ping6(EVE_MAC, "fe80::1"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve sends from a SLAAC global address (only the link-local is bound)", frame: ping6(EVE_MAC, "2001:db8::5054:ff:fe00:2"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve's echo from :: (neither DAD nor MLD)", frame: ping6(EVE_MAC, "::"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve's echo from a multicast source", frame: ping6(EVE_MAC, "ff02::1"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve's echo from Alice's address behind a hop-by-hop header", frame: ping6(EVE_MAC, "2001:db8::1", [HBH]), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve's echo from her address behind hop-by-hop, routing and destination options", frame: ping6(EVE_MAC, "2001:db8::2", [HBH, ROUTING, DEST]), direction: from, policy: eveFull, ...allow },
];

const DAD_AND_MLD: Row[] = [
  { name: "Alice's DAD for 2001:db8::1 from ::", frame: dad(ALICE_MAC, "2001:db8::1"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's DAD with a nonce option (RFC 7527)", frame: dad(ALICE_MAC, "2001:db8::1", { options: [f.nonce()] }), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's DAD for her link-local", frame: dad(ALICE_MAC, ALICE_LL, { options: [f.nonce()] }), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's DAD for an address in her /64 pair", frame: dad(ALICE_MAC, "2001:db8:0:ff::5"), direction: from, policy: aliceFull, ...allow },
  { name: "DAD for the pair address 2001:db8::200 from its pair MAC", frame: dad(VIP_MAC, "2001:db8::200"), direction: from, policy: aliceFull, ...allow },
  { name: "DAD for the pair address 2001:db8::200 from the port MAC", frame: dad(ALICE_MAC, "2001:db8::200"), direction: from, policy: aliceFull, ...drop("nd-spoof") },
  { name: "Alice's DAD with her own link-layer option", frame: dad(ALICE_MAC, "2001:db8::1", { options: [f.sll(ALICE_MAC)] }), direction: from, policy: aliceFull, ...allow },
  { name: "DAD with a source link-layer option naming Eve's MAC", frame: dad(ALICE_MAC, "2001:db8::1", { options: [f.sll(EVE_MAC)] }), direction: from, policy: aliceFull, ...drop("nd-spoof") },
  { name: "Eve's DAD for Alice's address (a DAD defence denial)", frame: dad(EVE_MAC, "2001:db8::1"), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's DAD for an address not bound to her", frame: dad(EVE_MAC, "2001:db8::99", { options: [f.nonce()] }), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's DAD for her own address", frame: dad(EVE_MAC, "2001:db8::2", { options: [f.nonce()] }), direction: from, policy: eveFull, ...allow },
  { name: "DAD-shaped NS from :: to all nodes", frame: dad(EVE_MAC, "2001:db8::2", { dst: "ff02::1" }), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "DAD-shaped NS from :: to all routers", frame: dad(EVE_MAC, "2001:db8::2", { dst: "ff02::2" }), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "DAD-shaped NS from :: to a unicast address", frame: dad(EVE_MAC, "2001:db8::2", { dst: "2001:db8::3" }), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "DAD from a foreign MAC", frame: dad(ALICE_MAC, "2001:db8::1"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  { name: "NA from :: (only DAD solicitations may use ::)", frame: na(EVE_MAC, "::", "2001:db8::2"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "RS from ::", frame: rs(EVE_MAC, "::"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "MLDv2 report (143) from :: behind hop-by-hop", frame: e6(ALICE_MAC, "33:33:00:00:00:16", f.mldv2Report("::")), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's MLDv2 report from ::", frame: e6(EVE_MAC, "33:33:00:00:00:16", f.mldv2Report("::")), direction: from, policy: eveFull, ...allow },
  { name: "MLDv1 report (131) from :: behind hop-by-hop", frame: mldv1(ALICE_MAC, "::"), direction: from, policy: aliceFull, ...allow },
  { name: "MLDv2 report from :: without the hop-by-hop header", frame: mld(ALICE_MAC, "::", 143, []), direction: from, policy: aliceFull, ...allow },
  { name: "MLDv2 report from Alice's link-local", frame: e6(ALICE_MAC, "33:33:00:00:00:16", f.mldv2Report(ALICE_LL)), direction: from, policy: aliceFull, ...allow },
  { name: "MLDv1 report from Alice's link-local", frame: mldv1(ALICE_MAC, ALICE_LL), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's MLDv2 report from Alice's link-local", frame: e6(EVE_MAC, "33:33:00:00:00:16", f.mldv2Report(ALICE_LL)), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "MLD done (132) from ::", frame: mld(EVE_MAC, "::", 132), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "MLD query (130) from ::", frame: mld(EVE_MAC, "::", 130), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
];

const ROUTER_GUARDS: Row[] = [
  { name: "Alice's router solicitation with her own link-layer option", frame: rs(ALICE_MAC, ALICE_LL, [f.sll(ALICE_MAC)]), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's router solicitation without options", frame: rs(ALICE_MAC, ALICE_LL), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's RA from her own link-local", frame: ra(EVE_MAC, EVE_LL), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "Alice's RA from her own link-local", frame: ra(ALICE_MAC, ALICE_LL, undefined, [f.sll(ALICE_MAC)]), direction: from, policy: aliceFull, ...drop("ra-guard") },
  { name: "an RA from the pair MAC and its link-local", frame: ra(VIP_MAC, VIP_LL), direction: from, policy: aliceFull, ...drop("ra-guard") },
  { name: "Eve's RA naming Alice's MAC as router", frame: ra(EVE_MAC, EVE_LL, undefined, [f.sll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "Eve's RA behind a destination-options header", frame: ra(EVE_MAC, EVE_LL, [DEST]), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "Eve's RA behind a 24-byte destination-options header", frame: ra(EVE_MAC, EVE_LL, [{ kind: "destination", padBytes: 20 }]), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "Eve's RA behind hop-by-hop and routing headers", frame: ra(EVE_MAC, EVE_LL, [HBH, ROUTING]), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "Eve's RA behind hop-by-hop, destination, routing and destination headers", frame: ra(EVE_MAC, EVE_LL, [HBH, DEST, ROUTING, DEST]), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "Eve's RA in a first fragment", frame: ra(EVE_MAC, EVE_LL, [FIRST_FRAGMENT]), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "Eve's RA in a first fragment behind destination options", frame: ra(EVE_MAC, EVE_LL, [FIRST_FRAGMENT, DEST]), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "Eve's RA in an atomic fragment (offset 0, no more fragments)", frame: ra(EVE_MAC, EVE_LL, [{ kind: "fragment", offset: 0, more: false }]), direction: from, policy: eveFull, ...drop("ra-guard") },
  { name: "an RA from Alice's link-local via Eve (the source is checked first)", frame: ra(EVE_MAC, ALICE_LL), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "an RA from ::", frame: ra(EVE_MAC, "::"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve's redirect from her own link-local", frame: redirect(EVE_MAC, EVE_LL), direction: from, policy: eveFull, ...drop("redirect-guard") },
  { name: "Alice's redirect from her own link-local", frame: redirect(ALICE_MAC, ALICE_LL), direction: from, policy: aliceFull, ...drop("redirect-guard") },
  { name: "Eve's redirect behind a destination-options header", frame: redirect(EVE_MAC, EVE_LL, [DEST]), direction: from, policy: eveFull, ...drop("redirect-guard") },
  { name: "Eve's redirect in a first fragment", frame: redirect(EVE_MAC, EVE_LL, [FIRST_FRAGMENT]), direction: from, policy: eveFull, ...drop("redirect-guard") },
  { name: "a redirect from Alice's link-local via Eve", frame: redirect(EVE_MAC, ALICE_LL), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
];

const ND: Row[] = [
  // Neighbour advertisements: target and link-layer options.
  { name: "Alice's unsolicited NA for 2001:db8::1 with her own TLL", frame: na(ALICE_MAC, ALICE_LL, "2001:db8::1", [f.tll(ALICE_MAC)]), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's failover: unsolicited NA for her VIP 2001:db8:0:ff::10 (CIDR pair)", frame: na(ALICE_MAC, ALICE_LL, "2001:db8:0:ff::10", [f.tll(ALICE_MAC)]), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's NA for her link-local", frame: na(ALICE_MAC, ALICE_LL, ALICE_LL, [f.tll(ALICE_MAC)]), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's solicited NA without options", frame: e6(ALICE_MAC, BOB_MAC, f.neighborAdvertisement({ src: "2001:db8::1", dst: "2001:db8::3", target: "2001:db8::1", flags: 0x60 })), direction: from, policy: aliceFull, ...allow },
  { name: "unsolicited NA for 2001:db8::200 from its pair MAC", frame: na(VIP_MAC, VIP_LL, "2001:db8::200", [f.tll(VIP_MAC)]), direction: from, policy: aliceFull, ...allow },
  { name: "unsolicited NA for 2001:db8::200 from its own address and pair MAC", frame: na(VIP_MAC, "2001:db8::200", "2001:db8::200", [f.tll(VIP_MAC)]), direction: from, policy: aliceFull, ...allow },
  { name: "NA for the pair MAC's link-local from the pair MAC", frame: na(VIP_MAC, VIP_LL, VIP_LL, [f.tll(VIP_MAC)]), direction: from, policy: aliceFull, ...allow },
  { name: "NA for 2001:db8::200 from Alice's port MAC (usable only with its pair MAC)", frame: na(ALICE_MAC, ALICE_LL, "2001:db8::200", [f.tll(ALICE_MAC)]), direction: from, policy: aliceFull, ...drop("nd-spoof") },
  { name: "NA for 2001:db8::200 from the pair MAC but with the port MAC as TLL", frame: na(VIP_MAC, VIP_LL, "2001:db8::200", [f.tll(ALICE_MAC)]), direction: from, policy: aliceFull, ...drop("nd-spoof") },
  { name: "NA for Alice's fixed address from the pair MAC", frame: na(VIP_MAC, VIP_LL, "2001:db8::1", [f.tll(VIP_MAC)]), direction: from, policy: aliceFull, ...drop("nd-spoof") },
  { name: "Eve's NA for Alice's address", frame: na(EVE_MAC, EVE_LL, "2001:db8::1", [f.tll(EVE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA for Alice's address without options", frame: na(EVE_MAC, EVE_LL, "2001:db8::1"), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA for Alice's VIP", frame: na(EVE_MAC, EVE_LL, "2001:db8:0:ff::10", [f.tll(EVE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA for Alice's link-local", frame: na(EVE_MAC, EVE_LL, ALICE_LL, [f.tll(EVE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA for :: as target", frame: na(EVE_MAC, EVE_LL, "::", [f.tll(EVE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA for Alice's address behind a hop-by-hop header", frame: na(EVE_MAC, EVE_LL, "2001:db8::1", [f.tll(EVE_MAC)], [HBH]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA for her own address with her own TLL", frame: na(EVE_MAC, EVE_LL, "2001:db8::2", [f.tll(EVE_MAC)]), direction: from, policy: eveFull, ...allow },
  { name: "Eve's NA for her own address whose TLL names Alice's MAC", frame: na(EVE_MAC, EVE_LL, "2001:db8::2", [f.tll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA whose TLL names Alice's MAC as second option, after an MTU option", frame: na(EVE_MAC, EVE_LL, "2001:db8::2", [mtu(), f.tll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA whose TLL names Alice's MAC as second option, after her own TLL", frame: na(EVE_MAC, EVE_LL, "2001:db8::2", [f.tll(EVE_MAC), f.tll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NA with her own TLL as second option, after an MTU option", frame: na(EVE_MAC, EVE_LL, "2001:db8::2", [mtu(), f.tll(EVE_MAC)]), direction: from, policy: eveFull, ...allow },
  { name: "Eve's NA carrying a source link-layer option that names Alice's MAC", frame: na(EVE_MAC, EVE_LL, "2001:db8::2", [f.sll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "an NA for Eve's address from Alice's address (source first)", frame: na(EVE_MAC, "2001:db8::1", "2001:db8::2", [f.tll(EVE_MAC)]), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  // Neighbour solicitations: every link-layer option, wherever it sits.
  { name: "Eve's NS for Bob with her own SLL", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(EVE_MAC)]), direction: from, policy: eveFull, ...allow },
  { name: "Eve's NS for Alice's address with her own SLL (resolving is not claiming)", frame: ns(EVE_MAC, "2001:db8::2", "2001:db8::1", [f.sll(EVE_MAC)]), direction: from, policy: eveFull, ...allow },
  { name: "Eve's unicast NS (NUD) without options", frame: e6(EVE_MAC, BOB_MAC, f.neighborSolicitation({ src: EVE_LL, dst: BOB_LL, target: BOB_LL })), direction: from, policy: eveFull, ...allow },
  { name: "Eve's NS whose SLL names Alice's MAC", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NS whose SLL names Alice's MAC as second option, after her own SLL", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(EVE_MAC), f.sll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NS whose SLL names Alice's MAC as second option, after a nonce", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.nonce(), f.sll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NS with her own SLL as second option, after a nonce", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.nonce(), f.sll(EVE_MAC)]), direction: from, policy: eveFull, ...allow },
  { name: "Eve's NS carrying a target link-layer option that names Alice's MAC", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.tll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's NS with a foreign SLL behind destination options", frame: ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(ALICE_MAC)], [DEST]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Alice's NS from the pair MAC with the pair MAC as SLL", frame: ns(VIP_MAC, VIP_LL, BOB_LL, [f.sll(VIP_MAC)]), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's NS from the pair MAC with the port MAC as SLL", frame: ns(VIP_MAC, VIP_LL, BOB_LL, [f.sll(ALICE_MAC)]), direction: from, policy: aliceFull, ...drop("nd-spoof") },
  // Router solicitations.
  { name: "Eve's RS with a foreign SLL", frame: rs(EVE_MAC, EVE_LL, [f.sll(ALICE_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's RS with a foreign SLL as second option", frame: rs(EVE_MAC, EVE_LL, [f.sll(EVE_MAC), f.sll(BOB_MAC)]), direction: from, policy: eveFull, ...drop("nd-spoof") },
  { name: "Eve's RS with her own SLL", frame: rs(EVE_MAC, EVE_LL, [f.sll(EVE_MAC)]), direction: from, policy: eveFull, ...allow },
  // Padding must not add options.
  { name: "Alice's NA followed by trailing bytes that look like a foreign TLL", frame: f.withTrailer(na(ALICE_MAC, ALICE_LL, "2001:db8::1", [f.tll(ALICE_MAC)]), f.tll(EVE_MAC)), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's NS followed by trailing bytes that look like her own SLL (the foreign one still counts)", frame: f.withTrailer(ns(EVE_MAC, EVE_LL, BOB_LL, [f.sll(ALICE_MAC)]), f.sll(EVE_MAC)), direction: from, policy: eveFull, ...drop("nd-spoof") },
];

const DHCPV6: Row[] = [
  { name: "Alice's DHCPv6 solicit (546 → 547) from her link-local", frame: solicit(ALICE_MAC, ALICE_LL), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's DHCPv6 solicit from her link-local", frame: solicit(EVE_MAC, EVE_LL), direction: from, policy: eveFull, ...allow },
  { name: "Eve's DHCPv6 advertise (547 → 546) from her link-local", frame: advertise(EVE_MAC, EVE_LL), direction: from, policy: eveFull, ...drop("dhcpv6-server-guard") },
  { name: "Alice's DHCPv6 advertise from her bound global address", frame: advertise(ALICE_MAC, "2001:db8::1"), direction: from, policy: aliceFull, ...drop("dhcpv6-server-guard") },
  { name: "a DHCPv6 advertise from the pair MAC and its address", frame: advertise(VIP_MAC, "2001:db8::200"), direction: from, policy: aliceFull, ...drop("dhcpv6-server-guard") },
  { name: "a DHCPv6 relay (547 → 547) from Eve's address", frame: advertise(EVE_MAC, "2001:db8::2", undefined, 547, 547), direction: from, policy: eveFull, ...drop("dhcpv6-server-guard") },
  { name: "Eve's DHCPv6 advertise behind a destination-options header", frame: advertise(EVE_MAC, EVE_LL, [DEST]), direction: from, policy: eveFull, ...drop("dhcpv6-server-guard") },
  { name: "Eve's DHCPv6 advertise in a first fragment", frame: advertise(EVE_MAC, EVE_LL, [FIRST_FRAGMENT]), direction: from, policy: eveFull, ...drop("dhcpv6-server-guard") },
  // A server whatever its source port: UDP to a client's port 546 (issue 12).
  { name: "Eve's DHCPv6 advertise from port 1547 to port 546", frame: advertise(EVE_MAC, EVE_LL, undefined, 1547, 546), direction: from, policy: eveFull, ...drop("dhcpv6-server-guard") },
  { name: "Eve's DHCPv6 reply from a random port behind a destination-options header", frame: advertise(EVE_MAC, EVE_LL, [DEST], 49152, 546), direction: from, policy: eveFull, ...drop("dhcpv6-server-guard") },
  { name: "Eve's DHCPv6 advertise from port 1547 in a first fragment", frame: advertise(EVE_MAC, EVE_LL, [FIRST_FRAGMENT], 1547, 546), direction: from, policy: eveFull, ...drop("dhcpv6-server-guard") },
  { name: "Alice's UDP from port 546 to port 53 (546 is only a destination to the guard)", frame: advertise(ALICE_MAC, ALICE_LL, undefined, 546, 53), direction: from, policy: aliceFull, ...allow },
  { name: "a DHCPv6 advertise from Alice's link-local via Eve (source first)", frame: advertise(EVE_MAC, ALICE_LL), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "Eve's UDP to port 547 from port 40000", frame: advertise(EVE_MAC, EVE_LL, undefined, 40000, 547), direction: from, policy: eveFull, ...allow },
  { name: "Eve's TCP from port 547 (rule 12 is UDP only)", frame: e6(EVE_MAC, BOB_MAC, f.ipv6({ src: EVE_LL, dst: BOB_LL, next: 6, payload: Uint8Array.from([0x02, 0x23, 0, 80, ...new Uint8Array(16)]) })), direction: from, policy: eveFull, ...allow },
];

const FRAGMENTS_AND_MALFORMED: Row[] = [
  { name: "Alice's fragmented UDP datagram: the first fragment", frame: e6(ALICE_MAC, BOB_MAC, f.udp6("2001:db8::1", "2001:db8::3", 40000, 53, new Uint8Array(16), [FIRST_FRAGMENT])), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's fragmented UDP datagram: a non-first fragment", frame: laterFragment(ALICE_MAC, "2001:db8::1"), direction: from, policy: aliceFull, ...allow },
  { name: "Alice's middle fragment (more fragments follow)", frame: laterFragment(ALICE_MAC, "2001:db8::1", new Uint8Array(16), true), direction: from, policy: aliceFull, ...allow },
  { name: "Eve's non-first fragment whose data looks like an RA (no upper-layer header there)", frame: laterFragment(EVE_MAC, EVE_LL, raLookalike), direction: from, policy: eveFull, ...allow },
  { name: "a non-first fragment from Alice's address via Eve", frame: laterFragment(EVE_MAC, "2001:db8::1"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "a non-first fragment from ::", frame: laterFragment(EVE_MAC, "::"), direction: from, policy: eveFull, ...drop("ipv6-spoof") },
  { name: "a non-first fragment from a foreign MAC", frame: laterFragment(ALICE_MAC, "2001:db8::1"), direction: from, policy: eveFull, ...drop("mac-spoof") },
  {
    name: "Eve's first fragment that stops inside a destination-options header (RFC 7112)",
    frame: cutIpv6(ra(EVE_MAC, EVE_LL, [FIRST_FRAGMENT, { kind: "destination", padBytes: 20 }]), 8 + 16),
    direction: from,
    policy: eveFull,
    ...drop("ipv6-fragment"),
  },
  {
    name: "a first fragment that stops inside a hop-by-hop header after it",
    frame: cutIpv6(ra(EVE_MAC, EVE_LL, [FIRST_FRAGMENT, { kind: "hop-by-hop", padBytes: 12 }]), 8 + 4),
    direction: from,
    policy: eveFull,
    ...drop("ipv6-fragment"),
  },
  {
    name: "a first fragment behind hop-by-hop that stops inside destination options",
    frame: cutIpv6(ra(EVE_MAC, EVE_LL, [HBH, FIRST_FRAGMENT, { kind: "destination", padBytes: 20 }]), 8 + 8 + 8),
    direction: from,
    policy: eveFull,
    ...drop("ipv6-fragment"),
  },
  { name: "Eve's first fragment carrying the whole TCP header", frame: tcpFirstFragment(EVE_MAC, EVE_LL), direction: from, policy: eveFull, ...allow },
  { name: "Eve's first fragment whose chain ends right before the TCP header (TCP in the next fragment)", frame: cutIpv6(tcpFirstFragment(EVE_MAC, EVE_LL), 8 + 8), direction: from, policy: eveFull, ...drop("ipv6-fragment") },
  { name: "a first fragment that ends right after the fragment header (no ICMPv6 header)", frame: cutIpv6(ra(EVE_MAC, EVE_LL, [FIRST_FRAGMENT]), 8), direction: from, policy: eveFull, ...drop("ipv6-fragment") },
  { name: "a first fragment with only 2 bytes of ICMPv6", frame: cutIpv6(ra(EVE_MAC, EVE_LL, [FIRST_FRAGMENT]), 8 + 2), direction: from, policy: eveFull, ...drop("ipv6-fragment") },
  { name: "a first fragment with only 2 bytes of UDP", frame: cutIpv6(advertise(EVE_MAC, EVE_LL, [FIRST_FRAGMENT]), 8 + 2), direction: from, policy: eveFull, ...drop("ipv6-fragment") },
  {
    name: "a truncated first fragment from Alice's address via Eve (rule 7 runs before rule 8)",
    frame: cutIpv6(ra(EVE_MAC, ALICE_LL, [FIRST_FRAGMENT, { kind: "destination", padBytes: 20 }]), 8 + 16),
    direction: from,
    policy: eveFull,
    ...drop("ipv6-fragment"),
  },
  { name: "a hop-by-hop header running off a packet that is not a fragment", frame: cutIpv6(ra(EVE_MAC, EVE_LL, [{ kind: "hop-by-hop", padBytes: 20 }]), 16), direction: from, policy: eveFull, ...drop("malformed") },
  { name: "a destination-options header running off a packet that is not a fragment", frame: cutIpv6(ra(EVE_MAC, EVE_LL, [HBH, { kind: "destination", padBytes: 20 }]), 8 + 4), direction: from, policy: eveFull, ...drop("malformed") },
  { name: "an ICMPv6 header cut after 2 bytes, not a fragment", frame: cutIpv6(ra(EVE_MAC, EVE_LL), 2), direction: from, policy: eveFull, ...drop("malformed") },
  { name: "a UDP header cut after 2 bytes, not a fragment", frame: cutIpv6(advertise(EVE_MAC, EVE_LL), 2), direction: from, policy: eveFull, ...drop("malformed") },
  { name: "an IPv6 header cut after 30 bytes", frame: ping6(EVE_MAC, EVE_LL).subarray(0, 14 + 30), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  { name: "an IPv6 payload length past the end of the frame", frame: ping6(EVE_MAC, EVE_LL).subarray(0, 14 + 40 + 4), direction: from, policy: eveFull, ...drop("malformed"), paddable: false },
  { name: "the IPv6 ethertype carrying IP version 4", frame: f.ether(BOB_MAC, EVE_MAC, 0x86dd, f.withTrailer(f.icmp4Echo("10.0.0.2", "10.0.0.3"), new Uint8Array(20))), direction: from, policy: eveFull, ...drop("malformed") },
];

test("evaluate() from-vm at level full: IPv6 sources (rule 8)", (t) => checkRows(t, SOURCES));
test("evaluate() from-vm at level full: DAD and MLD from :: (rules 8 and 11)", (t) => checkRows(t, DAD_AND_MLD));
test("evaluate() from-vm at level full: RA and redirect guards behind any extension headers (rules 9–10)", (t) => checkRows(t, ROUTER_GUARDS));
test("evaluate() from-vm at level full: neighbour discovery targets and link-layer options (rule 11)", (t) => checkRows(t, ND));
test("evaluate() from-vm at level full: DHCPv6 server guard (rule 12)", (t) => checkRows(t, DHCPV6));
test("evaluate() from-vm at level full: IPv6 fragments and truncated headers (rule 7, malformed)", (t) => checkRows(t, FRAGMENTS_AND_MALFORMED));
test("evaluate() from-vm at level full: padded IPv6 frames evaluate like unpadded ones", (t) =>
  checkPadded(t, [...SOURCES, ...DAD_AND_MLD, ...ROUTER_GUARDS, ...ND, ...DHCPV6, ...FRAGMENTS_AND_MALFORMED]));
