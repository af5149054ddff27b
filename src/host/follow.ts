// Long-running host commands whose output is followed line by line (nft monitor, ip monitor): effects.
// The companion of run.ts for commands that do not end; the drivers' change feeds use it.
import { spawn } from "node:child_process";

export type Followed = Readonly<{
  /** Stops the command (its tether ends; the shell kills it). */
  close(): void;
  /** Resolves with the exit code (or -1) when the command ends, for whatever reason. */
  exited: Promise<number>;
}>;

// A command like `nft monitor` in a quiet namespace never writes, so it would never notice that we
// died (no SIGPIPE) and would outlive us, holding its namespace. So it runs under a small shell that
// also reads our pipe on fd 3: when we exit or close(), the pipe ends and the shell kills it.
const TETHER = 'exec 3<&0; "$@" </dev/null & c=$!; (read -r _ <&3; kill "$c" 2>/dev/null) & wait "$c"';

/** Starts `command args` (inside `netns` if given) and calls `onLine` for each line of its stdout. */
export function follow(command: string, args: readonly string[], options: Readonly<{ netns?: string }>, onLine: (line: string) => void): Followed {
  let rest = "";
  const decoder = new TextDecoder();
  return followBytes(command, args, options, (chunk) => {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  });
}

/** Like follow(), for a command whose stdout is binary (a pcap stream): `onData` gets each chunk as it comes. */
export function followBytes(command: string, args: readonly string[], options: Readonly<{ netns?: string }>, onData: (chunk: Buffer) => void): Followed {
  const tethered = ["sh", "-c", TETHER, "sh", command, ...args];
  const argv = options.netns ? ["ip", "netns", "exec", options.netns, ...tethered] : tethered;
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "ignore"] });
  child.stdin.on("error", () => undefined);
  child.stdout.on("data", onData);
  const exited = new Promise<number>((resolve) => {
    child.once("error", () => resolve(-1));
    child.once("close", (code) => {
      child.stdin.end(); // the tether's reader goes too
      resolve(code ?? -1);
    });
  });
  return { close: () => void child.stdin.end(), exited };
}

/**
 * A driver's change feed from a monitor command (`nft monitor`, `ip monitor link`): calls `onChange`
 * for each output line that `matters`, and when the command exits (events may have been missed),
 * restarting it after `restartMs`, until close().
 */
export function followChanges(command: string, args: readonly string[], options: Readonly<{ netns?: string; restartMs?: number }>, matters: (line: string) => boolean, onChange: () => void): Readonly<{ close(): void }> {
  let current: Followed | undefined;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const start = (): void => {
    current = follow(command, args, { ...(options.netns && { netns: options.netns }) }, (line) => {
      if (matters(line)) onChange();
    });
    void current.exited.then(() => {
      if (closed) return;
      onChange();
      timer = setTimeout(() => !closed && start(), options.restartMs ?? 1_000);
    });
  };
  start();
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
      current?.close();
    },
  };
}
