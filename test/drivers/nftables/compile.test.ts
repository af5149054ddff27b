// compile(), render and the listing parser of the nftables driver: golden elements per case file, the
// skeleton, and the properties the driver relies on (a one-port change touches only that port's
// elements; a listing round-trips to the compiled digests; apply() retries once on a stale view).
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { test } from "node:test";
import { FAIL_CLOSED_KEY, type Unit } from "../../../src/drivers/contract.ts";
import { compileFailClosed, compileNftables, layoutFor, parseUnitText, portElements } from "../../../src/drivers/nftables/compile.ts";
import { NftablesDriver } from "../../../src/drivers/nftables/driver.ts";
import { dropCounters, observedUnits, parseListing } from "../../../src/drivers/nftables/listing.ts";
import { NOTHING_INSTALLED, renderRemoveAll, renderSkeleton, renderTransaction, SKELETON, type Installed } from "../../../src/drivers/nftables/render.ts";
import { ApplyError } from "../../../src/errors.ts";
import { CommandError, setRunner, type RunResult } from "../../../src/host/run.ts";
import { parsePortFile } from "../../../src/model/port-file.ts";
import { portPolicies, type PlacedPolicy } from "../../../src/policy/port-policy.ts";
import { placeAsNamed } from "../../../src/agent/device-match.ts";

const CASES = new URL("../../golden/cases/", import.meta.url);
const GOLDEN = new URL("../../golden/nftables/", import.meta.url);
const LAYOUT = layoutFor("vifguard");

const load = (file: string): PlacedPolicy[] => placeAsNamed(portPolicies(parsePortFile(readFileSync(new URL(file, CASES), "utf8"), file)));

function goldenText(policies: readonly PlacedPolicy[]): string {
  const units = compileNftables(policies, LAYOUT, SKELETON.version);
  return [...units.values()].map((u) => `# unit ${u.key} port ${u.port} digest ${u.digest}\n${u.text}`).join("\n");
}

function checkGolden(name: string, got: string): void {
  const target = new URL(name, GOLDEN);
  if (process.env.UPDATE_GOLDEN === "1") writeFileSync(target, got);
  assert.equal(got, readFileSync(target, "utf8"), `UPDATE_GOLDEN=1 rewrites ${target.pathname}; read the diff`);
}

test("compile() matches the golden elements of every case", async (t) => {
  mkdirSync(GOLDEN, { recursive: true });
  for (const file of readdirSync(CASES).filter((f) => f.endsWith(".yaml")).sort()) {
    await t.test(file, () => checkGolden(file.replace(/\.yaml$/, ".golden"), goldenText(load(file))));
  }
});

test("the skeleton matches its golden text (every rule vifguard's table holds)", () => {
  checkGolden("skeleton.golden", `# skeleton ${SKELETON.version}\n${renderSkeleton(LAYOUT)}`);
});

const levels = load("nft-levels.yaml");
const pairs = load("nft-pairs.yaml");

test("compile() is deterministic, keyed by device, and every element starts with the port's device", () => {
  const a = compileNftables(levels, LAYOUT, SKELETON.version);
  const b = compileNftables([...levels].reverse(), LAYOUT, SKELETON.version);
  assert.deepEqual([...a.entries()], [...b.entries()]);
  for (const unit of a.values()) {
    for (const e of parseUnitText(unit.text)) assert.ok(e.key.startsWith(`"${unit.key}"`), `${e.set} ${e.key} belongs to ${unit.key}`);
  }
});

test("compile() keeps the MAC and ARP-sender checks with a /0 pair and merges contained CIDRs", () => {
  const full = portElements(levels.find((p) => p.port === "full-0")!);
  const sets = (name: string): string[] => full.elements.filter((e) => e.set === name).map((e) => e.key);
  assert.deepEqual(sets("macs"), ['"tap-full" . 52:54:00:30:00:01']);
  assert.deepEqual(sets("mac_pair"), ['"tap-full" . 52:54:00:30:00:01 . 0x525400300001']);
  assert.deepEqual(sets("v4net"), ['"tap-full" . 52:54:00:30:00:01 . 0.0.0.0/0']);
  assert.deepEqual(sets("v6net"), ['"tap-full" . 52:54:00:30:00:01 . fd00:3::/64'], "fd00:3::/96 is inside fd00:3::/64");
  assert.deepEqual(sets("nd_target_net"), ['"tap-full" . 52:54:00:30:00:01 . 0xfd000003000000000000000000000000-0xfd00000300000000ffffffffffffffff']);
  const off = portElements(levels.find((p) => p.port === "off-0")!);
  assert.deepEqual(off.elements.map((e) => `${e.set} ${e.key}`), ['ports_off "tap-off"']);
  const mac = portElements(levels.find((p) => p.port === "mac-0")!);
  assert.deepEqual([...new Set(mac.elements.map((e) => e.set))], ["ports_mac", "macs", "mac_pair"]);
});

/** What renderTransaction() would see installed after `units` were applied from nothing. */
function installedAfter(units: readonly Unit[]): Installed {
  return renderTransaction(LAYOUT, NOTHING_INSTALLED, { add: units, remove: [] }).after;
}

test("a one-port change deletes exactly that port's old elements and adds its new ones, nothing else", () => {
  const before = compileNftables(pairs, LAYOUT, SKELETON.version);
  const installed = installedAfter([...before.values()]);
  const changed = pairs.map((p) => (p.port === "bob-0" ? { ...p, level: "mac" as const, guards: [] } : p));
  const bob = compileNftables(changed, LAYOUT, SKELETON.version).get("vnet1")!;
  const tx = renderTransaction(LAYOUT, installed, { add: [bob], remove: [] });
  assert.equal(tx.skeleton, false, "the skeleton is there and current");
  const lines = tx.text.trim().split("\n");
  assert.ok(lines.every((l) => /^(add|delete) element bridge vifguard \w+ \{ /.test(l)), tx.text);
  assert.ok(!tx.text.includes('"vnet0"'), "Alice's elements are not touched");
  // Only what differs: the MAC elements stay; the dispatch element moves with its new comment.
  assert.deepEqual(lines.filter((l) => l.startsWith("delete")).map((l) => l.split(" ")[4]), ["ports_full", "v6", "nd_target"]);
  assert.deepEqual(lines.filter((l) => l.startsWith("add")).map((l) => l.split(" ")[4]), ["ports_mac"]);
  assert.match(tx.text, /add element bridge vifguard ports_mac \{ "vnet1" comment "bob-0 [0-9a-f]{16}" \}/);
  assert.deepEqual(tx.after.ports.get("vnet1")!.elements, parseUnitText(bob.text), "after the change the port holds exactly its new elements");

  // A new port id only: the dispatch element is replaced (its comment), nothing else is touched.
  const renamed = compileNftables(pairs.map((p) => (p.port === "bob-0" ? { ...p, port: "bob-1" } : p)), LAYOUT, SKELETON.version).get("vnet1")!;
  const rename = renderTransaction(LAYOUT, installed, { add: [renamed], remove: [] }).text.trim().split("\n");
  assert.deepEqual(rename.map((l) => l.split(" ").slice(0, 5).join(" ")), ["delete element bridge vifguard ports_full", "add element bridge vifguard ports_full"]);

  const removal = renderTransaction(LAYOUT, installed, { add: [], remove: ["vnet1"] });
  assert.ok(!removal.text.includes('"vnet0"'));
  assert.match(removal.text, /^add element bridge vifguard cnt_mac_spoof \{ "vnet1" \}$/m, "its drop counters go too");
  assert.match(removal.text, /^delete element bridge vifguard cnt_mac_spoof \{ "vnet1" \}$/m);
  assert.equal(removal.after.ports.has("vnet1"), false);
  assert.equal(renderTransaction(LAYOUT, removal.after, { add: [], remove: ["vnet1"] }).text.includes("element bridge vifguard ports_"), false, "removing again deletes nothing (idempotent)");
});

test("the first transaction creates the skeleton; a batch of ports is one transaction", () => {
  const units = [...compileNftables([...levels, ...pairs], LAYOUT, SKELETON.version).values()];
  const tx = renderTransaction(LAYOUT, NOTHING_INSTALLED, { add: units, remove: [] });
  assert.equal(tx.skeleton, true);
  assert.match(tx.text, /^add table bridge vifguard\n/);
  assert.equal(tx.text.match(/^add element bridge vifguard ports_full /gm)?.length, 1, "one statement per set for the whole batch");
  assert.equal(renderTransaction(LAYOUT, NOTHING_INSTALLED, { add: [], remove: ["vnet0"] }).text, "", "nothing installed, nothing to remove");
  assert.equal(renderRemoveAll(LAYOUT), "add table bridge vifguard\ndelete table bridge vifguard\n");
});

/** A listing as `nft -j list table` prints it (the forms nft 1.0.6 uses: wrapped elements, prefixes, ranges, hex integers). */
function listingOf(installed: Installed, extra: unknown[] = []): string {
  const items: unknown[] = [{ metainfo: { version: "1.0.6" } }, { table: { family: "bridge", name: "vifguard", handle: 1 } }];
  const add = (o: unknown): number => items.push(o);
  const byset = new Map<string, unknown[]>();
  for (const s of SKELETON.sets) byset.set(s.name, []);
  for (const ports of installed.ports.values()) {
    for (const e of ports.elements) {
      const fields = e.key.split(" . ").map((x, i) => {
        if (i === 0) return x.slice(1, -1);
        const range = /^(0x[0-9a-f]+)-(0x[0-9a-f]+)$/.exec(x);
        if (range) return { range: [range[1]!.replace(/^0x0+/, "0x"), range[2]] };
        const prefix = /^(.*)\/(\d+)$/.exec(x);
        if (prefix) return { prefix: { addr: prefix[1], len: Number(prefix[2]) } };
        return x.startsWith("0x") ? x.replace(/^0x0+/, "0x") : x;
      });
      const val = fields.length === 1 ? fields[0] : { concat: fields };
      byset.get(e.set)!.push(e.set.startsWith("ports_") ? { elem: { val, comment: `${ports.port} 0123456789abcdef` } } : val);
    }
  }
  for (const s of SKELETON.sets) add({ [s.kind]: { family: "bridge", table: "vifguard", name: s.name, elem: byset.get(s.name) } });
  for (const c of SKELETON.chains) {
    add({ chain: { family: "bridge", table: "vifguard", name: c.name } });
    c.rules.forEach((r, i) => add({ rule: { family: "bridge", table: "vifguard", chain: c.name, expr: [], ...(i === 0 && c.name === "from_vm_hook" && { comment: `vifguard skeleton ${SKELETON.version}` }) } }));
  }
  for (const e of extra) add(e);
  return JSON.stringify({ nftables: items });
}

test("parseListing() round-trips installed elements to the compiled digests, and a flushed table changes them", () => {
  const desired = compileNftables([...levels, ...pairs], LAYOUT, SKELETON.version);
  const installed = installedAfter([...desired.values()]);
  const listing = parseListing(listingOf(installed), LAYOUT);
  assert.equal(listing.installed.intact, true);
  const observed = observedUnits(listing.installed, LAYOUT);
  assert.deepEqual([...observed.values()].map((u) => [u.key, u.port, u.digest]), [...desired.values()].map((u) => [u.key, u.port, u.digest]));

  const flushed = JSON.parse(listingOf(installed)) as { nftables: Record<string, unknown>[] };
  flushed.nftables = flushed.nftables.filter((i) => !i.rule);
  const damaged = observedUnits(parseListing(JSON.stringify(flushed), LAYOUT).installed, LAYOUT);
  for (const [key, unit] of desired) assert.notEqual(damaged.get(key)?.digest, unit.digest, `${key} must be re-applied after a flush`);
  assert.equal(parseListing(undefined, LAYOUT).installed.version, undefined);
});

test("parseListing() reads drop counters per port and guard, and the fail-closed rules", () => {
  const installed = installedAfter([...compileNftables(pairs, LAYOUT, SKELETON.version).values()]);
  const extra = [
    { set: { family: "bridge", table: "vifguard", name: "cnt_ra_guard", elem: [{ elem: { val: "vnet0", counter: { packets: 3, bytes: 270 } } }, { elem: { val: "vnet9", counter: { packets: 1, bytes: 60 } } }] } },
    { rule: { family: "bridge", table: "vifguard", chain: "fail_closed_in", comment: "vifguard fail-closed vnet*" } },
    { rule: { family: "bridge", table: "vifguard", chain: "fail_closed_out", comment: "vifguard fail-closed vnet*" } },
  ];
  const json = listingOf(installed, extra).replace(/\{"set":\{"family":"bridge","table":"vifguard","name":"cnt_ra_guard","elem":\[\]\}\},/, "");
  const listing = parseListing(json, LAYOUT);
  assert.deepEqual(dropCounters(listing), [{ port: "alice-0", reason: "ra-guard", packets: 3, bytes: 270 }]);
  const failClosed = compileFailClosed(["vnet*"], LAYOUT, SKELETON.version, FAIL_CLOSED_KEY);
  assert.equal(observedUnits(listing.installed, LAYOUT).get(FAIL_CLOSED_KEY)?.digest, failClosed.digest);
});

test("compileFailClosed() refuses patterns that are not interface names", () => {
  assert.throws(() => compileFailClosed(['vnet" drop'], LAYOUT, SKELETON.version, FAIL_CLOSED_KEY), RangeError);
  assert.throws(() => layoutFor("bad prefix"), RangeError);
});

test("apply() writes one nft -f file per batch and retries once, after re-reading, when nft refuses", async () => {
  const calls: string[][] = [];
  let failures = 1;
  const restore = setRunner(async (command, args, options) => {
    calls.push([command, ...args]);
    const ok = (stdout = ""): RunResult => ({ code: 0, stdout, stderr: "", command: [command, ...args].join(" ") });
    if (args[0] === "-j") return { ...ok(), code: 1, stderr: "Error: No such file or directory" };
    if (args[0] === "-f" && failures-- > 0) {
      const result = { code: 1, stdout: "", stderr: "Error: Could not process rule: No such file or directory", command: "nft -f" };
      if (options?.allowFailure) return result;
      throw new CommandError(result);
    }
    return ok();
  });
  try {
    const driver = new NftablesDriver({ prefix: "vgunit", session: false });
    const units = [...driver.compile(pairs, []).values()];
    const report = await driver.apply({ add: units, remove: [] });
    assert.deepEqual(report.added, ["vnet0", "vnet1"]);
    assert.deepEqual(calls.map((c) => c[1]), ["-j", "-f", "-j", "-f"]);
    failures = 2;
    await assert.rejects(driver.apply({ add: units, remove: [] }), ApplyError);
  } finally {
    restore();
  }
});
