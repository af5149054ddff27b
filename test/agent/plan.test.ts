import assert from "node:assert/strict";
import { test } from "node:test";
import type { Unit } from "../../src/drivers/contract.ts";
import { convergedDigests, countDrift, countStates, describeDrops, driftedPorts, dropDeltas, findPort, matchesDevice, planChanges, portStates, splitChanges } from "../../src/agent/plan.ts";

const unit = (key: string, digest: string): Unit => ({ key, port: key, digest, text: "" });
const map = (...units: Unit[]) => new Map(units.map((u) => [u.key, u]));
const awaiting = (key: string, digest = ""): Unit => ({ key, port: key, digest, text: "", awaitingDevice: true });

test("planChanges() adds changed and new units and removes gone ones, leaving equal ones alone", () => {
  const changes = planChanges(map(unit("a", "1"), unit("b", "2"), unit("c", "3")), map(unit("a", "1"), unit("b", "old"), unit("z", "9")));
  assert.deepEqual(changes.add.map((u) => u.key), ["b", "c"]);
  assert.deepEqual(changes.remove, ["z"]);
});

test("planChanges() installs nothing for a unit awaiting its device, and removes what its vanished device left", () => {
  assert.deepEqual(planChanges(map(awaiting("a")), map()), { add: [], remove: [] }, "nothing to add while the device is missing");
  assert.deepEqual(planChanges(map(awaiting("a")), map(unit("a", "1"))), { add: [], remove: ["a"] }, "rules for a device that is gone go");
  assert.deepEqual(planChanges(map(awaiting("a")), map(awaiting("a", "1"))), { add: [], remove: [] }, "an inert binding that awaits the same device stays");
  const ready = unit("a", "1");
  assert.deepEqual(planChanges(map(ready), map(awaiting("a", "1"))), { add: [ready], remove: [] }, "installed without effect (device was missing): re-created once it is there");
});

test("an absent device is never drift: twenty syncs plan nothing, and the first sync after it appears installs it", () => {
  let installed = map();
  let converged = new Map<string, string>();
  const drifts: number[] = [];
  for (let sync = 0; sync < 20; sync++) {
    const desired = map(awaiting("a"), unit("b", "2"));
    const changes = planChanges(desired, installed);
    drifts.push(countDrift(changes, desired, converged));
    installed = map(...[...installed.values()].filter((u) => !changes.remove.includes(u.key)), ...changes.add);
    converged = convergedDigests(desired);
  }
  assert.deepEqual(drifts, Array(20).fill(0));
  const desired = map(unit("a", "1"), unit("b", "2"));
  const changes = planChanges(desired, installed);
  assert.deepEqual(changes.add.map((u) => u.key), ["a"]);
  assert.equal(countDrift(changes, desired, converged), 0);
});

test("splitChanges() makes bounded batches, removals first", () => {
  const add = Array.from({ length: 5 }, (_, i) => unit(`p${i}`, "d"));
  const batches = splitChanges({ add, remove: ["x", "y", "z"] }, 2);
  assert.deepEqual(batches.map((b) => [b.remove.length, b.add.length]), [[2, 0], [1, 0], [0, 2], [0, 2], [0, 1]]);
  assert.deepEqual(splitChanges({ add: [], remove: [] }, 10), []);
});

test("countDrift() counts units that changed behind our back, not ones we want changed", () => {
  const desired = map(unit("a", "1"), unit("b", "2new"));
  const converged = new Map([["a", "1"], ["b", "2"]]);
  // a was deleted by hand (drift); b changes because the desired state did (no drift); z appeared by hand (drift).
  assert.equal(countDrift({ add: [unit("a", "1"), unit("b", "2new")], remove: ["z"] }, desired, converged), 2);
  assert.equal(countDrift({ add: [unit("a", "1")], remove: [] }, desired, new Map()), 0, "after a restart nothing is drift");
});

test("driftedPorts() names the ports of re-added units once each, not of units the desired state changed", () => {
  const two = (key: string, port: string, digest: string): Unit => ({ key, port, digest, text: "" });
  const converged = new Map([["a/in", "1"], ["a/out", "2"], ["b", "3"], ["c", "4"]]);
  // a's two units were deleted by hand, b's desired digest changed, c is as it was (not planned), z appeared by hand.
  const changes = { add: [two("a/in", "a", "1"), two("a/out", "a", "2"), two("b", "b", "3new")], remove: ["z"] };
  assert.deepEqual(driftedPorts(changes, converged), ["a"]);
  assert.deepEqual(driftedPorts(changes, new Map()), [], "after a restart nothing is drift");
});

test("matchesDevice() knows nft's trailing-star wildcard", () => {
  assert.ok(matchesDevice("vnet*", "vnet12"));
  assert.ok(matchesDevice("vnet*", "vnet"));
  assert.ok(!matchesDevice("vnet*", "tap0"));
  assert.ok(matchesDevice("eth0", "eth0"));
  assert.ok(!matchesDevice("eth0", "eth01"));
});

test("portStates() shows a port waiting for its device as awaiting-device, and countStates() counts it", () => {
  const states = portStates(["a", "b"], map(awaiting("a"), unit("b", "1")), map(unit("b", "1")), new Set());
  assert.deepEqual(Object.fromEntries(states), { a: "awaiting-device", b: "enforced" });
  assert.deepEqual(countStates(states), { enforced: 1, pending: 0, "awaiting-device": 1, "ambiguous-device": 0, unplugged: 0 });
});

test("portStates() tells enforced, pending and unplugged ports apart", () => {
  const desired = map(unit("a", "1"), unit("b", "2"));
  const states = portStates(["a", "b", "c"], desired, map(unit("a", "1"), unit("b", "x")), new Set(["c"]));
  assert.deepEqual(Object.fromEntries(states), { a: "enforced", b: "pending", c: "unplugged" });
});

test("dropDeltas() reports rises per port and reason; a reset counter counts from zero", () => {
  const before = [{ port: "eve-0", reason: "arp-spoof", packets: 10 }, { port: "eve-0", reason: "mac-spoof", packets: 5 }, { port: "bob-0", reason: "vlan", packets: 100 }];
  const after = [{ port: "eve-0", reason: "arp-spoof", packets: 40 }, { port: "eve-0", reason: "mac-spoof", packets: 5 }, { port: "bob-0", reason: "vlan", packets: 3 }, { port: "new-0", reason: "ra-guard", packets: 7 }];
  assert.deepEqual(dropDeltas(before, after), [
    { port: "eve-0", reason: "arp-spoof", packets: 30 },
    { port: "new-0", reason: "ra-guard", packets: 7 },
    { port: "bob-0", reason: "vlan", packets: 3 },
  ]);
});

test("describeDrops() makes one line per port", () => {
  const lines = describeDrops([{ port: "eve-0", reason: "arp-spoof", packets: 30 }, { port: "eve-0", reason: "mac-spoof", packets: 7 }, { port: "bob-0", reason: "vlan", packets: 1 }]);
  assert.deepEqual(lines.map((l) => l.message), ["port eve-0 dropped 37 frames: arp-spoof 30, mac-spoof 7", "port bob-0 dropped 1 frame: vlan"]);
  assert.equal(describeDrops([{ port: "eve-0", reason: "arp-spoof", packets: 37 }])[0]!.message, "port eve-0 dropped 37 frames: arp-spoof");
});

test("findPort() finds a port by id, device or MAC", () => {
  const ports = [{ port: "alice-0", device: "vnet0", macs: ["52:54:00:00:00:01"] }, { port: "vnet0x", device: "tap1", macs: ["52:54:00:00:00:02"] }];
  assert.equal(findPort(ports, "alice-0")?.port, "alice-0");
  assert.equal(findPort(ports, "tap1")?.port, "vnet0x");
  assert.equal(findPort(ports, "52:54:00:00:00:02".toUpperCase())?.port, "vnet0x");
  assert.equal(findPort(ports, "nope"), undefined);
});
