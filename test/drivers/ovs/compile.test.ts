// compile() and render() of the OVS driver: golden flows per case file, and the properties the
// driver relies on (cookies per port, notes that round-trip, bundles that touch only vifguard's tables).
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { test } from "node:test";
import { baseFlows, compileOvs, guardOfPriority, keyHash, kindOf, magicFor, noteFor, parseNote, priorityOf, TABLE_COUNT, type OvsLayout } from "../../../src/drivers/ovs/compile.ts";
import { OvsDriver, parseDump } from "../../../src/drivers/ovs/driver.ts";
import { changeOps, renderChanges, renderOps, renderRemoveAll } from "../../../src/drivers/ovs/render.ts";
import { ApplyError } from "../../../src/errors.ts";
import { GUARDS } from "../../../src/policy/guards.ts";
import { CommandError, setRunner } from "../../../src/host/run.ts";
import { parsePortFile } from "../../../src/model/port-file.ts";
import type { Device } from "../../../src/drivers/contract.ts";
import type { Mac } from "../../../src/model/mac.ts";
import { portPolicies, type PlacedPolicy } from "../../../src/policy/port-policy.ts";
import { cloud } from "./fixture.ts";
import { placeAsNamed } from "../../../src/agent/device-match.ts";

const CASES = new URL("../../golden/cases/", import.meta.url);
const GOLDEN = new URL("../../golden/ovs/", import.meta.url);
const NORMAL: OvsLayout = { tableBase: 0, pass: "normal", magic: magicFor("vifguard"), portRegister: 7 };
const TABLE: OvsLayout = { tableBase: 20, pass: { table: 30 }, magic: magicFor("vifguard"), portRegister: 7 };

/** Golden cases give each device the ofport of its position (1, 2, …); a device ending in "-gone" has none. */
function devicesOf(policies: readonly PlacedPolicy[]): Device[] {
  return policies.flatMap((p, i) => (p.device.endsWith("-gone") ? [] : [{ name: p.device, ofport: i + 1 }]));
}

/** The base flows every bundle (re)adds (shared by all ports), then each unit. */
function goldenText(policies: readonly PlacedPolicy[], layout: OvsLayout): string {
  const units = compileOvs(policies, devicesOf(policies), layout);
  return `# base (shared by every port)\n${baseFlows(layout).join("\n")}\n\n` + [...units.values()].map((u) => (u.awaitingDevice ? `# unit ${u.key} awaiting its device\n` : `# unit ${u.key} digest ${u.digest}\n${u.text}`)).join("\n");
}

test("compile() matches the golden flows of every case", async (t) => {
  mkdirSync(GOLDEN, { recursive: true });
  const files = readdirSync(CASES).filter((f) => f.endsWith(".yaml")).sort();
  for (const file of files) {
    // A case that does not parse fails here: a golden test never skips what it cannot read.
    await t.test(file, () => {
      const policies = placeAsNamed(portPolicies(parsePortFile(readFileSync(new URL(file, CASES), "utf8"), file)));
      const got = goldenText(policies, NORMAL);
      const target = new URL(file.replace(/\.yaml$/, ".golden"), GOLDEN);
      if (process.env.UPDATE_GOLDEN === "1") writeFileSync(target, got);
      assert.equal(got, readFileSync(target, "utf8"), `UPDATE_GOLDEN=1 rewrites ${target.pathname}; read the diff`);
    });
  }
});

const policies = cloud("vgg");
const ofports = devicesOf(policies);

test("compile() is deterministic and gives each port its own cookie", () => {
  const a = compileOvs(policies, ofports, NORMAL);
  const b = compileOvs([...policies].reverse(), ofports, NORMAL);
  assert.deepEqual([...a.entries()], [...b.entries()]);
  const hashes = new Set<string>();
  for (const unit of a.values()) {
    const cookies = new Set([...unit.text.matchAll(/cookie=0x([0-9a-f]{16})/g)].map((m) => m[1]!.slice(2, 14)));
    assert.deepEqual([...cookies], [keyHash(unit.key)], `every flow of ${unit.key} carries its key hash`);
    hashes.add(keyHash(unit.key));
  }
  assert.equal(hashes.size, a.size);
});

test("compile() sets each allowed MAC, binding and the EUI-64 link-local of Alice", () => {
  const alice = compileOvs(policies, ofports, NORMAL).get("alice-0")!.text;
  assert.match(alice, /dl_src=52:54:00:00:00:01,arp,arp_sha=52:54:00:00:00:01,arp_spa=10\.0\.0\.100 /);
  assert.match(alice, /dl_src=52:54:00:00:00:01,ipv6,ipv6_src=fe80::5054:ff:fe00:1 /);
  assert.match(alice, /icmp_type=136,nd_target=2001:db8::100,nd_tll=52:54:00:00:00:01 /);
  assert.match(alice, /metadata=0x[0-9a-f]{8},dl_dst=52:54:00:00:00:01 actions=output:1/);
  assert.doesNotMatch(alice, /nd_sll=[^ ]*icmp_type=136|icmp_type=135,[^ ]*nd_tll/, "never a match OVS would silently normalize away");
});

test("compile() changes the digest when the ofport changes (a re-created VIF)", () => {
  const before = compileOvs(policies, ofports, NORMAL).get("eve-0")!;
  const after = compileOvs(policies, [...ofports.filter((d) => d.name !== "vgg-e"), { name: "vgg-e", ofport: 42 }], NORMAL).get("eve-0")!;
  assert.notEqual(before.digest, after.digest);
  assert.match(after.text, /in_port=42,/);
});

test("compile() at pass=table resubmits to the operator's table and fills the to-vm table", () => {
  const eve = compileOvs(policies, ofports, TABLE).get("eve-0")!.text;
  assert.match(eve, /resubmit\(,30\)/);
  assert.doesNotMatch(eve, /NORMAL|write_metadata/);
  assert.match(eve, new RegExp(`table=24,priority=${priorityOf(10, kindOf("not-for-this-port"))},cookie=0x[0-9a-f]+,reg7=2 actions=drop`));
  for (const line of eve.trim().split("\n")) {
    const table = Number(/^table=(\d+)/.exec(line)![1]);
    assert.ok(table >= 20 && table < 20 + TABLE_COUNT, line);
  }
});

test("the classify flow's note round-trips key and digest, also zero-padded by OVS", () => {
  assert.deepEqual(parseNote(noteFor("alice-0", "0123abcd")), { key: "alice-0", digest: "0123abcd" });
  assert.deepEqual(parseNote(`${noteFor("a", "b")}.00.00.00`), { key: "a", digest: "b" });
  assert.equal(parseNote("41.42"), undefined);
});

test("renderChanges() deletes by exact cookie (vifguard's magic byte and the unit's key hash), then adds", () => {
  const units = compileOvs(policies, ofports, TABLE);
  const bundle = renderChanges({ add: [units.get("eve-0")!], remove: ["old-port"] }, TABLE);
  const deletes = bundle.split("\n").filter((l) => l.startsWith("delete "));
  assert.equal(deletes.length, 2, "one exact cookie per unit, in all tables (OVS indexes exact cookies only)");
  const magic = TABLE.magic.toString(16).padStart(2, "0");
  for (const d of deletes) assert.match(d, new RegExp(`^delete cookie=0x${magic}[0-9a-f]{12}00/-1$`));
  const firstAdd = bundle.split("\n").findIndex((l) => l.startsWith("add "));
  assert.ok(firstAdd > bundle.split("\n").findLastIndex((l) => l.startsWith("delete ")), "make before break inside one bundle: deletes, then adds");
  assert.match(renderRemoveAll(TABLE), /^delete table=20,cookie=0x[0-9a-f]{2}00000000000000\/0xff00000000000000\n/);
});

test("changeOps() leaves the base flows out when asked, and deletes an older vifguard's units kind by kind", () => {
  const units = compileOvs(policies, ofports, TABLE);
  const eve = units.get("eve-0")!;
  const lines = eve.text.split("\n").filter(Boolean).length;
  const plain = changeOps({ add: [eve], remove: [] }, TABLE, { base: false });
  assert.deepEqual([plain.filter((o) => o.op === "delete").length, plain.filter((o) => o.op === "add").length], [1, lines]);
  const withBase = changeOps({ add: [eve], remove: [] }, TABLE);
  assert.equal(withBase.filter((o) => o.op === "add").length, lines + baseFlows(TABLE).length);
  // A unit written with a cookie per kind: every kind's cookie goes, the base cookie too (older
  // base flows had other priorities, so adding the new ones would not replace them), and the base is re-added.
  const legacy = changeOps({ add: [eve], remove: ["old-port"] }, TABLE, { base: false, legacy: new Set(["eve-0"]) });
  const deletes = legacy.filter((o) => o.op === "delete");
  assert.equal(deletes.length, GUARDS.length + 1 + 1 + 1, "eve-0 kind by kind, old-port's one cookie, the base cookie");
  assert.equal(new Set(deletes.map((d) => d.op === "delete" && d.cookie & 0xffn)).size, GUARDS.length + 1);
  assert.equal(legacy.filter((o) => o.op === "add").length, lines + baseFlows(TABLE).length);
});

test("changeOps() changes a unit the switch holds as this driver sent it by its difference only", () => {
  const before = compileOvs(policies, ofports, TABLE).get("eve-0")!;
  const eve = policies.find((p) => p.port === "eve-0")!;
  const after = compileOvs([{ ...eve, macs: [...eve.macs, "52:54:00:99:00:01" as Mac] }], ofports, TABLE).get("eve-0")!;
  const lines = (text: string): string[] => text.split("\n").filter(Boolean);
  const ops = changeOps({ add: [after], remove: [] }, TABLE, { base: false, previous: new Map([["eve-0", before]]) });
  const added = ops.flatMap((o) => (o.op === "add" ? [o.line] : []));
  assert.deepEqual(added, lines(after.text).filter((l) => !lines(before.text).includes(l)), "only new or changed flows are added");
  assert.ok(added.length > 0 && added.length < lines(after.text).length / 2, `${added.length} of ${lines(after.text).length}`);
  assert.ok(!ops.some((o) => o.op === "delete"), "no whole-unit delete");
  // Back: the flows the new MAC brought are deleted one by one (strict), the changed classify flow re-added.
  const back = changeOps({ add: [before], remove: [] }, TABLE, { base: false, previous: new Map([["eve-0", after]]) });
  const strict = back.flatMap((o) => (o.op === "delete-strict" ? [o.line] : []));
  assert.ok(strict.length > 0 && strict.every((l) => l.includes("52:54:00:99:00:01")), strict.join("\n"));
  assert.match(renderOps(back), /^delete_strict table=\d+,priority=\d+,cookie=0x[0-9a-f]{16}\/-1,in_port=/m);
  // Whole replacement when the previous text is unknown, empty, or an older vifguard's.
  for (const options of [{}, { previous: new Map([["eve-0", { text: "" }]]) }, { previous: new Map([["eve-0", before]]), legacy: new Set(["eve-0"]) }]) {
    const whole = changeOps({ add: [after], remove: [] }, TABLE, { base: false, ...options });
    assert.equal(whole[0]?.op, "delete");
    assert.deepEqual(whole.flatMap((o) => (o.op === "add" && o.line.includes(",cookie=0x") && !baseFlows(TABLE).includes(o.line) ? [o.line] : [])), lines(after.text));
  }
});

test("a flow's priority carries its kind: the rank orders, the low bits name the guard a drop enforces", () => {
  const eve = compileOvs(policies, ofports, TABLE).get("eve-0")!.text.split("\n").filter(Boolean);
  for (const line of eve) {
    const priority = Number(/priority=(\d+)/.exec(line)![1]);
    const drops = / actions=drop$/.test(line);
    assert.equal(guardOfPriority(priority) !== undefined, drops, `drop flows and only they name a guard: ${line}`);
  }
  assert.equal(guardOfPriority(priorityOf(400, kindOf("arp-spoof"))), "arp-spoof");
  assert.ok(priorityOf(401) > priorityOf(400, GUARDS.length), "a higher rank wins over any kind");
});

test("a port whose device is not on the bridge, or has no ofport yet, awaits its device", () => {
  const units = compileOvs(policies, [{ name: "vgg-a", ofport: 1 }, { name: "vgg-e" }], NORMAL);
  assert.deepEqual([...units.values()].filter((u) => !u.awaitingDevice).map((u) => u.key), ["alice-0"]);
  assert.equal(units.get("eve-0")!.awaitingDevice, true, "an interface without an ofport");
  assert.equal(units.get("bob-0")!.text, "");
});

test("a port meets its interface by name or by external_ids:iface-id, a name first", () => {
  const byIfaceId = compileOvs(policies, [{ name: "tap1234", ofport: 9, ifaceId: "vgg-e" }], NORMAL).get("eve-0")!;
  assert.match(byIfaceId.text, /in_port=9,/);
  const both = compileOvs(policies, [{ name: "tap1234", ofport: 9, ifaceId: "vgg-e" }, { name: "vgg-e", ofport: 3 }], NORMAL).get("eve-0")!;
  assert.match(both.text, /in_port=3,/);
});

test("parseDump() reads cookie, table, priority, counters and note", () => {
  const line = ` cookie=0xef0029e409476600, duration=0.033s, table=10, n_packets=3, n_bytes=180, idle_age=0, priority=1600,in_port=4 actions=note:41.42.00,goto_table:11`;
  assert.deepEqual(parseDump(line), [{ cookie: 0xef0029e409476600n, table: 10, priority: 1600, packets: 3, bytes: 180, note: "41.42.00", inPort: 4 }]);
});

test("apply() reports a failed bundle as ApplyError naming the ports", async () => {
  const restore = setRunner(async (command, args) => {
    throw new CommandError({ code: 1, stdout: "", stderr: "OFPBAC_BAD_OUT_PORT", command: [command, ...args].join(" ") });
  });
  try {
    const driver = new OvsDriver({ bridge: "br-x", tableBase: 0 });
    const units = compileOvs(policies, ofports, driver.layout);
    await assert.rejects(driver.apply({ add: [units.get("eve-0")!], remove: [] }), (e: unknown) => e instanceof ApplyError && e.ports.includes("eve-0") && /BAD_OUT_PORT/.test(e.stderr));
  } finally {
    restore();
  }
});

test("OvsDriver rejects a pass table inside vifguard's table range", () => {
  assert.throws(() => new OvsDriver({ bridge: "br", tableBase: 10, pass: { table: 12 } }), RangeError);
});
