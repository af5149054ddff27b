// Ports found by MAC on a real dataplane (issue 13): a port file that names no device, guests whose
// host-side taps carry the guest MAC with the first octet fe (as libvirt and Xen give them), and the
// real agent (bin/vifguard agent, nftables). A guest "restarted" under a new vnetN is protected again
// without any change to the port file. Legitimate frames from the bound port must arrive (fail-closed
// alone would drop them), spoofed ones must not. Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import * as f from "../../src/policy/frame-builder.ts";
import { run } from "../../src/host/run.ts";
import { AgentLab, hex, marker, needsNftables, needsRoot, waitFor } from "../agent/dataplane-lab.ts";
import { ALICE, BOB, EVE, type PortSpec } from "../agent/fixture.ts";

const tapMac = (mac: string): string => `fe${mac.slice(2)}`;

/** The fixture's shared network, with ports that name no device. */
function portFileWithoutDevices(ports: readonly PortSpec[]): string {
  const lines = ["networks:", "  - { id: public, tenant: provider, shared: true, protection: full }", "ports:"];
  for (const p of ports) lines.push(`  - { id: ${p.id}, tenant: ${p.tenant}, network: public, mac: "${p.mac}", ips: [${p.ips.map((ip) => `"${ip}"`).join(", ")}] }`);
  return lines.join("\n") + "\n";
}

async function plug(lab: AgentLab, spec: PortSpec): Promise<void> {
  await lab.addGuest(spec);
  // The hypervisor's tap takes the guest MAC with the first octet fe; the port file says nothing of it.
  await run("ip", ["link", "set", spec.device, "address", tapMac(spec.mac)], { netns: lab.hostNetns });
}

const named = (device: string): RegExp => new RegExp(`(^|[^\\w*])${device}(?![\\w*])`, "m");

/** Eve's own frame (must arrive once her port is bound) and her frame from Alice's IP (must drop). */
async function eveTraffic(lab: AgentLab): Promise<{ legit: number; spoof: number }> {
  const legit = marker();
  const spoof = marker();
  const sniff = lab.sniff("bob-0", [legit, spoof], 20);
  await sniff.ready;
  const frames = [
    f.withTrailer(f.ether(BOB.mac, EVE.mac, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3")), legit),
    f.withTrailer(f.ether(BOB.mac, EVE.mac, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), spoof),
  ];
  await lab.stream("eve-0", frames, 20, 5).done; // 20 frames, cycling: 10 of each
  sniff.stop("alice-0"); // Alice's control frame must arrive after the frames counted
  const counts = await sniff.counts;
  return { legit: counts[hex(legit)] ?? 0, spoof: counts[hex(spoof)] ?? 0 };
}

test("agent dataplane: ports without a device are bound to the tap carrying their MAC, and again after a restart under a new vnetN", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lab = await AgentLab.start(t, "vgmb");
  const ports = [ALICE, EVE, BOB];
  for (const spec of ports) await plug(lab, spec);
  await lab.writePorts(portFileWithoutDevices(ports));
  const written = await readFile(lab.file, "utf8");
  await lab.startAgent();

  await waitFor(async () => {
    const rules = await lab.ruleset();
    return ports.every((p) => named(p.device).test(rules));
  }, 20_000, "every port bound to its tap by MAC");
  const first = await eveTraffic(lab);
  assert.equal(first.spoof, 0, "Eve's frame from Alice's address is dropped");
  assert.equal(first.legit, 10, "Eve's own frames pass: her port is bound, not merely failed closed");

  // The VM is destroyed and started again: its tap goes, a new one (vnet9) comes with the same MAC.
  await run("ip", ["link", "del", EVE.device], { netns: lab.hostNetns });
  const restarted: PortSpec = { ...EVE, device: "vnet9" };
  const started = performance.now();
  await plug(lab, restarted);
  await waitFor(async () => named("vnet9").test(await lab.ruleset()), 20_000, "Eve's port bound to vnet9");
  t.diagnostic(`re-bound to the new tap ${(performance.now() - started).toFixed(0)} ms after it appeared`);
  assert.doesNotMatch(await lab.ruleset(), named(EVE.device), "nothing is left for the old tap");
  const again = await eveTraffic(lab);
  assert.equal(again.spoof, 0, "after the restart, Eve's spoofed frame is dropped");
  assert.equal(again.legit, 10, "after the restart, Eve's own frames pass");
  assert.equal(await readFile(lab.file, "utf8"), written, "the port file was never changed");
});
