// The nftables driver on a real bridge: a fresh network namespace per run, guests behind veth pairs,
// crafted frames sent through the lab (src/conformance/lab/). Every frame's fate (delivered or not) and every drop reason (the
// driver's counters) must equal what the reference evaluator decides. Needs root.
import assert from "node:assert/strict";
import { test } from "node:test";
import { planChanges } from "../../src/agent/plan.ts";
import { FAIL_CLOSED_KEY } from "../../src/drivers/contract.ts";
import { createNftablesDriver } from "../../src/drivers/nftables/index.ts";
import type { NftablesDriver } from "../../src/drivers/nftables/driver.ts";
import { parsePortFile } from "../../src/model/port-file.ts";
import { evaluate } from "../../src/policy/evaluate.ts";
import * as f from "../../src/policy/frame-builder.ts";
import type { Guard } from "../../src/policy/guards.ts";
import { portPolicies, type PlacedPolicy, type PortPolicy } from "../../src/policy/port-policy.ts";
import { needsRoot, NftLab } from "../drivers/nftables/lab.ts";
import { placeAsNamed } from "../../src/agent/device-match.ts";

const ALICE = "52:54:00:00:00:01";
const EVE = "52:54:00:00:00:02";
const BOB = "52:54:00:00:00:03";
const VIP = "52:54:00:aa:00:01";
const BCAST = "ff:ff:ff:ff:ff:ff";
const EVE_LL = "fe80::5054:ff:fe00:2";

function policies(eveLevel: "full" | "mac"): PlacedPolicy[] {
  const file = {
    networks: [{ id: "lan", tenant: "provider", shared: false, protection: "full" }],
    ports: [
      { id: "alice-0", network: "lan", device: "vnet0", mac: ALICE, ips: ["10.0.0.1", "2001:db8::1"], allowed: [{ ip: "10.0.0.96/28" }, { ip: "2001:db8:0:ff::/64" }, { ip: "10.0.0.200", mac: VIP }] },
      { id: "eve-0", network: "lan", device: "vnet1", mac: EVE, ips: ["10.0.0.2", "2001:db8::2"], protection: eveLevel },
      { id: "bob-0", network: "lan", device: "vnet2", mac: BOB, ips: ["10.0.0.3", "2001:db8::3"] },
    ],
  };
  return placeAsNamed(portPolicies(parsePortFile(JSON.stringify(file), "lab.json")));
}

const e4 = (src: string, dst: string, payload: Uint8Array): Uint8Array => f.ether(dst, src, 0x0800, payload);
const e6 = (src: string, dst: string, payload: Uint8Array): Uint8Array => f.ether(dst, src, 0x86dd, payload);
const earp = (src: string, dst: string, payload: Uint8Array): Uint8Array => f.ether(dst, src, 0x0806, payload);
const sn = (address: string): { ip: string; mac: string } => f.solicitedNode(address);

/** Frames Eve sends: each attack with legitimate twins; expectations come from evaluate(). */
function eveFrames(): [string, Uint8Array][] {
  const ping = f.icmp4Echo("10.0.0.2", "10.0.0.3");
  const bobSn = sn("2001:db8::3");
  const frames: [string, Uint8Array][] = [
    ["ping to Bob", e4(EVE, BOB, ping)],
    ["DNS query", e4(EVE, BOB, f.udp4("10.0.0.2", "10.0.0.3", 40000, 53, new Uint8Array(12)))],
    ["DHCP discover from 0.0.0.0", e4(EVE, BCAST, f.udp4("0.0.0.0", "255.255.255.255", 68, 67, f.dhcp(1, 1, EVE)))],
    ["ARP probe from 0.0.0.0", earp(EVE, BCAST, f.arp({ op: 1, sha: EVE, spa: "0.0.0.0", tpa: "10.0.0.2" }))],
    ["gratuitous ARP for her own IP", earp(EVE, BCAST, f.arp({ op: 2, sha: EVE, spa: "10.0.0.2", tha: BCAST, tpa: "10.0.0.2" }))],
    ["QEMU announce-self", f.ether(BCAST, EVE, 0x8035, f.arp({ op: 3, sha: EVE, spa: "0.0.0.0", tha: EVE, tpa: "0.0.0.0" }))],
    ["IPv6 echo", e6(EVE, BOB, f.icmp6Echo("2001:db8::2", "2001:db8::3"))],
    ["IPv6 echo from her link-local", e6(EVE, BOB, f.icmp6Echo(EVE_LL, "fe80::5054:ff:fe00:3"))],
    ["DAD from ::", e6(EVE, sn("2001:db8::2").mac, f.neighborSolicitation({ src: "::", dst: sn("2001:db8::2").ip, target: "2001:db8::2", options: [f.nonce()] }))],
    ["MLDv2 report from ::", e6(EVE, "33:33:00:00:00:16", f.mldv2Report("::"))],
    ["NS with her SLL", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::2", dst: bobSn.ip, target: "2001:db8::3", options: [f.sll(EVE)] }))],
    ["NS with nonce then her SLL", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::2", dst: bobSn.ip, target: "2001:db8::3", options: [f.nonce(), f.sll(EVE)] }))],
    ["NA for her address with her TLL", e6(EVE, BOB, f.neighborAdvertisement({ src: "2001:db8::2", dst: "2001:db8::3", target: "2001:db8::2", options: [f.tll(EVE)] }))],
    ["RS with her SLL", e6(EVE, "33:33:00:00:00:02", f.routerSolicitation({ src: EVE_LL, dst: "ff02::2", options: [f.sll(EVE)] }))],
    ["DHCPv6 solicit", e6(EVE, "33:33:00:01:00:02", f.udp6(EVE_LL, "ff02::1:2", 546, 547, new Uint8Array(8)))],
    ["first fragment of a UDP datagram", e6(EVE, BOB, f.udp6("2001:db8::2", "2001:db8::3", 40000, 53, new Uint8Array(16), [{ kind: "fragment", offset: 0, more: true }]))],
    ["non-first fragment", e6(EVE, BOB, f.ipv6({ src: "2001:db8::2", dst: "2001:db8::3", next: 17, payload: new Uint8Array(16), extensions: [{ kind: "fragment", offset: 64, more: false }] }))],
    // attacks
    ["Alice's MAC", e4(ALICE, BOB, f.icmp4Echo("10.0.0.1", "10.0.0.3"))],
    ["802.1Q-tagged ping", f.tag(e4(EVE, BOB, f.icmp4Echo("10.0.0.2", "10.0.0.3", new Uint8Array(9))), 5)],
    ["802.1ad QinQ ping", f.tag(f.tag(e4(EVE, BOB, f.icmp4Echo("10.0.0.2", "10.0.0.3", new Uint8Array(10))), 6), 7, 0x88a8)],
    ["0x9100-tagged ping", f.tag(e4(EVE, BOB, f.icmp4Echo("10.0.0.2", "10.0.0.3", new Uint8Array(11))), 8, 0x9100)],
    ["LLC/SNAP", f.llcSnap(BOB, EVE, 0x0800, ping)],
    ["IPX", f.ether(BOB, EVE, 0x8137, new Uint8Array(30))],
    ["RARP reply", f.ether(BCAST, EVE, 0x8035, f.arp({ op: 4, sha: EVE, spa: "0.0.0.0", tha: EVE, tpa: "10.0.0.2" }))],
    ["gratuitous ARP for Alice's IP", earp(EVE, BCAST, f.arp({ op: 2, sha: EVE, spa: "10.0.0.1", tha: BCAST, tpa: "10.0.0.1" }))],
    ["ARP with Alice's sender MAC", earp(EVE, BCAST, f.arp({ op: 2, sha: ALICE, spa: "10.0.0.2", tha: BCAST, tpa: "10.0.0.2" }))],
    ["ARP that is not Ethernet/IPv4", earp(EVE, BCAST, f.arp({ op: 1, sha: EVE, spa: "10.0.0.2", tpa: "10.0.0.3", htype: 6 }))],
    ["IPv4 from Alice's IP", e4(EVE, BOB, f.icmp4Echo("10.0.0.1", "10.0.0.3"))],
    ["DHCP offer", e4(EVE, BCAST, f.udp4("10.0.0.2", "255.255.255.255", 67, 68, f.dhcp(2, 2, BOB, "10.0.0.3")))],
    ["UDP 68→67 from 0.0.0.0 to Bob", e4(EVE, BOB, f.udp4("0.0.0.0", "10.0.0.3", 68, 67, f.dhcp(1, 1, EVE)))],
    ["truncated IPv4", e4(EVE, BOB, f.icmp4Echo("10.0.0.2", "10.0.0.3", new Uint8Array(40)).subarray(0, 30))],
    ["IPv6 from Alice's address", e6(EVE, BOB, f.icmp6Echo("2001:db8::1", "2001:db8::3"))],
    ["echo from ::", e6(EVE, BOB, f.icmp6Echo("::", "2001:db8::3"))],
    ["router advertisement", e6(EVE, "33:33:00:00:00:01", f.routerAdvertisement({ src: EVE_LL, dst: "ff02::1", options: [f.sll(EVE)] }))],
    ["RA behind a destination-options header", e6(EVE, "33:33:00:00:00:01", f.routerAdvertisement({ src: EVE_LL, dst: "ff02::1", options: [f.sll(EVE)], extensions: [{ kind: "destination" }] }))],
    ["RA behind hop-by-hop and routing headers", e6(EVE, "33:33:00:00:00:01", f.routerAdvertisement({ src: EVE_LL, dst: "ff02::1", extensions: [{ kind: "hop-by-hop" }, { kind: "routing" }] }))],
    ["redirect", e6(EVE, BOB, f.redirect({ src: EVE_LL, dst: "fe80::5054:ff:fe00:3", target: "fe80::1", destination: "2001:db8::9" }))],
    ["NA for Alice's address", e6(EVE, BOB, f.neighborAdvertisement({ src: "2001:db8::2", dst: "2001:db8::3", target: "2001:db8::1", options: [f.tll(EVE)] }))],
    ["NA with Alice's TLL", e6(EVE, BOB, f.neighborAdvertisement({ src: "2001:db8::2", dst: "2001:db8::3", target: "2001:db8::2", options: [f.tll(ALICE)] }))],
    ["NS with Alice's SLL", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::2", dst: bobSn.ip, target: "2001:db8::3", options: [f.sll(ALICE)] }))],
    ["NS with her SLL, then Alice's", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::2", dst: bobSn.ip, target: "2001:db8::3", options: [f.sll(EVE), f.sll(ALICE)] }))],
    ["NS with a 16-byte option, then Alice's SLL", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::2", dst: bobSn.ip, target: "2001:db8::3", options: [f.ndOption(200, new Uint8Array(14)), f.sll(ALICE)] }))],
    ["NS behind destination options with Alice's SLL", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::2", dst: bobSn.ip, target: "2001:db8::3", options: [f.sll(ALICE)], extensions: [{ kind: "destination" }] }))],
    ["NS with an option of length 0", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::2", dst: bobSn.ip, target: "2001:db8::3", options: [Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0])] }))],
    ["RS with Alice's SLL", e6(EVE, "33:33:00:00:00:02", f.routerSolicitation({ src: EVE_LL, dst: "ff02::2", options: [f.sll(ALICE)] }))],
    ["DAD for Alice's address", e6(EVE, sn("2001:db8::1").mac, f.neighborSolicitation({ src: "::", dst: sn("2001:db8::1").ip, target: "2001:db8::1" }))],
    ["DHCPv6 advertise", e6(EVE, BOB, f.udp6(EVE_LL, "fe80::5054:ff:fe00:3", 547, 546, new Uint8Array(8)))],
    ["first fragment without the UDP header", e6(EVE, BOB, f.ipv6({ src: "2001:db8::2", dst: "2001:db8::3", next: 17, payload: new Uint8Array(0), extensions: [{ kind: "fragment", offset: 0, more: true }, { kind: "destination" }] }))],
    ["unicast for a MAC nobody has (flooded)", e4(EVE, "52:54:00:99:99:99", f.icmp4Echo("10.0.0.2", "10.0.0.99"))],
    // At the edges of the one-lookup fast path in from_vm_hook: each must get the full path's verdict.
    ["(fast path) UDP from port 67 to Bob", e4(EVE, BOB, f.udp4("10.0.0.2", "10.0.0.3", 67, 40000, new Uint8Array(8)))],
    ["(fast path) IPv4 protocol 6 from port 67", e4(EVE, BOB, f.ipv4({ src: "10.0.0.2", dst: "10.0.0.3", protocol: 6, payload: Uint8Array.from([0, 67, 0, 80, ...new Array(16).fill(0)]) }))],
    ["(fast path) later IPv4 fragment reading 67 where a port would be", e4(EVE, BOB, f.ipv4({ src: "10.0.0.2", dst: "10.0.0.3", protocol: 17, payload: Uint8Array.from([0, 67, 0, 68, 0, 16, 0, 0]), fragmentOffset: 8 }))],
    ["(fast path) IPv4 GRE", e4(EVE, BOB, f.ipv4({ src: "10.0.0.2", dst: "10.0.0.3", protocol: 47, payload: new Uint8Array(12) }))],
    ["(fast path) IPv6 UDP from port 547 to Bob", e6(EVE, BOB, f.udp6("2001:db8::2", "2001:db8::3", 547, 40000, new Uint8Array(8)))],
    ["(fast path) IPv6 UDP with 2 header bytes", e6(EVE, BOB, f.ipv6({ src: "2001:db8::2", dst: "2001:db8::3", next: 17, payload: Uint8Array.from([0x9c, 0x40]) }))],
    ["(fast path) IPv6 protocol 6 from port 547", e6(EVE, BOB, f.ipv6({ src: "2001:db8::2", dst: "2001:db8::3", next: 6, payload: Uint8Array.from([2, 35, 0, 80, ...new Array(16).fill(0)]) }))],
    ["(fast path) IPv6 UDP behind a destination-options header", e6(EVE, BOB, f.udp6("2001:db8::2", "2001:db8::3", 40000, 53, new Uint8Array(8), [{ kind: "destination" }]))],
    ["(fast path) IPv6 UDP from port 547 behind hop-by-hop", e6(EVE, BOB, f.udp6("2001:db8::2", "2001:db8::3", 547, 546, new Uint8Array(8), [{ kind: "hop-by-hop" }]))],
    // The ARP and NS/NA fast paths (one sender-MAC compare, one or two bindings, one option).
    ["(fast path) ARP reply to Bob", earp(EVE, BOB, f.arp({ op: 2, sha: EVE, spa: "10.0.0.2", tha: BOB, tpa: "10.0.0.3" }))],
    ["(fast path) ARP reply with a 27-byte body", earp(EVE, BOB, f.arp({ op: 2, sha: EVE, spa: "10.0.0.2", tha: BOB, tpa: "10.0.0.3" }).subarray(0, 27))],
    ["(fast path) ARP reply with hlen 8", earp(EVE, BOB, Uint8Array.from(f.arp({ op: 2, sha: EVE, spa: "10.0.0.2", tha: BOB, tpa: "10.0.0.3" }), (b, i) => (i === 4 ? 8 : b)))],
    ["(fast path) NA for her address with her TLL, then Alice's", e6(EVE, BOB, f.neighborAdvertisement({ src: "2001:db8::2", dst: "2001:db8::3", target: "2001:db8::2", options: [f.tll(EVE), f.tll(ALICE)] }))],
    ["(fast path) NA for her address with her TLL behind destination options", e6(EVE, BOB, f.neighborAdvertisement({ src: "2001:db8::2", dst: "2001:db8::3", target: "2001:db8::2", options: [f.tll(EVE)], extensions: [{ kind: "destination" }] }))],
    ["(fast path) NA for her address with her SLL", e6(EVE, BOB, f.neighborAdvertisement({ src: "2001:db8::2", dst: "2001:db8::3", target: "2001:db8::2", options: [f.sll(EVE)] }))],
    ["(fast path) NA for Alice's address from Alice's IP with her TLL", e6(EVE, BOB, f.neighborAdvertisement({ src: "2001:db8::1", dst: "2001:db8::3", target: "2001:db8::1", options: [f.tll(EVE)] }))],
    ["(fast path) NS from Alice's address with her SLL", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::1", dst: bobSn.ip, target: "2001:db8::3", options: [f.sll(EVE)] }))],
  ];
  return frames;
}

/** Frames Eve sends at level mac. */
function eveMacFrames(): [string, Uint8Array][] {
  const bobSn = sn("2001:db8::3");
  return [
    ["(mac) tagged ping", f.tag(e4(EVE, BOB, f.icmp4Echo("10.0.0.2", "10.0.0.3", new Uint8Array(21))), 5)],
    ["(mac) QinQ with Alice's IP inside", f.tag(e4(EVE, BOB, f.icmp4Echo("10.0.0.1", "10.0.0.3", new Uint8Array(22))), 9, 0x88a8)],
    ["(mac) IPv4 from Alice's IP", e4(EVE, BOB, f.icmp4Echo("10.0.0.1", "10.0.0.3", new Uint8Array(23)))],
    ["(mac) Alice's MAC", e4(ALICE, BOB, f.icmp4Echo("10.0.0.2", "10.0.0.3", new Uint8Array(24)))],
    ["(mac) ARP for Alice's IP with her own sender MAC", earp(EVE, BCAST, f.arp({ op: 2, sha: EVE, spa: "10.0.0.1", tha: BCAST, tpa: "10.0.0.1" }))],
    ["(mac) ARP with Alice's sender MAC", earp(EVE, BCAST, f.arp({ op: 1, sha: ALICE, spa: "10.0.0.2", tpa: "10.0.0.3" }))],
    ["(mac) router advertisement", e6(EVE, "33:33:00:00:00:01", f.routerAdvertisement({ src: EVE_LL, dst: "ff02::1" }))],
    ["(mac) NS with Alice's SLL second", e6(EVE, bobSn.mac, f.neighborSolicitation({ src: "2001:db8::1", dst: bobSn.ip, target: "2001:db8::3", options: [f.nonce(), f.sll(ALICE)] }))],
    ["(mac) NA for Alice's address with her TLL", e6(EVE, BOB, f.neighborAdvertisement({ src: "2001:db8::2", dst: "2001:db8::3", target: "2001:db8::1", options: [f.tll(EVE)] }))],
  ];
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** A captured frame is the sent one, or the sent one without its outer tag (the capture may lose hwaccel tags). */
function arrived(sent: Uint8Array, seen: ReadonlySet<string>): boolean {
  if (seen.has(hex(sent))) return true;
  const type = (sent[12]! << 8) | sent[13]!;
  return [0x8100, 0x88a8].includes(type) && seen.has(hex(Buffer.concat([sent.subarray(0, 12), sent.subarray(16)])));
}

type Counts = Map<string, number>;
const countKey = (port: string, reason: Guard): string => `${port} ${reason}`;

async function dropCounts(driver: NftablesDriver): Promise<Counts> {
  return new Map((await driver.counters()).map((c) => [countKey(c.port, c.reason), c.packets]));
}

let controls = 0;
/** Alice's ARP request (broadcast: it drops at no port), a new one each time: it must arrive at Bob after the frames under test. */
const control = (): { from: string; frame: Uint8Array } => ({ from: "alice", frame: earp(ALICE, BCAST, f.arp({ op: 1, sha: ALICE, spa: "10.0.0.1", tpa: `10.0.1.${++controls % 250}` })) });

/** Sends `frames` from `from`, captures at Bob, and checks each frame and the drop counters against evaluate(). */
async function checkAgainstReference(lab: NftLab, driver: NftablesDriver, from: string, sender: PortPolicy, bob: PortPolicy, frames: readonly [string, Uint8Array][]): Promise<string[]> {
  assert.equal(new Set(frames.map(([, b]) => hex(b))).size, frames.length, "frames must be distinct");
  const before = await dropCounts(driver);
  const capture = lab.capture("bob", control());
  await capture.ready;
  await lab.send(from, frames.map(([, b]) => b));
  const seen = new Set(await capture.stop());
  const after = await dropCounts(driver);
  const wrong: string[] = [];
  const expected: Counts = new Map();
  for (const [name, bytes] of frames) {
    const out = evaluate(sender, bytes, "from-vm");
    const into = evaluate(bob, bytes, "to-vm");
    const want = out.verdict === "allow" && into.verdict === "allow";
    const got = arrived(bytes, seen);
    if (want !== got) wrong.push(`${name}: reference ${want ? "delivers" : `drops (${out.verdict === "drop" ? out.reason : into.reason})`}, nftables ${got ? "delivered" : "dropped"}`);
    if (out.verdict === "drop") expected.set(countKey(sender.port, out.reason), (expected.get(countKey(sender.port, out.reason)) ?? 0) + 1);
    else if (into.verdict === "drop") expected.set(countKey(bob.port, into.reason), (expected.get(countKey(bob.port, into.reason)) ?? 0) + 1);
  }
  for (const key of new Set([...expected.keys(), ...after.keys()])) {
    if (!key.startsWith(`${sender.port} `) && !key.startsWith(`${bob.port} not-for`)) continue;
    const delta = (after.get(key) ?? 0) - (before.get(key) ?? 0);
    if (delta !== (expected.get(key) ?? 0)) wrong.push(`counter ${key}: +${delta}, reference ${expected.get(key) ?? 0}`);
  }
  return wrong;
}

/** The listing without one device's elements and without drop counters: what a one-port change must leave alone. */
function withoutDevice(json: string, device: string): unknown {
  const doc = JSON.parse(json) as { nftables: Record<string, Record<string, unknown>>[] };
  return doc.nftables
    .filter((item) => !(item.set && /^(cnt|log)_/.test(String(item.set.name)))) // drop counters and sampling limits change with traffic
    .map((item) => {
      const set = item.set ?? item.map;
      if (!set || !Array.isArray(set.elem)) return item;
      const { elem: all, ...rest } = set;
      const elem = (all as unknown[]).filter((e) => !JSON.stringify(e).includes(`"${device}"`));
      return { [item.set ? "set" : "map"]: elem.length ? { ...rest, elem } : rest };
    });
}

test("nftables dataplane: frames from a VM meet the reference evaluator, one-port changes, fail closed, removeAll", { timeout: 300_000 }, async (t) => {
  if (!needsRoot(t)) return;
  const lab = await NftLab.start(t);
  await lab.addGuest("alice", "vnet0", ALICE);
  await lab.addGuest("eve", "vnet1", EVE);
  await lab.addGuest("bob", "vnet2", BOB);
  const driver = createNftablesDriver({ netns: lab.hostNetns, prefix: lab.prefix });
  // close(): its long-lived nft and ip processes hold the namespace.
  t.after(() => driver.removeAll().catch(() => undefined).finally(() => driver.close()));
  await driver.probe();

  const full = policies("full");
  const [, eveFull, bobFull] = full as [PlacedPolicy, PlacedPolicy, PlacedPolicy];
  const desired = driver.compile(full, []);

  await t.test("apply() installs all ports in one transaction and observe() gives back the same digests", async () => {
    const report = await driver.apply({ add: [...desired.values()], remove: [] });
    t.diagnostic(`3 ports from scratch (with the skeleton): ${report.durationMs.toFixed(1)} ms, nft ${driver.lastTransactionMs.toFixed(1)} ms`);
    assert.deepEqual(planChanges(desired, (await driver.observe()).units), { add: [], remove: [] });
    const again = await driver.apply({ add: [...desired.values()], remove: [] }); // idempotent
    assert.deepEqual(again.added, ["vnet0", "vnet1", "vnet2"]);
    assert.deepEqual(planChanges(desired, (await driver.observe()).units), { add: [], remove: [] });
  });

  await t.test("level full: every frame from Eve is delivered or dropped, with the reason, as evaluate() says", async () => {
    const wrong = await checkAgainstReference(lab, driver, "eve", eveFull, bobFull, eveFrames());
    assert.deepEqual(wrong, []);
  });

  await t.test("a one-port change (Eve to level mac) is one transaction that touches only her elements", async () => {
    const before = await lab.nft(["-j", "list", "table", "bridge", lab.prefix]);
    const eveMac = driver.compile(policies("mac"), []).get("vnet1")!;
    const changes = planChanges(new Map([...desired, ["vnet1", eveMac]]), (await driver.observe()).units);
    assert.deepEqual(changes.add.map((u) => u.key), ["vnet1"]);
    const report = await driver.apply(changes);
    t.diagnostic(`one-port change: ${report.durationMs.toFixed(1)} ms (nft ${driver.lastTransactionMs.toFixed(1)} ms)`);
    const after = await lab.nft(["-j", "list", "table", "bridge", lab.prefix]);
    assert.deepEqual(withoutDevice(after, "vnet1"), withoutDevice(before, "vnet1"));
    assert.notEqual(after, before);
    assert.equal((await driver.observe()).units.get("vnet1")?.digest, eveMac.digest);
  });

  await t.test("level mac: only the MAC side is checked, tagged frames pass unread", async () => {
    const eveMac = policies("mac")[1]!;
    const wrong = await checkAgainstReference(lab, driver, "eve", eveMac, bobFull, eveMacFrames());
    assert.deepEqual(wrong, []);
  });

  await t.test("fail closed: an unclaimed vnet* device is cut off, claimed ports are not", async () => {
    await lab.addGuest("mallory", "vnet9", "52:54:00:00:00:09");
    const unit = driver.compileFailClosed(["vnet*", "tap*"]);
    await driver.apply({ add: [unit], remove: [] });
    assert.equal((await driver.observe()).units.get(FAIL_CLOSED_KEY)?.digest, unit.digest);
    const fromMallory = e4("52:54:00:00:00:09", BOB, f.icmp4Echo("10.0.0.9", "10.0.0.3", new Uint8Array(31)));
    const fromEve = e4(EVE, BOB, f.icmp4Echo("10.0.0.2", "10.0.0.3", new Uint8Array(32)));
    const capture = lab.capture("bob", control());
    await capture.ready;
    await lab.send("mallory", [fromMallory]);
    await lab.send("eve", [fromEve]);
    const seen = new Set(await capture.stop());
    assert.deepEqual([seen.has(hex(fromMallory)), seen.has(hex(fromEve))], [false, true]);
    await driver.apply({ add: [], remove: [FAIL_CLOSED_KEY] });
    assert.equal((await driver.observe()).units.has(FAIL_CLOSED_KEY), false);
  });

  await t.test("a flushed table is found (digests change) and repaired by re-applying", async () => {
    await lab.nft(["flush", "table", "bridge", lab.prefix]);
    const wanted = driver.compile(policies("mac"), []);
    const changes = planChanges(wanted, (await driver.observe()).units);
    assert.deepEqual(changes.add.map((u) => u.key).sort(), ["vnet0", "vnet1", "vnet2"]);
    await driver.apply(changes);
    assert.deepEqual(planChanges(wanted, (await driver.observe()).units), { add: [], remove: [] });
  });

  await t.test("removing a port deletes its elements; removeAll() leaves nothing", async () => {
    await driver.apply({ add: [], remove: ["vnet1"] });
    const listing = await lab.nft(["-j", "list", "table", "bridge", lab.prefix]);
    assert.equal(listing.includes('"vnet1"'), false);
    await driver.apply({ add: [], remove: ["vnet1"] }); // idempotent
    await driver.removeAll();
    await driver.removeAll();
    assert.equal((await lab.nft(["list", "ruleset"])).trim(), "");
    assert.equal((await driver.observe()).units.size, 0);
  });
});
