// `vifguard status --controller`: the CLI reads ports and their status from a real controller
// (SQLite store, a listening socket) through the typed client.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ADMIN, client, controllerOn, FULL_GUARDS, sqliteBackend, token } from "../controller/helpers.ts";
import { vifguard } from "../support/cli.ts";

test("vifguard status --controller shows each port's level, host, migration state, missing guards, drops, drift repaired and a port awaiting its device", async (t) => {
  const backend = await sqliteBackend(t);
  const c = await controllerOn(t, backend);
  const admin = client(c, ADMIN);
  const dir = new URL(backend.url.replace("sqlite://", "file://")).pathname.replace(/\/controller\.db$/, "");
  assert.equal((await admin("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true })).status, 201);
  assert.equal((await admin("PUT", "/v1/hosts/h1", { driver: "libvirt", version: "9", capabilities: { guards: FULL_GUARDS.filter((g) => g !== "nd-spoof") } })).status, 200);
  assert.equal((await admin("POST", "/v1/ports", { id: "alice-0", tenant: "alice", network: "public", device: "vnet0", mac: "52:54:00:00:00:01", host: "h1" })).status, 201);
  assert.equal((await admin("POST", "/v1/ports", { id: "bob-0", tenant: "bob", network: "public", device: "vnet1", mac: "52:54:00:00:00:02" })).status, 201);
  assert.equal((await admin("POST", "/v1/ports", { id: "carol-0", tenant: "carol", network: "public", mac: "52:54:00:00:00:03", host: "h1" })).status, 201);
  const agent = client(c, await token(c, "agent", "h1"));
  const bound = (await admin("GET", "/v1/ports/carol-0")).body.migration.boundRevision as number;
  const reports = [
    { port: "alice-0", appliedRevision: bound, drops: [{ reason: "arp-spoof", packets: 3, bytes: 180 }], driftRepairs: 2, lastDriftMs: Date.parse("2026-12-05T12:03:00Z") },
    { port: "carol-0", appliedRevision: bound, state: "awaiting-device" },
  ];
  assert.equal((await agent("PUT", "/v1/hosts/h1/status", { ports: reports })).status, 200);
  const adminFile = join(dir, "admin.token");
  writeFileSync(adminFile, `${ADMIN}\n`);

  const { code, stdout, stderr } = await vifguard("status", "--controller", c.url, "--token-file", adminFile);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /: 3 ports/);
  assert.match(stdout, /alice-0 \(network public, host h1, device vnet0\) {2}level full \(the network's\) {2}ready \(applied rev \d+\)/);
  assert.match(stdout, /MISSING: {2}nd-spoof \(host h1's driver cannot enforce these\)/);
  assert.match(stdout, /dropped: {2}arp-spoof 3/);
  assert.match(stdout, /drift: {4}h1 re-installed its rules 2 times after they changed behind vifguard's back \(last 2026-12-05T12:03:00\.000Z\)/);
  assert.match(stdout, /carol-0 \(network public, host h1, device found by MAC\) {2}level full \(the network's\) {2}pending\n(.*\n)? {2}AWAITING: on h1 its device is not there yet, so nothing is installed for it/);
  assert.match(stdout, /bob-0 \(network public, host \(none\), device vnet1\) {2}level full \(the network's\) {2}unbound/);

  // A tenant's token sees its own ports only; --json gives the answers as the controller sent them.
  const aliceFile = join(dir, "alice.token");
  writeFileSync(aliceFile, await token(c, "tenant", "alice"));
  const json = await vifguard("status", "--controller", c.url, "--token-file", aliceFile, "--json");
  assert.equal(json.code, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as { id: string; protection: string | null; status: { guardsMissing: string[] } }[];
  assert.deepEqual(rows.map((r) => [r.id, r.protection, r.status.guardsMissing]), [["alice-0", null, ["nd-spoof"]]]);

  // A refused token is an error that says what the controller answered.
  writeFileSync(join(dir, "bad.token"), "vg_not-a-token");
  const refused = await vifguard("status", "--controller", c.url, "--token-file", join(dir, "bad.token"));
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /GET http:\/\/127\.0\.0\.1:\d+\/v1\/ports: 401 VG_UNAUTHENTICATED/);
});
