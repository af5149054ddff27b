// The conformance kit against the Open vSwitch driver: the sandbox's switch is a userspace (netdev)
// OVS bridge in ovs-vswitchd's own namespace, with MAC learning off so that NORMAL floods unicast.
// Real frames between network namespaces. Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { installSandboxPolicy, renderReport, runConformance, type ConformanceReport } from "../../src/conformance/run.ts";
import { Sandbox } from "../../src/conformance/sandbox.ts";
import { unprotectedDriver } from "../../src/conformance/unprotected.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import { dropReasonsWithoutCounter } from "../support/conformance.ts";
import { requireRoot } from "../support/needs-root.ts";

function needsRoot(t: TestContext): boolean {
  return requireRoot(t, "runs ovsdb-server and ovs-vswitchd, creates network namespaces and veth pairs");
}

async function sandboxFor(t: TestContext): Promise<Sandbox> {
  const sandbox = await Sandbox.create({ switch: "ovs" });
  t.after(() => sandbox.destroy());
  return sandbox;
}

function failures(report: ConformanceReport): string[] {
  return [
    ...report.cases.filter((r) => r.outcome === "fail").map((r) => `${r.n} ${r.case.name}: expected ${r.expected.join(",") || "nobody"}, arrived ${r.observed.join(",") || "nobody"}`),
    ...report.flows.filter((f) => !f.ok).map((f) => `${f.name}: ${f.detail}`),
  ];
}

test("the OVS driver passes every enforceable case of the conformance kit, and the legit flows", async (t) => {
  if (!needsRoot(t)) return;
  const sandbox = await sandboxFor(t);
  const driver = await createDriver("ovs", sandbox.driverSettings());
  await driver.probe();
  await installSandboxPolicy(driver, sandbox);
  const report = await runConformance({ driver, sandbox });
  t.diagnostic(renderReport(report).split("\n").at(-1)!);
  assert.deepEqual(failures(report), [], renderReport(report));
  assert.ok(report.cases.length >= 70 && report.flows.length === 7);
  // Only cases tied to a limitation the OVS driver declares may differ.
  for (const r of report.cases.filter((c) => c.outcome === "declared")) assert.match(r.excuse ?? "", /^limitation ovs-/, `${r.n} ${r.case.name}`);
  // Every drop reason the kit expects shows up in the driver's counters for Eve's port.
  assert.deepEqual(await dropReasonsWithoutCounter(driver, report), [], "a drop reason without a counter");
});

test("without protection the OVS sandbox floods unicast, so Eve would sniff (anti-sniffing is really tested)", async (t) => {
  if (!needsRoot(t)) return;
  const sandbox = await sandboxFor(t);
  const report = await runConformance({ driver: unprotectedDriver(), sandbox, flows: false });
  assert.equal(report.failed, 0, "with no guard declared nothing can fail");
  const sniffed = report.cases.filter((r) => r.case.story === "7 sniffing" && r.observed.includes("eve") && r.decision.verdict === "allow" && !r.expected.includes("eve"));
  assert.ok(sniffed.some((r) => r.case.name.startsWith("Bob → Alice unicast")), `Eve sees Bob's unicast for Alice without protection: ${sniffed.map((r) => r.case.name).join("; ") || "none"}`);
  const attacks = report.cases.filter((r) => r.decision.verdict === "drop");
  const through = attacks.filter((r) => r.observed.length > 0);
  assert.ok(through.length >= attacks.length - 2, `${through.length} of ${attacks.length} attacks got through`);
});
