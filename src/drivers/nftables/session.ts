// A long-lived `nft -i` for small transactions: effects.
//
// Why: when an nft process closes its netlink socket after a batch that deleted anything, the kernel
// waits for the batch's clean-up work (an RCU grace period, ~8-12 ms on this class of host) before
// close() returns; spawning `ip netns exec nft` costs a few ms more. One process that stays open
// pays neither, so a one-port change takes about a millisecond.
//
// Protocol: nft -i runs each input line as one batch (all or nothing; commands joined with "; ").
// It prints nothing on success and writes errors to stderr. After each batch we write a line that
// cannot parse, `vgsentinel_<id>_<n>`: nft echoes it in a syntax error on stderr without touching the
// kernel, so whatever stderr carried before that echo is the batch's error, and the echo means done.
//
// Listings (`json: true`, `nft -j -i`): `query("list table …")` answers what nft prints, one JSON line on
// stdout, written before nft reads the sentinel. The agent lists its table at every sync (a plug's
// answer waits for one): through a session that costs no process start, ~60 ms less per plug on a
// loaded 2-core host (~200 ms less in a namespace, where every spawn goes through `ip netns exec`).
// nft -i checks the ruleset's generation before each command, so a listing is never stale.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { randomBytes } from "node:crypto";
import { CommandError } from "../../host/run.ts";

export type NftSessionOptions = Readonly<{ netns?: string; timeoutMs?: number; /** `nft -j -i`: for query() (listings as JSON). */ json?: boolean }>;

type Pending = Readonly<{ token: string; resolve: (stdout: string) => void; reject: (error: Error) => void; command: string; output: boolean }>;

/** The nft text of a transaction as one input line. */
export function sessionLine(text: string): string {
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .join("; ");
}

export class NftSession {
  private readonly options: NftSessionOptions;
  private readonly id = randomBytes(4).toString("hex");
  private child: ChildProcessWithoutNullStreams | undefined;
  private stderr = "";
  private stdout = "";
  private count = 0;
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(options: NftSessionOptions = {}) {
    this.options = options;
  }

  /** Runs one transaction; rejects with CommandError carrying nft's message when it is refused. */
  run(text: string): Promise<void> {
    const next = this.queue.then(() => this.send(text, false)).then(() => undefined);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Runs one command that prints (a `list …`, in a `json` session) and resolves with its output line; rejects with CommandError as run() does. */
  query(command: string): Promise<string> {
    const next = this.queue.then(() => this.send(command, true));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Ends the process (it would also end on its own when this process exits: stdin closes). */
  close(): void {
    this.child?.stdin.end();
    this.child = undefined;
  }

  /** The running nft's process id (diagnostics and tests), when one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  private argv(): string[] {
    const nft = this.options.json ? ["nft", "-j", "-i"] : ["nft", "-i"];
    return this.options.netns ? ["ip", "netns", "exec", this.options.netns, ...nft] : nft;
  }

  private start(): ChildProcessWithoutNullStreams {
    const [command, ...args] = this.argv();
    const child = spawn(command!, args, { stdio: ["pipe", "pipe", "pipe"] });
    this.stderr = "";
    this.stdout = "";
    // Only queries print; what else comes (nothing is expected) is dropped with the next answer, never left to fill the pipe.
    child.stdout.setEncoding("utf8"); // a character split across chunks stays whole
    child.stdout.on("data", (chunk: string) => {
      this.stdout += chunk;
      this.settle();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
      this.settle();
    });
    const gone = (reason: string) => {
      if (this.child === child) this.child = undefined;
      const pending = this.pending;
      this.pending = undefined;
      pending?.reject(new CommandError({ code: child.exitCode ?? -1, stdout: "", stderr: `${reason}${this.stderr ? `: ${this.stderr.trim()}` : ""}`, command: pending.command }));
    };
    child.on("error", (e) => gone(`nft -i could not run (${e.message})`));
    child.on("close", (code, signal) => gone(`nft -i ended (${signal ?? `exit ${code}`})`));
    child.stdin.on("error", () => undefined); // reported through "close"
    this.idle(child);
    return child;
  }

  /** While no transaction waits, the session must not keep this process alive. */
  private idle(child: ChildProcessWithoutNullStreams, busy = false): void {
    for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as { ref(): void; unref(): void }[]) {
      if (busy) stream.ref();
      else stream.unref();
    }
    if (busy) child.ref();
    else child.unref();
  }

  private send(text: string, output: boolean): Promise<string> {
    const child = (this.child ??= this.start());
    const token = `vgsentinel_${this.id}_${++this.count}`;
    const line = sessionLine(text);
    const command = `${this.argv().join(" ")} <<< ${line.length > 200 ? `${line.slice(0, 200)}…` : line}`;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL"); // a wedged nft: the next transaction starts a fresh one
      }, this.options.timeoutMs ?? 30_000);
      const done = () => {
        clearTimeout(timer);
        if (this.child === child) this.idle(child);
      };
      this.stdout = "";
      this.pending = {
        token,
        command,
        output,
        resolve: (stdout) => (done(), resolve(stdout)),
        reject: (e) => (done(), reject(e)),
      };
      this.idle(child, true);
      child.stdin.write(`${line}\n${token}\n`);
    });
  }

  /**
   * Completes the pending transaction once its sentinel's echo (and the caret line after it) arrived,
   * and, for a query that succeeded, its output line: stdout and stderr are two pipes, so the line nft
   * printed before it read the sentinel may reach us after the echo.
   */
  private settle(): void {
    const pending = this.pending;
    if (!pending) return;
    const marker = `\n${pending.token}\n`;
    const at = this.stderr.indexOf(marker);
    if (at < 0) return;
    const caretEnd = this.stderr.indexOf("\n", at + marker.length);
    if (caretEnd < 0) return;
    // Before the marker: the batch's errors, then the sentinel's own "Error: syntax error…" line.
    const before = this.stderr.slice(0, at);
    const errors = before.slice(0, Math.max(0, before.lastIndexOf("\n"))).trim();
    if (!errors && pending.output && !this.stdout.endsWith("\n")) return;
    const stdout = this.stdout;
    this.stdout = "";
    this.stderr = this.stderr.slice(caretEnd + 1);
    this.pending = undefined;
    if (errors) pending.reject(new CommandError({ code: 1, stdout, stderr: errors, command: pending.command }));
    else pending.resolve(stdout);
  }
}
