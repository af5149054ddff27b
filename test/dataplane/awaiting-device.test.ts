// Issue 11's false-drift acceptance test on real daemons: an agent's reconciler over the OVS driver
// (a private ovsdb-server/ovs-vswitchd, datapath netdev) and over the libvirt driver (the host's
// libvirtd, nwfilter bindings) whose ports' devices do not exist yet. Over 20 syncs it must count
// no drift (the agent's vifguard_drift_repairs_total stays 0), apply nothing and log no repair, and
// report every port awaiting its device; once the devices appear (guests plugged by the one lab),
// one sync installs every port and the next finds nothing to do. Before the fix (compile against
// driver-held ofports, "absent"/"not-instantiated" digests) drift went 0, 4, 4, … with a re-apply
// every period. Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { AgentMetrics } from "../../src/agent/metrics.ts";
import { Reconciler, type SyncReport } from "../../src/agent/reconciler.ts";
import { Lab } from "../../src/conformance/lab/lab.ts";
import type { Driver } from "../../src/drivers/contract.ts";
import { createLibvirtDriver, ensureLibvirtd } from "../../src/drivers/libvirt/index.ts";
import { createOvsDriver } from "../../src/drivers/ovs/index.ts";
import { sandboxPrefix, startOvsSandbox } from "../../src/drivers/ovs/sandbox.ts";
import type { PlacedPolicy } from "../../src/policy/port-policy.ts";
import { ACME_MAC, ALICE_MAC, BOB_MAC, EVE_MAC, cloud } from "../drivers/ovs/fixture.ts";
import { requireRoot } from "../support/needs-root.ts";
import { until } from "../agent/fixture.ts";

const SYNCS = 20;
const MACS: Record<string, string> = { "alice-0": ALICE_MAC, "eve-0": EVE_MAC, "bob-0": BOB_MAC, "acme-db-0": ACME_MAC };

type Agent = Readonly<{ reconciler: Reconciler; metrics: AgentMetrics; logs: string[] }>;

/** The agent's reconciler with its metrics wired as startAgent() wires them, and its log kept. */
function agentOver(driver: Driver, policies: readonly PlacedPolicy[]): Agent {
  const metrics = new AgentMetrics(() => driver.counters());
  const logs: string[] = [];
  const keep = (_fields: Record<string, unknown>, message: string): void => void logs.push(message);
  const reconciler = new Reconciler({
    driver,
    log: { info: keep, warn: keep, error: keep },
    hooks: { synced: (r, at) => metrics.synced(r.durationMs, at, countsOf(r), r.drift) },
  });
  reconciler.setDesired(policies, "r1");
  return { reconciler, metrics, logs };
}

function countsOf(r: SyncReport): Parameters<AgentMetrics["synced"]>[2] {
  const counts = { enforced: 0, pending: 0, "awaiting-device": 0, "ambiguous-device": 0, unplugged: 0 };
  for (const state of r.states.values()) counts[state]++;
  return counts;
}

/** One sample of the agent's metrics text, as a scrape of /metrics gives it. */
async function metric(agent: Agent, line: RegExp): Promise<number> {
  const text = await agent.metrics.registry.metrics();
  const m = line.exec(text);
  assert.ok(m, `${line} in the agent's metrics:\n${text}`);
  return Number(m[1]);
}

const DRIFT = /^vifguard_drift_repairs_total (\d+)$/m;
const AWAITING = /^vifguard_ports\{state="awaiting-device"\} (\d+)$/m;
const ENFORCED = /^vifguard_ports\{state="enforced"\} (\d+)$/m;

/** 20 syncs with every device absent, then `plug` the devices and one sync, checked against the agent's metrics and logs. */
async function absentThenPlugged(t: TestContext, driver: Driver, policies: readonly PlacedPolicy[], plug: () => Promise<void>): Promise<void> {
  const agent = agentOver(driver, policies);
  const drifts: number[] = [];
  let applied = 0;
  for (let i = 0; i < SYNCS; i++) {
    const r = await agent.reconciler.sync("periodic");
    drifts.push(r.drift);
    applied += r.added + r.removed;
    assert.deepEqual([...r.states.values()], policies.map(() => "awaiting-device"), `sync ${i + 1}: every port awaits its device`);
  }
  t.diagnostic(`drift over ${SYNCS} syncs with the devices absent: ${drifts.join(", ")}; units applied or removed: ${applied}`);
  assert.deepEqual(drifts, Array(SYNCS).fill(0), "no sync counts drift while the devices are absent");
  assert.equal(applied, 0, "nothing is re-applied while the devices are absent");
  assert.equal(await metric(agent, DRIFT), 0, "the agent's drift metric stays 0");
  assert.equal(await metric(agent, AWAITING), policies.length, "the agent's metrics count every port awaiting its device");
  assert.deepEqual(agent.logs.filter((l) => l.startsWith("repaired drift")), [], "no repair is logged");

  await plug();
  const installed = await agent.reconciler.sync("change");
  assert.equal(installed.added, policies.length, "one sync installs every port once its device is there");
  assert.equal(installed.drift, 0, "a device appearing is not drift");
  assert.deepEqual([...installed.states.values()], policies.map(() => "enforced"));
  assert.equal(await metric(agent, ENFORCED), policies.length);
  const next = await agent.reconciler.sync("periodic");
  assert.deepEqual([next.added, next.removed, next.drift], [0, 0, 0], "and the next sync finds nothing to do");
  assert.equal(await metric(agent, DRIFT), 0);
}

test("awaiting device, OVS: absent ports count no drift over 20 syncs and install within one sync once their interfaces appear", async (t) => {
  if (!requireRoot(t, "runs ovsdb-server and ovs-vswitchd in a private run directory and network namespace")) return;
  const prefix = sandboxPrefix("vgrd");
  const ovs = await startOvsSandbox({ prefix });
  const lab = new Lab("vgrd");
  t.after(async () => {
    await lab.cleanup();
    await ovs.stop();
  });
  const bridge = `${prefix}-br`;
  await ovs.addBridge(bridge);
  const policies = cloud(prefix);
  const driver = createOvsDriver({ bridge, runDir: ovs.runDir });
  await absentThenPlugged(t, driver, policies, async () => {
    for (const p of policies) {
      // A guest behind a veth whose host end is in vswitchd's namespace, then on the bridge: a VIF.
      await lab.guest({ netns: lab.ns(p.port.replace(/-0$/, "")), device: p.device, hostNetns: ovs.netns, mac: MACS[p.port]!, noIpv6: true, noTxOffload: true });
      await ovs.vsctl("add-port", bridge, p.device);
    }
    // vswitchd gives each interface its OpenFlow port number a moment after the row is written.
    const numbered = async (): Promise<boolean> => (await driver.observe()).devices.filter((d) => (d.ofport ?? 0) > 0).length === policies.length;
    assert.ok(await until(numbered, 10_000), "vswitchd numbered every interface");
  });
});

test("awaiting device, libvirt: absent ports count no drift over 20 syncs and install within one sync once their devices appear", async (t) => {
  if (!requireRoot(t, "starts libvirtd, creates veth pairs and network namespaces")) return;
  await ensureLibvirtd();
  const lab = new Lab("vgrl");
  const prefix = lab.id.slice(0, 10);
  const driver = createLibvirtDriver({ prefix });
  t.after(async () => {
    await driver.removeAll().catch((error: unknown) => t.diagnostic(`removeAll failed: ${String(error)}`));
    await lab.cleanup();
  });
  await driver.probe();
  const policies = cloud(prefix);
  await absentThenPlugged(t, driver, policies, async () => {
    // libvirt binds root-namespace devices only: the host ends stay here.
    for (const p of policies) await lab.guest({ netns: lab.ns(p.port.replace(/-0$/, "")), device: p.device, mac: MACS[p.port]!, noIpv6: true });
  });
});
