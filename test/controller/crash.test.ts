// kill -9 of the controller while writes stream in: every acknowledged write is there after a
// restart on the same SQLite file, and nothing is half-written (each port has exactly its claims).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { Store } from "../../src/controller/store/store.ts";
import { ADMIN, cleanup, sqliteBackend } from "./helpers.ts";

function serve(store: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "fixtures", "serve.ts"), store, ADMIN], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding("utf8").once("data", (d: string) => resolve({ child, url: d.trim() }));
    child.once("exit", (code) => reject(new Error(`controller exited ${code}`)));
  });
}

test("kill -9 mid-writes loses no acknowledged write and leaves none half-done", async (t) => {
  const backend = await sqliteBackend(t);
  const first = await serve(backend.url);
  cleanup(t, () => first.child.kill("SIGKILL"));
  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${first.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal((await post("/v1/networks", { id: "n", tenant: "acme" })).status, 201);

  const acknowledged: string[] = [];
  let stop = false;
  const writers = [0, 1, 2, 3].map(async (w) => {
    for (let i = 0; !stop; i++) {
      const id = `p${w}-${i}`;
      const n = w * 10_000 + i;
      const res = await post("/v1/ports", { id, network: "n", device: `d${w}-${i}`, mac: `52:54:00:${w.toString(16).padStart(2, "0")}:${((i >> 8) & 0xff).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}`, ips: [`10.${w}.${(i >> 8) & 0xff}.${i & 0xff}`], allowed: [{ ip: `2001:db8::${n.toString(16)}` }] }).catch(() => undefined);
      if (!res) return;
      if (res.status === 201) acknowledged.push(id);
    }
  });
  while (acknowledged.length < 150) await new Promise((r) => setTimeout(r, 5));
  first.child.kill("SIGKILL");
  stop = true;
  await Promise.all(writers);

  const store = await Store.open(backend.url);
  cleanup(t, () => store.close());
  const ports = await store.db.selectFrom("port").select("id").execute();
  const ids = new Set(ports.map((p) => p.id));
  for (const id of acknowledged) assert.ok(ids.has(id), `acknowledged ${id} is lost`);
  const claims = await store.db.selectFrom("claim").select(["port", "kind"]).execute();
  for (const id of ids) {
    assert.deepEqual(claims.filter((c) => c.port === id).map((c) => c.kind).sort(), ["ip", "ip", "ip", "mac"], `claims of ${id} (its IP, its pair, its derived link-local; its MAC)`);
  }
  assert.equal(claims.length, ids.size * 4, "no claim without its port");
  assert.ok((await store.revision()) >= acknowledged.length + 1);
});
