// compile() of the bpf driver: golden map entries per case file (the same cases as the nftables
// golden tests), and the properties the driver relies on: deterministic, every entry keyed by its
// port's ifindex, the maps as dumped give back the compiled digests (no false drift), a device
// without the programs is drift. Pure.
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { compileBpf, compileFailClosed, describeEntry, DETACHED, observedUnits, ownerOf, parseEntryLine, portEntries } from "../../../src/drivers/bpf/compile.ts";
import { FAIL_CLOSED_KEY, type Device, type Unit } from "../../../src/drivers/contract.ts";
import { parsePortFile } from "../../../src/model/port-file.ts";
import { portPolicies, type PlacedPolicy } from "../../../src/policy/port-policy.ts";
import { placeAsNamed } from "../../../src/agent/device-match.ts";

const CASES = new URL("../../golden/cases/", import.meta.url);
const GOLDEN = new URL("../../golden/bpf/", import.meta.url);

const load = (file: string): PlacedPolicy[] => placeAsNamed(portPolicies(parsePortFile(readFileSync(new URL(file, CASES), "utf8"), file)));
/** Each device of the case gets an ifindex, 10 upwards in file order. */
const devicesOf = (policies: readonly PlacedPolicy[]): Device[] => [...new Set(policies.map((p) => p.device))].map((name, i) => ({ name, ifindex: 10 + i }));

function goldenText(policies: readonly PlacedPolicy[]): string {
  const units = compileBpf(policies, devicesOf(policies));
  return [...units.values()]
    .map((u) => `# unit ${u.key} digest ${u.digest}\n${u.text.split("\n").filter(Boolean).map((line) => `${line}\n#   ${describeEntry(parseEntryLine(line))}`).join("\n")}\n`)
    .join("\n");
}

function checkGolden(name: string, got: string): void {
  const target = new URL(name, GOLDEN);
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(target, got);
  assert.equal(got, readFileSync(target, "utf8"), `UPDATE_GOLDEN=1 rewrites ${target.pathname}; read the diff`);
}

const caseFiles = readdirSync(CASES).filter((f) => f.endsWith(".yaml")).sort();

test("compile() matches the golden map entries of every case", async (t) => {
  mkdirSync(GOLDEN, { recursive: true });
  assert.ok(caseFiles.length >= 5);
  for (const file of caseFiles) await t.test(file, () => checkGolden(file.replace(/\.yaml$/, ".golden"), goldenText(load(file))));
});

/** The maps as bpftool would dump them after `units` were applied. */
function mapsAfter(units: readonly Unit[]): Map<string, Map<string, string>> {
  const maps = new Map<string, Map<string, string>>();
  for (const u of units) {
    for (const line of u.text.split("\n").filter(Boolean)) {
      const e = parseEntryLine(line);
      if (!maps.has(e.map)) maps.set(e.map, new Map());
      maps.get(e.map)!.set(e.key, e.value);
    }
  }
  return maps;
}

test("compile() is deterministic and every entry belongs to its port's ifindex", () => {
  for (const file of caseFiles) {
    const policies = load(file);
    const devices = devicesOf(policies);
    const a = compileBpf(policies, devices);
    const b = compileBpf([...policies].reverse(), [...devices].reverse());
    assert.deepEqual([...a.entries()].sort(), [...b.entries()].sort(), file);
    for (const p of policies) {
      const ifindex = devices.find((d) => d.name === p.device)!.ifindex;
      for (const line of a.get(p.port)!.text.split("\n").filter(Boolean)) assert.equal(ownerOf(parseEntryLine(line)), ifindex, `${file} ${p.port}: ${line.slice(0, 40)}`);
    }
  }
});

test("the maps read back give the compiled digests (no drift), and a device without the programs is drift", () => {
  for (const file of caseFiles) {
    const policies = load(file);
    // Two ports on one device share their entries: the golden cases give each its own device.
    if (new Set(policies.map((p) => p.device)).size !== policies.length) continue;
    const compiled = compileBpf(policies, devicesOf(policies));
    const observed = observedUnits(mapsAfter([...compiled.values()]), () => true, devicesOf(policies));
    assert.deepEqual([...observed.values()].map((u) => [u.key, u.digest]).sort(), [...compiled.values()].map((u) => [u.key, u.digest]).sort(), file);
    const detached = observedUnits(mapsAfter([...compiled.values()]), (i) => i !== 10, devicesOf(policies));
    assert.equal([...detached.values()].filter((u) => u.digest === DETACHED).length, 1, file);
  }
});

const levels = load("nft-levels.yaml");
const pairs = load("nft-pairs.yaml");

test("a port whose device has no ifindex awaits it; level off is a port entry alone; shorter prefixes go to the LPM tries", () => {
  const units = compileBpf(levels, []);
  assert.ok([...units.values()].every((u) => u.awaitingDevice === true && u.digest === "" && u.text === ""));
  const off = levels.find((p) => p.level === "off")!;
  assert.deepEqual(portEntries(off, 7).map((e) => e.map), ["vg_ports"]);
  const alice = portEntries(pairs.find((p) => p.port === "alice-0")!, 7);
  assert.deepEqual(alice.filter((e) => e.map === "vg_lpm4").map(describeEntry), ["ifindex 7: 52:54:00:40:00:01 may use 10.4.0.96/28"]);
  assert.deepEqual(alice.filter((e) => e.map === "vg_lpm6").map(describeEntry), ["ifindex 7: 52:54:00:40:00:01 may use 2001:db8:4:ff::/64"]);
  assert.match(describeEntry(alice.find((e) => e.map === "vg_ports")!), /level full, flags 3$/);
  const bob = portEntries(pairs.find((p) => p.port === "bob-0")!, 8);
  assert.ok(!bob.some((e) => e.map === "vg_lpm4" || e.map === "vg_lpm6"), "host addresses only: exact hash lookups");
  assert.throws(() => portEntries({ ...off, port: "p".repeat(300) }, 7), /at most 251 bytes/);
});

test("the fail-closed unit holds its patterns; a matching device without the programs is drift", () => {
  const unit = compileFailClosed(["vnet*", "tap0", "vnet*"], FAIL_CLOSED_KEY);
  assert.deepEqual(unit.text.split("\n").filter(Boolean).map((l) => describeEntry(parseEntryLine(l))), ["fail closed: tap0", "fail closed: vnet*"]);
  assert.throws(() => compileFailClosed(["vnet 1"], FAIL_CLOSED_KEY), /expected an interface name/);
  const devices: Device[] = [{ name: "vnet3", ifindex: 30 }, { name: "eth0", ifindex: 2 }];
  const maps = mapsAfter([unit]);
  assert.equal(observedUnits(maps, (i) => i === 30, devices).get(FAIL_CLOSED_KEY)!.digest, unit.digest);
  assert.equal(observedUnits(maps, () => false, devices).get(FAIL_CLOSED_KEY)!.digest, DETACHED);
  assert.equal(observedUnits(maps, () => false, [{ name: "eth0", ifindex: 2 }]).get(FAIL_CLOSED_KEY)!.digest, unit.digest, "eth0 matches no pattern");
});
