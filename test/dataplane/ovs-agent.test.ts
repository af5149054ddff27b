// The agent over the OVS driver with a real ovs-vswitchd: an interface deleted and re-added gets
// another OpenFlow port number, and the driver's change feed (watchChanges: an OVSDB monitor) makes
// the agent re-install the port's flows for it long before its periodic check. Frames are judged
// with ofproto/trace. Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test, type TestContext } from "node:test";
import { pino } from "pino";
import { startAgent } from "../../src/agent/agent.ts";
import { validateAgentConfig } from "../../src/agent/config.ts";
import { planSync } from "../../src/agent/converge.ts";
import { createOvsDriver } from "../../src/drivers/ovs/index.ts";
import { sandboxPrefix, startOvsSandbox, type OvsSandbox } from "../../src/drivers/ovs/sandbox.ts";
import { parsePortFile } from "../../src/model/port-file.ts";
import * as f from "../../src/policy/frame-builder.ts";
import { portPolicies } from "../../src/policy/port-policy.ts";
import { ALICE, BOB, EVE, portFile, tempDir, until, type PortSpec } from "../agent/fixture.ts";
import { needsRoot } from "../drivers/ovs/fixture.ts";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** What ofproto/trace says of `frame` entering at `ofport`: the datapath actions and the OpenFlow outputs. */
async function trace(ovs: OvsSandbox, bridge: string, ofport: number, frame: Uint8Array): Promise<{ actions: string; outputs: number[]; text: string }> {
  const { stdout } = await ovs.appctl("ofproto/trace", bridge, `in_port=${ofport}`, hex(frame));
  const actions = /Datapath actions: (.*)/.exec(stdout)?.[1] ?? "(none)";
  return { actions, outputs: [...stdout.matchAll(/\boutput:(\d+)/g)].map((m) => Number(m[1])), text: stdout };
}

type OvsAgentLab = Readonly<{
  ovs: OvsSandbox;
  bridge: string;
  specs: readonly [PortSpec, PortSpec, PortSpec];
  addPort(spec: PortSpec, ofport: number): Promise<unknown>;
  driver: ReturnType<typeof createOvsDriver>;
  policies: ReturnType<typeof portPolicies>;
  logs: Record<string, unknown>[];
}>;

/** A private OVS with Alice, Eve and Bob on ofports 1-3, and an agent whose periodic check is a minute away. */
async function ovsAgentLab(t: TestContext, stem: string): Promise<OvsAgentLab> {
  const prefix = sandboxPrefix(stem);
  const ovs = await startOvsSandbox({ prefix });
  t.after(() => ovs.stop());
  const bridge = `${prefix}-br`;
  await ovs.addBridge(bridge);
  const on = (spec: PortSpec, letter: string): PortSpec => ({ ...spec, device: `${prefix}-${letter}` });
  const specs = [on(ALICE, "a"), on(EVE, "e"), on(BOB, "b")] as const;
  const addPort = (spec: PortSpec, ofport: number) => ovs.vsctl("add-port", bridge, spec.device, "--", "set", "interface", spec.device, "type=internal", `ofport_request=${ofport}`);
  for (const [i, spec] of specs.entries()) await addPort(spec, i + 1);
  const dir = await tempDir(t, stem);
  const file = join(dir, "ports.yaml");
  await writeFile(file, portFile(specs));
  const policies = portPolicies(parsePortFile(portFile(specs), file));
  // The periodic check is a minute away: only the change feed can repair within the test.
  const config = validateAgentConfig({ source: { file }, stateDir: join(dir, "state"), controlSocket: join(dir, "agent.sock"), listen: false, reconcile: { intervalMs: 60_000, debounceMs: 20 } }, "test");
  const driver = createOvsDriver({ bridge, runDir: ovs.runDir });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (logs.push(JSON.parse(chunk.toString()) as Record<string, unknown>), done()) });
  const agent = await startAgent(config, { driver, logger: pino({ level: "debug" }, sink) });
  t.after(() => agent.stop());
  return { ovs, bridge, specs, addPort, driver, policies, logs };
}

test("OVS agent: a port re-created with another ofport gets its flows again through watchChanges", async (t) => {
  if (!needsRoot(t)) return;
  const { ovs, bridge, specs, addPort, driver, policies, logs } = await ovsAgentLab(t, "vgoa");
  const [alice, eve, bob] = specs;
  const converged = async (): Promise<boolean> => {
    const plan = (await planSync(driver, policies)).changes;
    return plan.add.length === 0 && plan.remove.length === 0;
  };
  assert.ok(await until(converged, 10_000), "the first sync installs every port");

  const spoof = f.ether(bob.mac, eve.mac, 0x0800, f.icmp4Echo(alice.ips[0]!, bob.ips[0]!));
  const legit = f.ether(bob.mac, eve.mac, 0x0800, f.icmp4Echo(eve.ips[0]!, bob.ips[0]!));
  assert.equal((await trace(ovs, bridge, 2, spoof)).actions, "drop", "before: Eve's spoof drops");

  // Eve's VIF is re-created (a VM restart, a re-plug) and gets ofport 17 instead of 2.
  const started = performance.now();
  await ovs.vsctl("del-port", bridge, eve.device);
  await addPort(eve, 17);
  const eveFlows = async (): Promise<string> => (await ovs.ofctl("-O", "OpenFlow15", "--no-names", "dump-flows", bridge)).stdout.split("\n").filter((l) => /in_port=(2|17)\b/.test(l)).join("\n");
  assert.ok(await until(async () => /in_port=17\b/.test(await eveFlows()) && !/in_port=2\b/.test(await eveFlows()), 5_000), `Eve's flows follow her new ofport:\n${await eveFlows()}`);
  const ms = performance.now() - started;
  assert.equal((await driver.observe()).devices.find((d) => d.name === eve.device)?.ofport, 17);
  assert.ok(await converged(), "the agent's plan is empty again");
  t.diagnostic(`flows re-installed for ofport 17 ${ms.toFixed(0)} ms after the interface was deleted (periodic check: 60 s)`);
  assert.ok(logs.some((l) => l.reason === "change"), "the sync came from the change feed");

  const dropped = await trace(ovs, bridge, 17, spoof);
  assert.equal(dropped.actions, "drop", `after: Eve's spoof from her new ofport drops\n${dropped.text}`);
  const passed = await trace(ovs, bridge, 17, legit);
  assert.notEqual(passed.actions, "drop", `after: Eve's own frame passes\n${passed.text}`);
  assert.deepEqual(passed.outputs, [3], `and is output to Bob's port only\n${passed.text}`);
});

test("OVS agent: after an ovsdb-server restart the change feed reconnects and still follows a re-created port", async (t) => {
  if (!needsRoot(t)) return;
  const { ovs, bridge, specs, addPort, driver } = await ovsAgentLab(t, "vgod");
  const eve = specs[1];
  const eveFlows = async (): Promise<string> => (await ovs.ofctl("-O", "OpenFlow15", "--no-names", "dump-flows", bridge)).stdout.split("\n").filter((l) => /in_port=(2|18)\b/.test(l)).join("\n");
  assert.ok(await until(async () => /in_port=2\b/.test(await eveFlows()), 10_000), "the first sync installs Eve's port");

  await ovs.restartDatabase();
  // While the agent's monitor reconnects, Eve's VIF is re-created under another ofport.
  await ovs.vsctl("del-port", bridge, eve.device);
  await addPort(eve, 18);
  const started = performance.now();
  assert.ok(await until(async () => /in_port=18\b/.test(await eveFlows()) && !/in_port=2\b/.test(await eveFlows()), 10_000), `Eve's flows follow her new ofport after the restart:\n${await eveFlows()}`);
  t.diagnostic(`flows for ofport 18 ${(performance.now() - started).toFixed(0)} ms after the port was re-created behind a restarted ovsdb-server (periodic check: 60 s)`);
  assert.equal((await driver.observe()).devices.find((d) => d.name === eve.device)?.ofport, 18);
});
