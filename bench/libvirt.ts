// By hand, as root: install N ports (default 10, 100) through the libvirt driver and, side by side,
// as libvirt's stock clean-traffic bindings (one virsh session each); then re-bind one port and take
// everything away. Devices are veth pairs with a per-run prefix, removed at the end.
//   npx tsx bench/libvirt.ts [N ...]
// Packet-rate comparison is not measured here (scapy sends ~10k frames/s, too slow to load ebtables).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planChanges } from "../src/agent/plan.ts";
import { createLibvirtDriver, ensureLibvirtd } from "../src/drivers/libvirt/index.ts";
import { run } from "../src/host/run.ts";
import { parsePortFile } from "../src/model/port-file.ts";
import { portPolicies } from "../src/policy/port-policy.ts";

const URI = "nwfilter:///system";
const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const ms = (t0: number): number => Math.round(performance.now() - t0);

async function virsh(commands: string[]): Promise<void> {
  const r = await run("virsh", ["-q", "-c", URI], { input: commands.join("\n") + "\n", timeoutMs: 3_600_000 });
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  if (errors.length > 0) throw new Error(errors.slice(0, 4).join("\n"));
}

async function bench(n: number): Promise<Record<string, number>> {
  const prefix = `vgb${randomBytes(2).toString("hex")}`;
  const devices = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  const mac = (i: number): string => `52:54:00:b0:${((i >> 8) & 0xff).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}`;
  const ip = (i: number): string => `10.${(i >> 16) & 0xff}.${(i >> 8) & 0xff}.${(i & 0xff) + 1}`;
  for (const d of devices) await run("ip", ["link", "add", d, "type", "veth", "peer", "name", `${d}p`]); // no dummy module on this kernel
  const dir = await mkdtemp(join(tmpdir(), "vgb-"));
  const out: Record<string, number> = {};
  try {
    const yaml = ["networks: [{ id: net, tenant: t, shared: true }]", "ports:", ...devices.map((d, i) => `  - { id: p${i}, network: net, device: ${d}, mac: "${mac(i)}", ips: [${ip(i)}, "2001:db8::${(i + 1).toString(16)}"] }`)].join("\n");
    const policies = portPolicies(parsePortFile(yaml, "bench.yaml"));
    const driver = createLibvirtDriver({ prefix });
    let t0 = performance.now();
    await driver.apply(planChanges(driver.compile(policies), await driver.observe()));
    out.vifguardInstallMs = ms(t0);
    t0 = performance.now();
    await driver.observe();
    out.vifguardObserveMs = ms(t0);
    const changed = policies.map((p, i) => (i === 0 ? { ...p, bindings: [...p.bindings, { mac: p.macs[0]!, prefix: { family: 4 as const, bytes: Uint8Array.from([10, 255, 0, 1]), length: 32, text: "10.255.0.1" } }] } : p));
    t0 = performance.now();
    await driver.apply(planChanges(driver.compile(changed), await driver.observe()));
    out.vifguardOnePortMs = ms(t0);
    t0 = performance.now();
    await driver.removeAll();
    out.vifguardRemoveAllMs = ms(t0);

    // The same ports as stock clean-traffic bindings (IPv4 + MAC + ARP only: no IPv6, RA or DHCP guards).
    const files = await Promise.all(
      devices.map(async (d, i) => {
        const path = join(dir, `${i}.xml`);
        const xml = `<filterbinding><owner><name>${prefix}-ct-${i}</name><uuid>${randomUuid()}</uuid></owner><portdev name='${d}'/><mac address='${mac(i)}'/><filterref filter='clean-traffic'><parameter name='IP' value='${ip(i)}'/></filterref></filterbinding>`;
        await writeFile(path, xml);
        return path;
      }),
    );
    t0 = performance.now();
    await virsh(files.map((f) => `nwfilter-binding-create ${f}`));
    out.cleanTrafficInstallMs = ms(t0);
    t0 = performance.now();
    await virsh([`nwfilter-binding-delete ${devices[0]}`, `nwfilter-binding-create ${files[0]}`]);
    out.cleanTrafficOnePortMs = ms(t0);
    t0 = performance.now();
    await virsh(devices.map((d) => `nwfilter-binding-delete ${d}`));
    out.cleanTrafficRemoveMs = ms(t0);
  } finally {
    await run("sh", ["-c", `virsh -q -c ${URI} nwfilter-binding-list | awk '$1 ~ /^${prefix}/ {print "nwfilter-binding-delete " $1}' | virsh -q -c ${URI} >/dev/null 2>&1`], { allowFailure: true });
    await createLibvirtDriver({ prefix }).removeAll().catch(() => undefined);
    for (const d of devices) await run("ip", ["link", "del", d], { allowFailure: true });
    await rm(dir, { recursive: true, force: true });
  }
  return out;
}

function randomUuid(): string {
  const h = randomBytes(16).toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

await ensureLibvirtd();
const rows: string[] = [];
for (const n of sizes.length > 0 ? sizes : [10, 100]) {
  const r = await bench(n);
  console.log(n, JSON.stringify(r));
  const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : "–");
  rows.push(
    `| ${n} | ${r.vifguardInstallMs} | ${r.cleanTrafficInstallMs} | ${ratio(r.vifguardInstallMs!, r.cleanTrafficInstallMs!)} | ${r.vifguardOnePortMs} | ${r.cleanTrafficOnePortMs} | ${r.vifguardObserveMs} | ${r.vifguardRemoveAllMs} | ${r.cleanTrafficRemoveMs} |`,
  );
}
console.log("| ports | vifguard install ms | clean-traffic install ms | ratio | vifguard one port ms | clean-traffic one port ms | vifguard observe ms | vifguard removeAll ms | clean-traffic remove ms |");
console.log("|---|---|---|---|---|---|---|---|---|");
for (const r of rows) console.log(r);
