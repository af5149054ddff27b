// The controller's state: networks, ports, hosts, statuses, tokens and the global config, in one
// SQL store (SQLite or PostgreSQL). Every write runs in one transaction that first bumps the global
// revision (on PostgreSQL that row lock also serialises writers across replicas, so the rule checks
// below see every earlier write) and records which hosts' desired sets it touched. Effects: the store.
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import type { Issue } from "../../errors.ts";
import { parseAddress, parsePrefix, type Prefix } from "../../model/ip.ts";
import type { Claim } from "../../model/port-file.ts";
import { crossTenantClaims } from "../../model/port-file.ts";
import { parseMac } from "../../model/mac.ts";
import type { Config, Level, Network, Port } from "../../model/types.ts";
import { guardsForLevel, type Guard } from "../../policy/guards.ts";
import { effectiveLevel, portPolicy, type PortPolicy } from "../../policy/port-policy.ts";
import type { Limitation } from "../../drivers/contract.ts";
import { ApiError } from "../errors.ts";
import {
  DEFAULT_MIGRATION_HOLD_MS, bindingHosts, checkNetwork, checkPort, claimRange, containingStarts, endMigration, holdEndsAt, ipClaims, macClaims, migrationState, missingGuards, rebind,
  type Binding, type MigrationState, type NetworkInput, type PortInput,
} from "../rules.ts";
import { openDatabase, REVISION_CHANNEL, type OpenedDatabase, type StoreKind } from "./open.ts";
import type { Database, PortTable } from "./schema.ts";

// Answers are plain JSON shapes (mutable arrays), as the API schemas infer them.
export type ControllerSettings = { antiSpoofing: boolean; failClosed: boolean; revision: number };
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
  device: string;
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
export type StatusReport = { port: string; appliedRevision: number; guardsEnforced: Guard[]; guardsMissing: Guard[]; drops: DropView[] };
/** What a status report changed: ports now ready on the reporting destination, migrations it ended by releasing ports. */
export type ReportOutcome = { revision: number; ready: string[]; completed: string[] };
export type ReportView = StatusReport & { host: string; reportedAt: string };
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

export type PortPatch = Readonly<{
  host?: string | null;
  device?: string;
  mac?: string;
  ips?: readonly string[];
  allowed?: readonly { ip: string; mac?: string | undefined }[];
  protection?: Level | null;
  /** Edits the allowed pairs inside the write transaction (no lost update between two edits). */
  editAllowed?: (current: readonly AllowedView[]) => readonly { ip: string; mac?: string | undefined }[];
}>;
export type NetworkPatch = Readonly<{ shared?: boolean; protection?: Level }>;
export type PortCreate = PortInput & Readonly<{ host?: string | null }>;

export type StoreOptions = Readonly<{
  /** Refuse (409) a port bound to a host whose driver lacks a guard its level needs. */
  refuseMissingGuards?: boolean;
  /**
   * How long a migration's source keeps the port after the destination applied it, unless the
   * source reports it released first (ms; 0: until released). Default DEFAULT_MIGRATION_HOLD_MS.
   */
  migrationHoldMs?: number;
  now?: () => number;
}>;

type Trx = Transaction<Database>;
type WriteContext = Readonly<{ trx: Trx; revision: number; touch(hosts: readonly string[] | "*"): void }>;
type PortRow = Selectable<PortTable>;
type Guarded = Readonly<{ canUseNetwork?: (network: Network) => boolean }>;

const ALL_HOSTS = "*";

export class Store {
  readonly kind: StoreKind;
  readonly db: Kysely<Database>;
  private readonly opened: OpenedDatabase;
  private readonly options: StoreOptions;
  private readonly now: () => number;
  readonly migrationHoldMs: number;
  /** Emits "commit" after this process committed a write (the watch also polls and listens). */
  readonly events = new EventEmitter();

  private constructor(opened: OpenedDatabase, options: StoreOptions) {
    this.opened = opened;
    this.kind = opened.kind;
    this.db = opened.db;
    this.options = options;
    this.now = options.now ?? Date.now;
    this.migrationHoldMs = options.migrationHoldMs ?? DEFAULT_MIGRATION_HOLD_MS;
    this.events.setMaxListeners(0);
  }

  static async open(url: string, options: StoreOptions = {}): Promise<Store> {
    return new Store(await openDatabase(url), options);
  }

  close(): Promise<void> {
    return this.opened.close();
  }

  /** PostgreSQL: follow commits of every replica. Undefined on SQLite (one process owns the file). */
  get listen(): OpenedDatabase["listen"] {
    return this.opened.listen;
  }

  // --- revisions and the change log ---

  async revision(): Promise<number> {
    const row = await this.db.selectFrom("revision").select("value").where("id", "=", 1).executeTakeFirstOrThrow();
    return Number(row.value);
  }

  /** Hosts whose desired set changed after `since`, up to the current revision ("*": all). */
  async changesSince(since: number): Promise<{ revision: number; hosts: Set<string> }> {
    return this.db.transaction().execute(async (trx) => {
      const revision = Number((await trx.selectFrom("revision").select("value").where("id", "=", 1).executeTakeFirstOrThrow()).value);
      const rows = await trx.selectFrom("change").select("host").distinct().where("revision", ">", since).where("revision", "<=", revision).execute();
      return { revision, hosts: new Set(rows.map((r) => r.host)) };
    });
  }

  /** The newest revision after `since` that touched `host`'s desired set, if any. */
  async lastChangeFor(host: string, since: number): Promise<number | undefined> {
    const row = await this.db.selectFrom("change").select((eb) => eb.fn.max("revision").as("max"))
      .where("revision", ">", since).where("host", "in", [host, ALL_HOSTS]).executeTakeFirst();
    return row?.max === null || row?.max === undefined ? undefined : Number(row.max);
  }

  private async write<T>(fn: (ctx: WriteContext) => Promise<T>): Promise<T> {
    const result = await this.db.transaction().execute(async (trx) => {
      const bumped = await trx.updateTable("revision").set((eb) => ({ value: eb("value", "+", 1) })).where("id", "=", 1).returning("value").executeTakeFirstOrThrow();
      const revision = Number(bumped.value);
      const touched = new Set<string>();
      const value = await fn({ trx, revision, touch: (hosts) => (hosts === "*" ? touched.add(ALL_HOSTS) : hosts.forEach((h) => touched.add(h))) });
      if (touched.size > 0) await trx.insertInto("change").values([...touched].map((host) => ({ revision, host }))).execute();
      if (this.kind === "postgres") await sql`select pg_notify(${REVISION_CHANNEL}, ${String(revision)})`.execute(trx);
      return value;
    });
    this.events.emit("commit");
    return result;
  }

  // --- config ---

  async config(db: Kysely<Database> | Trx = this.db): Promise<ControllerSettings> {
    const row = await db.selectFrom("config").selectAll().where("id", "=", 1).executeTakeFirstOrThrow();
    return { antiSpoofing: row.anti_spoofing === 1, failClosed: row.fail_closed === 1, revision: Number(row.revision) };
  }

  setConfig(patch: Readonly<{ antiSpoofing?: boolean; failClosed?: boolean }>): Promise<ControllerSettings> {
    return this.write(async ({ trx, revision, touch }) => {
      const set: { revision: number; anti_spoofing?: number; fail_closed?: number } = { revision };
      if (patch.antiSpoofing !== undefined) set.anti_spoofing = patch.antiSpoofing ? 1 : 0;
      if (patch.failClosed !== undefined) set.fail_closed = patch.failClosed ? 1 : 0;
      await trx.updateTable("config").set(set).where("id", "=", 1).execute();
      touch("*");
      return this.config(trx);
    });
  }

  // --- networks ---

  async listNetworks(filter: Readonly<{ visibleTo?: string }> = {}): Promise<NetworkView[]> {
    let q = this.db.selectFrom("network").selectAll().orderBy("id");
    if (filter.visibleTo !== undefined) q = q.where((eb) => eb.or([eb("tenant", "=", filter.visibleTo!), eb("shared", "=", 1)]));
    return (await q.execute()).map(networkView);
  }

  async getNetwork(id: string, db: Kysely<Database> | Trx = this.db): Promise<NetworkView | undefined> {
    const row = await db.selectFrom("network").selectAll().where("id", "=", id).executeTakeFirst();
    return row && networkView(row);
  }

  createNetwork(input: NetworkInput): Promise<NetworkView> {
    const network = checkNetwork(input);
    return this.write(async ({ trx, revision }) => {
      if (await this.getNetwork(network.id, trx)) throw conflict("id", network.id, "a network id not used yet");
      await trx.insertInto("network").values({ ...network, shared: network.shared ? 1 : 0, revision }).execute();
      return { ...network, revision };
    });
  }

  updateNetwork(id: string, patch: NetworkPatch, guard: Readonly<{ canChange?: (n: Network) => void }> = {}): Promise<NetworkView> {
    return this.write(async ({ trx, revision, touch }) => {
      const current = await this.getNetwork(id, trx);
      if (!current) throw notFound("network", id);
      guard.canChange?.(current);
      const next = checkNetwork({ ...current, ...patch });
      if (next.shared) {
        // A network turning shared must not keep ports below full, nor ports of tenants that claim the same addresses.
        const weak = await trx.selectFrom("port").select(["id", "protection"]).where("network", "=", id).where("protection", "in", ["mac", "off"]).limit(5).execute();
        if (weak.length > 0) {
          throw new ApiError("VG_CONFLICT", `Network ${id} cannot be shared while ports on it are below full`, weak.map((p) => ({ path: "shared", value: true, expected: `false while port ${p.id} has protection ${p.protection} (set it to full first)` })));
        }
      }
      await trx.updateTable("network").set({ shared: next.shared ? 1 : 0, protection: next.protection, revision }).where("id", "=", id).execute();
      touch(await this.hostsOfNetwork(trx, id));
      return { ...next, revision };
    });
  }

  deleteNetwork(id: string, guard: Readonly<{ canChange?: (n: Network) => void }> = {}): Promise<void> {
    return this.write(async ({ trx }) => {
      const current = await this.getNetwork(id, trx);
      if (!current) throw notFound("network", id);
      guard.canChange?.(current);
      const port = await trx.selectFrom("port").select("id").where("network", "=", id).executeTakeFirst();
      if (port) throw conflict("id", id, `a network without ports (port ${port.id} is on it)`);
      await trx.deleteFrom("network").where("id", "=", id).execute();
    });
  }

  private async hostsOfNetwork(trx: Trx, network: string): Promise<string[]> {
    const rows = await trx.selectFrom("port").select(["host", "migrating_from"]).distinct().where("network", "=", network).execute();
    return rows.flatMap((r) => [r.host, r.migrating_from]).filter((h): h is string => h !== null);
  }

  // --- ports ---

  async listPorts(filter: Readonly<{ tenant?: string; network?: string; host?: string }> = {}): Promise<PortView[]> {
    let q = this.db.selectFrom("port").selectAll().orderBy("id");
    if (filter.tenant !== undefined) q = q.where("tenant", "=", filter.tenant);
    if (filter.network !== undefined) q = q.where("network", "=", filter.network);
    if (filter.host !== undefined) q = q.where((eb) => eb.or([eb("host", "=", filter.host!), eb("migrating_from", "=", filter.host!)]));
    return this.snapshot(async (trx) => this.portViews(trx, await trx.executeQuery(q.compile()).then((r) => r.rows)));
  }

  async getPort(id: string, db?: Trx): Promise<PortView | undefined> {
    const read = async (trx: Trx): Promise<PortView | undefined> => {
      const row = await trx.selectFrom("port").selectAll().where("id", "=", id).executeTakeFirst();
      return row && (await this.portViews(trx, [row]))[0];
    };
    return db ? read(db) : this.snapshot(read);
  }

  /** Reads in one snapshot (repeatable read on PostgreSQL): a port and its statuses agree. */
  private snapshot<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    let tx = this.db.transaction();
    if (this.kind === "postgres") tx = tx.setIsolationLevel("repeatable read");
    return tx.execute(fn);
  }

  private async portViews(db: Kysely<Database> | Trx, rows: readonly PortRow[]): Promise<PortView[]> {
    if (rows.length === 0) return [];
    const config = await this.config(db);
    const networkIds = [...new Set(rows.map((r) => r.network))];
    const networks = new Map((await db.selectFrom("network").selectAll().where("id", "in", networkIds).execute()).map((n) => [n.id, networkView(n)]));
    const statuses = await db.selectFrom("port_status").select(["port", "host", "applied_revision"]).where("port", "in", rows.map((r) => r.id)).execute();
    const applied = new Map(statuses.map((s) => [`${s.port} ${s.host}`, Number(s.applied_revision)]));
    return rows.map((row) => {
      const port = rowToPort(row);
      const network = networks.get(row.network)!;
      return {
        id: port.id,
        tenant: port.tenant,
        network: port.network,
        host: row.host,
        device: port.device,
        mac: port.mac,
        ips: port.ips.map((p) => p.text),
        allowed: port.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac })),
        protection: port.protection ?? null,
        level: effectiveLevel(port, network, { antiSpoofing: config.antiSpoofing }),
        migration: migrationView(binding(row), row.host === null ? undefined : applied.get(`${row.id} ${row.host}`), this.migrationHoldMs),
        revision: Number(row.revision),
      };
    });
  }

  /** Creates ports, all or none: each checked like a port-file entry, then against stored claims. */
  createPorts(inputs: readonly PortCreate[], guard: Guarded = {}, at: (i: number) => string = () => ""): Promise<PortView[]> {
    return this.write(async (ctx) => {
      const { trx, revision, touch } = ctx;
      const networks = await this.networksFor(trx, inputs.map((p) => p.network), (i) => `${at(i)}network`, guard);
      const issues: Issue[] = [];
      const ports: Port[] = [];
      inputs.forEach((input, i) => {
        try {
          ports.push(checkPort(input, networks.get(input.network)!, at(i)));
        } catch (error) {
          if (!(error instanceof ApiError)) throw error;
          issues.push(...error.issues);
        }
      });
      if (issues.length > 0) throw new ApiError("VG_INVALID", "The request is not valid; nothing was stored", issues);
      const ids = ports.map((p) => p.id);
      const taken = new Set<string>();
      for (let i = 0; i < ids.length; i += 500) {
        (await trx.selectFrom("port").select("id").where("id", "in", ids.slice(i, i + 500)).execute()).forEach((r) => taken.add(r.id));
      }
      const seen = new Set<string>();
      ports.forEach((p, i) => {
        if (taken.has(p.id) || seen.has(p.id)) issues.push({ path: `${at(i)}id`, value: p.id, expected: "a port id not used yet" });
        seen.add(p.id);
      });
      if (issues.length > 0) throw new ApiError("VG_CONFLICT", "A port id is taken; nothing was stored", issues);
      const entries = ports.map((port, i) => ({ port, at: at(i), host: inputs[i]!.host ?? null }));
      await this.checkClaims(trx, entries, new Set());
      await this.checkDevices(trx, entries.filter((e) => e.host !== null).map((e) => ({ port: e.port, at: e.at, hosts: [e.host!] })), new Set());
      const config = await this.config(trx);
      for (const e of entries) if (e.host !== null) await this.checkGuards(trx, e.port, networks.get(e.port.network)!, config, e.host, e.at);
      for (let i = 0; i < entries.length; i += 200) {
        const chunk = entries.slice(i, i + 200);
        await trx.insertInto("port").values(chunk.map((e) => portRow(e.port, { host: e.host, migratingFrom: null, boundRevision: revision, readySinceMs: null }, revision))).execute();
        const claims = chunk.flatMap((e) => claimRows(e.port));
        for (let j = 0; j < claims.length; j += 300) await trx.insertInto("claim").values(claims.slice(j, j + 300)).execute();
      }
      touch(entries.flatMap((e) => (e.host === null ? [] : [e.host])));
      const views: PortView[] = [];
      for (let i = 0; i < ids.length; i += 500) {
        views.push(...(await this.portViews(trx, await trx.selectFrom("port").selectAll().where("id", "in", ids.slice(i, i + 500)).execute())));
      }
      const order = new Map(ids.map((id, i) => [id, i]));
      return views.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
    });
  }

  updatePort(id: string, patch: PortPatch, guard: Readonly<{ canChange?: (p: Port) => void }> = {}): Promise<PortView> {
    return this.write(async ({ trx, revision, touch }) => {
      const row = await trx.selectFrom("port").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw notFound("port", id);
      const current = rowToPort(row);
      guard.canChange?.(current);
      const network = (await this.getNetwork(row.network, trx))!;
      const port = checkPort({
        id, tenant: current.tenant, network: current.network,
        device: patch.device ?? current.device,
        mac: patch.mac ?? current.mac,
        ips: patch.ips ?? current.ips.map((p) => p.text),
        allowed: patch.editAllowed?.(current.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac })))
          ?? patch.allowed ?? current.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac })),
        protection: patch.protection === undefined ? current.protection : patch.protection,
      }, network);
      const before = binding(row);
      const after = patch.host === undefined ? before : rebind(before, patch.host, revision);
      await this.checkClaims(trx, [{ port, at: "" }], new Set([id]));
      await this.checkDevices(trx, [{ port, at: "", hosts: bindingHosts(after) }], new Set([id]));
      if (after.host !== null) await this.checkGuards(trx, port, network, await this.config(trx), after.host, "");
      await trx.updateTable("port").set(portRow(port, after, revision)).where("id", "=", id).execute();
      await trx.deleteFrom("claim").where("port", "=", id).execute();
      await trx.insertInto("claim").values(claimRows(port)).execute();
      touch([...bindingHosts(before), ...bindingHosts(after)]);
      return (await this.getPort(id, trx))!;
    });
  }

  deletePort(id: string, guard: Readonly<{ canChange?: (p: Port) => void }> = {}): Promise<void> {
    return this.write(async ({ trx, touch }) => {
      const row = await trx.selectFrom("port").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw notFound("port", id);
      guard.canChange?.(rowToPort(row));
      await trx.deleteFrom("port").where("id", "=", id).execute();
      await trx.deleteFrom("claim").where("port", "=", id).execute();
      await trx.deleteFrom("port_status").where("port", "=", id).execute();
      touch(bindingHosts(binding(row)));
    });
  }

  private async networksFor(trx: Trx, ids: readonly string[], path: (i: number) => string, guard: Guarded): Promise<Map<string, Network>> {
    const wanted = [...new Set(ids)];
    const rows = wanted.length === 0 ? [] : await trx.selectFrom("network").selectAll().where("id", "in", wanted).execute();
    const networks = new Map(rows.map((r) => [r.id, networkView(r) as Network]));
    const issues: Issue[] = [];
    ids.forEach((id, i) => {
      const network = networks.get(id);
      if (!network) issues.push({ path: path(i), value: id, expected: "an existing network" });
      else if (guard.canUseNetwork && !guard.canUseNetwork(network)) issues.push({ path: path(i), value: id, expected: "a network of your tenant, or a shared one" });
    });
    if (issues.some((i) => i.expected.startsWith("a network of"))) throw new ApiError("VG_FORBIDDEN", "You may not create ports on this network", issues);
    if (issues.length > 0) throw new ApiError("VG_NOT_FOUND", "No such network", issues);
    return networks;
  }

  /**
   * No tenant may hold or be allowed an address (or a prefix overlapping one) or a MAC that another
   * tenant's port holds on the same network. The SQL finds candidates by range; the model's
   * crossTenantClaims() decides and words the issue, exactly as for a port file.
   */
  private async checkClaims(trx: Trx, entries: readonly { port: Port; at: string }[], replacing: ReadonlySet<string>): Promise<void> {
    const fresh: Claim[] = entries.flatMap((e, i) => ipClaims(e.port, i + 1, e.at));
    const stored = new Map<string, Claim>();
    for (const claim of fresh) {
      const { lo, hi } = claimRange(claim.prefix);
      const rows = await trx.selectFrom("claim").selectAll()
        .where("network", "=", claim.network).where("kind", "=", "ip").where("family", "=", claim.prefix.family).where("tenant", "<>", claim.tenant)
        .where((eb) => eb.or([eb.and([eb("lo", ">=", lo), eb("lo", "<=", hi)]), eb("lo", "in", containingStarts(claim.prefix))]))
        .execute();
      for (const row of rows) {
        if (replacing.has(row.port) || !(row.lo <= hi && row.hi >= lo)) continue;
        const prefix = parsePrefix(row.text);
        if (prefix.ok) stored.set(`${row.port} ${row.path}`, { port: row.port, tenant: row.tenant, network: row.network, order: 0, path: row.path, prefix: prefix.prefix });
      }
    }
    const freshPaths = new Set(fresh.map((c) => c.path));
    const issues = crossTenantClaims([...stored.values(), ...fresh]).filter((i) => freshPaths.has(i.path));

    const macs = entries.flatMap((e) => macClaims(e.port, e.at));
    const seen = new Map<string, (typeof macs)[number]>();
    for (const claim of macs) {
      const key = `${claim.network} ${claim.mac}`;
      const earlier = seen.get(key);
      if (earlier && earlier.tenant !== claim.tenant) {
        issues.push({ path: claim.path, value: claim.mac, expected: `a MAC no other tenant uses on network ${claim.network} (${earlier.path} of port ${earlier.port}, tenant ${earlier.tenant}, has it)` });
        continue;
      }
      if (!earlier) seen.set(key, claim);
      const row = await trx.selectFrom("claim").select(["port", "tenant", "path"])
        .where("network", "=", claim.network).where("kind", "=", "mac").where("lo", "=", claim.mac).where("tenant", "<>", claim.tenant)
        .execute();
      const other = row.find((r) => !replacing.has(r.port));
      if (other) issues.push({ path: claim.path, value: claim.mac, expected: `a MAC no other tenant uses on network ${claim.network} (${other.path} of port ${other.port}, tenant ${other.tenant}, has it)` });
    }
    if (issues.length > 0) throw new ApiError("VG_ADDRESS_CLAIMED", "Another tenant's port holds this address or MAC on the same network; nothing was stored", issues);
  }

  /** Two ports on one host cannot share a device name: the agent could enforce only one of them. */
  private async checkDevices(trx: Trx, entries: readonly { port: Port; at: string; hosts: readonly string[] }[], replacing: ReadonlySet<string>): Promise<void> {
    const issues: Issue[] = [];
    const seen = new Map<string, string>();
    for (const { port, at, hosts } of entries) {
      for (const host of hosts) {
        const key = `${host} ${port.device}`;
        const earlier = seen.get(key);
        if (earlier) issues.push({ path: `${at}device`, value: port.device, expected: `a device not used by another port on host ${host} (port ${earlier} has it)` });
        seen.set(key, port.id);
        const rows = await trx.selectFrom("port").select("id").where("device", "=", port.device)
          .where((eb) => eb.or([eb("host", "=", host), eb("migrating_from", "=", host)])).execute();
        const other = rows.find((r) => !replacing.has(r.id) && r.id !== port.id);
        if (other) issues.push({ path: `${at}device`, value: port.device, expected: `a device not used by another port on host ${host} (port ${other.id} has it)` });
      }
    }
    if (issues.length > 0) throw new ApiError("VG_CONFLICT", "The device name is taken on that host; nothing was stored", issues);
  }

  private async checkGuards(trx: Trx, port: Port, network: Network, config: ControllerSettings, host: string, at: string): Promise<void> {
    if (!this.options.refuseMissingGuards) return;
    const row = await trx.selectFrom("host").select(["driver", "guards"]).where("name", "=", host).executeTakeFirst();
    if (!row) return;
    const level = effectiveLevel(port, network, { antiSpoofing: config.antiSpoofing });
    const missing = missingGuards(level, JSON.parse(row.guards) as Guard[]);
    if (missing.length > 0) {
      throw new ApiError("VG_MISSING_GUARDS", `Host ${host} cannot enforce level ${level} of port ${port.id}; nothing was stored`, [
        { path: `${at}host`, value: host, expected: `a host whose driver enforces every guard of level ${level} (driver ${row.driver} lacks ${missing.join(", ")})` },
      ]);
    }
  }

  // --- hosts, status and migration ---

  registerHost(name: string, registration: HostRegistration): Promise<HostView> {
    return this.write(async ({ trx, revision }) => {
      const now = this.now();
      const values = {
        driver: registration.driver,
        version: registration.version,
        guards: JSON.stringify([...registration.guards].sort()),
        limitations: JSON.stringify(registration.limitations),
        last_seen_ms: now,
        revision,
      };
      await trx.insertInto("host").values({ name, registered_ms: now, ...values }).onConflict((oc) => oc.column("name").doUpdateSet(values)).execute();
      return (await this.getHost(name, trx))!;
    });
  }

  /** Liveness only: updates lastSeenAt without a new revision (nobody watches it). */
  async heartbeat(name: string): Promise<HostView | undefined> {
    await this.db.updateTable("host").set({ last_seen_ms: this.now() }).where("name", "=", name).execute();
    return this.getHost(name);
  }

  async getHost(name: string, db: Kysely<Database> | Trx = this.db): Promise<HostView | undefined> {
    const row = await db.selectFrom("host").selectAll().where("name", "=", name).executeTakeFirst();
    return row && hostView(row);
  }

  async listHosts(): Promise<HostView[]> {
    return (await this.db.selectFrom("host").selectAll().orderBy("name").execute()).map(hostView);
  }

  deleteHost(name: string): Promise<void> {
    return this.write(async ({ trx }) => {
      const deleted = await trx.deleteFrom("host").where("name", "=", name).executeTakeFirst();
      if (deleted.numDeletedRows === 0n) throw notFound("host", name);
    });
  }

  /**
   * Stores what `host`'s agent reports for its ports. A destination that applied a migrating port at
   * (or after) the revision that moved it makes it ready there; the source still keeps it. `released`
   * names ports the host let go of (the VM left: migrate-out, unplug): a source releasing a migrating
   * port ends the migration (its desired set drops the port), and the host's report of it goes.
   */
  reportStatus(host: string, reports: readonly StatusReport[], released: readonly string[] = []): Promise<ReportOutcome> {
    return this.write(async ({ trx, revision, touch }) => {
      const ids = [...new Set([...reports.map((r) => r.port), ...released])];
      const rows = new Map<string, PortRow>();
      for (let i = 0; i < ids.length; i += 500) {
        (await trx.selectFrom("port").selectAll().where("id", "in", ids.slice(i, i + 500)).execute()).forEach((r) => rows.set(r.id, r));
      }
      const issues: Issue[] = [];
      reports.forEach((r, i) => {
        const row = rows.get(r.port);
        if (!row || !bindingHosts(binding(row)).includes(host)) issues.push({ path: `ports[${i}].port`, value: r.port, expected: `a port bound to host ${host}` });
      });
      if (issues.length > 0) throw new ApiError("VG_FORBIDDEN", `Host ${host} may only report its own ports; nothing was stored`, issues);
      const reported = new Set(reports.map((r) => r.port));
      released.forEach((port, i) => {
        if (reported.has(port)) issues.push({ path: `released[${i}]`, value: port, expected: "a port not also reported as enforced in ports" });
      });
      if (issues.length > 0) throw new ApiError("VG_INVALID", "A port cannot be both enforced and released; nothing was stored", issues);
      const now = this.now();
      const ready: string[] = [];
      const completed: string[] = [];
      for (const r of reports) {
        const values = {
          applied_revision: r.appliedRevision,
          guards_enforced: JSON.stringify(r.guardsEnforced),
          guards_missing: JSON.stringify(r.guardsMissing),
          drops: JSON.stringify(r.drops),
          reported_ms: now,
          revision,
        };
        await trx.insertInto("port_status").values({ port: r.port, host, ...values }).onConflict((oc) => oc.columns(["port", "host"]).doUpdateSet(values)).execute();
        const row = rows.get(r.port)!;
        if (row.host === host && row.migrating_from !== null && row.ready_since_ms === null && r.appliedRevision >= Number(row.bound_revision)) {
          await trx.updateTable("port").set({ ready_since_ms: now, revision }).where("id", "=", r.port).execute();
          ready.push(r.port);
        }
      }
      for (const port of new Set(released)) {
        const row = rows.get(port);
        // A port no longer bound here (its migration already ended, or it was deleted) is released already.
        if (!row || !bindingHosts(binding(row)).includes(host)) continue;
        await trx.deleteFrom("port_status").where("port", "=", port).where("host", "=", host).execute();
        if (row.migrating_from === host) {
          await this.setBinding(trx, row, endMigration(binding(row)), revision);
          touch([host]);
          completed.push(port);
        } else if (row.migrating_from !== null) {
          // The destination let go (an incoming migration failed): it is not ready there any more.
          await trx.updateTable("port").set({ ready_since_ms: null, revision }).where("id", "=", port).execute();
        }
      }
      await trx.updateTable("host").set({ last_seen_ms: now }).where("name", "=", host).execute();
      return { revision, ready, completed };
    });
  }

  /**
   * Ends the migrations whose source held the port for migrationHoldMs after the destination applied
   * it without reporting it released (a source whose hook never ran); returns their ports.
   */
  async expireHolds(): Promise<string[]> {
    if (this.migrationHoldMs <= 0) return [];
    const due = (db: Kysely<Database> | Trx) => db.selectFrom("port").selectAll()
      .where("migrating_from", "is not", null).where("ready_since_ms", "<=", this.now() - this.migrationHoldMs).execute();
    if ((await due(this.db)).length === 0) return []; // the common case writes nothing
    return this.write(async ({ trx, revision, touch }) => {
      const rows = await due(trx); // again inside the write: another replica may have ended them
      for (const row of rows) {
        await trx.deleteFrom("port_status").where("port", "=", row.id).where("host", "=", row.migrating_from!).execute();
        await this.setBinding(trx, row, endMigration(binding(row)), revision);
        touch([row.migrating_from!]);
      }
      return rows.map((r) => r.id);
    });
  }

  private async setBinding(trx: Trx, row: PortRow, b: Binding, revision: number): Promise<void> {
    await trx.updateTable("port").set({ host: b.host, migrating_from: b.migratingFrom, bound_revision: b.boundRevision, ready_since_ms: b.readySinceMs, revision }).where("id", "=", row.id).execute();
  }

  portStatus(id: string): Promise<PortStatusView | undefined> {
    return this.snapshot((trx) => this.readPortStatus(trx, id));
  }

  private async readPortStatus(trx: Trx, id: string): Promise<PortStatusView | undefined> {
    const row = await trx.selectFrom("port").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) return undefined;
    const view = (await this.portViews(trx, [row]))[0]!;
    const host = row.host === null ? undefined : await this.getHost(row.host, trx);
    const required = [...guardsForLevel(view.level)];
    const reports = await trx.selectFrom("port_status").selectAll().where("port", "=", id).orderBy("host").execute();
    return {
      port: id,
      host: row.host,
      level: view.level,
      guardsRequired: required,
      guardsMissing: missingGuards(view.level, host?.guards),
      limitations: (host?.limitations ?? []).filter((l) => required.includes(l.guard)),
      hostRegistered: host !== undefined,
      migration: view.migration,
      reports: reports.map((r) => ({
        port: r.port,
        host: r.host,
        appliedRevision: Number(r.applied_revision),
        guardsEnforced: JSON.parse(r.guards_enforced) as Guard[],
        guardsMissing: JSON.parse(r.guards_missing) as Guard[],
        drops: JSON.parse(r.drops) as DropView[],
        reportedAt: new Date(Number(r.reported_ms)).toISOString(),
      })),
    };
  }

  // --- desired state ---

  /** The host's desired set and the revision it is as of, read in one snapshot. */
  desired(host: string): Promise<DesiredState> {
    return this.snapshot(async (trx) => {
      const revision = Number((await trx.selectFrom("revision").select("value").where("id", "=", 1).executeTakeFirstOrThrow()).value);
      const config = await this.config(trx);
      const rows = await trx.selectFrom("port").selectAll()
        .where((eb) => eb.or([eb("host", "=", host), eb("migrating_from", "=", host)])).orderBy("id").execute();
      const networkIds = [...new Set(rows.map((r) => r.network))];
      const networks = new Map(networkIds.length === 0 ? [] : (await trx.selectFrom("network").selectAll().where("id", "in", networkIds).execute()).map((n) => [n.id, networkView(n)]));
      const model: Config = { antiSpoofing: config.antiSpoofing };
      const ports = rows.map((row) => portPolicy(rowToPort(row), networks.get(row.network)!, model));
      return { revision, host, config: { antiSpoofing: config.antiSpoofing, failClosed: config.failClosed }, ports };
    });
  }

  // --- tokens ---

  createToken(init: Readonly<{ role: Role; tenant?: string | null; host?: string | null; name?: string }>, hash: (secret: string) => string): Promise<{ token: string; view: TokenView }> {
    const secret = `vg_${randomBytes(32).toString("base64url")}`;
    const id = randomBytes(6).toString("hex");
    return this.write(async ({ trx, revision }) => {
      const row = { id, hash: hash(secret), role: init.role, tenant: init.tenant ?? null, host: init.host ?? null, name: init.name ?? "", created_ms: this.now(), revision };
      await trx.insertInto("token").values(row).execute();
      return { token: secret, view: tokenView(row) };
    });
  }

  async listTokens(): Promise<TokenView[]> {
    return (await this.db.selectFrom("token").selectAll().orderBy("created_ms").orderBy("id").execute()).map(tokenView);
  }

  async findToken(hash: string): Promise<TokenView | undefined> {
    const row = await this.db.selectFrom("token").selectAll().where("hash", "=", hash).executeTakeFirst();
    return row && tokenView(row);
  }

  deleteToken(id: string): Promise<void> {
    return this.write(async ({ trx }) => {
      const deleted = await trx.deleteFrom("token").where("id", "=", id).executeTakeFirst();
      if (deleted.numDeletedRows === 0n) throw notFound("token", id);
    });
  }
}

function binding(row: PortRow): Binding {
  return { host: row.host, migratingFrom: row.migrating_from, boundRevision: Number(row.bound_revision), readySinceMs: row.ready_since_ms === null ? null : Number(row.ready_since_ms) };
}

function migrationView(b: Binding, applied: number | undefined, holdMs: number): MigrationView {
  const holdEnds = holdEndsAt(b, holdMs);
  return {
    state: migrationState(b, applied), host: b.host, source: b.migratingFrom, boundRevision: b.boundRevision, appliedRevision: applied ?? null,
    sourceHoldUntil: holdEnds === undefined ? null : new Date(holdEnds).toISOString(),
  };
}

function networkView(row: Selectable<Database["network"]>): NetworkView {
  return { id: row.id, tenant: row.tenant, shared: row.shared === 1, protection: row.protection as Level, revision: Number(row.revision) };
}

function hostView(row: Selectable<Database["host"]>): HostView {
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

function tokenView(row: Selectable<Database["token"]>): TokenView {
  return { id: row.id, role: row.role as Role, tenant: row.tenant, host: row.host, name: row.name, createdAt: new Date(Number(row.created_ms)).toISOString(), revision: Number(row.revision) };
}

function portRow(port: Port, b: Binding, revision: number): PortTable {
  return {
    id: port.id,
    tenant: port.tenant,
    network: port.network,
    host: b.host,
    migrating_from: b.migratingFrom,
    bound_revision: b.boundRevision,
    ready_since_ms: b.readySinceMs,
    device: port.device,
    mac: port.mac,
    ips: JSON.stringify(port.ips.map((p) => p.text)),
    allowed: JSON.stringify(port.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac }))),
    protection: port.protection ?? null,
    revision,
  };
}

/** Stored rows are canonical (they passed checkPort), so parsing them back cannot fail. */
function rowToPort(row: PortRow): Port {
  const prefix = (text: string): Prefix => {
    const parsed = text.includes("/") ? parsePrefix(text) : { ok: true as const, prefix: parseAddress(text)! };
    if (!parsed.ok) throw new Error(`bug: stored prefix ${text} of port ${row.id} does not parse`);
    return parsed.prefix;
  };
  return {
    id: row.id,
    tenant: row.tenant,
    network: row.network,
    device: row.device,
    mac: parseMac(row.mac)!,
    ips: (JSON.parse(row.ips) as string[]).map(prefix),
    allowed: (JSON.parse(row.allowed) as AllowedView[]).map((a) => ({ ip: prefix(a.ip), mac: parseMac(a.mac)! })),
    protection: (row.protection ?? undefined) as Level | undefined,
  };
}

function claimRows(port: Port): Database["claim"][] {
  const ips = ipClaims(port, 0).map((c) => ({ network: port.network, port: port.id, tenant: port.tenant, kind: "ip", family: c.prefix.family, ...claimRange(c.prefix), length: c.prefix.length, text: c.prefix.text, path: c.path }));
  const macs = macClaims(port).map((c) => ({ network: port.network, port: port.id, tenant: port.tenant, kind: "mac", family: 0, lo: c.mac, hi: c.mac, length: 48, text: c.mac, path: c.path }));
  return [...ips, ...macs];
}

function notFound(what: string, id: string): ApiError {
  return new ApiError("VG_NOT_FOUND", `No ${what} ${id}`, [{ path: "id", value: id, expected: `an existing ${what}` }]);
}

function conflict(path: string, value: unknown, expected: string): ApiError {
  return new ApiError("VG_CONFLICT", "The request conflicts with the stored state; nothing was stored", [{ path, value, expected }]);
}
