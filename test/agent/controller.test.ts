// Agents whose source is a real controller (startController on a temp SQLite file, or the
// `vifguard controller` process): registration, status reports, the fail-closed switch, live
// migration between two in-process agents with in-memory drivers (the destination installs the
// port strictly before the source removes it), and resuming after the controller was killed.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test, type TestContext } from "node:test";
import { pino } from "pino";
import { startAgent, type RunningAgent } from "../../src/agent/agent.ts";
import { validateAgentConfig } from "../../src/agent/config.ts";
import type { ApplyReport, ChangeSet } from "../../src/drivers/contract.ts";
import { FAIL_CLOSED_KEY } from "../../src/drivers/contract.ts";
import { startController, type RunningController } from "../../src/controller/server.ts";
import { GUARDS, type Guard } from "../../src/policy/guards.ts";
import { FakeDriver } from "./fake-driver.ts";
import { ALICE, BOB, EVE, tempDir, until, type PortSpec } from "./fixture.ts";

const ADMIN = "admin-bootstrap-token-0123456789";
const ROOT = new URL("../../", import.meta.url).pathname;

/** One line of the shared history of every fake dataplane: which host added or removed which unit. */
type Event = Readonly<{ host: string; op: "add" | "remove"; key: string }>;

/** A fake driver that writes every applied change into a history shared by all hosts. */
class HostDriver extends FakeDriver {
  /** While set, apply() waits for it (an agent that cannot apply yet). */
  hold: Promise<void> | undefined;

  constructor(readonly host: string, readonly history: Event[], guards: readonly Guard[] = GUARDS) {
    super();
    (this as { capabilities: FakeDriver["capabilities"] }).capabilities = { guards: new Set(guards), limitations: [], atomicBatch: true };
  }

  override async apply(changes: ChangeSet): Promise<ApplyReport> {
    await this.hold;
    const report = await super.apply(changes);
    for (const key of changes.remove) this.history.push({ host: this.host, op: "remove", key });
    for (const unit of changes.add) this.history.push({ host: this.host, op: "add", key: unit.key });
    return report;
  }
}

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A small JSON client for a listening controller. */
function api(url: () => string, token = ADMIN) {
  return async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${url()}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
}

async function ok(answer: Promise<{ status: number; body: Json }>, ...statuses: number[]): Promise<Json> {
  const a = await answer;
  assert.ok((statuses.length ? statuses : [200, 201, 204]).includes(a.status), `HTTP ${a.status}: ${JSON.stringify(a.body)}`);
  return a.body;
}

const portBody = (p: PortSpec, host: string | null) => ({ id: p.id, tenant: p.tenant, network: "public", device: p.device, mac: p.mac, ips: p.ips, host });

type Lab = { dir: string; url: () => string; admin: ReturnType<typeof api>; history: Event[] };

async function controllerLab(t: TestContext): Promise<Lab & { controller: RunningController }> {
  const dir = await tempDir(t, "ctl");
  const controller = await startController({ store: `sqlite://${join(dir, "c.db")}`, bootstrapTokens: [ADMIN], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent", watchPollMs: 200 });
  t.after(() => controller.close());
  const admin = api(() => controller.url);
  await ok(admin("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true }));
  return { dir, url: () => controller.url, admin, history: [], controller };
}

type HostAgent = { agent: RunningAgent; driver: HostDriver; logs: Record<string, unknown>[]; host: string };

async function hostAgent(t: TestContext, lab: Lab, host: string, options: { guards?: readonly Guard[]; driver?: HostDriver; retryMs?: number } = {}): Promise<HostAgent> {
  const tokenFile = join(lab.dir, `${host}.token`);
  const created = await ok(lab.admin("POST", "/v1/tokens", { role: "agent", host }));
  await writeFile(tokenFile, created.token as string, { mode: 0o600 });
  const driver = options.driver ?? new HostDriver(host, lab.history, options.guards);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  const config = validateAgentConfig({
    source: { controller: { url: lab.url(), tokenFile, host, pollTimeoutMs: 5_000, retryMs: options.retryMs ?? 100, heartbeatMs: 200 } },
    stateDir: join(lab.dir, host, "state"),
    controlSocket: join(lab.dir, host, "agent.sock"),
    listen: false,
    reconcile: { intervalMs: 60_000, debounceMs: 10 },
    drops: { logIntervalMs: 60_000 },
  }, "test");
  const agent = await startAgent(config, { driver, logger: pino({ level: "debug" }, sink) });
  t.after(() => agent.stop());
  return { agent, driver, logs, host };
}

const has = (a: HostAgent, key: string): boolean => a.driver.installed.has(key);

test("agent with a controller: registers its host, heartbeats and reports each port's status", async (t) => {
  const lab = await controllerLab(t);
  const missing: Guard[] = ["nd-spoof", "ipv6-fragment"];
  const h1 = await hostAgent(t, lab, "h1", { guards: GUARDS.filter((g) => !missing.includes(g)) });
  await ok(lab.admin("POST", "/v1/ports", portBody(ALICE, "h1")));
  await ok(lab.admin("POST", "/v1/ports", portBody(EVE, "h1")));
  assert.ok(await until(() => has(h1, "alice-0") && has(h1, "eve-0")), "both ports installed");

  const host = await ok(lab.admin("GET", "/v1/hosts/h1"));
  assert.equal(host.driver, "nftables");
  assert.match(host.version, /^\d+\.\d+\.\d+/);
  assert.deepEqual(host.capabilities.guards, GUARDS.filter((g) => !missing.includes(g)).sort());
  const seen = host.lastSeenAt as string;
  assert.ok(await until(async () => (await ok(lab.admin("GET", "/v1/hosts/h1"))).lastSeenAt !== seen, 3_000), "heartbeats move lastSeenAt");

  await t.test("status: applied revision, guards enforced and missing", async () => {
    const port = await ok(lab.admin("GET", "/v1/ports/alice-0"));
    let status: Json;
    assert.ok(await until(async () => (status = await ok(lab.admin("GET", "/v1/ports/alice-0/status"))).reports.length === 1), "reported");
    const r = status.reports[0];
    assert.equal(r.host, "h1");
    assert.ok(r.appliedRevision >= port.migration.boundRevision, `applied ${r.appliedRevision} ≥ bound ${port.migration.boundRevision}`);
    assert.deepEqual(r.guardsMissing, missing.slice().sort((a, b) => GUARDS.indexOf(a) - GUARDS.indexOf(b)));
    assert.deepEqual(r.guardsEnforced, GUARDS.filter((g) => !missing.includes(g)));
    assert.deepEqual(status.guardsMissing.slice().sort(), missing.slice().sort(), "the controller sees the same gap from the registration");
    assert.equal(status.migration.state, "ready");
  });

  await t.test("status: drop counters after the next sync", async () => {
    h1.driver.drops = [{ port: "eve-0", reason: "arp-spoof", packets: 37, bytes: 2220 }, { port: "eve-0", reason: "ipv4-spoof", packets: 3, bytes: 180 }];
    await h1.agent.reconciler.sync("test");
    assert.ok(await until(async () => (await ok(lab.admin("GET", "/v1/ports/eve-0/status"))).reports[0]?.drops.length === 2), "drops reported");
    const status = await ok(lab.admin("GET", "/v1/ports/eve-0/status"));
    assert.deepEqual(status.reports[0].drops, [{ reason: "arp-spoof", packets: 37, bytes: 2220 }, { reason: "ipv4-spoof", packets: 3, bytes: 180 }]);
  });

  await t.test("a new revision is reported for every enforced port", async () => {
    const changed = await ok(lab.admin("PATCH", "/v1/ports/alice-0", { ips: ["10.0.0.1", "10.0.0.11"] }));
    assert.ok(await until(async () => (await ok(lab.admin("GET", "/v1/ports/alice-0/status"))).reports[0]?.appliedRevision >= changed.revision), "alice's change applied and reported");
  });

  await t.test("a host forgotten by the controller registers again", async () => {
    await ok(lab.admin("DELETE", "/v1/hosts/h1"));
    assert.ok(await until(async () => (await lab.admin("GET", "/v1/hosts/h1")).status === 200, 3_000), "registered again after the next heartbeat");
  });
});

test("agent with a controller: the controller's failClosed switch removes and restores the fail-closed unit", async (t) => {
  const lab = await controllerLab(t);
  const h1 = await hostAgent(t, lab, "h1");
  await ok(lab.admin("POST", "/v1/ports", portBody(ALICE, "h1")));
  assert.ok(await until(() => has(h1, "alice-0") && has(h1, FAIL_CLOSED_KEY)));
  await ok(lab.admin("PATCH", "/v1/config", { failClosed: false }));
  assert.ok(await until(() => !has(h1, FAIL_CLOSED_KEY)), "fail-closed off");
  assert.ok(has(h1, "alice-0"), "ports stay");
  await ok(lab.admin("PATCH", "/v1/config", { failClosed: true }));
  assert.ok(await until(() => has(h1, FAIL_CLOSED_KEY)), "fail-closed on again");
  assert.ok(h1.logs.some((l) => l.msg === "fail-closed off (the controller's switch)"));
});

/** Where in the shared history `host` first did `op` on `key` after `from`. */
const indexOf = (history: readonly Event[], host: string, op: Event["op"], key: string, from = 0): number =>
  history.findIndex((e, i) => i >= from && e.host === host && e.op === op && e.key === key);

test("live migration: the destination installs the port strictly before the source removes it, which is when the VM left it", async (t) => {
  const lab = await controllerLab(t);
  const h1 = await hostAgent(t, lab, "h1");
  const h2 = await hostAgent(t, lab, "h2");
  await ok(lab.admin("POST", "/v1/ports", portBody(ALICE, "h1")));
  await ok(lab.admin("POST", "/v1/ports", portBody(BOB, "h2")));
  assert.ok(await until(() => has(h1, "alice-0") && has(h2, "bob-0")));
  const figures: string[] = [];

  for (const [source, dest] of [[h1, h2], [h2, h1], [h1, h2]] as const) {
    await t.test(`${source.host} → ${dest.host}`, async () => {
      const from = lab.history.length;
      const started = performance.now();
      // The destination's hook runs while the orchestrator binds the port: migrate-in waits for both.
      const migrateIn = dest.agent.handle({ op: "migrate-in", port: ALICE.mac, timeoutMs: 10_000 });
      await ok(lab.admin("PATCH", "/v1/ports/alice-0", { host: dest.host }));
      const answer = await migrateIn;
      const readyMs = performance.now() - started;
      assert.ok(answer.ok, answer.ok ? "" : answer.message);
      assert.equal((answer.data as Json).migration.ready, true);
      assert.equal((answer.data as Json).migration.host, dest.host);
      assert.ok(has(dest, "alice-0"), "installed on the destination when migrate-in answers");
      // The VM runs on the source until the switch-over: the source keeps the port meanwhile.
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(has(source, "alice-0"), "the source keeps the port while the VM still runs there");
      assert.equal((await ok(lab.admin("GET", "/v1/ports/alice-0/migration"))).state, "ready-on-destination");
      // The switch-over: the source's hook says the VM left (libvirt: stopped/release → unplug).
      const out = await source.agent.handle({ op: "migrate-out", port: ALICE.mac });
      assert.ok(out.ok, out.ok ? "" : out.message);
      assert.ok(!has(source, "alice-0"), "removed from the source when migrate-out answers");
      const removedMs = performance.now() - started;
      const installed = indexOf(lab.history, dest.host, "add", "alice-0", from);
      const removed = indexOf(lab.history, source.host, "remove", "alice-0", from);
      assert.ok(installed >= 0 && removed >= 0, JSON.stringify(lab.history.slice(from)));
      assert.ok(installed < removed, `destination add (#${installed}) before source remove (#${removed}): ${JSON.stringify(lab.history.slice(from))}`);
      // The source reports the port released: the migration ends.
      let m: Json;
      assert.ok(await until(async () => (m = await ok(lab.admin("GET", "/v1/ports/alice-0/migration"))).state === "ready"), "the migration ended");
      assert.deepEqual([m.state, m.host, m.source], ["ready", dest.host, null]);
      assert.ok(has(source, "bob-0") || has(dest, "bob-0"), "the other port is untouched");
      figures.push(`${source.host}→${dest.host}: ready in ${readyMs.toFixed(0)} ms, source clean after its migrate-out at ${removedMs.toFixed(0)} ms`);
    });
  }
  t.diagnostic(figures.join("; "));

  await t.test("moving back before the destination applied cancels the migration without a gap", async () => {
    // h2 has alice; h1's dataplane is held, so h1 cannot apply before the port moves back.
    const from = lab.history.length;
    let release!: () => void;
    h1.driver.hold = new Promise((r) => (release = r));
    await ok(lab.admin("PATCH", "/v1/ports/alice-0", { host: "h1" }));
    assert.equal((await ok(lab.admin("GET", "/v1/ports/alice-0/migration"))).state, "migrating");
    await new Promise((r) => setTimeout(r, 200));
    await ok(lab.admin("PATCH", "/v1/ports/alice-0", { host: "h2" }));
    h1.driver.hold = undefined;
    release();
    await h2.agent.reconciler.idle();
    const m = await ok(lab.admin("GET", "/v1/ports/alice-0/migration?readyOn=h2&timeoutMs=5000"));
    assert.equal(m.ready, true);
    assert.equal(indexOf(lab.history, "h2", "remove", "alice-0", from), -1, "h2 never removed alice");
    assert.ok(await until(() => !has(h1, "alice-0")), "h1 cleaned up");
  });
});

test("migrate-in with waitReady false (--no-wait-ready) answers once installed, without asking the controller", async (t) => {
  const lab = await controllerLab(t);
  const h2 = await hostAgent(t, lab, "h2");
  await ok(lab.admin("POST", "/v1/ports", portBody(ALICE, "h2")));
  const answer = await h2.agent.handle({ op: "migrate-in", port: "alice-0", timeoutMs: 5_000, waitReady: false });
  assert.ok(answer.ok);
  assert.equal((answer.data as Json).migration, undefined);
});

// --- the controller as a process, killed mid-watch ---

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** `vifguard controller` as a child process on `port`; resolves once it answers. */
async function controllerProcess(t: TestContext, dir: string, db: string, port: number): Promise<ChildProcess> {
  const config = join(dir, "controller.yaml");
  await writeFile(join(dir, "admin.token"), ADMIN, { mode: 0o600 });
  await writeFile(config, `listen: 127.0.0.1:${port}\nstore: sqlite://${db}\nbootstrapTokenFile: ${join(dir, "admin.token")}\nwatchPollMs: 200\nlogLevel: warn\n`);
  const child = spawn(join(ROOT, "bin/vifguard"), ["controller", "--config", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  t.after(() => void child.kill("SIGKILL"));
  const up = await until(async () => (await fetch(`http://127.0.0.1:${port}/v1/revision`, { headers: { authorization: `Bearer ${ADMIN}` } }).then((r) => r.ok, () => false)) || child.exitCode !== null, 30_000, 50);
  if (!up || child.exitCode !== null) throw new Error(`controller did not start: ${stderr}`);
  return child;
}

const kill9 = async (child: ChildProcess): Promise<void> => {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
};

test("resume: the controller killed mid-watch and restarted on the same SQLite file; the agent keeps enforcing, then catches up without missing or replaying a change", async (t) => {
  const dir = await tempDir(t, "resume");
  const db = join(dir, "c.db");
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let controller = await controllerProcess(t, dir, db, port);
  const lab: Lab = { dir, url: () => url, admin: api(() => url), history: [] };
  await ok(lab.admin("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true }));
  await ok(lab.admin("POST", "/v1/ports", portBody(ALICE, "h1")));
  await ok(lab.admin("POST", "/v1/ports", portBody(EVE, "h1")));
  const driver = new HostDriver("h1", lab.history);
  const h1 = await hostAgent(t, lab, "h1", { driver, retryMs: 200 });
  assert.ok(await until(() => has(h1, "alice-0") && has(h1, "eve-0")));
  await h1.agent.reconciler.idle();
  const revisions = (a: HostAgent): number[] => a.logs.filter((l) => typeof l.msg === "string" && l.msg.startsWith("desired state:") && l.saved === false).map((l) => Number(l.revision));

  // Killed while the agent long-polls.
  await new Promise((r) => setTimeout(r, 300));
  await kill9(controller);
  const before = lab.history.length;
  await new Promise((r) => setTimeout(r, 1_000));
  assert.deepEqual(lab.history.slice(before), [], "nothing removed or changed while the controller is gone");
  assert.ok(h1.agent.reconciler.healthy);

  // The agent restarts while the controller is down: it enforces its saved state, flushing nothing.
  assert.ok(revisions(h1).length >= 1);
  await h1.agent.stop();
  const restarted = await restartAgent(t, lab, driver, "h1");
  assert.ok(restarted.logs.some((l) => String(l.msg).startsWith("using the saved desired state")), "started on the saved state");
  assert.ok(has(restarted, "alice-0") && has(restarted, "eve-0"), "still enforcing");
  assert.deepEqual(lab.history.slice(before).filter((e) => e.op === "remove" && e.key !== FAIL_CLOSED_KEY), [], "nothing removed");

  // Changes made meanwhile (another controller on the same file, as a replica or the operator would).
  const side = await startController({ store: `sqlite://${db}`, bootstrapTokens: [ADMIN], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent" });
  const sideApi = api(() => side.url);
  await ok(sideApi("POST", "/v1/ports", portBody(BOB, "h1")));
  const last = await ok(sideApi("PATCH", "/v1/ports/alice-0", { ips: ["10.0.0.1", "10.0.0.11"] }));
  await side.close();
  const applied = lab.history.length;

  controller = await controllerProcess(t, dir, db, port);
  const back = performance.now();
  assert.ok(await until(() => has(restarted, "bob-0"), 15_000), "caught up");
  const catchUpMs = performance.now() - back;
  await restarted.agent.reconciler.idle();
  t.diagnostic(`catch-up after the controller restart: ${catchUpMs.toFixed(0)} ms (retryMs 200)`);
  const touched = lab.history.slice(applied).filter((e) => e.key !== FAIL_CLOSED_KEY);
  assert.deepEqual(touched.map((e) => `${e.op} ${e.key}`).sort(), ["add alice-0", "add bob-0"], "each change applied once, nothing else touched");
  const seen = revisions(restarted);
  assert.ok(seen.at(-1)! >= last.revision, `reached revision ${last.revision}: ${seen.join(",")}`);
  assert.ok(seen.every((r, i) => i === 0 || r > seen[i - 1]!), `deliveries strictly increase: ${seen.join(",")}`);

  // And it keeps following: a change after the restart arrives through the resumed long-poll.
  await ok(lab.admin("DELETE", "/v1/ports/eve-0"));
  assert.ok(await until(() => !has(restarted, "eve-0")), "follows after the restart");
  const status = await ok(lab.admin("GET", "/v1/ports/bob-0/status"));
  assert.equal(status.reports.length, 1, "reports reach the restarted controller");
  await kill9(controller);
});

/** The agent of `host` again, on the same state directory and driver (the controller is down: no new token). */
async function restartAgent(t: TestContext, lab: Lab, driver: HostDriver, host: string): Promise<HostAgent> {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  const config = validateAgentConfig({
    source: { controller: { url: lab.url(), tokenFile: join(lab.dir, `${host}.token`), host, pollTimeoutMs: 5_000, retryMs: 200, heartbeatMs: 200 } },
    stateDir: join(lab.dir, host, "state"),
    controlSocket: join(lab.dir, host, "agent2.sock"),
    listen: false,
    reconcile: { intervalMs: 60_000, debounceMs: 10 },
  }, "test");
  const agent = await startAgent(config, { driver, logger: pino({ level: "debug" }, sink) });
  t.after(() => agent.stop());
  return { agent, driver, logs, host };
}

test("agent with a controller: reports a port awaiting its device as such (not applied), then enforced once the device is there, and the drift it repairs", async (t) => {
  const lab = await controllerLab(t);
  const driver = new HostDriver("h1", lab.history);
  driver.needsDevices = true;
  driver.devices = [{ name: ALICE.device, mac: ALICE.mac }];
  const h1 = await hostAgent(t, lab, "h1", { driver });
  await ok(lab.admin("POST", "/v1/ports", portBody(ALICE, "h1")));
  await ok(lab.admin("POST", "/v1/ports", portBody(EVE, "h1")));
  const report = async (port: string): Promise<Json> => (await ok(lab.admin("GET", `/v1/ports/${port}/status`))).reports[0];
  assert.ok(await until(async () => (await report("eve-0"))?.state === "awaiting-device"), "eve-0 reported awaiting its device");
  const waiting = await ok(lab.admin("GET", "/v1/ports/eve-0/status"));
  assert.deepEqual([waiting.reports[0].guardsEnforced, waiting.reports[0].driftRepairs, waiting.reports[0].lastDriftAt], [[], 0, null], "nothing installed, no drift");
  assert.equal(waiting.migration.state, "pending", "a port awaiting its device is not applied");
  assert.equal((await report("alice-0")).state, "enforced");
  assert.equal((await ok(lab.admin("GET", "/v1/ports/alice-0"))).migration.state, "ready");

  driver.devices.push({ name: EVE.device, mac: EVE.mac });
  await h1.agent.reconciler.sync("test");
  assert.ok(await until(async () => (await report("eve-0"))?.state === "enforced"), "enforced once its device appeared");
  assert.equal((await ok(lab.admin("GET", "/v1/ports/eve-0"))).migration.state, "ready");
  assert.equal((await report("eve-0")).driftRepairs, 0, "its first install was no drift");

  const before = Date.now();
  driver.tamper((units) => units.delete("eve-0"));
  await h1.agent.reconciler.sync("test");
  assert.ok(await until(async () => (await report("eve-0")).driftRepairs === 1), "the repair is reported");
  const repaired = await report("eve-0");
  assert.ok(Date.parse(repaired.lastDriftAt) >= before - 1_000, `lastDriftAt ${repaired.lastDriftAt}`);
  assert.equal((await report("alice-0")).driftRepairs, 0, "only the port that drifted");
});
