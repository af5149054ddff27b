// The OVS driver's flows against the reference evaluator, frame by frame, through
// `ovs-appctl ofproto/trace BRIDGE in_port=N <packet hex>` on a real userspace ovs-vswitchd.
// Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { test } from "node:test";
import { OVS_LIMITATIONS, createOvsDriver } from "../../src/drivers/ovs/index.ts";
import { guardOfPriority } from "../../src/drivers/ovs/compile.ts";
import { sandboxPrefix, startOvsSandbox, type OvsSandbox } from "../../src/drivers/ovs/sandbox.ts";
import { planSync } from "../../src/agent/converge.ts";
import { evaluate, type Direction } from "../../src/policy/evaluate.ts";
import * as f from "../../src/policy/frame-builder.ts";
import type { PortPolicy } from "../../src/policy/port-policy.ts";
import { ACME_MAC, ALICE_MAC, BOB_MAC, EVE_MAC, cloud, needsRoot } from "../drivers/ovs/fixture.ts";

const BCAST = "ff:ff:ff:ff:ff:ff";
const ALL_NODES = "33:33:00:00:00:01";
const alice = "alice-0";
const eve = "eve-0";
const acme = "acme-db-0";

type Case = Readonly<{
  name: string;
  port: string;
  frame: Uint8Array;
  /** A declared limitation under which OVS decides differently from the evaluator (verdict or reason). */
  limitation?: string;
}>;

const e4 = (src: string, dst: string, payload: Uint8Array, dmac = BOB_MAC): Uint8Array => f.ether(dmac, src, 0x0800, payload);
const e6 = (src: string, dst: string, payload: Uint8Array): Uint8Array => f.ether(dst, src, 0x86dd, payload);
const sn = f.solicitedNode;

const CASES: readonly Case[] = [
  // rule 1: source MAC
  { name: "Alice's IPv4 from her MAC and IP passes", port: alice, frame: e4(ALICE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.1", "10.0.0.3")) },
  { name: "Alice's VIP pair passes", port: alice, frame: e4(ALICE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.100", "10.0.0.3")) },
  { name: "Eve with Alice's MAC drops (mac-spoof)", port: eve, frame: e4(ALICE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.1", "10.0.0.3")) },
  { name: "a multicast source MAC drops (mac-spoof)", port: eve, frame: e4("03:00:00:00:00:02", BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3")) },
  // rules 2–3: VLAN and ethertypes
  { name: "802.1Q-tagged frame drops (vlan)", port: eve, frame: f.tag(e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3")), 5) },
  { name: "802.1ad-tagged frame drops (vlan)", port: eve, frame: f.tag(e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3")), 5, 0x88a8) },
  { name: "0x9100-tagged frame drops (vlan)", port: eve, frame: f.tag(e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.2", "10.0.0.3")), 5, 0x9100) },
  { name: "IPX ethertype drops (ethertype)", port: eve, frame: f.ether(BOB_MAC, EVE_MAC, 0x8137, new Uint8Array(40)) },
  { name: "LLC/SNAP carrying IPX drops (ethertype)", port: eve, frame: f.llcSnap(BOB_MAC, EVE_MAC, 0x8137, new Uint8Array(40)) },
  { name: "LLC/SNAP carrying Eve's own IPv4 (declared: OVS sees IPv4)", port: eve, frame: f.llcSnap(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3")), limitation: "ovs-llc-snap" },
  { name: "QEMU announce-self RARP passes", port: alice, frame: f.ether(BCAST, ALICE_MAC, 0x8035, f.arp({ op: 3, sha: ALICE_MAC, spa: "0.0.0.0", tha: ALICE_MAC, tpa: "0.0.0.0" })) },
  { name: "a RARP reply drops (ethertype)", port: eve, frame: f.ether(BCAST, EVE_MAC, 0x8035, f.arp({ op: 4, sha: EVE_MAC, spa: "10.0.0.2", tha: EVE_MAC, tpa: "10.0.0.2" })) },
  // rule 4: ARP
  { name: "Eve's gratuitous ARP for Alice's IP drops (arp-spoof)", port: eve, frame: f.ether(BCAST, EVE_MAC, 0x0806, f.arp({ op: 2, sha: EVE_MAC, spa: "10.0.0.1", tpa: "10.0.0.1" })) },
  { name: "ARP whose sender hardware address is not the source MAC drops (arp-spoof)", port: eve, frame: f.ether(BCAST, EVE_MAC, 0x0806, f.arp({ sha: ALICE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })) },
  { name: "Alice's ARP probe from 0.0.0.0 passes", port: alice, frame: f.ether(BCAST, ALICE_MAC, 0x0806, f.arp({ sha: ALICE_MAC, spa: "0.0.0.0", tpa: "10.0.0.1" })) },
  { name: "Alice's gratuitous ARP for her VIP passes", port: alice, frame: f.ether(BCAST, ALICE_MAC, 0x0806, f.arp({ op: 2, sha: ALICE_MAC, spa: "10.0.0.100", tpa: "10.0.0.100" })) },
  { name: "ARP that is not Ethernet/IPv4 drops (arp-spoof)", port: eve, frame: f.ether(BCAST, EVE_MAC, 0x0806, f.arp({ htype: 6, sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })) },
  { name: "truncated ARP drops (declared: as arp-spoof, not malformed)", port: eve, frame: f.ether(BCAST, EVE_MAC, 0x0806, f.arp({ sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" }).subarray(0, 20)), limitation: "ovs-truncated-reason" },
  // rules 5–6: IPv4 and DHCP
  { name: "Eve sending from Alice's IP drops (ipv4-spoof)", port: eve, frame: e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.1", "10.0.0.3")) },
  { name: "Eve's IP with Alice's VIP drops (ipv4-spoof)", port: eve, frame: e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.100", "10.0.0.3")) },
  { name: "Alice's DHCP discover from 0.0.0.0 passes", port: alice, frame: e4(ALICE_MAC, BCAST, f.udp4("0.0.0.0", "255.255.255.255", 68, 67, f.dhcp(1, 1, ALICE_MAC)), BCAST) },
  { name: "UDP 68→67 from 0.0.0.0 to a unicast address drops (ipv4-spoof)", port: eve, frame: e4(EVE_MAC, BOB_MAC, f.udp4("0.0.0.0", "10.0.0.3", 68, 67, f.dhcp(1, 1, EVE_MAC))) },
  { name: "Eve's DHCP offer drops (dhcp-server-guard)", port: eve, frame: e4(EVE_MAC, BCAST, f.udp4("10.0.0.2", "255.255.255.255", 67, 68, f.dhcp(2, 2, BOB_MAC, "10.0.0.3")), BCAST) },
  { name: "Alice's DNS query passes", port: alice, frame: e4(ALICE_MAC, BOB_MAC, f.udp4("10.0.0.1", "10.0.0.3", 5353, 53, new Uint8Array(12))) },
  // rules 7–12: IPv6
  { name: "Alice's IPv6 passes", port: alice, frame: e6(ALICE_MAC, BOB_MAC, f.icmp6Echo("2001:db8::1", "2001:db8::3")) },
  { name: "Alice's SLAAC link-local passes", port: alice, frame: e6(ALICE_MAC, BOB_MAC, f.icmp6Echo("fe80::5054:ff:fe00:1", "fe80::5054:ff:fe00:3")) },
  { name: "Eve from Alice's IPv6 drops (ipv6-spoof)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.icmp6Echo("2001:db8::1", "2001:db8::3")) },
  { name: "Eve from Alice's link-local drops (ipv6-spoof)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.icmp6Echo("fe80::5054:ff:fe00:1", "fe80::5054:ff:fe00:3")) },
  { name: "echo from :: drops (ipv6-spoof)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.icmp6Echo("::", "2001:db8::3")) },
  { name: "Alice's DAD from :: passes", port: alice, frame: e6(ALICE_MAC, sn("2001:db8::1").mac, f.neighborSolicitation({ src: "::", dst: sn("2001:db8::1").ip, target: "2001:db8::1", options: [f.nonce()] })) },
  { name: "Eve's DAD for Alice's address drops (nd-spoof)", port: eve, frame: e6(EVE_MAC, sn("2001:db8::1").mac, f.neighborSolicitation({ src: "::", dst: sn("2001:db8::1").ip, target: "2001:db8::1" })) },
  { name: "NS from :: to a unicast address drops (ipv6-spoof)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.neighborSolicitation({ src: "::", dst: "2001:db8::3", target: "2001:db8::2" })) },
  { name: "MLDv2 report from :: passes", port: alice, frame: e6(ALICE_MAC, "33:33:00:00:00:16", f.mldv2Report("::")) },
  { name: "Eve's router advertisement drops (ra-guard)", port: eve, frame: e6(EVE_MAC, ALL_NODES, f.routerAdvertisement({ src: "fe80::5054:ff:fe00:2", dst: "ff02::1" })) },
  { name: "an RA behind a destination-options header drops (ra-guard)", port: eve, frame: e6(EVE_MAC, ALL_NODES, f.routerAdvertisement({ src: "fe80::5054:ff:fe00:2", dst: "ff02::1", extensions: [{ kind: "destination" }] })) },
  { name: "an RA in an atomic fragment drops (ra-guard)", port: eve, frame: e6(EVE_MAC, ALL_NODES, f.routerAdvertisement({ src: "fe80::5054:ff:fe00:2", dst: "ff02::1", extensions: [{ kind: "fragment", offset: 0, more: false }] })) },
  // OVS's default fragment handling reads every fragment's ICMP type and ports as 0; the driver sets nx-match.
  { name: "an RA in a first fragment drops (ra-guard)", port: eve, frame: e6(EVE_MAC, ALL_NODES, f.routerAdvertisement({ src: "fe80::5054:ff:fe00:2", dst: "ff02::1", extensions: [{ kind: "fragment", offset: 0, more: true }] })) },
  { name: "a DHCPv6 advertise in a first fragment drops (dhcpv6-server-guard)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.udp6("fe80::5054:ff:fe00:2", "fe80::5054:ff:fe00:3", 547, 546, new Uint8Array(8), [{ kind: "fragment", offset: 0, more: true }])) },
  { name: "a DHCP offer in a first IPv4 fragment drops (dhcp-server-guard)", port: eve, frame: e4(EVE_MAC, BCAST, f.ipv4({ src: "10.0.0.2", dst: "255.255.255.255", protocol: 17, payload: f.udp4("10.0.0.2", "255.255.255.255", 67, 68, f.dhcp(2, 2, BOB_MAC, "10.0.0.3")).subarray(20, 20 + 64), moreFragments: true }), BCAST) },
  { name: "Eve's redirect drops (redirect-guard)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.redirect({ src: "fe80::5054:ff:fe00:2", dst: "fe80::5054:ff:fe00:3", target: "fe80::1", destination: "2001:db8::9" })) },
  { name: "Alice's router solicitation passes", port: alice, frame: e6(ALICE_MAC, "33:33:00:00:00:02", f.routerSolicitation({ src: "fe80::5054:ff:fe00:1", dst: "ff02::2", options: [f.sll(ALICE_MAC)] })) },
  { name: "an RS whose SLL names Alice (declared: RS options unread)", port: eve, frame: e6(EVE_MAC, "33:33:00:00:00:02", f.routerSolicitation({ src: "fe80::5054:ff:fe00:2", dst: "ff02::2", options: [f.sll(ALICE_MAC)] })), limitation: "ovs-nd-options" },
  { name: "Eve's NA for Alice's address drops (nd-spoof)", port: eve, frame: e6(EVE_MAC, ALL_NODES, f.neighborAdvertisement({ src: "2001:db8::2", dst: "ff02::1", target: "2001:db8::1", options: [f.tll(EVE_MAC)] })) },
  { name: "Alice's unsolicited NA for her VIP passes", port: alice, frame: e6(ALICE_MAC, ALL_NODES, f.neighborAdvertisement({ src: "2001:db8::1", dst: "ff02::1", target: "2001:db8::100", options: [f.tll(ALICE_MAC)] })) },
  { name: "an NA without TLL for her own address passes", port: alice, frame: e6(ALICE_MAC, BOB_MAC, f.neighborAdvertisement({ src: "2001:db8::1", dst: "2001:db8::3", target: "2001:db8::1", flags: 0x60 })) },
  { name: "an NA whose TLL names Alice drops (nd-spoof)", port: eve, frame: e6(EVE_MAC, ALL_NODES, f.neighborAdvertisement({ src: "2001:db8::2", dst: "ff02::1", target: "2001:db8::2", options: [f.tll(ALICE_MAC)] })) },
  { name: "an NA with own TLL then Alice's TLL drops (nd-spoof)", port: eve, frame: e6(EVE_MAC, ALL_NODES, f.neighborAdvertisement({ src: "2001:db8::2", dst: "ff02::1", target: "2001:db8::2", options: [f.tll(EVE_MAC), f.tll(ALICE_MAC)] })) },
  { name: "Eve's NS with her own SLL passes", port: eve, frame: e6(EVE_MAC, sn("2001:db8::3").mac, f.neighborSolicitation({ src: "2001:db8::2", dst: sn("2001:db8::3").ip, target: "2001:db8::3", options: [f.sll(EVE_MAC)] })) },
  { name: "an NS whose SLL names Alice drops (nd-spoof)", port: eve, frame: e6(EVE_MAC, sn("2001:db8::3").mac, f.neighborSolicitation({ src: "2001:db8::2", dst: sn("2001:db8::3").ip, target: "2001:db8::3", options: [f.sll(ALICE_MAC)] })) },
  { name: "an NS with own SLL then Alice's SLL drops (nd-spoof)", port: eve, frame: e6(EVE_MAC, sn("2001:db8::3").mac, f.neighborSolicitation({ src: "2001:db8::2", dst: sn("2001:db8::3").ip, target: "2001:db8::3", options: [f.sll(EVE_MAC), f.sll(ALICE_MAC)] })) },
  { name: "an NS with own SLL then Alice's TLL (declared: an NS's TLL is unread)", port: eve, frame: e6(EVE_MAC, sn("2001:db8::3").mac, f.neighborSolicitation({ src: "2001:db8::2", dst: sn("2001:db8::3").ip, target: "2001:db8::3", options: [f.sll(EVE_MAC), f.tll(ALICE_MAC)] })), limitation: "ovs-nd-options" },
  { name: "Eve's DHCPv6 advertise drops (dhcpv6-server-guard)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.udp6("fe80::5054:ff:fe00:2", "fe80::5054:ff:fe00:3", 547, 546, new Uint8Array(8))) },
  { name: "Alice's DHCPv6 solicit passes", port: alice, frame: e6(ALICE_MAC, "33:33:00:01:00:02", f.udp6("fe80::5054:ff:fe00:1", "ff02::1:2", 546, 547, new Uint8Array(8))) },
  { name: "a first fragment without the upper-layer header drops (ipv6-fragment)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.ipv6({ src: "2001:db8::2", dst: "2001:db8::3", next: 60, payload: Uint8Array.from([17, 1, 0, 0, 0, 0, 0, 0]), extensions: [{ kind: "fragment", offset: 0, more: true }] })) },
  { name: "a fragmented UDP datagram's first fragment passes", port: alice, frame: e6(ALICE_MAC, BOB_MAC, f.udp6("2001:db8::1", "2001:db8::3", 5000, 53, new Uint8Array(16), [{ kind: "fragment", offset: 0, more: true }])) },
  { name: "a non-first fragment from a bound address passes", port: alice, frame: e6(ALICE_MAC, BOB_MAC, f.ipv6({ src: "2001:db8::1", dst: "2001:db8::3", next: 17, payload: new Uint8Array(16), extensions: [{ kind: "fragment", offset: 64, more: false }] })) },
  { name: "a non-first fragment from Alice's address drops (ipv6-spoof)", port: eve, frame: e6(EVE_MAC, BOB_MAC, f.ipv6({ src: "2001:db8::1", dst: "2001:db8::3", next: 17, payload: new Uint8Array(16), extensions: [{ kind: "fragment", offset: 64, more: false }] })) },
  // level mac
  { name: "mac: acme uses any IPv4 address", port: acme, frame: e4(ACME_MAC, BOB_MAC, f.icmp4Echo("192.168.50.99", "192.168.50.1")) },
  { name: "mac: a foreign source MAC drops (mac-spoof)", port: acme, frame: e4(BOB_MAC, ALICE_MAC, f.icmp4Echo("192.168.50.10", "192.168.50.1")) },
  { name: "mac: ARP with a foreign sender hardware address drops (arp-spoof)", port: acme, frame: f.ether(BCAST, ACME_MAC, 0x0806, f.arp({ sha: BOB_MAC, spa: "192.168.50.10", tpa: "192.168.50.1" })) },
  { name: "mac: ARP for any IP from its own MAC passes", port: acme, frame: f.ether(BCAST, ACME_MAC, 0x0806, f.arp({ sha: ACME_MAC, spa: "192.168.50.77", tpa: "192.168.50.1" })) },
  { name: "mac: an NS with a foreign SLL drops (nd-spoof)", port: acme, frame: e6(ACME_MAC, sn("fd00::1").mac, f.neighborSolicitation({ src: "fd00::5", dst: sn("fd00::1").ip, target: "fd00::1", options: [f.sll(BOB_MAC)] })) },
  { name: "mac: an RA passes (not checked at level mac)", port: acme, frame: e6(ACME_MAC, ALL_NODES, f.routerAdvertisement({ src: "fe80::1", dst: "ff02::1" })) },
  { name: "mac: a tagged frame passes", port: acme, frame: f.tag(e4(ACME_MAC, BOB_MAC, f.icmp4Echo("192.168.50.10", "192.168.50.1")), 7) },
  { name: "mac: non-Ethernet ARP from its own MAC (declared: dropped)", port: acme, frame: f.ether(BCAST, ACME_MAC, 0x0806, f.arp({ htype: 6, sha: ACME_MAC, spa: "192.168.50.10", tpa: "192.168.50.1" })), limitation: "ovs-arp-not-ethernet" },
];

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

type Traced = Readonly<{ verdict: "allow" | "drop"; reason: string; text: string }>;

async function trace(sandbox: OvsSandbox, bridge: string, ofport: number, frame: Uint8Array, magic: number): Promise<Traced> {
  const { stdout } = await sandbox.appctl("ofproto/trace", bridge, `in_port=${ofport}`, hex(frame));
  // Each flow the frame met prints "priority P, cookie C"; the last of vifguard's (its magic byte) decides.
  const flows = [...stdout.matchAll(/priority (\d+), cookie (0x[0-9a-f]+)/g)].map((m) => ({ priority: Number(m[1]), cookie: BigInt(m[2]!) })).filter((f) => Number(f.cookie >> 56n) === magic);
  const last = flows.at(-1);
  const reason = last === undefined ? undefined : guardOfPriority(last.priority);
  const actions = /Datapath actions: (.*)/.exec(stdout)?.[1] ?? "";
  if (reason) {
    assert.equal(actions, "drop", `a vifguard drop flow matched, so the datapath drops:\n${stdout}`);
    return { verdict: "drop", reason, text: stdout };
  }
  return { verdict: actions === "drop" ? "drop" : "allow", reason: actions === "drop" ? "(dropped outside vifguard)" : "allowed", text: stdout };
}

const isDeclared = (id: string): boolean => OVS_LIMITATIONS.some((l) => l.id === id);

test("ofproto/trace of the compiled flows agrees with evaluate()", async (t) => {
  if (!needsRoot(t)) return;
  const prefix = sandboxPrefix("vgot");
  const sandbox = await startOvsSandbox({ prefix });
  t.after(() => sandbox.stop());
  const bridge = `${prefix}-br`;
  await sandbox.addBridge(bridge);
  const policies = cloud(prefix);
  const ofports = new Map<string, number>();
  for (const [i, p] of policies.entries()) {
    await sandbox.vsctl("add-port", bridge, p.device, "--", "set", "interface", p.device, "type=internal", `ofport_request=${i + 1}`);
    ofports.set(p.port, i + 1);
  }
  await sandbox.vsctl("add-port", bridge, `${prefix}-u`, "--", "set", "interface", `${prefix}-u`, "type=internal", "ofport_request=9");
  const driver = createOvsDriver({ bridge, runDir: sandbox.runDir, tableBase: 0 });
  await driver.probe();
  await driver.apply((await planSync(driver, policies)).changes);
  const magic = driver.layout.magic;
  const byPort = new Map<string, PortPolicy>(policies.map((p) => [p.port, p]));

  for (const row of CASES) {
    await t.test(row.name, async () => {
      const policy = byPort.get(row.port)!;
      const want = evaluate(policy, row.frame, "from-vm" satisfies Direction);
      const got = await trace(sandbox, bridge, ofports.get(row.port)!, row.frame, magic);
      const wantReason = want.verdict === "drop" ? want.reason : "allowed";
      if (row.limitation) {
        assert.ok(isDeclared(row.limitation), `limitation ${row.limitation} is declared in capabilities`);
        assert.notDeepEqual([got.verdict, got.reason], [want.verdict, wantReason], `OVS now agrees with evaluate(): drop the limitation from this row?\n${got.text}`);
        return;
      }
      assert.deepEqual([got.verdict, got.reason], [want.verdict, wantReason], `${want.detail}\n${got.text}`);
    });
  }

  await t.test("to-vm: unicast for Alice from Bob is output to Alice only (pinned, never flooded to Eve)", async () => {
    const frame = e4(BOB_MAC, ALICE_MAC, f.icmp4Echo("10.0.0.3", "10.0.0.1"), ALICE_MAC);
    const got = await trace(sandbox, bridge, ofports.get("bob-0")!, frame, magic);
    assert.match(got.text, new RegExp(`output:${ofports.get(alice)}\\b`));
    assert.doesNotMatch(got.text, /flooding/);
    assert.equal(evaluate(byPort.get(eve)!, frame, "to-vm").verdict, "drop");
  });

  await t.test("to-vm: broadcast from Bob reaches everyone (NORMAL floods it)", async () => {
    const frame = f.ether(BCAST, BOB_MAC, 0x0806, f.arp({ sha: BOB_MAC, spa: "10.0.0.3", tpa: "10.0.0.1" }));
    const got = await trace(sandbox, bridge, ofports.get("bob-0")!, frame, magic);
    assert.match(got.text, /flooding/);
    assert.equal(evaluate(byPort.get(eve)!, frame, "to-vm").verdict, "allow");
  });

  await t.test("to-vm (declared ovs-normal-flood): unicast for an unlearned outside MAC is flooded by NORMAL", async () => {
    const frame = e4(BOB_MAC, "52:54:00:99:99:99", f.icmp4Echo("10.0.0.3", "10.0.0.99"), "52:54:00:99:99:99");
    const got = await trace(sandbox, bridge, ofports.get("bob-0")!, frame, magic);
    assert.match(got.text, /flooding/);
    assert.ok(isDeclared("ovs-normal-flood"));
  });

  await t.test("a re-applied plan is empty, and observe() names every port with compile()'s digest", async () => {
    const { desired: wanted, observed, changes } = await planSync(driver, policies);
    assert.deepEqual(changes, { add: [], remove: [] });
    assert.deepEqual([...observed.units.keys()].sort(), [...wanted.keys()].sort());
  });

  await t.test("counters() counts the drops of each port per reason", async () => {
    const before = await driver.counters();
    const spoof = e4(EVE_MAC, BOB_MAC, f.icmp4Echo("10.0.0.1", "10.0.0.3"));
    // ofproto/trace does not touch flow stats; inject the frame with packet-out through the pipeline.
    await sandbox.ofctl("-O", "OpenFlow15", "packet-out", bridge, `in_port=${ofports.get(eve)} packet=${hex(spoof)} actions=resubmit(,0)`);
    const after = await driver.counters();
    const count = (list: typeof before): number => list.find((c) => c.port === eve && c.reason === "ipv4-spoof")?.packets ?? 0;
    assert.equal(count(after) - count(before), 1);
  });
});

test("pass=table: the to-vm table drops unicast not for the port the operator's pipeline outputs to", async (t) => {
  if (!needsRoot(t)) return;
  const prefix = sandboxPrefix("vgot");
  const sandbox = await startOvsSandbox({ prefix });
  t.after(() => sandbox.stop());
  const bridge = `${prefix}-br`;
  await sandbox.addBridge(bridge);
  const policies = cloud(prefix);
  for (const [i, p] of policies.entries()) await sandbox.vsctl("add-port", bridge, p.device, "--", "set", "interface", p.device, "type=internal", `ofport_request=${i + 1}`);
  const driver = createOvsDriver({ bridge, runDir: sandbox.runDir, tableBase: 20, pass: { table: 30 }, portRegister: 7 });
  await driver.probe();
  await driver.apply((await planSync(driver, policies)).changes);
  // The operator's pipeline: table 0 enters vifguard; table 30 "forwards" everything to Eve (port 2)
  // through vifguard's to-vm table 24.
  await sandbox.ofctl("-O", "OpenFlow15", "add-flow", bridge, "table=0,priority=0,actions=goto_table:20");
  await sandbox.ofctl("-O", "OpenFlow15", "add-flow", bridge, "table=30,priority=0,actions=load:2->NXM_NX_REG7[],resubmit(,24)");
  const magic = driver.layout.magic;
  const forBob = e4(BOB_MAC, BOB_MAC, f.icmp4Echo("10.0.0.3", "10.0.0.4"));
  const fromAlice = (dst: string): Uint8Array => e4(ALICE_MAC, dst, f.icmp4Echo("10.0.0.1", "10.0.0.2"), dst);
  const unicastForBob = await trace(sandbox, bridge, 1, fromAlice(BOB_MAC), magic);
  assert.deepEqual([unicastForBob.verdict, unicastForBob.reason], ["drop", "not-for-this-port"]);
  const forEve = await trace(sandbox, bridge, 1, fromAlice(EVE_MAC), magic);
  assert.match(forEve.text, /Datapath actions: \S+/);
  assert.equal(forEve.verdict, "allow");
  const broadcast = await trace(sandbox, bridge, 1, fromAlice(BCAST), magic);
  assert.equal(broadcast.verdict, "allow");
  assert.ok(forBob.length > 0);
});
