// The SQLite driver under the store: statements prepared once per SQL text (and still right after the
// schema changes), and the one connection handed out first come, first served, one transaction at a time.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import Database from "better-sqlite3";
import { Kysely, sql } from "kysely";
import { cachedStatements, QueuedSqliteDialect } from "../../src/controller/store/sqlite.ts";

type Schema = { item: { id: number; note: string } };

function open(t: { after(fn: () => unknown): void }, size?: number) {
  const dir = mkdtempSync(join(tmpdir(), "vg-controller-scale-sqlite-"));
  const database = new Database(join(dir, "x.db"));
  database.pragma("journal_mode = WAL");
  const cached = cachedStatements(database, size);
  const db = new Kysely<Schema>({ dialect: new QueuedSqliteDialect(cached) });
  t.after(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  return { database, cached, db };
}

test("one statement per SQL text, the least recently used one dropped beyond the cache's size", (t) => {
  const { database, cached } = open(t, 3);
  database.exec("create table item (id integer primary key, note text not null)");
  const a = cached.prepare("select 1 as x");
  assert.equal(cached.prepare("select 1 as x"), a);
  const b = cached.prepare("select 2 as x");
  cached.prepare("select 3 as x");
  cached.prepare("select 1 as x"); // a is now the most recently used
  cached.prepare("select 4 as x"); // drops b
  assert.equal(cached.prepared, 3);
  assert.equal(cached.prepare("select 1 as x"), a);
  assert.notEqual(cached.prepare("select 2 as x"), b);
  assert.deepEqual(a.all([]), [{ x: 1 }]);
});

test("a kept statement sees the schema as it is now (the store migrates through the same cache)", async (t) => {
  const { db } = open(t);
  await sql`create table item (id integer primary key, note text not null)`.execute(db);
  await db.insertInto("item").values({ id: 1, note: "one" }).execute();
  const all = () => db.selectFrom("item").selectAll().execute();
  assert.deepEqual(await all(), [{ id: 1, note: "one" }]);
  await sql`alter table item add column extra text default 'x'`.execute(db);
  assert.deepEqual(await all(), [{ id: 1, note: "one", extra: "x" }]);
  await db.insertInto("item").values({ id: 2, note: "two" }).execute();
  assert.deepEqual((await all()).map((r) => r.id), [1, 2]);
});

test("1,000 concurrent transactions run one at a time, in the order they asked for the connection", async (t) => {
  const { db } = open(t);
  await sql`create table item (id integer primary key, note text not null)`.execute(db);
  const started: number[] = [];
  let inside = 0;
  let most = 0;
  await Promise.all(Array.from({ length: 1000 }, (_, i) => db.transaction().execute(async (trx) => {
    started.push(i);
    most = Math.max(most, ++inside);
    await trx.insertInto("item").values({ id: i, note: `n${i}` }).execute();
    await new Promise((r) => setImmediate(r)); // give others a chance to cut in
    const count = await trx.selectFrom("item").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow();
    assert.equal(Number(count.n), i + 1); // every earlier transaction committed, no later one started
    inside--;
  })));
  assert.equal(most, 1);
  assert.deepEqual(started, Array.from({ length: 1000 }, (_, i) => i));
});

test("a failed transaction hands the connection on; the rows it wrote are gone", async (t) => {
  const { db } = open(t);
  await sql`create table item (id integer primary key, note text not null)`.execute(db);
  const results = await Promise.allSettled([
    db.transaction().execute(async (trx) => {
      await trx.insertInto("item").values({ id: 1, note: "lost" }).execute();
      throw new Error("refused");
    }),
    db.insertInto("item").values({ id: 2, note: "kept" }).execute(),
  ]);
  assert.equal(results[0].status, "rejected");
  assert.equal(results[1].status, "fulfilled");
  assert.deepEqual(await db.selectFrom("item").selectAll().execute(), [{ id: 2, note: "kept" }]);
});
