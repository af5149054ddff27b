// `vifguard events`: the CLI reads spoof events from a real controller (SQLite store, a listening
// socket) through the typed client, and from a running agent over its control socket.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { Writable } from "node:stream";
import { pino } from "pino";
import { startAgent } from "../../src/agent/agent.ts";
import { validateAgentConfig } from "../../src/agent/config.ts";
import { parseSince, filterEvents } from "../../src/cli/events.ts";
import type { SpoofEvent } from "../../src/agent/events.ts";
import { ADMIN, client, controllerOn, FULL_GUARDS, sqliteBackend, token } from "../controller/helpers.ts";
import { FakeDriver } from "../agent/fake-driver.ts";
import { ALICE, EVE, portFile, tempDir, until } from "../agent/fixture.ts";
import { vifguard } from "../support/cli.ts";

const MAC = (n: number): string => `52:54:00:00:00:${n.toString(16).padStart(2, "0")}`;

test("parseSince: durations back from now and ISO times; anything else is a usage error", () => {
  const now = Date.parse("2026-12-05T12:00:00Z");
  const cases: [string, number][] = [["90s", now - 90_000], ["10m", now - 600_000], ["2h", now - 7_200_000], ["7d", now - 7 * 86_400_000], ["2026-12-05T11:00:00Z", now - 3_600_000], ["2026-12-05", Date.parse("2026-12-05")]];
  for (const [text, ms] of cases) assert.equal(parseSince(text, now), ms, text);
  for (const bad of ["yesterday", "10", "5w", "", "12:00"]) assert.throws(() => parseSince(bad, now), /--since: got ".*", expected a duration/, bad);
});

test("filterEvents: tenant, port, reason and since filter the agent's events", () => {
  const e = (port: string, tenant: string, reason: SpoofEvent["reason"], last: number): SpoofEvent => ({ id: `${port}/${reason}/0`, port, tenant, reason, firstSeenMs: 0, lastSeenMs: last, count: 1, claimed: [], samples: [] });
  const all = [e("eve-0", "eve", "arp-spoof", 100), e("eve-0", "eve", "mac-spoof", 50), e("bob-0", "bob", "arp-spoof", 10)];
  assert.deepEqual(filterEvents(all, { tenant: "eve" }).map((x) => x.id), ["eve-0/arp-spoof/0", "eve-0/mac-spoof/0"]);
  assert.deepEqual(filterEvents(all, { reason: "arp-spoof", sinceMs: 20 }).map((x) => x.id), ["eve-0/arp-spoof/0"]);
  assert.deepEqual(filterEvents(all, { port: "bob-0" }).map((x) => x.id), ["bob-0/arp-spoof/0"]);
});

test("vifguard events --controller: one line per event, filters, tenant scope, --json, --follow and errors", async (t) => {
  const backend = await sqliteBackend(t);
  const c = await controllerOn(t, backend);
  const admin = client(c, ADMIN);
  const dir = new URL(backend.url.replace("sqlite://", "file://")).pathname.replace(/\/controller\.db$/, "");
  await admin("POST", "/v1/networks", { id: "pub", tenant: "provider", shared: true });
  await admin("PUT", "/v1/hosts/hv2", { driver: "nftables", version: "1", capabilities: { guards: FULL_GUARDS, limitations: [] } });
  assert.equal((await admin("POST", "/v1/ports", { id: "alice-0", tenant: "alice", network: "pub", device: "vnet0", mac: MAC(1), ips: ["10.0.0.1"], host: "hv2" })).status, 201);
  assert.equal((await admin("POST", "/v1/ports", { id: "eve-0", tenant: "eve", network: "pub", device: "vnet1", mac: MAC(2), ips: ["10.0.0.2"], host: "hv2" })).status, 201);
  const hv2 = client(c, await token(c, "agent", "hv2"));
  // Yesterday at 12:03 UTC: inside the controller's retention whenever the test runs; a line names the day of an event that is not today's.
  const t0 = Math.floor(Date.now() / 86_400_000) * 86_400_000 - 86_400_000 + 43_380_000;
  const day = `${new Date(t0).toISOString().slice(0, 10)} `;
  const sample = (protocol: string) => ({ atMs: t0, srcMac: MAC(2), dstMac: "ff:ff:ff:ff:ff:ff", protocol, claimed: "10.0.0.1" });
  const report = (events: unknown[]) => hv2("PUT", "/v1/hosts/hv2/status", { ports: [], events });
  assert.equal((await report([
    { id: `eve-0/arp-spoof/${t0}`, port: "eve-0", reason: "arp-spoof", firstSeenMs: t0, lastSeenMs: t0 + 120_000, count: 5000, claimed: ["10.0.0.1"], samples: [sample("ARP")] },
    { id: `eve-0/ipv4-spoof/${t0}`, port: "eve-0", reason: "ipv4-spoof", firstSeenMs: t0 + 1000, lastSeenMs: t0 + 110_000, count: 89, claimed: ["10.0.0.1"], samples: [sample("IPv4")] },
    { id: `alice-0/mac-spoof/${t0}`, port: "alice-0", reason: "mac-spoof", firstSeenMs: t0, lastSeenMs: t0, count: 1, claimed: [MAC(9)], samples: [] },
  ])).status, 200);
  const adminFile = join(dir, "admin.token");
  writeFileSync(adminFile, `${ADMIN}\n`);
  const eveFile = join(dir, "eve.token");
  writeFileSync(eveFile, await token(c, "tenant", "eve"));

  const all = await vifguard("events", "--controller", c.url, "--token-file", adminFile);
  assert.equal(all.code, 0, all.stderr);
  assert.deepEqual(all.stdout.trim().split("\n"), [
    `eve-0 on hv2 claimed 10.0.0.1 (alice-0's) 5,089 times, ${day}12:03–12:05, ARP and IPv4 (arp-spoof, ipv4-spoof)`,
    `alice-0 on hv2 sent as MAC 52:54:00:00:00:09 once, ${day}12:03, mac-spoof`,
  ]);

  const arp = await vifguard("events", "--controller", c.url, "--token-file", adminFile, "--reason", "arp-spoof", "--port", "eve-0", "--json");
  assert.equal(arp.code, 0, arp.stderr);
  assert.deepEqual((JSON.parse(arp.stdout) as { id: string; count: number }[]).map((e) => [e.id, e.count]), [[`hv2/eve-0/arp-spoof/${t0}`, 5000]]);
  const later = await vifguard("events", "--controller", c.url, "--token-file", adminFile, "--since", new Date(t0 + 3_420_000).toISOString());
  assert.equal(later.stdout.trim(), `no spoof events (${c.url})`);

  // Eve's token: her own port's events only, and not whose address she claimed.
  const mine = await vifguard("events", "--controller", c.url, "--token-file", eveFile);
  assert.equal(mine.code, 0, mine.stderr);
  assert.deepEqual(mine.stdout.trim().split("\n"), [`eve-0 on hv2 claimed 10.0.0.1 5,089 times, ${day}12:03–12:05, ARP and IPv4 (arp-spoof, ipv4-spoof)`]);
  const theirs = await vifguard("events", "--controller", c.url, "--token-file", eveFile, "--tenant", "alice");
  assert.equal(theirs.code, 1);
  assert.match(theirs.stderr, /GET http:\/\/127\.0\.0\.1:\d+\/v1\/events: 403 VG_FORBIDDEN A tenant token may read its own tenant's events only \(eve\)/);

  // Bad input: said before anything is asked.
  for (const [args, message] of [
    [["--reason", "arp"], /--reason: got "arp", expected one of mac-spoof, arp-spoof/],
    [["--since", "yesterday"], /--since: got "yesterday", expected a duration/],
    [["--limit", "0"], /--limit: got "0", expected a whole number from 1 to 1000/],
    [["--time-zone", "Mars/Olympus"], /--time-zone: got "Mars\/Olympus", expected an IANA time zone/],
  ] as const) {
    const bad = await vifguard("events", "--controller", c.url, "--token-file", adminFile, ...args);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, message);
  }
  const noController = await vifguard("events", "--host", "hv2", "--socket", join(dir, "none.sock"));
  assert.equal(noController.code, 2);
  assert.match(noController.stderr, /--host: needs --controller URL/);

  // --follow: the current events, then a new one as the agent reports it (the long-poll).
  const follow = spawn(new URL("../../bin/vifguard", import.meta.url).pathname, ["events", "--controller", c.url, "--token-file", adminFile, "--follow", "--port", "eve-0", "--json"], { stdio: ["ignore", "pipe", "pipe"] });
  t.after(() => follow.kill());
  let out = "";
  follow.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
  assert.ok(await until(() => out.split("\n").length > 2, 20_000), out);
  await report([{ id: `eve-0/mac-spoof/${t0 + 600_000}`, port: "eve-0", reason: "mac-spoof", firstSeenMs: t0 + 600_000, lastSeenMs: t0 + 600_000, count: 7, claimed: [MAC(1)], samples: [] }]);
  assert.ok(await until(() => out.includes("mac-spoof"), 20_000), out);
  const lines = out.trim().split("\n").map((l) => JSON.parse(l) as { reason: string; count: number });
  assert.deepEqual(lines.map((e) => [e.reason, e.count]), [["ipv4-spoof", 89], ["arp-spoof", 5000], ["mac-spoof", 7]]);
});

test("vifguard events against the running agent's control socket: its events, filtered, as lines or JSON", async (t) => {
  const dir = await tempDir(t, "events-cli");
  const file = join(dir, "ports.yaml");
  writeFileSync(file, portFile([ALICE, EVE]));
  const driver = new FakeDriver();
  const socket = join(dir, "agent.sock");
  const config = validateAgentConfig({ source: { file }, stateDir: join(dir, "state"), controlSocket: socket, listen: "127.0.0.1:0", events: { intervalMs: 100 } }, "test");
  const agent = await startAgent(config, { driver, logger: pino({ level: "silent" }, new Writable({ write: (_c, _e, done) => done() })) });
  t.after(() => agent.stop());

  const none = await vifguard("events", "--socket", socket);
  assert.equal(none.code, 0, none.stderr);
  assert.equal(none.stdout.trim(), `no spoof events (agent on ${socket})`);

  // Counters only (the fake dataplane samples no frames): Eve's drops become one event.
  driver.drops = [{ port: "eve-0", reason: "arp-spoof", packets: 0, bytes: 0 }];
  await new Promise((r) => setTimeout(r, 200));
  driver.drops = [{ port: "eve-0", reason: "arp-spoof", packets: 1234, bytes: 74_040 }];
  let json: { port: string; tenant: string; reason: string; count: number }[] = [];
  assert.ok(await until(async () => {
    const r = await vifguard("events", "--socket", socket, "--json");
    json = JSON.parse(r.stdout) as typeof json;
    return json.length === 1 && json[0]!.count === 1234;
  }, 10_000, 200), JSON.stringify(json));
  assert.deepEqual(json.map((e) => [e.port, e.tenant, e.reason]), [["eve-0", "eve", "arp-spoof"]]);
  const lines = await vifguard("events", "--socket", socket);
  assert.match(lines.stdout.trim(), /^eve-0 had 1,234 frames dropped, \d\d:\d\d, arp-spoof$/);
  const alice = await vifguard("events", "--socket", socket, "--tenant", "alice");
  assert.equal(alice.stdout.trim(), `no spoof events (agent on ${socket})`);

  const missing = await vifguard("events", "--socket", join(dir, "nobody.sock"));
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nobody\.sock/);
});
