// compile() and render of the libvirt driver: golden port filters and bindings per case file and the
// shared filter set, every document validated against libvirt's schemas, and the parsers the driver relies on.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { after, test } from "node:test";
import { attachmentXml, CHAINS, compileLibvirt, deviceOf, filterrefSnippet, filterSet, ownerOf, portFilterName, portFilterXml, topFilter, unitDocuments } from "../../../src/drivers/libvirt/compile.ts";
import { LIBVIRT_CAPABILITIES, LibvirtDriver } from "../../../src/drivers/libvirt/driver.ts";
import { canonicalFilter, ourAttachments, parseAttachmentList, parseDropCounters, parseFilterNames, parsePortFilters, renderApply, virshErrors } from "../../../src/drivers/libvirt/render.ts";
import { ApplyError } from "../../../src/errors.ts";
import { CommandError, setRunner, type RunOptions } from "../../../src/host/run.ts";
import { parsePortFile } from "../../../src/model/port-file.ts";
import { portPolicies, type PlacedPolicy } from "../../../src/policy/port-policy.ts";
import type { Device } from "../../../src/drivers/contract.ts";
import { hasSchemas, schemaValidator } from "./schema.ts";
import { placeAsNamed } from "../../../src/agent/device-match.ts";

const CASES = new URL("../../golden/cases/", import.meta.url);
const GOLDEN = new URL("../../golden/libvirt/", import.meta.url);
const validator = hasSchemas() ? schemaValidator() : undefined;
after(() => validator?.close());

function policiesOf(file: string): PlacedPolicy[] {
  return placeAsNamed(portPolicies(parsePortFile(readFileSync(new URL(file, CASES), "utf8"), file)));
}

/** Every port's device is there (golden files show what gets installed). */
function devicesOf(policies: readonly PlacedPolicy[]): Device[] {
  return policies.map((p) => ({ name: p.device }));
}

function checkGolden(name: string, got: string): void {
  const target = new URL(name, GOLDEN);
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(target, got);
  assert.equal(got, readFileSync(target, "utf8"), `UPDATE_GOLDEN=1 rewrites ${target.pathname}; read the diff`);
}

function validates(kind: "nwfilter" | "nwfilterbinding", xml: string): void {
  if (!validator) return;
  const problem = validator.validate(kind, xml);
  assert.equal(problem, undefined, `${kind}.rng rejects:\n${xml}\n${problem}`);
}

test("compile() gives a port whose device is missing a unit awaiting it (libvirt instantiates a binding only at creation)", () => {
  const policies = policiesOf("libvirt-levels.yaml");
  const [first, ...rest] = policies;
  const units = compileLibvirt(policies, devicesOf(rest));
  assert.deepEqual({ ...units.get(first!.port)! }, { key: first!.port, port: first!.port, digest: "", text: "", awaitingDevice: true });
  for (const p of rest) assert.equal(units.get(p.port)?.awaitingDevice, undefined);
});

test("the shared filter set matches its golden file and validates against nwfilter.rng", (t) => {
  if (!validator) t.diagnostic("xmllint or /usr/share/libvirt/schemas missing: schema validation skipped");
  mkdirSync(GOLDEN, { recursive: true });
  const defs = filterSet();
  checkGolden("filters.golden", defs.map((d) => `# filter ${d.name}\n${d.xml}`).join("\n"));
  for (const d of defs) validates("nwfilter", d.xml);
});

test("compile() matches the golden port filters and bindings of every case, each valid against libvirt's schemas", async (t) => {
  mkdirSync(GOLDEN, { recursive: true });
  for (const file of readdirSync(CASES).filter((f) => f.endsWith(".yaml")).sort()) {
    // A case that does not parse fails here: a golden test never skips what it cannot read.
    await t.test(file, () => {
      const policies = policiesOf(file);
      const units = compileLibvirt(policies, devicesOf(policies));
      const byPort = new Map(policies.map((p) => [p.port, p]));
      const text = [...units.values()].map((u) => `# unit ${u.key} digest ${u.digest}\n${u.text}# filterref\n${filterrefSnippet(byPort.get(u.port)!)}`).join("\n");
      checkGolden(file.replace(/\.yaml$/, ".golden"), text);
      for (const u of units.values()) {
        const docs = unitDocuments(u);
        validates("nwfilter", docs.filter);
        validates("nwfilterbinding", docs.attachment);
      }
    });
  }
});

const alice = policiesOf("libvirt-levels.yaml");

test("compile() is deterministic, sorted by port; the digest is stored in the port's filter, which its binding references", () => {
  const a = compileLibvirt(alice, devicesOf(alice));
  const b = compileLibvirt([...alice].reverse(), devicesOf(alice));
  assert.deepEqual([...a.entries()], [...b.entries()]);
  assert.deepEqual([...a.keys()], [...a.keys()].sort());
  for (const u of a.values()) {
    const docs = unitDocuments(u);
    assert.match(docs.filter, new RegExp(`^<filter name='vifguard-port-${u.port}' chain='root'>[\\s\\S]*<parameter name='VG_DIGEST' value='${u.digest}'/>`));
    assert.match(docs.attachment, new RegExp(`<filterref filter='vifguard-port-${u.port}'/>`));
    assert.doesNotMatch(docs.attachment, /<parameter/, "every per-port value lives in the filter, so a change never touches the binding");
    assert.equal(deviceOf(u), alice.find((p) => p.port === u.port)!.device);
  }
});

test("the digest changes with anything of the port, the device included", () => {
  const p = alice.find((x) => x.port === "alice-0")!;
  const digest = (q: PlacedPolicy): string => compileLibvirt([q], devicesOf([q])).get(q.port)!.digest;
  assert.notEqual(digest({ ...p, device: "vnet99" }), digest(p));
  assert.notEqual(digest({ ...p, level: "mac" }), digest(p));
  assert.notEqual(digest({ ...p, bindings: p.bindings.slice(1) }), digest(p));
  assert.equal(digest({ ...p }), digest(p));
});

test("compile() pairs each prefix with its MAC in lockstep lists, in the same order", () => {
  const xml = portFilterXml(alice.find((p) => p.port === "alice-0")!, "vifguard-", "d");
  const values = (name: string): string[] => [...xml.matchAll(new RegExp(`name='${name}' value='([^']*)'`, "g"))].map((m) => m[1]!);
  const v4 = values("VG_V4_MAC").map((mac, i) => `${mac} ${values("VG_V4_NET")[i]}/${values("VG_V4_MASK")[i]}`);
  assert.deepEqual(v4, ["52:54:00:10:00:01 10.0.0.1/32", "52:54:00:10:00:64 10.0.0.100/32", "52:54:00:10:00:01 10.0.1.0/24"]);
  assert.deepEqual(values("MAC"), ["52:54:00:10:00:01", "52:54:00:10:00:64"]);
  assert.ok(values("VG_V6_NET").includes("fe80::5054:ff:fe10:64"), "each allowed MAC's EUI-64 link-local is bound");
});

test("compile() chooses the top filter by level, and full-no-ipv4 when a port has no IPv4 binding", () => {
  const top = Object.fromEntries(alice.map((p) => [p.port, topFilter(p)]));
  assert.deepEqual(top, { "alice-0": "vifguard-full", "v6only-0": "vifguard-full-no-ipv4", "any-0": "vifguard-full", "mac-0": "vifguard-mac", "off-0": "vifguard-off" });
  const v6only = portFilterXml(alice.find((p) => p.port === "v6only-0")!, "vifguard-", "d");
  assert.doesNotMatch(v6only, /VG_V4_/, "a referenced but empty list would make libvirt refuse the binding");
});

test("a /0 address pair keeps the MAC check: the ARP and IPv4 rules still pair it with a MAC", () => {
  const xml = portFilterXml(alice.find((p) => p.port === "any-0")!, "vifguard-", "d");
  assert.match(xml, /VG_V4_MAC' value='52:54:00:20:00:01'\/>\n {4}<parameter name='VG_V4_NET' value='0.0.0.0'\/>\n {4}<parameter name='VG_V4_MASK' value='0'/);
  const full = filterSet().find((d) => d.name === "vifguard-full")!.xml;
  assert.match(full, /<filterref filter='no-mac-spoofing'\/>/);
});

test("level mac is oVirt's vdsm-no-mac-spoofing composition plus the to-vm filter", () => {
  const mac = filterSet().find((d) => d.name === "vifguard-mac")!.xml;
  assert.deepEqual([...mac.matchAll(/filterref filter='([^']+)'/g)].map((m) => m[1]), ["no-mac-spoofing", "no-arp-mac-spoofing", "vifguard-to-vm"]);
});

test("every custom chain ends in an explicit verdict (ebtables-nft accepts at a sub-chain's end)", () => {
  for (const d of filterSet()) {
    const chain = /chain='([^']+)'/.exec(d.xml)![1]!;
    if (chain === "root" || chain === CHAINS.ipv4Source || chain === CHAINS.arp) continue; // root: own final drop; the -bound halves share a chain with the filter that ends it
    const last = [...d.xml.matchAll(/<rule action='(\w+)' direction='(\w+)' priority='(-?\d+)'/g)].at(-1);
    assert.ok(last && last[3] === "1000" && (last[1] === "drop" || last[1] === "return"), `${d.name} must end with a drop or return at priority 1000`);
  }
});

test("filterrefSnippet() gives the domain <filterref> with the same parameters as the port's filter", () => {
  const p = alice.find((x) => x.port === "alice-0")!;
  const snippet = filterrefSnippet(p);
  assert.match(snippet, /^<filterref filter='vifguard-full'>\n/);
  const filter = portFilterXml(p, "vifguard-", "x");
  const params = (text: string): string[] => text.split("\n").filter((l) => l.includes("<parameter") && !l.includes("VG_DIGEST")).map((l) => l.trim());
  assert.deepEqual(params(snippet), params(filter));
  assert.equal(filterrefSnippet(alice.find((x) => x.port === "off-0")!), "<filterref filter='vifguard-off'/>\n");
});

test("the prefix names filters and owners, and owners get stable uuids", () => {
  const p = alice[0]!;
  const units = compileLibvirt([p], devicesOf([p]), "lab-");
  assert.match(units.get(p.port)!.text, /<filterref filter='lab-full'>/);
  assert.match(attachmentXml(p, "lab-"), new RegExp(`<filterref filter='${portFilterName(p.port, "lab-")}'/>`));
  assert.equal(portFilterName(p.port, "lab-"), `lab-port-${p.port}`);
  assert.equal(ownerOf(p.port, "lab-").name, `lab-${p.port}`);
  assert.equal(ownerOf(p.port, "lab-").uuid, ownerOf(p.port, "lab-").uuid);
  assert.notEqual(ownerOf(p.port, "lab-").uuid, ownerOf(p.port).uuid);
  assert.ok(filterSet("lab-").every((d) => d.name.startsWith("lab-")));
});

test("capabilities leave out nd-spoof and declare each partial guard", () => {
  assert.equal(LIBVIRT_CAPABILITIES.guards.has("nd-spoof"), false);
  for (const l of LIBVIRT_CAPABILITIES.limitations) assert.ok(LIBVIRT_CAPABILITIES.guards.has(l.guard), l.id);
  assert.equal(LIBVIRT_CAPABILITIES.atomicBatch, false);
});

test("renderApply(): removals, an in-place redefinition for a bound port, delete right before create otherwise", () => {
  const units = compileLibvirt(alice, devicesOf(alice));
  const installed = [
    { key: "alice-0", device: "vnet0", filter: "vifguard-port-alice-0", digest: "old", instantiated: true },
    { key: "gone-0", device: "vnet7", filter: "vifguard-port-gone-0", digest: "x", instantiated: true },
    { key: "v6only-0", device: "vnet9", filter: "vifguard-port-v6only-0", digest: "y", instantiated: true },
    { key: "mac-0", device: "tap-mac", filter: "vifguard-port-mac-0", digest: "z", instantiated: false },
    { key: "other-0", device: "tap-off", filter: "vifguard-port-other-0", digest: "w", instantiated: true },
  ];
  const add = [units.get("alice-0")!, units.get("v6only-0")!, units.get("mac-0")!, units.get("off-0")!];
  const commands = renderApply({ add, remove: ["gone-0"] }, installed, "vifguard-", (k, f) => `/tmp/d/${k}.${f}`);
  assert.deepEqual(commands, [
    "nwfilter-binding-delete vnet7",
    "nwfilter-undefine vifguard-port-gone-0",
    // alice-0: bound to its own filter on the same device: redefined in place, no gap.
    "nwfilter-define /tmp/d/alice-0.filter",
    // v6only-0 moved from vnet9 to vnet1: the old binding goes, a new one is made.
    "nwfilter-binding-delete vnet9",
    "nwfilter-define /tmp/d/v6only-0.filter",
    "nwfilter-binding-create /tmp/d/v6only-0.binding",
    // mac-0: bound, but libvirt made no rules (device was missing): re-created.
    "nwfilter-define /tmp/d/mac-0.filter",
    "nwfilter-binding-delete tap-mac",
    "nwfilter-binding-create /tmp/d/mac-0.binding",
    // off-0 takes tap-off from another port.
    "nwfilter-define /tmp/d/off-0.filter",
    "nwfilter-binding-delete tap-off",
    "nwfilter-binding-create /tmp/d/off-0.binding",
  ]);
});

test("parsers read virsh and ebtables output", () => {
  const rows = parseAttachmentList(" Port Dev   Filter\n--------------------\n vnet0      vifguard-port-alice-0\n tap-x      clean-traffic\n vnet5      vifguard-full\n vnet6      vifguard-port-\n");
  assert.deepEqual(rows.slice(0, 2), [["vnet0", "vifguard-port-alice-0"], ["tap-x", "clean-traffic"]]);
  assert.deepEqual(ourAttachments(rows, "vifguard-"), [{ key: "alice-0", device: "vnet0", filter: "vifguard-port-alice-0" }]);
  const dump = `virsh # nwfilter-dumpxml vifguard-port-alice-0
<filter name='vifguard-port-alice-0' chain='root'>
  <uuid>11111111-2222-4333-8444-555555555555</uuid>
  <filterref filter='vifguard-full'>
    <parameter name='MAC' value='52:54:00:10:00:01'/>
    <parameter name='VG_DIGEST' value='abcd'/>
  </filterref>
</filter>
<filter name='vifguard-port-off-0' chain='root'>
  <uuid>11111111-2222-4333-8444-555555555556</uuid>
  <filterref filter='vifguard-off'>
    <parameter name='VG_DIGEST' value='ef01'/>
  </filterref>
</filter>`;
  assert.deepEqual([...parsePortFilters(dump)], [
    ["vifguard-port-alice-0", { digest: "abcd", top: "vifguard-full" }],
    ["vifguard-port-off-0", { digest: "ef01", top: "vifguard-off" }],
  ]);
  assert.deepEqual(parseFilterNames(" 0b3d4f1e-7c2a-4b1e-9f0e-1a2b3c4d5e6f   allow-arp\n 11111111-2222-4333-8444-555555555555   vifguard-port-alice-0\n"), ["allow-arp", "vifguard-port-alice-0"]);
  assert.deepEqual(virshErrors("error: Failed to create network filter from /tmp/x\nerror: operation failed: binding 'vnet0' already exists\n"), ["error: operation failed: binding 'vnet0' already exists"]);
  const ebt = `Bridge chain: libvirt-I-vnet0, entries: 3, policy: RETURN
-p 802_1Q -j DROP , pcnt = 4 -- bcnt = 400
-j DROP , pcnt = 2 -- bcnt = 120

Bridge chain: I-vnet0-ipv6-vgguard, entries: 3, policy: RETURN
-p IPv6 --ip6-proto ipv6-icmp --ip6-icmp-type router-advertisement -j DROP , pcnt = 5 -- bcnt = 500
-p IPv6 --ip6-proto ipv6-icmp --ip6-icmp-type redirect -j DROP , pcnt = 1 -- bcnt = 100
-p IPv6 --ip6-proto udp --ip6-sport 547 -j DROP , pcnt = 3 -- bcnt = 300

Bridge chain: I-vnet1-mac, entries: 1, policy: RETURN
-j DROP , pcnt = 9 -- bcnt = 900
`;
  const got = parseDropCounters(ebt, ["vnet0"]).map((c) => `${c.device} ${c.reason} ${c.packets}`).sort();
  assert.deepEqual(got, ["vnet0 dhcpv6-server-guard 3", "vnet0 ethertype 2", "vnet0 ra-guard 5", "vnet0 redirect-guard 1", "vnet0 vlan 4"]);
});

test("canonicalFilter() ignores the uuid, attribute order and layout", () => {
  const ours = "<filter name='a' chain='root'>\n  <uuid>1</uuid>\n  <rule action='drop' direction='out' priority='5'/>\n</filter>\n";
  const theirs = "<filter chain='root' name='a'><uuid>2</uuid><rule priority='5' direction='out' action='drop'/></filter>";
  assert.equal(canonicalFilter(ours), canonicalFilter(theirs));
  assert.notEqual(canonicalFilter(ours), canonicalFilter(ours.replace("drop", "accept")));
});

test("apply() runs one virsh session for the whole batch and reports ports whose binding did not land", async () => {
  const calls: { args: readonly string[]; input: string }[] = [];
  const units = compileLibvirt(alice, devicesOf(alice));
  const restore = setRunner(async (command, args, options?: RunOptions) => {
    calls.push({ args: [command, ...args], input: options?.input ?? "" });
    const input = options?.input ?? "";
    const stdout = input.includes("nwfilter-dumpxml") ? filterSet().map((d) => d.xml).join("") : " Port Dev   Filter\n";
    const stderr = input.includes("binding-create") ? "error: Failed to create network filter from x\nerror: internal error: no device\n" : "";
    return { code: 0, stdout, stderr, command };
  });
  try {
    const driver = new LibvirtDriver();
    await assert.rejects(driver.apply({ add: [...units.values()], remove: [] }), (e: unknown) => e instanceof ApplyError && e.ports.length === units.size && /no device/.test(e.stderr));
    const sessions = calls.filter((c) => c.input.includes("nwfilter-binding-create"));
    assert.equal(sessions.length, 1, "one virsh process for every port");
    const lines = sessions[0]!.input.split("\n");
    assert.equal(lines.filter((l) => l.startsWith("nwfilter-binding-create")).length, units.size);
    assert.equal(lines.filter((l) => l.startsWith("nwfilter-define")).length, units.size, "each port's own filter, in the same session");
    assert.ok(!calls.some((c) => c !== sessions[0] && c.input.includes("nwfilter-define")), "shared filters that match libvirt's are not redefined");
  } finally {
    restore();
  }
});

test("probe() refuses a network namespace: libvirt binds root-namespace devices only", async () => {
  await assert.rejects(new LibvirtDriver({ netns: "x" }).probe(), /root network namespace/);
});

test("counters() tries a failed ebtables listing again (ebtables-nft fails one now and then while libvirt changes the table)", async () => {
  let listings = 0;
  const restore = setRunner(async (command, args, options?: RunOptions) => {
    if (command === "virsh" && args.includes("nwfilter-binding-list")) return { code: 0, stdout: " vnet0   vifguard-port-alice-0\n", stderr: "", command };
    assert.equal(command, "ebtables", `${command} ${args.join(" ")} ${options?.input ?? ""}`);
    listings++;
    if (listings === 1) throw new CommandError({ code: 4, stdout: "", stderr: "RULE_DELETE failed (No such file or directory): rule in chain libvirt-I-vnet9", command: "ebtables -t nat -L --Lc" });
    return { code: 0, stdout: "Bridge chain: I-vnet0-mac, entries: 1, policy: RETURN\n-j DROP , pcnt = 9 -- bcnt = 900\n", stderr: "", command };
  });
  try {
    assert.deepEqual(await new LibvirtDriver().counters(), [{ port: "alice-0", reason: "mac-spoof", packets: 9, bytes: 900 }]);
    assert.equal(listings, 2, "the listing failed once, then again");
  } finally {
    restore();
  }
});
