// The warm-up's rehearsal on a real store (SQLite here, PostgreSQL in test/postgres/warm-up.test.ts).
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { ApiError } from "../../src/controller/errors.ts";
import { Store } from "../../src/controller/store/store.ts";
import { warmUp } from "../../src/controller/warm-up.ts";
import { cleanup, type Backend } from "./helpers.ts";

/** The warm-up rehearses the largest writes and stores nothing; a rehearsal runs the real checks and rolls back. */
export async function warmUpSuite(t: TestContext, backend: Backend): Promise<void> {
  const store = await Store.open(backend.url);
  cleanup(t, () => store.close());
  await store.networks.create({ id: "pub", tenant: "provider", shared: true });
  await store.ports.create([{ id: "alice-0", tenant: "alice", network: "pub", mac: "52:54:00:00:00:01", ips: ["10.0.0.1", "2001:db8::1"] }]);
  const state = async () => ({
    revision: await store.revision(),
    networks: (await store.networks.list()).map((n) => n.id),
    ports: (await store.ports.list()).map((p) => [p.id, p.ips]),
    claims: (await store.db.selectFrom("claim").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n,
    changes: [...(await store.changesSince(0)).hosts],
  });
  const before = await state();
  let commits = 0;
  store.events.on("commit", () => commits++);

  await warmUp(store);
  assert.deepEqual(await state(), before, "nothing of the rehearsed writes is stored, no revision spent");
  assert.equal(commits, 0, "nobody is told of a commit");

  // A rehearsal runs the store's real checks (Eve's claim on Alice's address is refused) and rolls back what it wrote.
  await assert.rejects(
    store.rehearse(async (ctx) => {
      await store.ports.createIn(ctx, [{ id: "eve-ok", tenant: "eve", network: "pub", mac: "52:54:00:00:00:02", ips: ["10.0.0.2"] }]);
      await store.ports.createIn(ctx, [{ id: "eve-0", tenant: "eve", network: "pub", mac: "52:54:00:00:00:03", ips: ["10.0.0.1"] }]);
    }),
    (e: unknown) => e instanceof ApiError && e.code === "VG_ADDRESS_CLAIMED",
  );
  assert.deepEqual(await state(), before, "the port created before the refusal is gone too");
  // And the store still takes real writes afterwards.
  await store.ports.create([{ id: "eve-1", tenant: "eve", network: "pub", mac: "52:54:00:00:00:04", ips: ["10.0.0.4"] }]);
  assert.equal(await store.revision(), before.revision + 1);
}
