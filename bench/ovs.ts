// By hand, as root: node --import tsx bench/ovs.ts [10,100,1000,10000] [openflow,ovs-ofctl]
// Installs N protected ports on a userspace OVS bridge in bundles of ≤1,000 ports, then times 1,000
// (UPDATES=…) one-port updates (p50, p99), observe(), counters(), and a trace of a frame from the last port
// (classifier cost vs N); once per transport (the long-lived OpenFlow connection, and one ovs-ofctl
// process per bundle), each in a fresh sandbox. Side by side in the same run, the same ports and
// the same updates through the nftables driver (in a fresh network namespace). Prints markdown
// tables for bench/RESULTS.md "## ovs".
import { randomBytes } from "node:crypto";
import { planChanges } from "../src/agent/plan.ts";
import { createNftablesDriver } from "../src/drivers/nftables/index.ts";
import { addNetns, deleteNetns } from "../src/conformance/lab/net.ts";
import { createOvsDriver } from "../src/drivers/ovs/index.ts";
import { sandboxPrefix, startOvsSandbox } from "../src/drivers/ovs/sandbox.ts";
import { parsePortFile } from "../src/model/port-file.ts";
import type { Mac } from "../src/model/mac.ts";
import { portPolicies, type PlacedPolicy } from "../src/policy/port-policy.ts";
import { percentile } from "./stats.ts";
import { changeOps } from "../src/drivers/ovs/render.ts";
import { encodeAddFlow, encodeDeleteByCookie } from "../src/drivers/ovs/openflow.ts";
import { placeAsNamed } from "../src/agent/device-match.ts";

const sizes = (process.argv[2] ?? "10,100,1000,10000").split(",").map(Number);
const transports = (process.argv[3] ?? "openflow,ovs-ofctl").split(",") as ("openflow" | "ovs-ofctl")[];
/** One-port changes timed per driver: enough that the p99 is not the second-largest sample. */
const UPDATES = Number(process.env.UPDATES ?? 1000);

function mac(i: number): Mac {
  return `52:54:01:${((i >> 16) & 0xff).toString(16).padStart(2, "0")}:${((i >> 8) & 0xff).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}` as Mac;
}

function policiesFor(n: number): PlacedPolicy[] {
  const ports = Array.from({ length: n }, (_, i) => ({
    id: `p${i}`,
    tenant: `t${i}`,
    network: "public",
    device: `d${i}`,
    mac: mac(i + 1),
    ips: [`10.${100 + ((i >> 16) & 0xff)}.${(i >> 8) & 0xff}.${i & 0xff}`, `2001:db8::${(i + 1).toString(16)}`],
  }));
  return placeAsNamed(portPolicies(parsePortFile(JSON.stringify({ networks: [{ id: "public", tenant: "provider", shared: true }], ports }), "bench")));
}

const ms = (t0: number): number => performance.now() - t0;

/**
 * The UPDATES one-port changes every driver gets: port (k·7919 mod n) gains one more allowed MAC.
 * Only that port's policy is compiled again (no MAC is shared, so its unit is the one a compile of
 * every port would give): compiling 10,000 ports 100 times would make most of the bench's run time.
 */
function updatesFor(policies: readonly PlacedPolicy[]): PlacedPolicy[] {
  return Array.from({ length: UPDATES }, (_, k) => {
    const p = policies[(k * 7919) % policies.length]!;
    return { ...p, macs: [...p.macs, mac(0xf00000 + k)] };
  });
}

/** The nftables driver on the same ports: one install transaction, then the same updates. */
async function nftables(policies: readonly PlacedPolicy[]): Promise<{ install: number; p50: number; p99: number }> {
  const netns = `vgob-nft-${randomBytes(3).toString("hex")}`;
  await addNetns(netns);
  const driver = createNftablesDriver({ netns });
  try {
    await driver.probe();
    const units = driver.compile(policies, []); // nftables rules need no device
    const t0 = performance.now();
    await driver.apply({ add: [...units.values()], remove: [] });
    const install = ms(t0);
    await driver.observe();
    const updates: number[] = [];
    for (const changed of updatesFor(policies)) {
      const unit = [...driver.compile([changed], []).values()].find((u) => u.port === changed.port)!; // nftables keys units by device
      updates.push((await driver.apply({ add: [unit], remove: [] })).durationMs);
    }
    const sorted = updates.sort((a, b) => a - b);
    return { install, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  } finally {
    await driver.removeAll().catch(() => undefined);
    driver.close?.();
    await deleteNetns(netns);
  }
}

type OvsFigures = { flows: number; compile: number; encode: number; install: number; p50: number; p99: number; observe: number; counters: number; trace: number };

async function ovs(n: number, policies: readonly PlacedPolicy[], transport: "openflow" | "ovs-ofctl"): Promise<OvsFigures> {
  const sandbox = await startOvsSandbox({ prefix: sandboxPrefix("vgob") });
  try {
    const bridge = `${sandbox.prefix}-br`;
    await sandbox.addBridge(bridge);
    // Ports need not exist for flows: feed compile() the devices directly (port i → ofport i+1).
    const driver = createOvsDriver({ bridge, runDir: sandbox.runDir, transport });
    const devices = policies.map((p, i) => ({ name: p.device, ofport: i + 1 }));
    let t0 = performance.now();
    const units = driver.compile(policies, devices);
    const compile = ms(t0);
    const flows = [...units.values()].reduce((s, u) => s + u.text.split("\n").filter(Boolean).length, 0);
    const all = [...units.values()];
    // What the install's bundles cost on our side alone: their steps, encoded as OpenFlow (not sent).
    t0 = performance.now();
    for (let i = 0; i < all.length; i += 1000) {
      for (const o of changeOps({ add: all.slice(i, i + 1000), remove: [] }, driver.layout)) {
        if (o.op === "add") encodeAddFlow(1, o.line);
        else if (o.op === "delete") encodeDeleteByCookie(1, o.table, o.cookie, o.mask); // an install deletes whole units only
      }
    }
    const encode = ms(t0);
    // Install in bundles of at most 1,000 ports (each bundle atomic), as an agent's first sync would.
    t0 = performance.now();
    for (let i = 0; i < all.length; i += 1000) await driver.apply({ add: all.slice(i, i + 1000), remove: [] });
    const install = ms(t0);
    const updates: number[] = [];
    for (const changed of updatesFor(policies)) {
      const unit = driver.compile([changed], devices).get(changed.port)!;
      t0 = performance.now();
      await driver.apply({ add: [unit], remove: [] });
      updates.push(ms(t0));
    }
    if (driver.fallbackReason !== undefined && transport === "openflow") throw new Error(`bundles fell back to ovs-ofctl: ${driver.fallbackReason}`);
    t0 = performance.now();
    const observed = await driver.observe();
    const observe = ms(t0);
    t0 = performance.now();
    await driver.counters();
    const counters = ms(t0);
    const last = policies.at(-1)!;
    t0 = performance.now();
    await sandbox.appctl("ofproto/trace", bridge, `in_port=${n},udp,dl_src=${last.macs[0]},nw_src=10.0.0.1`);
    const trace = ms(t0);
    const drift = planChanges(driver.compile(policies, devices), observed.units).add.length;
    console.error(`n=${n} ${transport} done (${drift} ports differ from the original policies after the ${UPDATES} updates)`);
    driver.close();
    const sorted = updates.sort((a, b) => a - b);
    return { flows, compile, encode, install, p50: percentile(sorted, 50), p99: percentile(sorted, 99), observe, counters, trace };
  } finally {
    await sandbox.stop();
  }
}

const rows: string[] = [
  `| ports | flows | transport | compile all | steps + encoding (not sent) | install all (bundles of ≤1,000 ports) | one-port update p50 / p99 (${UPDATES}) | observe() | counters() | trace of last port |`,
  "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
];
const ratios: string[] = [
  `| ports | install: ${transports.join(" / ")} / nftables | one-port p50: ${transports.join(" / ")} / nftables | ${transports.length > 1 ? `${transports[0]} ÷ ${transports[1]}: install, one-port p50` : ""} |`,
  "|---:|---|---|---|",
];
const f1 = (x: number): string => (x < 10 ? x.toFixed(1) : x.toFixed(0));
for (const n of sizes) {
  const policies = policiesFor(n);
  const figures: OvsFigures[] = [];
  for (const transport of transports) {
    const f = await ovs(n, policies, transport);
    figures.push(f);
    rows.push(`| ${n} | ${f.flows} | ${transport} | ${f.compile.toFixed(0)} ms | ${f.encode.toFixed(0)} ms | ${f.install.toFixed(0)} ms | ${f1(f.p50)} / ${f1(f.p99)} ms | ${f.observe.toFixed(0)} ms | ${f.counters.toFixed(0)} ms | ${f.trace.toFixed(0)} ms |`);
  }
  const nft = await nftables(policies);
  rows.push(`| ${n} | | nftables | | | ${nft.install.toFixed(0)} ms | ${f1(nft.p50)} / ${f1(nft.p99)} ms | | | |`);
  const [a, b] = figures;
  ratios.push(
    `| ${n} | ${figures.map((f) => `${f1(f.install)}`).join(" / ")} / ${f1(nft.install)} ms | ${figures.map((f) => f1(f.p50)).join(" / ")} / ${f1(nft.p50)} ms | ${a && b ? `${(a.install / b.install).toFixed(2)}×, ${(a.p50 / b.p50).toFixed(2)}×` : ""} |`,
  );
}
console.log(rows.join("\n") + "\n\n" + ratios.join("\n"));
