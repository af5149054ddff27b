// better-sqlite3 behind Kysely, with two things Kysely's SQLite driver lacks at 1,000 long-polling
// agents. (1) A first-come, first-served queue for the one connection: Kysely's mutex wakes every
// waiter on each release and all but one go back to sleep, so n queued requests (a global change
// waking 1,000 agents) cost n² wake-ups on the event loop. (2) Prepared statements kept by their SQL:
// the driver prepares each query anew, and SQLite compiling the same few statements was a tenth of the
// controller's CPU in bench/controller-scale.ts. Effects: the database file.
import type Database from "better-sqlite3";
import { SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDatabase, type SqliteStatement } from "kysely";

/** How many distinct statements stay prepared (the IN lists of batched queries vary in length). */
export const STATEMENT_CACHE_SIZE = 500;

/**
 * The database as Kysely's driver sees it, preparing each distinct SQL text once (least recently used
 * first out). Safe because the queue below runs one query at a time and the store never streams.
 */
export function cachedStatements(database: Database.Database, size = STATEMENT_CACHE_SIZE): SqliteDatabase & { readonly prepared: number } {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => database.close(),
    prepare(sql: string): SqliteStatement {
      let statement = cache.get(sql);
      if (statement) {
        cache.delete(sql); // to the back: most recently used
      } else {
        statement = database.prepare(sql) as unknown as SqliteStatement;
        if (cache.size >= size) cache.delete(cache.keys().next().value!);
      }
      cache.set(sql, statement);
      return statement;
    },
    get prepared() {
      return cache.size;
    },
  };
}

/** Hands the one connection to waiters in the order they asked, waking only the next one. */
class QueuedSqliteDriver extends SqliteDriver implements Driver {
  private held = false;
  private readonly queue: (() => void)[] = [];

  override async acquireConnection(): Promise<DatabaseConnection> {
    if (this.held) await new Promise<void>((resolve) => this.queue.push(resolve));
    else this.held = true;
    return super.acquireConnection(); // uncontended: only the holder gets here
  }

  override async releaseConnection(): Promise<void> {
    await super.releaseConnection();
    const next = this.queue.shift();
    if (next) next(); // stays held: handed over
    else this.held = false;
  }

  /** How many wait for the connection (tests). */
  get waiting(): number {
    return this.queue.length;
  }
}

export class QueuedSqliteDialect extends SqliteDialect {
  private readonly database: SqliteDatabase;

  constructor(database: SqliteDatabase) {
    super({ database });
    this.database = database;
  }

  override createDriver(): Driver {
    return new QueuedSqliteDriver({ database: this.database });
  }
}
