// `vifguard port plug|unplug|migrate-in|migrate-out`: the requests to the running agent, without the
// command-line library, so that hooks' calls (src/cli/port-fast.ts) load only this, the control
// socket's client and the socket lookup. Effects (the socket, stdout).
import { LifecycleError, requestLifecycle, type LifecycleAnswer, type LifecycleOp } from "../agent/lifecycle.ts";
import { UsageError } from "../errors.ts";
import { agentSocket } from "./agent-socket.ts";

export type PortFlags = Readonly<{
  socket?: string | undefined;
  timeout: string;
  json?: boolean | undefined;
  waitReady?: boolean | undefined;
  /** MAC=DEVICE pairs: the host device the hypervisor gave each guest MAC (libvirt's <target dev>). */
  device?: readonly string[] | undefined;
}>;

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const DEVICE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;

/** Parses `--device MAC=DEVICE` values into guest MAC (lower-case) → device; a malformed one is a UsageError. */
export function parseDevicePairs(pairs: readonly string[]): Record<string, string> {
  const devices: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    const mac = pair.slice(0, at).toLowerCase().replaceAll("-", ":");
    const device = pair.slice(at + 1);
    if (at < 0 || !MAC.test(mac) || !DEVICE.test(device)) throw new UsageError(`--device ${pair}: expected MAC=DEVICE, e.g. 52:54:00:12:34:56=vnet3`);
    devices[mac] = device;
  }
  return devices;
}

/**
 * One request per port, all at once (a hook names all of a domain's MACs in one call); fails if any
 * failed. The agent answers each as soon as the port's unit is applied.
 */
export async function sendPort(op: LifecycleOp, ports: readonly (string | undefined)[], flags: PortFlags): Promise<void> {
  const timeoutMs = Number(flags.timeout);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout ${flags.timeout}: expected milliseconds, e.g. 30000`);
  const socket = flags.socket ?? (await agentSocket());
  const devices = flags.device && flags.device.length > 0 ? { devices: parseDevicePairs(flags.device) } : {};
  const waitReady = op === "migrate-in" && flags.waitReady === false ? { waitReady: false } : {};
  const answers: LifecycleAnswer[] = await Promise.all(
    ports.map((port) => requestLifecycle(socket, { op, ...(port !== undefined && { port }), timeoutMs, ...waitReady, ...devices }, timeoutMs + 5_000)),
  );
  if (flags.json) console.log(JSON.stringify(answers.length === 1 ? answers[0] : answers, null, 2));
  else for (const answer of answers) if (answer.ok) console.log(answer.message);
  const failed = answers.filter((a) => !a.ok);
  if (failed.length > 0) throw new LifecycleError(failed[0]!.code, failed.map((a) => a.message).join("\n  "));
}
