// A private, userspace Open vSwitch for tests, benchmarks and the conformance kit: effects.
// ovsdb-server runs in the root namespace with its own run directory; ovs-vswitchd runs in its own
// network namespace, since only one netdev vswitchd per namespace can create its tap device
// ("creating tap device failed: Device or resource busy" otherwise). Bridges are datapath_type=netdev.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addNetns, deleteNetns } from "../../conformance/lab/net.ts";
import { run, type RunResult } from "../../host/run.ts";

export type OvsSandbox = Readonly<{
  /** Unique per run, e.g. "vgo-1a2b3c"; names the netns and prefixes every object the caller makes. */
  prefix: string;
  runDir: string;
  dbSocket: string;
  /** The namespace ovs-vswitchd runs in; put the bridge's host-side ports here. */
  netns: string;
  /** OVS_RUNDIR and friends: pass to every ovs-* command. */
  env: Readonly<Record<string, string>>;
  vsctl(...args: string[]): Promise<RunResult>;
  ofctl(...args: string[]): Promise<RunResult>;
  appctl(...args: string[]): Promise<RunResult>;
  /** Adds a netdev bridge speaking OpenFlow 1.0–1.5. */
  addBridge(name: string): Promise<void>;
  /** Kills and restarts ovs-vswitchd (flows are lost; OVSDB configuration stays). */
  restartSwitch(): Promise<void>;
  /** Kills and restarts ovsdb-server on the same database file and socket (clients are disconnected). */
  restartDatabase(): Promise<void>;
  /** Stops both daemons by PID, deletes the namespace and the run directory. Safe to call twice. */
  stop(): Promise<void>;
}>;

export type SandboxOptions = Readonly<{ prefix: string }>;

async function readPid(file: string): Promise<number | undefined> {
  const { readFile } = await import("node:fs/promises");
  try {
    const pid = Number((await readFile(file, "utf8")).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function killPid(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 20));
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Starts ovsdb-server and ovs-vswitchd under a fresh run directory; stop() undoes everything. */
export async function startOvsSandbox(options: SandboxOptions): Promise<OvsSandbox> {
  const prefix = options.prefix;
  const runDir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  const dbSocket = join(runDir, "db.sock");
  const netns = `${prefix}-ovs`;
  const env = { OVS_RUNDIR: runDir, OVS_LOGDIR: runDir, OVS_DBDIR: runDir, OVS_SYSCONFDIR: runDir };
  const switchPid = join(runDir, "ovs-vswitchd.pid");
  let stopped = false;

  const dbPid = join(runDir, "ovsdb-server.pid");
  const startDatabase = async (): Promise<void> => {
    await run("ovsdb-server", [join(runDir, "conf.db"), `--remote=punix:${dbSocket}`, `--pidfile=${dbPid}`, `--log-file=${join(runDir, "ovsdb-server.log")}`, "--detach", "--no-chdir"], { env });
  };
  const startSwitch = async (): Promise<void> => {
    await run("ovs-vswitchd", [`unix:${dbSocket}`, `--pidfile=${switchPid}`, `--log-file=${join(runDir, "ovs-vswitchd.log")}`, "--detach", "--no-chdir"], { env, netns });
  };
  const sandbox: OvsSandbox = {
    prefix,
    runDir,
    dbSocket,
    netns,
    env,
    vsctl: (...args) => run("ovs-vsctl", [`--db=unix:${dbSocket}`, "--timeout=10", ...args], { env }),
    ofctl: (...args) => run("ovs-ofctl", args, { env }),
    appctl: (...args) => run("ovs-appctl", args, { env }),
    async addBridge(name) {
      await sandbox.vsctl("add-br", name, "--", "set", "bridge", name, "datapath_type=netdev", "protocols=OpenFlow10,OpenFlow13,OpenFlow15");
    },
    async restartSwitch() {
      await killPid(await readPid(switchPid));
      await startSwitch();
      // Wait until every bridge answers again.
      for (let i = 0; i < 100; i++) {
        const bridges = (await sandbox.vsctl("list-br")).stdout.split("\n").filter(Boolean);
        const ok = await Promise.all(bridges.map((b) => run("ovs-ofctl", ["show", b], { env, allowFailure: true })));
        if (ok.every((r) => r.code === 0)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error("ovs-vswitchd did not come back");
    },
    async restartDatabase() {
      await killPid(await readPid(dbPid));
      await startDatabase();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await killPid(await readPid(switchPid));
      await killPid(await readPid(dbPid));
      await deleteNetns(netns);
      await rm(runDir, { recursive: true, force: true });
    },
  };
  try {
    await addNetns(netns);
    await run("ovsdb-tool", ["create", join(runDir, "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"], { env });
    await startDatabase();
    await sandbox.vsctl("--no-wait", "init");
    await startSwitch();
  } catch (error) {
    await sandbox.stop();
    throw error;
  }
  return sandbox;
}

/** A per-run prefix such as "vgo-k3x9"; short, since interface names have 15 characters. */
export function sandboxPrefix(stem = "vgo"): string {
  return `${stem}-${Math.random().toString(36).slice(2, 6)}`;
}
