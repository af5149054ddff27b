// The demo's multi-host act: two hypervisors (network namespaces, a Linux bridge each, joined by a
// veth "wire"), one controller, one real agent process per hypervisor (nftables driver), guests
// Alice (hv1), Eve and Bob (hv2). Alice migrates to hv2 while Eve streams spoofed frames and Bob
// pings Alice. Effects: namespaces, links, nftables (through the agents), processes, a controller.
// Needs root; everything is named per run and removed by cleanup(), also after a failure.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Driver } from "../drivers/contract.ts";
import { createDriver } from "../drivers/registry.ts";
import { follow, type Followed } from "../host/follow.ts";
import { run } from "../host/run.ts";
import * as f from "../policy/frame-builder.ts";
import { startController, type RunningController } from "../controller/server.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/** The python with scapy's dependencies; the scripts below need only its standard library. */
const PYTHON = "/usr/bin/python3";

type GuestSpec = Readonly<{ id: string; tenant: string; device: string; mac: string; ip: string; host: "hv1" | "hv2" }>;
const ALICE: GuestSpec = { id: "alice-0", tenant: "alice", device: "vnet0", mac: "52:54:00:00:00:01", ip: "10.0.0.1", host: "hv1" };
const EVE: GuestSpec = { id: "eve-0", tenant: "eve", device: "vnet1", mac: "52:54:00:00:00:02", ip: "10.0.0.2", host: "hv2" };
const BOB: GuestSpec = { id: "bob-0", tenant: "bob", device: "vnet2", mac: "52:54:00:00:00:03", ip: "10.0.0.3", host: "hv2" };
const HOSTS = ["hv1", "hv2"] as const;
type Host = (typeof HOSTS)[number];

// Sends the frames (hex, cycled) every gapMs until SIGTERM; prints {"sent": n}.
const SEND = `
import sys, json, time, signal, socket
a = json.loads(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((a["iface"], 0))
frames = [bytes.fromhex(h) for h in a["frames"]]
stop = False
def done(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, done)
print("ready", flush=True)
n = 0
t0 = time.time()
while not stop:
    try:
        s.send(frames[n % len(frames)])
    except OSError:
        pass
    n += 1
    d = t0 + n * a["gapMs"] / 1000 - time.time()
    if d > 0: time.sleep(d)
print(json.dumps({"sent": n}), flush=True)
`;

// Counts received frames carrying each marker, on one interface or (iface null) on every
// interface of the namespace, also ones created later; prints {marker: n} after SIGTERM.
const SNIFF = `
import sys, json, signal, socket, select
a = json.loads(sys.argv[1])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
if a["iface"]: s.bind((a["iface"], 0))
marks = {m: bytes.fromhex(m) for m in a["markers"]}
counts = {m: 0 for m in marks}
stop = False
def done(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, done)
def take(raw, addr):
    if addr[2] == socket.PACKET_OUTGOING: return
    for m, b in marks.items():
        if b in raw: counts[m] += 1
print("ready", flush=True)
while not stop:
    r, _, _ = select.select([s], [], [], 0.05)
    if r:
        raw, addr = s.recvfrom(65535)
        take(raw, addr)
while True:
    try:
        raw, addr = s.recvfrom(65535, socket.MSG_DONTWAIT)
    except BlockingIOError:
        break
    take(raw, addr)
print(json.dumps(counts), flush=True)
`;

export type MigrationFigures = Readonly<{
  /** Spoofed frames from Eve seen at Alice (any interface), Bob and on the wire between the hypervisors. */
  spoofedThrough: number;
  spoofedSent: number;
  /** Bob → Alice pings (every 10 ms) lost, over the whole window (spoof stream start to end). */
  pingLossPercent: number;
  pingSent: number;
  pingLost: number;
  /** The longest time without a ping reply, and when it began (ms after the PATCH; negative: before). */
  longestPingGapMs: number;
  pingGapStartMs: number;
  /** From the PATCH to the switch-over (old interface deleted, new one up). */
  switchOverMs: number;
  /** From the PATCH of Alice's host to the controller showing her port ready on hv2. */
  readyMs: number;
  /** From the PATCH to the first sample of hv2's dataplane holding Alice's port. */
  destinationInstalledMs: number;
  /** From the PATCH to the first sample of hv1's dataplane no longer holding it. */
  sourceCleanMs: number;
  /** How long `vifguard port migrate-in` (as hv2's hook runs it) took, process start included. */
  migrateInMs: number;
  /** Samples of both dataplanes during the migration in which neither held Alice's port (must be 0). */
  gapSamples: number;
  samples: number;
  /** Replies to 3 pings from Bob to Alice after the migration. */
  repliesAfter: number;
  /** Frames Eve's port dropped, as hv2's agent reported them to the controller. */
  eveDropsReported: number;
}>;

type Api = (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A unique trailer for counting frames at the receivers. */
function marker(n: number): Uint8Array {
  return Uint8Array.from([0x76, 0x67, 0x6d, 0x69, 0x67, n & 0xff, 0x6d, 0x6b]);
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

type Running = { process: Followed; lines: string[] };

/** The two-hypervisor lab. start() builds it, migrate() runs the act, cleanup() removes everything. */
export class MigrationLab {
  readonly id: string;
  readonly prefix: string;
  private readonly log: (line: string) => void;
  private dir = "";
  private readonly namespaces: string[] = [];
  private readonly processes = new Set<Followed>();
  private controller: RunningController | undefined;
  private readonly agents = new Map<Host, Running>();
  private readonly drivers = new Map<Host, Driver>();
  private api!: Api;
  private readonly admin = `vg_demo_${randomBytes(16).toString("hex")}`;

  private constructor(log: (line: string) => void) {
    this.log = log;
    this.id = `vgm${process.pid % 10_000}${randomBytes(2).toString("hex")}`;
    this.prefix = `vg${this.id}`;
  }

  ns(name: string): string {
    return `${this.id}-${name}`;
  }

  /** Builds the hypervisors, the wire, the guests, the controller and the two agents; call cleanup() afterwards, whatever happens. */
  static async create(log: (line: string) => void): Promise<MigrationLab> {
    return new MigrationLab(log);
  }

  async start(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error("the migration act needs root (network namespaces, bridges, nftables)");
    this.dir = await mkdtemp(join(tmpdir(), `${this.id}-`));
    this.log(`Two hypervisors, hv1 and hv2: a network namespace each with a Linux bridge br0, joined by a veth "wire" (run ${this.id}).`);
    for (const host of HOSTS) {
      await this.addNetns(this.ns(host));
      await run("ip", ["link", "add", "br0", "type", "bridge"], { netns: this.ns(host) });
      await run("ip", ["link", "set", "br0", "up"], { netns: this.ns(host) });
      this.drivers.set(host, await createDriver("nftables", { netns: this.ns(host), prefix: this.prefix }));
    }
    await run("ip", ["link", "add", "wire", "type", "veth", "peer", "name", "wire", "netns", this.ns("hv2")], { netns: this.ns("hv1") });
    for (const host of HOSTS) await run("ip", ["link", "set", "wire", "master", "br0", "up"], { netns: this.ns(host) });

    this.log("Guests: Alice on hv1; Eve and Bob on hv2, each in its own namespace behind a vnetN port.");
    for (const g of [ALICE, EVE, BOB]) await this.addGuest(g, g.host, "eth0");

    this.controller = await startController({ store: `sqlite://${join(this.dir, "controller.db")}`, bootstrapTokens: [this.admin], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent", watchPollMs: 200 });
    const url = this.controller.url;
    this.api = async (method, path, body) => {
      const res = await fetch(`${url}${path}`, { method, headers: { authorization: `Bearer ${this.admin}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    this.log(`The controller listens on ${url} (SQLite); each hypervisor runs \`vifguard agent\` (driver nftables, source: the controller).`);
    for (const host of HOSTS) await this.startAgent(host, url);

    await this.call("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true });
    for (const g of [ALICE, EVE, BOB]) await this.call("POST", "/v1/ports", { id: g.id, tenant: g.tenant, network: "public", device: g.device, mac: g.mac, ips: [g.ip], host: g.host });
    for (const host of HOSTS) {
      const ok = await this.until(async () => (await this.api("GET", `/v1/hosts/${host}`)).status === 200, 30_000);
      if (!ok) throw new Error(`${host}'s agent did not register: ${this.agents.get(host)!.lines.slice(-5).join("\n")}`);
    }
    for (const g of [ALICE, EVE, BOB]) {
      const m = await this.call("GET", `/v1/ports/${g.id}/migration?readyOn=${g.host}&timeoutMs=30000`);
      if (!m.ready) throw new Error(`${g.id} not ready on ${g.host}: ${JSON.stringify(m)}; agent says: ${this.agents.get(g.host)!.lines.slice(-5).join("\n")}`);
    }
    this.log("Networks and ports created through the API; both agents registered and report every port applied.");
    const replies = await this.ping(BOB, ALICE.ip, 3);
    this.log(`Bob pings Alice across the wire: ${replies}/3 replies.`);
    if (replies === 0) throw new Error("Bob cannot reach Alice before the migration");
  }

  private async addNetns(name: string): Promise<void> {
    await run("ip", ["netns", "add", name]);
    this.namespaces.push(name);
  }

  /** A guest interface `iface` in the guest's namespace ↔ `device` on `host`'s bridge. */
  private async addGuest(g: GuestSpec, host: Host, iface: string, up = true): Promise<void> {
    const netns = this.ns(g.tenant);
    if (!this.namespaces.includes(netns)) {
      await this.addNetns(netns);
      await run("sysctl", ["-qw", "net.ipv6.conf.all.disable_ipv6=1"], { netns }); // no kernel chatter
      await run("sysctl", ["-qw", "net.ipv6.conf.default.disable_ipv6=1"], { netns });
      await run("ip", ["link", "set", "lo", "up"], { netns });
    }
    await run("ip", ["link", "add", g.device, "type", "veth", "peer", "name", iface, "netns", netns], { netns: this.ns(host) });
    await run("ip", ["link", "set", iface, "address", g.mac], { netns });
    if (up) {
      await run("ip", ["addr", "add", `${g.ip}/24`, "dev", iface], { netns });
      await run("ip", ["link", "set", iface, "up"], { netns });
    }
    await run("ip", ["link", "set", g.device, "master", "br0", "up"], { netns: this.ns(host) });
  }

  private async startAgent(host: Host, url: string): Promise<void> {
    const token = await this.call("POST", "/v1/tokens", { role: "agent", host });
    const tokenFile = join(this.dir, `${host}.token`);
    await writeFile(tokenFile, token.token as string, { mode: 0o600 });
    const config = {
      driver: { name: "nftables", netns: this.ns(host), prefix: this.prefix },
      source: { controller: { url, tokenFile, host, pollTimeoutMs: 30_000, retryMs: 200, heartbeatMs: 2_000 } },
      stateDir: join(this.dir, host, "state"),
      controlSocket: this.socket(host),
      listen: false,
      log: { level: "info" },
      reconcile: { intervalMs: 1_000, debounceMs: 50, batchSize: 100 },
      drops: { logIntervalMs: 1_000 },
    };
    const file = join(this.dir, `${host}.agent.json`);
    await writeFile(file, JSON.stringify(config, null, 2));
    this.agents.set(host, this.spawn(join(ROOT, "bin/vifguard"), ["agent", "--config", file], {}));
  }

  socket(host: Host): string {
    return join(this.dir, host, "agent.sock");
  }

  private spawn(command: string, args: readonly string[], options: { netns?: string }, onLine?: (line: string) => void): Running {
    const lines: string[] = [];
    const followed = follow(command, args, options, (line) => {
      lines.push(line);
      if (lines.length > 200) lines.shift();
      onLine?.(line);
    });
    this.processes.add(followed);
    void followed.exited.then(() => this.processes.delete(followed));
    return { process: followed, lines };
  }

  private async call(method: string, path: string, body?: unknown): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const a = await this.api(method, path, body);
    if (a.status >= 300) throw new Error(`${method} ${path}: HTTP ${a.status} ${JSON.stringify(a.body)}`);
    return a.body;
  }

  private async until(check: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 50): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (await check()) return true;
      await sleep(stepMs);
    }
    return check();
  }

  private async ping(from: GuestSpec, to: string, count: number): Promise<number> {
    const r = await run("ping", ["-c", String(count), "-i", "0.2", "-W", "1", to], { netns: this.ns(from.tenant), allowFailure: true });
    return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
  }

  /** Starts a sniffer; resolves once it captures. stop() resolves with its counts per marker. */
  private async sniff(netns: string, iface: string | null, markers: readonly Uint8Array[]): Promise<() => Promise<Record<string, number>>> {
    let ready!: () => void;
    const isReady = new Promise<void>((r) => (ready = r));
    const s = this.spawn(PYTHON, ["-c", SNIFF, JSON.stringify({ iface, markers: markers.map(hex) })], { netns }, (line) => line === "ready" && ready());
    await Promise.race([isReady, s.process.exited]);
    return async () => {
      s.process.close();
      await s.process.exited;
      const last = s.lines.at(-1) ?? "";
      try {
        return JSON.parse(last) as Record<string, number>;
      } catch {
        throw new Error(`sniffer in ${netns} said: ${s.lines.join("\n")}`);
      }
    };
  }

  /** Runs the migration act; resolves with its figures. */
  async migrate(): Promise<MigrationFigures> {
    const alice = this.ns("alice");
    const marks = [marker(1), marker(2), marker(3), marker(4)];
    // Eve's spoofs: Alice's IP from Eve's MAC, Alice's MAC outright, a gratuitous ARP claiming
    // Alice's IP, and Bob's IP towards Alice. Each must be dropped at Eve's port, wherever Alice is.
    const spoofs = [
      f.withTrailer(f.ether(BOB.mac, EVE.mac, 0x0800, f.icmp4Echo(ALICE.ip, BOB.ip)), marks[0]!),
      f.withTrailer(f.ether(BOB.mac, ALICE.mac, 0x0800, f.icmp4Echo(ALICE.ip, BOB.ip)), marks[1]!),
      f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE.mac, 0x0806, f.arp({ op: 2, sha: EVE.mac, spa: ALICE.ip, tha: "ff:ff:ff:ff:ff:ff", tpa: ALICE.ip })), marks[2]!),
      f.withTrailer(f.ether(ALICE.mac, EVE.mac, 0x0800, f.icmp4Echo(BOB.ip, ALICE.ip)), marks[3]!),
    ];
    this.log("Eve starts streaming spoofed frames (every 2 ms): Alice's IP, Alice's MAC, a gratuitous ARP for Alice's IP, Bob's IP.");
    this.log("Capturing at Alice (every interface she has or will have), at Bob, and on hv1's end of the wire; Bob pings Alice every 10 ms.");
    const sniffers = await Promise.all([this.sniff(alice, null, marks), this.sniff(this.ns("bob"), "eth0", marks), this.sniff(this.ns("hv1"), "wire", marks)]);
    const pings = this.pingStream();
    const eve = this.spawn(PYTHON, ["-c", SEND, JSON.stringify({ iface: "eth0", frames: spoofs.map(hex), gapMs: 2 })], { netns: this.ns("eve") });
    await sleep(1_500);

    // Sample both dataplanes: at no moment may neither hold Alice's port.
    let sampling = true;
    const samples: { hv1: boolean; hv2: boolean; at: number }[] = [];
    const sampler = (async () => {
      while (sampling) {
        const [a, b] = await Promise.all(HOSTS.map(async (h) => [...(await this.drivers.get(h)!.observe()).values()].some((u) => u.port === ALICE.id)));
        samples.push({ hv1: a!, hv2: b!, at: performance.now() });
        await sleep(10);
      }
    })();

    this.log("Migration: the hypervisor creates Alice's new port vnet0 on hv2 (the guest side stays down, as a paused VM's would).");
    await this.addGuest(ALICE, "hv2", "eth1", false);
    this.log("The orchestrator moves alice-0 to hv2 through the API; hv2's hook runs `vifguard port migrate-in 52:54:00:00:00:01`.");
    const started = performance.now();
    await this.call("PATCH", `/v1/ports/${ALICE.id}`, { host: "hv2" });
    const ready = this.call("GET", `/v1/ports/${ALICE.id}/migration?readyOn=hv2&timeoutMs=30000`).then((m: { ready: boolean }) => ({ ready: m.ready, ms: performance.now() - started }));
    const hookStarted = performance.now();
    const answer = await run(join(ROOT, "bin/vifguard"), ["port", "migrate-in", ALICE.mac, "--socket", this.socket("hv2"), "--timeout", "30000"], { allowFailure: true, timeoutMs: 40_000 });
    const migrateInMs = performance.now() - hookStarted;
    if (answer.code !== 0) throw new Error(`migrate-in failed: ${answer.stderr}${answer.stdout}`);
    const { ready: isReady, ms: readyMs } = await ready;
    if (!isReady) throw new Error("the controller did not show Alice's port ready on hv2 within 30 s");
    this.log(`  the controller shows alice-0 ready on hv2 ${readyMs.toFixed(0)} ms after the PATCH`);
    this.log(`  hv2's hook: ${answer.stdout.trim()} (the command took ${migrateInMs.toFixed(0)} ms, process start included)`);
    const clean = await this.until(() => samples.some((x) => x.at > started && !x.hv1), 10_000, 10);
    if (!clean) throw new Error("hv1 still holds Alice's port 10 s after the migration");
    const destinationInstalledMs = samples.find((x) => x.at > started && x.hv2)!.at - started;
    const sourceCleanMs = samples.find((x) => x.at > started && !x.hv1)!.at - started;
    this.log(`  sampled dataplanes: hv2 held Alice's rules ${destinationInstalledMs.toFixed(0)} ms after the PATCH; hv1 dropped them at ${sourceCleanMs.toFixed(0)} ms, after the controller saw hv2 apply them.`);

    this.log("The VM resumes on hv2: the old interface goes, the new one comes up, and Alice announces herself (gratuitous ARP).");
    const switchStarted = performance.now();
    const switchOverMs = switchStarted - started;
    await run("sh", ["-c", `ip link del eth0 && ip link set eth1 name eth0 && ip addr add ${ALICE.ip}/24 dev eth0 && ip link set eth0 up && { arping -q -U -c 1 -I eth0 ${ALICE.ip} >/dev/null 2>&1 & }`], { netns: alice }); // fails loudly: a half-done switch-over would pass for ping loss
    this.log(`  switched over in ${(performance.now() - switchStarted).toFixed(0)} ms`);
    await sleep(2_000);
    sampling = false;
    await sampler;

    eve.process.close();
    await eve.process.exited;
    const spoofedSent = Number((JSON.parse(eve.lines.at(-1) ?? "{}") as { sent?: number }).sent ?? 0);
    const ping = await pings();
    const counts = await Promise.all(sniffers.map((stop) => stop()));
    const spoofedThrough = counts.reduce((n, c) => n + Object.values(c).reduce((a, b) => a + b, 0), 0);
    const gapSamples = samples.filter((s) => !s.hv1 && !s.hv2).length;

    const repliesAfter = await this.ping(BOB, ALICE.ip, 3);
    this.log(`After the migration Bob pings Alice on hv2: ${repliesAfter}/3 replies.`);
    // Eve's drops reach the controller with hv2's next status report (every sync: 1 s here).
    let eveDropsReported = 0;
    await this.until(async () => {
      const status = await this.call("GET", `/v1/ports/${EVE.id}/status`);
      eveDropsReported = ((status.reports[0]?.drops ?? []) as { packets: number }[]).reduce((n, d) => n + d.packets, 0);
      return eveDropsReported > 0;
    }, 5_000, 200);

    const pingLossPercent = ping.sent === 0 ? 100 : (100 * ping.lost) / ping.sent;
    this.log(`Eve sent ${spoofedSent} spoofed frames; ${spoofedThrough} arrived anywhere. Her port's drops, as reported to the controller: ${eveDropsReported}.`);
    this.log(`Bob's pings: ${ping.sent} sent, ${ping.lost} lost (${pingLossPercent.toFixed(2)} %); the longest silence was ${ping.longestGapMs.toFixed(0)} ms, from ${(ping.gapStartedAt - started).toFixed(0)} ms after the PATCH (hv1 dropped Alice's rules at ${sourceCleanMs.toFixed(0)} ms, the switch-over began at ${switchOverMs.toFixed(0)} ms).`);
    this.log(`Both dataplanes sampled ${samples.length} times during the migration: ${gapSamples} samples with Alice's rules on neither host.`);
    return { spoofedThrough, spoofedSent, pingLossPercent, pingSent: ping.sent, pingLost: ping.lost, longestPingGapMs: ping.longestGapMs, pingGapStartMs: ping.gapStartedAt - started, switchOverMs, repliesAfter, readyMs, destinationInstalledMs, sourceCleanMs, migrateInMs, gapSamples, samples: samples.length, eveDropsReported };
  }

  /** Bob pings Alice every 10 ms; the returned function stops it and counts sent and lost requests. */
  private pingStream(): () => Promise<{ sent: number; lost: number; longestGapMs: number; gapStartedAt: number }> {
    const replied = new Set<number>();
    let highest = 0;
    let last = performance.now();
    let longestGapMs = 0;
    let gapStartedAt = last;
    // stdbuf: ping's stdout is a pipe here; line-buffer it so no reply line dies in a buffer at SIGTERM.
    const p = this.spawn("stdbuf", ["-oL", "ping", "-n", "-O", "-i", "0.01", "-W", "1", ALICE.ip], { netns: this.ns("bob") }, (line) => {
      const seq = Number(/icmp_seq=(\d+)/.exec(line)?.[1] ?? NaN);
      if (Number.isNaN(seq)) return;
      if (/bytes from/.test(line)) {
        const now = performance.now();
        if (now - last > longestGapMs) [longestGapMs, gapStartedAt] = [now - last, last];
        last = now;
        replied.add(seq);
        highest = Math.max(highest, seq);
      }
    });
    return async () => {
      p.process.close();
      await p.process.exited;
      // Requests up to the last answered one: the ones still in flight at the end do not count.
      return { sent: highest, lost: highest - [...replied].filter((s) => s <= highest).length, longestGapMs, gapStartedAt };
    };
  }

  /** Stops every process, the agents and the controller; deletes the namespaces (and with them the tables) and files. */
  async cleanup(): Promise<void> {
    for (const p of [...this.processes]) p.close();
    await Promise.all([...this.processes].map((p) => Promise.race([p.exited, sleep(5_000)])));
    await this.controller?.close().catch(() => undefined);
    for (const ns of this.namespaces.reverse()) await run("ip", ["netns", "del", ns], { allowFailure: true });
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The demo's multi-host act: builds the two-hypervisor lab, migrates Alice from hv1 to hv2 under
 * Eve's spoof stream and Bob's pings, narrates each step through `log`, and removes everything.
 */
export async function migrationAct(log: (line: string) => void): Promise<{ spoofedThrough: number; pingLossPercent: number }> {
  const lab = await MigrationLab.create(log);
  try {
    await lab.start();
    const figures = await lab.migrate();
    return { spoofedThrough: figures.spoofedThrough, pingLossPercent: figures.pingLossPercent };
  } finally {
    await lab.cleanup();
  }
}
