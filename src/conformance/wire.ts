// Puts raw frames on a wire and watches what arrives, inside network namespaces: effects. Uses the
// python3 standard library's AF_PACKET sockets (no scapy: starts in milliseconds), through host/run.
import { spawn, type ChildProcess } from "node:child_process";
import { run } from "../host/run.ts";

export const PYTHON = "/usr/bin/python3";

const SEND = `
import sys, json, socket, time
a = json.loads(sys.stdin.read())
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((a["iface"], 0))
for h in a["frames"]:
    s.send(bytes.fromhex(h))
    time.sleep(a["gapMs"] / 1000)
print(len(a["frames"]))
`;

// Reports every case seen in frames the interface receives (not ones it sends): by its marker (MARK +
// 5 digits), or by the whole frame without its marker (argv[3]: {"<n>": "<hex>"}), as it arrives when
// br_netfilter trims a bridged IP packet to its IP length and so cuts the marker off.
const CAPTURE = `
import sys, json, socket, signal, re
stop = False
def done(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, done)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.settimeout(0.05)
pattern = re.compile(re.escape(sys.argv[2].encode()) + rb"(\\d{5})")
whole = {bytes.fromhex(h): int(n) for n, h in json.loads(sys.argv[3]).items()}
seen = set()
print("ready", flush=True)
while not stop:
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    for m in pattern.finditer(data):
        seen.add(int(m.group(1)))
    if data in whole:
        seen.add(whole[data])
print(json.dumps(sorted(seen)), flush=True)
`;

/** Sends frames out of `iface` in `netns`, `gapMs` apart. */
export async function sendFrames(netns: string, iface: string, frames: readonly Uint8Array[], gapMs = 1): Promise<void> {
  if (frames.length === 0) return;
  const input = JSON.stringify({ iface, frames: frames.map((f) => Buffer.from(f).toString("hex")), gapMs });
  await run(PYTHON, ["-c", SEND], { netns, input, timeoutMs: 60_000 });
}

export type Capture = Readonly<{ ready: Promise<void>; stop(): Promise<Set<number>> }>;

/**
 * Starts watching `iface` in `netns` for frames carrying `mark` + a 5-digit case number, or equal to
 * one of `whole` (case number → the frame without its marker; give only frames no other case shares).
 */
export function captureMarkers(netns: string, iface: string, mark: string, children: Set<ChildProcess>, whole: ReadonlyMap<number, Uint8Array> = new Map()): Capture {
  const frames = JSON.stringify(Object.fromEntries([...whole].map(([n, frame]) => [n, Buffer.from(frame).toString("hex")])));
  const child = spawn("ip", ["netns", "exec", netns, PYTHON, "-c", CAPTURE, iface, mark, frames], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  let out = "";
  let err = "";
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
    if (out.includes("ready")) resolveReady();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const exited = new Promise<Set<number>>((resolve, reject) =>
    child.once("exit", () => {
      children.delete(child);
      resolveReady();
      const last = out.trim().split("\n").at(-1) ?? "";
      try {
        resolve(new Set(JSON.parse(last) as number[]));
      } catch {
        reject(new Error(`capture in ${netns} failed: ${err.trim() || out.trim() || "no output"}`));
      }
    }),
  );
  return { ready, stop: () => (child.kill("SIGTERM"), exited) };
}

/** Appends the marker of case `n` to a frame (after the headers' declared lengths: parsers ignore it). */
export function marked(frame: Uint8Array, mark: string, n: number): Uint8Array {
  const tail = new TextEncoder().encode(`${mark}${String(n).padStart(5, "0")}`);
  const out = new Uint8Array(frame.length + tail.length);
  out.set(frame);
  out.set(tail, frame.length);
  return out;
}
