// The demo's multi-host act: two hypervisors (network namespaces, a Linux bridge each, joined by a
// veth "wire"), one controller, one real agent process per hypervisor (nftables driver), guests
// Alice (hv1), Eve and Bob (hv2). Alice migrates to the other hypervisor while Eve streams spoofed
// frames and Bob pings her, driven as libvirt's hooks drive a live migration. Effects: namespaces,
// links, nftables (through the agents), processes, a controller. Needs root; everything is named
// per run and removed by cleanup(), also after a failure.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeControllerAnswer } from "../../agent/desired.ts";
import { Lab } from "../../conformance/lab/lab.ts";
import { PYTHON } from "../../conformance/lab/scripts.ts";
import { SUBNET4, SUBNET6, VIP4, VIP6 } from "../../conformance/sandbox.ts";
import type { Driver } from "../../drivers/contract.ts";
import { createDriver } from "../../drivers/registry.ts";
import { follow, type Followed } from "../../host/follow.ts";
import { run } from "../../host/run.ts";
import * as f from "../../policy/frame-builder.ts";
import type { PortPolicy } from "../../policy/port-policy.ts";
import { controllerClient, succeed, type ControllerClient } from "../../controller/client.ts";
import { startController, type RunningController } from "../../controller/server.ts";
import { COPY_MS, PING_INTERVAL_MS, SWITCH_SLACK_MS, placeLosses, type Host, type MigrationFigures } from "./figures.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

export type GuestName = "alice" | "eve" | "bob";
export type { Host, MigrationFigures };
export { placeLosses };
const HOSTS: readonly Host[] = ["hv1", "hv2"];
const other = (h: Host): Host => (h === "hv1" ? "hv2" : "hv1");

type GuestSpec = Readonly<{ name: GuestName; id: string; tenant: string; device: string; mac: string; ipv4: string; ipv6: string; allowed: readonly string[]; host: Host }>;
// The conformance kit's addressing (src/conformance/sandbox.ts), so its attack table applies as is;
// Alice holds the failover VIP as allowed address pairs.
const guest = (name: GuestName, n: number, device: string, host: Host, allowed: readonly string[] = []): GuestSpec =>
  ({ name, id: `${name}-0`, tenant: name, device, mac: `52:54:00:00:00:0${n}`, ipv4: `${SUBNET4}.${n}`, ipv6: `${SUBNET6}::${n}`, allowed, host });
const ALICE = guest("alice", 1, "vnet0", "hv1", [`${VIP4}/32`, VIP6]);
const EVE = guest("eve", 2, "vnet1", "hv2");
const BOB = guest("bob", 3, "vnet2", "hv2");
const GUESTS = [ALICE, EVE, BOB] as const;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** Wall-clock ms, comparable with the python scripts' time.time(). */
const wallMs = (): number => performance.timeOrigin + performance.now();

/** A unique trailer for counting frames at the receivers. */
function marker(n: number): Uint8Array {
  return Uint8Array.from([0x76, 0x67, 0x6d, 0x69, 0x67, n & 0xff, 0x6d, 0x6b]);
}
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

type Running = { process: Followed; lines: string[] };


/** The two-hypervisor lab. start() builds it, migrate() moves Alice to the other hypervisor, cleanup() removes everything. */
export class MigrationLab {
  readonly id: string;
  readonly prefix: string;
  private readonly log: (line: string) => void;
  private dir = "";
  private readonly lab: Lab;
  private readonly processes = new Set<Followed>();
  private controller: RunningController | undefined;
  private readonly agents = new Map<Host, Running>();
  private readonly drivers = new Map<Host, Driver>();
  /** The controller's API, through the typed client the CLI uses. */
  private api!: ControllerClient;
  private readonly admin = `vg_demo_${randomBytes(16).toString("hex")}`;
  /** Where Alice's VM runs now. */
  aliceOn: Host = ALICE.host;

  private constructor(log: (line: string) => void) {
    this.log = log;
    this.id = `vgm${process.pid % 10_000}${randomBytes(2).toString("hex")}`;
    this.prefix = `vg${this.id}`;
    this.lab = new Lab("", this.id);
  }

  ns(name: string): string {
    return this.lab.ns(name);
  }

  /** The lab; start() builds it. Call cleanup() afterwards, whatever happens. */
  static async create(log: (line: string) => void): Promise<MigrationLab> {
    return new MigrationLab(log);
  }

  /** Each guest's namespace, addresses and current hypervisor. */
  guests(): { name: GuestName; netns: string; mac: string; ipv4: string; ipv6: string; host: Host }[] {
    return GUESTS.map((g) => ({ name: g.name, netns: this.ns(g.tenant), mac: g.mac, ipv4: g.ipv4, ipv6: g.ipv6, host: g.name === "alice" ? this.aliceOn : g.host }));
  }

  /** The nftables driver of a hypervisor (capabilities, counters). */
  driver(host: Host): Driver {
    return this.drivers.get(host)!;
  }

  /** Each guest's PortPolicy as the controller hands it to the agent of the guest's hypervisor. */
  async policies(): Promise<Map<GuestName, PortPolicy>> {
    const policies = new Map<GuestName, PortPolicy>();
    for (const host of HOSTS) {
      const answer = await succeed(this.api.v1.hosts[":host"].desired.$get({ param: { host }, query: {} }), `GET /v1/hosts/${host}/desired`);
      for (const p of decodeControllerAnswer(JSON.stringify(answer), host).policies) {
        const g = GUESTS.find((x) => x.id === p.port);
        if (g && (g.name === "alice" ? this.aliceOn : g.host) === host) policies.set(g.name, p);
      }
    }
    return policies;
  }

  /** Bridges that learn no MAC flood every unicast, so a port's to-vm filter is what keeps frames from others (as in the conformance kit); off: they learn again. */
  async setFlooding(on: boolean): Promise<void> {
    for (const host of HOSTS) await run("ip", ["link", "set", "br0", "type", "bridge", "ageing_time", on ? "0" : "30000"], { netns: this.ns(host) });
  }

  async start(): Promise<void> {
    if (process.getuid?.() !== 0) throw new Error("the migration act needs root (network namespaces, bridges, nftables)");
    this.dir = await mkdtemp(join(tmpdir(), `${this.id}-`));
    this.log(`Two hypervisors, hv1 and hv2: a network namespace each with a Linux bridge br0, joined by a veth "wire" (run ${this.id}).`);
    for (const host of HOSTS) {
      const netns = await this.lab.netns(host);
      // br_netfilter would trim bridged IP packets to their IP length, and so the markers the
      // sniffers count; the hypervisors' own interfaces stay quiet (no IPv6 chatter of theirs).
      for (const setting of ["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"]) await run("sysctl", ["-qw", setting], { netns });
      await this.lab.bridge(netns, "br0", { noBrNetfilter: true });
      this.drivers.set(host, await createDriver("nftables", { netns, prefix: this.prefix }));
    }
    await run("ip", ["link", "add", "wire", "type", "veth", "peer", "name", "wire", "netns", this.ns("hv2")], { netns: this.ns("hv1") });
    for (const host of HOSTS) await run("ip", ["link", "set", "wire", "master", "br0", "up"], { netns: this.ns(host) });

    this.log("Guests: Alice on hv1; Eve and Bob on hv2, each in its own namespace behind a vnetN port (IPv4 and IPv6).");
    for (const g of GUESTS) await this.addGuest(g, g.host, "eth0");

    this.controller = await startController({ store: `sqlite://${join(this.dir, "controller.db")}`, bootstrapTokens: [this.admin], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent", watchPollMs: 200 });
    const url = this.controller.url;
    this.api = controllerClient(url, this.admin);
    this.log(`The controller listens on ${url} (SQLite); each hypervisor runs \`vifguard agent\` (driver nftables, source: the controller).`);
    for (const host of HOSTS) await this.startAgent(host, url);

    await succeed(this.api.v1.networks.$post({ json: { id: "public", tenant: "provider", shared: true } }), "POST /v1/networks");
    for (const g of GUESTS) {
      await succeed(this.api.v1.ports.$post({ json: { id: g.id, tenant: g.tenant, network: "public", device: g.device, mac: g.mac, ips: [g.ipv4, g.ipv6], allowed: g.allowed.map((ip) => ({ ip })), host: g.host } }), "POST /v1/ports");
    }
    for (const host of HOSTS) {
      const ok = await this.until(async () => (await this.api.v1.hosts[":host"].$get({ param: { host } })).status === 200, 30_000);
      if (!ok) throw new Error(`${host}'s agent did not register: ${this.agents.get(host)!.lines.slice(-5).join("\n")}`);
    }
    for (const g of GUESTS) {
      const m = await this.migration(g.id, { readyOn: g.host, timeoutMs: "30000" });
      if (!m.ready) throw new Error(`${g.id} not ready on ${g.host}: ${JSON.stringify(m)}; agent says: ${this.agents.get(g.host)!.lines.slice(-5).join("\n")}`);
    }
    this.log("Networks and ports created through the API; both agents registered and report every port applied.");
    const replies = await this.ping(BOB, ALICE.ipv4, 3);
    this.log(`Bob pings Alice across the wire: ${replies}/3 replies.`);
    if (replies === 0) throw new Error("Bob cannot reach Alice before the migration");
  }

  /** A guest interface `iface` in the guest's namespace ↔ `device` on `host`'s bridge; `up` false: down and unaddressed (a paused VM's). */
  private async addGuest(g: GuestSpec, host: Host, iface: string, up = true): Promise<void> {
    // Few kernel chatters (no RS, no DAD); the guest announces itself when its link comes up
    // (gratuitous ARP, unsolicited NA), as a guest does after a migration (virtio-net's announce).
    const sysctls = [`net.ipv6.conf.${iface}.router_solicitations=0`, `net.ipv6.conf.${iface}.accept_dad=0`, `net.ipv6.conf.${iface}.ndisc_notify=1`, `net.ipv4.conf.${iface}.arp_notify=1`];
    await this.lab.guest({ netns: this.ns(g.tenant), iface, mac: g.mac, ipv4: `${g.ipv4}/24`, ipv6: `${g.ipv6}/64`, sysctls, up, device: g.device, hostNetns: this.ns(host), bridge: "br0" });
  }

  private async startAgent(host: Host, url: string): Promise<void> {
    const token = await succeed(this.api.v1.tokens.$post({ json: { role: "agent", host } }), "POST /v1/tokens");
    const tokenFile = join(this.dir, `${host}.token`);
    await writeFile(tokenFile, token.token, { mode: 0o600 });
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

  private migration(id: string, query: { readyOn?: string; timeoutMs?: string } = {}) {
    return succeed(this.api.v1.ports[":id"].migration.$get({ param: { id }, query }), `GET /v1/ports/${id}/migration`);
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

  /** Runs `vifguard port <verb> <Alice's MAC>` against `host`'s agent, as that hypervisor's hook does; returns its output and duration. */
  private async hook(host: Host, verb: "migrate-in" | "migrate-out"): Promise<{ out: string; ms: number }> {
    const started = performance.now();
    const answer = await run(join(ROOT, "bin/vifguard"), ["port", verb, ALICE.mac, "--socket", this.socket(host), "--timeout", "30000"], { allowFailure: true, timeoutMs: 40_000 });
    if (answer.code !== 0) throw new Error(`${verb} on ${host} failed: ${answer.stderr}${answer.stdout}`);
    return { out: answer.stdout.trim(), ms: performance.now() - started };
  }

  /**
   * Moves Alice to the other hypervisor as libvirt's hooks drive a live migration, under Eve's spoof
   * stream and Bob's pings; resolves with the figures.
   */
  async migrate(): Promise<MigrationFigures> {
    const from = this.aliceOn;
    const to = other(from);
    const alice = this.ns("alice");
    const eveOn = EVE.host;
    const marks = [1, 2, 3, 4, 5].map(marker);
    // Eve's spoofs: Alice's IP from Eve's MAC, Alice's MAC outright, a gratuitous ARP claiming
    // Alice's IP, Bob's IP towards Alice, an NA claiming Alice's IPv6. Each must be dropped at Eve's
    // port, wherever Alice is.
    const spoofs = [
      f.withTrailer(f.ether(BOB.mac, EVE.mac, 0x0800, f.icmp4Echo(ALICE.ipv4, BOB.ipv4)), marks[0]!),
      f.withTrailer(f.ether(BOB.mac, ALICE.mac, 0x0800, f.icmp4Echo(ALICE.ipv4, BOB.ipv4)), marks[1]!),
      f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", EVE.mac, 0x0806, f.arp({ op: 2, sha: EVE.mac, spa: ALICE.ipv4, tha: "ff:ff:ff:ff:ff:ff", tpa: ALICE.ipv4 })), marks[2]!),
      f.withTrailer(f.ether(ALICE.mac, EVE.mac, 0x0800, f.icmp4Echo(BOB.ipv4, ALICE.ipv4)), marks[3]!),
      f.withTrailer(f.ether("33:33:00:00:00:01", EVE.mac, 0x86dd, f.neighborAdvertisement({ src: EVE.ipv6, dst: "ff02::1", target: ALICE.ipv6, options: [f.tll(EVE.mac)] })), marks[4]!),
    ];
    this.log(`Alice migrates from ${from} to ${to}; Eve (on ${eveOn}) streams spoofed frames every 2 ms: Alice's IP, Alice's MAC, a gratuitous ARP and an NA for Alice's addresses, Bob's IP.`);
    this.log(`Capturing at Alice (every interface she has or will have), at Bob, and on hv1's end of the wire; Bob pings Alice every ${PING_INTERVAL_MS} ms.`);
    const sniffers = [this.lab.countMarkers(alice, marks, null), this.lab.countMarkers(this.ns("bob"), marks), this.lab.countMarkers(this.ns("hv1"), marks, "wire")];
    const pinger = this.lab.script<{ sent: number[]; rtt: Record<string, number> }>("ping", this.ns("bob"), { dst: ALICE.ipv4, intervalMs: PING_INTERVAL_MS });
    const eve = this.lab.stream(this.ns("eve"), spoofs, { count: 0, gapMs: 2 });
    await Promise.all([...sniffers, pinger, eve].map((r) => r.ready));
    await sleep(1_000);

    // Sample both dataplanes: at no moment may neither hold Alice's port, and the source must hold it until the switch-over.
    let sampling = true;
    const samples: { source: boolean; destination: boolean; at: number }[] = [];
    const sampler = (async () => {
      while (sampling) {
        const [source, destination] = await Promise.all([from, to].map(async (h) => [...(await this.drivers.get(h)!.observe()).units.values()].some((u) => u.port === ALICE.id)));
        samples.push({ source: source!, destination: destination!, at: performance.now() });
        await sleep(10);
      }
    })();

    this.log(`The destination: libvirt on ${to} creates Alice's port vnet0 (the guest side stays down, as a paused VM's would).`);
    await this.addGuest(ALICE, to, "eth1", false);
    this.log(`The orchestrator moves alice-0 to ${to} through the API; ${to}'s hook runs \`vifguard port migrate-in ${ALICE.mac}\`.`);
    const started = performance.now();
    await succeed(this.api.v1.ports[":id"].$patch({ param: { id: ALICE.id }, json: { host: to } }), `PATCH /v1/ports/${ALICE.id}`);
    const ready = this.migration(ALICE.id, { readyOn: to, timeoutMs: "30000" }).then((m) => ({ ...m, ms: performance.now() - started }));
    const migrateIn = await this.hook(to, "migrate-in");
    const readyAnswer = await ready;
    if (!readyAnswer.ready) throw new Error(`the controller did not show Alice's port ready on ${to} within 30 s`);
    const readyMs = readyAnswer.ms;
    this.log(`  the controller shows alice-0 ${readyAnswer.state} on ${to} ${readyMs.toFixed(0)} ms after the PATCH; ${from} keeps her rules, as the VM still runs there`);
    this.log(`  ${to}'s hook: ${migrateIn.out} (the command took ${migrateIn.ms.toFixed(0)} ms, process start included)`);
    await sleep(Math.max(0, COPY_MS - (performance.now() - started)));

    this.log(`The switch-over: the VM stops on ${from} (its interface goes) and resumes on ${to}; the guest announces itself (gratuitous ARP, unsolicited NA) and QEMU sends its RARP announce-self.`);
    const announce = f.ether("ff:ff:ff:ff:ff:ff", ALICE.mac, 0x8035, f.arp({ op: 3, sha: ALICE.mac, spa: "0.0.0.0", tha: ALICE.mac, tpa: "0.0.0.0" }));
    // QEMU's announce rounds (50 ms, then 100 ms more each time); in the background, after the switch.
    const rarp = `import socket, time; s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("eth0", 0))\nfor d in (0, 0.05, 0.15, 0.25, 0.35): time.sleep(d); s.send(bytes.fromhex("${hex(announce)}"))`;
    const batch = ["link del eth0", "link set eth1 name eth0", `addr add ${ALICE.ipv4}/24 dev eth0`, `addr add ${ALICE.ipv6}/64 dev eth0 nodad`, "link set eth0 up"].join("\n");
    // One shell, one `ip -batch`: the switch-over takes what the kernel takes, not process starts. It fails loudly: a half-done switch-over would pass for ping loss.
    const switched = await run("sh", ["-c", `set -e; date +%s%N; printf '%s\\n' "$1" | ip -batch -; date +%s%N; ${PYTHON} -c "$2" >/dev/null 2>&1 &`, "sh", batch, rarp], { netns: alice });
    const [switchStart, switchEnd] = switched.stdout.trim().split("\n").map((ns) => Number(BigInt(ns) / 1_000n) / 1_000); // ns → ms
    const switchOverMs = switchStart! - (performance.timeOrigin + started);
    const switchDurationMs = switchEnd! - switchStart!;
    this.log(`  switched over ${switchOverMs.toFixed(0)} ms after the PATCH, in ${switchDurationMs.toFixed(0)} ms`);

    this.log(`The source: ${from}'s hook runs \`vifguard port migrate-out ${ALICE.mac}\` (libvirt: stopped/release); its agent removes the rules and reports the port released.`);
    const migrateOut = await this.hook(from, "migrate-out");
    let migrationEndedMs = NaN;
    const ended = await this.until(async () => {
      const m = await this.migration(ALICE.id);
      if (m.state === "ready") migrationEndedMs = performance.now() - started;
      return m.state === "ready";
    }, 10_000, 20);
    if (!ended) throw new Error(`the controller did not end the migration within 10 s of ${from}'s migrate-out`);
    const clean = await this.until(() => samples.some((x) => x.at > started && !x.source), 10_000, 10);
    if (!clean) throw new Error(`${from} still holds Alice's port 10 s after its migrate-out`);
    this.log(`  ${from}'s hook: ${migrateOut.out} (${migrateOut.ms.toFixed(0)} ms); the controller ended the migration ${migrationEndedMs.toFixed(0)} ms after the PATCH`);
    await sleep(Math.max(0, 1_500 - (wallMs() - switchEnd!)));
    sampling = false;
    await sampler;

    const { sent: spoofedSent } = await eve.stop();
    const ping = await pinger.stop();
    const counts = await Promise.all(sniffers.map((s) => s.stop()));
    const spoofedThrough = counts.reduce((n, c) => n + Object.values(c).reduce((a, b) => a + b, 0), 0);
    const during = samples.filter((s) => s.at > started);
    const gapSamples = during.filter((s) => !s.source && !s.destination).length;
    const switchAt = switchStart! - performance.timeOrigin;
    const sourceGoneEarlySamples = samples.filter((s) => s.at < switchAt && !s.source).length;
    const destinationInstalledMs = (during.find((x) => x.destination)?.at ?? NaN) - started;
    const sourceCleanMs = (during.find((x) => !x.source)?.at ?? NaN) - started;
    this.log(`  sampled dataplanes: ${to} held Alice's rules ${destinationInstalledMs.toFixed(0)} ms after the PATCH; ${from} dropped them at ${sourceCleanMs.toFixed(0)} ms, ${sourceCleanMs > switchOverMs ? "after" : "BEFORE"} the switch-over (${switchOverMs.toFixed(0)} ms).`);

    const answered = new Set(Object.keys(ping.rtt).map(Number));
    const loss = placeLosses(ping.sent, answered, switchStart!, switchEnd!, SWITCH_SLACK_MS);
    this.aliceOn = to;
    const repliesAfter = await this.ping(BOB, ALICE.ipv4, 3);
    const repliesAfter6 = await this.ping(BOB, ALICE.ipv6, 3);
    this.log(`After the migration Bob pings Alice on ${to}: ${repliesAfter}/3 replies over IPv4, ${repliesAfter6}/3 over IPv6.`);
    // Eve's drops reach the controller with her agent's next status report (every sync: 1 s here).
    let eveDropsReported = 0;
    await this.until(async () => {
      const status = await succeed(this.api.v1.ports[":id"].status.$get({ param: { id: EVE.id } }), `GET /v1/ports/${EVE.id}/status`);
      eveDropsReported = (status.reports[0]?.drops ?? []).reduce((n, d) => n + d.packets, 0);
      return eveDropsReported > 0;
    }, 5_000, 200);

    const pingSent = ping.sent.length;
    const pingLossPercent = pingSent === 0 ? 100 : (100 * loss.lost) / pingSent;
    this.log(`Eve sent ${spoofedSent} spoofed frames; ${spoofedThrough} arrived anywhere. Her port's drops, as reported to the controller: ${eveDropsReported}.`);
    this.log(`Bob's pings: ${pingSent} sent, ${loss.lost} lost (${pingLossPercent.toFixed(2)} %): ${loss.before} before the switch-over, ${loss.at} at it, ${loss.after} after it${loss.offsets.length ? ` (sent at ${loss.offsets.join(", ")} ms from its start)` : ""}; the longest silence was ${loss.longestGapMs.toFixed(0)} ms.`);
    this.log(`Both dataplanes sampled ${samples.length} times: ${gapSamples} samples with Alice's rules on neither host, ${sourceGoneEarlySamples} with ${from} without them before the switch-over.`);
    return {
      from, to, spoofedThrough, spoofedSent, pingLossPercent, pingSent, pingLost: loss.lost, pingLostBefore: loss.before, pingLostAt: loss.at, pingLostAfter: loss.after,
      lostOffsetsMs: loss.offsets, longestPingGapMs: loss.longestGapMs, pingGapStartMs: loss.gapStartMs, switchOverMs, switchDurationMs, readyMs,
      destinationInstalledMs, sourceCleanMs, migrationEndedMs, migrateInMs: migrateIn.ms, migrateOutMs: migrateOut.ms, gapSamples, sourceGoneEarlySamples,
      samples: samples.length, repliesAfter, repliesAfter6, eveDropsReported,
    };
  }

  /** Stops every process, the agents and the controller; deletes the namespaces (and with them the tables) and files. */
  async cleanup(): Promise<void> {
    for (const p of [...this.processes]) p.close();
    await Promise.all([...this.processes].map((p) => Promise.race([p.exited, sleep(5_000)])));
    await this.controller?.close().catch(() => undefined);
    await this.lab.cleanup();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}
