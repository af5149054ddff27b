// The controller's rules on networks and ports, over the model's own validation (validatePortFile,
// crossTenantClaims) so the API and the port file accept exactly the same things. Pure.
import type { Issue } from "../errors.ts";
import { eui64LinkLocal, type Prefix } from "../model/ip.ts";
import type { Claim } from "../model/port-file.ts";
import { validatePortFile } from "../model/port-file.ts";
import type { Level, Network, Port, WidestPair } from "../model/types.ts";
import { guardsForLevel, type Guard } from "../policy/guards.ts";
import { ApiError } from "./errors.ts";
import { PortFileError } from "../errors.ts";

export type NetworkInput = Readonly<{ id: string; tenant: string; shared?: boolean; protection?: Level; widestPair?: Partial<WidestPair> | undefined; ranges?: readonly string[] | undefined }>;
export type AllowedInput = Readonly<{ ip: string; mac?: string | undefined }>;
export type PortInput = Readonly<{
  id: string;
  tenant: string;
  network: string;
  device?: string | undefined;
  mac: string;
  ips?: readonly string[];
  allowed?: readonly AllowedInput[];
  protection?: Level | null | undefined;
}>;

/** Validates one network as the port file would; issue paths are relative to the request body. */
export function checkNetwork(input: NetworkInput, at = ""): Network {
  const network = { id: input.id, tenant: input.tenant, shared: input.shared ?? false, protection: input.protection ?? "full", ...(input.widestPair && { widestPair: input.widestPair }), ...(input.ranges && { ranges: input.ranges }) };
  const file = validated({ networks: [network], ports: [] }, [["networks[0].", at]]);
  return file.networks[0]!;
}

/**
 * Validates one port on `network` as the port file would (id, device, MAC, addresses, allowed
 * pairs, the level a shared network demands); issue paths are relative to the request body.
 */
export function checkPort(input: PortInput, network: Network, at = ""): Port {
  const port: Record<string, unknown> = {
    id: input.id,
    tenant: input.tenant,
    network: input.network,
    ...(input.device !== undefined && { device: input.device }),
    mac: input.mac,
    ips: input.ips ?? [],
    allowed: (input.allowed ?? []).map((a) => (a.mac === undefined ? { ip: a.ip } : { ip: a.ip, mac: a.mac })),
  };
  if (input.protection !== undefined && input.protection !== null) port.protection = input.protection;
  const { id, tenant, shared, protection, widestPair, ranges } = network;
  const file = validated({ networks: [{ id, tenant, shared, protection, ...(widestPair && { widestPair }), ...(ranges && { ranges }) }], ports: [port] }, [["ports[0].", at], ["networks[0].", `network ${network.id}: `]]);
  return file.ports[0]!;
}

function validated(document: unknown, prefixes: readonly (readonly [string, string])[]): ReturnType<typeof validatePortFile> {
  try {
    return validatePortFile(document, "request");
  } catch (error) {
    if (!(error instanceof PortFileError)) throw error;
    const issues = error.issues.map((issue): Issue => {
      const hit = prefixes.find(([from]) => issue.path.startsWith(from));
      return hit ? { ...issue, path: hit[1] + issue.path.slice(hit[0].length) } : issue;
    });
    throw new ApiError("VG_INVALID", "The request is not valid; nothing was stored", issues);
  }
}

/**
 * The addresses and prefixes a port holds, as the model's claims (`order` says which came first):
 * its fixed IPs, its allowed pairs, and the EUI-64 link-local of each of its MACs (held like a fixed
 * IP, at the path of the MAC it derives from).
 */
export function ipClaims(port: Port, order: number, at = ""): Claim[] {
  const claim = (path: string, prefix: Prefix): Claim => ({ port: port.id, tenant: port.tenant, network: port.network, order, path, prefix });
  return [
    ...port.ips.map((prefix, i) => claim(`${at}ips[${i}]`, prefix)),
    ...port.allowed.map((pair, i) => claim(`${at}allowed[${i}].ip`, pair.ip)),
    ...macClaims(port, at).map((m) => claim(m.path, eui64LinkLocal(m.mac as Port["mac"]))),
  ];
}

export type MacClaim = Readonly<{ port: string; tenant: string; network: string; mac: string; path: string }>;

/** The MACs a port sends with: its own, and allowed pairs' that differ from it. */
export function macClaims(port: Port, at = ""): MacClaim[] {
  const claims: MacClaim[] = [{ port: port.id, tenant: port.tenant, network: port.network, mac: port.mac, path: `${at}mac` }];
  port.allowed.forEach((pair, i) => {
    if (pair.mac !== port.mac && !claims.some((c) => c.mac === pair.mac)) {
      claims.push({ port: port.id, tenant: port.tenant, network: port.network, mac: pair.mac, path: `${at}allowed[${i}].mac` });
    }
  });
  return claims;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

/** First and last address of a prefix as fixed-width hex: for one family they compare as text. */
export function claimRange(prefix: Prefix): { lo: string; hi: string } {
  const last = prefix.bytes.map((b, i) => {
    const bits = Math.max(0, Math.min(8, prefix.length - i * 8));
    return b | (0xff >> bits);
  });
  return { lo: hex(prefix.bytes), hi: hex(last) };
}

/**
 * The starts of every prefix that could contain `prefix` (lengths 0..its own, or only those of
 * `lengths` up to its own): an IN list for the index.
 */
export function containingStarts(prefix: Prefix, lengths?: readonly number[]): string[] {
  const starts = new Set<string>();
  const candidates = lengths ?? Array.from({ length: prefix.length + 1 }, (_, i) => i);
  for (const length of candidates) {
    if (length > prefix.length) continue;
    starts.add(hex(prefix.bytes.map((b, i) => b & ((0xff << (8 - Math.max(0, Math.min(8, length - i * 8)))) & 0xff))));
  }
  return [...starts];
}

/** The guards `level` needs that a host's driver cannot enforce (empty when the host is unknown). */
export function missingGuards(level: Level, hostGuards: readonly Guard[] | undefined): Guard[] {
  if (!hostGuards) return [];
  const has = new Set(hostGuards);
  return guardsForLevel(level).filter((g) => !has.has(g));
}

/**
 * Where a port is placed: `host` (the destination while migrating) and the source it is leaving.
 * `readySinceMs`: while migrating, when the destination first reported the port applied (the
 * source's hold runs from then); null otherwise.
 */
export type Placement = Readonly<{ host: string | null; migratingFrom: string | null; boundRevision: number; readySinceMs: number | null }>;

/**
 * The placement after the host is set to `next` at `revision`. Moving a bound port starts a migration:
 * the source keeps the port until it reports it released (the VM left: migrate-out, unplug) or its
 * hold times out, since the VM runs there until the switch-over. Moving it again mid-way keeps the
 * original source (the VM still runs there); moving it back to the source cancels the migration.
 */
export function moveTo(current: Placement, next: string | null, revision: number): Placement {
  if (next === current.host) return current;
  if (next === null) return { host: null, migratingFrom: null, boundRevision: revision, readySinceMs: null };
  const source = current.migratingFrom ?? current.host;
  if (source === null || source === next) return { host: next, migratingFrom: null, boundRevision: revision, readySinceMs: null };
  return { host: next, migratingFrom: source, boundRevision: revision, readySinceMs: null };
}

/** The placement once the migration is over (the source released the port, or its hold ran out). */
export function endMigration(b: Placement): Placement {
  return { ...b, migratingFrom: null, readySinceMs: null };
}

/**
 * Ten minutes: the backstop for a source whose hook never reports the VM gone, not the normal end
 * of a migration (a live migration's memory copy may take minutes after the destination is ready).
 */
export const DEFAULT_MIGRATION_HOLD_MS = 600_000;

/** The hosts whose desired set holds a port with this placement. */
export function placementHosts(b: Placement): string[] {
  return [b.host, b.migratingFrom].filter((h): h is string => h !== null);
}

export const MIGRATION_STATES = ["unbound", "pending", "migrating", "ready-on-destination", "ready"] as const;
export type MigrationState = (typeof MIGRATION_STATES)[number];

/**
 * unbound: no host. pending: bound, the host has not applied it yet. migrating: on the source and
 * the destination, which has not applied it yet. ready-on-destination: the destination applied it;
 * the source keeps it until the switch-over (it reports the port released) or its hold runs out.
 * ready: the host applied it, and no source holds it.
 */
export function migrationState(b: Placement, hostAppliedRevision: number | undefined): MigrationState {
  if (b.host === null) return "unbound";
  const applied = hostAppliedRevision !== undefined && hostAppliedRevision >= b.boundRevision;
  if (b.migratingFrom !== null) return applied ? "ready-on-destination" : "migrating";
  return applied ? "ready" : "pending";
}

/** Is the port ready on its host (the destination, while migrating)? What a hypervisor hook waits for. */
export function isReadyOnHost(state: MigrationState): boolean {
  return state === "ready" || state === "ready-on-destination";
}

/**
 * When the source's hold of a migrating port ends at the latest (ms), if the source never reports
 * it released: `holdMs` after the destination applied it. Undefined while the destination has not
 * applied it, when nothing migrates, or when `holdMs` is 0 (hold until released).
 */
export function holdEndsAt(b: Placement, holdMs: number): number | undefined {
  if (b.migratingFrom === null || b.readySinceMs === null || holdMs <= 0) return undefined;
  return b.readySinceMs + holdMs;
}
