// By hand, as root: node --import tsx bench/flood.ts [rounds]
//   environment: SECONDS (per measurement, default 5), FLOOD (spoofed frames/s, default 100000; 0: as fast as trafgen can),
//   LEGIT (Alice's frames/s, default 50000), FLOOD_CPU (default 1), LEGIT_CPU (default 0)
// Does a flood of spoofed frames from one port cost the agent more than a core, or the other ports
// their rate? A namespace "hypervisor" with a Linux bridge and three guests (Eve, Alice, Bob) behind
// veth pairs, protected at level full by a real agent process (vifguard agent, nftables driver in
// that namespace, a port file, events with frame sampling on). Alice sends LEGIT UDP frames/s to Bob
// (trafgen pinned to LEGIT_CPU); in the flood phase Eve also sends FLOOD frames/s with Alice's IPv4
// source (trafgen pinned to FLOOD_CPU), all dropped by ipv4-spoof and sampled to NFLOG (the kernel
// limits samples to 5/s per device and guard). Measured per phase: Bob's received frames/s, the
// agent's CPU (utime+stime of its process from /proc/PID/stat over the phase, in cores), and Eve's
// frames that reached the hypervisor. Phases alternate (the order reverses every other round).
// Prints markdown for bench/RESULTS.md; raw figures go to stderr as JSON. Removes everything it made.
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../src/host/run.ts";
import * as f from "../src/policy/frame-builder.ts";
import { median } from "./stats.ts";

const rounds = Number(process.argv[2] ?? "3");
const SECONDS = Number(process.env.SECONDS ?? 5);
const FLOOD = Number(process.env.FLOOD ?? 100_000);
const LEGIT = Number(process.env.LEGIT ?? 50_000);
const FLOOD_CPU = process.env.FLOOD_CPU ?? "1";
const LEGIT_CPU = process.env.LEGIT_CPU ?? "0";
const TICKS = 100; // USER_HZ: /proc/PID/stat counts clock ticks of 1/100 s on Linux

const id = Math.random().toString(36).slice(2, 6);
const p = `vgfl${id}`;
const hv = `${p}-hv`;
const GUESTS = [
  { name: "eve-0", ns: `${p}-e`, dev: `${p}-v0`, mac: "52:54:07:00:00:01", ip: "10.77.0.1" },
  { name: "alice-0", ns: `${p}-a`, dev: `${p}-v1`, mac: "52:54:07:00:00:02", ip: "10.77.0.2" },
  { name: "bob-0", ns: `${p}-b`, dev: `${p}-v2`, mac: "52:54:07:00:00:03", ip: "10.77.0.3" },
] as const;
const [EVE, ALICE, BOB] = GUESTS;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const hex2 = (n: number): string => (n & 0xff).toString(16).padStart(2, "0");
const trafgenConfig = (frame: Uint8Array): string => `{ ${[...frame].map((x) => `0x${hex2(x)}`).join(", ")} }\n`;

function trafgen(ns: string, cpu: string, config: string, rate: number, seconds: number): Promise<string> {
  return new Promise((resolve) => {
    execFile("timeout", ["-s", "INT", String(seconds), "ip", "netns", "exec", ns, "taskset", "-c", cpu, "trafgen", "-o", "eth0", "-i", config, "-P", "1", ...(rate > 0 ? ["-b", `${rate}pps`] : []), "-q", "-C", "-Q"], { timeout: (seconds + 30) * 1000 }, (_e, out, err) => resolve(`${out}${err}`));
  });
}

async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // after "pid (comm) "
  return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of the line)
}

async function counter(ns: string | undefined, dev: string, what: "rx_packets" | "tx_packets"): Promise<number> {
  return Number((await run("cat", [`/sys/class/net/${dev}/statistics/${what}`], ns ? { netns: ns } : {})).stdout.trim());
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), `${p}-`));
  let agent: ReturnType<typeof spawn> | undefined;
  try {
    await run("ip", ["netns", "add", hv]);
    await run("ip", ["link", "add", `${p}-br`, "type", "bridge", "mcast_snooping", "0"], { netns: hv });
    await run("ip", ["link", "set", `${p}-br`, "up"], { netns: hv });
    for (const family of ["iptables", "ip6tables", "arptables"]) await run("sysctl", ["-qw", `net.bridge.bridge-nf-call-${family}=0`], { netns: hv, allowFailure: true });
    for (const g of GUESTS) {
      await run("ip", ["netns", "add", g.ns]);
      await run("ip", ["link", "add", g.dev, "type", "veth", "peer", "name", "eth0", "netns", g.ns], { netns: hv });
      await run("sysctl", ["-qw", "net.ipv6.conf.all.disable_ipv6=1"], { netns: g.ns });
      await run("ip", ["link", "set", "eth0", "address", g.mac, "up"], { netns: g.ns });
      await run("ip", ["link", "set", g.dev, "master", `${p}-br`, "up"], { netns: hv });
    }
    const ports = { networks: [{ id: "public", tenant: "provider", shared: true }], ports: GUESTS.map((g) => ({ id: g.name, tenant: g.name.split("-")[0], network: "public", device: g.dev, mac: g.mac, ips: [g.ip] })) };
    await writeFile(join(work, "ports.json"), JSON.stringify(ports));
    const socket = join(work, "agent.sock");
    await writeFile(join(work, "agent.json"), JSON.stringify({ driver: { name: "nftables", netns: hv, prefix: p }, source: { file: join(work, "ports.json") }, stateDir: join(work, "state"), controlSocket: socket, listen: false, log: { level: "warn" }, failClosed: { enabled: false } }));
    const bin = new URL("../bin/vifguard", import.meta.url).pathname;
    agent = spawn(bin, ["agent", "--config", join(work, "agent.json")], { stdio: ["ignore", "ignore", "inherit"] });
    for (let i = 0; ; i++) {
      const table = await run("nft", ["list", "tables"], { netns: hv, allowFailure: true });
      if (table.stdout.includes(p)) break;
      if (i > 100 || agent.exitCode !== null) throw new Error(`the agent did not install its table (exit ${agent.exitCode})`);
      await sleep(200);
    }
    await sleep(1000);

    const legitFile = join(work, "legit.cfg");
    const floodFile = join(work, "flood.cfg");
    const helloFile = join(work, "hello.cfg");
    await writeFile(legitFile, trafgenConfig(f.ether(BOB.mac, ALICE.mac, 0x0800, f.udp4(ALICE.ip, BOB.ip, 1234, 9, new Uint8Array(18)))));
    await writeFile(floodFile, trafgenConfig(f.ether(BOB.mac, EVE.mac, 0x0800, f.udp4(ALICE.ip, BOB.ip, 1234, 9, new Uint8Array(18))))); // Alice's address from Eve's port
    await writeFile(helloFile, trafgenConfig(f.ether(ALICE.mac, BOB.mac, 0x0800, f.udp4(BOB.ip, ALICE.ip, 1234, 9, new Uint8Array(18)))));
    await run("ip", ["netns", "exec", BOB.ns, "trafgen", "-o", "eth0", "-i", helloFile, "-n", "3", "-q", "-C", "-Q"]); // the bridge learns Bob's port

    type Figure = { phase: "quiet" | "flood"; legitPps: number; agentCores: number; floodPps: number };
    const figures: Figure[] = [];
    const measure = async (phase: Figure["phase"]): Promise<Figure> => {
      const [rx0, eve0, cpu0, t0] = [await counter(BOB.ns, "eth0", "rx_packets"), await counter(hv, EVE.dev, "rx_packets"), await cpuTicks(agent!.pid!), performance.now()];
      await Promise.all([trafgen(ALICE.ns, LEGIT_CPU, legitFile, LEGIT, SECONDS), ...(phase === "flood" ? [trafgen(EVE.ns, FLOOD_CPU, floodFile, FLOOD, SECONDS)] : [])]);
      const [rx1, eve1, cpu1, t1] = [await counter(BOB.ns, "eth0", "rx_packets"), await counter(hv, EVE.dev, "rx_packets"), await cpuTicks(agent!.pid!), performance.now()];
      const s = (t1 - t0) / 1000;
      return { phase, legitPps: (rx1 - rx0) / SECONDS, agentCores: (cpu1 - cpu0) / TICKS / s, floodPps: (eve1 - eve0) / SECONDS };
    };
    for (let r = 0; r < rounds; r++) {
      const order: Figure["phase"][] = r % 2 === 0 ? ["quiet", "flood"] : ["flood", "quiet"];
      for (const phase of order) {
        const fig = await measure(phase);
        figures.push(fig);
        console.error(JSON.stringify({ round: r + 1, ...fig }));
        await sleep(1000);
      }
    }
    await sleep(2500); // one events interval, so the last counts are in
    const events = await new Promise<string>((resolve) => execFile(bin, ["events", "--socket", socket], (_e, out, err) => resolve(`${out}${err}`.trim())));
    const dropped = (await run("nft", ["list", "table", "bridge", p], { netns: hv, allowFailure: true })).stdout.length > 0;

    const med = (phase: Figure["phase"], k: "legitPps" | "agentCores" | "floodPps"): number => median(figures.filter((x) => x.phase === phase).map((x) => x[k]));
    const kpps = (n: number): string => `${(n / 1000).toFixed(1)}k`;
    const load = (await run("cat", ["/proc/loadavg"])).stdout.split(" ").slice(0, 3).join(" ");
    console.log([
      `| phase | Eve's spoofed frames/s reaching the hypervisor | Bob's received frames/s (Alice sends ${kpps(LEGIT)}) | agent CPU (cores) |`,
      "|---|---|---|---|",
      `| no flood | ${kpps(med("quiet", "floodPps"))} | ${kpps(med("quiet", "legitPps"))} | ${med("quiet", "agentCores").toFixed(3)} |`,
      `| flood | ${kpps(med("flood", "floodPps"))} | ${kpps(med("flood", "legitPps"))} | ${med("flood", "agentCores").toFixed(3)} |`,
      "",
      `Medians of ${rounds} rounds of ${SECONDS} s per phase, phases alternating. Legit rate under flood / without: ${(med("flood", "legitPps") / med("quiet", "legitPps")).toFixed(3)}. Table still present after the flood: ${dropped}. Load average at the end ${load}.`,
      "",
      "`vifguard events` on the agent afterwards:",
      "",
      "```text",
      events,
      "```",
    ].join("\n"));
  } finally {
    if (agent && agent.exitCode === null) {
      agent.kill("SIGTERM");
      await new Promise((r) => agent!.once("exit", r));
    }
    for (const ns of [hv, ...GUESTS.map((g) => g.ns)]) await run("ip", ["netns", "del", ns], { allowFailure: true });
    await rm(work, { recursive: true, force: true });
  }
}

await main();
