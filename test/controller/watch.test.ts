// The revision watch tells a woken long-poll which revision woke it, so the poll answers without asking
// the store again; a replica whose watch lags behind the agent's `since` may wake it for an older
// change, and then the poll must keep waiting. Two controllers on one SQLite file stand in for two
// replicas: the second has no commit events from the first and polls only when told (refresh()).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { startController } from "../../src/controller/server.ts";
import { cleanup } from "./helpers.ts";

const ADMIN = "watch-test-admin-token-0123456789";

test("a woken long-poll answers the change that woke it, and keeps waiting when the change is older than its since", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vg-controller-scale-watch-"));
  cleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  const store = `sqlite://${join(dir, "c.db")}`;
  const options = { store, bootstrapTokens: [ADMIN], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent" } as const;
  const a = await startController(options);
  cleanup(t, () => a.close());
  const b = await startController({ ...options, watchPollMs: 3_600_000 }); // the lagging replica
  cleanup(t, () => b.close());
  const call = async (base: string, method: string, path: string, body?: unknown, token = ADMIN): Promise<{ status: number; json: any }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  assert.equal((await call(a.url, "POST", "/v1/networks", { id: "n1", tenant: "alice" })).status, 201);
  const agent = (await call(a.url, "POST", "/v1/tokens", { role: "agent", host: "h1" })).json.token as string;
  const port = (id: string, host: string, k: number) => ({ id, tenant: "alice", network: "n1", host, device: `vnet${k}`, mac: `52:54:00:00:00:0${k}`, ips: [`10.0.0.${k}`] });

  // Through a, which saw the write: woken by it, answered at its revision.
  const before = (await call(a.url, "GET", "/v1/hosts/h1/desired", undefined, agent)).json.revision as number;
  const onA = call(a.url, "GET", `/v1/hosts/h1/desired?since=${before}&timeoutMs=20000`, undefined, agent);
  await new Promise((r) => setTimeout(r, 100));
  const created = await call(a.url, "POST", "/v1/ports", port("p1", "h1", 1));
  assert.equal(created.status, 201);
  const woke = await onA;
  assert.equal(woke.status, 200);
  assert.equal(woke.json.revision, created.json.revision);
  assert.deepEqual(woke.json.ports.map((p: { port: string }) => p.port), ["p1"]);

  // b's watch has not seen p1's revision; the agent asks b with since = that revision (learned from a).
  const since = created.json.revision as number;
  assert.ok(b.watch.revision < since);
  const onB = call(b.url, "GET", `/v1/hosts/h1/desired?since=${since}&timeoutMs=1500`, undefined, agent);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await call(a.url, "POST", "/v1/ports", port("p2", "h2", 2))).status, 201); // not h1's
  b.watch.refresh(); // wakes the poll for p1's revision, which is not after its since
  assert.equal((await onB).status, 204);

  // A change to h1 after since, seen by b's watch only on refresh: answered with it.
  const onB2 = call(b.url, "GET", `/v1/hosts/h1/desired?since=${since}&timeoutMs=20000`, undefined, agent);
  await new Promise((r) => setTimeout(r, 100));
  const moved = await call(a.url, "PATCH", "/v1/ports/p2", { host: "h1" });
  assert.equal(moved.status, 200);
  b.watch.refresh();
  const woke2 = await onB2;
  assert.equal(woke2.status, 200);
  assert.equal(woke2.json.revision, moved.json.revision);
  assert.deepEqual(woke2.json.ports.map((p: { port: string }) => p.port), ["p1", "p2"]);
});

test("the watch names, per waiting host, the newest revision that touched it (a global change touches all)", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vg-controller-scale-watch-"));
  cleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  const c = await startController({ store: `sqlite://${join(dir, "c.db")}`, bootstrapTokens: [ADMIN], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent" });
  cleanup(t, () => c.close());
  const h1 = c.watch.waitFor("h1", 20_000);
  const any = c.watch.waitFor(undefined, 20_000);
  const config = await c.store.setConfig({ antiSpoofing: false });
  assert.equal(await h1.done, true);
  assert.equal(await any.done, true);
  assert.equal(h1.revision, config.revision);
  assert.equal(any.revision, config.revision);
  // A change to h1's set wakes h1's waits and the waits for any change, not h2's.
  const network = await c.store.networks.create({ id: "n1", tenant: "alice" });
  while (c.watch.revision < network.revision) await new Promise((r) => setTimeout(r, 5)); // a wait for any change would see it
  const [a1, a2, b1, anyone] = [c.watch.waitFor("h1", 20_000), c.watch.waitFor("h1", 20_000), c.watch.waitFor("h2", 20_000), c.watch.waitFor(undefined, 20_000)];
  assert.equal(c.watch.waiting, 4);
  const [created] = await c.store.ports.create([{ id: "p1", tenant: "alice", network: "n1", host: "h1", device: "vnet1", mac: "52:54:00:00:00:01", ips: ["10.0.0.1"] }]);
  assert.deepEqual(await Promise.all([a1.done, a2.done, anyone.done]), [true, true, true]);
  assert.deepEqual([a1.revision, a2.revision, anyone.revision], [created!.revision, created!.revision, created!.revision]);
  assert.equal(c.watch.waiting, 1);
  b1.cancel();
  assert.equal(await b1.done, false);
  assert.equal(c.watch.waiting, 0);
  const timedOut = c.watch.waitFor("h1", 10);
  assert.equal(await timedOut.done, false);
  assert.equal(timedOut.revision, undefined);
});
