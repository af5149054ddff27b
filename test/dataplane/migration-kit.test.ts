// The conformance kit's attack stories across two hypervisors, after live migrations: the migration
// lab (src/demo/migration/lab.ts: a controller, one agent process with the nftables driver per
// hypervisor) moves Alice from hv1 to hv2 (Eve and Bob are there: the same hypervisor) and back to
// hv1 (Eve and Bob on the other one), and after each move every case of src/conformance/cases.ts
// is sent as a real frame and judged as src/conformance/run.ts judges it: the sender's policy
// (from-vm) and each receiver's (to-vm) by the reference evaluator, with the policies the
// controller hands to the agents. Needs root and nftables (skips with the reason; fails under CI=true).
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { buildCases, type Addresses, type Case } from "../../src/conformance/cases.ts";
import { SUBNET4, SUBNET6 } from "../../src/conformance/sandbox.ts";
import { captureCases, controlFrame, marked, sendFrames } from "../../src/conformance/wire.ts";
import { MigrationLab, type GuestName, type Host, type MigrationFigures } from "../../src/demo/migration/lab.ts";
import { evaluate, type Decision } from "../../src/policy/evaluate.ts";
import { needsNftables, needsRoot } from "../agent/dataplane-lab.ts";

type Outcome = "pass" | "fail" | "declared";
type Result = Readonly<{ n: number; case: Case; decision: Decision; expected: GuestName[]; observed: GuestName[]; outcome: Outcome; excuse?: string }>;
const NAMES: readonly GuestName[] = ["alice", "eve", "bob"];

/**
 * Sends every case of the attack table from its guest and reports where each arrived, against where
 * the reference evaluator says it must: the sender's port lets it out and each receiver's port lets
 * it in (every receiver here has a port, so nothing is left to the switch). A mismatch is declared,
 * not failed, when the case names a limitation the driver declares (as in run.ts).
 */
async function attackStories(lab: MigrationLab, children: Set<ChildProcess>): Promise<Result[]> {
  const guests = new Map(lab.guests().map((g) => [g.name, g]));
  const policies = await lab.policies();
  const address = (name: GuestName) => ({ mac: guests.get(name)!.mac, ipv4: guests.get(name)!.ipv4, ipv6: guests.get(name)!.ipv6 });
  // The table addresses a gateway only in the sandbox; here it is an address nobody holds.
  const addresses: Addresses = { alice: address("alice"), eve: address("eve"), bob: address("bob"), gw: { mac: "52:54:00:00:00:fe", ipv4: `${SUBNET4}.254`, ipv6: `${SUBNET6}::fe` } };
  const cases = buildCases(addresses);
  const mark = `VGK${randomBytes(3).toString("hex")}`;
  const captures = NAMES.map((g) => [g, captureCases(guests.get(g)!.netns, "eth0", mark, cases.length, children)] as const);
  await Promise.all(captures.map(([, c]) => c.ready));
  for (const sender of NAMES) {
    const frames = cases.flatMap((c, i) => (c.from === sender ? [marked(c.frame, mark, i + 1)] : []));
    await sendFrames(guests.get(sender)!.netns, "eth0", frames, 2, children);
  }
  // The control frames, last: Alice's reaches Eve and Bob, Bob's reaches Alice.
  for (const sender of ["alice", "bob"] as const) await sendFrames(guests.get(sender)!.netns, "eth0", [controlFrame(guests.get(sender)!, mark)], 0, children);
  const seen = new Map<GuestName, Set<number>>();
  for (const [g, c] of captures) seen.set(g, await c.stop());
  const limitations = [...lab.driver("hv1").capabilities.limitations, ...lab.driver("hv2").capabilities.limitations];
  return cases.map((c, i) => {
    const n = i + 1;
    const from = c.from as GuestName;
    const decision = evaluate(policies.get(from)!, c.frame, "from-vm");
    const expected = decision.verdict === "drop" ? [] : NAMES.filter((g) => g !== from && evaluate(policies.get(g)!, c.frame, "to-vm").verdict !== "drop");
    const observed = NAMES.filter((g) => g !== from && seen.get(g)!.has(n));
    const match = expected.length === observed.length && expected.every((g) => observed.includes(g));
    const excuse = limitations.find((l) => l.cases?.includes(c.name))?.id;
    const outcome: Outcome = match ? "pass" : excuse ? "declared" : "fail";
    return { n, case: c, decision, expected, observed, outcome, ...(!match && excuse && { excuse }) };
  });
}

/** One line per story: cases, passed, declared, failed, and what the failures were. */
function summary(results: readonly Result[]): string[] {
  const stories = new Map<string, Result[]>();
  for (const r of results) stories.set(r.case.story, [...(stories.get(r.case.story) ?? []), r]);
  return [...stories].map(([story, rs]) => {
    const count = (o: Outcome) => rs.filter((r) => r.outcome === o).length;
    const drops = rs.filter((r) => r.decision.verdict === "drop").length;
    const failures = rs.filter((r) => r.outcome === "fail").map((r) => `#${r.n} ${r.case.name}: expected at ${r.expected.join(",") || "nobody"}, arrived at ${r.observed.join(",") || "nobody"}`);
    return `${story}: ${rs.length} frames (${drops} dropped at the sender), ${count("pass")} passed, ${count("declared")} declared, ${count("fail")} failed${failures.length ? `: ${failures.join("; ")}` : ""}`;
  });
}

test("after live migrations, Eve's attack stories fail against Alice on the destination, from the same and from the other hypervisor", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lines: string[] = [];
  const lab = await MigrationLab.create((line) => lines.push(line));
  const children = new Set<ChildProcess>();
  t.after(async () => {
    for (const child of children) child.kill("SIGKILL");
    await lab.cleanup();
    t.diagnostic(lines.join("\n"));
  });
  await lab.start();

  const where = (host: Host, of: GuestName) => (lab.guests().find((g) => g.name === of)!.host === host ? "the same hypervisor" : "the other hypervisor");
  for (const to of ["hv2", "hv1"] as const) {
    await t.test(`Alice migrates to ${to}, then Eve attacks her from ${where(to, "eve")}`, async () => {
      const started = performance.now();
      const moved: MigrationFigures = await lab.migrate();
      assert.equal(moved.to, to);
      assert.equal(moved.spoofedThrough, 0, "no spoofed frame got through during the migration");
      assert.equal(moved.pingLostBefore + moved.pingLostAfter, 0, `pings lost only at the switch-over (at ${moved.lostOffsetsMs.join(", ")} ms)`);
      const migratedMs = performance.now() - started;
      // Bridges that learn nothing flood every unicast: Eve's anti-sniffing filter is really tested.
      await lab.setFlooding(true);
      const results = await attackStories(lab, children);
      await lab.setFlooding(false);
      const policies = await lab.policies();
      assert.equal(policies.get("alice")!.device, "vnet0");
      t.diagnostic(`Alice on ${to}, Eve and Bob on hv2 (${where(to, "eve")}); migration ${migratedMs.toFixed(0)} ms, attack table ${(performance.now() - started - migratedMs).toFixed(0)} ms`);
      for (const line of summary(results)) t.diagnostic(line);
      for (const story of ["1 IP spoof", "2 MAC+IP spoof", "3 ARP poisoning", "4 IPv6 / ND / RA"]) {
        assert.ok(results.some((r) => r.case.story === story && r.decision.verdict === "drop"), `story ${story} has attacks`);
      }
      // Each attack on Alice or her addresses was stopped, and each of her legitimate frames from the destination arrived.
      const failed = results.filter((r) => r.outcome === "fail");
      assert.deepEqual(failed.map((r) => `#${r.n} ${r.case.story}: ${r.case.name} expected at ${r.expected.join(",") || "nobody"}, arrived at ${r.observed.join(",") || "nobody"}`), []);
      assert.ok(results.filter((r) => r.case.from === "alice").every((r) => r.outcome === "pass" && r.observed.length > 0), "Alice's own frames (her VIP, her NA, her unicast) left the destination");
      assert.ok(results.filter((r) => r.outcome === "declared").every((r) => r.excuse === "nft-truncated-reason"), "only the nftables driver's declared limitation excuses a case");
    });
  }
});
