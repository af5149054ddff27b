// Real packets through the OVS driver: guests in their own network namespaces behind veth pairs on a
// userspace (netdev) bridge; the one lab (src/conformance/lab/) sends the frame builder's bytes and
// captures on the other side.
// Also measures: replacing a port's flows under load, and restarting ovs-vswitchd under a spoof stream.
// Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { planSync } from "../../src/agent/converge.ts";
import { createOvsDriver, type OvsDriver } from "../../src/drivers/ovs/index.ts";
import { baseFlows, cookieOf, PRIORITY_SCALE } from "../../src/drivers/ovs/compile.ts";
import { sandboxPrefix, startOvsSandbox, type OvsSandbox } from "../../src/drivers/ovs/sandbox.ts";
import { Lab as TheLab, type ControlSender } from "../../src/conformance/lab/lab.ts";
import { hex } from "../../src/conformance/lab/wire.ts";
import * as f from "../../src/policy/frame-builder.ts";
import type { PortPolicy } from "../../src/policy/port-policy.ts";
import type { Mac } from "../../src/model/mac.ts";
import { ALICE_MAC, BOB_MAC, EVE_MAC, cloud, needsRoot } from "../drivers/ovs/fixture.ts";
import { parsePortFile } from "../../src/model/port-file.ts";
import { portPolicies, type PlacedPolicy } from "../../src/policy/port-policy.ts";
import { placeAsNamed } from "../../src/agent/device-match.ts";

type Lab = Readonly<{ lab: TheLab; sandbox: OvsSandbox; bridge: string; driver: OvsDriver; policies: PortPolicy[]; guest: (port: string) => ControlSender }>;

const GUESTS: Record<string, { mac: string; ipv4: string }> = { "alice-0": { mac: ALICE_MAC, ipv4: "10.0.0.1" }, "eve-0": { mac: EVE_MAC, ipv4: "10.0.0.2" }, "bob-0": { mac: BOB_MAC, ipv4: "10.0.0.3" } };

async function startLab(prefix: string, t: { after: (fn: () => Promise<void>) => void }): Promise<Lab> {
  const lab = new TheLab("", prefix);
  const sandbox = await startOvsSandbox({ prefix });
  lab.onCleanup(() => sandbox.stop());
  t.after(() => lab.cleanup());
  const bridge = `${prefix}-br`;
  await sandbox.addBridge(bridge);
  const policies = cloud(prefix).filter((p) => p.network === "public");
  for (const p of policies) {
    // No addresses: the guests' kernels stay quiet; Eve listens promiscuously, as all do.
    await lab.guest({ netns: lab.ns(p.device), mac: GUESTS[p.port]!.mac, device: p.device, hostNetns: sandbox.netns, noIpv6: true, promisc: true });
    await sandbox.vsctl("add-port", bridge, p.device);
  }
  const driver = createOvsDriver({ bridge, runDir: sandbox.runDir, tableBase: 0 });
  await driver.probe();
  await driver.apply((await planSync(driver, policies)).changes);
  const guest = (port: string): ControlSender => ({ netns: lab.ns(policies.find((p) => p.port === port)!.device), ...GUESTS[port]! });
  return { lab, sandbox, bridge, driver, policies, guest };
}

let markerSeq = 0;
function marker(): Uint8Array {
  markerSeq++;
  return Uint8Array.from([0x76, 0x67, 0x6f, 0x76, (markerSeq >> 8) & 0xff, markerSeq & 0xff, 0x6d, 0x6b]);
}



/** A private OVS with one bridge, stopped when the test ends. */
async function sandboxWithBridge(stem: string, t: { after: (fn: () => Promise<void>) => void }): Promise<{ prefix: string; sandbox: OvsSandbox; bridge: string }> {
  const prefix = sandboxPrefix(stem);
  const sandbox = await startOvsSandbox({ prefix });
  t.after(() => sandbox.stop());
  const bridge = `${prefix}-br`;
  await sandbox.addBridge(bridge);
  return { prefix, sandbox, bridge };
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test("OVS dataplane: spoofed frames from Eve never reach Bob; legitimate ones do", async (t) => {
  if (!needsRoot(t)) return;
  const lab = await startLab(sandboxPrefix("vgod"), t);
  const rows: { name: string; from: string; frame: (m: Uint8Array) => Uint8Array; arrives: boolean }[] = [
    { name: "Alice's IPv4 to Bob", from: "alice-0", arrives: true, frame: (m) => f.withTrailer(f.ether(BOB_MAC, ALICE_MAC, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), m) },
    { name: "Eve from Alice's IP", from: "eve-0", arrives: false, frame: (m) => f.withTrailer(f.ether(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), m) },
    { name: "Eve with Alice's MAC", from: "eve-0", arrives: false, frame: (m) => f.withTrailer(f.ether(BOB_MAC, ALICE_MAC, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), m) },
    { name: "Eve's gratuitous ARP for Alice's IP", from: "eve-0", arrives: false, frame: (m) => f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE_MAC, 0x0806, f.arp({ op: 2, sha: EVE_MAC, spa: "10.0.0.1", tpa: "10.0.0.1" })), m) },
    { name: "Eve's own ARP request", from: "eve-0", arrives: true, frame: (m) => f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE_MAC, 0x0806, f.arp({ sha: EVE_MAC, spa: "10.0.0.2", tpa: "10.0.0.3" })), m) },
    { name: "Eve's router advertisement", from: "eve-0", arrives: false, frame: (m) => f.withTrailer(f.ether("33:33:00:00:00:01", EVE_MAC, 0x86dd, f.routerAdvertisement({ src: "fe80::5054:ff:fe00:2", dst: "ff02::1" })), m) },
    { name: "Eve's DHCP offer", from: "eve-0", arrives: false, frame: (m) => f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE_MAC, 0x0800, f.udp4("10.0.0.2", "255.255.255.255", 67, 68, f.dhcp(2, 2, BOB_MAC, "10.0.0.3"))), m) },
    { name: "Eve's VLAN-tagged frame", from: "eve-0", arrives: false, frame: (m) => f.withTrailer(f.tag(f.ether(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3")), 5), m) },
  ];
  const markers = rows.map(() => marker());
  const sniffing = lab.lab.watch(lab.guest("bob-0").netns, markers, 60);
  await sniffing.ready;
  for (const [i, row] of rows.entries()) await lab.lab.repeat(lab.guest(row.from).netns, [row.frame(markers[i]!)], 3);
  sniffing.stop(lab.guest("alice-0"));
  const counts = await sniffing.counts;
  for (const [i, row] of rows.entries()) {
    await t.test(`${row.name} ${row.arrives ? "arrives" : "is dropped"}`, () => {
      const n = counts[hex(markers[i]!)] ?? 0;
      assert.equal(n > 0, row.arrives, `${n} of 3 seen at Bob`);
    });
  }
  const counters = await lab.driver.counters();
  await t.test("counters() saw Eve's drops per reason", () => {
    const reasons = new Set(counters.filter((c) => c.port === "eve-0" && c.packets > 0).map((c) => c.reason));
    for (const r of ["ipv4-spoof", "mac-spoof", "arp-spoof", "ra-guard", "dhcp-server-guard", "vlan"] as const) assert.ok(reasons.has(r), `${r} in ${[...reasons].join(", ")}`);
  });
});

test("OVS dataplane: Eve in promiscuous mode never sees unicast between Alice and Bob", async (t) => {
  if (!needsRoot(t)) return;
  const lab = await startLab(sandboxPrefix("vgod"), t);
  const m = marker();
  const sniffing = lab.lab.watch(lab.guest("eve-0").netns, [m], 60);
  await sniffing.ready;
  // Nobody has been learned yet: without vifguard's to-vm pinning NORMAL would flood these to Eve.
  await lab.lab.repeat(lab.guest("alice-0").netns, [f.withTrailer(f.ether(BOB_MAC, ALICE_MAC, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), m)], 3);
  await lab.lab.repeat(lab.guest("bob-0").netns, [f.withTrailer(f.ether(ALICE_MAC, BOB_MAC, 0x0800, f.icmp4Echo("10.0.0.3", "10.0.0.1")), m)], 3);
  sniffing.stop(lab.guest("alice-0")); // a broadcast: it must reach Eve
  const counts = await sniffing.counts;
  assert.equal(counts[hex(m)], 0);
});

test("OVS dataplane: replacing ports' flows under load loses none of the legitimate packets", async (t) => {
  if (!needsRoot(t)) return;
  const lab = await startLab(sandboxPrefix("vgod"), t);
  const fromBob = marker();
  const fromAlice = marker();
  const COUNT = 3000;
  const atAlice = lab.lab.watch(lab.guest("alice-0").netns, [fromBob], 120);
  const atBob = lab.lab.watch(lab.guest("bob-0").netns, [fromAlice], 120);
  await Promise.all([atAlice.ready, atBob.ready]);
  const bobStream = lab.lab.repeat(lab.guest("bob-0").netns, [f.withTrailer(f.ether(ALICE_MAC, BOB_MAC, 0x0800, f.icmp4Echo("10.0.0.3", "10.0.0.1")), fromBob)], COUNT, 2);
  const aliceStream = lab.lab.repeat(lab.guest("alice-0").netns, [f.withTrailer(f.ether(BOB_MAC, ALICE_MAC, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), fromAlice)], COUNT, 2);
  // While both stream (~6 s), replace Eve's unit and Alice's own unit 40 times, alternating an extra address.
  const timings: number[] = [];
  for (let i = 0; i < 40; i++) {
    const extra = i % 2 === 0 ? ["10.0.0.50"] : [];
    const changed = lab.policies.map((p) => (p.port === "bob-0" ? p : { ...p, bindings: [...p.bindings, ...extra.map((ip) => ({ mac: p.macs[0]!, prefix: { family: 4 as const, bytes: Uint8Array.from(ip.split(".").map(Number)), length: 32, text: ip } }))] }));
    const plan = (await planSync(lab.driver, changed)).changes;
    const report = await lab.driver.apply(plan);
    timings.push(report.durationMs);
    await settle(100);
  }
  const [sentBob, sentAlice] = await Promise.all([bobStream, aliceStream]);
  atAlice.stop(lab.guest("bob-0"));
  atBob.stop(lab.guest("alice-0"));
  const [gotAlice, gotBob] = await Promise.all([atAlice.counts, atBob.counts]);
  const median = [...timings].sort((a, b) => a - b)[Math.floor(timings.length / 2)]!;
  t.diagnostic(`replaced alice-0+eve-0 40x (median ${median.toFixed(1)} ms per bundle); Bob→Alice ${gotAlice[hex(fromBob)]}/${sentBob}, Alice→Bob ${gotBob[hex(fromAlice)]}/${sentAlice}`);
  assert.equal(gotAlice[hex(fromBob)], sentBob, "Bob's stream (a port not replaced) loses nothing");
  assert.equal(gotBob[hex(fromAlice)], sentAlice, "Alice's stream from an address kept across her own replacement loses nothing");
});

test("OVS dataplane: ovs-vswitchd restart under a spoof stream (flows lost; re-apply restores)", async (t) => {
  if (!needsRoot(t)) return;
  const lab = await startLab(sandboxPrefix("vgod"), t);
  const spoof = marker();
  const atBob = lab.lab.watch(lab.guest("bob-0").netns, [spoof], 120);
  await atBob.ready;
  const stream = lab.lab.repeat(lab.guest("eve-0").netns, [f.withTrailer(f.ether(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), spoof)], 4000, 2);
  await settle(1500);
  const t0 = performance.now();
  await lab.sandbox.restartSwitch();
  const up = performance.now();
  const { observed, changes: plan } = await planSync(lab.driver, lab.policies);
  const installed = observed.units;
  await lab.driver.apply(plan);
  const reapplied = performance.now();
  const sent = await stream;
  atBob.stop(lab.guest("alice-0"));
  const leaked = (await atBob.counts)[hex(spoof)] ?? 0;
  t.diagnostic(`restart: vswitchd back after ${(up - t0).toFixed(0)} ms; observe() found ${installed.size} units (flows are not persisted); re-apply of ${plan.add.length} ports took ${(reapplied - up).toFixed(0)} ms; ${leaked} of ${sent} spoofed frames reached Bob (fail_mode standalone: NORMAL until re-apply)`);
  assert.equal(installed.size, 0, "ovs-vswitchd forgets OpenFlow flows on restart");
  assert.equal(plan.add.length, lab.policies.length, "the plan re-adds every port");
  assert.deepEqual((await planSync(lab.driver, lab.policies)).changes, { add: [], remove: [] });
  // The driver had sent the base flows before the restart; observe() found them gone, so the re-apply sent them again.
  const base = (await lab.sandbox.ofctl("-O", "OpenFlow15", "dump-flows", lab.bridge, `cookie=${cookieOf(lab.driver.layout, "000000000000")}/-1`)).stdout.split("\n").filter((l) => l.includes("cookie="));
  assert.equal(base.length, baseFlows(lab.driver.layout).length, base.join("\n"));
});

test("OVS dataplane: with fail_mode=secure a restart leaks no spoofed frame", async (t) => {
  if (!needsRoot(t)) return;
  const lab = await startLab(sandboxPrefix("vgod"), t);
  await lab.sandbox.vsctl("set-fail-mode", lab.bridge, "secure");
  const spoof = marker();
  const atBob = lab.lab.watch(lab.guest("bob-0").netns, [spoof], 120);
  await atBob.ready;
  const stream = lab.lab.repeat(lab.guest("eve-0").netns, [f.withTrailer(f.ether(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), spoof)], 4000, 2);
  await settle(1500);
  await lab.sandbox.restartSwitch();
  await lab.driver.apply((await planSync(lab.driver, lab.policies)).changes);
  const sent = await stream;
  atBob.stop(lab.guest("alice-0"));
  const leaked = (await atBob.counts)[hex(spoof)] ?? 0;
  t.diagnostic(`fail_mode=secure restart: ${leaked} of ${sent} spoofed frames reached Bob`);
  assert.equal(leaked, 0);
});

test("OVS: watchChanges() sees a port re-created with another ofport, and the next plan re-installs it", async (t) => {
  if (!needsRoot(t)) return;
  const { prefix, sandbox, bridge } = await sandboxWithBridge("vgod", t);
  const policies = cloud(prefix).filter((p) => p.port === "eve-0");
  const device = policies[0]!.device;
  await sandbox.vsctl("add-port", bridge, device, "--", "set", "interface", device, "type=internal", "ofport_request=5");
  const driver = createOvsDriver({ bridge, runDir: sandbox.runDir });
  await driver.probe();
  await driver.apply((await planSync(driver, policies)).changes);
  let changes = 0;
  let moved!: () => void;
  const changed = new Promise<void>((resolve) => (moved = resolve));
  const watch = await driver.watchChanges(() => {
    changes++;
    void driver.observe().then((o) => o.devices.find((d) => d.name === device)?.ofport === 17 && moved());
  });
  t.after(() => watch.close());
  await sandbox.vsctl("del-port", bridge, device);
  await sandbox.vsctl("add-port", bridge, device, "--", "set", "interface", device, "type=internal", "ofport_request=17");
  await changed;
  const plan = (await planSync(driver, policies)).changes;
  assert.deepEqual(plan.add.map((u) => u.key), ["eve-0"]);
  assert.match(plan.add[0]!.text, /in_port=17,/);
  await driver.apply(plan);
  assert.deepEqual((await planSync(driver, policies)).changes, { add: [], remove: [] });
  assert.ok(changes >= 1);
});

test("OVS: an older vifguard's flows (a cookie per kind) are replaced without a trace", async (t) => {
  if (!needsRoot(t)) return;
  const { prefix, sandbox, bridge } = await sandboxWithBridge("vgol", t);
  const policies = cloud(prefix).filter((p) => p.network === "public");
  for (const [i, p] of policies.entries()) await sandbox.vsctl("add-port", bridge, p.device, "--", "set", "interface", p.device, "type=internal", `ofport_request=${i + 1}`);
  const driver = createOvsDriver({ bridge, runDir: sandbox.runDir });
  await driver.probe();
  const { observed } = await planSync(driver, policies);
  const units = driver.compile(policies, observed.devices);
  // What the older layout wrote: the same flows, each of rank P at priority P, its kind in the cookie's low byte.
  const older = (line: string): string => {
    const priority = Number(/priority=(\d+)/.exec(line)![1]);
    const kind = priority % PRIORITY_SCALE;
    return line.replace(/priority=\d+/, `priority=${Math.floor(priority / PRIORITY_SCALE)}`).replace(/cookie=0x([0-9a-f]{14})00/, (_, unit: string) => `cookie=0x${unit}${kind.toString(16).padStart(2, "0")}`);
  };
  const lines = [...baseFlows(driver.layout), ...[...units.values()].flatMap((u) => u.text.split("\n").filter(Boolean))].map(older);
  const file = join(sandbox.runDir, "older.flows");
  writeFileSync(file, lines.join("\n") + "\n");
  await sandbox.ofctl("-O", "OpenFlow15", "add-flows", bridge, file);
  const dump = async (): Promise<string[]> => (await sandbox.ofctl("-O", "OpenFlow15", "--no-names", "dump-flows", bridge)).stdout.split("\n").filter((l) => l.includes("cookie="));
  const olderKinds = (await dump()).filter((l) => !/cookie=0x[0-9a-f]{14}00,/.test(l)).length;
  assert.ok(olderKinds > 20, `the older layout put kinds in cookies (${olderKinds} flows)`);
  const plan = await planSync(driver, policies);
  assert.equal(plan.observed.units.size, policies.length, "observe() reads the older units' notes");
  assert.equal(plan.changes.add.length, policies.length, "their flows differ, so every unit is replaced");
  await driver.apply(plan.changes);
  const after = await dump();
  const wanted = baseFlows(driver.layout).length + [...units.values()].reduce((n, u) => n + u.text.split("\n").filter(Boolean).length, 0);
  assert.equal(after.length, wanted, `only the new layout's flows are left:\n${after.filter((l) => !/cookie=0x[0-9a-f]{14}00,/.test(l)).join("\n")}`);
  assert.deepEqual((await planSync(driver, policies)).changes, { add: [], remove: [] });
  // One-port changes leave the base flows out once sent; base flows deleted by hand come back with
  // the next change, once observe() has seen them missing.
  const baseCookie = `cookie=${cookieOf(driver.layout, "000000000000")}/-1`;
  const baseCount = async (): Promise<number> => (await sandbox.ofctl("-O", "OpenFlow15", "dump-flows", bridge, baseCookie)).stdout.split("\n").filter((l) => l.includes("cookie=")).length;
  await sandbox.ofctl("-O", "OpenFlow15", "del-flows", bridge, baseCookie);
  const eve = policies.find((p) => p.port === "eve-0")!;
  const changed = { ...eve, macs: [...eve.macs, "52:54:00:99:00:01" as Mac] };
  await driver.apply({ add: [driver.compile([changed], observed.devices).get("eve-0")!], remove: [] });
  assert.equal(await baseCount(), 0, "without an observe() in between, the driver cannot know they are gone");
  await planSync(driver, policies);
  await driver.apply({ add: [driver.compile([eve], observed.devices).get("eve-0")!], remove: [] });
  assert.equal(await baseCount(), baseFlows(driver.layout).length);
  driver.close();
});

test("OVS: a port changed by its difference holds exactly the flows a whole install of it gives", async (t) => {
  if (!needsRoot(t)) return;
  const prefix = sandboxPrefix("vgoi");
  const sandbox = await startOvsSandbox({ prefix });
  t.after(() => sandbox.stop());
  // Two bridges: on the first one driver changes eve-0 step by step; on the second, a driver that
  // knows nothing installs each step whole. Their interfaces get the same OpenFlow port numbers.
  const [stepwise, whole] = [`${prefix}-br`, `${prefix}-bw`];
  const yaml = (eve: string): string => `
networks:
  - { id: lab, tenant: lab, shared: false, protection: full }
ports:
  - { id: alice-0, network: lab, device: ${prefix}-a, mac: "${ALICE_MAC}", ips: [10.0.0.1, "2001:db8::1"] }
  - { id: eve-0, network: lab, device: ${prefix}-e, mac: "${EVE_MAC}", ${eve} }
`;
  const eves = [
    `ips: [10.0.0.2, "2001:db8::2"]`,
    `ips: [10.0.0.2, "2001:db8::2"], allowed: [{ ip: 10.0.0.200/32 }, { ip: 10.9.0.0/24, mac: "52:54:00:00:09:09" }]`,
    `ips: [10.0.0.2, "2001:db8::2", "2001:db8::22"], allowed: [{ ip: 10.9.0.0/24, mac: "52:54:00:00:09:09" }]`,
    `ips: [10.0.0.2], protection: mac`,
    `ips: [10.0.0.2], protection: off`,
    `ips: [10.0.0.3, "2001:db8::3"]`,
  ];
  const policiesOf = (eve: string): PlacedPolicy[] => placeAsNamed(portPolicies(parsePortFile(yaml(eve), "incremental.yaml")));
  for (const bridge of [stepwise, whole]) {
    await sandbox.addBridge(bridge);
    for (const [i, p] of policiesOf(eves[0]!).entries()) {
      const name = bridge === stepwise ? p.device : `${p.device}w`;
      await sandbox.vsctl("add-port", bridge, name, "--", "set", "interface", name, "type=internal", `ofport_request=${i + 1}`);
    }
  }
  // A flow as the switch holds it, without what changes by itself (age, counters).
  const dump = async (bridge: string): Promise<string[]> =>
    (await sandbox.ofctl("-O", "OpenFlow15", "--no-names", "--no-stats", "dump-flows", bridge)).stdout
      .split("\n")
      .filter((l) => l.includes("cookie="))
      .map((l) => l.trim())
      .sort();
  const driver = createOvsDriver({ bridge: stepwise, runDir: sandbox.runDir });
  t.after(() => driver.close());
  await driver.probe();
  await driver.apply((await planSync(driver, policiesOf(eves[0]!))).changes);
  for (const eve of eves.slice(1)) {
    const { observed, changes } = await planSync(driver, policiesOf(eve));
    assert.deepEqual(changes.add.map((u) => u.key), ["eve-0"], eve);
    await driver.apply(changes);
    const fresh = createOvsDriver({ bridge: whole, runDir: sandbox.runDir });
    await fresh.removeAll();
    await fresh.apply({ add: [...fresh.compile(policiesOf(eve), observed.devices).values()], remove: [] });
    fresh.close();
    assert.deepEqual(await dump(stepwise), await dump(whole), `eve-0 changed to { ${eve} }`);
  }
  assert.deepEqual((await planSync(driver, policiesOf(eves.at(-1)!))).changes, { add: [], remove: [] });
});
