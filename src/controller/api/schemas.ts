// The API's request and response shapes in zod (with OpenAPI metadata). Only types are checked
// here; the addresses, MACs and ids are checked by the model, like a port file. Pure.
import { z } from "@hono/zod-openapi";
import { LEVELS, type Level } from "../../model/types.ts";
import { GUARDS, type Guard } from "../../policy/guards.ts";
import { MIGRATION_STATES } from "../rules.ts";

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const NAME_EXPECTED = "1-63 characters: letters, digits, '.', '_' or '-', starting with a letter or digit";

export const level = z.enum(LEVELS as [Level, ...Level[]]).openapi("Level", { description: "full: every guard; mac: only the MAC side; off: nothing" });
/** A level or null ("inherit the network's"): anyOf [Level, null], as `.nullable()` of a named schema would be allOf, which refuses null. */
const levelOrNull = z.union([level, z.null()]);
export const guard = z.enum(GUARDS as unknown as [Guard, ...Guard[]]).openapi("Guard");
/** A point in time as the controller writes it: ISO 8601 in UTC (2026-01-01T12:00:00.000Z). */
export const timestamp = z.iso.datetime();
export const name = z.string().regex(NAME, NAME_EXPECTED);

export const issue = z.object({ path: z.string(), value: z.unknown(), expected: z.string() }).openapi("Issue");
export const errorBody = z.object({ code: z.string(), message: z.string(), issues: z.array(issue) }).openapi("Error");

export const config = z.object({
  antiSpoofing: z.boolean().openapi({ description: "The global switch; when false every port is effectively off" }),
  failClosed: z.boolean().openapi({ description: "Agents drop traffic of VM devices that have no policy yet" }),
  revision: z.number().int(),
}).openapi("Config");
export const configPatch = z.strictObject({ antiSpoofing: z.boolean().optional(), failClosed: z.boolean().optional() }).openapi("ConfigPatch");

const widestPairDescription = "On a shared network, the widest allowed-pair prefix per family (its shortest length); default ipv4 24, ipv6 64. An admin may raise it (a smaller number)";
export const widestPair = z.object({ ipv4: z.number().int().min(0).max(32), ipv6: z.number().int().min(0).max(128) }).openapi("WidestPair", { description: widestPairDescription });
const widestPairInput = z.strictObject({ ipv4: z.number().int().min(0).max(32).optional(), ipv6: z.number().int().min(0).max(128).optional() })
  .openapi("WidestPairInput", { description: `${widestPairDescription}. An unnamed family keeps its current value` });
const rangesDescription = "The network's own address ranges (IPv4 and/or IPv6 prefixes). A port's addresses and allowed pairs of a family with a range must lie inside one of them (so no pair is wider than the range); IPv6 link-local is exempt (bound by the ports' MACs)";
const ranges = z.array(z.string().openapi({ example: "10.0.0.0/24" })).max(64);
export const network = z.object({ id: z.string(), tenant: z.string(), shared: z.boolean(), protection: level, widestPair: widestPair.optional(), ranges: ranges.optional().openapi({ description: rangesDescription }), revision: z.number().int() }).openapi("Network");
export const networkCreate = z.strictObject({
  id: z.string().openapi({ example: "public" }),
  tenant: z.string().optional().openapi({ description: "Default (tenant tokens): the token's tenant; admins must give it" }),
  shared: z.boolean().optional().openapi({ description: "Several tenants on one L2 segment; admin only. Default false" }),
  protection: level.optional().openapi({ description: "Default level of its ports; default full (must be full when shared)" }),
  widestPair: widestPairInput.optional(),
  ranges: ranges.optional().openapi({ description: `${rangesDescription}. Default: none (any address)` }),
}).openapi("NetworkCreate");
export const networkPatch = z.strictObject({
  shared: z.boolean().optional(), protection: level.optional(), widestPair: widestPairInput.optional(),
  ranges: ranges.optional().openapi({ description: `${rangesDescription}. Replaces the list; [] removes every range. Refused (409) while a port on the network holds something outside the new ranges` }),
}).openapi("NetworkPatch");

export const allowed = z.strictObject({
  ip: z.string().openapi({ example: "10.0.0.100/32", description: "An address or a CIDR" }),
  mac: z.string().optional().openapi({ description: "Default: the port's MAC" }),
}).openapi("AllowedPair");
export const allowedView = z.object({ ip: z.string(), mac: z.string() }).openapi("AllowedPairView");

export const migration = z.object({
  state: z.enum(MIGRATION_STATES).openapi({
    description: "unbound: no host; pending: the host has not applied it yet; migrating: on the source and the destination, which has not applied it yet; "
      + "ready-on-destination: the destination applied it, the source keeps it until it reports it released (the switch-over) or its hold ends; ready: the host applied it and no source holds it",
  }),
  host: z.string().nullable().openapi({ description: "Where the port runs, or is going to (the destination while migrating)" }),
  source: z.string().nullable().openapi({ description: "While migrating: the host it leaves" }),
  boundRevision: z.number().int(),
  appliedRevision: z.number().int().nullable(),
  sourceHoldUntil: timestamp.nullable().openapi({ description: "While ready-on-destination: when the source's hold ends if it never reports the port released (migrationHoldMs)" }),
}).openapi("Migration");
export const migrationWait = migration.extend({ ready: z.boolean().openapi({ description: "ready on its host (ready or ready-on-destination), and that host is readyOn if given" }) }).openapi("MigrationWait");

export const port = z.object({
  id: z.string(),
  tenant: z.string(),
  network: z.string(),
  host: z.string().nullable(),
  device: z.string().optional().openapi({ description: "The host device it names; absent: the agent finds it by MAC" }),
  mac: z.string(),
  ips: z.array(z.string()),
  allowed: z.array(allowedView),
  protection: levelOrNull.openapi({ description: "Set on the port; null inherits the network's" }),
  level: level.openapi({ description: "Effective level, the global switch included" }),
  migration,
  revision: z.number().int(),
}).openapi("Port");
export const portCreate = z.strictObject({
  id: z.string().openapi({ example: "alice-0" }),
  network: z.string(),
  tenant: z.string().optional().openapi({ description: "Default: the token's tenant, or (admins) the network's" }),
  host: name.nullable().optional().openapi({ description: "The host the port runs on; admin only" }),
  device: z.string().optional().openapi({ example: "vnet0", description: "The host device (vnetN, tapX, an OVS iface-id); absent: the agent finds the device by the port's MAC (a libvirt or Xen tap carries it with first octet fe)" }),
  mac: z.string().openapi({ example: "52:54:00:00:00:01" }),
  ips: z.array(z.string()).optional().openapi({ example: ["10.0.0.1", "2001:db8::1"] }),
  allowed: z.array(allowed).optional(),
  protection: levelOrNull.optional().openapi({ description: "null or absent: the network's level" }),
}).openapi("PortCreate");
export const portBatch = z.strictObject({ ports: z.array(portCreate) }).openapi("PortBatch");
export const portPatch = z.strictObject({
  host: name.nullable().optional().openapi({ description: "Admin only. Moving a bound port starts a migration" }),
  device: z.string().optional(),
  mac: z.string().optional(),
  ips: z.array(z.string()).optional(),
  allowed: z.array(allowed).optional(),
  protection: levelOrNull.optional().openapi({ description: "null or absent: the network's level" }),
}).openapi("PortPatch");

export const limitation = z.object({ id: z.string(), guard, description: z.string() }).openapi("Limitation");
export const hostRegistration = z.strictObject({
  driver: z.string().min(1).openapi({ example: "nftables" }),
  version: z.string().openapi({ example: "0.1.0" }),
  capabilities: z.strictObject({ guards: z.array(guard), limitations: z.array(limitation).default([]) }),
}).openapi("HostRegistration");
export const host = z.object({
  name: z.string(),
  driver: z.string(),
  version: z.string(),
  capabilities: z.object({ guards: z.array(guard), limitations: z.array(limitation) }),
  registeredAt: timestamp,
  lastSeenAt: timestamp,
  revision: z.number().int(),
}).openapi("Host");

export const drop = z.object({ reason: guard, packets: z.number().int().min(0), bytes: z.number().int().min(0) }).openapi("DropCounter");
export const reportedState = z.enum(["enforced", "awaiting-device", "ambiguous-device"]).openapi("ReportedPortState", {
  description: "enforced: the port's rules are installed; awaiting-device: its device is not on the host yet (nothing installed; fail-closed covers the devices); ambiguous-device: several devices match its MAC, so none was chosen (nothing installed)",
});
export const statusReport = z.strictObject({
  ports: z.array(z.strictObject({
    port: z.string(),
    appliedRevision: z.number().int().min(0),
    state: reportedState.default("enforced").openapi({ description: "Absent: enforced (agents before this field reported enforced ports only)" }),
    guardsEnforced: z.array(guard).default([]),
    guardsMissing: z.array(guard).default([]),
    drops: z.array(drop.strict()).default([]),
    driftRepairs: z.number().int().min(0).default(0).openapi({ description: "Syncs that re-installed the port's rules after they changed behind the agent's back, since the agent started" }),
    lastDriftMs: z.number().int().min(0).optional().openapi({ description: "When the last such repair was (ms since the epoch, the agent's clock)" }),
  })),
  released: z.array(z.string()).default([]).openapi({ description: "Ports of this host's desired set it let go of (the VM left: migrate-out, unplug); a migration's source releasing the port ends the migration" }),
  events: z.array(z.object({
    id: z.string().min(1).max(300),
    port: z.string(),
    reason: guard,
    firstSeenMs: z.number().int().min(0),
    lastSeenMs: z.number().int().min(0),
    count: z.number().int().min(0),
    claimed: z.array(z.string().max(100)).max(10).default([]),
    samples: z.array(z.record(z.string(), z.union([z.string().max(100), z.number()]))).max(10).default([]),
    tenant: z.string().optional(),
    network: z.string().optional(),
  }).openapi("SpoofEventReport")).max(1000).default([]).openapi({ description: "Spoof events of this host's ports (new or updated since the last report); events of ports not bound here are ignored" }),
}).openapi("StatusReport");
export const statusAccepted = z.object({
  revision: z.number().int(),
  readyMigrations: z.array(z.string()).openapi({ description: "Migrating ports this report made ready on this host (their sources still keep them)" }),
  completedMigrations: z.array(z.string()).openapi({ description: "Migrations away from this host that this report ended by releasing their ports" }),
  ignoredEvents: z.array(z.string()).optional().openapi({ description: "Ids of reported events whose port is not bound to this host (not stored)" }),
}).openapi("StatusAccepted");

export const frameSample = z.record(z.string(), z.union([z.string(), z.number()])).openapi("FrameSample", { description: "Decoded fields of a sampled dropped frame: atMs, srcMac, dstMac, protocol, srcIp, dstIp, arpOp, arpSenderMac, arpSenderIp, arpTargetIp, ndTarget, claimed" });
export const spoofEvent = z.object({
  id: z.string().openapi({ description: "host/port/reason/first seen (ms): unique" }),
  host: z.string(),
  port: z.string(),
  tenant: z.string(),
  network: z.string(),
  reason: guard,
  firstSeenAt: z.string(),
  lastSeenAt: z.string(),
  count: z.number().int().openapi({ description: "Frames dropped in this episode" }),
  claimed: z.array(z.string()).openapi({ description: "What the sampled frames claimed (an address or MAC), most frequent first; empty when no frame was sampled" }),
  claimedFrom: z.object({ port: z.string(), tenant: z.string() }).nullable().openapi({ description: "The port holding claimed[0] on the network; shown to the admin and to its own tenant only" }),
  samples: z.array(frameSample),
  updatedMs: z.number().int().openapi({ description: "When the controller last stored this event: pass the largest as changedAfter to wait for newer ones" }),
}).openapi("SpoofEvent");
export const eventPage = z.object({
  events: z.array(spoofEvent),
  next: z.string().nullable().openapi({ description: "Pass as `before` for the next (older) page; null on the last page" }),
  cursor: z.number().int().openapi({ description: "Pass as `changedAfter` to wait for events stored after this answer" }),
}).openapi("SpoofEventPage");
export const portStatus = z.object({
  port: z.string(),
  host: z.string().nullable(),
  level,
  guardsRequired: z.array(guard),
  guardsMissing: z.array(guard).openapi({ description: "Guards the level needs that the bound host's driver lacks" }),
  limitations: z.array(limitation),
  hostRegistered: z.boolean(),
  migration,
  reports: z.array(z.object({
    host: z.string(),
    port: z.string(),
    appliedRevision: z.number().int(),
    state: reportedState.openapi({ description: "Only an enforced port counts as applied" }),
    guardsEnforced: z.array(guard),
    guardsMissing: z.array(guard),
    drops: z.array(drop),
    driftRepairs: z.number().int().openapi({ description: "Syncs that re-installed the port's rules after they drifted, since the host's agent started" }),
    lastDriftAt: timestamp.nullable().openapi({ description: "When the last drift repair was (the agent's clock); null if none" }),
    reportedAt: timestamp,
  })),
}).openapi("PortStatus");

export const policy = z.object({
  port: z.string(),
  tenant: z.string(),
  network: z.string(),
  device: z.string().optional(),
  level,
  macs: z.array(z.string()),
  bindings: z.array(z.object({ mac: z.string(), prefix: z.string() })),
  guards: z.array(guard),
}).openapi("PortPolicy");
export const desired = z.object({
  revision: z.number().int(),
  host: z.string(),
  config: z.object({ antiSpoofing: z.boolean(), failClosed: z.boolean() }),
  ports: z.array(policy),
}).openapi("Desired");

export const role = z.enum(["admin", "tenant", "agent"]);
export const tokenCreate = z.strictObject({
  role,
  tenant: name.optional().openapi({ description: "Required for role tenant" }),
  host: name.optional().openapi({ description: "Required for role agent" }),
  name: z.string().max(200).optional(),
}).openapi("TokenCreate");
export const tokenView = z.object({ id: z.string(), role, tenant: z.string().nullable(), host: z.string().nullable(), name: z.string(), createdAt: timestamp, revision: z.number().int() }).openapi("Token");
export const tokenCreated = tokenView.extend({ token: z.string().openapi({ description: "The secret; shown once, stored only as a hash" }) }).openapi("TokenCreated");

export const timeoutMs = z.coerce.number().int().min(0).max(120_000).optional().openapi({ description: "Long-poll wait, at most 120000; default 30000" });
