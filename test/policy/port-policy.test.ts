// portPolicy(): the effective level, MACs, bindings (with EUI-64 link-locals) and guards of a port.
import assert from "node:assert/strict";
import { test } from "node:test";
import { eui64LinkLocal } from "../../src/model/ip.ts";
import { parseMac, type Mac } from "../../src/model/mac.ts";
import { validatePortFile } from "../../src/model/port-file.ts";
import { GUARDS, guardsForLevel } from "../../src/policy/guards.ts";
import { effectiveLevel, portPolicies, portPolicy, type PortPolicy } from "../../src/policy/port-policy.ts";

type PortDoc = Record<string, unknown>;

function policies(ports: PortDoc[], o: { antiSpoofing?: boolean; networkLevel?: string; shared?: boolean } = {}): PortPolicy[] {
  const file = validatePortFile(
    {
      config: { antiSpoofing: o.antiSpoofing ?? true },
      networks: [{ id: "lan", tenant: "acme", shared: o.shared ?? false, protection: o.networkLevel ?? "full" }],
      ports: ports.map((p, i) => ({ id: `p${i}`, network: "lan", device: `vnet${i}`, ...p })),
    },
    "ports.json",
  );
  return portPolicies(file);
}
const one = (port: PortDoc, o?: Parameters<typeof policies>[1]): PortPolicy => policies([port], o)[0]!;
const bindingTexts = (p: PortPolicy): string[] => p.bindings.map((b) => `${b.mac} ${b.prefix.text}`);

test("eui64LinkLocal() derives fe80::5054:ff:fe12:3456 from 52:54:00:12:34:56 (RFC 4291 App. A)", () => {
  assert.equal(eui64LinkLocal(parseMac("52:54:00:12:34:56")!).text, "fe80::5054:ff:fe12:3456");
  assert.equal(eui64LinkLocal(parseMac("00:16:3e:00:00:01")!).text, "fe80::216:3eff:fe00:1", "the U/L bit is flipped on, too");
  assert.equal(eui64LinkLocal(parseMac("fe:ff:ff:ff:ff:ff")!).text, "fe80::fcff:ffff:feff:ffff");
});

test("portPolicy() inherits the network's level when the port sets none", () => {
  assert.equal(one({ mac: "52:54:00:00:00:01" }, { networkLevel: "mac" }).level, "mac");
  assert.equal(one({ mac: "52:54:00:00:00:01" }, { networkLevel: "off" }).level, "off");
  assert.equal(one({ mac: "52:54:00:00:00:01" }, { networkLevel: "full" }).level, "full");
});

test("portPolicy() takes the port's own level over the network's", () => {
  assert.equal(one({ mac: "52:54:00:00:00:01", protection: "off" }, { networkLevel: "full" }).level, "off");
  assert.equal(one({ mac: "52:54:00:00:00:01", protection: "full" }, { networkLevel: "mac" }).level, "full");
  assert.equal(one({ mac: "52:54:00:00:00:01", protection: "mac" }, { networkLevel: "off" }).level, "mac");
});

test("portPolicy() is off at every level when the global switch is off", () => {
  for (const level of ["full", "mac", "off"]) {
    const p = one({ mac: "52:54:00:00:00:01", protection: level }, { antiSpoofing: false });
    assert.deepEqual([p.level, p.guards], ["off", []], level);
  }
  const shared = one({ mac: "52:54:00:00:00:01" }, { antiSpoofing: false, shared: true, networkLevel: "full" });
  assert.equal(shared.level, "off", "even on a shared network");
  const port = { id: "p", tenant: "t", network: "n", device: "d", mac: "52:54:00:00:00:01" as Mac, ips: [], allowed: [], protection: "full" as const };
  assert.equal(effectiveLevel(port, { id: "n", tenant: "t", shared: true, protection: "full" }, { antiSpoofing: false }), "off");
});

test("portPolicy() binds fixed IPs and the EUI-64 link-local to the port's MAC", () => {
  const p = one({ mac: "52:54:00:12:34:56", ips: ["10.0.0.5", "2001:db8::5"] });
  assert.deepEqual(p.macs, ["52:54:00:12:34:56"]);
  assert.deepEqual(bindingTexts(p), ["52:54:00:12:34:56 10.0.0.5", "52:54:00:12:34:56 2001:db8::5", "52:54:00:12:34:56 fe80::5054:ff:fe12:3456"]);
});

test("portPolicy() binds each allowed pair to its MAC, with a link-local per allowed MAC", () => {
  const p = one({
    mac: "52:54:00:00:00:01",
    ips: ["10.0.0.1"],
    allowed: [{ ip: "10.0.0.96/28" }, { ip: "10.0.0.200", mac: "52:54:00:aa:00:01" }, { ip: "2001:db8::200", mac: "52:54:00:aa:00:01" }],
  });
  assert.deepEqual(p.macs, ["52:54:00:00:00:01", "52:54:00:aa:00:01"]);
  assert.deepEqual(bindingTexts(p), [
    "52:54:00:00:00:01 10.0.0.1",
    "52:54:00:00:00:01 10.0.0.96/28",
    "52:54:00:aa:00:01 10.0.0.200",
    "52:54:00:aa:00:01 2001:db8::200",
    "52:54:00:00:00:01 fe80::5054:ff:fe00:1",
    "52:54:00:aa:00:01 fe80::5054:ff:feaa:1",
  ]);
});

test("portPolicy() lists the port's MAC first, then the other allowed MACs sorted and once each", () => {
  const p = one({
    mac: "52:54:00:00:00:99",
    allowed: [
      { ip: "10.0.0.3", mac: "52:54:00:00:00:03" },
      { ip: "10.0.0.1", mac: "52:54:00:00:00:01" },
      { ip: "10.0.0.4", mac: "52:54:00:00:00:03" },
      { ip: "10.0.0.9", mac: "52:54:00:00:00:99" },
    ],
  });
  assert.deepEqual(p.macs, ["52:54:00:00:00:99", "52:54:00:00:00:01", "52:54:00:00:00:03"]);
});

test("portPolicy() sorts bindings by family, address, length, then MAC, and drops duplicates", () => {
  const p = one({
    mac: "52:54:00:00:00:02",
    ips: ["2001:db8::1", "10.0.0.9", "10.0.0.1"],
    allowed: [
      { ip: "10.0.0.1" }, // the same binding as the fixed IP: kept once
      { ip: "10.0.0.1", mac: "52:54:00:00:00:01" }, // the same address with another MAC: a binding of its own
      { ip: "10.0.0.0/24" },
      { ip: "10.0.0.0/24" },
    ],
  });
  assert.deepEqual(bindingTexts(p), [
    "52:54:00:00:00:02 10.0.0.0/24",
    "52:54:00:00:00:01 10.0.0.1",
    "52:54:00:00:00:02 10.0.0.1",
    "52:54:00:00:00:02 10.0.0.9",
    "52:54:00:00:00:02 2001:db8::1",
    "52:54:00:00:00:01 fe80::5054:ff:fe00:1",
    "52:54:00:00:00:02 fe80::5054:ff:fe00:2",
  ]);
});

test("portPolicy() does not repeat a link-local that is also listed as an allowed pair", () => {
  const p = one({ mac: "52:54:00:12:34:56", allowed: [{ ip: "fe80::5054:ff:fe12:3456" }] });
  assert.deepEqual(bindingTexts(p), ["52:54:00:12:34:56 fe80::5054:ff:fe12:3456"]);
});

test("portPolicy() carries the guards of its level", () => {
  assert.deepEqual(one({ mac: "52:54:00:00:00:01" }, { networkLevel: "full" }).guards, GUARDS);
  assert.deepEqual([...one({ mac: "52:54:00:00:00:01" }, { networkLevel: "mac" }).guards].sort(), ["arp-spoof", "mac-spoof", "nd-spoof", "not-for-this-port"]);
  assert.deepEqual(one({ mac: "52:54:00:00:00:01" }, { networkLevel: "off" }).guards, []);
  assert.deepEqual(guardsForLevel("mac"), one({ mac: "52:54:00:00:00:01" }, { networkLevel: "mac" }).guards);
  for (const guard of ["ipv4-spoof", "ipv6-spoof", "ra-guard", "redirect-guard", "dhcp-server-guard", "dhcpv6-server-guard", "vlan", "ethertype", "ipv6-fragment"]) {
    assert.ok(GUARDS.includes(guard as (typeof GUARDS)[number]), guard);
    assert.ok(!guardsForLevel("mac").includes(guard as (typeof GUARDS)[number]), `${guard} is not a guard of level mac`);
  }
});

test("portPolicy() carries the port's identity fields", () => {
  const p = policies([{ mac: "52:54:00:00:00:01", tenant: "alice" }])[0]!;
  assert.deepEqual([p.port, p.tenant, p.network, p.device], ["p0", "alice", "lan", "vnet0"]);
});

test("portPolicy() is deterministic: same input, same policy; the order of allowed pairs does not matter", () => {
  const allowed = [
    { ip: "10.0.0.200", mac: "52:54:00:aa:00:01" },
    { ip: "2001:db8:0:ff::/64" },
    { ip: "10.0.0.96/28" },
    { ip: "2001:db8::200", mac: "52:54:00:aa:00:01" },
  ];
  const a = one({ mac: "52:54:00:00:00:01", ips: ["10.0.0.1", "2001:db8::1"], allowed });
  const b = one({ mac: "52:54:00:00:00:01", ips: ["10.0.0.1", "2001:db8::1"], allowed });
  const reversed = one({ mac: "52:54:00:00:00:01", ips: ["2001:db8::1", "10.0.0.1"], allowed: [...allowed].reverse() });
  assert.deepEqual(a, b);
  assert.deepEqual(reversed, a);
  assert.equal(JSON.stringify(reversed), JSON.stringify(a));
});

test("portPolicies() returns one policy per port in file order", () => {
  const ps = policies([{ mac: "52:54:00:00:00:03" }, { mac: "52:54:00:00:00:01" }, { mac: "52:54:00:00:00:02" }]);
  assert.deepEqual(ps.map((p) => p.port), ["p0", "p1", "p2"]);
  const direct = portPolicy(
    { id: "x", tenant: "t", network: "n", device: "d", mac: "52:54:00:00:00:01" as Mac, ips: [], allowed: [], protection: undefined },
    { id: "n", tenant: "t", shared: false, protection: "mac" },
    { antiSpoofing: true },
  );
  assert.equal(direct.level, "mac");
});
