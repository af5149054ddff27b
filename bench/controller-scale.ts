// By hand (as root for PostgreSQL): node --import tsx bench/controller-scale.ts [--ports 100000] [--agents 1000]
//   [--changes 200] [--stores sqlite,postgres] [--replicas 2] [--store URL] [--write] [--profile DIR]
//   [--before DIR]
// For each store, side by side in one run: starts the controller in child processes (so their RSS is
// their own): one on a temp SQLite file; --replicas on one throwaway PostgreSQL server (started like
// the tests start it: test/controller/helpers.ts); or one on --store URL. Creates the ports through
// POST /v1/ports/batch, then runs N in-process agents that long-poll GET /v1/hosts/{host}/desired over
// HTTP, agent h on replica h mod replicas. Measures the time from an API change (sent to the replicas
// in turn, so half the changes reach their agent through the other replica) to the agent of that
// port's host holding it, the fan-out of a global change to every agent, write throughput and the
// controllers' RSS. --write adds the table to bench/RESULTS.md "## controller" (older runs stay). --profile DIR: each
// controller writes a V8 CPU profile of the sequential changes and of the global change into DIR.
// --before DIR (a checkout of older code, with node_modules): each store is measured with the older
// controller and then with this one, one after the other in this run (column "code").
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startController } from "../src/controller/server.ts";
import { postgresUnavailable, startThrowawayPostgres } from "../test/controller/helpers.ts";
import { percentile } from "./stats.ts";

const ADMIN = "bench-admin-token-0123456789abcdef";
const { values: args } = parseArgs({
  options: {
    serve: { type: "string" },
    ports: { type: "string", default: "100000" },
    agents: { type: "string", default: "1000" },
    changes: { type: "string", default: "200" },
    networks: { type: "string", default: "100" },
    store: { type: "string" },
    stores: { type: "string", default: "sqlite,postgres" },
    replicas: { type: "string", default: "2" },
    write: { type: "boolean", default: false },
    profile: { type: "string" },
    before: { type: "string" },
  },
});

if (args.serve !== undefined) {
  // Child: the controller alone.
  const c = await startController({ store: args.serve, bootstrapTokens: [ADMIN], listen: { host: "127.0.0.1", port: 0 }, logLevel: "error", maxBodyBytes: 8 << 20, watchPollMs: 1000 });
  process.stdout.write(`${c.url}\n`);
  process.on("SIGTERM", () => void c.close().then(() => process.exit(0)));
  if (args.profile !== undefined) {
    // SIGUSR2 starts a CPU profile of a phase, the next one writes it (SIGUSR1 is the inspector's).
    const { Session } = await import("node:inspector/promises");
    const session = new Session();
    session.connect();
    await session.post("Profiler.enable");
    let phase = 0;
    let on = false;
    process.on("SIGUSR2", () => void (async () => {
      if (!on) {
        on = true;
        await session.post("Profiler.start");
        return;
      }
      on = false;
      const { profile } = await session.post("Profiler.stop");
      writeFileSync(join(args.profile!, `controller-${process.pid}-phase${phase++}.cpuprofile`), JSON.stringify(profile));
    })());
  }
} else {
  await main();
}

/** CPU time (user + system) a process has used, in ms: less disturbed by a loaded host than latencies. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in USER_HZ (100)
}

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string): number => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}


type Row = Record<string, string | number>;

async function main(): Promise<void> {
  const rows: Row[] = [];
  const stores = args.store ? [args.store] : args.stores.split(",");
  const codes: [string, string][] = [...(args.before ? [["before", resolve(args.before, "bench/controller-scale.ts")] as [string, string]] : []), ["after", import.meta.filename]];
  for (const name of stores.flatMap((s) => codes.map((c) => [s, c[1]] as const))) {
    rows.push(await measureStore(name[0], name[1]));
  }
  const table = [
    "| store | code | replicas | ports | agents | create (batches of 1,000) | agents' first sets | one change: API call p50 | change → agent p50 / p99 / max | … through the other replica p50 / p99 | global change → all agents p50 / p99 / max | controllers' CPU per change / per global change | controller RSS per replica: after create / agents waiting / peak |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| ${r.store} | ${r.code} | ${r.replicas} | ${r.ports} | ${r.agents} | ${r.setup} | ${r.start} | ${r.api} ms | ${r.p50} / ${r.p99} / ${r.max} ms | ${r.x50} / ${r.x99} ms | ${r.f50} / ${r.f99} / ${r.fmax} ms | ${r.cpuChange} / ${r.cpuFanout} ms | ${r.rssIdle} / ${r.rssWaiting} / ${r.peak} MB |`,
    ),
  ].join("\n");
  console.log(table);
  if (args.write) writeResults(table, Number(args.changes));
  process.exit(0); // the agents' pending long-polls
}

async function measureStore(name: string, code: string): Promise<Row> {
  if (name === "sqlite") {
    const dir = mkdtempSync(join(tmpdir(), "vg-bench-controller-"));
    try {
      return await measure(`sqlite://${join(dir, "controller.db")}`, 1, code);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else if (name === "postgres") {
    const why = postgresUnavailable();
    if (why) throw new Error(`PostgreSQL: ${why}`);
    const server = await startThrowawayPostgres();
    try {
      return await measure(server.url, Number(args.replicas), code);
    } finally {
      server.stop();
    }
  } else {
    return await measure(name, 1, code);
  }
}

async function startReplica(store: string, code: string): Promise<{ url: string; child: ReturnType<typeof spawn> }> {
  // An older bench file may not know --profile.
  const child = spawn(process.execPath, ["--import", "tsx", code, "--serve", store, ...(args.profile && code === import.meta.filename ? ["--profile", args.profile] : [])], { stdio: ["ignore", "pipe", "inherit"] });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding("utf8").once("data", (d: string) => resolve(d.trim()));
    child.once("exit", (code) => reject(new Error(`controller exited ${code}`)));
  });
  return { url, child };
}

async function measure(store: string, nReplicas: number, code: string): Promise<Row> {
  const nPorts = Number(args.ports);
  const nAgents = Number(args.agents);
  const nChanges = Number(args.changes);
  const nNetworks = Number(args.networks);
  const replicas: { url: string; child: ReturnType<typeof spawn> }[] = [];
  // One after the other: the first migrates the store.
  for (let r = 0; r < nReplicas; r++) replicas.push(await startReplica(store, code));
  const url = replicas[0]!.url;
  const cpu = (): number => replicas.reduce((sum, r) => sum + cpuMs(r.child.pid!), 0);
  const rss = (what: "rss" | "peak"): string => replicas.map((r) => rssMb(r.child.pid!)[what].toFixed(0)).join(" + ");
  const call = async (method: string, path: string, body?: unknown, base = url): Promise<{ status: number; json: any }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const res = await fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const agentsStop: (() => void)[] = [];
  try {
    // --- setup: networks, ports in batches ---
    const t0 = performance.now();
    for (let n = 0; n < nNetworks; n++) await call("POST", "/v1/networks", { id: `net${n}`, tenant: `t${n}` });
    const BATCH = 1000;
    for (let i = 0; i < nPorts; i += BATCH) {
      const ports = Array.from({ length: Math.min(BATCH, nPorts - i) }, (_, k) => {
        const j = i + k;
        return { id: `p${j}`, network: `net${j % nNetworks}`, host: `h${j % nAgents}`, device: `vnet${Math.floor(j / nAgents)}`, mac: mac(j + 1), ips: [`10.${(j >> 16) & 0xff}.${(j >> 8) & 0xff}.${j & 0xff}`, `2001:db8::${((j + 1) >> 16).toString(16)}:${((j + 1) & 0xffff).toString(16)}`] };
      });
      const res = await call("POST", "/v1/ports/batch", { ports });
      if (res.status !== 201) throw new Error(`batch at ${i}: ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
    }
    const setupS = (performance.now() - t0) / 1000;
    const afterSetup = rss("rss");
    console.log(`${store}: ${nPorts} ports in ${setupS.toFixed(1)} s; controller RSS ${afterSetup} MB`);

    // --- agents ---
    type Agent = { host: string; revision: number; seen: Map<number, number>; ports: number; stop: boolean; waiters: ((rev: number) => void)[] };
    const tokens = await Promise.all(Array.from({ length: nAgents }, async (_, h) => (await call("POST", "/v1/tokens", { role: "agent", host: `h${h}` })).json.token as string));
    const agents: Agent[] = tokens.map((_, h) => ({ host: `h${h}`, revision: 0, seen: new Map(), ports: 0, stop: false, waiters: [] }));
    const tStart = performance.now();
    void agents.map(async (a, h) => {
      let since: number | undefined;
      while (!a.stop) {
        const q = since === undefined ? "" : `?since=${since}&timeoutMs=30000`;
        const res = await fetch(`${replicas[h % nReplicas]!.url}/v1/hosts/${a.host}/desired${q}`, { headers: { authorization: `Bearer ${tokens[h]}` } }).catch(() => undefined);
        if (!res) continue;
        if (res.status === 204) continue;
        const body = (await res.json()) as { revision: number; ports: unknown[] };
        const at = performance.now();
        since = a.revision = body.revision;
        a.ports = body.ports.length;
        a.seen.set(body.revision, at);
        for (const w of a.waiters.splice(0)) w(body.revision);
      }
    });
    while (agents.some((a) => a.revision === 0)) await new Promise((r) => setTimeout(r, 50));
    const startS = (performance.now() - tStart) / 1000;
    await new Promise((r) => setTimeout(r, 300)); // every agent is waiting now
    agentsStop.push(() => agents.forEach((a) => (a.stop = true)));
    const waiting = rss("rss");
    console.log(`agents: ${nAgents} initial desired sets (${agents[0]!.ports} ports each) in ${startS.toFixed(1)} s; controller RSS ${waiting} MB`);

    // --- sequential changes: API call → the port's host agent holds the new revision ---
    const seenBy = (a: Agent, revision: number): Promise<number> =>
      a.revision >= revision ? Promise.resolve(performance.now()) : new Promise((resolve) => {
        const check = (rev: number): void => void (rev >= revision ? resolve(performance.now()) : a.waiters.push(check));
        a.waiters.push(check);
      });
    const profile = async (): Promise<void> => {
      if (args.profile === undefined || code !== import.meta.filename) return; // an older child dies of SIGUSR2
      for (const r of replicas) r.child.kill("SIGUSR2");
      await new Promise((r) => setTimeout(r, 200));
    };
    await profile();
    const cpuChanges0 = cpu();
    const latencies: number[] = [];
    const crossing: number[] = []; // the agent polls another replica than the one written to
    const apiCalls: number[] = [];
    const startedAt: number[] = []; // s since the agents started: a slow change at a 30 s boundary meets the long-polls' timeouts
    for (let k = 0; k < nChanges; k++) {
      const j = Math.floor(Math.random() * nPorts);
      const agent = agents[j % nAgents]!;
      const writer = k % nReplicas;
      const t = performance.now();
      startedAt.push((t - tStart) / 1000);
      const res = await call("POST", `/v1/ports/p${j}/allowed`, { ip: `172.${16 + (k >> 16)}.${(k >> 8) & 0xff}.${k & 0xff}` }, replicas[writer]!.url);
      if (res.status !== 201) throw new Error(`change ${k}: ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
      apiCalls.push(performance.now() - t);
      const at = await seenBy(agent, res.json.revision as number);
      latencies.push(at - t);
      if ((j % nAgents) % nReplicas !== writer) crossing.push(at - t);
    }
    const cpuChanges = (cpu() - cpuChanges0) / nChanges;
    await profile();
    if (args.profile !== undefined || args.before !== undefined) {
      const slow = latencies.map((l, k) => [l, apiCalls[k]!, startedAt[k]!] as const).sort((x, y) => y[0] - x[0]).slice(0, 5);
      console.log(`${code === import.meta.filename ? "this" : "before"}: slowest changes (change → agent ms / API call ms @ s since the agents started): ${slow.map(([l, a, at]) => `${l.toFixed(0)}/${a.toFixed(0)} @ ${at.toFixed(1)}`).join(", ")}`);
    }
    latencies.sort((x, y) => x - y);
    crossing.sort((x, y) => x - y);
    apiCalls.sort((x, y) => x - y);

    // --- fan-out: the global switch wakes every agent ---
    await profile();
    const cpuFanout0 = cpu();
    const fanouts: number[] = [];
    for (const on of [false, true]) {
      const t = performance.now();
      const rev = (await call("PATCH", "/v1/config", { antiSpoofing: on })).json.revision as number;
      const ats = await Promise.all(agents.map((a) => seenBy(a, rev)));
      fanouts.push(...ats.map((at) => at - t));
    }
    const cpuFanout = (cpu() - cpuFanout0) / 2; // off, then on
    await profile();
    fanouts.sort((x, y) => x - y);
    const peak = rss("peak");
    for (const a of agents) a.stop = true;

    const row: Row = {
      ports: nPorts, agents: nAgents, store: store.startsWith("postgres") ? "PostgreSQL" : "SQLite", replicas: nReplicas,
      code: code === import.meta.filename ? (args.before ? "after" : "this") : "before",
      setup: `${setupS.toFixed(1)} s (${Math.round(nPorts / setupS)} ports/s)`,
      start: `${startS.toFixed(1)} s`,
      api: percentile(apiCalls, 50).toFixed(1),
      p50: percentile(latencies, 50).toFixed(1), p99: percentile(latencies, 99).toFixed(1), max: latencies.at(-1)!.toFixed(1),
      x50: crossing.length ? percentile(crossing, 50).toFixed(1) : "–", x99: crossing.length ? percentile(crossing, 99).toFixed(1) : "–",
      f50: percentile(fanouts, 50).toFixed(0), f99: percentile(fanouts, 99).toFixed(0), fmax: fanouts.at(-1)!.toFixed(0),
      cpuChange: cpuChanges.toFixed(1), cpuFanout: cpuFanout.toFixed(1),
      rssIdle: afterSetup, rssWaiting: waiting, peak,
    };
    console.log(row);
    return row;
  } finally {
    for (const stop of agentsStop) stop();
    for (const r of replicas) {
      r.child.kill("SIGTERM");
      await new Promise((resolve) => r.child.once("exit", resolve));
    }
  }
}

function mac(i: number): string {
  return `52:54:01:${((i >> 16) & 0xff).toString(16).padStart(2, "0")}:${((i >> 8) & 0xff).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}`;
}

function writeResults(table: string, nChanges: number): void {
  const file = join(import.meta.dirname, "RESULTS.md");
  const text = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmark results\n";
  const section = [
    "## controller",
    "",
    "`node --import tsx bench/controller-scale.ts --write` (as root, 2 cores, Node 20; SQLite and PostgreSQL side by side in",
    "one run). Each controller replica runs alone in a child process (RSS is its own): one on a SQLite file, two on one",
    "throwaway PostgreSQL 15 server (fsync off, started like the tests start it). The agents are in the bench process and",
    "long-poll `GET /v1/hosts/{host}/desired` over HTTP, one connection each, agent h on replica h mod 2. Each host holds",
    `100 ports (1 IPv4 + 1 IPv6 each) on 100 networks. ${nChanges} sequential changes, each \`POST /v1/ports/{id}/allowed\` on a random`,
    "port, sent to the replicas in turn and timed from sending the request to the agent of that port's host holding an",
    "answer at (or after) the change's revision (\"through the other replica\": the agent polls the replica not written to,",
    "which learns of the change by LISTEN/NOTIFY). The global change is `PATCH /v1/config` (off, then on): every",
    "agent gets its full set again.",
    "",
    table,
    "",
  ].join("\n");
  // Older runs stay: the new one goes at the end of "## controller" as a dated subsection (mark the
  // older ones as not current by hand).
  const start = text.indexOf("\n## controller\n");
  let next = start < 0 ? -1 : text.indexOf("\n## ", start + 1);
  if (start >= 0 && next < 0) next = text.length;
  const dated = section.replace("## controller\n", `### ${new Date().toISOString().slice(0, 10)} — current\n`);
  const out = start < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, next).trimEnd()}\n\n${dated}${text.slice(next)}`;
  writeFileSync(file, out);
}
