// By hand, as root: node --import tsx bench/packet-rate.ts [sizes] [rounds] [modes] [mixes]
//   defaults: 10,1000,10000  3  none,yardstick,nftables,bpf,ovs-normal,ovs  udp4,udp6,arp,nd
//   environment: SECONDS (per measurement, default 3), CPU (trafgen's CPU, default 1)
// The packet rate from guest a to guest b with a kernel-speed sender: trafgen (netsniff-ng) pinned to
// one CPU sends one frame over and over for SECONDS from a's eth0; frames are counted at b's eth0
// (its rx_packets). a and b sit behind veth pairs in a "hypervisor" namespace; N ports means N ports
// protected at level full (one IPv4 and one IPv6 address each), a and b among them, and N devices
// there: a, b and N-2 tap devices (no VM behind them), 1,000 per Linux bridge (a bridge takes 1,024
// ports).
// Modes, interleaved within each round (the order reverses every other round, so drift is shared):
//   none        Linux bridge, no filter
//   yardstick   Linux bridge + bench/bpf/yardstick.bpf.c (TC-BPF, built with clang here): one hash
//               lookup at a's tap ingress, one at b's tap egress, N ports in its maps
//   nftables    Linux bridge + vifguard's nftables table with the N ports
//   bpf         Linux bridge + vifguard's bpf driver (src/drivers/bpf) with the N ports: its program on
//               all N taps (ingress and egress), N ports in its maps
//   ovs-normal  a's and b's taps on a userspace OVS bridge (netdev datapath) with only NORMAL
//   ovs         the same bridge + vifguard's OVS flows for the N ports
// Mixes (frames a → b, all allowed): udp4 (60 bytes), udp6 (62, the least UDP over IPv6 takes),
// arp (a unicast reply, padded to 60), nd (a solicited NA for a's address with its TLL option, 86).
// Each filtered mode is also checked to drop: in round 1 a spoofed IPv4 source for 1 s must not
// arrive. Prints markdown for bench/RESULTS.md; the raw per-round figures go to stderr as JSON.
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createBpfDriver } from "../src/drivers/bpf/index.ts";
import { createNftablesDriver } from "../src/drivers/nftables/index.ts";
import { readLinks } from "../src/host/links.ts";
import { createOvsDriver } from "../src/drivers/ovs/index.ts";
import { sandboxPrefix, startOvsSandbox } from "../src/drivers/ovs/sandbox.ts";
import { run } from "../src/host/run.ts";
import { parsePortFile } from "../src/model/port-file.ts";
import * as f from "../src/policy/frame-builder.ts";
import { portPolicies, type PlacedPolicy } from "../src/policy/port-policy.ts";
import { median } from "./stats.ts";
import { placeAsNamed } from "../src/agent/device-match.ts";

const arg = (i: number, d: string): string => process.argv[i] ?? d;
const sizes = arg(2, "10,1000,10000").split(",").map(Number);
const rounds = Number(arg(3, "3"));
const MODES = ["none", "yardstick", "nftables", "bpf", "ovs-normal", "ovs"] as const;
type Mode = (typeof MODES)[number];
const modes = arg(4, MODES.join(",")).split(",") as Mode[];
const MIXES = ["udp4", "udp6", "arp", "nd"] as const;
type Mix = (typeof MIXES)[number];
const mixes = arg(5, MIXES.join(",")).split(",") as Mix[];
for (const m of modes) if (!MODES.includes(m)) throw new Error(`mode ${m}: expected one of ${MODES.join(", ")}`);
for (const m of mixes) if (!MIXES.includes(m)) throw new Error(`mix ${m}: expected one of ${MIXES.join(", ")}`);
const SECONDS = Number(process.env.SECONDS ?? 3);
const CPU = process.env.CPU ?? "1";
const PER_BRIDGE = 1000;

const hex2 = (n: number): string => (n & 0xff).toString(16).padStart(2, "0");
const macOf = (i: number): string => `52:54:03:${hex2((i + 1) >> 16)}:${hex2((i + 1) >> 8)}:${hex2(i + 1)}`;
const ip4Of = (i: number): string => `10.${100 + (((i + 1) >> 16) & 0xff)}.${((i + 1) >> 8) & 0xff}.${(i + 1) & 0xff}`;
const ip6Of = (i: number): string => `2001:db8::${(i + 1).toString(16)}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const prefix = sandboxPrefix("vgpr"); // e.g. vgpr-k3x9: names the namespaces, devices, table and bridges
const dev = (i: number): string => (i < 2 ? `${prefix}-v${i}` : `${prefix}d${i}`);
const bridgeOf = (i: number): string => `${prefix}-b${Math.floor(i / PER_BRIDGE)}`;

function policiesFor(n: number): PlacedPolicy[] {
  const ports = Array.from({ length: n }, (_, i) => ({
    id: `p${i}`,
    tenant: `t${i}`,
    network: "public",
    device: dev(i),
    mac: macOf(i),
    ips: [ip4Of(i), ip6Of(i)],
  }));
  return placeAsNamed(portPolicies(parsePortFile(JSON.stringify({ networks: [{ id: "public", tenant: "provider", shared: true }], ports }), "bench")));
}

function frameOf(mix: Mix | "spoof" | "hello"): Uint8Array {
  const [a, b] = [0, 1];
  const pad = (x: Uint8Array): Uint8Array => (x.length >= 60 ? x : f.withTrailer(x, new Uint8Array(60 - x.length)));
  switch (mix) {
    case "udp4":
      return f.ether(macOf(b), macOf(a), 0x0800, f.udp4(ip4Of(a), ip4Of(b), 1234, 9, new Uint8Array(18)));
    case "hello": // b → a, so that the bridge learns b's MAC (else every frame to b floods to all ports)
      return f.ether(macOf(a), macOf(b), 0x0800, f.udp4(ip4Of(b), ip4Of(a), 1234, 9, new Uint8Array(18)));
    case "spoof":
      return f.ether(macOf(b), macOf(a), 0x0800, f.udp4("10.99.99.99", ip4Of(b), 1234, 9, new Uint8Array(18)));
    case "udp6":
      return f.ether(macOf(b), macOf(a), 0x86dd, f.udp6(ip6Of(a), ip6Of(b), 1234, 9, new Uint8Array(0)));
    case "arp":
      return pad(f.ether(macOf(b), macOf(a), 0x0806, f.arp({ op: 2, sha: macOf(a), spa: ip4Of(a), tha: macOf(b), tpa: ip4Of(b) })));
    case "nd":
      return f.ether(macOf(b), macOf(a), 0x86dd, f.neighborAdvertisement({ src: ip6Of(a), dst: ip6Of(b), target: ip6Of(a), flags: 0x60, options: [f.tll(macOf(a))] }));
  }
}

const trafgenConfig = (frame: Uint8Array): string => `{ ${[...frame].map((x) => `0x${hex2(x)}`).join(", ")} }\n`;

/** Runs a command for `seconds` (then SIGINT, as trafgen expects: it prints its counts on exit). */
function runFor(cmd: string, args: string[], seconds: number): Promise<string> {
  return new Promise((resolve) => {
    execFile("timeout", ["-s", "INT", String(seconds), cmd, ...args], { timeout: (seconds + 30) * 1000 }, (_e, stdout, stderr) => resolve(`${stdout}${stderr}`));
  });
}

async function main(): Promise<void> {
  const started = Date.now();
  const work = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const sandbox = await startOvsSandbox({ prefix });
  const hv = sandbox.netns;
  const guests = [`${prefix}-a`, `${prefix}-b`];
  const bpffs = join(work, "bpffs");
  let mounted = false;
  const ovsBridge = `${prefix}-ob`;
  const maxN = Math.max(...sizes);
  const bridgeCount = Math.ceil(maxN / PER_BRIDGE);
  const nft = createNftablesDriver({ netns: hv, prefix: prefix.replace("-", "_") });
  const bpf = createBpfDriver({ netns: hv, prefix, bpffs, cacheDir: join(work, "bpf-cache") });
  const ovs = createOvsDriver({ bridge: ovsBridge, runDir: sandbox.runDir, tableBase: 0, prefix });
  try {
    // The bridges, the two guests and the other ports' taps (one `ip -batch`).
    const batch: string[] = [];
    for (let k = 0; k < bridgeCount; k++) batch.push(`link add ${prefix}-b${k} type bridge mcast_snooping 0`, `link set ${prefix}-b${k} up`);
    for (let i = 2; i < maxN; i++) batch.push(`tuntap add dev ${dev(i)} mode tap`, `link set ${dev(i)} master ${bridgeOf(i)} up`);
    await writeFile(join(work, "links.batch"), batch.join("\n") + "\n");
    const t0 = performance.now();
    await run("ip", ["-batch", join(work, "links.batch")], { netns: hv, timeoutMs: 600_000 });
    console.error(`${maxN - 2} tap ports on ${bridgeCount} bridge(s) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    for (const [i, g] of guests.entries()) {
      await run("ip", ["netns", "add", g]);
      await run("ip", ["link", "add", dev(i), "type", "veth", "peer", "name", "eth0", "netns", g], { netns: hv });
      await run("sysctl", ["-qw", "net.ipv6.conf.all.disable_ipv6=1"], { netns: g }); // no kernel chatter
      await run("ip", ["link", "set", "eth0", "address", macOf(i), "up"], { netns: g });
      await run("ip", ["link", "set", dev(i), "master", bridgeOf(0), "up"], { netns: hv });
    }
    // br_netfilter (loaded on this host by other software) would send every bridged frame through the
    // iptables hooks too; off in this namespace, so the figures are the bridge and the filter alone.
    for (const family of ["iptables", "ip6tables", "arptables"]) await run("sysctl", ["-qw", `net.bridge.bridge-nf-call-${family}=0`], { netns: hv, allowFailure: true });
    const ifindex = new Map<string, number>();
    for (const l of JSON.parse((await run("ip", ["-j", "link", "show"], { netns: hv })).stdout) as { ifname: string; ifindex: number }[]) ifindex.set(l.ifname, l.ifindex);

    // The yardstick, built here with clang; its programs and maps pinned in a private bpffs.
    const here = dirname(fileURLToPath(import.meta.url));
    const object = join(work, "yardstick.bpf.o");
    const arch = (await run("uname", ["-m"])).stdout.trim();
    await run("clang", ["-O2", "-g", "-target", "bpf", `-I/usr/include/${arch}-linux-gnu`, "-c", join(here, "bpf", "yardstick.bpf.c"), "-o", object]);
    await run("mkdir", ["-p", bpffs]);
    await run("mount", ["-t", "bpf", "bpf", bpffs]);
    mounted = true;
    const inHv = (args: string[]): Promise<unknown> => run("nsenter", [`--net=/run/netns/${hv}`, ...args]); // keeps our mount namespace (the bpffs)
    const le32 = (n: number): string => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff].map(hex2).join(" ");
    const bytes = (b: Uint8Array): string => [...b].map(hex2).join(" ");
    async function yardstickOn(n: number): Promise<void> {
      await rm(join(bpffs, "prog"), { recursive: true, force: true });
      await rm(join(bpffs, "maps"), { recursive: true, force: true });
      await run("bpftool", ["prog", "loadall", object, join(bpffs, "prog"), "pinmaps", join(bpffs, "maps"), "type", "classifier"]);
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        const head = `${le32(ifindex.get(dev(i))!)} ${bytes(f.mac(macOf(i)))} 00 00`;
        lines.push(`map update pinned ${join(bpffs, "maps", "yard_v4")} key hex ${head} ${bytes(f.ip(ip4Of(i)))} value hex 01`);
        lines.push(`map update pinned ${join(bpffs, "maps", "yard_v6")} key hex ${head} ${bytes(f.ip(ip6Of(i)))} value hex 01`);
        lines.push(`map update pinned ${join(bpffs, "maps", "yard_mac")} key hex ${head} value hex 01`);
      }
      await writeFile(join(work, "maps.batch"), lines.join("\n") + "\n");
      await run("bpftool", ["batch", "file", join(work, "maps.batch")], { timeoutMs: 600_000 });
      await inHv(["tc", "qdisc", "replace", "dev", dev(0), "clsact"]);
      await inHv(["tc", "filter", "replace", "dev", dev(0), "ingress", "bpf", "da", "pinned", join(bpffs, "prog", "from_vm")]);
      await inHv(["tc", "qdisc", "replace", "dev", dev(1), "clsact"]);
      await inHv(["tc", "filter", "replace", "dev", dev(1), "egress", "bpf", "da", "pinned", join(bpffs, "prog", "to_vm")]);
    }
    async function yardstickOff(): Promise<void> {
      for (const i of [0, 1]) await run("tc", ["qdisc", "del", "dev", dev(i), "clsact"], { netns: hv, allowFailure: true });
    }

    // OVS: a and b move to the OVS bridge for the ovs modes; the other N-2 ports get ofports of their own
    // (flows need no device); compile() uses a's and b's real ofports.
    console.error("yardstick built; starting the drivers");
    await sandbox.addBridge(ovsBridge);
    await ovs.probe();
    await nft.probe();
    if (modes.includes("bpf")) await bpf.probe();
    console.error("drivers ready; measuring");
    async function toOvs(): Promise<void> {
      for (const i of [0, 1]) {
        await run("ip", ["link", "set", dev(i), "nomaster"], { netns: hv });
        await sandbox.vsctl("add-port", ovsBridge, dev(i));
      }
      await sleep(500);
    }
    async function toLinux(): Promise<void> {
      for (const i of [0, 1]) {
        await sandbox.vsctl("del-port", ovsBridge, dev(i));
        await run("ip", ["link", "set", dev(i), "master", bridgeOf(0), "up"], { netns: hv });
      }
      await sleep(200);
    }
    async function ovsOn(n: number): Promise<void> {
      // Ports beyond the two real ones need not exist for flows: give them made-up OpenFlow port numbers.
      const real = new Map((await ovs.observe()).devices.map((d) => [d.name, d.ofport]));
      const devices = Array.from({ length: n }, (_, i) => ({ name: dev(i), ofport: real.get(dev(i)) ?? 1000 + i }));
      const units = [...ovs.compile(policiesFor(n), devices).values()];
      for (let i = 0; i < units.length; i += 1000) await ovs.apply({ add: units.slice(i, i + 1000), remove: [] });
    }

    const configs = new Map<Mix | "spoof" | "hello", string>();
    for (const mix of [...mixes, "spoof", "hello"] as const) {
      const file = join(work, `${mix}.cfg`);
      await writeFile(file, trafgenConfig(frameOf(mix)));
      configs.set(mix, file);
    }
    const rx = async (): Promise<number> => Number((await run("cat", ["/sys/class/net/eth0/statistics/rx_packets"], { netns: guests[1]! })).stdout.trim());
    async function measure(mix: Mix | "spoof", seconds = SECONDS): Promise<{ pps: number; sent: number }> {
      const before = await rx();
      const out = await runFor("ip", ["netns", "exec", guests[0]!, "taskset", "-c", CPU, "trafgen", "-o", "eth0", "-i", configs.get(mix)!, "-P", "1", "-q", "-C", "-Q"], seconds);
      await sleep(200);
      const got = (await rx()) - before;
      return { pps: got / seconds, sent: Number(/(\d+) packets outgoing/.exec(out)?.[1] ?? NaN) };
    }

    // rates[mode][n][mix] = per-round kpps; rounds' order reverses every other round.
    const rates = new Map<string, number[]>();
    const at = (mode: Mode, n: number, mix: Mix): number[] => {
      const k = `${mode} ${n} ${mix}`;
      if (!rates.has(k)) rates.set(k, []);
      return rates.get(k)!;
    };
    const spoofChecks: string[] = [];
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [...modes].reverse() : modes;
      for (const n of sizes) {
        for (const mode of order) {
          if (mode === "yardstick") await yardstickOn(n);
          if (mode === "nftables") await nft.apply({ add: [...nft.compile(policiesFor(n), []).values()], remove: [] });
          if (mode === "bpf") {
            const t1 = performance.now();
            await bpf.apply({ add: [...bpf.compile(policiesFor(n), await readLinks(hv)).values()], remove: [] });
            console.error(`bpf: ${n} ports installed in ${(performance.now() - t1).toFixed(0)} ms (maps batch ${bpf.lastBatchMs.toFixed(0)} ms)`);
            // A one-port change with N installed (the last port to level mac and back), as the agent makes it.
            const last = policiesFor(n).at(-1)!;
            const devices = await readLinks(hv);
            for (const level of ["mac", "full"] as const) {
              const t2 = performance.now();
              await bpf.apply({ add: [...bpf.compile([{ ...last, level }], devices).values()], remove: [] });
              console.error(`bpf: one-port change (to ${level}) with ${n} installed in ${(performance.now() - t2).toFixed(0)} ms`);
            }
          }
          if (mode === "ovs-normal" || mode === "ovs") await toOvs();
          if (mode === "ovs") await ovsOn(n);
          // b speaks first: a bridge that has not learnt b's MAC floods every frame to all N ports.
          await run("ip", ["netns", "exec", guests[1]!, "trafgen", "-o", "eth0", "-i", configs.get("hello")!, "-n", "3", "-q", "-C", "-Q"]);
          await sleep(100);
          for (const mix of mixes) {
            const { pps, sent } = await measure(mix);
            at(mode, n, mix).push(pps / 1000);
            console.error(`round ${r + 1} n=${n} ${mode} ${mix}: ${(pps / 1000).toFixed(0)} kpps received, ${(sent / SECONDS / 1000).toFixed(0)} kpps sent`);
          }
          if (r === 0 && mode !== "none" && mode !== "ovs-normal") {
            const spoof = await measure("spoof", 1);
            spoofChecks.push(`${mode} at ${n} ports: ${spoof.sent} spoofed frames sent, ${Math.round(spoof.pps)} arrived`);
            // A few frames may be the bridge's own multicast chatter (IPv6 on in the hypervisor namespace), which b counts too.
            if (spoof.pps > 10) throw new Error(`${mode} at ${n} ports let a spoofed IPv4 source through (${spoof.pps} of ${spoof.sent} arrived): the bench measures nothing`);
          }
          if (mode === "yardstick") await yardstickOff();
          if (mode === "nftables") await nft.removeAll();
          if (mode === "bpf") await bpf.removeAll();
          if (mode === "ovs") {
            await ovs.removeAll(); // with tableBase 0 that takes table 0's NORMAL flow too: put it back
            await sandbox.ofctl("add-flow", ovsBridge, "priority=0,actions=NORMAL");
          }
          if (mode === "ovs-normal" || mode === "ovs") await toLinux();
        }
      }
    }

    // Tables: per mix, rows per N; a share is computed per round (mode / reference in the same round),
    // then the median and the range over the rounds.
    const k = (xs: number[]): string => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
    const share = (xs: number[], of: number[]): string => {
      const s = xs.map((x, i) => x / of[i]!);
      return `${median(s).toFixed(2)}× (${Math.min(...s).toFixed(2)}–${Math.max(...s).toFixed(2)})`;
    };
    const has = (m: Mode): boolean => modes.includes(m);
    const lines: string[] = [
      `Host: ${(await run("uname", ["-r"])).stdout.trim()}, ${(await run("nft", ["--version"])).stdout.trim()}, ${(await run("ovs-vswitchd", ["--version"])).stdout.split("\n")[0]}; trafgen on CPU ${CPU}; ${rounds} rounds of ${SECONDS} s per figure, modes interleaved (order reversed every other round); load average at the end ${(await run("cat", ["/proc/loadavg"])).stdout.split(" ").slice(0, 3).join(" ")}; ${((Date.now() - started) / 60000).toFixed(1)} min in all.`,
      "kpps received at b: median (min–max over the rounds); shares are per round (same round's reference), median (min–max).",
      "",
    ];
    for (const mix of mixes) {
      lines.push(`**${mix}** (${frameOf(mix).length}-byte frames)`, "");
      const head = ["ports"];
      if (has("none")) head.push("no filter");
      if (has("yardstick")) head.push("yardstick (TC-BPF)", "yardstick / none");
      if (has("nftables")) head.push("nftables", "nftables / none", "nftables / yardstick");
      if (has("bpf")) head.push("bpf", "bpf / none", "**bpf / yardstick**");
      if (has("bpf") && has("nftables")) head.push("bpf / nftables");
      if (has("ovs-normal")) head.push("OVS NORMAL");
      if (has("ovs")) head.push("OVS vifguard", "OVS / OVS NORMAL", "OVS / none", "OVS / yardstick");
      lines.push(`| ${head.join(" | ")} |`, `|${head.map(() => "---:").join("|")}|`);
      for (const n of sizes) {
        const row = [n.toLocaleString("en")];
        const none = at("none", n, mix);
        const yard = at("yardstick", n, mix);
        if (has("none")) row.push(k(none));
        if (has("yardstick")) row.push(k(yard), has("none") ? share(yard, none) : "");
        if (has("nftables")) row.push(k(at("nftables", n, mix)), has("none") ? share(at("nftables", n, mix), none) : "", has("yardstick") ? share(at("nftables", n, mix), yard) : "");
        if (has("bpf")) row.push(k(at("bpf", n, mix)), has("none") ? share(at("bpf", n, mix), none) : "", has("yardstick") ? `**${share(at("bpf", n, mix), yard)}**` : "");
        if (has("bpf") && has("nftables")) row.push(share(at("bpf", n, mix), at("nftables", n, mix)));
        if (has("ovs-normal")) row.push(k(at("ovs-normal", n, mix)));
        if (has("ovs")) row.push(k(at("ovs", n, mix)), has("ovs-normal") ? share(at("ovs", n, mix), at("ovs-normal", n, mix)) : "", has("none") ? share(at("ovs", n, mix), none) : "", has("yardstick") ? share(at("ovs", n, mix), yard) : "");
        lines.push(`| ${row.join(" | ")} |`);
      }
      lines.push("");
    }
    lines.push("Per round (kpps, udp4 or the first mix), to show the drift:", "");
    lines.push("| ports | mode | " + Array.from({ length: rounds }, (_, r) => `round ${r + 1}`).join(" | ") + " |", "|---:|---|" + "---:|".repeat(rounds));
    for (const n of sizes) for (const mode of modes) lines.push(`| ${n.toLocaleString("en")} | ${mode} | ${at(mode, n, mixes[0]!).map((x) => x.toFixed(0)).join(" | ")} |`);
    lines.push("", "Drop check (round 1, 1 s of a spoofed IPv4 source): " + spoofChecks.join("; ") + ".");
    console.log(lines.join("\n"));
    console.error(JSON.stringify(Object.fromEntries(rates)));
  } finally {
    nft.close();
    await sandbox.stop().catch(() => undefined); // deletes the hypervisor namespace with its bridges and taps
    for (const g of guests) await run("ip", ["netns", "del", g], { allowFailure: true });
    if (mounted) await run("umount", [bpffs], { allowFailure: true });
    await rm(work, { recursive: true, force: true });
  }
}

await main();
