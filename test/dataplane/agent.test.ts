// The agent as a real process (bin/vifguard agent) over real nftables in a fresh network namespace,
// with real packets: drift repair, unplug leaves nothing, fail-closed devices, live port file changes,
// a bad port file, and /metrics. Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import * as f from "../../src/policy/frame-builder.ts";
import { run } from "../../src/host/run.ts";
import { follow } from "../../src/host/follow.ts";
import { requestLifecycle } from "../../src/agent/lifecycle.ts";
import type { SpoofEvent } from "../../src/agent/events.ts";
import { AgentLab, hex, marker, needsNftables, needsRoot, settle, waitFor } from "../agent/dataplane-lab.ts";
import { ALICE, BOB, EVE, portFile, type PortSpec } from "../agent/fixture.ts";
import { vifguard } from "../support/cli.ts";

const CAROL: PortSpec = { id: "carol-0", tenant: "carol", device: "vnet3", mac: "52:54:00:00:00:04", ips: ["10.0.0.4"] };
const BASE = [ALICE, EVE, BOB];

async function lab3(t: TestContext, name: string, extra: PortSpec[] = []): Promise<AgentLab> {
  const lab = await AgentLab.start(t, name);
  for (const spec of [...BASE, ...extra]) await lab.addGuest(spec);
  await lab.writePorts(BASE);
  await lab.startAgent();
  await waitFor(() => lab.converged(BASE), 20_000, "first sync");
  return lab;
}

/** Eve's frame from Alice's IP to Bob (must drop), tagged with a marker. */
const eveSpoof = (m: Uint8Array): Uint8Array => f.withTrailer(f.ether(BOB.mac, EVE.mac, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), m);
/** Eve's gratuitous ARP claiming Alice's IP (must drop). */
const eveArp = (m: Uint8Array): Uint8Array => f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE.mac, 0x0806, f.arp({ op: 2, sha: EVE.mac, spa: "10.0.0.1", tpa: "10.0.0.1" })), m);
/** Alice's legitimate frame to Bob (must arrive). */
const aliceLegit = (m: Uint8Array): Uint8Array => f.withTrailer(f.ether(BOB.mac, ALICE.mac, 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3")), m);

/** Words that name a port anywhere in a ruleset: its id, device, MAC and addresses. */
function traces(spec: PortSpec): RegExp {
  const words = [spec.id, spec.device, spec.mac, ...spec.ips].map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`(^|[^\\w.:-])(${words.join("|")})(?![\\w.:-]*\\w)`, "m");
}

test("agent dataplane: `nft delete table` and `nft flush table` by hand are repaired within 2 s", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lab = await lab3(t, "vgdr");
  const figures: string[] = [];
  for (const how of ["delete", "flush"] as const) {
    for (const table of await lab.tables()) await run("nft", [how, "table", ...table.split(" ")], { netns: lab.hostNetns });
    const started = performance.now();
    assert.equal(await lab.converged(BASE), false, `${how}: the ruleset changed`);
    const ms = await waitFor(() => lab.converged(BASE), 10_000, `repair after ${how}`, 10);
    const total = performance.now() - started;
    figures.push(`${how} table: repaired in ${total.toFixed(0)} ms`);
    // A figure, not a bound: the check above is that it was repaired at all, well inside the 10 s wait.
    figures.push(`${how}: converged ${ms.toFixed(0)} ms after the first check`);
    await settle(300);
  }
  t.diagnostic(figures.join("; "));
  assert.ok(lab.agent!.logs.some((l) => String(l.msg).startsWith("repaired drift")), "the repair was logged as drift");
  const metrics = await (await fetch(`http://127.0.0.1:${lab.metricsPort}/metrics`)).text();
  assert.match(metrics, /^vifguard_drift_repairs_total [1-9]\d*$/m);
});

test("agent dataplane: unplug and destroy leave no rule, set element, counter or chain of the port", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lab = await lab3(t, "vgun");
  assert.match(await lab.ruleset(), traces(EVE), "Eve's port is in the ruleset before");
  const unplug = await lab.cli(["port", "unplug", "eve-0", "--socket", lab.socket]);
  assert.equal(unplug.code, 0, unplug.stderr);
  const after = await lab.ruleset();
  assert.doesNotMatch(after, traces(EVE), "nothing of eve-0 after unplug");
  assert.match(after, traces(ALICE), "Alice's port is still there");
  // Eve's device now falls under the fail-closed rule: nothing from her passes.
  const m = marker();
  const sniff = lab.sniff("bob-0", [m], 20);
  await sniff.ready;
  await lab.stream("eve-0", [f.withTrailer(f.ether(BOB.mac, EVE.mac, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3")), m)], 20, 5).done;
  sniff.stop("alice-0"); // a control frame that must arrive, after the frames counted
  assert.equal((await sniff.counts)[hex(m)], 0, "an unplugged device that matches vnet* is dark");
  // plug brings it back; destroy (the port leaves the port file) removes everything again
  assert.equal((await lab.cli(["port", "plug", "vnet1", "--socket", lab.socket])).code, 0);
  assert.match(await lab.ruleset(), traces(EVE));
  await lab.writePorts([ALICE, BOB]);
  await waitFor(() => lab.converged([ALICE, BOB]), 10_000, "destroy");
  assert.doesNotMatch(await lab.ruleset(), traces(EVE), "nothing of eve-0 after it left the port file");
});

test("agent dataplane: a vnet* device without a policy passes nothing until its policy arrives", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lab = await lab3(t, "vgfc", [CAROL]);
  assert.equal(await lab.ping("carol-0", "10.0.0.3"), 0, "Carol's ping to Bob fails before her policy");
  assert.equal(await lab.ping("bob-0", "10.0.0.4"), 0, "Bob's ping to Carol fails before her policy");
  const started = performance.now();
  await lab.writePorts([...BASE, CAROL]);
  await waitFor(() => lab.converged([...BASE, CAROL]), 10_000, "Carol's policy installed");
  t.diagnostic(`Carol's policy installed ${(performance.now() - started).toFixed(0)} ms after the port file changed`);
  await lab.ping("carol-0", "10.0.0.3", 1); // resolves neighbours that failed while she was dark
  assert.equal(await lab.ping("carol-0", "10.0.0.3"), 3, "Carol's ping to Bob works once her policy is in");
  assert.equal(await lab.ping("alice-0", "10.0.0.4"), 3, "Alice's ping to Carol too");
});

test("agent dataplane: port file changes apply without a restart and touch only the changed port", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lab = await lab3(t, "vgch");
  const carol: PortSpec = { ...CAROL, device: "vnet9" };
  const steps: { name: string; ports: PortSpec[]; changed: PortSpec }[] = [
    { name: "add a port", ports: [...BASE, carol], changed: carol },
    { name: "add an address pair", ports: [{ ...ALICE, allowed: ["10.0.0.100/32"] }, EVE, BOB, carol], changed: ALICE },
    { name: "change a level", ports: [{ ...ALICE, allowed: ["10.0.0.100/32"] }, EVE, BOB, { ...carol, network: "lab", protection: "off" }], changed: carol },
    { name: "delete a port", ports: [{ ...ALICE, allowed: ["10.0.0.100/32"] }, EVE, BOB], changed: carol },
  ];
  for (const step of steps) {
    await t.test(step.name, async () => {
      const events: string[] = [];
      const monitor = follow("nft", ["monitor"], { netns: lab.hostNetns }, (line) => events.push(line));
      await settle(300);
      const started = performance.now();
      await lab.writePorts(step.ports);
      // A liveness bound, not a timing target (the figure is the diagnostic): generous for a loaded CI host.
      const ms = await waitFor(() => lab.converged(step.ports), 30_000, step.name);
      await settle(300);
      monitor.close();
      const changes = events.filter((l) => l.trim() !== "" && !l.startsWith("#"));
      t.diagnostic(`${step.name}: converged ${ms.toFixed(0)} ms after the write (${(performance.now() - started).toFixed(0)} ms incl. checks), ${changes.length} nft events`);
      assert.ok(changes.length > 0, "something changed");
      assert.ok(changes.some((l) => traces(step.changed).test(l) || l.includes(step.changed.id)), `an event names ${step.changed.id}:\n${changes.join("\n")}`);
      for (const other of [ALICE, EVE, BOB, carol].filter((p) => p.id !== step.changed.id)) {
        const touching = changes.filter((l) => traces(other).test(l));
        assert.deepEqual(touching, [], `no event touches ${other.id}`);
      }
    });
  }
  assert.equal(lab.agent!.child.exitCode, null, "the same agent process throughout");
});

test("agent dataplane: a bad port file while running keeps enforcing and names the field", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lab = await lab3(t, "vgbad");
  await lab.writePorts(portFile(BASE).replace('ips: ["10.0.0.2"]', 'ips: ["10.0.0.300"]'));
  await waitFor(() => lab.agent!.logs.some((l) => String(l.msg).includes("ports[1].ips[0]")), 10_000, "error naming ports[1].ips[0]");
  const line = lab.agent!.logs.find((l) => String(l.msg).includes("ports[1].ips[0]"))!;
  t.diagnostic(`logged: ${String(line.msg).split("\n").join(" | ")}`);
  assert.equal(line.level, "error");
  assert.match(String(line.msg), /10\.0\.0\.300/);
  assert.match(String(line.msg), /still enforcing revision/);
  assert.ok(await lab.converged(BASE), "the ruleset is what it was");
  const m = marker();
  const legit = marker();
  const sniff = lab.sniff("bob-0", [m, legit], 20);
  await sniff.ready;
  await lab.stream("eve-0", [eveSpoof(m)], 20, 5).done;
  await lab.stream("alice-0", [aliceLegit(legit)], 20, 5).done;
  sniff.stop("alice-0"); // a control frame that must arrive, after the frames counted
  const counts = await sniff.counts;
  assert.equal(counts[hex(m)], 0, "Eve's spoofed frames still drop");
  assert.equal(counts[hex(legit)], 20, "Alice's frames still pass");
  assert.equal(lab.agent!.child.exitCode, null, "the agent kept running");
});

test("agent dataplane: /metrics shows Eve's drop counters rising after an attack, and a drop log event", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const lab = await lab3(t, "vgmx");
  const scrape = async (): Promise<number> => {
    const text = await (await fetch(`http://127.0.0.1:${lab.metricsPort}/metrics`)).text();
    return Number(/^vifguard_dropped_frames_total\{port="eve-0",reason="arp-spoof"\} (\d+)/m.exec(text)?.[1] ?? 0);
  };
  const before = await scrape();
  await lab.stream("eve-0", [eveArp(marker())], 50, 2).done;
  await settle(200);
  const after = await scrape();
  t.diagnostic(`vifguard_dropped_frames_total{port="eve-0",reason="arp-spoof"}: ${before} → ${after}`);
  assert.ok(after - before >= 50, `${before} → ${after}`);
  await waitFor(() => lab.agent!.logs.some((l) => l.event === "drops" && l.port === "eve-0" && /^port eve-0 dropped \d+ frames?: .*arp-spoof/.test(String(l.msg))), 5_000, "drop log event");
  // The nftables driver samples dropped frames to NFLOG (sampleDrops): Eve's spoof event carries decoded ARP frames.
  await waitFor(async () => {
    const answer = await requestLifecycle(lab.socket, { op: "events" }, 5_000);
    const events = answer.ok ? (answer.data as { events: SpoofEvent[] }).events : [];
    return events.some((e) => e.port === "eve-0" && e.reason === "arp-spoof" && e.samples.some((s) => s.protocol === "ARP"));
  }, 5_000, "a sampled ARP frame in Eve's arp-spoof event");
  // `vifguard events` on this host asks the same agent and reads the event in one line.
  const cli = await vifguard("events", "--socket", lab.socket, "--port", "eve-0", "--reason", "arp-spoof");
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^eve-0 claimed 10\.0\.0\.1 [\d,]+ times, [\d:–]+, ARP \(arp-spoof\)$/m, cli.stdout);
  const health = await fetch(`http://127.0.0.1:${lab.metricsPort}/healthz`);
  assert.equal(health.status, 200);
});
