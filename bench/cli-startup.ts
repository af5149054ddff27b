// By hand, as root, after `npm run build`:  node --import tsx bench/cli-startup.ts <before-commit> [rounds]
// What a hook pays per call: `vifguard --help` and a `vifguard port plug <mac>` round trip to a running
// agent (nftables in a fresh network namespace, one port), for three commands side by side, interleaved:
//   before    <before-commit>'s bin/vifguard (tsx, every subcommand imported eagerly), from `git archive`
//   tsx-lazy  this checkout's bin/vifguard (tsx, subcommands loaded lazily): what a dev checkout runs
//   compiled  node dist/cli/main.js (what npm install -g and the .deb install)
// and, as the floor any Node command pays, `node -e 0`; with the agent's own share of a plug (the
// "protected in N ms" of its answer). Medians and ranges of wall-clock milliseconds. Prints markdown for bench/RESULTS.md "## CLI start-up".
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { run } from "../src/host/run.ts";
import { median } from "./stats.ts";

const exec = promisify(execFile);
const ROOT = new URL("../", import.meta.url).pathname;
const before = process.argv[2];
const rounds = Number(process.argv[3] ?? 7);
if (!before) throw new Error("usage: node --import tsx bench/cli-startup.ts <before-commit> [rounds]");

const tmp = await mkdtemp(join(tmpdir(), "vg-bench-cli-"));
const old = join(tmp, "before");
await exec("sh", ["-c", `mkdir -p "${old}" && git -C "${ROOT}" archive "${before}" src bin package.json | tar -x -C "${old}"`]);
await symlink(join(ROOT, "node_modules"), join(old, "node_modules"));

const commands: Record<string, string[]> = {
  before: [join(old, "bin/vifguard")],
  "tsx-lazy": [join(ROOT, "bin/vifguard")],
  compiled: [process.execPath, join(ROOT, "dist/cli/main.js")],
};

const netns = `vgbc${process.pid}`;
const MAC = "52:54:00:00:0b:01";
await run("ip", ["netns", "add", netns]);
const ports = join(tmp, "ports.yaml");
await writeFile(ports, `networks: [{ id: public, tenant: provider, shared: true }]\nports:\n  - { id: p0, tenant: t0, network: public, device: vnet0, mac: "${MAC}", ips: [10.0.0.1] }\n`);
const socket = join(tmp, "agent.sock");
const config = join(tmp, "agent.yaml");
await writeFile(config, `driver: { name: nftables, netns: ${netns} }\nsource: { file: ${ports} }\nstateDir: ${join(tmp, "state")}\ncontrolSocket: ${socket}\nlisten: false\nlog: { level: warn }\n`);
const agent = spawn(process.execPath, [join(ROOT, "dist/cli/main.js"), "agent", "--config", config], { stdio: "inherit" });

const agentMs: number[] = [];
async function timed(argv: readonly string[]): Promise<number> {
  const started = performance.now();
  const { stdout } = await exec(argv[0]!, argv.slice(1));
  const took = performance.now() - started;
  const share = /protected in (\d+) ms/.exec(stdout);
  if (share) agentMs.push(Number(share[1]));
  return took;
}
const floor: number[] = [];

try {
  for (let i = 0; ; i++) {
    try { await exec(process.execPath, [join(ROOT, "dist/cli/main.js"), "port", "status", "--socket", socket]); break; } catch { if (i > 200) throw new Error("the agent did not answer"); }
    await new Promise((r) => setTimeout(r, 100));
  }
  const times: Record<string, { help: number[]; plug: number[] }> = {};
  for (const name of Object.keys(commands)) times[name] = { help: [], plug: [] };
  for (let round = 0; round < rounds; round++) {
    floor.push(await timed([process.execPath, "-e", "0"]));
    for (const [name, argv] of Object.entries(commands)) {
      times[name]!.help.push(await timed([...argv, "--help"]));
      times[name]!.plug.push(await timed([...argv, "port", "plug", MAC, "--socket", socket]));
    }
  }
  const cell = (xs: number[]): string => `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  const base = times.before!;
  console.log(`| command | \`--help\` ms, median (range) | \`port plug\` round trip ms | vs before (help / plug) |`);
  console.log(`|---|---|---|---|`);
  for (const [name, t] of Object.entries(times)) {
    console.log(`| ${name} | ${cell(t.help)} | ${cell(t.plug)} | ${(median(t.help) / median(base.help)).toFixed(2)} / ${(median(t.plug) / median(base.plug)).toFixed(2)} |`);
  }
  console.log(`| \`node -e 0\` (floor) | ${cell(floor)} | | |`);
  console.log(`\nthe agent's share of a plug (its answer's "protected in"): ${cell(agentMs)} ms`);
  console.log(`\n${rounds} interleaved rounds; before = ${before}; node ${process.version}; load average ${(await exec("cat", ["/proc/loadavg"])).stdout.split(" ").slice(0, 3).join(" ")}`);
} finally {
  agent.kill("SIGTERM");
  await new Promise((r) => agent.once("exit", r));
  await run("nft", ["delete", "table", "bridge", "vifguard"], { netns, allowFailure: true });
  await run("ip", ["netns", "delete", netns], { allowFailure: true });
  await rm(tmp, { recursive: true, force: true });
}
