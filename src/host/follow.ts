// Long-running host commands whose output is followed line by line (nft monitor): effects.
// The companion of run.ts for commands that do not end; used by the agent's drift detection.
import { spawn } from "node:child_process";

export type Followed = Readonly<{
  /** Stops the command (SIGTERM). */
  close(): void;
  /** Resolves with the exit code (or -1) when the command ends, for whatever reason. */
  exited: Promise<number>;
}>;

/** Starts `command args` (inside `netns` if given) and calls `onLine` for each line of its stdout. */
export function follow(command: string, args: readonly string[], options: Readonly<{ netns?: string }>, onLine: (line: string) => void): Followed {
  const argv = options.netns ? ["ip", "netns", "exec", options.netns, command, ...args] : [command, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "ignore"] });
  let rest = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  });
  const exited = new Promise<number>((resolve) => {
    child.once("error", () => resolve(-1));
    child.once("close", (code) => resolve(code ?? -1));
  });
  return { close: () => void child.kill("SIGTERM"), exited };
}
