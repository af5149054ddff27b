// The controller's rules, run once per store (SQLite file, PostgreSQL server) through app.request().
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { hashToken } from "../../src/controller/auth.ts";
import { ADMIN, client, controllerOn, FULL_GUARDS, token, validatorOf, type Answer, type Backend } from "./helpers.ts";

const MAC = (n: number): string => `52:54:00:00:00:${n.toString(16).padStart(2, "0")}`;

function issue(res: Answer, path: string): { path: string; value: unknown; expected: string } {
  const found = (res.body?.issues ?? []).find((i: { path: string }) => i.path === path);
  assert.ok(found, `no issue at ${path} in ${JSON.stringify(res.body)}`);
  return found;
}

export async function apiSuite(t: TestContext, backend: Backend): Promise<void> {
  const c = await controllerOn(t, backend);
  const admin = client(c, ADMIN);
  const alice = client(c, await token(c, "tenant", "alice"));
  const eve = client(c, await token(c, "tenant", "eve"));
  const agent1 = client(c, await token(c, "agent", "h1"));
  const agent2 = client(c, await token(c, "agent", "h2"));
  const revision = async (): Promise<number> => (await admin("GET", "/v1/revision")).body.revision as number;

  assert.equal((await admin("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true })).status, 201);
  assert.equal((await alice("POST", "/v1/networks", { id: "alice-net", protection: "mac" })).status, 201);

  await t.test("a port on a shared network cannot be off or mac; a shared network cannot be below full", async () => {
    for (const protection of ["off", "mac"]) {
      const res = await alice("POST", "/v1/ports", { id: `a-${protection}`, network: "public", device: "vnet9", mac: MAC(9), protection });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, "VG_INVALID");
      assert.match(issue(res, "protection").expected, /full: network public is shared/);
    }
    const net = await admin("POST", "/v1/networks", { id: "shared-mac", tenant: "provider", shared: true, protection: "mac" });
    assert.equal(net.status, 400);
    assert.match(issue(net, "protection").expected, /full on a shared network/);
    // Turning a network with a mac port into a shared one is refused, naming the port.
    assert.equal((await alice("POST", "/v1/ports", { id: "a-private", network: "alice-net", device: "vnet8", mac: MAC(8), protection: "mac" })).status, 201);
    const share = await admin("PATCH", "/v1/networks/alice-net", { shared: true, protection: "full" });
    assert.equal(share.status, 409);
    assert.match(issue(share, "shared").expected, /a-private has protection mac/);
    // On an unshared network, mac and off are fine.
    assert.equal((await alice("PATCH", "/v1/ports/a-private", { protection: "off" })).body.level, "off");
  });

  await t.test("no tenant can hold or be allowed an address, prefix or MAC another tenant's port holds on the network", async () => {
    const a = await alice("POST", "/v1/ports", { id: "alice-0", network: "public", device: "vnet0", mac: MAC(1), ips: ["10.0.0.1", "2001:db8::1"], allowed: [{ ip: "10.0.1.0/24" }] });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    assert.equal(a.body.tenant, "alice");
    const e = await eve("POST", "/v1/ports", { id: "eve-0", network: "public", device: "vnet1", mac: MAC(2), ips: ["10.0.0.2"] });
    assert.equal(e.status, 201);

    const cases: [string, unknown, string][] = [
      ["Alice's address as a fixed IP", { id: "eve-1", network: "public", device: "vnet2", mac: MAC(3), ips: ["10.0.0.1"] }, "ips[0]"],
      ["an address inside Alice's allowed /24", { id: "eve-1", network: "public", device: "vnet2", mac: MAC(3), ips: ["10.0.1.7"] }, "ips[0]"],
      ["a CIDR over Alice's address", { id: "eve-1", network: "public", device: "vnet2", mac: MAC(3), allowed: [{ ip: "10.0.0.0/24" }] }, "allowed[0].ip"],
      ["an IPv6 prefix over Alice's address", { id: "eve-1", network: "public", device: "vnet2", mac: MAC(3), allowed: [{ ip: "2001:db8::/64" }] }, "allowed[0].ip"],
      ["Alice's MAC", { id: "eve-1", network: "public", device: "vnet2", mac: MAC(1) }, "mac"],
      ["Alice's MAC in an allowed pair", { id: "eve-1", network: "public", device: "vnet2", mac: MAC(3), allowed: [{ ip: "10.9.9.9", mac: MAC(1) }] }, "allowed[0].mac"],
    ];
    for (const [name, body, path] of cases) {
      const res = await eve("POST", "/v1/ports", body);
      assert.equal(res.status, 409, name);
      assert.equal(res.body.code, "VG_ADDRESS_CLAIMED", name);
      // A tenant hears "another tenant", never the other tenant's port ids (issue 12); the admin sees them.
      assert.match(issue(res, path).expected, /another tenant/, name);
      assert.doesNotMatch(JSON.stringify(res.body), /alice/, name);
      const byAdmin = await admin("POST", "/v1/ports", { ...(body as object), tenant: "eve" });
      assert.equal(byAdmin.status, 409, name);
      assert.match(issue(byAdmin, path).expected, /alice-0, tenant alice/, name);
    }
    // Eve cannot add Alice's IP (or a CIDR over it) to her own address pairs.
    for (const ip of ["10.0.0.1", "10.0.0.0/24", "10.0.1.128/25"]) {
      const res = await eve("POST", "/v1/ports/eve-0/allowed", { ip });
      assert.equal(res.status, 409, ip);
      assert.equal(issue(res, "ip").value, ip);
    }
    const patch = await eve("PATCH", "/v1/ports/eve-0", { ips: ["10.0.0.2", "10.0.0.1"] });
    assert.equal(patch.status, 409);
    issue(patch, "ips[1]");
    // Her own VIP is fine, and Alice may reuse her own address on another port (failover).
    assert.equal((await eve("POST", "/v1/ports/eve-0/allowed", { ip: "10.0.2.0/28" })).status, 201);
    assert.equal((await alice("POST", "/v1/ports", { id: "alice-1", network: "public", device: "vnet3", mac: MAC(4), allowed: [{ ip: "10.0.0.1" }] })).status, 201);
    // A port may leave its device out: the agent finds it by MAC. Stored and shown without one.
    const byMac = await alice("POST", "/v1/ports", { id: "alice-m", network: "public", mac: MAC(0x4d) });
    assert.equal(byMac.status, 201, JSON.stringify(byMac.body));
    assert.equal("device" in (byMac.body as object), false);
    assert.equal("device" in ((await alice("GET", "/v1/ports/alice-m")).body as object), false);
    assert.equal((await alice("DELETE", "/v1/ports/alice-m")).status, 204);
    // A tenant's own claims do not conflict with themselves on update.
    assert.equal((await alice("PATCH", "/v1/ports/alice-0", { ips: ["10.0.0.1", "2001:db8::1", "10.0.0.3"] })).status, 200);
    // Removing a pair frees the address for others.
    assert.equal((await eve("DELETE", "/v1/ports/eve-0/allowed?ip=10.0.2.0/28")).status, 200);
    assert.equal((await alice("POST", "/v1/ports/alice-1/allowed", { ip: "10.0.2.5" })).status, 201);
    // All or nothing: a batch with one conflicting port stores none.
    const batch = await eve("POST", "/v1/ports/batch", { ports: [
      { id: "eve-b1", network: "public", device: "vnet5", mac: MAC(5), ips: ["10.0.5.1"] },
      { id: "eve-b2", network: "public", device: "vnet6", mac: MAC(6), ips: ["10.0.0.1"] },
    ] });
    assert.equal(batch.status, 409);
    issue(batch, "ports[1].ips[0]");
    assert.equal((await eve("GET", "/v1/ports/eve-b1")).status, 404);
  });

  await t.test("malformed input is refused with the field, the value and what is accepted", async () => {
    const res = await alice("POST", "/v1/ports", { id: "alice-x", network: "public", device: "vnet7", mac: "52:54:00:00:00:0g", ips: ["10.0.0.9", "1.2.3", "010.0.0.1"], allowed: [{ ip: "10.0.0.5/24" }, { ip: "10.0.0.0/33" }, { ip: "10.3.0.0/16", mac: "ff:ff:ff:ff:ff:ff" }] });
    assert.equal(res.status, 400);
    assert.equal(res.body.code, "VG_INVALID");
    assert.deepEqual(issue(res, "mac").value, "52:54:00:00:00:0g");
    assert.match(issue(res, "mac").expected, /unicast MAC/);
    assert.equal(issue(res, "ips[1]").value, "1.2.3");
    issue(res, "ips[2]");
    assert.match(issue(res, "allowed[0].ip").expected, /host bits zero \(did you mean 10\.0\.0\.0\/24\?\)/);
    assert.match(issue(res, "allowed[1].ip").expected, /prefix length from 0 to 32/);
    issue(res, "allowed[2].mac");

    const types = await alice("POST", "/v1/ports", { id: "alice-x", network: "public", device: 7, mac: MAC(10), ips: "10.0.0.9", color: "red" });
    assert.equal(types.status, 400);
    assert.match(issue(types, "device").expected, /string/);
    assert.equal(issue(types, "ips").value, "10.0.0.9");
    assert.match(issue(types, "color").expected, /no such field/);

    const pair = await alice("POST", "/v1/ports/alice-0/allowed", { ip: "10.0.0.300" });
    assert.equal(pair.status, 400);
    assert.equal(issue(pair, "ip").value, "10.0.0.300");
    const badNet = await alice("POST", "/v1/networks", { id: "bad net!", shared: "yes" });
    assert.equal(badNet.status, 400);
    issue(badNet, "shared");
    const query = await agent1("GET", "/v1/hosts/h1/desired?since=abc");
    assert.equal(query.status, 400);
    issue(query, "query.since");
    const json = await alice("POST", "/v1/ports", "{not json");
    assert.equal(json.status, 400);
    assert.equal(json.body.code, "VG_INVALID");
    const huge = await alice("POST", "/v1/ports", { id: "big", network: "public", device: "vnet7", mac: MAC(11), ips: Array.from({ length: 80_000 }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`) });
    assert.equal(huge.status, 413);
    assert.equal(huge.body.code, "VG_TOO_LARGE");
  });

  await t.test("roles: admin everything, tenants their own, agents their host", async () => {
    const none = await client(c, undefined)("GET", "/v1/networks");
    assert.equal(none.status, 401);
    assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.equal((await client(c, "vg_not-a-token")("GET", "/v1/networks")).status, 401);

    // Tenants see their own and shared networks, and only their own ports.
    assert.deepEqual((await eve("GET", "/v1/networks")).body.map((n: { id: string }) => n.id), ["public"]);
    assert.deepEqual((await alice("GET", "/v1/networks")).body.map((n: { id: string }) => n.id), ["alice-net", "public"]);
    assert.ok((await eve("GET", "/v1/ports")).body.every((p: { tenant: string }) => p.tenant === "eve"));
    assert.equal((await eve("GET", "/v1/ports/alice-0")).status, 404);
    assert.equal((await eve("PATCH", "/v1/ports/alice-0", { ips: [] })).status, 404);
    assert.equal((await eve("DELETE", "/v1/ports/alice-0")).status, 404);
    assert.equal((await eve("GET", "/v1/networks/alice-net")).status, 404);
    // Another tenant's private network is "not found" to a tenant, as if it did not exist (issue 12).
    const hidden = await eve("POST", "/v1/ports", { id: "eve-9", network: "alice-net", device: "vnet9", mac: MAC(0x29) });
    const missing = await eve("POST", "/v1/ports", { id: "eve-9", network: "no-such-net", device: "vnet9", mac: MAC(0x29) });
    assert.deepEqual([hidden.status, hidden.body.code, hidden.body.issues[0].expected], [missing.status, missing.body.code, missing.body.issues[0].expected]);
    assert.equal(hidden.status, 404);
    assert.equal((await eve("POST", "/v1/ports", { id: "eve-9", tenant: "alice", network: "public", device: "vnet9", mac: MAC(0x29) })).status, 403);
    assert.equal((await eve("POST", "/v1/networks", { id: "eve-shared", shared: true })).status, 403);
    assert.equal((await eve("POST", "/v1/networks", { id: "eve-net", tenant: "alice" })).status, 403);
    assert.equal((await eve("PATCH", "/v1/networks/public", { protection: "full" })).status, 403);
    assert.equal((await eve("PATCH", "/v1/config", { antiSpoofing: false })).status, 403);
    assert.equal((await eve("PATCH", "/v1/ports/eve-0", { host: "h1" })).status, 403);
    assert.equal((await eve("POST", "/v1/tokens", { role: "admin" })).status, 403);
    assert.equal((await eve("GET", "/v1/hosts")).status, 403);
    assert.equal((await eve("GET", "/v1/hosts/h1/desired")).status, 403);

    // Agents: their host only, no ports of their own making.
    assert.equal((await agent1("GET", "/v1/hosts/h1/desired")).status, 200);
    assert.equal((await agent1("GET", "/v1/hosts/h2/desired")).status, 403);
    assert.equal((await agent1("PUT", "/v1/hosts/h2", { driver: "ovs", version: "1", capabilities: { guards: [] } })).status, 403);
    assert.equal((await agent1("POST", "/v1/ports", { id: "x", network: "public", device: "vnet9", mac: MAC(0x29) })).status, 403);
    assert.equal((await agent1("PATCH", "/v1/ports/alice-0", { ips: [] })).status, 404);
    assert.equal((await agent1("GET", "/v1/ports/alice-0")).status, 404, "not bound to h1 yet");
    assert.equal((await agent1("PUT", "/v1/hosts/h1/status", { ports: [{ port: "alice-0", appliedRevision: 1 }] })).status, 403);
    assert.equal((await agent1("PATCH", "/v1/config", { failClosed: false })).status, 403);

    // Tokens are stored as sha256 only, listed without secrets, and revocable.
    const made = await admin("POST", "/v1/tokens", { role: "tenant", tenant: "bob", name: "bob's CI" });
    assert.equal(made.status, 201);
    const rows = await c.store.db.selectFrom("token").selectAll().where("id", "=", made.body.id).execute();
    assert.equal(rows[0]!.hash, hashToken(made.body.token));
    assert.ok(!JSON.stringify(rows).includes(made.body.token));
    assert.ok(!JSON.stringify((await admin("GET", "/v1/tokens")).body).includes(made.body.token));
    const bob = client(c, made.body.token);
    assert.equal((await bob("GET", "/v1/networks")).status, 200);
    assert.equal((await admin("DELETE", `/v1/tokens/${made.body.id}`)).status, 204);
    assert.equal((await bob("GET", "/v1/networks")).status, 401);
    assert.equal((await admin("POST", "/v1/tokens", { role: "agent" })).status, 400);
  });

  await t.test("every change bumps the global revision", async () => {
    const seen = [await revision()];
    const steps: [string, string, unknown][] = [
      ["POST", "/v1/networks", { id: "rev-net", tenant: "carol" }],
      ["POST", "/v1/ports", { id: "rev-0", network: "rev-net", device: "vnet0", mac: MAC(0x30), ips: ["192.0.2.1"] }],
      ["PATCH", "/v1/ports/rev-0", { ips: ["192.0.2.2"] }],
      ["POST", "/v1/ports/rev-0/allowed", { ip: "192.0.2.128/25" }],
      ["PATCH", "/v1/networks/rev-net", { protection: "mac" }],
      ["PATCH", "/v1/config", { failClosed: true }],
      ["PUT", "/v1/hosts/h9", { driver: "nftables", version: "0.1.0", capabilities: { guards: FULL_GUARDS } }],
      ["DELETE", "/v1/ports/rev-0", undefined],
    ];
    for (const [method, path, body] of steps) {
      const res = await admin(method, path, body);
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`);
      seen.push(await revision());
    }
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i]! > seen[i - 1]!, `revision ${seen.join(" → ")}`);
    // A refused request stores nothing and keeps the revision.
    const before = await revision();
    assert.equal((await admin("POST", "/v1/ports", { id: "rev-1", network: "rev-net", device: "vnet0", mac: "nope" })).status, 400);
    assert.equal(await revision(), before);
  });

  await t.test("watch: a long-poll wakes on a change for its host, not for others, and resumes by revision", async () => {
    const first = await agent1("GET", "/v1/hosts/h1/desired");
    assert.equal(first.status, 200);
    const since = first.body.revision as number;
    // Nothing for h1: the wait ends empty-handed (204), even though other hosts' ports change.
    const idle = agent1("GET", `/v1/hosts/h1/desired?since=${since}&timeoutMs=400`);
    await admin("POST", "/v1/ports", { id: "other-host", tenant: "carol", network: "rev-net", device: "vnet4", mac: MAC(0x31), host: "h7" });
    assert.equal((await idle).status, 204);
    // A change for h1 wakes a waiting poll promptly.
    const started = Date.now();
    const waiting = agent1("GET", `/v1/hosts/h1/desired?since=${since}&timeoutMs=10000`);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await admin("PATCH", "/v1/ports/alice-0", { host: "h1" })).status, 200);
    const woke = await waiting;
    assert.equal(woke.status, 200);
    assert.ok(Date.now() - started < 3000, `woke after ${Date.now() - started} ms`);
    assert.ok(woke.body.revision > since);
    assert.deepEqual(woke.body.ports.map((p: { port: string }) => p.port), ["alice-0"]);
    const policy = woke.body.ports[0];
    assert.equal(policy.level, "full");
    assert.ok(policy.bindings.some((b: { prefix: string }) => b.prefix === "10.0.1.0/24"));
    // Resuming with an old revision answers at once with the current state; the current one waits.
    const resumed = await agent1("GET", `/v1/hosts/h1/desired?since=${since}&timeoutMs=5000`);
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.revision, woke.body.revision);
    assert.equal((await agent1("GET", `/v1/hosts/h1/desired?since=${woke.body.revision}&timeoutMs=200`)).status, 204);
    // A revision from the future (a replaced store) gets the full state at once.
    assert.equal((await agent1("GET", `/v1/hosts/h1/desired?since=${woke.body.revision + 1000}&timeoutMs=5000`)).status, 200);
    // The global switch touches every host.
    const all = agent1("GET", `/v1/hosts/h1/desired?since=${woke.body.revision}&timeoutMs=10000`);
    assert.equal((await admin("PATCH", "/v1/config", { antiSpoofing: false })).status, 200);
    const off = await all;
    assert.equal(off.status, 200);
    assert.equal(off.body.ports[0].level, "off");
    assert.equal(off.body.config.antiSpoofing, false);
    assert.equal((await admin("PATCH", "/v1/config", { antiSpoofing: true })).status, 200);
    // The answer decodes as the agent decodes it.
    const { decodeControllerAnswer } = await import("../../src/agent/desired.ts");
    const decoded = decodeControllerAnswer(JSON.stringify(woke.body), "test");
    assert.equal(decoded.revision, String(woke.body.revision));
    assert.equal(decoded.policies[0]!.port, "alice-0");
  });

  await t.test("migration: the destination installs first, a hook waits for ready on it, and the source keeps the port until it releases it", async () => {
    // alice-0 is on h1; h1 applies it, so it is ready there.
    const bound = (await admin("GET", "/v1/ports/alice-0")).body;
    assert.equal(bound.migration.state, "pending");
    const applied = await agent1("PUT", "/v1/hosts/h1/status", { ports: [{ port: "alice-0", appliedRevision: bound.migration.boundRevision, guardsEnforced: FULL_GUARDS, drops: [{ reason: "ipv4-spoof", packets: 3, bytes: 180 }] }] });
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    assert.equal((await admin("GET", "/v1/ports/alice-0/migration")).body.state, "ready");

    const h1Since = (await agent1("GET", "/v1/hosts/h1/desired")).body.revision as number;
    const moved = await admin("PATCH", "/v1/ports/alice-0", { host: "h2" });
    assert.equal(moved.status, 200);
    assert.deepEqual([moved.body.migration.state, moved.body.migration.source, moved.body.migration.host, moved.body.migration.sourceHoldUntil], ["migrating", "h1", "h2", null]);
    // Both hosts' desired sets hold the port while it migrates.
    const onH1 = await agent1("GET", `/v1/hosts/h1/desired?since=${h1Since}&timeoutMs=5000`);
    const onH2 = await agent2("GET", "/v1/hosts/h2/desired");
    assert.ok(onH1.body.ports.some((p: { port: string }) => p.port === "alice-0"));
    assert.ok(onH2.body.ports.some((p: { port: string }) => p.port === "alice-0"));
    // Both agents may read the port; the hook on h2 waits for "ready on h2".
    assert.equal((await agent1("GET", "/v1/ports/alice-0")).status, 200);
    const hook = agent2("GET", "/v1/ports/alice-0/migration?readyOn=h2&timeoutMs=10000");
    const notYet = await agent2("GET", "/v1/ports/alice-0/migration?readyOn=h2&timeoutMs=150");
    assert.deepEqual([notYet.body.state, notYet.body.ready], ["migrating", false]);
    // A destination report from before the move does not count.
    await agent2("PUT", "/v1/hosts/h2/status", { ports: [{ port: "alice-0", appliedRevision: moved.body.migration.boundRevision - 1 }] });
    assert.equal((await admin("GET", "/v1/ports/alice-0")).body.migration.state, "migrating");
    const h1Wait = agent1("GET", `/v1/hosts/h1/desired?since=${onH1.body.revision}&timeoutMs=600`);
    const done = await agent2("PUT", "/v1/hosts/h2/status", { ports: [{ port: "alice-0", appliedRevision: onH2.body.revision, guardsEnforced: FULL_GUARDS }] });
    assert.deepEqual([done.body.readyMigrations, done.body.completedMigrations], [["alice-0"], []]);
    const ready = await hook;
    assert.deepEqual([ready.body.state, ready.body.ready, ready.body.host, ready.body.source], ["ready-on-destination", true, "h2", "h1"]);
    assert.ok(Date.parse(ready.body.sourceHoldUntil) > Date.now() + 60_000, `the source's hold ends at ${ready.body.sourceHoldUntil} (10 min by default)`);
    // The VM still runs on h1 until the switch-over: h1's set keeps the port, and its watch does not wake.
    assert.equal((await h1Wait).status, 204, "nothing changed for h1");
    assert.ok((await agent1("GET", "/v1/hosts/h1/desired")).body.ports.some((p: { port: string }) => p.port === "alice-0"), "h1 keeps alice-0 after h2 applied it");
    // Only h2's report can make it ready on h2; h1 reporting it applied changes nothing.
    assert.equal((await agent1("PUT", "/v1/hosts/h1/status", { ports: [{ port: "alice-0", appliedRevision: onH2.body.revision }] })).body.readyMigrations.length, 0);
    // A port cannot be enforced and released in one report.
    const both = await agent1("PUT", "/v1/hosts/h1/status", { ports: [{ port: "alice-0", appliedRevision: onH2.body.revision }], released: ["alice-0"] });
    assert.equal(both.status, 400);
    assert.match(issue(both, "released[0]").expected, /not also reported/);
    // The switch-over: the VM left h1, whose agent reports the port released (migrate-out, unplug). That ends the migration.
    const h1Since2 = (await agent1("GET", "/v1/hosts/h1/desired")).body.revision as number;
    const h1Drop = agent1("GET", `/v1/hosts/h1/desired?since=${h1Since2}&timeoutMs=10000`);
    const out = await agent1("PUT", "/v1/hosts/h1/status", { ports: [], released: ["alice-0", "no-such-port"] });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    assert.deepEqual(out.body.completedMigrations, ["alice-0"]);
    const dropped = await h1Drop;
    assert.equal(dropped.status, 200);
    assert.ok(!dropped.body.ports.some((p: { port: string }) => p.port === "alice-0"), "h1's set dropped alice-0");
    const over = (await admin("GET", "/v1/ports/alice-0/migration")).body;
    assert.deepEqual([over.state, over.host, over.source, over.sourceHoldUntil], ["ready", "h2", null, null]);
    assert.equal((await agent1("GET", "/v1/ports/alice-0")).status, 404, "the source's agent no longer sees it");
    // Releasing again (a report retried after a restart) changes nothing; h1 may not report it enforced any more.
    assert.deepEqual((await agent1("PUT", "/v1/hosts/h1/status", { ports: [], released: ["alice-0"] })).body.completedMigrations, []);
    assert.equal((await agent1("PUT", "/v1/hosts/h1/status", { ports: [{ port: "alice-0", appliedRevision: 1 }] })).status, 403);
    // Status keeps the reports of the hosts that enforce it: h1's went with its release.
    const status = (await alice("GET", "/v1/ports/alice-0/status")).body;
    assert.deepEqual(status.reports.map((r: { host: string }) => r.host), ["h2"]);
    // Moving a migrating port back to its source cancels the migration.
    await admin("PATCH", "/v1/ports/alice-1", { host: "h1" });
    await admin("PATCH", "/v1/ports/alice-1", { host: "h2" });
    const back = await admin("PATCH", "/v1/ports/alice-1", { host: "h1" });
    assert.deepEqual([back.body.migration.state, back.body.migration.source], ["pending", null]);
  });

  await t.test("migration: a source that released the port before the move (the VM was stopped) ends it at its next report; a destination that releases it is not ready any more", async () => {
    await admin("PATCH", "/v1/ports/alice-1", { host: "h1" });
    const on = (await admin("GET", "/v1/ports/alice-1")).body.migration.boundRevision as number;
    await agent1("PUT", "/v1/hosts/h1/status", { ports: [{ port: "alice-1", appliedRevision: on }] });
    // The VM stops on h1: the agent unplugs the port and says so.
    assert.equal((await agent1("PUT", "/v1/hosts/h1/status", { ports: [], released: ["alice-1"] })).status, 200);
    assert.equal((await admin("GET", "/v1/ports/alice-1")).body.migration.state, "pending", "not enforced on h1 any more");
    const moved = (await admin("PATCH", "/v1/ports/alice-1", { host: "h2" })).body;
    assert.deepEqual([moved.migration.state, moved.migration.source], ["migrating", "h1"]);
    // h2 applies it, then lets it go (the incoming migration failed): back to migrating.
    await agent2("PUT", "/v1/hosts/h2/status", { ports: [{ port: "alice-1", appliedRevision: moved.migration.boundRevision }] });
    assert.equal((await admin("GET", "/v1/ports/alice-1")).body.migration.state, "ready-on-destination");
    await agent2("PUT", "/v1/hosts/h2/status", { ports: [], released: ["alice-1"] });
    const failed = (await admin("GET", "/v1/ports/alice-1")).body.migration;
    assert.deepEqual([failed.state, failed.source, failed.sourceHoldUntil], ["migrating", "h1", null]);
    // h1's agent sends its released ports again with every new revision: that ends the migration.
    const ended = await agent1("PUT", "/v1/hosts/h1/status", { ports: [], released: ["alice-1"] });
    assert.deepEqual(ended.body.completedMigrations, ["alice-1"]);
    assert.deepEqual([(await admin("GET", "/v1/ports/alice-1")).body.migration.state, (await admin("GET", "/v1/ports/alice-1")).body.migration.source], ["pending", null]);
  });

  await t.test("a host lacking a guard: the port is accepted and its status names the missing guard", async () => {
    const weak = FULL_GUARDS.filter((g) => g !== "nd-spoof" && g !== "vlan");
    const reg = await client(c, await token(c, "agent", "h3"))("PUT", "/v1/hosts/h3", { driver: "libvirt", version: "9.0.0", capabilities: { guards: weak, limitations: [{ id: "lv-arp", guard: "arp-spoof", description: "approximate" }] } });
    assert.equal(reg.status, 200, JSON.stringify(reg.body));
    const port = await admin("POST", "/v1/ports", { id: "weak-0", tenant: "carol", network: "rev-net", device: "vnet1", mac: MAC(0x40), host: "h3", protection: "full" });
    assert.equal(port.status, 201);
    const status = (await admin("GET", "/v1/ports/weak-0/status")).body;
    assert.deepEqual(status.guardsMissing, ["nd-spoof", "vlan"]);
    assert.equal(status.hostRegistered, true);
    assert.deepEqual(status.limitations.map((l: { id: string }) => l.id), ["lv-arp"]);
    // At level mac the host has every guard needed.
    await admin("PATCH", "/v1/ports/weak-0", { protection: "mac" });
    assert.deepEqual((await admin("GET", "/v1/ports/weak-0/status")).body.guardsMissing, ["nd-spoof"]);
    assert.equal((await admin("GET", "/v1/hosts/h3")).body.capabilities.guards.length, weak.length);
  });

  await t.test("a port's reported state: awaiting its device is not applied, nor ready on a migration's destination; drift repairs are kept; no state means enforced", async () => {
    const h3 = client(c, await token(c, "agent", "h3"));
    const created = await admin("POST", "/v1/ports", { id: "wait-0", tenant: "carol", network: "rev-net", mac: MAC(0x41), host: "h3" });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const bound = created.body.migration.boundRevision as number;
    const report = async (agent: typeof h3, host: string, entry: Record<string, unknown>, released?: string[]) => {
      const res = await agent("PUT", `/v1/hosts/${host}/status`, { ports: [{ port: "wait-0", appliedRevision: bound, ...entry }], ...(released && { released }) });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const status = async () => (await admin("GET", "/v1/ports/wait-0/status")).body;
    await report(h3, "h3", { state: "awaiting-device" });
    let s = await status();
    assert.deepEqual([s.migration.state, s.reports[0].state, s.reports[0].driftRepairs, s.reports[0].lastDriftAt], ["pending", "awaiting-device", 0, null]);
    const wrong = await h3("PUT", "/v1/hosts/h3/status", { ports: [{ port: "wait-0", appliedRevision: bound, state: "asleep" }] });
    assert.equal(wrong.status, 400);
    assert.match(issue(wrong, "ports[0].state").expected, /enforced/);
    await report(h3, "h3", { state: "ambiguous-device" });
    assert.deepEqual([(await status()).migration.state, (await status()).reports[0].state], ["pending", "ambiguous-device"]);

    const at = Date.parse("2026-12-05T12:03:00Z");
    await report(h3, "h3", { state: "enforced", driftRepairs: 2, lastDriftMs: at });
    s = await status();
    assert.deepEqual([s.migration.state, s.reports[0].state, s.reports[0].driftRepairs, s.reports[0].lastDriftAt], ["ready", "enforced", 2, "2026-12-05T12:03:00.000Z"]);
    await report(h3, "h3", {});
    s = await status();
    assert.deepEqual([s.migration.state, s.reports[0].state, s.reports[0].driftRepairs, s.reports[0].lastDriftAt], ["ready", "enforced", 0, null], "an agent that sends no state reports enforced ports");

    // Moved to h2: h2 awaiting the device (the VM is not there yet) is not ready; enforced, it is.
    const moved = await admin("PATCH", "/v1/ports/wait-0", { host: "h2" });
    assert.equal(moved.body.migration.state, "migrating");
    const to = moved.body.migration.boundRevision as number;
    const waiting = await agent2("PUT", "/v1/hosts/h2/status", { ports: [{ port: "wait-0", appliedRevision: to, state: "awaiting-device" }] });
    assert.deepEqual([waiting.status, waiting.body.readyMigrations], [200, []]);
    assert.equal((await admin("GET", "/v1/ports/wait-0")).body.migration.state, "migrating");
    const ready = await agent2("PUT", "/v1/hosts/h2/status", { ports: [{ port: "wait-0", appliedRevision: to, state: "enforced" }] });
    assert.deepEqual(ready.body.readyMigrations, ["wait-0"]);
    assert.equal((await h3("PUT", "/v1/hosts/h3/status", { ports: [], released: ["wait-0"] })).body.completedMigrations[0], "wait-0");
    assert.equal((await admin("DELETE", "/v1/ports/wait-0")).status, 204);
  });

  await t.test("answers of each status match the served document (the client checks every answer)", async () => {
    // protection null (the network's level) is valid in requests and answers alike.
    const made = await alice("POST", "/v1/ports", { id: "alice-doc", network: "alice-net", device: "vnet20", mac: MAC(0x20), protection: null });
    assert.equal(made.status, 201);
    assert.equal(made.body.protection, null);
    assert.equal((await alice("PATCH", "/v1/ports/alice-doc", { protection: "off" })).body.protection, "off");
    assert.equal((await alice("PATCH", "/v1/ports/alice-doc", { protection: null })).body.protection, null);
    // Parameters that fail validation: 400 with the issue, on routes whose handlers never say 400.
    issue(await alice("GET", "/v1/ports/alice-doc/migration?timeoutMs=soon"), "query.timeoutMs");
    issue(await alice("DELETE", "/v1/ports/alice-doc/allowed"), "query.ip");
    issue(await admin("GET", "/v1/hosts/no!such"), "path.host");
    // Bodies over the limit, and bodies that are not JSON, on any route that takes one.
    const big = await agent1("PUT", "/v1/hosts/h1/status", { ports: [], released: Array.from({ length: 120_000 }, (_, i) => `port-${i}`) });
    assert.deepEqual([big.status, big.body.code], [413, "VG_TOO_LARGE"]);
    assert.deepEqual([(await admin("PATCH", "/v1/config", "{")).status], [400]);
    // Timestamps are ISO 8601 in UTC (format date-time in the document).
    assert.match((await admin("GET", "/v1/tokens")).body[0].createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal((await alice("DELETE", "/v1/ports/alice-doc")).status, 204);
  });

  await t.test("every operation of the document gives its answers as documented: success, 401, 404, 413", async () => {
    const validator = await validatorOf(c);
    const anonymous = client(c, undefined);
    // Minimal valid bodies and queries, by operationId, for the calls below.
    const bodies: Record<string, unknown> = {
      updatePort: {}, updateNetwork: {}, addAllowedPair: { ip: "10.9.9.9" }, reportHostStatus: { ports: [] },
      registerHost: { driver: "ovs", version: "3", capabilities: { guards: [] } },
    };
    const queries: Record<string, string> = { removeAllowedPairs: "?ip=10.9.9.9" };
    for (const { method, template, operationId, responses, hasBody } of validator.operationList) {
      if (operationId === "getOpenApiDocument") continue;
      const path = template.replace(/\{[^}]+\}/g, "nope-0");
      const body = hasBody ? (bodies[operationId] ?? {}) : undefined;
      // Without a token: 401 on every operation (the body is not looked at).
      assert.equal((await anonymous(method, path, body)).status, 401, operationId);
      // A body over the limit: 413 wherever there is a body.
      if (hasBody) assert.equal((await admin(method, path, `"${"x".repeat(1 << 20)}"`)).status, 413, operationId);
      // An id that does not exist: 404 where the document says so.
      if (template.includes("{") && responses.includes("404")) assert.equal((await admin(method, `${path}${queries[operationId] ?? ""}`, body)).status, 404, operationId);
    }
    // The successes the other tests do not reach.
    assert.equal((await admin("GET", "/v1/config")).status, 200);
    assert.equal((await admin("GET", "/v1/hosts")).status, 200);
    assert.equal((await alice("GET", "/v1/networks/alice-net")).status, 200);
    assert.deepEqual((await alice("GET", "/v1/ports/alice-0/allowed")).body.map((a: { ip: string }) => a.ip), ["10.0.1.0/24"]);
    assert.equal((await agent1("POST", "/v1/hosts/h1/heartbeat")).status, 404, "h1 never registered");
    assert.equal((await agent1("PUT", "/v1/hosts/h1", { driver: "nftables", version: "0.1.0", capabilities: { guards: FULL_GUARDS } })).status, 200);
    assert.equal((await agent1("POST", "/v1/hosts/h1/heartbeat")).status, 200);
    const batch = await admin("POST", "/v1/ports/batch", { ports: [
      { id: "sweep-0", tenant: "carol", network: "rev-net", device: "vnet40", mac: MAC(0x70) },
      { id: "sweep-1", tenant: "carol", network: "rev-net", device: "vnet41", mac: MAC(0x71), protection: null },
    ] });
    assert.equal(batch.status, 201);
    assert.equal((await admin("POST", "/v1/networks", { id: "rev-net", tenant: "carol" })).status, 409, "a taken id");
    assert.equal((await admin("DELETE", "/v1/networks/rev-net")).status, 409, "a network with ports");
    assert.equal((await admin("POST", "/v1/networks", { id: "sweep-net", tenant: "carol" })).status, 201);
    assert.equal((await admin("DELETE", "/v1/networks/sweep-net")).status, 204);
    assert.equal((await admin("PUT", "/v1/hosts/sweep-h", { driver: "ovs", version: "3", capabilities: { guards: [] } })).status, 200);
    assert.equal((await admin("DELETE", "/v1/hosts/sweep-h")).status, 204);
    // Refusals the other tests do not reach: each status with its error body.
    const refusals: [typeof admin, string, string, unknown, number][] = [
      [eve, "DELETE", "/v1/tokens/nope", undefined, 403], [eve, "GET", "/v1/tokens", undefined, 403],
      [eve, "GET", "/v1/hosts/h1", undefined, 403], [eve, "DELETE", "/v1/hosts/h1", undefined, 403],
      [eve, "POST", "/v1/hosts/h1/heartbeat", undefined, 403], [alice, "DELETE", "/v1/networks/public", undefined, 403],
      [eve, "POST", "/v1/ports/batch", { ports: [{ id: "eve-x", tenant: "alice", network: "public", device: "vnet42", mac: MAC(0x72) }] }, 403],
      // Another tenant's private network is "not found" to a tenant (issue 12).
      [eve, "POST", "/v1/ports/batch", { ports: [{ id: "eve-x", network: "alice-net", device: "vnet42", mac: MAC(0x72) }] }, 404],
      [admin, "POST", "/v1/ports", { id: "x", tenant: "carol", network: "nope", device: "vnet43", mac: MAC(0x73) }, 404],
      [admin, "POST", "/v1/ports/batch", { ports: [{ id: "x", tenant: "carol", network: "nope", device: "vnet43", mac: MAC(0x73) }] }, 404],
      [admin, "POST", "/v1/ports/batch", { ports: "x" }, 400], [alice, "PATCH", "/v1/ports/alice-0", { ips: "x" }, 400],
      [alice, "PATCH", "/v1/networks/alice-net", { shared: "x" }, 400], [admin, "PUT", "/v1/hosts/bad!", { driver: "ovs", version: "3", capabilities: { guards: [] } }, 400],
      [admin, "GET", "/v1/hosts/bad!", undefined, 400], [admin, "DELETE", "/v1/hosts/bad!", undefined, 400], [admin, "POST", "/v1/hosts/bad!/heartbeat", undefined, 400],
    ];
    for (const [who, method, path, body, status] of refusals) assert.equal((await who(method, path, body)).status, status, `${method} ${path}`);
  });

  await t.test("the OpenAPI 3.1 document is served without a token", async () => {
    const doc = await client(c, undefined)("GET", "/v1/openapi.json");
    assert.equal(doc.status, 200);
    assert.equal(doc.body.openapi, "3.1.0");
    for (const path of ["/v1/networks", "/v1/ports", "/v1/ports/{id}/allowed", "/v1/hosts/{host}/desired", "/v1/ports/{id}/migration", "/v1/config", "/v1/tokens"]) {
      assert.ok(path in doc.body.paths, path);
    }
  });
}

/**
 * A short migrationHoldMs: a source that never reports the port released loses it that long after
 * the destination applied it (its watch wakes); a migration whose destination has not applied it
 * is never ended by the hold.
 */
export async function holdSuite(t: TestContext, backend: Backend): Promise<void> {
  const c = await controllerOn(t, backend, { migrationHoldMs: 300 });
  const admin = client(c, ADMIN);
  const hs1 = client(c, await token(c, "agent", "hs1"));
  const hs2 = client(c, await token(c, "agent", "hs2"));
  await admin("POST", "/v1/networks", { id: "hold-net", tenant: "dave" });
  for (const [i, id] of ["held-0", "held-1"].entries()) {
    assert.equal((await admin("POST", "/v1/ports", { id, network: "hold-net", device: `vnet${i}`, mac: MAC(0x60 + i), host: "hs1" })).status, 201);
  }
  const held = (await admin("PATCH", "/v1/ports/held-0", { host: "hs2" })).body;
  await admin("PATCH", "/v1/ports/held-1", { host: "hs2" }); // hs2 never applies this one
  const since = (await hs1("GET", "/v1/hosts/hs1/desired")).body.revision as number;
  const started = Date.now();
  const ready = await hs2("PUT", "/v1/hosts/hs2/status", { ports: [{ port: "held-0", appliedRevision: held.migration.boundRevision }] });
  assert.deepEqual(ready.body.readyMigrations, ["held-0"]);
  const until = Date.parse((await admin("GET", "/v1/ports/held-0/migration")).body.sourceHoldUntil);
  assert.ok(Math.abs(until - (started + 300)) < 1_000, `the hold ends 300 ms after hs2 applied it (${new Date(until).toISOString()})`);
  const woke = await hs1("GET", `/v1/hosts/hs1/desired?since=${since}&timeoutMs=10000`);
  const ms = Date.now() - started;
  assert.equal(woke.status, 200);
  assert.deepEqual(woke.body.ports.map((p: { port: string }) => p.port), ["held-1"], "hs1 lost held-0 and keeps held-1");
  // Not before the 300 ms hold ends (a slow host only makes this later); no upper bound: a timing, not a verdict.
  assert.ok(ms >= 250, `hs1's set dropped held-0 after ${ms} ms`);
  const m = (await admin("GET", "/v1/ports/held-0/migration")).body;
  assert.deepEqual([m.state, m.source, m.sourceHoldUntil], ["ready", null, null]);
  const pending = (await admin("GET", "/v1/ports/held-1/migration")).body;
  assert.deepEqual([pending.state, pending.source], ["migrating", "hs1"], "no hold runs before the destination applied it");
}

/** The same store opened with refuseMissingGuards: binding to a weak host is a 409. */
export async function refuseSuite(t: TestContext, backend: Backend): Promise<void> {
  const c = await controllerOn(t, backend, { refuseMissingGuards: true });
  const admin = client(c, ADMIN);
  await admin("POST", "/v1/networks", { id: "n", tenant: "carol" });
  await admin("PUT", "/v1/hosts/weak", { driver: "libvirt", version: "9", capabilities: { guards: FULL_GUARDS.filter((g) => g !== "nd-spoof") } });
  await admin("PUT", "/v1/hosts/strong", { driver: "ovs", version: "3", capabilities: { guards: FULL_GUARDS } });
  const refused = await admin("POST", "/v1/ports", { id: "p", network: "n", device: "vnet0", mac: MAC(0x50), host: "weak" });
  assert.equal(refused.status, 409);
  assert.equal(refused.body.code, "VG_MISSING_GUARDS");
  assert.match(issue(refused, "host").expected, /lacks nd-spoof/);
  assert.equal((await admin("POST", "/v1/ports", { id: "p", network: "n", device: "vnet0", mac: MAC(0x50), host: "strong" })).status, 201);
  const migrate = await admin("PATCH", "/v1/ports/p", { host: "weak" });
  assert.equal(migrate.status, 409, "no migration to a host that cannot enforce the level");
  assert.equal((await admin("PATCH", "/v1/ports/p", { protection: "off", host: "weak" })).status, 200, "level off needs no guard");
}

/**
 * Issue 12, the holes a hostile tenant found: derived link-locals are held, shared networks refuse
 * wide pairs (an admin may raise the limit), IPv4 in IPv6 clothing, and per-port limits (the
 * largest port is stored and changed whole, claim rows chunked).
 */
export async function claimSuite(t: TestContext, backend: Backend): Promise<void> {
  const c = await controllerOn(t, backend, { maxAddressesPerPort: 300, maxAllowedPairsPerPort: 300 });
  const admin = client(c, ADMIN);
  const alice = client(c, await token(c, "tenant", "alice"));
  const eve = client(c, await token(c, "tenant", "eve"));
  assert.equal((await admin("POST", "/v1/networks", { id: "pub", tenant: "provider", shared: true })).status, 201);
  assert.equal((await alice("POST", "/v1/ports", { id: "a0", network: "pub", device: "vnet0", mac: MAC(1), ips: ["10.0.0.1"] })).status, 201);
  const refused = async (res: Answer, status: number, code: string, path: string, expected: RegExp): Promise<void> => {
    assert.equal(res.status, status, JSON.stringify(res.body));
    assert.equal(res.body.code, code);
    assert.match(issue(res, path).expected, expected);
  };

  await t.test("link-local: Eve cannot claim Alice's derived address, fe80::/64 or fe80::/10 on a shared network", async () => {
    const eveAt = (body: object) => eve("POST", "/v1/ports", { id: "e0", network: "pub", device: "vnet1", mac: MAC(2), ...body });
    await refused(await eveAt({ ips: ["fe80::5054:ff:fe00:1"] }), 400, "VG_INVALID", "ips[0]", /derived from the port's own MACs/);
    await refused(await eveAt({ allowed: [{ ip: "fe80::/64" }] }), 400, "VG_INVALID", "allowed[0].ip", /derived from the port's own MACs \(fe80::5054:ff:fe00:2\)/);
    await refused(await eveAt({ allowed: [{ ip: "fe80::/10" }] }), 400, "VG_INVALID", "allowed[0].ip", /no wider than \/64/);
    assert.equal((await eveAt({ ips: ["fe80::5054:ff:fe00:2"] })).status, 201, "her own derived link-local is fine");
    // On an unshared network with ports of two tenants (an admin's doing), derived link-locals are held too.
    await admin("POST", "/v1/networks", { id: "mixed", tenant: "provider" });
    assert.equal((await admin("POST", "/v1/ports", { id: "a-m", tenant: "alice", network: "mixed", device: "vnet5", mac: MAC(5) })).status, 201);
    const held = await admin("POST", "/v1/ports", { id: "e-m", tenant: "eve", network: "mixed", device: "vnet6", mac: MAC(6), allowed: [{ ip: "fe80::/64" }] });
    await refused(held, 409, "VG_ADDRESS_CLAIMED", "allowed[0].ip", /mac of port a-m, tenant alice, holds fe80::5054:ff:fe00:5/);
  });

  await t.test("over-broad pairs on a shared network are refused naming the limit; an admin may raise it per network", async () => {
    await refused(await eve("POST", "/v1/ports/e0/allowed", { ip: "0.0.0.0/0" }), 400, "VG_INVALID", "ip", /no wider than \/24 on shared network pub \(its widestPair\.ipv4/);
    await refused(await eve("POST", "/v1/ports/e0/allowed", { ip: "::/0" }), 400, "VG_INVALID", "ip", /no wider than \/64/);
    assert.equal((await eve("PATCH", "/v1/networks/pub", { widestPair: { ipv4: 16 } })).status, 403);
    const raised = await admin("PATCH", "/v1/networks/pub", { widestPair: { ipv4: 16 } });
    assert.deepEqual(raised.body.widestPair, { ipv4: 16, ipv6: 64 });
    assert.equal((await eve("POST", "/v1/ports/e0/allowed", { ip: "10.7.0.0/16" })).status, 201);
    // Lowering it again while a port holds a /16 is refused, naming the port.
    await refused(await admin("PATCH", "/v1/networks/pub", { widestPair: { ipv4: 24 } }), 409, "VG_CONFLICT", "widestPair", /port e0 still fits/);
    // A network turning shared is checked the same way.
    await alice("POST", "/v1/networks", { id: "a-net" });
    assert.equal((await alice("POST", "/v1/ports", { id: "a-wide", network: "a-net", device: "vnet7", mac: MAC(7), allowed: [{ ip: "0.0.0.0/0" }] })).status, 201);
    await refused(await admin("PATCH", "/v1/networks/a-net", { shared: true }), 409, "VG_CONFLICT", "shared", /port a-wide still fits/);
  });

  await t.test("IPv4 in IPv6 clothing: mapped and compatible addresses are refused, prefixes over NAT64 too on shared networks", async () => {
    await refused(await eve("PATCH", "/v1/ports/e0", { ips: ["::ffff:10.0.0.1"] }), 400, "VG_INVALID", "ips[0]", /IPv4-mapped/);
    await refused(await eve("PATCH", "/v1/ports/e0", { ips: ["::10.0.0.1"] }), 400, "VG_INVALID", "ips[0]", /IPv4-compatible/);
    await refused(await eve("POST", "/v1/ports/e0/allowed", { ip: "::ffff:0:0/96" }), 400, "VG_INVALID", "ip", /write the IPv4 address itself/);
    await refused(await eve("POST", "/v1/ports/e0/allowed", { ip: "64:ff9b::/96" }), 400, "VG_INVALID", "ip", /does not contain 64:ff9b::\/96/);
    assert.equal((await eve("PATCH", "/v1/ports/e0", { ips: ["64:ff9b::a00:9", "2002:a00:9::1"] })).status, 200, "NAT64 and 6to4 addresses are IPv6");
  });

  await t.test("per-port limits: beyond them 413 names the limit; the largest port is created and changed whole", async () => {
    const v6 = (n: number, base = 0) => Array.from({ length: n }, (_, i) => `2001:db8:e::${(base + i).toString(16)}`);
    const pairs = (n: number) => Array.from({ length: n }, (_, i) => ({ ip: `2001:db8:f:${i.toString(16)}::/64` }));
    await refused(await eve("POST", "/v1/ports", { id: "big", network: "pub", device: "vnet8", mac: MAC(8), ips: v6(301) }), 413, "VG_TOO_LARGE", "ips", /at most 300 addresses per port \(the controller's maxAddressesPerPort\)/);
    await refused(await eve("POST", "/v1/ports", { id: "big", network: "pub", device: "vnet8", mac: MAC(8), allowed: pairs(301) }), 413, "VG_TOO_LARGE", "allowed", /maxAllowedPairsPerPort/);
    assert.equal((await eve("POST", "/v1/ports", { id: "big", network: "pub", device: "vnet8", mac: MAC(8), ips: v6(300), allowed: pairs(300) })).status, 201);
    const changed = await eve("PATCH", "/v1/ports/big", { ips: v6(300, 0x1000) });
    assert.equal(changed.status, 200, JSON.stringify(changed.body).slice(0, 300));
    await refused(await eve("PATCH", "/v1/ports/big", { ips: v6(301) }), 413, "VG_TOO_LARGE", "ips", /maxAddressesPerPort/);
    // Alice's address inside the batch is still found (one query per batch).
    await refused(await alice("POST", "/v1/ports", { id: "a-big", network: "pub", device: "vnet9", mac: MAC(9), ips: [...v6(250, 0x2000), "2001:db8:e::1005"] }), 409, "VG_ADDRESS_CLAIMED", "ips[250]", /another tenant/);
  });

  await t.test("a network's own ranges: addresses and pairs outside are refused, no pair wider than the range; naming field, value and limit", async () => {
    const made = await admin("POST", "/v1/networks", { id: "ranged", tenant: "provider", shared: true, ranges: ["10.20.0.0/16", "2001:db8:20::/48"] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.deepEqual((await admin("GET", "/v1/networks/ranged")).body.ranges, ["10.20.0.0/16", "2001:db8:20::/48"]);
    await refused(await admin("POST", "/v1/networks", { id: "bad-range", tenant: "provider", ranges: ["10.0.0.1/8"] }), 400, "VG_INVALID", "ranges[0]", /host bits zero/);
    const at = (body: object) => eve("POST", "/v1/ports", { id: "r0", network: "ranged", mac: MAC(0x20), ...body });
    await refused(await at({ ips: ["10.21.0.1"] }), 400, "VG_INVALID", "ips[0]", /inside network ranged's ranges \(10\.20\.0\.0\/16\)/);
    await refused(await at({ allowed: [{ ip: "2001:db8:21::/64" }] }), 400, "VG_INVALID", "allowed[0].ip", /2001:db8:20::\/48/);
    // Raised widestPair or not, a pair is never wider than the network's range.
    assert.equal((await admin("PATCH", "/v1/networks/ranged", { widestPair: { ipv4: 8 } })).status, 200);
    await refused(await at({ allowed: [{ ip: "10.0.0.0/8" }] }), 400, "VG_INVALID", "allowed[0].ip", /no wider than \/16, network ranged's range 10\.20\.0\.0\/16/);
    const ok = await at({ ips: ["10.20.0.1", "2001:db8:20::1", "fe80::5054:ff:fe00:20"], allowed: [{ ip: "10.20.1.0/24" }] });
    assert.equal(ok.status, 201, JSON.stringify(ok.body));
    // Narrowing the ranges under a port that holds something outside is refused, naming the port.
    await refused(await admin("PATCH", "/v1/networks/ranged", { ranges: ["10.20.2.0/24"] }), 409, "VG_CONFLICT", "ranges", /port r0 still fits/);
    assert.equal((await admin("PATCH", "/v1/networks/ranged", { ranges: [] })).body.ranges, undefined, "[] removes the ranges");
  });

  await t.test("leaks: a taken port id, another tenant's port and private network answer as a missing or own one would", async () => {
    const strip = (res: Answer) => ({ status: res.status, code: res.body?.code, message: res.body?.message, expected: res.body?.issues?.map((i: { expected: string }) => i.expected) });
    // Port ids are global: taken by another tenant answers exactly as taken by her own port.
    assert.deepEqual(strip(await eve("POST", "/v1/ports", { id: "a0", network: "pub", mac: MAC(0x30) })), strip(await eve("POST", "/v1/ports", { id: "e0", network: "pub", mac: MAC(0x30) })));
    await alice("POST", "/v1/networks", { id: "alice-private" });
    assert.deepEqual(strip(await eve("POST", "/v1/networks", { id: "alice-private" })), strip(await eve("POST", "/v1/networks", { id: "e0-net-taken" }).then(async () => eve("POST", "/v1/networks", { id: "e0-net-taken" }))));
    for (const [method, suffix, body] of [["GET", "", undefined], ["PATCH", "", { ips: [] }], ["DELETE", "", undefined], ["GET", "/allowed", undefined], ["POST", "/allowed", { ip: "10.0.0.9" }], ["GET", "/status", undefined], ["GET", "/migration", undefined]] as const) {
      const foreign = strip(await eve(method, `/v1/ports/a0${suffix}`, body));
      const missing = strip(await eve(method, `/v1/ports/a0${suffix}`.replace("a0", "zz"), body));
      assert.equal(foreign.status, 404, `${method} ${suffix}`);
      assert.deepEqual({ ...foreign, message: foreign.message?.replace("a0", "X") }, { ...missing, message: missing.message?.replace("zz", "X") }, `${method} ${suffix}`);
    }
    for (const [method, body] of [["GET", undefined], ["PATCH", { protection: "full" }], ["DELETE", undefined]] as const) {
      const foreign = strip(await eve(method, "/v1/networks/alice-private", body));
      const missing = strip(await eve(method, "/v1/networks/nope-private", body));
      assert.deepEqual({ ...foreign, message: foreign.message?.replace("alice-private", "X") }, { ...missing, message: missing.message?.replace("nope-private", "X") }, method);
    }
    // The admin still sees who holds a claim.
    await refused(await admin("POST", "/v1/ports", { id: "e-x", tenant: "eve", network: "pub", mac: MAC(0x31), ips: ["10.0.0.1"] }), 409, "VG_ADDRESS_CLAIMED", "ips[0]", /port a0, tenant alice/);
  });
}

/**
 * Spoof events: an agent reports them with its status; GET /v1/events filters and pages them, a
 * tenant sees her own ports' only (and the owner of a claimed address only when it is hers), a
 * long-poll wakes on a new one, and retention keeps at most maxEvents.
 */
export async function eventsSuite(t: TestContext, backend: Backend): Promise<void> {
  const c = await controllerOn(t, backend, { maxEvents: 5 });
  const admin = client(c, ADMIN);
  const alice = client(c, await token(c, "tenant", "alice"));
  const eve = client(c, await token(c, "tenant", "eve"));
  const hv1 = client(c, await token(c, "agent", "hv1"));
  await admin("POST", "/v1/networks", { id: "ev-net", tenant: "provider", shared: true });
  await admin("PUT", "/v1/hosts/hv1", { driver: "nftables", version: "1", capabilities: { guards: FULL_GUARDS, limitations: [] } });
  assert.equal((await admin("POST", "/v1/ports", { id: "ev-alice-0", tenant: "alice", network: "ev-net", device: "vnet0", mac: MAC(0x71), ips: ["10.0.0.1"], host: "hv1" })).status, 201);
  assert.equal((await admin("POST", "/v1/ports", { id: "ev-eve-0", tenant: "eve", network: "ev-net", device: "vnet1", mac: MAC(0x72), ips: ["10.0.0.2"], host: "hv1" })).status, 201);
  // Yesterday at 12:03 UTC: inside the controller's retention (a week by default) whenever the suite runs.
  const t0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000 + 43_380_000;
  const event = (port: string, reason: string, first: number, count: number, claimed: string[] = []) => ({
    id: `${port}/${reason}/${first}`, port, reason, firstSeenMs: first, lastSeenMs: first + 120_000, count, claimed,
    samples: claimed.map((a) => ({ atMs: first, srcMac: MAC(0x72), dstMac: "ff:ff:ff:ff:ff:ff", protocol: "ARP", arpSenderIp: a, claimed: a })),
  });
  const cursor = (await admin("GET", "/v1/events")).body.cursor as number;

  await t.test("events ride with the status report; an event of a port not on the host is ignored", async () => {
    const res = await hv1("PUT", "/v1/hosts/hv1/status", { ports: [], events: [event("ev-eve-0", "arp-spoof", t0, 5089, ["10.0.0.1"]), event("nobody", "mac-spoof", t0, 1)] });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body.ignoredEvents, [`nobody/mac-spoof/${t0}`]);
    const list = (await admin("GET", "/v1/events")).body;
    assert.equal(list.events.length, 1);
    const e = list.events[0];
    assert.deepEqual([e.id, e.host, e.port, e.tenant, e.network, e.reason, e.count, e.claimed, e.firstSeenAt, e.lastSeenAt], [`hv1/ev-eve-0/arp-spoof/${t0}`, "hv1", "ev-eve-0", "eve", "ev-net", "arp-spoof", 5089, ["10.0.0.1"], new Date(t0).toISOString(), new Date(t0 + 120_000).toISOString()]);
    assert.deepEqual(e.claimedFrom, { port: "ev-alice-0", tenant: "alice" }, "the admin sees whose address was claimed");
    // The same event again (it went on): updated in place, not duplicated.
    await hv1("PUT", "/v1/hosts/hv1/status", { ports: [], events: [{ ...event("ev-eve-0", "arp-spoof", t0, 6000, ["10.0.0.1"]), lastSeenMs: t0 + 180_000 }] });
    const again = (await admin("GET", "/v1/events")).body.events;
    assert.deepEqual(again.map((x: { count: number }) => x.count), [6000]);
  });

  await t.test("a tenant sees only her own ports' events, and the owner of the address only if it is hers", async () => {
    await hv1("PUT", "/v1/hosts/hv1/status", { ports: [], events: [event("ev-alice-0", "mac-spoof", t0 + 1000, 3, [MAC(0x72)])] });
    const mine = (await eve("GET", "/v1/events")).body.events;
    assert.deepEqual(mine.map((x: { port: string }) => x.port), ["ev-eve-0"]);
    assert.equal(mine[0].claimedFrom, null, "Eve does not learn Alice's port name");
    const hers = (await alice("GET", "/v1/events")).body.events;
    assert.deepEqual(hers.map((x: { port: string }) => x.port), ["ev-alice-0"]);
    assert.equal((await eve("GET", "/v1/events?tenant=alice")).status, 403);
    assert.equal((await eve("GET", "/v1/events?port=ev-alice-0")).body.events.length, 0);
    assert.equal((await hv1("GET", "/v1/events?host=hv2")).status, 403);
  });

  await t.test("filters by port, host, reason and time, and pages newest first", async () => {
    assert.deepEqual((await admin("GET", "/v1/events?reason=mac-spoof")).body.events.map((x: { port: string }) => x.port), ["ev-alice-0"]);
    assert.deepEqual((await admin("GET", "/v1/events?port=ev-eve-0")).body.events.map((x: { reason: string }) => x.reason), ["arp-spoof"]);
    assert.equal((await admin("GET", "/v1/events?host=hv2")).body.events.length, 0);
    assert.equal((await admin("GET", `/v1/events?since=${new Date(t0 + 200_000).toISOString()}`)).body.events.length, 0);
    assert.equal((await admin("GET", `/v1/events?until=${new Date(t0 + 500).toISOString()}`)).body.events.length, 1);
    assert.equal((await admin("GET", "/v1/events?since=yesterday")).status, 400);
    const first = (await admin("GET", "/v1/events?limit=1")).body;
    assert.deepEqual(first.events.map((x: { port: string }) => x.port), ["ev-eve-0"], "last seen latest first");
    assert.ok(first.next);
    const second = (await admin("GET", `/v1/events?limit=1&before=${encodeURIComponent(first.next)}`)).body;
    assert.deepEqual(second.events.map((x: { port: string }) => x.port), ["ev-alice-0"]);
  });

  await t.test("a long-poll with changedAfter wakes on a new event, and answers at once with what it missed", async () => {
    const missed = (await admin("GET", `/v1/events?changedAfter=${cursor}&timeoutMs=0`)).body;
    assert.equal(missed.events.length, 2);
    const started = Date.now();
    const waiting = eve("GET", `/v1/events?changedAfter=${missed.cursor}&timeoutMs=10000`);
    setTimeout(() => void hv1("PUT", "/v1/hosts/hv1/status", { ports: [], events: [event("ev-eve-0", "ipv4-spoof", t0 + 2000, 7, ["10.0.0.1"])] }), 300);
    const woke = await waiting;
    assert.deepEqual(woke.body.events.map((x: { reason: string }) => x.reason), ["ipv4-spoof"]);
    assert.ok(Date.now() - started < 5_000);
    const quiet = await eve("GET", `/v1/events?changedAfter=${woke.body.cursor}&timeoutMs=300`);
    assert.deepEqual([quiet.status, quiet.body.events.length], [200, 0]);
  });

  await t.test("retention keeps at most maxEvents (the oldest go) and removes events older than the retention", async () => {
    const many = Array.from({ length: 8 }, (_, i) => event("ev-eve-0", "vlan", t0 + 10_000 + i, 1));
    await hv1("PUT", "/v1/hosts/hv1/status", { ports: [], events: many });
    await c.store.spoofEvents.prune();
    const kept = (await admin("GET", "/v1/events?limit=100")).body.events as { id: string }[];
    assert.equal(kept.length, 5);
    // The ARP event went on until t0 + 3 min: newer than every vlan one.
    assert.deepEqual(kept.map((e) => e.id), [`hv1/ev-eve-0/arp-spoof/${t0}`, ...[7, 6, 5, 4].map((i) => `hv1/ev-eve-0/vlan/${t0 + 10_000 + i}`)]);
    // A controller keeping events for one hour removes one last seen two hours ago, keeps a fresh one.
    const now = Date.now();
    await hv1("PUT", "/v1/hosts/hv1/status", { ports: [], events: [{ ...event("ev-eve-0", "ethertype", now - 7_200_000, 1), lastSeenMs: now - 7_200_000 }, { ...event("ev-eve-0", "malformed", now, 1), lastSeenMs: now }] });
    const hourly = await controllerOn(t, backend, { eventRetentionHours: 1 });
    assert.ok((await hourly.store.spoofEvents.prune()) >= 1);
    const left = (await hourly.store.spoofEvents.list({ limit: 100 })).map((r) => r.reason);
    assert.ok(left.includes("malformed") && !left.includes("ethertype"), left.join(", "));
  });
}
