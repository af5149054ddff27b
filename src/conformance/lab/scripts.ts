// Runs the lab's Python scripts (send.py, capture.py, ping.py beside this file) inside a network
// namespace: arguments as one JSON line on stdin, "ready" on stdout once the script's socket is
// bound, its answer as the last line. Closing stdin stops a script, so none outlives its parent.
// Effects: processes.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

/** Debian's python3 (scapy's too); the scripts need only its standard library. */
export const PYTHON = "/usr/bin/python3";
const HERE = new URL(".", import.meta.url).pathname;

export type ScriptName = "send" | "capture" | "ping";

export type Running<T> = Readonly<{
  /** Resolves once the script is ready (its socket bound); rejects if it ended before. */
  ready: Promise<void>;
  /** Resolves with the script's answer when it ends by itself or is stopped. */
  done: Promise<T>;
  /** Stops the script and resolves with its answer. */
  stop(): Promise<T>;
}>;

/** Starts `script` in `netns` (undefined: this namespace); `children` tracks it for a kill on clean-up. */
export function startScript<T>(script: ScriptName, netns: string | undefined, args: unknown, children?: Set<ChildProcess>): Running<T> {
  const argv = [PYTHON, join(HERE, `${script}.py`)];
  const child = netns ? spawn("ip", ["netns", "exec", netns, ...argv], { stdio: ["pipe", "pipe", "pipe"] }) : spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
  children?.add(child);
  child.stdin!.on("error", () => undefined);
  child.stdin!.write(`${JSON.stringify(args)}\n`);
  let out = "";
  let err = "";
  let isReady = false;
  let resolveReady!: () => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<void>((resolve, reject) => ((resolveReady = resolve), (rejectReady = reject)));
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
    if (!isReady && /^ready$/m.test(out)) {
      isReady = true;
      resolveReady();
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  const where = `${script}.py${netns ? ` in ${netns}` : ""}`;
  const done = new Promise<T>((resolve, reject) =>
    child.once("close", (code, signal) => {
      children?.delete(child);
      const failure = new Error(`${where} ended (${signal ?? `exit ${code}`}): ${err.trim() || out.trim() || "no output"}`);
      if (!isReady) rejectReady(failure);
      try {
        resolve(JSON.parse(out.trim().split("\n").at(-1) ?? "") as T);
      } catch {
        reject(failure);
      }
    }),
  );
  // Callers may await only one of them; the other's failure is theirs to see, not an unhandled rejection.
  ready.catch(() => undefined);
  done.catch(() => undefined);
  return { ready, done, stop: () => (child.stdin!.end(), done) };
}
