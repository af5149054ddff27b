// By hand, as root: node --import tsx bench/ovs-floor.ts [flows=100000] [rounds=3]
// What ovs-vswitchd itself costs per flow, whatever vifguard does: one bundle of `flows` flow adds
// over the driver's OpenFlow connection, each of the simplest kind (in_port + dl_src → goto), then
// the same number of vifguard's own flows (from compile(), ports at level full with one IPv4 and
// one IPv6 address), then the same number of deletes; each timed from the first byte to the commit's
// answer, with ovs-vswitchd's CPU time (all its threads, from /proc) beside it. Interleaved rounds in
// one fresh sandbox (the table emptied between bundles). The floor of an install of N ports with F
// flows each is N · F · (µs per flow): bench/RESULTS.md "## ovs" uses it to say what 1 s allows.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { placeAsNamed } from "../src/agent/device-match.ts";
import { createOvsDriver } from "../src/drivers/ovs/index.ts";
import { OfConnection } from "../src/drivers/ovs/ofconn.ts";
import { encodeAddFlow, encodeDeleteByCookie } from "../src/drivers/ovs/openflow.ts";
import { sandboxPrefix, startOvsSandbox } from "../src/drivers/ovs/sandbox.ts";
import { parsePortFile } from "../src/model/port-file.ts";
import { portPolicies } from "../src/policy/port-policy.ts";

const FLOWS = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 3);

const hex2 = (n: number): string => (n & 0xff).toString(16).padStart(2, "0");
const mac = (i: number): string => `52:54:01:${hex2(i >> 16)}:${hex2(i >> 8)}:${hex2(i)}`;

/** CPU milliseconds of every ovs-vswitchd thread whose command line names the sandbox's run directory. */
function vswitchdCpuMs(runDir: string): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      if (!cmdline.startsWith("ovs-vswitchd") || !cmdline.includes(runDir)) continue;
      for (const task of readdirSync(`/proc/${pid}/task`)) {
        const fields = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8").split(") ")[1]!.split(" ");
        ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
      }
    } catch {
      // a thread or process that ended meanwhile
    }
  }
  return ticks * 10; // USER_HZ is 100 on Linux
}

function vifguardFlows(count: number, driver: ReturnType<typeof createOvsDriver>): string[] {
  const lines: string[] = [];
  for (let n = 1000; lines.length < count; n *= 2) {
    lines.length = 0;
    const ports = Array.from({ length: n }, (_, i) => ({ id: `p${i}`, tenant: `t${i}`, network: "public", device: `d${i}`, mac: mac(i + 1), ips: [`10.${100 + ((i >> 16) & 0xff)}.${(i >> 8) & 0xff}.${i & 0xff}`, `2001:db8::${(i + 1).toString(16)}`] }));
    const policies = placeAsNamed(portPolicies(parsePortFile(JSON.stringify({ networks: [{ id: "public", tenant: "provider", shared: true }], ports }), "floor")));
    for (const unit of driver.compile(policies, policies.map((p, i) => ({ name: p.device, ofport: i + 1 }))).values()) lines.push(...unit.text.split("\n").filter(Boolean));
  }
  return lines.slice(0, count);
}

const sandbox = await startOvsSandbox({ prefix: sandboxPrefix("vgfl") });
try {
  const bridge = `${sandbox.prefix}-br`;
  await sandbox.addBridge(bridge);
  const driver = createOvsDriver({ bridge, runDir: sandbox.runDir });
  const connection = new OfConnection(join(sandbox.runDir, `${bridge}.mgmt`));
  const simple = Array.from({ length: FLOWS }, (_, i) => `table=1,priority=1600,cookie=0x${(0xef000000000000n + BigInt(i + 1)).toString(16)}00,in_port=${(i % 60000) + 1},dl_src=${mac(i)} actions=goto_table:2`);
  const ours = vifguardFlows(FLOWS, driver);
  const deletes = ours.map((line) => BigInt(/cookie=(0x[0-9a-f]+)/.exec(line)![1]!));
  const uniqueDeletes = [...new Set(deletes)];
  const time = async (label: string, builders: ((xid: number, headroom: number) => Buffer)[]): Promise<string> => {
    const cpu0 = vswitchdCpuMs(sandbox.runDir);
    const t0 = performance.now();
    await connection.bundle(builders, () => label);
    const wall = performance.now() - t0;
    const cpu = vswitchdCpuMs(sandbox.runDir) - cpu0;
    return `| ${label} | ${builders.length} | ${wall.toFixed(0)} ms | ${cpu} ms | ${((cpu * 1000) / builders.length).toFixed(1)} µs |`;
  };
  const rows = ["| bundle | messages | wall | ovs-vswitchd CPU | CPU per message |", "|---|---:|---:|---:|---:|"];
  for (let round = 1; round <= ROUNDS; round++) {
    rows.push(await time(`round ${round}: simplest flows (in_port, dl_src)`, simple.map((line) => (xid, headroom) => encodeAddFlow(xid, line, headroom))));
    await sandbox.ofctl("-O", "OpenFlow15", "del-flows", bridge);
    rows.push(await time(`round ${round}: vifguard's flows`, ours.map((line) => (xid, headroom) => encodeAddFlow(xid, line, headroom))));
    rows.push(await time(`round ${round}: deletes by exact cookie (one per port)`, uniqueDeletes.map((cookie) => (xid, headroom) => encodeDeleteByCookie(xid, undefined, cookie, 0xffffffffffffffffn, headroom))));
    await sandbox.ofctl("-O", "OpenFlow15", "del-flows", bridge);
  }
  connection.close();
  driver.close();
  console.log(rows.join("\n"));
} finally {
  await sandbox.stop();
}
