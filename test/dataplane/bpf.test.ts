// The bpf driver's life cycle on the kernel (the conformance kit proves what it enforces): ports
// await their devices, install with the digests compile() gave (no false drift), change in place,
// go (their tap loses the programs); the fail-closed unit puts the programs on a matching device
// that appears later (observe() reports it as drift until then); removeAll() leaves nothing pinned
// or attached. Needs root.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { createBpfDriver } from "../../src/drivers/bpf/index.ts";
import { FAIL_CLOSED_KEY, type UnitMap } from "../../src/drivers/contract.ts";
import { addNetns, deleteNetns } from "../../src/conformance/lab/net.ts";
import { run } from "../../src/host/run.ts";
import { parsePortFile } from "../../src/model/port-file.ts";
import { placeAsNamed } from "../../src/agent/device-match.ts";
import { portPolicies } from "../../src/policy/port-policy.ts";
import { requireRoot } from "../support/needs-root.ts";

const digests = (units: UnitMap): [string, string][] => [...units.values()].filter((u) => !u.awaitingDevice).map((u): [string, string] => [u.key, u.digest]).sort();

test("bpf driver: await, install without drift, change, fail closed on a new device, remove, removeAll", async (t) => {
  if (!requireRoot(t, "creates a network namespace and loads BPF programs")) return;
  const id = randomBytes(3).toString("hex");
  const netns = `vgbpf${id}`;
  await addNetns(netns);
  const driver = createBpfDriver({ netns, prefix: `vgbpf${id}` });
  t.after(async () => {
    await driver.removeAll().catch(() => undefined);
    await deleteNetns(netns);
  });
  const ip = (...args: string[]) => run("ip", args, { netns });
  const filters = async (dev: string): Promise<string> => (await run("tc", ["filter", "show", "dev", dev, "ingress"], { netns })).stdout + (await run("tc", ["filter", "show", "dev", dev, "egress"], { netns })).stdout;
  const portFile = (level: string) =>
    JSON.stringify({
      networks: [{ id: "n", tenant: "p" }],
      ports: [
        { id: "a-0", tenant: "p", network: "n", device: "vgt-a", mac: "52:54:00:77:00:01", ips: ["10.77.0.1", "2001:db8:77::1"], protection: level },
        { id: "b-0", tenant: "p", network: "n", device: "vgt-b", mac: "52:54:00:77:00:02", ips: ["10.77.0.2"], allowed: [{ ip: "10.77.0.8/29" }, { ip: "10.77.1.9", mac: "52:54:00:77:aa:02" }] },
      ],
    });
  const policies = placeAsNamed(portPolicies(parsePortFile(portFile("full"), "t")));
  await driver.probe();

  // Absent devices: every port awaits, nothing to apply, nothing observed.
  let observed = await driver.observe();
  assert.ok([...driver.compile(policies, observed.devices).values()].every((u) => u.awaitingDevice));
  assert.deepEqual(digests(observed.units), []);

  for (const dev of ["vgt-a", "vgt-b"]) await ip("link", "add", dev, "type", "veth", "peer", "name", `${dev}-p`);
  observed = await driver.observe();
  const compiled = driver.compile(policies, observed.devices);
  await driver.apply({ add: [...compiled.values()], remove: [] });
  observed = await driver.observe();
  assert.deepEqual(digests(observed.units), digests(compiled), "what observe() reads back is what compile() made");
  assert.match(await filters("vgt-a"), /from_vm[\s\S]*to_vm/, "both programs on a's device");

  // A change in place (a to level mac) replaces a's entries; b's stay.
  const changed = driver.compile(placeAsNamed(portPolicies(parsePortFile(portFile("mac"), "t"))), observed.devices);
  assert.notEqual(changed.get("a-0")!.digest, compiled.get("a-0")!.digest);
  await driver.apply({ add: [changed.get("a-0")!], remove: [] });
  assert.deepEqual(digests((await driver.observe()).units), digests(changed));

  // Fail closed on vgfc*: a matching device that appears later is drift until applied again.
  const failClosed = driver.compileFailClosed(["vgfc*"]);
  await driver.apply({ add: [failClosed], remove: [] });
  assert.equal((await driver.observe()).units.get(FAIL_CLOSED_KEY)?.digest, failClosed.digest);
  await ip("link", "add", "vgfc0", "type", "veth", "peer", "name", "vgfc0-p"); // vgfc0-p matches too
  assert.notEqual((await driver.observe()).units.get(FAIL_CLOSED_KEY)?.digest, failClosed.digest, "a matching device without the programs is drift");
  await driver.apply({ add: [failClosed], remove: [] });
  assert.equal((await driver.observe()).units.get(FAIL_CLOSED_KEY)?.digest, failClosed.digest);
  assert.match(await filters("vgfc0"), /from_vm/);

  // Removing a port takes the programs off its device (no pattern keeps them there).
  await driver.apply({ add: [], remove: ["b-0"] });
  observed = await driver.observe();
  assert.deepEqual([...observed.units.keys()].sort(), [FAIL_CLOSED_KEY, "a-0"]);
  assert.doesNotMatch(await filters("vgt-b"), /from_vm|to_vm/);

  await driver.removeAll();
  assert.doesNotMatch(await filters("vgt-a"), /from_vm|to_vm/);
  assert.doesNotMatch(await filters("vgfc0"), /from_vm|to_vm/);
  assert.equal(existsSync(driver.prefixDir), false, "nothing stays pinned");
});
