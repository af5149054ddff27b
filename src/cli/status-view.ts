// Builds and renders status rows from desired units, installed units and counters. Pure.
import type { ControllerClient, Success } from "../controller/client.ts";
import type { Capabilities, DropCounter, UnitMap } from "../drivers/contract.ts";
import type { Guard } from "../policy/guards.ts";
import type { PortPolicy } from "../policy/port-policy.ts";
import type { DeviceMatch } from "../agent/device-match.ts";

export type PortStatus = Readonly<{
  port: string;
  device: string;
  level: string;
  /**
   * in-sync: installed and equal to the desired rules; drifted: installed but different; missing: not
   * installed; awaiting-device: its device is not there yet, so nothing can be installed;
   * ambiguous-device: several devices match its MAC, so nothing is installed; orphan:
   * installed for a port not in the port file.
   */
  state: "in-sync" | "drifted" | "missing" | "awaiting-device" | "ambiguous-device" | "orphan";
  enforced: readonly Guard[];
  missing: readonly Guard[];
  limitations: readonly string[];
  drops: Readonly<Partial<Record<Guard, number>>>;
}>;

/** `matches`: how each port met its device (src/agent/device-match.ts); a port absent from it shows the device its source names. */
export function portStatusRows(policies: readonly PortPolicy[], desired: UnitMap, installed: UnitMap, counters: readonly DropCounter[], capabilities: Capabilities, matches: ReadonlyMap<string, DeviceMatch> = new Map()): PortStatus[] {
  const rows: PortStatus[] = [];
  const desiredKeys = new Set<string>();
  const unitOfPort = new Map([...desired.values()].map((u) => [u.port, u]));
  for (const policy of policies) {
    const unit = unitOfPort.get(policy.port);
    if (unit) desiredKeys.add(unit.key);
    const have = unit && installed.get(unit.key);
    const match = matches.get(policy.port);
    const state = match?.how === "ambiguous" ? "ambiguous-device" : unit?.awaitingDevice ? "awaiting-device" : !unit || !have ? (policy.level === "off" && !unit ? "in-sync" : "missing") : have.digest === unit.digest && !have.awaitingDevice ? "in-sync" : "drifted";
    const drops: Partial<Record<Guard, number>> = {};
    for (const c of counters) if (c.port === policy.port && c.packets > 0) drops[c.reason] = (drops[c.reason] ?? 0) + c.packets;
    rows.push({
      port: policy.port,
      device: match && "device" in match ? match.device : (policy.device ?? "-"),
      level: policy.level,
      state,
      enforced: policy.guards.filter((g) => capabilities.guards.has(g)),
      missing: policy.guards.filter((g) => !capabilities.guards.has(g)),
      limitations: capabilities.limitations.filter((l) => policy.guards.includes(l.guard)).map((l) => l.id),
      drops,
    });
  }
  for (const unit of installed.values()) {
    if (!desiredKeys.has(unit.key)) rows.push({ port: unit.port, device: "?", level: "?", state: "orphan", enforced: [], missing: [], limitations: [], drops: {} });
  }
  return rows;
}

export function renderStatus(rows: readonly PortStatus[], driver: string): string {
  const lines = [`driver ${driver}: ${rows.length} ports`];
  for (const r of rows) {
    lines.push(`${r.port} (${r.device})  level ${r.level}  ${r.state}`);
    if (r.level === "off" || r.state === "orphan") continue;
    lines.push(`  enforced: ${r.enforced.join(", ") || "none"}`);
    if (r.missing.length) lines.push(`  MISSING:  ${r.missing.join(", ")} (the ${driver} driver cannot enforce these)`);
    if (r.limitations.length) lines.push(`  limits:   ${r.limitations.join(", ")} (see docs/drivers.md)`);
    const drops = Object.entries(r.drops).map(([reason, n]) => `${reason} ${n}`);
    lines.push(`  dropped:  ${drops.length ? drops.join(", ") : "nothing"}`);
  }
  return lines.join("\n");
}

type PortAnswer = Success<Awaited<ReturnType<ControllerClient["v1"]["ports"]["$get"]>>>[number];
type PortStatusAnswer = Success<Awaited<ReturnType<ControllerClient["v1"]["ports"][":id"]["status"]["$get"]>>>;

/** `vifguard status --controller`: each port as the controller sees it, with its agents' reports. */
export function renderControllerStatus(url: string, ports: readonly (readonly [PortAnswer, PortStatusAnswer])[]): string {
  const lines = [`controller ${url}: ${ports.length} ports`];
  for (const [p, s] of ports) {
    const where = s.migration.source ? `host ${s.migration.source} → ${s.migration.host ?? "?"}` : `host ${p.host ?? "(none)"}`;
    const applied = s.migration.appliedRevision === null ? "" : ` (applied rev ${s.migration.appliedRevision})`;
    lines.push(`${p.id} (network ${p.network}, ${where}, device ${p.device ?? "found by MAC"})  level ${p.level}${p.protection === null ? " (the network's)" : ""}  ${s.migration.state}${applied}`);
    if (p.level === "off") continue;
    if (s.guardsMissing.length) lines.push(`  MISSING:  ${s.guardsMissing.join(", ")} (${s.hostRegistered ? `host ${s.host}'s driver cannot enforce these` : "host not registered"})`);
    if (s.limitations.length) lines.push(`  limits:   ${s.limitations.map((l) => l.id).join(", ")} (see docs/drivers.md)`);
    for (const r of s.reports) {
      if (r.state !== "enforced") lines.push(`  ${r.state === "awaiting-device" ? "AWAITING" : "AMBIGUOUS"}: on ${r.host} ${r.state === "awaiting-device" ? "its device is not there yet" : "several devices match its MAC"}, so nothing is installed for it`);
      if (r.driftRepairs > 0) lines.push(`  drift:    ${r.host} re-installed its rules ${r.driftRepairs} time${r.driftRepairs === 1 ? "" : "s"} after they changed behind vifguard's back (last ${r.lastDriftAt ?? "?"})`);
    }
    const drops = new Map<string, number>();
    for (const r of s.reports) for (const d of r.drops) if (d.packets > 0) drops.set(d.reason, (drops.get(d.reason) ?? 0) + d.packets);
    lines.push(`  dropped:  ${drops.size ? [...drops].map(([reason, n]) => `${reason} ${n}`).join(", ") : s.reports.length ? "nothing" : "(no report from an agent yet)"}`);
  }
  return lines.join("\n");
}
