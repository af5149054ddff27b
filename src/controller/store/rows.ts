// Row mapping: the store's answers (plain JSON shapes with mutable arrays, as the API schemas infer
// them) and the conversions between stored rows and the model. Pure.
import type { Selectable } from "kysely";
import { parseAddress, parsePrefix, type Prefix } from "../../model/ip.ts";
import { parseMac } from "../../model/mac.ts";
import type { Level, Network, Port, WidestPair } from "../../model/types.ts";
import type { Guard } from "../../policy/guards.ts";
import type { PortPolicy } from "../../policy/port-policy.ts";
import type { Limitation } from "../../drivers/contract.ts";
import { claimRange, holdEndsAt, ipClaims, macClaims, migrationState, type Placement, type MigrationState } from "../rules.ts";
import type { Database, PortTable } from "./schema.ts";

export type NetworkView = Network & { revision: number };
export type AllowedView = { ip: string; mac: string };
export type MigrationView = {
  state: MigrationState;
  /** Where the port runs, or is going to (the destination while migrating). */
  host: string | null;
  /** While migrating: the host it leaves, which keeps it until it reports it released (the switch-over) or its hold ends. */
  source: string | null;
  /** The revision the host must have applied for the port to be ready there. */
  boundRevision: number;
  /** The revision the host reported applied, if it did. */
  appliedRevision: number | null;
  /** While ready on the destination: when the source's hold ends if it never reports the port released (ISO time; null: no such deadline). */
  sourceHoldUntil: string | null;
};
export type PortView = {
  id: string;
  tenant: string;
  network: string;
  host: string | null;
  /** Absent: the agent finds the device by MAC. */
  device?: string;
  mac: string;
  ips: string[];
  allowed: AllowedView[];
  /** Set on the port; null inherits the network's. */
  protection: Level | null;
  /** The effective level (the global switch included). */
  level: Level;
  migration: MigrationView;
  revision: number;
};
export type HostRegistration = { driver: string; version: string; guards: Guard[]; limitations: Limitation[] };
export type HostView = HostRegistration & { name: string; registeredAt: string; lastSeenAt: string; revision: number };
export type DropView = { reason: Guard; packets: number; bytes: number };
export type ReportedState = "enforced" | "awaiting-device" | "ambiguous-device";
/** One port of an agent's report; state absent: enforced (older agents), driftRepairs absent: 0. */
export type StatusReport = { port: string; appliedRevision: number; state?: ReportedState; guardsEnforced: Guard[]; guardsMissing: Guard[]; drops: DropView[]; driftRepairs?: number; lastDriftMs?: number };
/** What a status report changed: ports now ready on the reporting destination, migrations it ended by releasing ports. */
export type ReportOutcome = { revision: number; ready: string[]; completed: string[] };
export type ReportView = Omit<StatusReport, "state" | "driftRepairs" | "lastDriftMs"> & { host: string; state: ReportedState; driftRepairs: number; lastDriftAt: string | null; reportedAt: string };
export type PortStatusView = {
  port: string;
  host: string | null;
  level: Level;
  /** The guards the port's level needs. */
  guardsRequired: Guard[];
  /** Of those, what the bound host's driver cannot enforce (from its registration). */
  guardsMissing: Guard[];
  /** The driver's declared limitations on guards the level needs. */
  limitations: Limitation[];
  /** Is the host registered? Unknown hosts have no capabilities to check. */
  hostRegistered: boolean;
  migration: MigrationView;
  /** What the agents last reported (the source and the destination while migrating). */
  reports: ReportView[];
};
export type Role = "admin" | "tenant" | "agent";
export type TokenView = { id: string; role: Role; tenant: string | null; host: string | null; name: string; createdAt: string; revision: number };
export type DesiredState = { revision: number; host: string; config: { antiSpoofing: boolean; failClosed: boolean }; ports: PortPolicy[] };

export type PortRow = Selectable<PortTable>;

export function placement(row: PortRow): Placement {
  return { host: row.host, migratingFrom: row.migrating_from, boundRevision: Number(row.bound_revision), readySinceMs: row.ready_since_ms === null ? null : Number(row.ready_since_ms) };
}

export function migrationView(b: Placement, applied: number | undefined, holdMs: number): MigrationView {
  const holdEnds = holdEndsAt(b, holdMs);
  return {
    state: migrationState(b, applied), host: b.host, source: b.migratingFrom, boundRevision: b.boundRevision, appliedRevision: applied ?? null,
    sourceHoldUntil: holdEnds === undefined ? null : new Date(holdEnds).toISOString(),
  };
}

export function networkView(row: Selectable<Database["network"]>): NetworkView {
  const widestPair = row.widest_pair === null ? undefined : (JSON.parse(row.widest_pair) as WidestPair);
  return { id: row.id, tenant: row.tenant, shared: row.shared === 1, protection: row.protection as Level, ...(widestPair && { widestPair }), ...(row.ranges !== null && { ranges: JSON.parse(row.ranges) as string[] }), revision: Number(row.revision) };
}

export function hostView(row: Selectable<Database["host"]>): HostView {
  return {
    name: row.name,
    driver: row.driver,
    version: row.version,
    guards: JSON.parse(row.guards) as Guard[],
    limitations: JSON.parse(row.limitations) as Limitation[],
    registeredAt: new Date(Number(row.registered_ms)).toISOString(),
    lastSeenAt: new Date(Number(row.last_seen_ms)).toISOString(),
    revision: Number(row.revision),
  };
}

export function tokenView(row: Selectable<Database["token"]>): TokenView {
  return { id: row.id, role: row.role as Role, tenant: row.tenant, host: row.host, name: row.name, createdAt: new Date(Number(row.created_ms)).toISOString(), revision: Number(row.revision) };
}

export function reportView(row: Selectable<Database["port_status"]>): ReportView {
  return {
    port: row.port,
    host: row.host,
    appliedRevision: Number(row.applied_revision),
    state: row.state as ReportedState,
    guardsEnforced: JSON.parse(row.guards_enforced) as Guard[],
    guardsMissing: JSON.parse(row.guards_missing) as Guard[],
    drops: JSON.parse(row.drops) as DropView[],
    driftRepairs: Number(row.drift_repairs),
    lastDriftAt: row.last_drift_ms === null ? null : new Date(Number(row.last_drift_ms)).toISOString(),
    reportedAt: new Date(Number(row.reported_ms)).toISOString(),
  };
}

export function portRow(port: Port, b: Placement, revision: number): PortTable {
  return {
    id: port.id,
    tenant: port.tenant,
    network: port.network,
    host: b.host,
    migrating_from: b.migratingFrom,
    bound_revision: b.boundRevision,
    ready_since_ms: b.readySinceMs,
    device: port.device ?? "", // "": found by MAC (the column predates optional devices)
    mac: port.mac,
    ips: JSON.stringify(port.ips.map((p) => p.text)),
    allowed: JSON.stringify(port.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac }))),
    protection: port.protection ?? null,
    revision,
  };
}

/** Stored rows are canonical (they passed checkPort), so parsing them back cannot fail. */
export function rowToPort(row: PortRow): Port {
  const prefix = (text: string): Prefix => {
    const parsed = text.includes("/") ? parsePrefix(text) : { ok: true as const, prefix: parseAddress(text)! };
    if (!parsed.ok) throw new Error(`bug: stored prefix ${text} of port ${row.id} does not parse`);
    return parsed.prefix;
  };
  return {
    id: row.id,
    tenant: row.tenant,
    network: row.network,
    ...(row.device !== "" && { device: row.device }),
    mac: parseMac(row.mac)!,
    ips: (JSON.parse(row.ips) as string[]).map(prefix),
    allowed: (JSON.parse(row.allowed) as AllowedView[]).map((a) => ({ ip: prefix(a.ip), mac: parseMac(a.mac)! })),
    protection: (row.protection ?? undefined) as Level | undefined,
  };
}

export function claimRows(port: Port): Database["claim"][] {
  const ips = ipClaims(port, 0).map((c) => ({ network: port.network, port: port.id, tenant: port.tenant, kind: "ip", family: c.prefix.family, ...claimRange(c.prefix), length: c.prefix.length, text: c.prefix.text, path: c.path }));
  const macs = macClaims(port).map((c) => ({ network: port.network, port: port.id, tenant: port.tenant, kind: "mac", family: 0, lo: c.mac, hi: c.mac, length: 48, text: c.mac, path: c.path }));
  return [...ips, ...macs];
}
