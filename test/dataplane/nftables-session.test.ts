// The long-lived `nft -i` session against real nft in a private namespace: batches are atomic, nft's
// errors come back with the failing command, a killed nft is replaced, and a table changed behind the
// session's back is seen (its cache is not trusted). Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { addNetns, deleteNetns } from "../../src/conformance/lab/net.ts";
import { NftSession } from "../../src/drivers/nftables/session.ts";
import { CommandError, run } from "../../src/host/run.ts";
import { requireRoot } from "../support/needs-root.ts";

test("nft -i session: atomic batches, errors with nft's message, recovery after a kill, no stale cache", async (t) => {
  if (!requireRoot(t, "creates a network namespace and nftables tables")) return;
  const netns = `vgs-${randomBytes(3).toString("hex")}`;
  await addNetns(netns);
  const session = new NftSession({ netns });
  t.after(async () => {
    session.close();
    await deleteNetns(netns);
  });
  const elements = async (): Promise<string> => (await run("nft", ["list", "set", "bridge", "vgs", "s"], { netns })).stdout;

  await session.run("add table bridge vgs\nadd set bridge vgs s { type ifname; }\nadd element bridge vgs s { \"a\" }");
  assert.match(await elements(), /"a"/);

  // The second command fails: nothing of the batch lands, and the error names the command.
  const refused = await session.run('add element bridge vgs s { "b" }\ndelete element bridge vgs s { "nope" }').then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(refused instanceof CommandError, "a refused batch rejects with CommandError");
  assert.match(refused.result.stderr, /No such file or directory/);
  assert.match(refused.result.stderr, /"nope"/);
  assert.doesNotMatch(await elements(), /"b"/);

  // The session goes on after an error; many small batches in a row.
  for (let i = 0; i < 50; i++) await session.run(`add element bridge vgs s { "x${i}" }\ndelete element bridge vgs s { "x${i}" }`);
  await session.run('add element bridge vgs s { "c" }');
  assert.match(await elements(), /"c"/);

  // Someone deletes the table by hand: the session does not act on a stale cache.
  await run("nft", ["delete", "table", "bridge", "vgs"], { netns });
  await assert.rejects(session.run('add element bridge vgs s { "d" }'), CommandError);

  // The nft process dies: the pending or next batch fails or runs on a fresh one, never hangs.
  await session.run("add table bridge vgs\nadd set bridge vgs s { type ifname; }");
  assert.ok(session.pid, "the session runs an nft process");
  process.kill(session.pid, "SIGKILL");
  const afterKill = await session.run('add element bridge vgs s { "e" }').then(
    () => "ok",
    () => "failed",
  );
  if (afterKill === "failed") await session.run('add element bridge vgs s { "e" }');
  assert.match(await elements(), /"e"/);
});

test("nft -j -i session: a listing as JSON, fresh after changes made behind its back; a missing table is nft's error", async (t) => {
  if (!requireRoot(t, "creates a network namespace and nftables tables")) return;
  const netns = `vgq-${randomBytes(3).toString("hex")}`;
  await addNetns(netns);
  const lister = new NftSession({ netns, json: true });
  t.after(async () => {
    lister.close();
    await deleteNetns(netns);
  });
  const names = async (): Promise<string[]> => {
    const set = (JSON.parse(await lister.query("list table bridge vgq")) as { nftables: { set?: { elem?: string[] } }[] }).nftables.find((o) => o.set)?.set;
    return set?.elem ?? [];
  };

  const missing = await lister.query("list table bridge vgq").then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(missing instanceof CommandError, "listing a missing table rejects");
  assert.match(missing.result.stderr, /No such file or directory/);

  await run("nft", ["add table bridge vgq; add set bridge vgq s { type ifname; }"], { netns });
  assert.deepEqual(await names(), []);
  // Changed by another nft process: the session's next listing shows it (nft -i re-reads a changed ruleset).
  await run("nft", ['add element bridge vgq s { "a", "b" }'], { netns });
  assert.deepEqual((await names()).sort(), ["a", "b"]);
  // Many listings in a row, each whole (one JSON line), interleaved with transactions on the same session.
  for (let i = 0; i < 20; i++) {
    await lister.run(`add element bridge vgq s { "x${i}" }`);
    assert.ok((await names()).includes(`x${i}`));
  }
  await run("nft", ["delete", "table", "bridge", "vgq"], { netns });
  await assert.rejects(lister.query("list table bridge vgq"), CommandError);
});
