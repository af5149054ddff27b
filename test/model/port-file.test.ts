import assert from "node:assert/strict";
import { test } from "node:test";
import { PortFileError } from "../../src/errors.ts";
import { parsePortFile, validatePortFile } from "../../src/model/port-file.ts";

type Doc = { config?: unknown; networks: Record<string, unknown>[]; ports: Record<string, unknown>[] };

function baseDoc(): Doc {
  return {
    networks: [
      { id: "public", tenant: "provider", shared: true, protection: "full" },
      { id: "priv", tenant: "acme", shared: false, protection: "mac" },
    ],
    ports: [
      { id: "alice-0", tenant: "alice", network: "public", device: "vnet0", mac: "52:54:00:00:00:01", ips: ["10.0.0.1", "2001:db8::1"], allowed: [{ ip: "10.0.0.100/32" }] },
      { id: "bob-0", tenant: "bob", network: "public", device: "vnet1", mac: "52:54:00:00:00:02", ips: ["10.0.0.2"] },
    ],
  };
}

function rejects(mutate: (doc: Doc) => void): PortFileError {
  const doc = baseDoc();
  mutate(doc);
  try {
    validatePortFile(doc, "ports.yaml");
  } catch (error) {
    assert.ok(error instanceof PortFileError, `expected PortFileError, got ${String(error)}`);
    assert.equal(error.code, "VG_PORT_FILE_INVALID");
    assert.match(error.message, /^Cannot load ports\.yaml/);
    return error;
  }
  assert.fail("the port file was accepted");
}

test("validatePortFile() accepts the base document and fills defaults", () => {
  const file = validatePortFile(baseDoc(), "ports.yaml");
  assert.equal(file.config.antiSpoofing, true);
  assert.equal(file.ports[0]!.mac, "52:54:00:00:00:01");
  assert.equal(file.ports[0]!.allowed[0]!.mac, "52:54:00:00:00:01", "an allowed pair's MAC defaults to the port's");
  assert.equal(file.ports[0]!.allowed[0]!.ip.text, "10.0.0.100");
  assert.equal(file.ports[1]!.protection, undefined, "unset level stays unset (inherits)");
});

test("a port's tenant defaults to its network's", () => {
  const doc = baseDoc();
  doc.ports.push({ id: "db-0", network: "priv", device: "tap-1a2b", mac: "52:54:00:aa:00:01" });
  assert.equal(validatePortFile(doc, "f").ports[2]!.tenant, "acme");
});

test("MACs are normalized to lower-case colon form", () => {
  const doc = baseDoc();
  doc.ports[0]!.mac = "52-54-00-AB-CD-EF";
  assert.equal(validatePortFile(doc, "f").ports[0]!.mac, "52:54:00:ab:cd:ef");
});

const REJECTED: { name: string; mutate: (d: Doc) => void; path: string; value: unknown; expected: RegExp }[] = [
  { name: "malformed MAC", mutate: (d) => (d.ports[0]!.mac = "52:54:00:00:00"), path: "ports[0].mac", value: "52:54:00:00:00", expected: /unicast MAC/ },
  { name: "multicast MAC", mutate: (d) => (d.ports[0]!.mac = "01:00:5e:00:00:01"), path: "ports[0].mac", value: "01:00:5e:00:00:01", expected: /not multicast/ },
  { name: "broadcast MAC", mutate: (d) => (d.ports[1]!.mac = "ff:ff:ff:ff:ff:ff"), path: "ports[1].mac", value: "ff:ff:ff:ff:ff:ff", expected: /broadcast/ },
  { name: "zero MAC", mutate: (d) => (d.ports[1]!.mac = "00:00:00:00:00:00"), path: "ports[1].mac", value: "00:00:00:00:00:00", expected: /all-zero/ },
  { name: "Cisco-dotted MAC", mutate: (d) => (d.ports[1]!.mac = "5254.0000.0002"), path: "ports[1].mac", value: "5254.0000.0002", expected: /unicast MAC/ },
  { name: "malformed pair MAC", mutate: (d) => (d.ports[0]!.allowed = [{ ip: "10.0.0.100", mac: "zz:54:00:00:00:01" }]), path: "ports[0].allowed[0].mac", value: "zz:54:00:00:00:01", expected: /unicast MAC/ },
  { name: "IPv4 out of range", mutate: (d) => (d.ports[0]!.ips = ["10.0.0.300"]), path: "ports[0].ips[0]", value: "10.0.0.300", expected: /IPv4 or IPv6 address/ },
  { name: "short IPv4 that lenient parsers accept", mutate: (d) => (d.ports[0]!.ips = ["10.1"]), path: "ports[0].ips[0]", value: "10.1", expected: /address/ },
  { name: "octal-looking IPv4", mutate: (d) => (d.ports[0]!.ips = ["010.0.0.1"]), path: "ports[0].ips[0]", value: "010.0.0.1", expected: /address/ },
  { name: "malformed IPv6", mutate: (d) => (d.ports[0]!.ips = ["2001:db8::1::2"]), path: "ports[0].ips[0]", value: "2001:db8::1::2", expected: /address/ },
  { name: "IPv6 with a zone", mutate: (d) => (d.ports[0]!.ips = ["fe80::1%eth0"]), path: "ports[0].ips[0]", value: "fe80::1%eth0", expected: /address/ },
  { name: "CIDR as a fixed IP", mutate: (d) => (d.ports[0]!.ips = ["10.0.0.0/24"]), path: "ports[0].ips[0]", value: "10.0.0.0/24", expected: /CIDR belongs in allowed/ },
  { name: "multicast fixed IP", mutate: (d) => (d.ports[0]!.ips = ["224.0.0.1"]), path: "ports[0].ips[0]", value: "224.0.0.1", expected: /not a multicast/ },
  { name: "unspecified fixed IPv6", mutate: (d) => (d.ports[0]!.ips = ["::"]), path: "ports[0].ips[0]", value: "::", expected: /unspecified/ },
  { name: "CIDR with host bits", mutate: (d) => (d.ports[0]!.allowed = [{ ip: "10.0.0.5/24" }]), path: "ports[0].allowed[0].ip", value: "10.0.0.5/24", expected: /host bits zero \(did you mean 10\.0\.0\.0\/24\?\)/ },
  { name: "prefix length too long", mutate: (d) => (d.ports[0]!.allowed = [{ ip: "10.0.0.0/33" }]), path: "ports[0].allowed[0].ip", value: "10.0.0.0/33", expected: /0 to 32/ },
  { name: "malformed CIDR", mutate: (d) => (d.ports[0]!.allowed = [{ ip: "10.0.0.0/x" }]), path: "ports[0].allowed[0].ip", value: "10.0.0.0/x", expected: /CIDR/ },
  { name: "duplicate port id", mutate: (d) => (d.ports[1]!.id = "alice-0"), path: "ports[1].id", value: "alice-0", expected: /ports\[0\] has it/ },
  { name: "duplicate device", mutate: (d) => (d.ports[1]!.device = "vnet0"), path: "ports[1].device", value: "vnet0", expected: /ports\[0\] has it/ },
  { name: "same address, two tenants, one network", mutate: (d) => (d.ports[1]!.ips = ["10.0.0.1"]), path: "ports[1].ips[0]", value: "10.0.0.1", expected: /ports\[0\]\.ips\[0\] of port alice-0, tenant alice/ },
  { name: "Eve adds Alice's IP as an address pair", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "10.0.0.1" }]), path: "ports[1].allowed[0].ip", value: "10.0.0.1", expected: /another tenant|no other tenant/ },
  { name: "a CIDR pair overlapping another tenant's address", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "10.0.0.0/24" }]), path: "ports[1].allowed[0].ip", value: "10.0.0.0/24", expected: /alice-0/ },
  { name: "a /0 pair on a shared network", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "0.0.0.0/0" }]), path: "ports[1].allowed[0].ip", value: "0.0.0.0/0", expected: /no wider than \/24 on shared network public \(its widestPair\.ipv4/ },
  // Issue 12: over-broad claims, link-local addresses, IPv4 in IPv6 clothing.
  { name: "::/0 on a shared network, nobody else in it yet", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "::/0" }]), path: "ports[1].allowed[0].ip", value: "::/0", expected: /no wider than \/64 on shared network public/ },
  { name: "a /23 pair on a shared network", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "10.9.0.0/23" }]), path: "ports[1].allowed[0].ip", value: "10.9.0.0/23", expected: /no wider than \/24/ },
  { name: "fe80::/64 on a shared network", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "fe80::/64" }]), path: "ports[1].allowed[0].ip", value: "fe80::/64", expected: /link-local .* derived from the port's own MACs \(fe80::5054:ff:fe00:2\)/ },
  { name: "fe80::/10 on a shared network", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "fe80::/10" }]), path: "ports[1].allowed[0].ip", value: "fe80::/10", expected: /no wider than \/64/ },
  { name: "Alice's derived link-local in Eve's ips on a shared network", mutate: (d) => (d.ports[1]!.ips = ["fe80::5054:ff:fe00:1"]), path: "ports[1].ips[0]", value: "fe80::5054:ff:fe00:1", expected: /derived from the port's own MACs/ },
  { name: "Alice's derived link-local claimed on an unshared network by another tenant", mutate: (d) => d.ports.push({ id: "a-1", tenant: "alice", network: "priv", device: "vnet7", mac: "52:54:00:00:00:07" }, { id: "e-1", tenant: "eve", network: "priv", device: "vnet8", mac: "52:54:00:00:00:08", allowed: [{ ip: "fe80::/64" }] }), path: "ports[3].allowed[0].ip", value: "fe80::/64", expected: /ports\[2\]\.mac of port a-1, tenant alice, holds fe80::5054:ff:fe00:7/ },
  { name: "an IPv4-mapped address as a port's address", mutate: (d) => (d.ports[1]!.ips = ["::ffff:10.0.0.1"]), path: "ports[1].ips[0]", value: "::ffff:a00:1", expected: /IPv4-mapped/ },
  { name: "an IPv4-compatible address as a port's address", mutate: (d) => (d.ports[1]!.ips = ["::10.0.0.1"]), path: "ports[1].ips[0]", value: "::a00:1", expected: /IPv4-compatible/ },
  { name: "an IPv4-mapped pair on an unshared network", mutate: (d) => d.ports.push({ id: "db-0", network: "priv", device: "tap0", mac: "52:54:00:aa:00:01", allowed: [{ ip: "::ffff:0:0/96" }] }), path: "ports[2].allowed[0].ip", value: "::ffff:0:0/96", expected: /write the IPv4 address itself/ },
  { name: "a NAT64 /96 pair on a shared network", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "64:ff9b::/96" }]), path: "ports[1].allowed[0].ip", value: "64:ff9b::/96", expected: /does not contain 64:ff9b::\/96/ },
  { name: "a 6to4 range on a shared network whose limit was raised", mutate: (d) => ((d.networks[0]!.widestPair = { ipv6: 8 }), (d.ports[1]!.allowed = [{ ip: "2000::/8" }])), path: "ports[1].allowed[0].ip", value: "2000::/8", expected: /does not contain 2002::\/16/ },
  { name: "a widestPair beyond the family's length", mutate: (d) => (d.networks[0]!.widestPair = { ipv4: 33 }), path: "networks[0].widestPair.ipv4", value: 33, expected: /32/ },
  // Issue 12 item 2: a network's own ranges bound its ports' addresses and pairs (no pair wider than the range).
  { name: "an address outside the network's ranges", mutate: (d) => ((d.networks[0]!.ranges = ["10.0.0.0/24", "2001:db8::/48"]), (d.ports[1]!.ips = ["10.0.1.2"])), path: "ports[1].ips[0]", value: "10.0.1.2", expected: /inside network public's ranges \(10\.0\.0\.0\/24\)/ },
  { name: "a pair wider than the network's range, its widestPair raised", mutate: (d) => ((d.networks[0]!.ranges = ["10.0.0.0/24"]), (d.networks[0]!.widestPair = { ipv4: 8 }), (d.ports[1]!.allowed = [{ ip: "10.0.0.0/16" }])), path: "ports[1].allowed[0].ip", value: "10.0.0.0/16", expected: /no wider than \/24, network public's range 10\.0\.0\.0\/24/ },
  { name: "an IPv6 pair outside the network's IPv6 range", mutate: (d) => ((d.networks[0]!.ranges = ["2001:db8::/48"]), (d.ports[1]!.allowed = [{ ip: "2001:db9::/64" }])), path: "ports[1].allowed[0].ip", value: "2001:db9::/64", expected: /ranges \(2001:db8::\/48\)/ },
  { name: "a range with host bits", mutate: (d) => (d.networks[0]!.ranges = ["10.0.0.1/24"]), path: "networks[0].ranges[0]", value: "10.0.0.1/24", expected: /host bits zero/ },
  { name: "a link-local range", mutate: (d) => (d.networks[0]!.ranges = ["fe80::/64"]), path: "networks[0].ranges[0]", value: "fe80::/64", expected: /not link-local/ },
  { name: "an IPv4-mapped range", mutate: (d) => (d.networks[0]!.ranges = ["::ffff:0:0/96"]), path: "networks[0].ranges[0]", value: "::ffff:0:0/96", expected: /not IPv4-mapped/ },
  { name: "an IPv6 address held by two tenants", mutate: (d) => (d.ports[1]!.ips = ["2001:db8:0::1"]), path: "ports[1].ips[0]", value: "2001:db8::1", expected: /alice-0/ },
  { name: "another tenant's MAC on the same network", mutate: (d) => (d.ports[1]!.mac = "52:54:00:00:00:01"), path: "ports[1].mac", value: "52:54:00:00:00:01", expected: /ports\[0\]\.mac of port alice-0, tenant alice/ },
  { name: "another tenant's MAC as an address-pair MAC", mutate: (d) => (d.ports[1]!.allowed = [{ ip: "10.0.0.50", mac: "52:54:00:00:00:01" }]), path: "ports[1].allowed[0].mac", value: "52:54:00:00:00:01", expected: /alice-0/ },
  { name: "level off on a shared network", mutate: (d) => (d.ports[0]!.protection = "off"), path: "ports[0].protection", value: "off", expected: /shared/ },
  { name: "level mac on a shared network", mutate: (d) => (d.ports[1]!.protection = "mac"), path: "ports[1].protection", value: "mac", expected: /shared/ },
  { name: "shared network with default mac", mutate: (d) => (d.networks[0]!.protection = "mac"), path: "networks[0].protection", value: "mac", expected: /shared/ },
  { name: "unknown level", mutate: (d) => (d.ports[0]!.protection = "strict"), path: "ports[0].protection", value: "strict", expected: /full, mac, off/ },
  { name: "unknown network", mutate: (d) => (d.ports[0]!.network = "nope"), path: "ports[0].network", value: "nope", expected: /public, priv/ },
  { name: "duplicate network id", mutate: (d) => d.networks.push({ id: "priv", tenant: "x" }), path: "networks[2].id", value: "priv", expected: /not used by another network/ },
  { name: "misspelt field", mutate: (d) => (d.ports[0]!.allowd = []), path: "ports[0].allowd", value: [], expected: /misspelt/ },
  { name: "device name too long", mutate: (d) => (d.ports[0]!.device = "a-very-long-device-name"), path: "ports[0].device", value: "a-very-long-device-name", expected: /1-15 characters/ },
  { name: "device with a slash", mutate: (d) => (d.ports[0]!.device = "vnet/0"), path: "ports[0].device", value: "vnet/0", expected: /interface name/ },
  { name: "bad port id", mutate: (d) => (d.ports[0]!.id = "alice 0"), path: "ports[0].id", value: "alice 0", expected: /letters, digits/ },
  { name: "antiSpoofing not a boolean", mutate: (d) => (d.config = { antiSpoofing: "yes" }), path: "config.antiSpoofing", value: "yes", expected: /boolean/ },
];

test("validatePortFile() rejects bad input, naming field path, value and what is accepted", async (t) => {
  for (const row of REJECTED) {
    await t.test(row.name, () => {
      const error = rejects(row.mutate);
      const issue = error.issues.find((i) => i.path === row.path);
      assert.ok(issue, `no issue at ${row.path}; got ${error.issues.map((i) => i.path).join(", ")}`);
      assert.deepEqual(issue.value, row.value);
      assert.match(issue.expected, row.expected);
      assert.ok(error.message.includes(row.path), "the message names the path");
    });
  }
});

test("every issue of a file is reported at once, and nothing is half-loaded", () => {
  const error = rejects((d) => {
    d.ports[0]!.mac = "nope";
    d.ports[1]!.ips = ["300.1.1.1"];
    d.ports[1]!.device = "vnet0";
  });
  assert.deepEqual(error.issues.map((i) => i.path).sort(), ["ports[0].mac", "ports[1].device", "ports[1].ips[0]"]);
});

test("on a shared network a port may hold its own derived link-local, NAT64/6to4 addresses as IPv6, and a raised limit", () => {
  const doc = baseDoc();
  doc.ports[1]!.ips = ["fe80::5054:ff:fe00:2", "64:ff9b::a00:1", "2002:a00:1::1"];
  doc.ports[1]!.allowed = [{ ip: "fe80::5054:ff:fe00:9", mac: "52:54:00:00:00:09" }, { ip: "10.0.0.128/25" }];
  assert.equal(validatePortFile(doc, "f").ports[1]!.allowed.length, 2);
  doc.networks[0]!.widestPair = { ipv4: 16 };
  doc.ports[1]!.allowed = [{ ip: "10.7.0.0/16" }];
  assert.equal(validatePortFile(doc, "f").networks[0]!.widestPair?.ipv6, 64, "an unnamed family keeps its default");
  doc.networks[1]!.shared = false;
  doc.ports.push({ id: "db-0", network: "priv", device: "tap0", mac: "52:54:00:aa:00:01", allowed: [{ ip: "0.0.0.0/0" }, { ip: "::/0" }] });
  assert.equal(validatePortFile(doc, "f").ports.length, 3, "an unshared network's single tenant chooses freely");
});

test("a network's ranges: addresses and pairs inside pass, a family without a range is free, link-locals follow the MACs", () => {
  const doc = baseDoc();
  doc.networks[0]!.ranges = ["10.0.0.0/16"];
  doc.ports[1]!.ips = ["10.0.0.2", "2001:db8:77::2", "fe80::5054:ff:fe00:2"];
  doc.ports[1]!.allowed = [{ ip: "10.0.9.0/24" }];
  const file = validatePortFile(doc, "f");
  assert.deepEqual(file.networks[0]!.ranges, ["10.0.0.0/16"]);
  assert.equal(file.ports[1]!.allowed[0]!.ip.text, "10.0.9.0/24");
  doc.networks[0]!.ranges = [];
  assert.equal(validatePortFile(doc, "f").networks[0]!.ranges, undefined, "an empty list is no range");
});

test("two ports of one tenant may share a VIP on one network (failover pairs)", () => {
  const doc = baseDoc();
  doc.ports.push({ id: "alice-1", tenant: "alice", network: "public", device: "vnet9", mac: "52:54:00:00:00:09", allowed: [{ ip: "10.0.0.100/32" }] });
  assert.equal(validatePortFile(doc, "f").ports.length, 3);
});

test("the same address on two different networks is fine", () => {
  const doc = baseDoc();
  doc.ports.push({ id: "db-0", network: "priv", device: "tap0", mac: "52:54:00:aa:00:01", ips: ["10.0.0.1"] });
  assert.equal(validatePortFile(doc, "f").ports.length, 3);
});

test("parsePortFile() reads YAML and JSON, and reports YAML syntax errors with a line", () => {
  const yaml = "networks:\n  - {id: n, tenant: t}\nports:\n  - {id: p, network: n, device: vnet0, mac: '52:54:00:00:00:01'}\n";
  assert.equal(parsePortFile(yaml, "a.yaml").ports[0]!.id, "p");
  assert.equal(parsePortFile(JSON.stringify(baseDoc()), "a.json").ports.length, 2);
  assert.throws(() => parsePortFile("networks: [\n", "broken.yaml"), (e: unknown) => e instanceof PortFileError && /broken\.yaml/.test(e.message) && /line/.test(e.issues[0]!.path));
  assert.throws(() => parsePortFile("networks: []\nnetworks: []\n", "dup.yaml"), PortFileError);
});

test("cross-tenant checking finds the one conflicting claim among 20,000 ports", () => {
  const doc: Doc = { networks: [{ id: "n", tenant: "p", shared: true }], ports: [] };
  for (let i = 0; i < 20_000; i++) {
    const hex = (i + 1).toString(16).padStart(4, "0");
    doc.ports.push({ id: `p${i}`, tenant: `t${i}`, network: "n", device: `v${i}`, mac: `52:54:00:00:${hex.slice(0, 2)}:${hex.slice(2)}`, ips: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`] });
  }
  doc.ports[19_999]!.allowed = [{ ip: "10.0.0.7" }];
  try {
    validatePortFile(doc, "big.yaml");
    assert.fail("accepted");
  } catch (e) {
    assert.ok(e instanceof PortFileError);
    assert.deepEqual(e.issues.map((i) => i.path), ["ports[19999].allowed[0].ip"]);
  }
});

test("a port may leave out its device (the agent finds it by MAC); two such ports are fine", () => {
  const doc = baseDoc();
  delete (doc.ports[0] as { device?: string }).device;
  delete (doc.ports[1] as { device?: string }).device;
  const file = validatePortFile(doc, "ports.yaml");
  assert.deepEqual(file.ports.map((p) => p.device), [undefined, undefined]);
  assert.equal("device" in file.ports[0]!, false, "absent, not undefined: JSON and digests stay as before");
});
