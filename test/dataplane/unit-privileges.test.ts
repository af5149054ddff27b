// The daemons run exactly as their systemd units would run them (no systemd as PID 1 here): the
// uid, groups, capability sets, secure bits, no_new_privs and umask come from contrib/systemd/*.service,
// parsed by test/support/unit-privileges.ts into setpriv arguments. The agent applies a port file
// through real nftables and a real (userspace) Open vSwitch, repairs drift and answers its control
// socket, and samples dropped frames from NFLOG into spoof events; without CAP_NET_ADMIN it stops at start naming it; the controller runs as a dynamic uid with
// its SQLite file in its state directory. Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, chown, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { requestLifecycle } from "../../src/agent/lifecycle.ts";
import type { SpoofEvent } from "../../src/agent/events.ts";
import * as f from "../../src/policy/frame-builder.ts";
import { planSync } from "../../src/agent/converge.ts";
import { createOvsDriver } from "../../src/drivers/ovs/index.ts";
import { sandboxPrefix, startOvsSandbox } from "../../src/drivers/ovs/sandbox.ts";
import { run } from "../../src/host/run.ts";
import { parsePortFile } from "../../src/model/port-file.ts";
import { portPolicies } from "../../src/policy/port-policy.ts";
import { AgentLab, marker, needsNftables, needsRoot, waitFor } from "../agent/dataplane-lab.ts";
import { ALICE, BOB, EVE, portFile, tempDir, type PortSpec } from "../agent/fixture.ts";
import { privilegedCommand, readUnitPrivileges, withoutCapability, type UnitPrivileges } from "../support/unit-privileges.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const VIFGUARD = join(ROOT, "bin/vifguard");
const AGENT_UNIT = join(ROOT, "contrib/systemd/vifguard-agent.service");
const CONTROLLER_UNIT = join(ROOT, "contrib/systemd/vifguard-controller.service");
const BASE = [ALICE, EVE, BOB];

type Daemon = Readonly<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }>;

/** Starts argv as `unit` would (inside `netns` when given); killed in t.after(). */
function startAsUnit(t: TestContext, unit: UnitPrivileges, argv: readonly string[], options: { netns?: string; dynamicId?: number } = {}): Daemon {
  const { command, args } = privilegedCommand(unit, argv, options.dynamicId === undefined ? {} : { dynamicId: options.dynamicId });
  const full = options.netns ? ["ip", "netns", "exec", options.netns, command, ...args] : [command, ...args];
  const child = spawn(full[0]!, full.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (text += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (text += c));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
  });
  return { child, output: () => text, exited };
}

/** Resolves once the agent's control socket answers `status`; rejects if it exits first. */
async function agentReady(daemon: Daemon, socket: string): Promise<void> {
  await waitFor(async () => {
    if (daemon.child.exitCode !== null) throw new Error(`agent exited ${daemon.child.exitCode}:\n${daemon.output()}`);
    return requestLifecycle(socket, { op: "status" }, 2_000).then((a) => a.ok, () => false);
  }, 60_000, `the agent's control socket\n${daemon.output()}`, 100);
}

/** Uid, effective and bounding capabilities and no_new_privs of a running process. */
async function processPrivileges(pid: number): Promise<{ uid: string; capEff: string; capBnd: string; capAmb: string; noNewPrivs: string }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, "m").exec(status)?.[1]?.trim() ?? "";
  return { uid: field("Uid").split(/\s+/)[1]!, capEff: field("CapEff"), capBnd: field("CapBnd"), capAmb: field("CapAmb"), noNewPrivs: field("NoNewPrivs") };
}

const NET_ADMIN_ONLY = "0000000000001000";

test("unit privileges: the agent as vifguard-agent.service runs it applies a port file through nftables, repairs drift and answers its socket", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const unit = await readUnitPrivileges(AGENT_UNIT);
  const lab = await AgentLab.start(t, "vgup");
  for (const spec of BASE) await lab.addGuest(spec);
  await lab.writePorts(BASE);
  // The agent runs inside the hypervisor namespace (no driver.netns, which would need CAP_SYS_ADMIN).
  const config = join(lab.dir, "agent.yaml");
  await writeFile(config, lab.configYaml({ driver: { name: "nftables", prefix: lab.prefix }, reconcile: { intervalMs: 1000, debounceMs: 50, batchSize: 100 } }));
  const agent = startAsUnit(t, unit, [VIFGUARD, "agent", "--config", config], { netns: lab.hostNetns });
  await agentReady(agent, lab.socket);
  await waitFor(() => lab.converged(BASE), 20_000, "the port file applied");

  const held = await processPrivileges(agent.child.pid!);
  assert.deepEqual(held, { uid: "0", capEff: NET_ADMIN_ONLY, capBnd: NET_ADMIN_ONLY, capAmb: NET_ADMIN_ONLY, noNewPrivs: "1" }, "root's uid with CAP_NET_ADMIN alone");
  assert.equal((await stat(lab.socket)).mode & 0o777, 0o600, "the control socket is 0600");
  assert.equal(await lab.ping("alice-0", "10.0.0.3"), 3, "Alice reaches Bob through the installed rules");

  // Eve's gratuitous ARP claiming Alice's address drops and is logged to NFLOG; the agent's reader
  // (nflog-read.py, CAP_NET_ADMIN alone; tcpdump died here dropping to its user) puts the decoded frame
  // into Eve's arp-spoof event.
  const eveArp = f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE.mac, 0x0806, f.arp({ op: 2, sha: EVE.mac, spa: "10.0.0.1", tpa: "10.0.0.1" })), marker());
  await lab.stream("eve-0", [eveArp], 20, 5).done;
  await waitFor(async () => {
    const answer = await requestLifecycle(lab.socket, { op: "events" }, 5_000);
    const events = answer.ok ? (answer.data as { events: SpoofEvent[] }).events : [];
    return events.some((e) => e.port === "eve-0" && e.reason === "arp-spoof" && e.samples.some((s) => s.protocol === "ARP"));
  }, 10_000, `a sampled ARP frame in Eve's arp-spoof event\n${agent.output()}`);

  for (const table of await lab.tables()) await run("nft", ["delete", "table", ...table.split(" ")], { netns: lab.hostNetns });
  assert.equal(await lab.converged(BASE), false, "the table is gone");
  const repairMs = await waitFor(() => lab.converged(BASE), 15_000, "drift repaired");
  t.diagnostic(`nftables: deleted table repaired in ${repairMs.toFixed(0)} ms`);

  const unplug = await requestLifecycle(lab.socket, { op: "unplug", port: "eve-0" }, 30_000);
  assert.ok(unplug.ok, unplug.message);
  await waitFor(() => lab.converged([ALICE, BOB]), 10_000, "eve-0 removed");
  const plug = await requestLifecycle(lab.socket, { op: "plug", port: "eve-0" }, 30_000);
  assert.ok(plug.ok, plug.message);
  assert.ok(await lab.converged(BASE), "eve-0 back");
  assert.equal(agent.child.exitCode, null, "the same agent process throughout");
});

test("unit privileges: without CAP_NET_ADMIN the nftables agent stops at start naming it, and changes nothing", async (t) => {
  if (!needsRoot(t) || !(await needsNftables(t))) return;
  const unit = withoutCapability(await readUnitPrivileges(AGENT_UNIT), "CAP_NET_ADMIN");
  const lab = await AgentLab.start(t, "vgnc");
  await lab.writePorts(BASE);
  const config = join(lab.dir, "agent.yaml");
  await writeFile(config, lab.configYaml({ driver: { name: "nftables", prefix: lab.prefix } }));
  const agent = startAsUnit(t, unit, [VIFGUARD, "agent", "--config", config], { netns: lab.hostNetns });
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([agent.exited, new Promise<string>((r) => (timer = setTimeout(() => r("still running after 60 s"), 60_000)))]);
  clearTimeout(timer);
  const output = agent.output();
  t.diagnostic(`exit ${code}: ${output.trim()}`);
  assert.equal(code, 1, output);
  assert.match(output, /^vifguard: the nftables driver needs CAP_NET_ADMIN, which this process does not have \(uid 0, effective capabilities: none\)/m);
  assert.doesNotMatch(output, /^\s+at /m, "no stack trace");
  assert.equal(output.trim().split("\n").length, 1, "one line");
  assert.deepEqual(await lab.tables(), [], "no table was created");
});

test("unit privileges: the agent as vifguard-agent.service runs it applies a port file through Open vSwitch and repairs drift", async (t) => {
  if (!needsRoot(t)) return;
  const unit = await readUnitPrivileges(AGENT_UNIT);
  const prefix = sandboxPrefix("vgup");
  const ovs = await startOvsSandbox({ prefix });
  t.after(() => ovs.stop());
  const bridge = `${prefix}-br`;
  await ovs.addBridge(bridge);
  const specs: PortSpec[] = BASE.map((spec, i) => ({ ...spec, device: `${prefix}-${"aeb"[i]}` }));
  for (const [i, spec] of specs.entries()) await ovs.vsctl("add-port", bridge, spec.device, "--", "set", "interface", spec.device, "type=internal", `ofport_request=${i + 1}`);
  const dir = await tempDir(t, "vgup-ovs");
  const file = join(dir, "ports.yaml");
  await writeFile(file, portFile(specs));
  const socket = join(dir, "agent.sock");
  const config = join(dir, "agent.yaml");
  await writeFile(config, JSON.stringify({ driver: { name: "ovs", bridge, runDir: ovs.runDir }, source: { file }, stateDir: join(dir, "state"), controlSocket: socket, listen: false, reconcile: { intervalMs: 500, debounceMs: 20 } }));
  const agent = startAsUnit(t, unit, [VIFGUARD, "agent", "--config", config]);
  await agentReady(agent, socket);

  const driver = createOvsDriver({ bridge, runDir: ovs.runDir });
  const policies = portPolicies(parsePortFile(portFile(specs), file));
  const converged = async (): Promise<boolean> => {
    const plan = (await planSync(driver, policies)).changes;
    return plan.add.length === 0 && plan.remove.length === 0;
  };
  await waitFor(converged, 20_000, "the port file applied through OVS");
  assert.equal((await processPrivileges(agent.child.pid!)).uid, "0");

  await ovs.ofctl("del-flows", bridge);
  assert.equal(await converged(), false, "the flows are gone");
  const repairMs = await waitFor(converged, 15_000, "drift repaired");
  t.diagnostic(`ovs: deleted flows repaired in ${repairMs.toFixed(0)} ms`);
  const status = await requestLifecycle(socket, { op: "status" }, 10_000);
  assert.ok(status.ok);
  assert.match(status.message, /^3 ports enforced/);
  assert.equal(agent.child.exitCode, null, "the same agent process throughout");
});

/** A uid in systemd's dynamic range (61184–65519) that no user has. */
async function unusedDynamicId(): Promise<number> {
  const passwd = await readFile("/etc/passwd", "utf8");
  const used = new Set(passwd.split("\n").map((l) => Number(l.split(":")[2])));
  for (;;) {
    const id = 61184 + Math.floor(Math.random() * (65519 - 61184));
    if (!used.has(id)) return id;
  }
}

test("unit privileges: the controller as vifguard-controller.service runs it: a dynamic uid, no capability, its SQLite file in its state directory", async (t) => {
  if (!needsRoot(t)) return;
  const unit = await readUnitPrivileges(CONTROLLER_UNIT);
  const id = await unusedDynamicId();
  // StateDirectory= (0700, the service's uid) and the credentials directory systemd would make.
  const state = await mkdtemp(join(tmpdir(), "vg-ctl-state-"));
  const credentials = await mkdtemp(join(tmpdir(), "vg-ctl-cred-"));
  t.after(async () => {
    await rm(state, { recursive: true, force: true });
    await rm(credentials, { recursive: true, force: true });
    await rm(join(tmpdir(), `tsx-${id}`), { recursive: true, force: true }); // tsx's cache for that uid
  });
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const token = "unit-privileges-admin-token-0123456789";
  await writeFile(join(credentials, "admin.token"), token, { mode: 0o600 });
  await writeFile(join(credentials, "controller.yaml"), [`listen: 127.0.0.1:${port}`, `store: sqlite://${join(state, "controller.db")}`, `bootstrapTokenFile: ${join(credentials, "admin.token")}`, "logLevel: info", ""].join("\n"));
  for (const path of [state, credentials, join(credentials, "admin.token"), join(credentials, "controller.yaml")]) await chown(path, id, id);
  await chmod(state, 0o700);
  await chmod(credentials, 0o500);
  for (const file of ["admin.token", "controller.yaml"]) await chmod(join(credentials, file), 0o400); // as systemd makes credentials
  const controller = startAsUnit(t, unit, [VIFGUARD, "controller", "--config", join(credentials, "controller.yaml")], { dynamicId: id });

  const api = (method: string, path: string, body?: unknown) =>
    fetch(`http://127.0.0.1:${port}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  await waitFor(async () => {
    if (controller.child.exitCode !== null) throw new Error(`controller exited ${controller.child.exitCode}:\n${controller.output()}`);
    return api("GET", "/v1/revision").then((r) => r.ok, () => false);
  }, 60_000, `the controller's API\n${controller.output()}`, 100);

  assert.deepEqual(await processPrivileges(controller.child.pid!), { uid: String(id), capEff: "0000000000000000", capBnd: "0000000000000000", capAmb: "0000000000000000", noNewPrivs: "1" });
  assert.equal((await api("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true })).status, 201);
  const networks = (await (await api("GET", "/v1/networks")).json()) as { id: string }[];
  assert.deepEqual(networks.map((n) => n.id), ["public"]);
  const db = await stat(join(state, "controller.db"));
  assert.equal(db.uid, id, "the SQLite file belongs to the service's uid");
  assert.equal(db.mode & 0o077, 0, "and only to it (UMask=0077)");
});
