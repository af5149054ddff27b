// What the agent tells the controller: its host's registration and each port's status. Pure.
import type { Capabilities, DropCounter } from "../drivers/contract.ts";
import type { Guard } from "../policy/guards.ts";
import type { PortPolicy } from "../policy/port-policy.ts";
import type { PortState } from "./plan.ts";

/** The body of `PUT /v1/hosts/{host}`. */
export type HostRegistration = Readonly<{
  driver: string;
  version: string;
  capabilities: Readonly<{ guards: Guard[]; limitations: { id: string; guard: Guard; description: string }[] }>;
}>;

/** One port of `PUT /v1/hosts/{host}/status`. */
export type PortReport = Readonly<{
  port: string;
  appliedRevision: number;
  guardsEnforced: Guard[];
  guardsMissing: Guard[];
  drops: { reason: Guard; packets: number; bytes: number }[];
}>;

export function hostRegistration(driver: string, version: string, capabilities: Capabilities): HostRegistration {
  return {
    driver,
    version,
    capabilities: {
      guards: [...capabilities.guards].sort(),
      limitations: capabilities.limitations.map((l) => ({ id: l.id, guard: l.guard, description: l.description })),
    },
  };
}

/**
 * The status of every enforced port as of `revision` (a controller revision: digits), sorted by
 * port. Pending and unplugged ports are left out: the controller must not take them as applied.
 */
export function portReports(revision: string, policies: readonly PortPolicy[], states: ReadonlyMap<string, PortState>, guards: ReadonlySet<Guard>, counters: readonly DropCounter[]): PortReport[] {
  const applied = Number(revision);
  if (!/^\d+$/.test(revision) || !Number.isSafeInteger(applied)) return [];
  const drops = new Map<string, PortReport["drops"]>();
  for (const c of counters) drops.set(c.port, [...(drops.get(c.port) ?? []), { reason: c.reason, packets: c.packets, bytes: c.bytes }]);
  return policies
    .filter((p) => states.get(p.port) === "enforced")
    .map((p) => ({
      port: p.port,
      appliedRevision: applied,
      guardsEnforced: p.guards.filter((g) => guards.has(g)),
      guardsMissing: p.guards.filter((g) => !guards.has(g)),
      drops: (drops.get(p.port) ?? []).sort((a, b) => (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0)),
    }))
    .sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : 0));
}

/** The reports that differ from what the controller last accepted (keyed by port), e.g. only new drops. */
export function changedReports(reports: readonly PortReport[], accepted: ReadonlyMap<string, string>): PortReport[] {
  return reports.filter((r) => accepted.get(r.port) !== JSON.stringify(r));
}
