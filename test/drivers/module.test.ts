// The driver contract as one module: a fourth (stub) dataplane registered through DriverModule is
// configured, run by the agent and listed by `vifguard status` with no edit outside its folder and
// the registry; driver settings out of range are clear errors. Needs neither root nor daemons.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test } from "node:test";
import { Command } from "commander";
import { pino } from "pino";
import { startAgent } from "../../src/agent/agent.ts";
import { AgentConfigError, validateAgentConfig } from "../../src/agent/config.ts";
import { requestLifecycle } from "../../src/agent/lifecycle.ts";
import { driverSettings } from "../../src/cli/driver-options.ts";
import { registerStatus } from "../../src/cli/status.ts";
import { driverNames, registerDriverModule } from "../../src/drivers/registry.ts";
import { UsageError } from "../../src/errors.ts";
import { ALICE, EVE, portFile, tempDir, until } from "../agent/fixture.ts";
import { plugDevice, stubDataplane, stubModule } from "../support/stub-driver/index.ts";

registerDriverModule(stubModule);

async function status(args: readonly string[]): Promise<Array<{ port: string; state: string; limitations: string[] }>> {
  const program = new Command("vifguard").exitOverride();
  registerStatus(program.command("status").exitOverride());
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => lines.push(line);
  try {
    await program.parseAsync(["status", ...args, "--json"], { from: "user" });
  } finally {
    console.log = log;
  }
  return JSON.parse(lines.join("\n")) as Array<{ port: string; state: string; limitations: string[] }>;
}

test("a stub fourth driver, registered as a module, is run by the agent and listed by vifguard status", async (t) => {
  assert.ok(driverNames().includes("stub"));
  const dir = await tempDir(t, "stub");
  const prefix = `vgstub${randomBytes(3).toString("hex")}`;
  const file = join(dir, "ports.yaml");
  await writeFile(file, portFile([ALICE, EVE]));
  plugDevice(prefix, { name: ALICE.device, mac: "fe:54:00:00:00:01", ifindex: 7 });
  const config = validateAgentConfig(
    { driver: { name: "stub", prefix, flavour: "salted" }, source: { file }, stateDir: join(dir, "state"), controlSocket: join(dir, "agent.sock"), listen: false, failClosed: { enabled: false }, reconcile: { intervalMs: 60_000, debounceMs: 10 } },
    "test",
  );
  assert.deepEqual(config.driver, { name: "stub", settings: { flavour: "salted", prefix } });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  const agent = await startAgent(config, { logger: pino({ level: "debug" }, sink) });
  t.after(() => agent.stop());

  const plane = stubDataplane(prefix);
  assert.deepEqual([...plane.units.keys()], ["alice-0"], "the agent installed the port whose device is there");
  assert.match(plane.units.get("alice-0")!.text, /^salt/, "with the settings agent.yaml gave the module");
  const before = await status(["--driver", "stub", "--prefix", prefix, "--stub-flavour", "salted", "-f", file]);
  assert.deepEqual(before.map((r) => [r.port, r.state]), [["alice-0", "in-sync"], ["eve-0", "awaiting-device"]]);
  assert.ok(before[0]!.limitations.includes("stub-nd"), "status lists the module's declared limitations");

  plugDevice(prefix, { name: EVE.device, mac: "fe:54:00:00:00:02", ifindex: 8 });
  assert.ok(await until(() => plane.units.has("eve-0"), 5_000), "the module's change feed brought a sync that installed Eve");
  assert.ok(logs.some((l) => l.reason === "change"));
  const after = await status(["--driver", "stub", "--prefix", prefix, "--stub-flavour", "salted", "-f", file]);
  assert.deepEqual(after.map((r) => [r.port, r.state]), [["alice-0", "in-sync"], ["eve-0", "in-sync"]]);
  const answer = await requestLifecycle(config.controlSocket, { op: "status" }, 5_000);
  assert.deepEqual(answer.ok && (answer.data as { states: unknown }).states, { "alice-0": "enforced", "eve-0": "enforced" });
});

test("a driver setting out of its module's range is a clear error, on the command line and in agent.yaml", () => {
  assert.throws(() => driverSettings({ driver: "ovs", bridge: "br0", tableBase: "250", stateDir: "/tmp" }), (e: unknown) => e instanceof UsageError && /^--table-base: got "250", expected an integer from 0 to 249/.test(e.message));
  assert.throws(() => driverSettings({ driver: "ovs", stateDir: "/tmp" }), (e: unknown) => e instanceof UsageError && /^--bridge: got nothing, expected .*the Open vSwitch bridge/.test(e.message));
  assert.throws(() => driverSettings({ driver: "nope", stateDir: "/tmp" }), (e: unknown) => e instanceof UsageError && /--driver: got "nope", expected one of nftables, libvirt, ovs/.test(e.message));
  assert.deepEqual(driverSettings({ driver: "ovs", bridge: "br0", tableBase: "249", stateDir: "/tmp" }), { bridge: "br0", tableBase: 249 });
  const base = { source: { file: "ports.yaml" } };
  assert.throws(() => validateAgentConfig({ ...base, driver: { name: "ovs", bridge: "br0", tableBase: 250 } }, "agent.yaml"), (e: unknown) => e instanceof AgentConfigError && e.issues.some((i) => i.path === "driver.tableBase" && /0 to 249/.test(i.expected)));
  assert.throws(() => validateAgentConfig({ ...base, driver: { name: "nftables", bridge: "br0" } }, "agent.yaml"), (e: unknown) => e instanceof AgentConfigError && e.issues.some((i) => i.path === "driver.bridge"));
  assert.throws(() => validateAgentConfig({ ...base, driver: { name: "xen" } }, "agent.yaml"), (e: unknown) => e instanceof AgentConfigError && e.issues.some((i) => i.path === "driver.name"));
});
