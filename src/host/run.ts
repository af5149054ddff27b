// The one seam through which vifguard runs host commands (nft, ip, virsh, ovs-*): effects.
// Tests can swap the runner for a recorder with setRunner().
import { spawn } from "node:child_process";
import { VifguardError } from "../errors.ts";

export type RunOptions = Readonly<{
  /** Run inside this named network namespace (via `ip netns exec`). */
  netns?: string;
  /** Written to the child's stdin (never use /dev/stdin paths: Node gives children a socketpair). */
  input?: string;
  timeoutMs?: number;
  env?: Readonly<Record<string, string>>;
  /** Resolve even when the command exits non-zero. */
  allowFailure?: boolean;
}>;

export type RunResult = Readonly<{ code: number; stdout: string; stderr: string; command: string }>;

/** A host command failed or could not start. */
export class CommandError extends VifguardError {
  override name = "CommandError";
  readonly code = "VG_COMMAND_FAILED";
  readonly result: RunResult;
  constructor(result: RunResult, options?: { cause?: unknown }) {
    super(`${result.command} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim() || "(no output)"}`, options);
    this.result = result;
  }
}

export type Runner = (command: string, args: readonly string[], options?: RunOptions) => Promise<RunResult>;

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}

const spawnRunner: Runner = (command, args, options = {}) => {
  const argv = options.netns ? ["ip", "netns", "exec", options.netns, command, ...args] : [command, ...args];
  const text = argv.map(quote).join(" ");
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      env: options.env ? { ...process.env, ...options.env } : process.env,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: options.timeoutMs ?? 60_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", (cause) => reject(new CommandError({ code: -1, stdout: "", stderr: String(cause), command: text }, { cause })));
    child.on("close", (code, signal) => {
      const result = { code: code ?? (signal ? 128 : -1), stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() + (signal ? ` (killed by ${signal})` : ""), command: text };
      if (result.code !== 0 && !options.allowFailure) reject(new CommandError(result));
      else resolve(result);
    });
    child.stdin.on("error", () => undefined); // the child may exit before reading everything
    child.stdin.end(options.input ?? "");
  });
};

let current: Runner = spawnRunner;

/** Runs a host command; rejects with CommandError on a non-zero exit unless allowFailure. */
export function run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
  return current(command, args, options);
}

/** Replaces the runner (tests record commands); returns a function that restores the previous one. */
export function setRunner(runner: Runner): () => void {
  const previous = current;
  current = runner;
  return () => {
    current = previous;
  };
}

/** Is `command` on PATH? */
export async function hasCommand(command: string): Promise<boolean> {
  const result = await run("sh", ["-c", `command -v ${quote(command)}`], { allowFailure: true });
  return result.code === 0;
}
