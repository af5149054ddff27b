// The store's write core: one SQL database (SQLite or PostgreSQL), the global revision, the change log
// and the global config. Every write runs in one transaction that first bumps the global revision (on
// PostgreSQL that row lock also serialises writers across replicas, so the rule checks in the rooms see
// every earlier write) and records which hosts' desired sets it touched. Effects: the store.
import { EventEmitter } from "node:events";
import { sql, type Kysely, type Transaction } from "kysely";
import { ApiError } from "../errors.ts";
import { DEFAULT_MIGRATION_HOLD_MS } from "../rules.ts";
import { REVISION_CHANNEL, type OpenedDatabase, type StoreKind } from "./open.ts";
import type { EventRetention } from "./events.ts";
import type { Database } from "./schema.ts";

export type ControllerSettings = { antiSpoofing: boolean; failClosed: boolean; revision: number };

export type StoreOptions = Readonly<{
  /** Refuse (409) a port bound to a host whose driver lacks a guard its level needs. */
  refuseMissingGuards?: boolean;
  /**
   * How long a migration's source keeps the port after the destination applied it, unless the
   * source reports it released first (ms; 0: until released). Default DEFAULT_MIGRATION_HOLD_MS.
   */
  migrationHoldMs?: number;
  /** Per port: at most this many fixed addresses (default DEFAULT_PORT_LIMITS.addresses). */
  maxAddressesPerPort?: number;
  /** Per port: at most this many allowed pairs (default DEFAULT_PORT_LIMITS.allowedPairs). */
  maxAllowedPairsPerPort?: number;
  /** How long and how many spoof events are kept; default DEFAULT_EVENT_RETENTION (7 days, 100,000). */
  eventRetention?: EventRetention;
  now?: () => number;
}>;

/** The largest port the controller stores: its checks stay well inside one event-loop turn budget. */
export const DEFAULT_PORT_LIMITS = { addresses: 256, allowedPairs: 256 } as const;

export type Trx = Transaction<Database>;
/** A read that may run on its own or inside a caller's transaction. */
export type Reader = Kysely<Database> | Trx;
export type WriteContext = Readonly<{ trx: Trx; revision: number; touch(hosts: readonly string[] | "*"): void }>;

const ALL_HOSTS = "*";

export class StoreCore {
  readonly kind: StoreKind;
  readonly db: Kysely<Database>;
  readonly options: StoreOptions;
  readonly now: () => number;
  readonly migrationHoldMs: number;
  /** Emits "commit" after this process committed a write (the watch also polls and listens). */
  readonly events = new EventEmitter();
  private readonly opened: OpenedDatabase;

  constructor(opened: OpenedDatabase, options: StoreOptions) {
    this.opened = opened;
    this.kind = opened.kind;
    this.db = opened.db;
    this.options = options;
    this.now = options.now ?? Date.now;
    this.migrationHoldMs = options.migrationHoldMs ?? DEFAULT_MIGRATION_HOLD_MS;
    this.events.setMaxListeners(0);
  }

  close(): Promise<void> {
    return this.opened.close();
  }

  /** PostgreSQL: follow commits of every replica. Undefined on SQLite (one process owns the file). */
  get listen(): OpenedDatabase["listen"] {
    return this.opened.listen;
  }

  // --- revisions and the change log ---

  async revision(db: Reader = this.db): Promise<number> {
    const row = await db.selectFrom("revision").select("value").where("id", "=", 1).executeTakeFirstOrThrow();
    return Number(row.value);
  }

  /** Hosts whose desired set changed after `since`, up to the current revision ("*": all), each with its newest such revision. */
  async changesSince(since: number): Promise<{ revision: number; hosts: Map<string, number> }> {
    return this.db.transaction().execute(async (trx) => {
      const revision = await this.revision(trx);
      const rows = await trx.selectFrom("change").select((eb) => ["host", eb.fn.max("revision").as("newest")]).where("revision", ">", since).where("revision", "<=", revision).groupBy("host").execute();
      return { revision, hosts: new Map(rows.map((r) => [r.host, Number(r.newest)])) };
    });
  }

  /** The newest revision after `since` that touched `host`'s desired set, if any. */
  async lastChangeFor(host: string, since: number): Promise<number | undefined> {
    const row = await this.db.selectFrom("change").select((eb) => eb.fn.max("revision").as("max"))
      .where("revision", ">", since).where("host", "in", [host, ALL_HOSTS]).executeTakeFirst();
    return row?.max === null || row?.max === undefined ? undefined : Number(row.max);
  }

  /** Runs `fn` as one write: a new revision, the hosts it touched logged, a notify on PostgreSQL. */
  async write<T>(fn: (ctx: WriteContext) => Promise<T>): Promise<T> {
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

  /**
   * Runs `fn` as write() would, then rolls everything back: nothing is stored, no revision is spent,
   * nobody is notified. The warm-up rehearses the largest writes with it (warm-up.ts).
   */
  async rehearse(fn: (ctx: WriteContext) => Promise<void>): Promise<void> {
    const rolledBack = new Error("rehearsal: rolled back");
    try {
      await this.db.transaction().execute(async (trx) => {
        const bumped = await trx.updateTable("revision").set((eb) => ({ value: eb("value", "+", 1) })).where("id", "=", 1).returning("value").executeTakeFirstOrThrow();
        await fn({ trx, revision: Number(bumped.value), touch: () => undefined });
        throw rolledBack;
      });
    } catch (error) {
      if (error !== rolledBack) throw error;
    }
  }

  /** Reads in one snapshot (repeatable read on PostgreSQL): a port and its statuses agree. */
  snapshot<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    let tx = this.db.transaction();
    if (this.kind === "postgres") tx = tx.setIsolationLevel("repeatable read");
    return tx.execute(fn);
  }

  // --- config ---

  async config(db: Reader = this.db): Promise<ControllerSettings> {
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
}

export function notFound(what: string, id: string): ApiError {
  return new ApiError("VG_NOT_FOUND", `No ${what} ${id}`, [{ path: "id", value: id, expected: `an existing ${what}` }]);
}

export function conflict(path: string, value: unknown, expected: string): ApiError {
  return new ApiError("VG_CONFLICT", "The request conflicts with the stored state; nothing was stored", [{ path, value, expected }]);
}
