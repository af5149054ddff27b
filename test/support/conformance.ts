// Checks shared by the conformance tests of every driver.
import type { ConformanceReport } from "../../src/conformance/run.ts";
import type { Driver } from "../../src/drivers/contract.ts";

/**
 * The drop reasons of Eve's frames that the kit saw dropped as expected but the driver's counters
 * for her port never counted: empty when every reason has a counter that moved.
 */
export async function dropReasonsWithoutCounter(driver: Pick<Driver, "counters">, report: ConformanceReport): Promise<string[]> {
  const counted = new Set<string>((await driver.counters()).filter((c) => c.port === "eve-0" && c.packets > 0).map((c) => c.reason));
  const dropped = new Set(report.cases.filter((r) => r.case.from === "eve" && r.decision.verdict === "drop" && r.outcome === "pass").map((r) => r.decision.reason));
  return [...dropped].filter((reason) => !counted.has(reason));
}
