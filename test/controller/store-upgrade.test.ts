// A store made before migration 006 (port_status without state and drift columns) is upgraded in
// place: its reports read as enforced with no drift, and its ports stay applied.
import assert from "node:assert/strict";
import { test } from "node:test";
import Database from "better-sqlite3";
import { ADMIN, client, controllerOn, FULL_GUARDS, sqliteBackend, token } from "./helpers.ts";

test("SQLite store from before 006_port_report_state: reports stored then read as enforced, no drift, the port still applied", async (t) => {
  const backend = await sqliteBackend(t);
  const first = await controllerOn(t, backend);
  const admin = client(first, ADMIN);
  const agent = client(first, await token(first, "agent", "h1"));
  assert.equal((await admin("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true })).status, 201);
  const port = await admin("POST", "/v1/ports", { id: "alice-0", tenant: "alice", network: "public", device: "vnet0", mac: "52:54:00:00:00:01", ips: ["10.0.0.1"], host: "h1" });
  assert.equal(port.status, 201, JSON.stringify(port.body));
  const reported = await agent("PUT", "/v1/hosts/h1/status", { ports: [{ port: "alice-0", appliedRevision: port.body.migration.boundRevision, guardsEnforced: FULL_GUARDS, drops: [{ reason: "arp-spoof", packets: 5, bytes: 300 }] }] });
  assert.equal(reported.status, 200, JSON.stringify(reported.body));
  await first.close();

  // Back to what 005 left: the table without 006's columns, and 006 not recorded as run.
  const file = backend.url.slice("sqlite://".length);
  const raw = new Database(file);
  for (const column of ["state", "drift_repairs", "last_drift_ms"]) raw.exec(`ALTER TABLE port_status DROP COLUMN ${column}`);
  raw.prepare("DELETE FROM kysely_migration WHERE name = ?").run("006_port_report_state");
  assert.deepEqual(raw.prepare("SELECT name FROM pragma_table_info('port_status') WHERE name IN ('state', 'drift_repairs', 'last_drift_ms')").all(), []);
  raw.close();

  const second = await controllerOn(t, backend);
  const status = (await client(second, ADMIN)("GET", "/v1/ports/alice-0/status")).body;
  assert.equal(status.migration.state, "ready");
  assert.equal(status.reports.length, 1);
  const [r] = status.reports;
  assert.deepEqual([r.state, r.driftRepairs, r.lastDriftAt, r.drops], ["enforced", 0, null, [{ reason: "arp-spoof", packets: 5, bytes: 300 }]]);
});
