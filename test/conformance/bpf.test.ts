// The conformance kit against the bpf driver (TC-BPF on the sandbox's taps): the same kit, frames and
// flows as test/conformance/nftables.test.ts. Real frames between network namespaces. Needs root.
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { installSandboxPolicy, renderReport, runConformance } from "../../src/conformance/run.ts";
import { Sandbox } from "../../src/conformance/sandbox.ts";
import { createBpfDriver } from "../../src/drivers/bpf/index.ts";
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

test("the bpf driver passes every enforceable case of the conformance kit, and the legit flows", async (t) => {
  if (!needsRoot(t)) return;
  const sandbox = await sandboxFor(t);
  const driver = createBpfDriver({ netns: sandbox.hypervisor, prefix: `vgc${sandbox.id}` });
  sandbox.onDestroy(() => driver.removeAll()); // before the namespace goes: detaches, then unpins
  await driver.probe();
  await installSandboxPolicy(driver, sandbox);
  const report = await runConformance({ driver, sandbox });
  t.diagnostic(renderReport(report).split("\n").at(-1)!);
  const failures = [...report.cases.filter((r) => r.outcome === "fail").map((r) => `${r.n} ${r.case.name}: expected ${r.expected.join(",") || "nobody"}, arrived ${r.observed.join(",") || "nobody"}`), ...report.flows.filter((f) => !f.ok).map((f) => `${f.name}: ${f.detail}`)];
  assert.deepEqual(failures, [], renderReport(report));
  assert.ok(report.cases.length >= 70 && report.flows.length === 7);
  // Only cases tied to a limitation the driver declares may differ.
  for (const r of report.cases.filter((c) => c.outcome === "declared")) assert.match(r.excuse ?? "", /limitation bpf-/);
  // Every drop reason the kit expects shows up in the driver's counters for Eve's port.
  assert.deepEqual(await dropReasonsWithoutCounter(driver, report), [], "a drop reason without a counter");
});
