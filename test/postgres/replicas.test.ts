// Two controller replicas on one PostgreSQL serve the same state: a write through A is read
// through B, a long-poll on B wakes on a change through A (LISTEN/NOTIFY, not the slow poll),
// and concurrent conflicting claims through both replicas store exactly one.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ADMIN, client, controllerOn, postgresBackend, token } from "../controller/helpers.ts";

test("two replicas on one PostgreSQL", async (t) => {
  const backend = await postgresBackend(t);
  if (!backend) return;
  // A poll far slower than the test: only NOTIFY can wake B in time.
  const a = await controllerOn(t, backend, { watchPollMs: 60_000 });
  const b = await controllerOn(t, backend, { watchPollMs: 60_000 });
  const adminA = client(a, ADMIN);
  const adminB = client(b, ADMIN);

  await t.test("a write through A is read through B, and tokens made on A work on B", async () => {
    assert.equal((await adminA("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true })).status, 201);
    assert.equal((await adminB("GET", "/v1/networks/public")).body.shared, true);
    const alice = client(b, await token(a, "tenant", "alice"));
    assert.equal((await alice("POST", "/v1/ports", { id: "alice-0", network: "public", device: "vnet0", mac: "52:54:00:00:00:01", ips: ["10.0.0.1"] })).status, 201);
    assert.equal((await adminA("GET", "/v1/ports/alice-0")).body.tenant, "alice");
    assert.equal((await adminA("GET", "/v1/revision")).body.revision, (await adminB("GET", "/v1/revision")).body.revision);
  });

  await t.test("a long-poll on B wakes on a change through A", async () => {
    const agentB = client(b, await token(a, "agent", "h1"));
    const since = (await agentB("GET", "/v1/hosts/h1/desired")).body.revision as number;
    const started = Date.now();
    const waiting = agentB("GET", `/v1/hosts/h1/desired?since=${since}&timeoutMs=20000`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await adminA("PATCH", "/v1/ports/alice-0", { host: "h1" })).status, 200);
    const woke = await waiting;
    const ms = Date.now() - started;
    assert.equal(woke.status, 200);
    assert.deepEqual(woke.body.ports.map((p: { port: string }) => p.port), ["alice-0"]);
    t.diagnostic(`B's long-poll woke ${ms} ms after it began (on A's change, not its 20 s timeout: it carries alice-0)`);
    // A migration's wait on B ends on a status report through A.
    const agentA2 = client(a, await token(a, "agent", "h2"));
    const moved = (await adminA("PATCH", "/v1/ports/alice-0", { host: "h2" })).body;
    const hook = client(b, ADMIN)("GET", "/v1/ports/alice-0/migration?readyOn=h2&timeoutMs=20000");
    await new Promise((r) => setTimeout(r, 200));
    await agentA2("PUT", "/v1/hosts/h2/status", { ports: [{ port: "alice-0", appliedRevision: moved.migration.boundRevision }] });
    assert.equal((await hook).body.ready, true);
  });

  await t.test("concurrent claims of one address through A and B: exactly one tenant gets it", async () => {
    const eve = client(a, await token(a, "tenant", "eve"));
    const mallory = client(b, await token(a, "tenant", "mallory"));
    for (let round = 0; round < 5; round++) {
      const ip = `10.1.0.${round + 1}`;
      const [x, y] = await Promise.all([
        eve("POST", "/v1/ports", { id: `eve-${round}`, network: "public", device: `vnet${round}`, mac: `52:54:00:00:01:0${round}`, ips: [ip] }),
        mallory("POST", "/v1/ports", { id: `mallory-${round}`, network: "public", device: `vnet${round}`, mac: `52:54:00:00:02:0${round}`, ips: [ip] }),
      ]);
      assert.deepEqual([x.status, y.status].sort(), [201, 409], `round ${round}: ${JSON.stringify([x.body, y.body])}`);
    }
  });
});
