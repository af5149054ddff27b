// Lifecycle entry points (plug, unplug, migrate-in, migrate-out; status and events to read) over a local control socket:
// a unix socket of mode 0600 owned by root, one JSON request line in, one JSON answer line out.
// Effects (a socket). The agent decides what each operation does; this file only carries it.
import { mkdir, unlink } from "node:fs/promises";
import { connect, createServer, type Server } from "node:net";
import { dirname } from "node:path";
import { VifguardError } from "../errors.ts";

/** Where the agent listens for lifecycle requests unless its config says otherwise. */
export const DEFAULT_CONTROL_SOCKET = "/run/vifguard/agent.sock";

export const LIFECYCLE_OPS = ["plug", "unplug", "migrate-in", "migrate-out", "status", "events"] as const;
export type LifecycleOp = (typeof LIFECYCLE_OPS)[number];

/**
 * `waitReady` (migrate-in, controller source): also wait until the controller shows the port ready here; default true.
 * `devices` (plug, migrate-in): guest MAC → the host device the hypervisor gave it (libvirt's domain XML:
 * <interface><mac address/><target dev/>), for ports that name no existing device (src/agent/device-match.ts).
 */
export type LifecycleRequest = Readonly<{ op: LifecycleOp; port?: string; timeoutMs?: number; waitReady?: boolean; devices?: Readonly<Record<string, string>> }>;
export type LifecycleAnswer = Readonly<{ ok: true; message: string; data?: unknown }> | Readonly<{ ok: false; code: string; message: string }>;

/** A lifecycle request failed (the agent said no, or could not be reached). */
export class LifecycleError extends VifguardError {
  override name = "LifecycleError";
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

function isRequest(value: unknown): value is LifecycleRequest {
  if (value === null || typeof value !== "object") return false;
  const r = value as Record<string, unknown>;
  const devices = r.devices;
  const devicesOk = devices === undefined || (devices !== null && typeof devices === "object" && !Array.isArray(devices) && Object.values(devices).every((d) => typeof d === "string"));
  return (LIFECYCLE_OPS as readonly unknown[]).includes(r.op) && (r.port === undefined || typeof r.port === "string") && (r.timeoutMs === undefined || typeof r.timeoutMs === "number") && (r.waitReady === undefined || typeof r.waitReady === "boolean") && devicesOk;
}

/** Is another agent answering on `path`? */
function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

/** Listens on `path` (mode 0600); a stale socket from a killed agent is replaced, a live one is an error. */
export async function serveLifecycle(path: string, handle: (request: LifecycleRequest) => Promise<LifecycleAnswer>): Promise<Server> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  if (await answering(path)) throw new LifecycleError("VG_AGENT_RUNNING", `another agent already answers on ${path}`);
  await unlink(path).catch(() => undefined);
  const server = createServer((socket) => {
    let buffer = "";
    socket.setEncoding("utf8");
    socket.on("error", () => undefined);
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf("\n");
      if (end < 0) {
        if (buffer.length > 65_536) socket.destroy();
        return;
      }
      const line = buffer.slice(0, end);
      buffer = "";
      let request: unknown;
      try {
        request = JSON.parse(line);
      } catch {
        request = undefined;
      }
      const answer: Promise<LifecycleAnswer> = isRequest(request)
        ? handle(request).catch((e: unknown) => ({ ok: false, code: e instanceof VifguardError ? e.code : "VG_INTERNAL", message: e instanceof Error ? e.message : String(e) }))
        : Promise.resolve({ ok: false, code: "VG_USAGE", message: `expected one JSON line {"op": ${LIFECYCLE_OPS.map((o) => `"${o}"`).join("|")}, "port": ID}` });
      void answer.then((a) => socket.end(JSON.stringify(a) + "\n"));
    });
  });
  // The socket file is created with the process umask: make it 0600 from the start, not after a chmod.
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(previous);
  }
  return server;
}

/** Sends one request to the agent and waits for its answer. */
export function requestLifecycle(path: string, request: LifecycleRequest, timeoutMs: number): Promise<LifecycleAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let buffer = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new LifecycleError("VG_AGENT_TIMEOUT", `the agent on ${path} did not answer ${request.op} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding("utf8");
    socket.once("connect", () => socket.write(JSON.stringify(request) + "\n"));
    socket.on("data", (chunk: string) => (buffer += chunk));
    socket.once("error", (cause) => {
      clearTimeout(timer);
      reject(new LifecycleError("VG_AGENT_UNREACHABLE", `cannot reach the vifguard agent on ${path} (is it running, and are you root?): ${cause.message}`, { cause }));
    });
    socket.once("close", () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(buffer) as LifecycleAnswer);
      } catch {
        reject(new LifecycleError("VG_AGENT_UNREACHABLE", `the agent on ${path} closed the connection without an answer`));
      }
    });
  });
}
