// By hand, as root: npx tsx bench/libvirt.ts [N ...]   (default 10 100)
// Side by side, for N ports at level full (one IPv4 and one IPv6 address each), on one host:
//   vifguard's libvirt driver   install (one apply: one virsh session), change one port (its filter
//                               redefined in place), observe(), removeAll()
//   libvirt's stock clean-traffic install (one virsh session), one port (delete + create: the only
//                               way to change a binding), remove
//   vifguard's nftables driver  install, change one port, removeAll (root-namespace table)
// and the packet rate between two guests through a root-namespace bridge with each of the three
// installed, against no filter before and after. The two guests' ports are bound last, so every
// frame passes the jumps of all other N-2 devices that libvirt puts in ebtables' PREROUTING and
// POSTROUTING chains. Devices are veth pairs with a per-run prefix, removed at the end.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planSync } from "../src/agent/converge.ts";
import { createLibvirtDriver, ensureLibvirtd } from "../src/drivers/libvirt/index.ts";
import { createNftablesDriver } from "../src/drivers/nftables/index.ts";
import { Lab } from "../src/conformance/lab/lab.ts";
import { run } from "../src/host/run.ts";
import * as f from "../src/policy/frame-builder.ts";
import { parsePortFile } from "../src/model/port-file.ts";
import { portPolicies, type PortPolicy } from "../src/policy/port-policy.ts";

const URI = "nwfilter:///system";
const sizes = process.argv.slice(2).map(Number).filter((n) => n >= 2);
const SECONDS = 3;
const RUNS = 3;
const ms = (t0: number): number => Math.round(performance.now() - t0);
const hex2 = (n: number): string => (n & 0xff).toString(16).padStart(2, "0");
const macOf = (i: number): string => `52:54:02:${hex2(i >> 16)}:${hex2(i >> 8)}:${hex2(i)}`;
const ipOf = (i: number): string => `10.${100 + ((i >> 16) & 0xff)}.${(i >> 8) & 0xff}.${i & 0xff}`;

import { median } from "./stats.ts";

async function virsh(commands: string[]): Promise<void> {
  const r = await run("virsh", ["-q", "-c", URI], { input: commands.join("\n") + "\n", timeoutMs: 4 * 3_600_000 });
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  if (errors.length > 0) throw new Error(errors.slice(0, 4).join("\n"));
}

function randomUuid(): string {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

type Bench = { lab: Lab; id: string; devices: string[]; guests: [string, string]; policies: PortPolicy[] };

/** N devices; the last two are the guests a and b (the one lab's guests on a root-namespace bridge), the others bare veth pairs. */
async function startLab(n: number): Promise<Bench> {
  const lab = new Lab("vgb", `vgb${randomBytes(2).toString("hex")}`);
  const id = lab.id;
  const devices = Array.from({ length: n }, (_, i) => (i === n - 2 ? `${id}a` : i === n - 1 ? `${id}b` : `${id}d${i}`));
  const bare = devices.slice(0, n - 2);
  lab.onCleanup(async () => {
    for (const d of bare) await run("ip", ["link", "del", d], { allowFailure: true });
  });
  await lab.bridge(undefined, `${id}br`);
  for (const d of bare) await run("ip", ["link", "add", d, "type", "veth", "peer", "name", `${d}p`]);
  for (const i of [n - 2, n - 1]) await lab.guest({ netns: lab.ns(i === n - 2 ? "a" : "b"), device: devices[i]!, bridge: `${id}br`, mac: macOf(i), ipv4: `${ipOf(i)}/16`, noIpv6: true });
  // Ports sort by id in a batch: the guests' ids sort last, so their jumps come after all others.
  const ports = devices.map((d, i) => ({ id: i >= n - 2 ? `zz-${i}` : `p${String(i).padStart(6, "0")}`, tenant: "t", network: "net", device: d, mac: macOf(i), ips: [ipOf(i), `2001:db8::${(i + 1).toString(16)}`] }));
  const policies = portPolicies(parsePortFile(JSON.stringify({ networks: [{ id: "net", tenant: "t", shared: true }], ports }), "bench"));
  return { lab, id, devices, guests: [lab.ns("a"), lab.ns("b")], policies };
}

async function stopLab(bench: Bench): Promise<void> {
  await bench.lab.cleanup();
}

/** Packets per second received by guest b from guest a (median of RUNS runs of SECONDS; the lab's sender, as fast as it can). */
async function packetRate(bench: Bench): Promise<number> {
  const [a, b] = bench.guests;
  const n = bench.devices.length;
  const frame = f.ether(macOf(n - 1), macOf(n - 2), 0x0800, f.udp4(ipOf(n - 2), ipOf(n - 1), 9, 9, new Uint8Array(18)));
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const rx = async (): Promise<number> => Number((await run("cat", ["/sys/class/net/eth0/statistics/rx_packets"], { netns: b })).stdout.trim());
    const before = await rx();
    const blast = bench.lab.stream(a, [frame], { count: 0, gapMs: 0 });
    await blast.ready;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    await blast.stop();
    const seconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 200));
    rates.push(((await rx()) - before) / seconds);
  }
  return median(rates);
}

/** The policies with one more IPv4 address on the first port (a change of one port). */
function withChangedPort(policies: readonly PortPolicy[]): PortPolicy[] {
  return policies.map((p, i) => (i === 0 ? { ...p, bindings: [...p.bindings, { mac: p.macs[0]!, prefix: { family: 4 as const, bytes: Uint8Array.from([10, 255, 0, 1]), length: 32, text: "10.255.0.1" } }] } : p));
}

async function bench(n: number): Promise<Record<string, number>> {
  const lab = await startLab(n);
  const dir = await mkdtemp(join(tmpdir(), "vgb-"));
  const out: Record<string, number> = {};
  const libvirt = createLibvirtDriver({ prefix: lab.id });
  const nft = createNftablesDriver({ prefix: lab.id });
  // Each step also prints what was measured so far: a run cut short (1,000 ports take over an hour) keeps its figures.
  const step = (what: string): void => console.error(`[${n} ports] ${what}  so far: ${JSON.stringify(out)}`);
  try {
    step("no filter: packet rate");
    out.noneBeforePps = await packetRate(lab);

    step("nftables: install, packet rate, one port, removeAll");
    let t0 = performance.now();
    await nft.apply((await planSync(nft, lab.policies)).changes);
    out.nftInstallMs = ms(t0);
    out.nftPps = await packetRate(lab);
    const nftPlan = (await planSync(nft, withChangedPort(lab.policies))).changes;
    out.nftOnePortMs = Math.round((await nft.apply(nftPlan)).durationMs);
    t0 = performance.now();
    await nft.removeAll();
    out.nftRemoveAllMs = ms(t0);
    nft.close?.();

    step("vifguard libvirt: install (one virsh session for every port)");
    t0 = performance.now();
    await libvirt.apply((await planSync(libvirt, lab.policies)).changes);
    out.vifguardInstallMs = ms(t0);
    step("vifguard libvirt: packet rate, observe, one port, removeAll");
    out.vifguardPps = await packetRate(lab);
    t0 = performance.now();
    await libvirt.observe();
    out.vifguardObserveMs = ms(t0);
    t0 = performance.now();
    await libvirt.apply((await planSync(libvirt, withChangedPort(lab.policies))).changes);
    out.vifguardOnePortMs = ms(t0);
    t0 = performance.now();
    await libvirt.removeAll();
    out.vifguardRemoveAllMs = ms(t0);

    // The same devices as stock clean-traffic bindings (IPv4 + MAC + ARP only: no IPv6, RA or DHCP guards).
    step("clean-traffic: install (one virsh session)");
    const files = await Promise.all(
      lab.policies.map(async (p, i) => {
        const path = join(dir, `${p.port}.xml`);
        const xml = `<filterbinding><owner><name>${lab.id}-ct-${i}</name><uuid>${randomUuid()}</uuid></owner><portdev name='${p.device}'/><mac address='${p.macs[0]}'/><filterref filter='clean-traffic'><parameter name='IP' value='${ipOf(i)}'/></filterref></filterbinding>`;
        await writeFile(path, xml);
        return path;
      }),
    );
    t0 = performance.now();
    await virsh(files.map((f) => `nwfilter-binding-create ${f}`));
    out.cleanTrafficInstallMs = ms(t0);
    step("clean-traffic: packet rate, one port, remove");
    out.cleanTrafficPps = await packetRate(lab);
    t0 = performance.now();
    await virsh([`nwfilter-binding-delete ${lab.devices[0]}`, `nwfilter-binding-create ${files[0]}`]);
    out.cleanTrafficOnePortMs = ms(t0);
    t0 = performance.now();
    await virsh(lab.devices.map((d) => `nwfilter-binding-delete ${d}`));
    out.cleanTrafficRemoveMs = ms(t0);

    step("no filter: packet rate again");
    out.noneAfterPps = await packetRate(lab);
  } finally {
    await run("sh", ["-c", `virsh -q -c ${URI} nwfilter-binding-list | awk '$1 ~ /^${lab.id}/ {print "nwfilter-binding-delete " $1}' | virsh -q -c ${URI} >/dev/null 2>&1`], { allowFailure: true });
    await libvirt.removeAll().catch(() => undefined);
    await nft.removeAll().catch(() => undefined);
    nft.close?.();
    await stopLab(lab);
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

await ensureLibvirtd();
const results: Array<[number, Record<string, number>]> = [];
for (const n of sizes.length > 0 ? sizes : [10, 100]) {
  const r = await bench(n);
  console.error(n, JSON.stringify(r));
  results.push([n, r]);
}
const s = (x: number | undefined): string => (x === undefined ? "–" : x >= 10_000 ? `${(x / 1000).toFixed(0)} s` : x >= 1000 ? `${(x / 1000).toFixed(1)} s` : `${x} ms`);
const kpps = (x: number | undefined): string => (x === undefined ? "–" : `${(x / 1000).toFixed(0)} kpps`);
const pct = (x: number, of: number): string => `${((x / of) * 100).toFixed(1)} %`;
console.log("| ports | vifguard libvirt install | clean-traffic install | nftables install | vifguard libvirt one port (in place) | clean-traffic one port (delete + create) | nftables one port | vifguard libvirt observe() | vifguard libvirt removeAll | clean-traffic remove | nftables removeAll |");
console.log("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const [n, r] of results) {
  console.log(`| ${n} | ${s(r.vifguardInstallMs)} | ${s(r.cleanTrafficInstallMs)} | ${s(r.nftInstallMs)} | ${s(r.vifguardOnePortMs)} | ${s(r.cleanTrafficOnePortMs)} | ${s(r.nftOnePortMs)} | ${s(r.vifguardObserveMs)} | ${s(r.vifguardRemoveAllMs)} | ${s(r.cleanTrafficRemoveMs)} | ${s(r.nftRemoveAllMs)} |`);
}
console.log("");
console.log(`Packet rate, guest a → guest b (60-byte UDP frames, the lab's raw sender (send.py), median of ${RUNS} × ${SECONDS} s), the two guests' ports bound last:`);
console.log("");
console.log("| ports | no filter (before / after) | vifguard libvirt | clean-traffic | vifguard nftables |");
console.log("|---:|---:|---:|---:|---:|");
for (const [n, r] of results) {
  const none = (r.noneBeforePps! + r.noneAfterPps!) / 2;
  console.log(`| ${n} | ${kpps(r.noneBeforePps)} / ${kpps(r.noneAfterPps)} | ${kpps(r.vifguardPps)} (${pct(r.vifguardPps!, none)}) | ${kpps(r.cleanTrafficPps)} (${pct(r.cleanTrafficPps!, none)}) | ${kpps(r.nftPps)} (${pct(r.nftPps!, none)}) |`);
}
