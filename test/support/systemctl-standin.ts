// A stand-in for systemctl on a test host without systemd as PID 1, for the commands docs/install.md
// uses: enable [--now], disable [--now], start, stop, restart, is-active, daemon-reload (a no-op).
// `start` does what systemd does for the shipped units' Type=simple service, as far as a test needs:
// creates RuntimeDirectory= and StateDirectory= with their modes, then runs ExecStart with the unit's
// user, capability sets, secure bits, no-new-privileges flag and umask (test/support/unit-privileges.ts,
// through setpriv), detached, its output appended to $VG_STANDIN_STATE/UNIT.log, its pid in UNIT.pid.
// Namespaces, the system-call filter and Restart= are not reproduced (systemd-analyze checks those).
// Run by a wrapper the test writes on PATH: node --import <tsx> systemctl-standin.ts ARGS.
// Effects: processes, directories, the state directory.
import { spawn } from "node:child_process";
import { existsSync, openSync } from "node:fs";
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseUnitPrivileges, privilegedCommand } from "./unit-privileges.ts";

const UNITS = process.env.VG_STANDIN_UNITS ?? "/lib/systemd/system";
const STATE = process.env.VG_STANDIN_STATE;

const unitName = (name: string): string => (name.includes(".") ? name : `${name}.service`);

/** The [Service] values of `key`, in order (a unit may repeat a key). Pure. */
function serviceValues(text: string, key: string): string[] {
  let section = "";
  const values: string[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1]!;
    else if (section === "Service" && line.startsWith(`${key}=`)) values.push(line.slice(key.length + 1).trim());
  }
  return values;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function runningPid(unit: string): Promise<number | undefined> {
  const pid = Number((await readFile(join(STATE!, `${unit}.pid`), "utf8").catch(() => "")).trim());
  return Number.isInteger(pid) && pid > 0 && alive(pid) ? pid : undefined;
}

async function start(unit: string): Promise<void> {
  if ((await runningPid(unit)) !== undefined) return;
  const text = await readFile(join(UNITS, unit), "utf8").catch(() => {
    throw new Error(`Unit ${unit} not found in ${UNITS}.`);
  });
  const exec = serviceValues(text, "ExecStart").at(-1);
  if (!exec) throw new Error(`${unit}: no ExecStart=`);
  // systemd creates these before ExecStart runs (owned by the service's user: root for the shipped agent).
  for (const [key, base] of [["RuntimeDirectory", "/run"], ["StateDirectory", "/var/lib"]] as const) {
    const mode = serviceValues(text, `${key}Mode`).at(-1);
    for (const dir of serviceValues(text, key).flatMap((v) => v.split(/\s+/)).filter(Boolean)) {
      await mkdir(join(base, dir), { recursive: true });
      if (mode) await chmod(join(base, dir), parseInt(mode, 8));
    }
  }
  const { command, args } = privilegedCommand(parseUnitPrivileges(text), exec.split(/\s+/));
  const log = openSync(join(STATE!, `${unit}.log`), "a");
  const child = spawn(command, args, { detached: true, stdio: ["ignore", log, log] });
  await writeFile(join(STATE!, `${unit}.pid`), `${child.pid}\n`);
  child.unref();
}

async function stop(unit: string): Promise<void> {
  const pid = await runningPid(unit);
  if (pid === undefined) return;
  process.kill(-pid, "SIGTERM"); // its own process group (detached): the agent and any tool it runs
  const until = performance.now() + 10_000;
  while (alive(pid) && performance.now() < until) await new Promise((r) => setTimeout(r, 100));
  if (alive(pid)) process.kill(-pid, "SIGKILL");
  await rm(join(STATE!, `${unit}.pid`), { force: true });
}

async function main(argv: string[]): Promise<number> {
  if (!STATE) throw new Error("VG_STANDIN_STATE is not set (the test's wrapper sets it)");
  await mkdir(STATE, { recursive: true });
  const now = argv.includes("--now");
  const [verb, ...units] = argv.filter((a) => a !== "--now" && a !== "-q" && a !== "--quiet");
  const names = units.map(unitName);
  switch (verb) {
    case "daemon-reload":
      return 0;
    case "enable":
      for (const u of names) {
        if (!existsSync(join(UNITS, u))) throw new Error(`Unit ${u} not found in ${UNITS}.`);
        await writeFile(join(STATE, `${u}.enabled`), "");
        if (now) await start(u);
      }
      return 0;
    case "disable":
      for (const u of names) {
        await rm(join(STATE, `${u}.enabled`), { force: true });
        if (now) await stop(u);
      }
      return 0;
    case "start":
      for (const u of names) await start(u);
      return 0;
    case "stop":
      for (const u of names) await stop(u);
      return 0;
    case "restart":
      for (const u of names) {
        await stop(u);
        await start(u);
      }
      return 0;
    case "is-active": {
      let all = true;
      for (const u of names) {
        const up = (await runningPid(u)) !== undefined;
        console.log(up ? "active" : "inactive");
        all &&= up;
      }
      return all ? 0 : 3; // systemctl's status for "not active"
    }
    default:
      throw new Error(`the test's systemctl stand-in does not do "${verb ?? ""}" (only enable, disable, start, stop, restart, is-active, daemon-reload)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`systemctl (test stand-in): ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
