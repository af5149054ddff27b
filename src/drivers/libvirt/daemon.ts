// Starting and restarting the system libvirtd for tests, benches and the conformance kit: effects
// (processes through host/run). Production hosts run libvirtd from their init system.
import { existsSync, readFileSync } from "node:fs";
import { run } from "../../host/run.ts";

export const NWFILTER_URI = "nwfilter:///system";
const PID_FILE = "/run/libvirtd.pid";
const VIRTLOGD_PID_FILE = "/run/virtlogd.pid";
const VIRTLOGD_SOCKET = "/run/libvirt/virtlogd-sock";

/** Does libvirtd answer nwfilter calls on `uri`? */
export async function libvirtdAnswers(uri = NWFILTER_URI): Promise<boolean> {
  const r = await run("virsh", ["-q", "-c", uri, "nwfilter-binding-list"], { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined);
  return r?.code === 0;
}

/** The live process named by a pid file (undefined if the file is missing or stale). */
function pidFromFile(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isAlive(pid) ? pid : undefined;
}

/** The pid of the running libvirtd, from its pid file (undefined if none is running). */
export function libvirtdPid(): number | undefined {
  return pidFromFile(PID_FILE);
}

/**
 * Makes sure virtlogd runs: libvirtd hands every QEMU guest's console and log to it, so without it
 * `virsh start` fails ("Failed to connect socket to '/run/libvirt/virtlogd-sock'") although nwfilter
 * calls work. Resolves with whether it had to start it. Needs root.
 */
export async function ensureVirtlogd(timeoutMs = 30_000): Promise<{ started: boolean }> {
  if (pidFromFile(VIRTLOGD_PID_FILE) !== undefined && existsSync(VIRTLOGD_SOCKET)) return { started: false };
  await run("mkdir", ["-p", "/var/log/libvirt/qemu", "/run/libvirt"]);
  if (pidFromFile(VIRTLOGD_PID_FILE) === undefined) await run("virtlogd", ["-d"]);
  if (!(await waitFor(async () => existsSync(VIRTLOGD_SOCKET), timeoutMs))) throw new Error(`virtlogd did not create ${VIRTLOGD_SOCKET} within ${timeoutMs} ms`);
  return { started: true };
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/**
 * Makes sure libvirtd runs and answers, with virtlogd beside it (guests need it to start): creates
 * the libvirt-qemu user and group it insists on (idempotently), its run and log directories, and
 * starts `libvirtd -d`. Needs root. Resolves with whether it had to start libvirtd.
 */
export async function ensureLibvirtd(uri = NWFILTER_URI, timeoutMs = 30_000): Promise<{ started: boolean }> {
  await ensureVirtlogd(timeoutMs);
  if (await libvirtdAnswers(uri)) return { started: false };
  if ((await run("getent", ["group", "libvirt-qemu"], { allowFailure: true })).code !== 0) await run("groupadd", ["-r", "libvirt-qemu"]);
  if ((await run("id", ["libvirt-qemu"], { allowFailure: true })).code !== 0) await run("useradd", ["-r", "-g", "libvirt-qemu", "libvirt-qemu"]);
  await run("mkdir", ["-p", "/var/log/libvirt", "/var/run/libvirt"]);
  const running = libvirtdPid();
  if (running === undefined) await run("libvirtd", ["-d"]);
  if (!(await waitFor(() => libvirtdAnswers(uri), timeoutMs))) {
    throw new Error(`libvirtd ${running === undefined ? "did not answer" : `(pid ${running}, already running) does not answer`} on ${uri} within ${timeoutMs} ms${running === undefined ? "" : ": is /run/libvirt/libvirt-sock missing? restart it"}`);
  }
  return { started: true };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops libvirtd (SIGTERM to the pid in its pid file) and waits until the process is gone: not
 * just its pid file, which goes first; a new libvirtd started before the old one has exited gets
 * its socket deleted by the old one's clean-up and never answers.
 */
export async function stopLibvirtd(timeoutMs = 30_000): Promise<void> {
  const pid = libvirtdPid();
  if (pid === undefined) return;
  process.kill(pid, "SIGTERM");
  if (!(await waitFor(async () => !isAlive(pid), timeoutMs))) throw new Error(`libvirtd (pid ${pid}) did not stop within ${timeoutMs} ms`);
}

/** Stops and starts libvirtd; resolves when it answers again. */
export async function restartLibvirtd(uri = NWFILTER_URI, timeoutMs = 60_000): Promise<void> {
  await stopLibvirtd(timeoutMs);
  await ensureLibvirtd(uri, timeoutMs);
}
