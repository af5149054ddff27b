// Opens the store named by a URL: `sqlite:///var/lib/vifguard-controller/controller.db` (better-sqlite3, the
// default) or `postgres://user@host:5432/db` (pg); migrates it; on PostgreSQL also follows the
// revision channel (LISTEN/NOTIFY). Effects: files, sockets.
import { closeSync, openSync } from "node:fs";
import Database from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect } from "kysely";
import pg from "pg";
import { ControllerConfigError } from "../errors.ts";
import { migrations } from "./migrations.ts";
import { cachedStatements, QueuedSqliteDialect } from "./sqlite.ts";
import type { Database as Schema } from "./schema.ts";

export type StoreKind = "sqlite" | "postgres";

/** The PostgreSQL channel every committed write notifies with its revision. */
export const REVISION_CHANNEL = "vifguard_revision";

export type OpenedDatabase = Readonly<{
  kind: StoreKind;
  db: Kysely<Schema>;
  /** PostgreSQL only: calls `onNotify` when another connection (or replica) committed a write. */
  listen?: (onNotify: () => void) => Promise<() => Promise<void>>;
  close(): Promise<void>;
}>;

export type StoreLocation = Readonly<{ kind: "sqlite"; file: string } | { kind: "postgres"; url: string }>;

/** `sqlite:///abs/path.db`, `sqlite:relative.db`, a bare path, or `postgres(ql)://…`. */
export function parseStoreUrl(url: string): StoreLocation | undefined {
  if (/^postgres(ql)?:\/\//.test(url)) return { kind: "postgres", url };
  if (url.startsWith("sqlite://")) {
    const file = decodeURIComponent(url.slice("sqlite://".length));
    return file.length > 0 ? { kind: "sqlite", file } : undefined;
  }
  if (url.startsWith("sqlite:")) return url.length > 7 ? { kind: "sqlite", file: url.slice(7) } : undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || url.length === 0) return undefined;
  return { kind: "sqlite", file: url };
}

// int8 (bigint, oid 20) as a JS number: revisions and milliseconds stay far below 2^53.
const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format ?? "text")) as pg.CustomTypesConfig["getTypeParser"],
};

export async function openDatabase(url: string): Promise<OpenedDatabase> {
  const location = parseStoreUrl(url);
  if (!location) {
    throw new ControllerConfigError("store", [{ path: "store", value: url, expected: "sqlite:///path/to/controller.db or postgres://user@host:port/database" }]);
  }
  const opened = location.kind === "sqlite" ? openSqlite(location.file) : openPostgres(location.url);
  const migrator = new Migrator({ db: opened.db, provider: migrations });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    await opened.close();
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "?";
    throw new Error(`store ${redact(url)}: migration ${failed} failed: ${(error as Error).message}`, { cause: error });
  }
  return opened;
}

function openSqlite(file: string): OpenedDatabase {
  // A new store is created 0600 (SQLite gives its -wal and -shm files the same mode).
  if (file !== ":memory:") closeSync(openSync(file, "a", 0o600));
  const database = new Database(file);
  // WAL with synchronous=FULL: a committed write survives a crash or power loss.
  database.pragma("journal_mode = WAL");
  database.pragma("synchronous = FULL");
  database.pragma("foreign_keys = ON");
  database.pragma("busy_timeout = 5000");
  const db = new Kysely<Schema>({ dialect: new QueuedSqliteDialect(cachedStatements(database)) });
  return { kind: "sqlite", db, close: () => db.destroy() };
}

function openPostgres(url: string): OpenedDatabase {
  const pool = new pg.Pool({ connectionString: url, max: 10, types: pgTypes });
  // An idle connection the server closed (restart, failover) is dropped; the next query reconnects.
  pool.on("error", () => undefined);
  const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }) });
  const listen = async (onNotify: () => void): Promise<() => Promise<void>> => {
    let client: pg.Client | undefined;
    let closed = false;
    let retry: NodeJS.Timeout | undefined;
    const schedule = (): void => {
      if (!closed) retry = setTimeout(() => void connect().catch(schedule), 1000);
    };
    const drop = (c: pg.Client): void => {
      if (client !== c) return;
      client = undefined;
      void c.end().catch(() => undefined);
      schedule();
    };
    const connect = async (): Promise<void> => {
      const c = new pg.Client({ connectionString: url, types: pgTypes });
      c.on("notification", () => onNotify());
      c.on("error", () => drop(c));
      c.on("end", () => drop(c));
      try {
        await c.connect();
        await c.query(`LISTEN ${REVISION_CHANNEL}`);
      } catch (error) {
        void c.end().catch(() => undefined);
        throw error;
      }
      client = c;
      onNotify(); // anything committed while we were not listening
    };
    await connect();
    return async () => {
      closed = true;
      clearTimeout(retry);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    };
  };
  return { kind: "postgres", db, listen, close: () => db.destroy() };
}

/** The URL without its password, for messages. */
export function redact(url: string): string {
  return url.replace(/(\/\/[^:/@]*):[^@/]*@/, "$1:***@");
}
