// By hand (as root for PostgreSQL): node --import tsx bench/controller-freeze.ts [--before DIR]
//   [--stores sqlite,postgres] [--background 2000] [--rounds 5] [--huge 10000]
// Issue 12, item 4: can one tenant's write freeze the controller? On a store with --background
// ports of other tenants (1 IPv4 + 1 IPv6 each) on a shared network, a tenant writes the largest
// port the limits allow (256 IPv6 addresses + 256 IPv6 pairs: POST, then a PATCH that replaces all
// of them) while an unrelated GET /v1/revision runs every 2 ms. Reports the write's time, the GET
// latency p50/p99/max during it, and the longest event-loop block (the longest gap between ticks of
// a 1 ms interval) in wall time and in the CPU time the process spent in that gap: on a loaded host
// the wall gap also holds the time other processes had the core, the CPU gap is the work that held
// the loop. Then a POST of --huge addresses (the attack, smaller).
// Every round runs in a fresh process on a fresh store, so every first write is the cold first write
// of a controller just started. With --before DIR (a checkout of an older vifguard with
// node_modules), the same runs against that code, side by side, interleaved; SQLite and PostgreSQL
// (a throwaway server, a fresh database per round) likewise.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { postgresUnavailable, startThrowawayPostgres } from "../test/controller/helpers.ts";
import { percentile } from "./stats.ts";

const { values: args } = parseArgs({
  options: {
    before: { type: "string" },
    stores: { type: "string", default: "sqlite,postgres" },
    background: { type: "string", default: "2000" },
    rounds: { type: "string", default: "5" },
    huge: { type: "string", default: "10000" },
    // One round in this process (the parent spawns these): the code's root and the store's URL.
    child: { type: "string" },
    store: { type: "string" },
  },
});

const ADMIN = "bench-admin-token-0123456789abcdef";
type Call = (method: string, path: string, body?: unknown, token?: string) => Promise<{ status: number; json: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Sample = { writeMs: number; status: number; getP50: number; getP99: number; getMax: number; gets: number; blockMs: number; blockCpuMs: number };

async function setUp(root: string, store: string): Promise<{ call: Call; eve: string; close(): Promise<void> }> {
  const { startController } = (await import(resolve(root, "src/controller/server.ts"))) as typeof import("../src/controller/server.ts");
  const c = await startController({ store, bootstrapTokens: [ADMIN], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent", maxBodyBytes: 64 << 20, watchPollMs: 1000 });
  const call: Call = async (method, path, body, token = ADMIN) => {
    const res = await fetch(`${c.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  await call("POST", "/v1/networks", { id: "pub", tenant: "provider", shared: true });
  const background = Number(args.background);
  for (let i = 0; i < background; i += 500) {
    const ports = Array.from({ length: Math.min(500, background - i) }, (_, k) => {
      const n = i + k;
      return { id: `bg-${n}`, tenant: `t${n % 50}`, network: "pub", device: `v${n}`, mac: `52:54:01:${((n >> 16) & 255).toString(16).padStart(2, "0")}:${((n >> 8) & 255).toString(16).padStart(2, "0")}:${(n & 255).toString(16).padStart(2, "0")}`, ips: [`10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`, `2001:db8:1::${n.toString(16)}`] };
    });
    const res = await call("POST", "/v1/ports/batch", { ports });
    if (res.status !== 201) throw new Error(`background ports: ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
  }
  const eve = (await call("POST", "/v1/tokens", { role: "tenant", tenant: "eve" })).json.token as string;
  return { call, eve, close: () => c.close() };
}

/**
 * Runs `write` while GETting /v1/revision every 2 ms on a fixed schedule: a GET's latency counts from
 * when it was due, so a blocked loop that delays sending it counts too (no coordinated omission).
 * The longest event-loop block is the longest gap between ticks of a 1 ms interval during the write.
 */
async function measure(call: Call, write: () => Promise<{ status: number }>): Promise<Sample> {
  const latencies: number[] = [];
  let running = true;
  const start = performance.now();
  const poller = (async () => {
    for (let n = 0; running; n++) {
      const due = start + n * 2;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // A reset connection (keep-alive sockets idle through a long block) is answered late too.
      await call("GET", "/v1/revision").catch(() => call("GET", "/v1/revision"));
      latencies.push(performance.now() - due);
      if (performance.now() - due > 2) n = Math.floor((performance.now() - start) / 2); // one GET per due slot missed, not a burst
    }
  })();
  await new Promise((r) => setTimeout(r, 20));
  let last = performance.now();
  let lastCpu = process.cpuUsage();
  let blockMs = 0;
  let blockCpuMs = 0;
  const tick = (): void => {
    const now = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    blockMs = Math.max(blockMs, now - last);
    blockCpuMs = Math.max(blockCpuMs, (cpu.user + cpu.system) / 1000);
    last = now;
    lastCpu = process.cpuUsage();
  };
  const ticker = setInterval(tick, 1);
  const t0 = performance.now();
  const res = await write();
  const writeMs = performance.now() - t0;
  tick();
  clearInterval(ticker);
  await new Promise((r) => setTimeout(r, 10));
  running = false;
  await poller;
  const sorted = latencies.sort((a, b) => a - b);
  return { writeMs, status: res.status, getP50: percentile(sorted, 50), getP99: percentile(sorted, 99), getMax: sorted.at(-1) ?? NaN, gets: sorted.length, blockMs, blockCpuMs };
}

const v6 = (n: number, net: string) => Array.from({ length: n }, (_, i) => `2001:db8:${net}::${i.toString(16)}`);
const pairs = (n: number, net: string) => Array.from({ length: n }, (_, i) => ({ ip: `2001:db8:${net}:${i.toString(16)}::/64` }));

async function scenario(root: string, store: string): Promise<Record<string, Sample>> {
  const { call, eve, close } = await setUp(root, store);
  // The bodies are built before the clock starts: the client's work is not the controller's.
  const big = { id: "big", network: "pub", device: "vbig", mac: "52:54:00:ee:00:01", ips: v6(256, "e"), allowed: pairs(256, "f") };
  const change = { ips: v6(256, "e1"), allowed: pairs(256, "f1") };
  const huge = { id: "huge", network: "pub", device: "vhuge", mac: "52:54:00:ee:00:02", ips: v6(Number(args.huge), "a") };
  try {
    return {
      "create 256 + 256 (the first write)": await measure(call, () => call("POST", "/v1/ports", big, eve)),
      "PATCH all 256 + 256": await measure(call, () => call("PATCH", "/v1/ports/big", change, eve)),
      [`POST ${args.huge} addresses`]: await measure(call, () => call("POST", "/v1/ports", huge, eve)),
    };
  } finally {
    await close();
  }
}

if (args.child) {
  console.log(JSON.stringify(await scenario(args.child, args.store!)));
  process.exit(0);
}

/** A fresh store for one round: a SQLite file, or a new database on the throwaway PostgreSQL server. */
async function freshStore(kind: string, server: { url: string } | undefined, name: string): Promise<{ url: string; drop(): Promise<void> }> {
  if (kind === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "vg-bench-freeze-"));
    return { url: `sqlite://${join(dir, "c.db")}`, drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }
  const admin = async (sql: string): Promise<void> => {
    const client = new pg.Client({ connectionString: server!.url.replace(/\/vifguard$/, "/postgres") });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  return { url: server!.url.replace(/\/vifguard$/, `/${name}`), drop: () => admin(`drop database ${name}`) };
}

const roots: [string, string][] = [["after", resolve(import.meta.dirname, "..")], ...(args.before ? [["before", resolve(args.before)] as [string, string]] : [])];
const results = new Map<string, Sample[]>();
for (const kind of args.stores.split(",")) {
  if (kind !== "sqlite" && kind !== "postgres") throw new Error(`--stores: ${kind} is neither sqlite nor postgres`);
  const why = kind === "postgres" ? postgresUnavailable() : undefined;
  if (why) throw new Error(`PostgreSQL: ${why}`);
  const server = kind === "postgres" ? await startThrowawayPostgres() : undefined;
  try {
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const [label, root] of round % 2 === 0 ? roots : [...roots].reverse()) {
        const store = await freshStore(kind, server, `freeze_${round}_${label}`);
        try {
          const child = spawnSync(process.execPath, ["--import", "tsx", import.meta.filename, "--child", root, "--store", store.url, "--background", args.background, "--huge", args.huge], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 });
          if (child.status !== 0) throw new Error(`round ${round} (${label}, ${kind}) exited ${child.status}`);
          for (const [name, sample] of Object.entries(JSON.parse(child.stdout.trim().split("\n").at(-1)!) as Record<string, Sample>)) {
            const key = `${name} | ${kind === "sqlite" ? "SQLite" : "PostgreSQL"} | ${label}`;
            results.set(key, [...(results.get(key) ?? []), sample]);
          }
        } finally {
          await store.drop();
        }
      }
    }
  } finally {
    server?.stop();
  }
}
const med = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (x: number) => x.toFixed(1);
console.log("| write | store | code | status | write (median) | GET /v1/revision p50 / p99 / max during it (median of rounds) | longest event-loop block, wall: median / max of rounds | … its CPU time: median / max | GETs answered (per round) |");
console.log("|---|---|---|---:|---:|---:|---:|---:|---:|");
for (const [key, samples] of [...results].sort()) {
  const [name, store, label] = key.split(" | ");
  console.log(`| ${name} | ${store} | ${label} | ${samples.map((s) => s.status).join("/")} | ${f(med(samples.map((s) => s.writeMs)))} ms | ${f(med(samples.map((s) => s.getP50)))} / ${f(med(samples.map((s) => s.getP99)))} / ${f(med(samples.map((s) => s.getMax)))} ms | ${f(med(samples.map((s) => s.blockMs)))} / ${f(Math.max(...samples.map((s) => s.blockMs)))} ms | ${f(med(samples.map((s) => s.blockCpuMs)))} / ${f(Math.max(...samples.map((s) => s.blockCpuMs)))} ms | ${samples.map((s) => s.gets).join("/")} |`);
}
