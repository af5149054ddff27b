// parseFrame(): VLAN tags, LLC, ARP, IPv4, the IPv6 extension-header walk, ND options in wire
// order, padding ignored, truncations flagged.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as f from "../../src/policy/frame-builder.ts";
import { parseFrame } from "../../src/policy/frame.ts";

const ALICE = "52:54:00:00:00:01";
const BOB = "52:54:00:00:00:03";
const ALICE_LL = "fe80::5054:ff:fe00:1";
const hex = (b: Uint8Array | undefined): string => (b ? [...b].map((x) => x.toString(16).padStart(2, "0")).join("") : "none");
const ping4 = (): Uint8Array => f.ether(BOB, ALICE, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3"));
const ra = (extensions: readonly f.Extension[]): Uint8Array => f.ether("33:33:00:00:00:01", ALICE, 0x86dd, f.routerAdvertisement({ src: ALICE_LL, dst: "ff02::1", extensions }));
const cut = (frame: Uint8Array, payloadLength: number): Uint8Array => {
  const out = frame.slice(0, 14 + 40 + payloadLength);
  out[18] = payloadLength >> 8;
  out[19] = payloadLength & 0xff;
  return out;
};

test("parseFrame() reads the MACs and ethertype of an untagged frame", () => {
  const frame = parseFrame(ping4());
  assert.equal(frame.dst, BOB);
  assert.equal(frame.src, ALICE);
  assert.deepEqual(frame.tags, []);
  assert.equal(frame.type, 0x0800);
  assert.equal(frame.llc, false);
  assert.equal(frame.malformed, undefined);
  assert.equal(hex(frame.ipv4?.src), "0a000001");
  assert.equal(hex(frame.ipv4?.dst), "0a000003");
  assert.equal(frame.ipv4?.protocol, 1);
});

test("parseFrame() lists VLAN tags outermost first and reads the ethertype behind them", () => {
  const cases: [string, Uint8Array, number[]][] = [
    ["802.1Q", f.tag(ping4(), 5), [0x8100]],
    ["802.1ad", f.tag(ping4(), 5, 0x88a8), [0x88a8]],
    ["0x9100", f.tag(ping4(), 5, 0x9100), [0x9100]],
    ["QinQ", f.tag(f.tag(ping4(), 10), 20, 0x88a8), [0x88a8, 0x8100]],
    ["three tags", f.tag(f.tag(f.tag(ping4(), 1), 2), 3, 0x9100), [0x9100, 0x8100, 0x8100]],
  ];
  for (const [name, bytes, tags] of cases) {
    const frame = parseFrame(bytes);
    assert.deepEqual(frame.tags, tags, name);
    assert.equal(frame.type, 0x0800, name);
    assert.equal(hex(frame.ipv4?.src), "0a000001", `${name}: the IPv4 header behind the tags is parsed`);
  }
  const arp = parseFrame(f.tag(f.ether("ff:ff:ff:ff:ff:ff", ALICE, 0x0806, f.arp({ sha: ALICE, spa: "10.0.0.1", tpa: "10.0.0.3" })), 7));
  assert.deepEqual([arp.tags, arp.type, arp.arp?.sha], [[0x8100], 0x0806, ALICE]);
});

test("parseFrame() flags a VLAN tag cut short", () => {
  const frame = parseFrame(f.tag(ping4(), 5).subarray(0, 16));
  assert.match(frame.malformed ?? "", /VLAN/);
});

test("parseFrame() marks an 802.3 length field as LLC, not an ethertype", () => {
  const frame = parseFrame(f.llcSnap(BOB, ALICE, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")));
  assert.equal(frame.llc, true);
  assert.equal(frame.type, 8 + 36);
  assert.equal(frame.ipv4, undefined, "the IPv4 inside SNAP is not parsed as IPv4");
  assert.equal(parseFrame(f.ether(BOB, ALICE, 1500, new Uint8Array(46))).llc, true);
  assert.equal(parseFrame(f.ether(BOB, ALICE, 0x8137, new Uint8Array(46))).llc, false);
});

test("parseFrame() reads ARP and RARP fields", () => {
  const frame = parseFrame(f.ether("ff:ff:ff:ff:ff:ff", ALICE, 0x0806, f.arp({ op: 2, sha: ALICE, spa: "10.0.0.1", tha: BOB, tpa: "10.0.0.3" })));
  const a = frame.arp!;
  assert.deepEqual([a.htype, a.ptype, a.hlen, a.plen, a.op, a.sha, hex(a.spa), a.tha, hex(a.tpa)], [1, 0x0800, 6, 4, 2, ALICE, "0a000001", BOB, "0a000003"]);
  const rarp = parseFrame(f.ether("ff:ff:ff:ff:ff:ff", ALICE, 0x8035, f.arp({ op: 3, sha: ALICE, spa: "0.0.0.0", tha: ALICE, tpa: "0.0.0.0" })));
  assert.deepEqual([rarp.type, rarp.arp?.op, rarp.arp?.tha], [0x8035, 3, ALICE]);
});

test("parseFrame() flags truncated ARP and Ethernet headers", () => {
  const arp = f.arp({ sha: ALICE, spa: "10.0.0.1", tpa: "10.0.0.3" });
  assert.match(parseFrame(f.ether("ff:ff:ff:ff:ff:ff", ALICE, 0x0806, arp.subarray(0, 27))).malformed ?? "", /ARP/);
  assert.match(parseFrame(f.ether("ff:ff:ff:ff:ff:ff", ALICE, 0x0806, arp.subarray(0, 7))).malformed ?? "", /ARP/);
  assert.match(parseFrame(ping4().subarray(0, 13)).malformed ?? "", /Ethernet/);
  assert.equal(parseFrame(ping4().subarray(0, 13)).type, 0);
});

test("parseFrame() reads IPv4 fragments and UDP ports only where the UDP header is", () => {
  const first = parseFrame(f.ether(BOB, ALICE, 0x0800, f.ipv4({ src: "10.0.0.1", dst: "10.0.0.3", protocol: 17, payload: Uint8Array.from([0, 67, 0, 68, 0, 16, 0, 0]), moreFragments: true })));
  assert.deepEqual([first.ipv4?.fragmentOffset, first.ipv4?.moreFragments, first.ipv4?.ports], [0, true, { sport: 67, dport: 68 }]);
  const later = parseFrame(f.ether(BOB, ALICE, 0x0800, f.ipv4({ src: "10.0.0.1", dst: "10.0.0.3", protocol: 17, payload: Uint8Array.from([0, 67, 0, 68, 0, 16, 0, 0]), fragmentOffset: 1480 })));
  assert.deepEqual([later.ipv4?.fragmentOffset, later.ipv4?.moreFragments, later.ipv4?.ports], [1480, false, undefined]);
});

test("parseFrame() flags truncated or inconsistent IPv4 headers", () => {
  const packet = f.icmp4Echo("10.0.0.1", "10.0.0.3");
  assert.match(parseFrame(f.ether(BOB, ALICE, 0x0800, packet.subarray(0, 19))).malformed ?? "", /IPv4/);
  assert.match(parseFrame(f.ether(BOB, ALICE, 0x0800, packet.subarray(0, 30))).malformed ?? "", /IPv4/, "total length past the frame");
  assert.match(parseFrame(f.ether(BOB, ALICE, 0x0800, Uint8Array.from(packet, (b, i) => (i === 0 ? 0x43 : b)))).malformed ?? "", /IPv4/, "IHL 3");
});

test("parseFrame() walks IPv6 extension headers in order to the upper layer", () => {
  const frame = parseFrame(ra([{ kind: "hop-by-hop" }, { kind: "destination", padBytes: 20 }, { kind: "routing" }, { kind: "fragment", offset: 0, more: true }, { kind: "destination" }]));
  const ip = frame.ipv6!;
  assert.deepEqual(ip.extensions, [0, 60, 43, 44, 60]);
  assert.deepEqual(ip.fragment, { offset: 0, more: true });
  assert.equal(ip.upper, 58);
  assert.equal(ip.upperLength, 16, "the RA's fixed part");
  assert.equal(ip.icmpv6?.type, 134);
  assert.equal(ip.chainTruncated, false);
  assert.equal(hex(ip.src), "fe80000000000000505400fffe000001");
});

test("parseFrame() stops at a non-first IPv6 fragment: no upper layer there", () => {
  const frame = parseFrame(f.ether(BOB, ALICE, 0x86dd, f.ipv6({ src: ALICE_LL, dst: "fe80::3", next: 58, payload: Uint8Array.from([134, 0, 0, 0, 0, 0, 0, 0]), extensions: [{ kind: "fragment", offset: 8, more: false }] })));
  const ip = frame.ipv6!;
  assert.deepEqual([ip.fragment, ip.upper, ip.icmpv6, ip.chainTruncated], [{ offset: 8, more: false }, undefined, undefined, false]);
});

test("parseFrame() flags an IPv6 extension-header chain running past the payload", () => {
  const firstFragment = parseFrame(cut(ra([{ kind: "fragment", offset: 0, more: true }, { kind: "destination", padBytes: 20 }]), 8 + 16));
  assert.deepEqual([firstFragment.ipv6?.chainTruncated, firstFragment.ipv6?.fragment, firstFragment.ipv6?.upper], [true, { offset: 0, more: true }, undefined]);
  const whole = parseFrame(cut(ra([{ kind: "hop-by-hop", padBytes: 20 }]), 16));
  assert.deepEqual([whole.ipv6?.chainTruncated, whole.ipv6?.fragment, whole.malformed], [true, undefined, undefined]);
  const noIcmp = parseFrame(cut(ra([{ kind: "fragment", offset: 0, more: true }]), 10));
  assert.deepEqual([noIcmp.ipv6?.chainTruncated, noIcmp.ipv6?.upper, noIcmp.ipv6?.icmpv6, noIcmp.ipv6?.upperLength], [false, 58, undefined, 2], "chain complete, upper-layer header cut");
  const none = parseFrame(cut(ra([{ kind: "fragment", offset: 0, more: true }]), 8));
  assert.deepEqual([none.ipv6?.chainTruncated, none.ipv6?.upper, none.ipv6?.upperLength], [false, 58, 0], "chain ends right before the upper-layer header");
});

test("parseFrame() flags truncated or inconsistent IPv6 headers", () => {
  const frame = f.ether(BOB, ALICE, 0x86dd, f.icmp6Echo(ALICE_LL, "fe80::3"));
  assert.match(parseFrame(frame.subarray(0, 14 + 39)).malformed ?? "", /IPv6/);
  assert.match(parseFrame(frame.subarray(0, frame.length - 1)).malformed ?? "", /payload length/);
  assert.match(parseFrame(f.ether(BOB, ALICE, 0x86dd, f.withTrailer(f.icmp4Echo("10.0.0.1", "10.0.0.3"), new Uint8Array(20)))).malformed ?? "", /version/);
});

test("parseFrame() lists ND options in wire order with their offsets", () => {
  const nsFrame = f.ether("33:33:ff:00:00:03", ALICE, 0x86dd, f.neighborSolicitation({ src: ALICE_LL, dst: "ff02::1:ff00:3", target: "fe80::3", options: [f.nonce(), f.sll(BOB), f.sll(ALICE)] }));
  const icmp = parseFrame(nsFrame).ipv6!.icmpv6!;
  assert.equal(icmp.type, 135);
  assert.equal(hex(icmp.target), "fe800000000000000000000000000003");
  assert.deepEqual(
    icmp.options.map((o) => [o.type, o.offset, hex(o.data.subarray(0, 6))]),
    [
      [14, 24, "010203040506"],
      [1, 32, "525400000003"],
      [1, 40, "525400000001"],
    ],
  );
  assert.equal(icmp.badOptions, false);
  const redirect = parseFrame(f.ether(BOB, ALICE, 0x86dd, f.redirect({ src: ALICE_LL, dst: "fe80::3", target: ALICE_LL, destination: "2001:db8::9", options: [f.tll(ALICE)] }))).ipv6!.icmpv6!;
  assert.deepEqual(redirect.options.map((o) => [o.type, o.offset]), [[2, 40]]);
});

test("parseFrame() flags an ND option of length 0 or running past the message", () => {
  const zero = f.ether(BOB, ALICE, 0x86dd, f.neighborAdvertisement({ src: ALICE_LL, dst: "ff02::1", target: ALICE_LL, options: [Uint8Array.from([2, 0, 0, 0, 0, 0, 0, 0])] }));
  assert.equal(parseFrame(zero).ipv6?.icmpv6?.badOptions, true);
  const long = f.ether(BOB, ALICE, 0x86dd, f.neighborAdvertisement({ src: ALICE_LL, dst: "ff02::1", target: ALICE_LL, options: [Uint8Array.from([2, 2, 0x52, 0x54, 0, 0, 0, 1])] }));
  assert.equal(parseFrame(long).ipv6?.icmpv6?.badOptions, true);
});

test("parseFrame() ignores Ethernet padding and trailers", () => {
  const na = f.ether("33:33:00:00:00:01", ALICE, 0x86dd, f.neighborAdvertisement({ src: ALICE_LL, dst: "ff02::1", target: ALICE_LL, options: [f.tll(ALICE)] }));
  const padded = parseFrame(f.withTrailer(na, f.tll(BOB)));
  assert.deepEqual(padded.ipv6?.icmpv6?.options.map((o) => o.type), [2], "trailing bytes that look like an option are not an option");
  const arp = f.ether("ff:ff:ff:ff:ff:ff", ALICE, 0x0806, f.arp({ sha: ALICE, spa: "10.0.0.1", tpa: "10.0.0.3" }));
  const arpPadded = parseFrame(f.withTrailer(arp, new Uint8Array(18)));
  assert.deepEqual({ ...arpPadded, bytes: undefined }, { ...parseFrame(arp), bytes: undefined });
  const udp = f.ether(BOB, ALICE, 0x0800, f.udp4("10.0.0.1", "10.0.0.3", 40000, 53, new Uint8Array(0)));
  assert.deepEqual(parseFrame(f.withTrailer(udp, Uint8Array.from([0, 67, 0, 68]))).ipv4?.ports, { sport: 40000, dport: 53 });
});
