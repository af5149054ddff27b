// What the agent tells the controller: its host's registration and each port's status. Pure.
import type { Capabilities, DropCounter } from "../drivers/contract.ts";
import type { Guard } from "../policy/guards.ts";
import type { PortPolicy } from "../policy/port-policy.ts";
import type { PortState } from "./plan.ts";
import type { DriftRepairs } from "./reconciler.ts";

/** The body of `PUT /v1/hosts/{host}`. */
export type HostRegistration = Readonly<{
  driver: string;
  version: string;
  capabilities: Readonly<{ guards: Guard[]; limitations: { id: string; guard: Guard; description: string }[] }>;
}>;

/** The port states the agent reports; pending and unplugged ports are not reported. */
export type ReportedState = "enforced" | "awaiting-device" | "ambiguous-device";
const REPORTED: ReadonlySet<PortState> = new Set<ReportedState>(["enforced", "awaiting-device", "ambiguous-device"]);

/** One port of `PUT /v1/hosts/{host}/status`. */
export type PortReport = Readonly<{
  port: string;
  appliedRevision: number;
  /** enforced: its rules are installed; awaiting-device, ambiguous-device: nothing is installed for it (fail-closed covers the devices). */
  state: ReportedState;
  guardsEnforced: Guard[];
  guardsMissing: Guard[];
  drops: { reason: Guard; packets: number; bytes: number }[];
  /** How many syncs re-installed its rules after they changed behind the agent's back (since the agent started). */
  driftRepairs: number;
  /** When the last of those was (ms); absent if none. */
  lastDriftMs?: number;
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
 * The status of every enforced port, and of every port awaiting its device or with an ambiguous one,
 * as of `revision` (a controller revision: digits), sorted by port. Pending and unplugged ports are
 * left out. The controller takes only an enforced port as applied; the others enforce no guard.
 */
export function portReports(revision: string, policies: readonly PortPolicy[], states: ReadonlyMap<string, PortState>, guards: ReadonlySet<Guard>, counters: readonly DropCounter[], drift: ReadonlyMap<string, DriftRepairs> = new Map()): PortReport[] {
  const applied = Number(revision);
  if (!/^\d+$/.test(revision) || !Number.isSafeInteger(applied)) return [];
  const drops = new Map<string, PortReport["drops"]>();
  for (const c of counters) drops.set(c.port, [...(drops.get(c.port) ?? []), { reason: c.reason, packets: c.packets, bytes: c.bytes }]);
  return policies
    .filter((p) => REPORTED.has(states.get(p.port)!))
    .map((p) => {
      const state = states.get(p.port) as ReportedState;
      const repaired = drift.get(p.port);
      return {
        port: p.port,
        appliedRevision: applied,
        state,
        guardsEnforced: state === "enforced" ? p.guards.filter((g) => guards.has(g)) : [],
        guardsMissing: p.guards.filter((g) => !guards.has(g)),
        drops: (drops.get(p.port) ?? []).sort((a, b) => (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0)),
        driftRepairs: repaired?.count ?? 0,
        ...(repaired && { lastDriftMs: repaired.lastMs }),
      };
    })
    .sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : 0));
}

/** The reports that differ from what the controller last accepted (keyed by port), e.g. only new drops. */
export function changedReports(reports: readonly PortReport[], accepted: ReadonlyMap<string, string>): PortReport[] {
  return reports.filter((r) => accepted.get(r.port) !== JSON.stringify(r));
}
