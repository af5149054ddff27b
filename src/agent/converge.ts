// One sync without an agent (apply, status, the conformance kit, benches and tests): observe, compile
// against the devices observed, plan. Effects (through the driver).
import type { ChangeSet, Driver, Observed, UnitMap } from "../drivers/contract.ts";
import type { PortPolicy } from "../policy/port-policy.ts";
import { compileMatched, type DeviceMatch } from "./device-match.ts";
import { planChanges } from "./plan.ts";

export type Plan = Readonly<{ observed: Observed; desired: UnitMap; changes: ChangeSet; matches: ReadonlyMap<string, DeviceMatch> }>;

/** What a sync of `policies` would change now (each port on the device it names, else found by MAC). */
export async function planSync(driver: Driver, policies: readonly PortPolicy[]): Promise<Plan> {
  const observed = await driver.observe();
  const { units: desired, matches } = compileMatched((p, d) => driver.compile(p, d), policies, observed.devices);
  return { observed, desired, changes: planChanges(desired, observed.units), matches };
}

/** Makes the dataplane match `policies` in one batch; resolves with the plan it applied. */
export async function converge(driver: Driver, policies: readonly PortPolicy[]): Promise<Plan & Readonly<{ durationMs: number }>> {
  const plan = await planSync(driver, policies);
  const report = await driver.apply(plan.changes);
  return { ...plan, durationMs: report.durationMs };
}
