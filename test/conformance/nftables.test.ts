// The conformance kit against the nftables driver, and against no protection at all (which proves
// the kit sees attacks get through). Real frames between network namespaces. Needs root.
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { installSandboxPolicy, renderReport, runConformance } from "../../src/conformance/run.ts";
import { Sandbox } from "../../src/conformance/sandbox.ts";
import { unprotectedDriver } from "../../src/conformance/unprotected.ts";
import { createNftablesDriver } from "../../src/drivers/nftables/index.ts";
import { dropReasonsWithoutCounter } from "../support/conformance.ts";
import { requireRoot } from "../support/needs-root.ts";

function needsRoot(t: TestContext): boolean {
  return requireRoot(t, "creates network namespaces, veth pairs and a bridge");
}

async function sandboxFor(t: TestContext): Promise<Sandbox> {
  const sandbox = await Sandbox.create();
  t.after(() => sandbox.destroy());
  return sandbox;
}

test("the nftables driver passes every enforceable case of the conformance kit, and the legit flows", async (t) => {
  if (!needsRoot(t)) return;
  const sandbox = await sandboxFor(t);
  const driver = createNftablesDriver({ netns: sandbox.hypervisor, prefix: `vgc${sandbox.id}` });
  t.after(() => driver.close()); // its long-lived nft and ip processes hold the namespace
  await driver.probe();
  await installSandboxPolicy(driver, sandbox);
  const report = await runConformance({ driver, sandbox });
  t.diagnostic(renderReport(report).split("\n").at(-1)!);
  const failures = [...report.cases.filter((r) => r.outcome === "fail").map((r) => `${r.n} ${r.case.name}: expected ${r.expected.join(",") || "nobody"}, arrived ${r.observed.join(",") || "nobody"}`), ...report.flows.filter((f) => !f.ok).map((f) => `${f.name}: ${f.detail}`)];
  assert.deepEqual(failures, [], renderReport(report));
  assert.ok(report.cases.length >= 70 && report.flows.length === 7);
  // Only cases tied to a limitation the driver declares may differ.
  for (const r of report.cases.filter((c) => c.outcome === "declared")) assert.match(r.excuse ?? "", /limitation nft-/);
  // Every drop reason the kit expects shows up in the driver's counters for Eve's port.
  assert.deepEqual(await dropReasonsWithoutCounter(driver, report), [], "a drop reason without a counter");
});

test("without protection the kit sees Eve's attacks get through (each shown as not enforced)", async (t) => {
  if (!needsRoot(t)) return;
  const sandbox = await sandboxFor(t);
  const driver = unprotectedDriver();
  await installSandboxPolicy(driver, sandbox);
  const report = await runConformance({ driver, sandbox, flows: false });
  const attacks = report.cases.filter((r) => r.decision.verdict === "drop");
  const through = attacks.filter((r) => r.observed.length > 0);
  assert.equal(report.failed, 0, "with no guard declared nothing can fail");
  assert.ok(attacks.length >= 40);
  // The bridge itself stops nothing but what it never forwards; the rest reaches Bob or others.
  assert.ok(through.length >= attacks.length - 2, `${through.length} of ${attacks.length} attacks got through`);
  assert.ok(report.cases.some((r) => r.case.name.startsWith("Bob → an unknown MAC") && r.observed.includes("eve")), "Eve sniffs flooded unicast without protection");
});
