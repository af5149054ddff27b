// By hand, as root, after `npm run build`:  node --import tsx bench/cli-startup.ts <before-commit> [rounds]
// What a hook pays per call: `vifguard --help` and a `vifguard port plug <mac>` round trip to a running
// agent (nftables in a fresh network namespace, one port), side by side, interleaved:
//   before    <before-commit> from `git archive`, built there (`npm run build`): its installed bin
//             (package.json "bin"), plugging into its own agent (its dist/), in its own namespace
//   compiled  this checkout's installed bin (package.json "bin", what npm install -g and the .deb run),
//             plugging into this checkout's agent
//   tsx       this checkout's bin/vifguard (tsx, no build): what a dev checkout runs (help only)
// and, as the floor any Node command pays, `node -e 0`; with each agent's own share of a plug (the
// "protected in N ms" of its answer). Wall-clock milliseconds (median and range) and, as the load of the
// shared machine sways wall clock most, CPU milliseconds of the command (`perf stat -e task-clock`, when
// perf is there). Prints markdown for bench/RESULTS.md "## CLI start-up".
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
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
const perf = await exec("perf", ["stat", "-x", ",", "-e", "task-clock", "true"]).then(() => true, () => false);

const tmp = await mkdtemp(join(tmpdir(), "vg-bench-cli-"));
const old = join(tmp, "before");
await exec("sh", ["-c", `mkdir -p "${old}" && git -C "${ROOT}" archive "${before}" | tar -x -C "${old}"`]);
await symlink(join(ROOT, "node_modules"), join(old, "node_modules"));
await exec("npm", ["run", "-s", "build"], { cwd: old });
const binOf = async (root: string): Promise<string> => join(root, (JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { bin: { vifguard: string } }).bin.vifguard);

const MAC = "52:54:00:00:0b:01";
type Side = { bin: string; socket: string; netns: string; agent?: ChildProcess };
const sides: Record<"before" | "compiled", Side> = {
  before: { bin: await binOf(old), socket: join(tmp, "before.sock"), netns: `vgbcb${process.pid}` },
  compiled: { bin: await binOf(ROOT), socket: join(tmp, "compiled.sock"), netns: `vgbcc${process.pid}` },
};
const ports = join(tmp, "ports.yaml");
await writeFile(ports, `networks: [{ id: public, tenant: provider, shared: true }]\nports:\n  - { id: p0, tenant: t0, network: public, device: vnet0, mac: "${MAC}", ips: [10.0.0.1] }\n`);

const agentMs: Record<string, number[]> = { before: [], compiled: [] };
async function timed(argv: readonly string[], side?: string): Promise<{ wall: number; cpu: number }> {
  const started = performance.now();
  const { stdout, stderr } = await exec(perf ? "perf" : argv[0]!, perf ? ["stat", "-x", ",", "-e", "task-clock", ...argv] : argv.slice(1));
  const wall = performance.now() - started;
  const share = /protected in (\d+) ms/.exec(stdout);
  if (share && side) agentMs[side]!.push(Number(share[1]));
  return { wall, cpu: Number(/([\d.]+),msec,task-clock/.exec(stderr)?.[1] ?? NaN) };
}

try {
  for (const [name, side] of Object.entries(sides)) {
    await run("ip", ["netns", "add", side.netns]);
    const config = join(tmp, `${name}.yaml`);
    await writeFile(config, `driver: { name: nftables, netns: ${side.netns} }\nsource: { file: ${ports} }\nstateDir: ${join(tmp, `${name}-state`)}\ncontrolSocket: ${side.socket}\nlisten: false\nlog: { level: warn }\n`);
    side.agent = spawn(process.execPath, [side.bin, "agent", "--config", config], { stdio: "inherit" });
    for (let i = 0; ; i++) {
      try { await exec(process.execPath, [side.bin, "port", "status", "--socket", side.socket]); break; } catch { if (i > 200) throw new Error(`the ${name} agent did not answer`); }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const rows: Record<string, { help: number[][]; plug: number[][] }> = {};
  const add = (row: string, kind: "help" | "plug", t: { wall: number; cpu: number }) => ((rows[row] ??= { help: [[], []], plug: [[], []] })[kind][0]!.push(t.wall), rows[row]![kind][1]!.push(t.cpu));
  for (let round = 0; round < rounds; round++) {
    add("`node -e 0` (floor)", "help", await timed([process.execPath, "-e", "0"]));
    for (const [name, side] of Object.entries(sides)) {
      add(name, "help", await timed([process.execPath, side.bin, "--help"]));
      add(name, "plug", await timed([process.execPath, side.bin, "port", "plug", MAC, "--socket", side.socket], name));
    }
    add("tsx (bin/vifguard)", "help", await timed([join(ROOT, "bin/vifguard"), "--help"]));
  }
  const cell = (xs: number[]): string => (xs.length === 0 || xs.some(Number.isNaN) ? "" : `${median(xs).toFixed(0)} (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`);
  const ratio = (a: number[], b: number[]): string => (a.length && b.length ? (median(a) / median(b)).toFixed(2) : "");
  const base = rows.before!;
  console.log(`| command | \`--help\` wall ms, median (range) | \`--help\` CPU ms | \`port plug\` round trip wall ms | \`port plug\` CPU ms (client) | vs before, wall (help / plug) |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const [name, r] of Object.entries(rows)) console.log(`| ${name} | ${cell(r.help[0]!)} | ${cell(r.help[1]!)} | ${cell(r.plug[0]!)} | ${cell(r.plug[1]!)} | ${ratio(r.help[0]!, base.help[0]!)} / ${ratio(r.plug[0]!, base.plug[0]!)} |`);
  for (const [name, ms] of Object.entries(agentMs)) console.log(`\n${name}: the agent's share of a plug (its answer's "protected in"): ${cell(ms)} ms`);
  console.log(`\n${rounds} interleaved rounds; before = ${before}; node ${process.version}; load average ${(await exec("cat", ["/proc/loadavg"])).stdout.split(" ").slice(0, 3).join(" ")}`);
} finally {
  for (const side of Object.values(sides)) {
    if (side.agent && side.agent.exitCode === null) {
      side.agent.kill("SIGTERM");
      await new Promise((r) => side.agent!.once("exit", r));
    }
    await run("nft", ["delete", "table", "bridge", "vifguard"], { netns: side.netns, allowFailure: true });
    await run("ip", ["netns", "delete", side.netns], { allowFailure: true });
  }
  await rm(tmp, { recursive: true, force: true });
}
