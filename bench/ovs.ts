// By hand, as root: node --import tsx bench/ovs.ts [10,100,1000,10000]
// Installs N protected ports on a userspace OVS bridge in one bundle, then times one-port updates,
// observe(), counters(), and a trace of a frame from the last port (classifier cost vs N). Side by
// side in the same run, the same ports and the same 20 updates through the nftables driver (in a
// fresh network namespace). Prints a markdown table for bench/RESULTS.md "## ovs".
import { randomBytes } from "node:crypto";
import { planChanges } from "../src/agent/plan.ts";
import { createNftablesDriver } from "../src/drivers/nftables/index.ts";
import { addNetns, deleteNetns } from "../src/conformance/lab/net.ts";
import { createOvsDriver } from "../src/drivers/ovs/index.ts";
import { sandboxPrefix, startOvsSandbox } from "../src/drivers/ovs/sandbox.ts";
import { parsePortFile } from "../src/model/port-file.ts";
import type { Mac } from "../src/model/mac.ts";
import { portPolicies, type PlacedPolicy } from "../src/policy/port-policy.ts";
import { median } from "./stats.ts";
import { placeAsNamed } from "../src/agent/device-match.ts";

const sizes = (process.argv[2] ?? "10,100,1000,10000").split(",").map(Number);

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

/** The 20 one-port changes both drivers get: port (k·7919 mod n) gains one more allowed MAC. */
function updatesFor(policies: readonly PlacedPolicy[]): PlacedPolicy[][] {
  return Array.from({ length: 20 }, (_, k) => {
    const p = policies[(k * 7919) % policies.length]!;
    return policies.map((q) => (q === p ? { ...q, macs: [...q.macs, mac(0xf00000 + k)] } : q));
  });
}

/** The nftables driver on the same ports: one install transaction, then the same 20 updates. */
async function nftables(policies: readonly PlacedPolicy[]): Promise<{ install: number; update: number }> {
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
    for (const [k, changed] of updatesFor(policies).entries()) {
      const port = policies[(k * 7919) % policies.length]!.port;
      const unit = [...driver.compile(changed, []).values()].find((u) => u.port === port)!; // nftables keys units by device
      updates.push((await driver.apply({ add: [unit], remove: [] })).durationMs);
    }
    return { install, update: median(updates) };
  } finally {
    await driver.removeAll().catch(() => undefined);
    driver.close?.();
    await deleteNetns(netns);
  }
}

const rows: string[] = [
  "| ports | flows | install all (bundles of ≤1,000 ports) | one-port update (median of 20) | observe() | counters() | trace of last port | nftables install | nftables one-port update | ovs / nftables install | ovs / nftables one port |",
  "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
];
for (const n of sizes) {
  const sandbox = await startOvsSandbox({ prefix: sandboxPrefix("vgob") });
  try {
    const bridge = `${sandbox.prefix}-br`;
    await sandbox.addBridge(bridge);
    const policies = policiesFor(n);
    // Ports need not exist for flows: feed compile() the devices directly (port i → ofport i+1).
    const driver = createOvsDriver({ bridge, runDir: sandbox.runDir });
    const devices = policies.map((p, i) => ({ name: p.device, ofport: i + 1 }));
    const units = driver.compile(policies, devices);
    const flows = [...units.values()].reduce((s, u) => s + u.text.split("\n").filter(Boolean).length, 0);
    // Install in bundles of at most 1,000 ports (each bundle atomic), as an agent's first sync would.
    let t0 = performance.now();
    const all = [...units.values()];
    for (let i = 0; i < all.length; i += 1000) await driver.apply({ add: all.slice(i, i + 1000), remove: [] });
    const install = ms(t0);
    const updates: number[] = [];
    for (const [k, changed] of updatesFor(policies).entries()) {
      const unit = driver.compile(changed, devices).get(policies[(k * 7919) % n]!.port)!;
      t0 = performance.now();
      await driver.apply({ add: [unit], remove: [] });
      updates.push(ms(t0));
    }
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
    const nft = await nftables(policies);
    const ratio = (a: number, b: number): string => `${(a / b).toFixed(1)}×`;
    rows.push(
      `| ${n} | ${flows} | ${install.toFixed(0)} ms | ${median(updates).toFixed(1)} ms | ${observe.toFixed(0)} ms | ${counters.toFixed(0)} ms | ${trace.toFixed(0)} ms | ${nft.install.toFixed(0)} ms | ${nft.update.toFixed(1)} ms | ${ratio(install, nft.install)} | ${ratio(median(updates), nft.update)} |`,
    );
    console.error(`n=${n} done (${drift} ports differ from the original policies after the 20 updates)`);
  } finally {
    await sandbox.stop();
  }
}
console.log(rows.join("\n"));
