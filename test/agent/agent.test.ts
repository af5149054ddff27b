// The agent with an in-memory driver and a real port file, control socket and /metrics.
import assert from "node:assert/strict";
import { readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test, type TestContext } from "node:test";
import { pino } from "pino";
import { startAgent, type RunningAgent } from "../../src/agent/agent.ts";
import { validateAgentConfig } from "../../src/agent/config.ts";
import { requestLifecycle } from "../../src/agent/lifecycle.ts";
import { FAIL_CLOSED_KEY } from "../../src/drivers/contract.ts";
import { FakeDriver } from "./fake-driver.ts";
import { ALICE, BOB, EVE, portFile, tempDir, until, type PortSpec } from "./fixture.ts";

type Lab = { agent: RunningAgent; driver: FakeDriver; dir: string; file: string; logs: Record<string, unknown>[]; socket: string };

async function writePorts(file: string, ports: readonly PortSpec[] | string): Promise<void> {
  await writeFile(`${file}.new`, typeof ports === "string" ? ports : portFile(ports));
  await rename(`${file}.new`, file); // as editors and config management do
}

async function startLab(t: TestContext, ports: readonly PortSpec[] | string | undefined, options: { driver?: FakeDriver; dir?: string; intervalMs?: number } = {}): Promise<Lab> {
  const dir = options.dir ?? (await tempDir(t, "agent"));
  const file = join(dir, "ports.yaml");
  if (ports) await writePorts(file, ports);
  const driver = options.driver ?? new FakeDriver();
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  const socket = join(dir, "agent.sock");
  const config = validateAgentConfig(
    { source: { file }, stateDir: join(dir, "state"), controlSocket: socket, listen: "127.0.0.1:0", reconcile: { intervalMs: options.intervalMs ?? 60_000, debounceMs: 10, batchSize: 2 }, drops: { logIntervalMs: 100 } },
    "test",
  );
  const agent = await startAgent(config, { driver, logger: pino({ level: "debug" }, sink) });
  t.after(() => agent.stop());
  return { agent, driver, dir, file, logs, socket };
}

const installedKeys = (driver: FakeDriver): string[] => [...driver.installed.keys()].sort();

test("agent: installs every port of the file and the fail-closed unit at start", async (t) => {
  const lab = await startLab(t, [ALICE, EVE, BOB]);
  assert.deepEqual(installedKeys(lab.driver), [FAIL_CLOSED_KEY, "alice-0", "bob-0", "eve-0"].sort());
  assert.ok(lab.driver.applied.length >= 2, "batches of at most 2 ports");
  assert.ok(lab.driver.applied.every((c) => c.add.length + c.remove.length <= 2));
});

test("agent: a restarted agent takes over what is installed and changes only what differs", async (t) => {
  const driver = new FakeDriver();
  const first = await startLab(t, [ALICE, EVE, BOB], { driver });
  await first.agent.stop();
  await writePorts(first.file, [ALICE, EVE, { ...BOB, ips: ["10.0.0.3", "10.0.0.33"] }]);
  const before = driver.applied.length;
  await startLab(t, undefined, { driver, dir: first.dir });
  assert.deepEqual(driver.touched(before), { added: ["bob-0"], removed: [] });
});

test("agent: port file changes take effect without restart and touch only the changed port", async (t) => {
  const lab = await startLab(t, [ALICE, EVE, BOB]);
  const steps: { name: string; ports: PortSpec[]; touched: { added: string[]; removed: string[] } }[] = [
    { name: "add a port", ports: [ALICE, EVE, BOB, { id: "carol-0", tenant: "carol", device: "vnet3", mac: "52:54:00:00:00:04", ips: ["10.0.0.4"] }], touched: { added: ["carol-0"], removed: [] } },
    { name: "add an address pair", ports: [{ ...ALICE, allowed: ["10.0.0.100/32"] }, EVE, BOB, { id: "carol-0", tenant: "carol", device: "vnet3", mac: "52:54:00:00:00:04", ips: ["10.0.0.4"] }], touched: { added: ["alice-0"], removed: [] } },
    { name: "change a level", ports: [{ ...ALICE, allowed: ["10.0.0.100/32"] }, EVE, BOB, { id: "carol-0", tenant: "carol", network: "lab", device: "vnet3", mac: "52:54:00:00:00:04", ips: ["10.0.0.4"], protection: "off" }], touched: { added: ["carol-0"], removed: [] } },
    { name: "delete a port", ports: [{ ...ALICE, allowed: ["10.0.0.100/32"] }, EVE, BOB], touched: { added: [], removed: ["carol-0"] } },
  ];
  for (const step of steps) {
    await t.test(step.name, async () => {
      const before = lab.driver.applied.length;
      await writePorts(lab.file, step.ports);
      assert.ok(await until(() => lab.driver.applied.length > before), "applied without a restart");
      await lab.agent.reconciler.idle();
      assert.deepEqual(lab.driver.touched(before), step.touched);
    });
  }
});

test("agent: a bad port file while running keeps the last good state and names the field", async (t) => {
  const lab = await startLab(t, [ALICE, EVE, BOB]);
  const before = lab.driver.applied.length;
  await writePorts(lab.file, portFile([ALICE, EVE, BOB]).replace('mac: "52:54:00:00:00:02"', 'mac: "ff:ff:ff:ff:ff:ff"'));
  assert.ok(await until(() => lab.logs.some((l) => l.level === 50 && String(l.msg).includes("ports[1].mac"))), "an error naming ports[1].mac");
  const line = lab.logs.find((l) => String(l.msg).includes("ports[1].mac"))!;
  assert.match(String(line.msg), /still enforcing revision/);
  await lab.agent.reconciler.sync("test");
  assert.equal(lab.driver.applied.length, before, "nothing changed on the host");
  assert.deepEqual(installedKeys(lab.driver), [FAIL_CLOSED_KEY, "alice-0", "bob-0", "eve-0"].sort());
  // and a good file afterwards is taken again
  await writePorts(lab.file, [ALICE, BOB]);
  assert.ok(await until(() => !lab.driver.installed.has("eve-0")));
});

test("agent: without its source at start it enforces the saved state; with neither it keeps what is installed", async (t) => {
  const driver = new FakeDriver();
  const first = await startLab(t, [ALICE, EVE]);
  await first.agent.stop();
  await rename(first.file, `${first.file}.gone`);
  const second = await startLab(t, undefined, { driver, dir: first.dir });
  assert.deepEqual(installedKeys(driver), [FAIL_CLOSED_KEY, "alice-0", "eve-0"].sort());
  assert.ok(second.logs.some((l) => String(l.msg).includes("using the saved desired state")));
  await second.agent.stop();

  const lonely = new FakeDriver();
  lonely.installed.set("bob-0", { key: "bob-0", port: "bob-0", digest: "x", text: "" });
  const third = await startLab(t, undefined, { driver: lonely });
  assert.deepEqual(installedKeys(lonely), [FAIL_CLOSED_KEY, "bob-0"].sort(), "no flush, and fail closed");
  assert.ok(third.logs.some((l) => String(l.msg).includes("never flushing")));
});

test("agent: repairs drift reported by the driver's change feed and counts it", async (t) => {
  const lab = await startLab(t, [ALICE, EVE, BOB]);
  lab.driver.tamper((units) => {
    units.delete("eve-0");
    units.delete(FAIL_CLOSED_KEY);
    units.set("stray-0", { key: "stray-0", port: "stray-0", digest: "z", text: "" });
  });
  assert.ok(await until(() => lab.driver.installed.has("eve-0") && lab.driver.installed.has(FAIL_CLOSED_KEY) && !lab.driver.installed.has("stray-0"), 2_000));
  const text = await (await fetch(`http://127.0.0.1:${lab.agent.httpPort}/metrics`)).text();
  assert.match(text, /^vifguard_drift_repairs_total 3$/m);
});

test("agent: the periodic check repairs drift without a change feed", async (t) => {
  const driver = new FakeDriver();
  driver.watchChanges = () => Promise.resolve({ close: () => undefined }); // a feed that never calls
  const lab = await startLab(t, [ALICE], { driver, intervalMs: 200 });
  driver.installed.delete("alice-0");
  assert.ok(await until(() => driver.installed.has("alice-0"), 2_000));
  void lab;
});

test("agent: a port awaiting its device is no drift over 20 syncs, shows as awaiting-device, and is installed at the first sync after the device appears", async (t) => {
  const driver = new FakeDriver();
  driver.needsDevices = true;
  driver.devices = [{ name: ALICE.device, mac: "fe:54:00:00:00:01" }];
  const started = await startLab(t, [ALICE, EVE], { driver });
  const drifts: number[] = [];
  for (let i = 0; i < 20; i++) drifts.push((await started.agent.reconciler.sync("periodic")).drift);
  assert.deepEqual(drifts, Array(20).fill(0));
  assert.deepEqual(installedKeys(driver), [FAIL_CLOSED_KEY, "alice-0"].sort());
  assert.ok(!started.logs.some((l) => /repaired drift/.test(String(l.msg))), "no 'repaired drift' log");
  const status = await requestLifecycle(started.socket, { op: "status" }, 5_000);
  assert.deepEqual(status.ok && (status.data as { states: unknown }).states, { "alice-0": "enforced", "eve-0": "awaiting-device" });
  const text = await (await fetch(`http://127.0.0.1:${started.agent.httpPort}/metrics`)).text();
  assert.match(text, /^vifguard_ports\{state="awaiting-device"\} 1$/m);
  assert.match(text, /^vifguard_drift_repairs_total 0$/m);
  const plug = await requestLifecycle(started.socket, { op: "plug", port: "eve-0" }, 5_000);
  assert.equal(plug.ok, true, "a hook that plugs before the device exists is not an error");
  assert.match(plug.ok ? plug.message : "", /awaiting its device/);

  driver.devices.push({ name: EVE.device, mac: "fe:54:00:00:00:02" });
  const next = await started.agent.reconciler.sync("periodic");
  assert.deepEqual([next.added, next.drift, next.states.get("eve-0")], [1, 0, "enforced"]);
  assert.ok(driver.installed.has("eve-0"));
});

test("agent: unplug removes the port's rules, plug brings them back; the socket is 0600", async (t) => {
  const lab = await startLab(t, [ALICE, EVE, BOB]);
  const { stat } = await import("node:fs/promises");
  assert.equal((await stat(lab.socket)).mode & 0o777, 0o600);
  const unplug = await requestLifecycle(lab.socket, { op: "unplug", port: "vnet1" }, 5_000);
  assert.equal(unplug.ok, true, JSON.stringify(unplug));
  assert.ok(!lab.driver.installed.has("eve-0"));
  // a new desired state does not bring an unplugged port back
  await writePorts(lab.file, [ALICE, EVE, { ...BOB, ips: ["10.0.0.3", "10.0.0.9"] }]);
  await until(() => lab.driver.applied.some((c) => c.add.some((u) => u.key === "bob-0" && u.text.includes("10.0.0.9"))));
  assert.ok(!lab.driver.installed.has("eve-0"));
  const plug = await requestLifecycle(lab.socket, { op: "plug", port: "52:54:00:00:00:02" }, 5_000);
  assert.equal(plug.ok, true, JSON.stringify(plug));
  assert.ok(lab.driver.installed.has("eve-0"));
  const unknown = await requestLifecycle(lab.socket, { op: "plug", port: "nobody", timeoutMs: 300 }, 5_000);
  assert.deepEqual([unknown.ok, !unknown.ok && unknown.code], [false, "VG_PORT_UNKNOWN"]);
  const status = await requestLifecycle(lab.socket, { op: "status" }, 5_000);
  assert.ok(status.ok && JSON.stringify(status.data).includes('"eve-0":"enforced"'));
});

test("agent: migrate-in waits for the port to appear in the desired state, then installs it before answering", async (t) => {
  const lab = await startLab(t, [ALICE]);
  const answer = requestLifecycle(lab.socket, { op: "migrate-in", port: "eve-0", timeoutMs: 5_000 }, 10_000);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!lab.driver.installed.has("eve-0"));
  await writePorts(lab.file, [ALICE, EVE]);
  const result = await answer;
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.ok(lab.driver.installed.has("eve-0"), "installed when the hook returns");
  const out = await requestLifecycle(lab.socket, { op: "migrate-out", port: "eve-0" }, 5_000);
  assert.equal(out.ok, true);
  assert.ok(!lab.driver.installed.has("eve-0"));
});

test("agent: /metrics shows drops, port states, sync time; a drop rise logs one line per port", async (t) => {
  // A fake clock for the agent's interval timers (the drop sampler's 100 ms): the test moves time on
  // instead of sleeping past a period and hoping the sampler ran.
  t.mock.timers.enable({ apis: ["setInterval"] });
  const lab = await startLab(t, [ALICE, EVE, BOB]);
  const sampled = async (): Promise<void> => {
    t.mock.timers.tick(100);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r)); // the sampler's awaits
  };
  lab.driver.drops = [{ port: "eve-0", reason: "arp-spoof", packets: 5, bytes: 300 }];
  await sampled();
  lab.driver.drops = [{ port: "eve-0", reason: "arp-spoof", packets: 42, bytes: 2520 }];
  await sampled();
  assert.ok(await until(() => lab.logs.some((l) => l.msg === "port eve-0 dropped 37 frames: arp-spoof")), JSON.stringify(lab.logs.filter((l) => l.event === "drops")));
  const text = await (await fetch(`http://127.0.0.1:${lab.agent.httpPort}/metrics`)).text();
  assert.match(text, /^vifguard_dropped_frames_total\{port="eve-0",reason="arp-spoof"\} 42$/m);
  assert.match(text, /^vifguard_ports\{state="enforced"\} 3$/m);
  assert.match(text, /^vifguard_last_successful_sync_timestamp_seconds \d+/m);
  assert.match(text, /^vifguard_reconcile_duration_seconds_count\{result="ok"\} \d+$/m);
  const health = await fetch(`http://127.0.0.1:${lab.agent.httpPort}/healthz`);
  assert.equal(health.status, 200);
});

test("agent: a failed apply makes /healthz fail, and the next sync retries", async (t) => {
  const lab = await startLab(t, [ALICE]);
  lab.driver.failNextApply = new Error("nft: boom");
  await writePorts(lab.file, [ALICE, EVE]);
  assert.ok(await until(() => lab.logs.some((l) => String(l.msg).includes("reconcile failed"))));
  assert.equal((await fetch(`http://127.0.0.1:${lab.agent.httpPort}/healthz`)).status, 503);
  await lab.agent.reconciler.sync("retry");
  assert.ok(lab.driver.installed.has("eve-0"));
  assert.equal((await fetch(`http://127.0.0.1:${lab.agent.httpPort}/healthz`)).status, 200);
});

test("agent: a port without a device meets its tap by MAC, and again under a new name after a restart of the VM", async (t) => {
  const driver = new FakeDriver();
  driver.needsDevices = true;
  const lab = await startLab(t, portFile([ALICE, EVE]).replace("device: vnet1, ", ""), { driver });
  const deviceOf = (port: string): string | undefined => (JSON.parse(driver.installed.get(port)?.text || "{}") as { device?: string }).device;
  assert.equal(lab.agent.reconciler.states.get("eve-0"), "awaiting-device", "no tap with fe:54:00:00:00:02 yet");
  assert.equal(driver.installed.has("?eve-0"), false, "an awaiting port installs nothing");

  // libvirt starts the VM: a tap with the guest's MAC, first octet fe. The change feed starts one sync.
  driver.devices = [{ name: "vnet0", mac: "fe:54:00:00:00:01" }, { name: "vnet7", mac: "fe:54:00:00:00:02" }];
  driver.tamper(() => undefined);
  assert.ok(await until(() => lab.agent.reconciler.states.get("eve-0") === "enforced"), "enforced after the change feed's sync");
  assert.equal(deviceOf("eve-0"), "vnet7");
  const status = await requestLifecycle(lab.socket, { op: "unplug", port: "vnet7" }, 5_000);
  assert.equal(status.ok, true, "the matched device names the port in lifecycle requests");
  await requestLifecycle(lab.socket, { op: "plug", port: "eve-0" }, 5_000);

  // The VM restarts: vnet7 goes, vnet9 comes with the same MAC. No file changes.
  driver.devices = [{ name: "vnet0", mac: "fe:54:00:00:00:01" }, { name: "vnet9", mac: "fe:54:00:00:00:02" }];
  driver.tamper(() => undefined);
  assert.ok(await until(() => deviceOf("eve-0") === "vnet9"), "re-bound to the new tap within one sync");
  assert.equal(lab.agent.reconciler.states.get("eve-0"), "enforced");

  // A second tap with the same MAC: ambiguous, nothing installed for the port, and plug says so.
  driver.devices = [...driver.devices, { name: "vnet10", mac: "fe:54:00:00:00:02" }];
  const plug = await requestLifecycle(lab.socket, { op: "plug", port: "eve-0" }, 5_000);
  assert.equal(plug.ok, false);
  assert.match(plug.ok ? "" : plug.message, /no device chosen: 2 devices carry its tap MAC fe:54:00:00:00:02 \(vnet10, vnet9\)/);
  assert.equal(lab.agent.reconciler.states.get("eve-0"), "ambiguous-device");
  assert.equal(driver.installed.has("eve-0"), false, "the unit on vnet9 is gone: it could be the wrong VM's tap");
  assert.equal(driver.installed.has(FAIL_CLOSED_KEY), true, "fail-closed still covers every tap without a unit");

  // The hook's word (libvirt's <target dev>) settles it.
  const hinted = await requestLifecycle(lab.socket, { op: "plug", port: "52:54:00:00:00:02", devices: { "52:54:00:00:00:02": "vnet10" } }, 5_000);
  assert.equal(hinted.ok, true, JSON.stringify(hinted));
  assert.equal(deviceOf("eve-0"), "vnet10");
});

test("agent: concurrent plug requests (several VMs starting at once) all succeed and leave the unplugged set saved whole", async (t) => {
  const lab = await startLab(t, [ALICE, EVE, BOB]);
  const ports = ["alice-0", "eve-0", "bob-0"];
  for (const op of ["unplug", "plug", "unplug"] as const) {
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => requestLifecycle(lab.socket, { op, port: ports[i % 3]! }, 10_000)));
    assert.deepEqual(answers.filter((a) => !a.ok), [], `no ${op} failed (the state file's writes collided on one temporary name)`);
    const saved = JSON.parse(await readFile(join(lab.dir, "state", "unplugged.json"), "utf8")) as string[];
    assert.deepEqual(saved, op === "plug" ? [] : [...ports].sort(), `after concurrent ${op}s the file holds the set as of the last request`);
  }
  const leftovers = (await readdir(join(lab.dir, "state"))).filter((f) => f.includes(".tmp-"));
  assert.deepEqual(leftovers, []);
});
