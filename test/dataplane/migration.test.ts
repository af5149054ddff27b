// Live migration end to end with real packets: two hypervisors (network namespaces with a bridge
// each, joined by a veth wire), one controller, one `vifguard agent` process per hypervisor with the
// nftables driver. Alice moves from hv1 to hv2 and back while Eve streams spoofed frames and Bob
// pings her every 10 ms; the hooks run as libvirt's would (migrate-in on the destination before the
// switch-over, migrate-out on the source after it). Needs root and the nftables driver (skips with
// the reason; fails under CI=true).
import assert from "node:assert/strict";
import { test } from "node:test";
import { MigrationLab, placeLosses, type MigrationFigures } from "../../src/demo/migration/lab.ts";
import { needsNftables, needsRoot } from "../agent/dataplane-lab.ts";

test("placeLosses() places each lost ping before, at or after the switch-over, and finds the longest silence", () => {
  const sent = [0, 10, 20, 30, 40, 50, 60, 70, 80];
  const got = placeLosses(sent, new Set([0, 1, 4, 5, 7, 8]), 40, 45, 10);
  assert.deepEqual(got, { lost: 3, before: 1, at: 1, after: 1, offsets: [-20, -10, 20], longestGapMs: 30, gapStartMs: -30 });
});

test("live migration: no spoofed frame gets through, the source keeps Alice's rules until the switch-over, and only the switch-over loses pings", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lines: string[] = [];
  const lab = await MigrationLab.create((line) => lines.push(line));
  t.after(async () => {
    await lab.cleanup();
    t.diagnostic(lines.join("\n"));
  });
  await lab.start();
  const all: MigrationFigures[] = [];
  for (const [from, to] of [["hv1", "hv2"], ["hv2", "hv1"]] as const) {
    await t.test(`${from} → ${to}`, async () => {
      const figures = await lab.migrate();
      all.push(figures);
      t.diagnostic(JSON.stringify(figures));
      assert.deepEqual([figures.from, figures.to], [from, to]);
      assert.ok(figures.spoofedSent > 1_000, `Eve streamed (${figures.spoofedSent} frames)`);
      assert.equal(figures.spoofedThrough, 0, "no spoofed frame arrived at Alice, at Bob or on the wire");
      assert.ok(figures.samples > 10, `the dataplanes were sampled (${figures.samples})`);
      assert.equal(figures.gapSamples, 0, "at no sample did neither hypervisor hold Alice's rules");
      assert.equal(figures.sourceGoneEarlySamples, 0, "the source held Alice's rules at every sample before the switch-over");
      assert.ok(figures.destinationInstalledMs < figures.switchOverMs, `${to} held Alice's rules (${figures.destinationInstalledMs.toFixed(0)} ms) before the switch-over (${figures.switchOverMs.toFixed(0)} ms)`);
      assert.ok(figures.sourceCleanMs > figures.switchOverMs, `${from} dropped Alice's rules (${figures.sourceCleanMs.toFixed(0)} ms) after the switch-over (${figures.switchOverMs.toFixed(0)} ms)`);
      assert.ok(figures.migrationEndedMs > figures.switchOverMs, "the controller ended the migration after the switch-over, when the source released the port");
      assert.ok(figures.pingSent > 100, `Bob kept pinging (${figures.pingSent})`);
      assert.equal(figures.pingLostBefore, 0, `no ping lost before the switch-over (lost at ${figures.lostOffsetsMs.join(", ")} ms)`);
      assert.equal(figures.pingLostAfter, 0, `no ping lost after the switch-over (lost at ${figures.lostOffsetsMs.join(", ")} ms)`);
      // The lab's switch-over takes 10-30 ms: one to three 10 ms pings. Bounded with room for a loaded host.
      assert.ok(figures.pingLostAt <= 5, `${figures.pingLostAt} pings lost at the switch-over (${figures.switchDurationMs.toFixed(0)} ms)`);
      assert.ok(figures.repliesAfter > 0 && figures.repliesAfter6 > 0, `Bob reaches Alice on ${to} after the migration (IPv4 ${figures.repliesAfter}/3, IPv6 ${figures.repliesAfter6}/3)`);
      assert.ok(figures.eveDropsReported > 0, "Eve's agent reported her drops to the controller");
    });
  }
  t.diagnostic(`pings lost per migration: ${all.map((f) => `${f.from}→${f.to} ${f.pingLost}/${f.pingSent} (at ${f.lostOffsetsMs.join(", ")} ms from the switch-over's start, which took ${f.switchDurationMs.toFixed(0)} ms)`).join("; ")}`);
});
