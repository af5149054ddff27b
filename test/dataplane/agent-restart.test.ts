// kill -9 of the agent (a real `bin/vifguard agent` process) in the middle of applying 1,000 ports,
// then a restart: the host converges, and Eve's spoofed frames, streamed through the whole restart,
// never reach Bob (captured on Bob's side). Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { test } from "node:test";
import * as f from "../../src/policy/frame-builder.ts";
import { AgentLab, hex, marker, needsNftables, needsRoot, settle, waitFor } from "../agent/dataplane-lab.ts";
import { ALICE, BOB, EVE, type PortSpec } from "../agent/fixture.ts";

const BASE = [ALICE, EVE, BOB];

/** 1,000 more ports on devices that do not exist (nft matches names: rules wait for the device). */
function many(n: number): PortSpec[] {
  const byte = (v: number): string => v.toString(16).padStart(2, "0");
  return Array.from({ length: n }, (_, i) => ({ id: `vm-${i}`, tenant: `t${i}`, device: `vnetx${i}`, mac: `52:54:01:00:${byte(i >> 8)}:${byte(i & 0xff)}`, ips: [`10.${1 + (i >> 8)}.${i & 0xff}.1`] }));
}

test("agent dataplane: kill -9 in the middle of applying 1,000 ports, restart: converges, 0 spoofed frames through", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lab = await AgentLab.start(t, "vgrs");
  for (const spec of BASE) await lab.addGuest(spec);
  await lab.writePorts(BASE);
  // One port per transaction: with the long-lived nft session a batch of 50 lands in a few
  // milliseconds, so the 1,000 ports could all land before the kill does.
  await lab.startAgent({ reconcile: { intervalMs: 5000, debounceMs: 50, batchSize: 1 } });
  await waitFor(() => lab.converged(BASE), 20_000, "first sync");

  const spoof = marker();
  const legit = marker();
  const sniff = lab.sniff("bob-0", [spoof, legit], 300);
  await sniff.ready;
  // Eve: from Alice's IP, and a gratuitous ARP for it; Alice: legitimate frames, through the whole restart.
  const eve = lab.stream(
    "eve-0",
    [
      f.withTrailer(f.ether(BOB.mac, EVE.mac, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), spoof),
      f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE.mac, 0x0806, f.arp({ op: 2, sha: EVE.mac, spa: "10.0.0.1", tpa: "10.0.0.1" })), spoof),
      f.withTrailer(f.ether(BOB.mac, ALICE.mac, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), spoof),
    ],
    0,
    2,
  );
  const alice = lab.stream("alice-0", [f.withTrailer(f.ether(BOB.mac, ALICE.mac, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), legit)], 0, 10);
  await settle(500);

  // 1,000 new ports, and Eve's own port changes (an extra address) so hers is replaced too.
  const target = [ALICE, { ...EVE, ips: ["10.0.0.2", "10.0.0.22"] }, BOB, ...many(1000)];
  await lab.writePorts(target);
  let installedAtKill = 0;
  await waitFor(async () => {
    installedAtKill = (await lab.driver.observe()).units.size;
    return installedAtKill > BASE.length + 1 + 20; // the first of the 1,000 landed
  }, 60_000, "the first of the 1,000 ports", 5);
  lab.agent!.child.kill("SIGKILL");
  const killedAt = performance.now();
  await lab.agent!.exited;
  const afterKill = (await lab.driver.observe()).units.size;
  t.diagnostic(`killed -9 with ${installedAtKill}-${afterKill} of ${target.length + 1} units installed`);
  assert.ok(afterKill < target.length + 1, "killed in the middle: not everything was installed yet");

  await lab.startAgent({ reconcile: { intervalMs: 5000, debounceMs: 50, batchSize: 50 } }, false);
  const convergedMs = await waitFor(() => lab.converged(target), 120_000, "convergence after the restart", 50);
  t.diagnostic(`restarted agent converged ${convergedMs.toFixed(0)} ms after its start (${(performance.now() - killedAt).toFixed(0)} ms after the kill)`);

  await settle(1000);
  eve.stop();
  alice.stop();
  const [sentSpoofed, sentLegit] = await Promise.all([eve.done, alice.done]);
  sniff.stop("alice-0"); // a control frame that must arrive, after the frames counted
  const counts = await sniff.counts;
  t.diagnostic(`Eve sent ${sentSpoofed} spoofed frames through the restart, ${counts[hex(spoof)]} reached Bob; Alice's legitimate frames: ${counts[hex(legit)]} of ${sentLegit}`);
  assert.ok(sentSpoofed > 500, "Eve streamed the whole time");
  assert.equal(counts[hex(spoof)], 0, "no spoofed frame got through");
  assert.equal(counts[hex(legit)], sentLegit, "Alice's port, untouched by the restart, lost nothing");
});
