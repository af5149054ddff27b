// By hand, as root: node --import tsx bench/nftables.ts [10,100,1000,10000] [rounds] [fixed|pairs]
// In a fresh network namespace: installs N ports from scratch (one apply(), one nft transaction);
// with the largest N installed, times adding, changing and removing one port; then the packet rate
// between two guests through the bridge with 1,000 ports installed against no vifguard table.
// Medians of interleaved rounds. Prints markdown for bench/RESULTS.md "## nftables".
import { createNftablesDriver } from "../src/drivers/nftables/index.ts";
import { run } from "../src/host/run.ts";
import { parsePortFile } from "../src/model/port-file.ts";
import { portPolicies, type PlacedPolicy } from "../src/policy/port-policy.ts";
import { NftLab, PYTHON } from "../test/drivers/nftables/lab.ts";

const sizes = (process.argv[2] ?? "10,100,1000,10000").split(",").map(Number);
const rounds = Number(process.argv[3] ?? 3);
/** "pairs": every port also has a /28 allowed pair (an element in a concatenated interval set); "fixed": fixed addresses only. */
const pairs = (process.argv[4] ?? "fixed") === "pairs";

const hex2 = (n: number): string => (n & 0xff).toString(16).padStart(2, "0");
const macOf = (i: number): string => `52:54:01:${hex2(i >> 16)}:${hex2(i >> 8)}:${hex2(i)}`;

/** N ports at level full with one IPv4 and one IPv6 address (and a /28 pair with "pairs"); ports 0 and 1 are the guests. */
function policiesFor(n: number, extra = ""): PlacedPolicy[] {
  const ports = Array.from({ length: n }, (_, i) => ({
    id: `p${i}${extra}`,
    tenant: `t${i}`,
    network: "public",
    device: i < 2 ? `vnet${i}` : `d${i}`,
    mac: macOf(i + 1),
    ips: [`10.${100 + ((i >> 16) & 0xff)}.${(i >> 8) & 0xff}.${i & 0xff}`, `2001:db8::${(i + 1).toString(16)}`],
    allowed: pairs ? [{ ip: `172.${16 + ((i >> 12) & 0x0f)}.${(i >> 4) & 0xff}.${(i & 0x0f) << 4}/28` }] : [],
  }));
  return placeAsNamed(portPolicies(parsePortFile(JSON.stringify({ networks: [{ id: "public", tenant: "provider", shared: true }], ports }), "bench")));
}


// Sends UDP datagrams as fast as it can for `seconds`; prints how many it sent.
const BLAST = `
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d = (sys.argv[1], 9)
b = b"x" * int(sys.argv[3])
n = 0
end = time.time() + float(sys.argv[2])
while time.time() < end:
    for _ in range(1000):
        s.sendto(b, d)
    n += 1000
print(n)
`;
import { median } from "./stats.ts";
import { placeAsNamed } from "../src/agent/device-match.ts";

async function rxPackets(netns: string): Promise<number> {
  const out = (await run("cat", ["/sys/class/net/eth0/statistics/rx_packets"], { netns })).stdout;
  return Number(out.trim());
}

async function main(): Promise<void> {
  const lab = await NftLab.start(undefined);
  try {
    const a = await lab.addGuest("a", "vnet0", macOf(1), "10.100.0.0/16");
    const b = await lab.addGuest("b", "vnet1", macOf(2), "10.100.0.1/16");
    await run("ip", ["neigh", "replace", "10.100.0.1", "lladdr", macOf(2), "dev", "eth0"], { netns: a.netns });
    const driver = createNftablesDriver({ netns: lab.hostNetns, prefix: lab.prefix });
    await driver.probe();

    // 1. N ports from scratch, interleaved rounds.
    const install = new Map<number, number[]>(sizes.map((n) => [n, []]));
    const compiled = new Map(sizes.map((n) => [n, [...driver.compile(policiesFor(n), []).values()]]));
    for (let r = 0; r < rounds; r++) {
      for (const n of sizes) {
        await driver.removeAll();
        const report = await driver.apply({ add: compiled.get(n)!, remove: [] });
        install.get(n)!.push(report.durationMs);
      }
    }

    // 2. One port with the largest N installed: add, change, remove (20 each, interleaved).
    const big = Math.max(...sizes);
    await driver.removeAll();
    await driver.apply({ add: compiled.get(big)!, remove: [] });
    await driver.observe(); // as the agent does: apply() then works from what observe() read
    const extra = [...driver.compile(policiesFor(big + 1), []).values()].find((u) => u.key === `d${big}`)!;
    const changed = [...driver.compile(policiesFor(big, "x"), []).values()].find((u) => u.key === "d5")!;
    const original = compiled.get(big)!.find((u) => u.key === "d5")!;
    const one = { add: [] as number[], change: [] as number[], remove: [] as number[] };
    for (let r = 0; r < 20; r++) {
      one.add.push((await driver.apply({ add: [extra], remove: [] })).durationMs);
      one.change.push((await driver.apply({ add: [r % 2 ? original : changed], remove: [] })).durationMs);
      one.remove.push((await driver.apply({ add: [], remove: [extra.key] })).durationMs);
    }
    const t0 = performance.now();
    const observed = await driver.observe();
    const observeMs = performance.now() - t0;
    const t1 = performance.now();
    await driver.counters();
    const countersMs = performance.now() - t1;

    // 3. Packet rate a → b through the bridge: 1,000 ports installed (a and b among them) vs no table,
    // and vs a table of empty base chains on the same hooks (what any bridge-family filter costs).
    const thousand = compiled.get(1000) ?? [...driver.compile(policiesFor(1000), []).values()];
    const modes = ["none", "hooks", "filtered"] as const;
    const payloads = [18, 1400] as const; // 60- and 1,442-byte frames
    const rate = new Map(payloads.map((p) => [p, { none: [] as number[], hooks: [] as number[], filtered: [] as number[] }]));
    const seconds = 3;
    const hooks = `bridge ${lab.prefix}_hooks`;
    const hookChains = ["prerouting", "forward", "output"].map((h) => `add chain ${hooks} ${h} { type filter hook ${h} priority -300; policy accept; }`);
    for (let r = 0; r < rounds; r++) {
      for (const payload of payloads) {
        for (const mode of modes) {
          await driver.removeAll();
          await run("nft", ["delete", "table", ...hooks.split(" ")], { netns: lab.hostNetns, allowFailure: true });
          if (mode === "filtered") await driver.apply({ add: thousand, remove: [] });
          if (mode === "hooks") await run("sh", ["-c", [`add table ${hooks}`, ...hookChains].map((c) => `nft '${c}'`).join(" && ")], { netns: lab.hostNetns });
          const before = await rxPackets(b.netns);
          await run("ip", ["netns", "exec", a.netns, PYTHON, "-c", BLAST, "10.100.0.1", String(seconds), String(payload)], { timeoutMs: 60_000 });
          await new Promise((r) => setTimeout(r, 200));
          rate.get(payload)![mode].push((await rxPackets(b.netns)) - before);
        }
      }
    }
    await run("nft", ["delete", "table", ...hooks.split(" ")], { netns: lab.hostNetns, allowFailure: true });
    await driver.removeAll();
    driver.close();
    const kpps = (xs: number[]): string => `${(median(xs) / seconds / 1000).toFixed(0)} kpps`;
    const pct = (xs: number[], of: number[]): string => `${((median(xs) / median(of)) * 100).toFixed(1)} %`;

    const lines = [
      `Host: ${(await run("uname", ["-r"])).stdout.trim()}, ${(await run("nft", ["--version"])).stdout.trim()}; ${rounds} interleaved rounds, medians; ports with ${pairs ? "a /28 allowed pair each (interval elements)" : "fixed addresses only (hash elements)"}.`,
      "",
      "| ports | install from scratch (one transaction, incl. the skeleton) |",
      "|---:|---:|",
      ...sizes.map((n) => `| ${n} | ${median(install.get(n)!).toFixed(0)} ms |`),
      "",
      `With ${big} ports installed (${observed.units.size} units), one-port transactions (median of 20, apply() incl. writing the file and spawning nft):`,
      "",
      "| add one port | change one port | remove one port | observe() | counters() |",
      "|---:|---:|---:|---:|---:|",
      `| ${median(one.add).toFixed(1)} ms | ${median(one.change).toFixed(1)} ms | ${median(one.remove).toFixed(1)} ms | ${observeMs.toFixed(0)} ms | ${countersMs.toFixed(0)} ms |`,
      "",
      `Packet rate, guest a → guest b (UDP, one Python sender, ${seconds} s, frames counted at b's eth0); "empty hooks" is a table whose base chains on the same three hooks hold no rule:`,
      "",
      "| frame | no table | empty hooks | 1,000 ports installed (a, b at level full) | installed / no table | empty hooks / no table |",
      "|---:|---:|---:|---:|---:|---:|",
      ...payloads.map((p) => {
        const m = rate.get(p)!;
        return `| ${p + 42} bytes | ${kpps(m.none)} | ${kpps(m.hooks)} | ${kpps(m.filtered)} | ${pct(m.filtered, m.none)} | ${pct(m.hooks, m.none)} |`;
      }),
    ];
    console.log(lines.join("\n"));
    console.error(JSON.stringify({ install: Object.fromEntries(install), one, rate: Object.fromEntries(rate) }));
  } finally {
    await lab.cleanup();
  }
}

await main();
