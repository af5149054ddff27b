// How a port meets its device (src/agent/device-match.ts): by name, by a hook's hint, by the tap's MAC; table-driven.
import assert from "node:assert/strict";
import { test } from "node:test";
import { awaitingUnit, compileMatched, matchDevices, placeAsNamed, tapMac, type DeviceHints } from "../../src/agent/device-match.ts";
import type { Device, UnitMap } from "../../src/drivers/contract.ts";
import type { Mac } from "../../src/model/mac.ts";
import type { PlacedPolicy, PortPolicy } from "../../src/policy/port-policy.ts";

const port = (id: string, mac: string, device?: string): PortPolicy => ({
  port: id, tenant: "t", network: "n", ...(device !== undefined && { device }), level: "full", macs: [mac as Mac], bindings: [], guards: [],
});
const A = "52:54:00:12:34:56";
const B = "52:54:00:00:00:02";
const tap = (name: string, mac: string, extra: Partial<Device> = {}): Device => ({ name, mac, ...extra });

test("tapMac: libvirt's tap MAC is the guest's with first octet fe (fa when the guest's is fe)", () => {
  assert.equal(tapMac(A), "fe:54:00:12:34:56");
  assert.equal(tapMac("FE:16:3E:00:00:01"), "fa:16:3e:00:00:01");
});

type Case = { name: string; ports: PortPolicy[]; devices: Device[]; hints?: [string, string][]; want: Record<string, string> };

// want: port → "how device" (or "none", "ambiguous a,b").
const CASES: Case[] = [
  { name: "no device named: the tap with fe:<rest of the MAC>", ports: [port("a", A)], devices: [tap("lo", "00:00:00:00:00:00"), tap("vnet7", "fe:54:00:12:34:56")], want: { a: "mac vnet7" } },
  { name: "no device named, none with its tap MAC: awaiting", ports: [port("a", A)], devices: [tap("vnet0", "fe:54:00:00:00:99")], want: { a: "none" } },
  { name: "the guest's own MAC on a device is not its tap (that is the guest's side)", ports: [port("a", A)], devices: [tap("eth0", A)], want: { a: "none" } },
  { name: "the named device wins when it exists, even if another carries the tap MAC", ports: [port("a", A, "vnet0")], devices: [tap("vnet0", "fe:00:00:00:00:01"), tap("vnet5", "fe:54:00:12:34:56")], want: { a: "named vnet0" } },
  { name: "a stale name (VM restarted under a new vnetN): found by MAC", ports: [port("a", A, "vnet0")], devices: [tap("vnet3", "fe:54:00:12:34:56")], want: { a: "mac vnet3" } },
  { name: "a stale name and no MAC match: the name stands (the driver decides; nftables matches names)", ports: [port("a", A, "vnet0")], devices: [], want: { a: "named-absent vnet0" } },
  { name: "two taps with its MAC: ambiguous, never a silent pick", ports: [port("a", A)], devices: [tap("vnet1", "fe:54:00:12:34:56"), tap("vnet2", "fe:54:00:12:34:56")], want: { a: "ambiguous vnet1,vnet2" } },
  { name: "a hint resolves two taps with one MAC", ports: [port("a", A)], devices: [tap("vnet1", "fe:54:00:12:34:56"), tap("vnet2", "fe:54:00:12:34:56")], hints: [[A, "vnet2"]], want: { a: "hinted vnet2" } },
  { name: "a hint wins over the MAC (tap MACs that do not follow the fe rule)", ports: [port("a", A)], devices: [tap("tap9", "02:00:00:00:00:09"), tap("vnet1", "fe:54:00:12:34:56")], hints: [[A, "tap9"]], want: { a: "hinted tap9" } },
  { name: "a hint naming a device that does not exist is ignored", ports: [port("a", A)], devices: [tap("vnet1", "fe:54:00:12:34:56")], hints: [[A, "vnet9"]], want: { a: "mac vnet1" } },
  { name: "a hint cannot take a device another port names", ports: [port("a", A), port("b", B, "vnet1")], devices: [tap("vnet1", "fe:00:00:00:00:01")], hints: [[A, "vnet1"]], want: { a: "none", b: "named vnet1" } },
  { name: "the named device is the named port's only: a MAC match on it does not count", ports: [port("a", A), port("b", B, "vnet1")], devices: [tap("vnet1", "fe:54:00:12:34:56")], want: { a: "none", b: "named vnet1" } },
  { name: "two ports matching one tap (one MAC on two networks): both ambiguous", ports: [port("a", A), port("b", A)], devices: [tap("vnet1", "fe:54:00:12:34:56")], want: { a: "ambiguous vnet1", b: "ambiguous vnet1" } },
  { name: "OVS: a port may name an interface's iface-id", ports: [port("a", A, "uuid-1")], devices: [tap("tap1", "fe:00:00:00:00:01", { ifaceId: "uuid-1", ofport: 3 })], want: { a: "named uuid-1" } },
  { name: "OVS: external_ids:attached-mac is the guest's MAC", ports: [port("a", A)], devices: [tap("tap1", "02:00:00:00:00:01", { attachedMac: A, ofport: 3 })], want: { a: "mac tap1" } },
  { name: "a Linux bridge of taps takes the lowest tap's MAC: a master is never a guest's device", ports: [port("a", A)], devices: [tap("br0", "fe:54:00:12:34:56", { isMaster: true }), tap("vnet0", "fe:54:00:12:34:56")], want: { a: "mac vnet0" } },
  { name: "several ports, each its own tap", ports: [port("b", B), port("a", A)], devices: [tap("vnet1", "fe:54:00:12:34:56"), tap("vnet0", "fe:54:00:00:00:02")], want: { a: "mac vnet1", b: "mac vnet0" } },
];

test("matchDevices: named, hinted, by MAC, awaiting, ambiguous", async (t) => {
  for (const c of CASES) {
    await t.test(c.name, () => {
      const hints: DeviceHints = new Map(c.hints ?? []);
      const { placed, matches } = matchDevices(c.ports, c.devices, hints);
      const got = Object.fromEntries([...matches.values()].map((m) => [m.port, m.how === "none" ? "none" : m.how === "ambiguous" ? `ambiguous ${m.candidates.join(",")}` : `${m.how} ${m.device}`]));
      assert.deepEqual(got, c.want);
      // Exactly the ports with a device are placed, on that device, in the input's order.
      const expected = c.ports.filter((p) => "device" in matches.get(p.port)!).map((p) => `${p.port}@${(matches.get(p.port) as { device: string }).device}`);
      assert.deepEqual(placed.map((p) => `${p.port}@${p.device}`), expected);
    });
  }
});

test("matchDevices is deterministic: the same placement whatever the order of ports and devices", () => {
  const ports = [port("a", A), port("b", A), port("c", B)];
  const devices = [tap("vnet1", "fe:54:00:12:34:56"), tap("vnet0", "fe:54:00:00:00:02")];
  const one = matchDevices(ports, devices);
  const two = matchDevices([...ports].reverse(), [...devices].reverse());
  assert.deepEqual(new Map([...two.matches].sort()), new Map([...one.matches].sort()));
});

test("compileMatched: the driver compiles placed ports; a port with no device gets an awaiting unit no driver key can collide with", () => {
  const seen: PlacedPolicy[][] = [];
  const compile = (policies: readonly PlacedPolicy[]): UnitMap => (seen.push([...policies]), new Map(policies.map((p) => [p.device, { key: p.device, port: p.port, digest: "d", text: "" }])));
  const { units } = compileMatched(compile, [port("a", A), port("vnet1", B), port("c", "52:54:00:00:00:03")], [tap("vnet1", "fe:54:00:12:34:56"), tap("x", "fe:54:00:00:00:03"), tap("y", "fe:54:00:00:00:03")]);
  assert.deepEqual(seen[0]!.map((p) => `${p.port}@${p.device}`), ["a@vnet1"]);
  assert.deepEqual([...units.keys()].sort(), ["?c", "?vnet1", "vnet1"], "port vnet1 (no device) does not hide port a's unit on device vnet1");
  assert.deepEqual(units.get("?c"), awaitingUnit("c"));
});

test("placeAsNamed refuses a port that names no device", () => {
  assert.throws(() => placeAsNamed([port("a", A)]), /port a names no device/);
  assert.deepEqual(placeAsNamed([port("a", A, "vnet0")]).map((p) => p.device), ["vnet0"]);
});

test("parseLinks: a link other links name as master (a bridge, a bond) is marked, so it is never taken for a tap", async () => {
  const { parseLinks } = await import("../../src/host/links.ts");
  const json = JSON.stringify([
    { ifindex: 2, ifname: "br0", link_type: "ether", address: "FE:54:00:12:34:56" },
    { ifindex: 3, ifname: "vnet0", link_type: "ether", address: "fe:54:00:12:34:56", master: "br0" },
    { ifindex: 1, ifname: "lo", link_type: "loopback", address: "00:00:00:00:00:00" },
  ]);
  assert.deepEqual(parseLinks(json), [
    { name: "br0", ifindex: 2, mac: "fe:54:00:12:34:56", isMaster: true },
    { name: "vnet0", ifindex: 3, mac: "fe:54:00:12:34:56" },
    { name: "lo", ifindex: 1 },
  ]);
});
