// A lab for the agent's dataplane tests (test/dataplane/agent*.test.ts), on the one lab
// (src/conformance/lab/): a per-run "hypervisor" network namespace with a Linux bridge, guests in
// their own namespaces behind veth pairs named vnetN on the host side, the real agent as a child
// process (bin/vifguard agent), the lab's scripts to send and capture frames. Everything is named
// per run and removed in t.after(), even on failure.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile, rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { requestLifecycle, type LifecycleAnswer, type LifecycleOp } from "../../src/agent/lifecycle.ts";
import { planChanges } from "../../src/agent/plan.ts";
import type { Driver, UnitMap } from "../../src/drivers/contract.ts";
import { FAIL_CLOSED_KEY } from "../../src/drivers/contract.ts";
import { createDriver } from "../../src/drivers/registry.ts";
import { run } from "../../src/host/run.ts";
import { parsePortFile } from "../../src/model/port-file.ts";
import { portPolicies } from "../../src/policy/port-policy.ts";
import { portFile, type PortSpec } from "./fixture.ts";
import { requireRoot } from "../support/needs-root.ts";
import { Lab } from "../../src/conformance/lab/lab.ts";
import { placeAsNamed } from "../../src/agent/device-match.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** Skips (with the reason) unless root; under CI=true a missing prerequisite fails instead. */
export function needsRoot(t: TestContext): boolean {
  return requireRoot(t, "creates network namespaces, a bridge, nftables tables and runs the agent");
}

/** Skips (with the reason) while the build has no nftables driver; under CI=true that fails instead. */
export async function needsNftables(t: TestContext): Promise<boolean> {
  try {
    await createDriver("nftables", { prefix: "vgprobe" });
    return true;
  } catch (error) {
    if (process.env.CI === "true") throw error;
    t.skip(`the nftables driver is not available: ${(error as Error).message}`);
    return false;
  }
}

export type Guest = Readonly<{ port: string; netns: string; device: string; mac: string; ip: string }>;

export type AgentProcess = Readonly<{ child: ChildProcess; logs: Record<string, unknown>[]; stderr: string[]; exited: Promise<number | null> }>;

export class AgentLab {
  readonly id: string;
  readonly hostNetns: string;
  readonly prefix: string;
  readonly dir: string;
  readonly file: string;
  readonly socket: string;
  readonly metricsPort: number;
  readonly guests = new Map<string, Guest>();
  driver!: Driver;
  agent: AgentProcess | undefined;
  readonly lab: Lab;
  private readonly children = new Set<ChildProcess>();

  private constructor(id: string, dir: string) {
    this.id = id;
    this.lab = new Lab("", id);
    this.hostNetns = this.lab.ns("hv");
    this.prefix = `vgt${id.replace(/[^a-z0-9]/g, "")}`;
    this.dir = dir;
    this.file = join(dir, "ports.yaml");
    this.socket = join(dir, "agent.sock");
    this.metricsPort = 20_000 + Math.floor(Math.random() * 20_000);
  }

  /** A lab with its hypervisor namespace and bridge; removed in t.after(). */
  static async start(t: TestContext, name: string): Promise<AgentLab> {
    const id = `${name}${process.pid % 10_000}${Math.floor(Math.random() * 1000)}`.slice(0, 12);
    const dir = await mkdtemp(join(tmpdir(), `vg-${id}-`));
    const lab = new AgentLab(id, dir);
    t.after(() => lab.cleanup());
    // br_netfilter (if loaded) trims bridged IP frames to their IP length, cutting off the tests' markers.
    await lab.lab.netns("hv");
    await lab.lab.bridge(lab.hostNetns, "br0", { noBrNetfilter: true });
    lab.driver = await createDriver("nftables", { netns: lab.hostNetns, prefix: lab.prefix });
    return lab;
  }

  /** A guest: its own namespace, eth0 (MAC, IP/24; IPv6 off: no kernel chatter) ↔ `device` on the lab's bridge. */
  async addGuest(spec: PortSpec): Promise<Guest> {
    const netns = this.lab.ns(spec.device);
    const ip = spec.ips[0]!;
    await this.lab.guest({ netns, mac: spec.mac, ipv4: `${ip}/24`, noIpv6: true, device: spec.device, hostNetns: this.hostNetns, bridge: "br0" });
    const guest = { port: spec.id, netns, device: spec.device, mac: spec.mac, ip };
    this.guests.set(spec.id, guest);
    return guest;
  }

  /** Writes the port file (atomically, as config management does). */
  async writePorts(ports: readonly PortSpec[] | string): Promise<void> {
    await writeFile(`${this.file}.new`, typeof ports === "string" ? ports : portFile(ports));
    await rename(`${this.file}.new`, this.file);
  }

  configYaml(extra: Record<string, unknown> = {}): string {
    const config = {
      driver: { name: "nftables", netns: this.hostNetns, prefix: this.prefix },
      source: { file: this.file },
      stateDir: join(this.dir, "state"),
      controlSocket: this.socket,
      listen: `127.0.0.1:${this.metricsPort}`,
      log: { level: "debug" },
      reconcile: { intervalMs: 5000, debounceMs: 50, batchSize: 100 },
      drops: { logIntervalMs: 500 },
      ...extra,
    };
    return JSON.stringify(config, null, 2);
  }

  /** Starts `bin/vifguard agent --config` as a child process; resolves once its control socket answers. */
  async startAgent(extra: Record<string, unknown> = {}, waitReady = true): Promise<AgentProcess> {
    const config = join(this.dir, "agent.yaml");
    await writeFile(config, this.configYaml(extra));
    const { child, logs, stderr } = spawnAgent(config);
    this.children.add(child);
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => (this.children.delete(child), resolve(code))));
    this.agent = { child, logs, stderr, exited };
    if (waitReady) {
      await agentAnswers(child, this.socket, stderr);
    }
    return this.agent;
  }

  async stopAgent(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const agent = this.agent;
    if (!agent || agent.child.exitCode !== null || agent.child.signalCode !== null) return;
    agent.child.kill(signal);
    await agent.exited;
  }

  /** What the desired state of `ports` compiles to, with the fail-closed unit. */
  desiredUnits(ports: readonly PortSpec[], failClosed = true): UnitMap {
    const units = new Map(this.driver.compile(placeAsNamed(portPolicies(parsePortFile(portFile(ports), "lab"))), [])); // nftables: rules need no device
    if (failClosed && this.driver.compileFailClosed) units.set(FAIL_CLOSED_KEY, this.driver.compileFailClosed(["vnet*", "tap*", "vif*"]));
    return units;
  }

  /** Does the dataplane match `ports` exactly? */
  async converged(ports: readonly PortSpec[]): Promise<boolean> {
    const changes = planChanges(this.desiredUnits(ports), (await this.driver.observe()).units);
    return changes.add.length === 0 && changes.remove.length === 0;
  }

  /** The whole ruleset of the hypervisor namespace. */
  async ruleset(): Promise<string> {
    return (await run("nft", ["list", "ruleset"], { netns: this.hostNetns })).stdout;
  }

  /** vifguard's tables as "family name". */
  async tables(): Promise<string[]> {
    const out = (await run("nft", ["list", "tables"], { netns: this.hostNetns })).stdout;
    return out.split("\n").map((l) => l.replace(/^table\s+/, "").trim()).filter((l) => l.split(" ")[1] === this.prefix);
  }

  port(op: LifecycleOp, port: string): Promise<LifecycleAnswer> {
    return requestLifecycle(this.socket, { op, port }, 30_000);
  }

  /** `vifguard <args>` as a child process. */
  cli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return run(join(ROOT, "bin/vifguard"), args, { allowFailure: true, timeoutMs: 60_000 });
  }

  /** Sends frames from a guest; `count` 0 streams until stop(). */
  stream(from: string, frames: readonly Uint8Array[], count: number, gapMs: number): { done: Promise<number>; stop(): void } {
    const running = this.lab.stream(this.guests.get(from)!.netns, frames, { count, gapMs });
    return { done: running.done.then((r) => r.sent), stop: () => void running.stop() };
  }

  /** Counts frames per marker at a guest (Lab.watch); stop(guest) ends with that guest's control frame. */
  sniff(at: string, markers: readonly Uint8Array[], timeoutS: number): { ready: Promise<void>; counts: Promise<Record<string, number>>; stop(controlFrom?: string): void } {
    const watch = this.lab.watch(this.guests.get(at)!.netns, markers, timeoutS);
    return {
      ready: watch.ready,
      counts: watch.counts,
      stop: (controlFrom) => {
        const g = controlFrom === undefined ? undefined : this.guests.get(controlFrom)!;
        watch.stop(g && { netns: g.netns, mac: g.mac, ipv4: g.ip });
      },
    };
  }

  /** ping from one guest to an address; resolves with the number of replies. */
  async ping(from: string, to: string, count = 3): Promise<number> {
    const guest = this.guests.get(from)!;
    // Forget neighbour entries that failed while traffic was blocked: a FAILED entry holds the first echo back.
    for (const g of this.guests.values()) await run("ip", ["neigh", "flush", "nud", "failed"], { netns: g.netns, allowFailure: true });
    const r = await run("ping", ["-c", String(count), "-i", "0.2", "-W", "1", to], { netns: guest.netns, allowFailure: true });
    return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
  }

  async cleanup(): Promise<void> {
    for (const child of this.children) child.kill("SIGKILL");
    if (this.agent && this.agent.child.exitCode === null) {
      this.agent.child.kill("SIGKILL");
      await this.agent.exited;
    }
    this.driver?.close?.(); // its long-lived nft and ip processes hold the namespace
    await this.lab.cleanup();
    await rm(this.dir, { recursive: true, force: true });
  }
}

let markerSeq = 0;
/** A unique payload trailer for counting frames at the receiver. */
export function marker(): Uint8Array {
  markerSeq++;
  return Uint8Array.from([0x76, 0x67, 0x61, 0x67, (markerSeq >> 8) & 0xff, markerSeq & 0xff, 0x6d, 0x6b]);
}
export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `bin/vifguard agent --config` as a child: its JSON log lines parsed, anything else kept as text. */
export function spawnAgent(config: string): { child: ChildProcess; logs: Record<string, unknown>[]; stderr: string[] } {
  const child = spawn(join(ROOT, "bin/vifguard"), ["agent", "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  let rest = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        stderr.push(line);
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => stderr.push(chunk));
  return { child, logs, stderr };
}

/** Resolves once the agent's control socket answers; rejects, with what the agent said, if it exits or takes over 60 s. */
export async function agentAnswers(child: ChildProcess, socket: string, said: readonly string[]): Promise<void> {
  const deadline = performance.now() + 60_000;
  while (!(await requestLifecycle(socket, { op: "status" }, 2_000).then((a) => a.ok, () => false))) {
    if (child.exitCode !== null) throw new Error(`the agent exited ${child.exitCode}: ${said.join("")}`);
    if (performance.now() > deadline) throw new Error(`the agent did not answer within 60 s: ${said.join("")}`);
    await settle(100);
  }
}

/** Polls `check` every `stepMs` until true; resolves with the elapsed ms, or rejects after timeoutMs. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string, stepMs = 20): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    if (await check()) return performance.now() - started;
    await settle(stepMs);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}
