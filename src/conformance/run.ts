// The conformance kit: applies the sandbox's policy through a driver, sends every case of the attack
// table as real frames, and compares where each frame arrived with what the reference evaluator
// says; then runs the legitimate flows. Effects.
import { converge } from "../agent/converge.ts";
import type { Driver } from "../drivers/contract.ts";
import { evaluate, type Decision } from "../policy/evaluate.ts";
import type { Guard } from "../policy/guards.ts";
import type { PortPolicy } from "../policy/port-policy.ts";
import { buildCases, type Case } from "./cases.ts";
import { runFlows, type FlowResult } from "./flows.ts";
import type { GuestName, Sandbox } from "./sandbox.ts";
import { captureCases, controlFrame, marked, sendFrames } from "./wire.ts";

export type Outcome = "pass" | "fail" | "declared";
const GUEST_NAMES: readonly GuestName[] = ["alice", "eve", "bob", "gw"];

export type CaseResult = Readonly<{
  n: number;
  case: Case;
  /** What the sender's port decides (from-vm). */
  decision: Decision;
  /** Where it must arrive. */
  expected: readonly GuestName[];
  /** Where it may arrive or not: the switch decides (see expectation()). */
  optional: readonly GuestName[];
  observed: readonly GuestName[];
  outcome: Outcome;
  /** Guards or limitations that excuse a mismatch, when declared. */
  excuse?: string;
}>;

export type ConformanceReport = Readonly<{ driver: string; switch: string; cases: CaseResult[]; flows: FlowResult[]; passed: number; failed: number; declared: number }>;

const fmt = (guests: readonly string[]) => (guests.length ? guests.join(",") : "nobody");

const macText = (bytes: Uint8Array): string => [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(":");

type Expectation = { decision: Decision; expected: GuestName[]; optional: GuestName[]; guards: Guard[] };

/**
 * Where a frame should arrive: the sender's port lets it out, and each receiver's port lets it in.
 * The uplink (gw) has no port, so the reference has no say there: it must get what any switch gives
 * every port (group destinations, its own MAC, unicast for a MAC the switch does not know), while
 * unicast for another guest's MAC may reach it or not (a Linux bridge without learning floods it; OVS
 * with vifguard's flows outputs it to that guest's port only).
 */
function expectation(c: Case, policies: ReadonlyMap<GuestName, PortPolicy>, guestMacs: ReadonlyMap<string, GuestName>): Expectation {
  const sender = policies.get(c.from);
  const decision: Decision = sender ? evaluate(sender, c.frame, "from-vm") : { verdict: "allow", reason: "protection-off", detail: "unprotected uplink" };
  const guards: Guard[] = decision.verdict === "drop" ? [decision.reason] : [];
  const expected: GuestName[] = [];
  const optional: GuestName[] = [];
  if (decision.verdict === "allow") {
    const owner = guestMacs.get(macText(c.frame.subarray(0, 6))); // undefined for group and unknown MACs
    for (const g of GUEST_NAMES) {
      if (g === c.from) continue;
      const receiver = policies.get(g);
      const delivery = receiver ? evaluate(receiver, c.frame, "to-vm") : undefined;
      if (delivery?.verdict === "drop") guards.push(delivery.reason);
      else if (!receiver && owner !== undefined && owner !== g) optional.push(g);
      else expected.push(g);
    }
  }
  return { decision, expected, optional, guards };
}

/** Case number → frame, for frames no other case shares: a copy that lost its marker is then still known. */
function uniqueFrames(cases: readonly Case[]): Map<number, Uint8Array> {
  const hex = cases.map((c) => Buffer.from(c.frame).toString("hex"));
  const count = new Map<string, number>();
  for (const h of hex) count.set(h, (count.get(h) ?? 0) + 1);
  return new Map(cases.flatMap((c, i) => (count.get(hex[i]!) === 1 ? [[i + 1, c.frame] as const] : [])));
}

export type RunOptions = Readonly<{ driver: Driver; sandbox: Sandbox; log?: (line: string) => void; flows?: boolean }>;

/** Installs the sandbox's ports with `driver` (which must act on the sandbox's bridge). */
export async function installSandboxPolicy(driver: Driver, sandbox: Sandbox): Promise<number> {
  return (await converge(driver, sandbox.policies())).durationMs;
}

export async function runConformance(options: RunOptions): Promise<ConformanceReport> {
  const { driver, sandbox } = options;
  const log = options.log ?? (() => undefined);
  const policies = new Map(sandbox.policies().map((p) => [p.port.replace(/-0$/, "") as GuestName, p]));
  const cases = buildCases(Object.fromEntries(GUEST_NAMES.map((g) => [g, sandbox.guest(g)])) as never);
  const mark = `VG${sandbox.id}`;

  const whole = uniqueFrames(cases);
  const captures = GUEST_NAMES.map((g) => [g, captureCases(sandbox.guest(g).netns, "eth0", mark, cases.length, sandbox.children, whole)] as const);
  await Promise.all(captures.map(([, c]) => c.ready));
  for (const sender of GUEST_NAMES) {
    const frames = cases.flatMap((c, i) => (c.from === sender ? [marked(c.frame, mark, i + 1)] : []));
    await sendFrames(sandbox.guest(sender).netns, "eth0", frames, 2, sandbox.children);
  }
  // The control frames, last: Alice's reaches Eve, Bob and the gateway, the gateway's reaches Alice.
  for (const sender of ["alice", "gw"] as const) await sendFrames(sandbox.guest(sender).netns, "eth0", [controlFrame(sandbox.guest(sender), mark)], 0, sandbox.children);
  const seen = new Map<GuestName, Set<number>>();
  for (const [g, c] of captures) seen.set(g, await c.stop());

  const limitations = driver.capabilities.limitations;
  const guestMacs = new Map(GUEST_NAMES.map((g) => [sandbox.guest(g).mac, g]));
  const results: CaseResult[] = cases.map((c, i) => {
    const n = i + 1;
    const { decision, expected, optional, guards } = expectation(c, policies, guestMacs);
    const observed = GUEST_NAMES.filter((g) => g !== c.from && seen.get(g)!.has(n));
    const match = expected.every((g) => observed.includes(g)) && observed.every((g) => expected.includes(g) || optional.includes(g));
    const missingGuards = guards.filter((g) => !driver.capabilities.guards.has(g));
    const declaredLimits = limitations.filter((l) => l.cases?.includes(c.name)).map((l) => l.id);
    const excuse = [...missingGuards.map((g) => `guard ${g} not enforced`), ...declaredLimits.map((id) => `limitation ${id}`)].join("; ");
    const outcome: Outcome = match ? "pass" : excuse ? "declared" : "fail";
    return { n, case: c, decision, expected, optional, observed, outcome, ...(excuse && !match && { excuse }) };
  });
  const flows = options.flows === false ? [] : await runFlows(sandbox);
  const failed = results.filter((r) => r.outcome === "fail").length + flows.filter((f) => !f.ok).length;
  const declared = results.filter((r) => r.outcome === "declared").length;
  const passed = results.length + flows.length - failed - declared;
  void log;
  return { driver: driver.name, switch: sandbox.switch.kind, cases: results, flows, passed, failed, declared };
}

/** The report as a table and the summary line `N passed, M failed`. */
export function renderReport(report: ConformanceReport): string {
  const lines: string[] = [`conformance of the ${report.driver} driver on a ${report.switch} switch: ${report.cases.length} frames, ${report.flows.length} flows`, ""];
  let story = "";
  for (const r of report.cases) {
    if (r.case.story !== story) {
      story = r.case.story;
      lines.push(`  ${story}`);
    }
    const verdict = r.decision.verdict === "drop" ? `drop ${r.decision.reason}` : "allow";
    const label = r.outcome === "pass" ? "PASS" : r.outcome === "fail" ? "FAIL" : "not enforced (declared)";
    const optional = r.optional.length ? ` (${r.optional.join(",")} either way)` : "";
    const detail = r.outcome === "pass" ? "" : `  expected at ${fmt(r.expected)}${optional}, arrived at ${fmt(r.observed)}${r.excuse ? ` [${r.excuse}]` : ""}`;
    lines.push(`    ${String(r.n).padStart(3)} ${r.case.from.padEnd(5)} ${r.case.name.padEnd(58)} ${verdict.padEnd(26)} ${label}${detail}`);
  }
  lines.push("", "  legitimate flows");
  for (const f of report.flows) lines.push(`        ${f.name.padEnd(64)} ${f.ok ? "PASS" : "FAIL"}  ${f.detail}`);
  lines.push("", `${report.passed} passed, ${report.failed} failed${report.declared ? `, ${report.declared} not enforced (declared)` : ""}`);
  return lines.join("\n");
}
