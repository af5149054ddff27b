// The kernel's network interfaces of a namespace as device facts (`ip -j link show`): effects.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import type { Device } from "../drivers/contract.ts";
import { run } from "./run.ts";

type IpLink = { ifindex?: unknown; ifname?: unknown; address?: unknown; link_type?: unknown; master?: unknown };

/** Parses `ip -j link show`: name, ifindex, the MAC of Ethernet links, and which links are masters. Pure. */
export function parseLinks(json: string): Device[] {
  const links = JSON.parse(json || "[]") as IpLink[];
  const masters = new Set(links.flatMap((l) => (typeof l.master === "string" ? [l.master] : [])));
  return links.flatMap((l): Device[] => {
    if (typeof l.ifname !== "string") return [];
    const mac = l.link_type === "ether" && typeof l.address === "string" ? l.address.toLowerCase() : undefined;
    return [{ name: l.ifname, ...(typeof l.ifindex === "number" && { ifindex: l.ifindex }), ...(mac && { mac }), ...(masters.has(l.ifname) && { isMaster: true }) }];
  });
}

/**
 * The interfaces of `netns` (default: the root namespace). `ip -n`, not `ip netns exec`: the same
 * netlink answer without the mount namespace and /sys remount that `ip netns exec` sets up (the agent
 * reads links at every sync, so every plug waits for this).
 */
export async function readLinks(netns?: string): Promise<Device[]> {
  return parseLinks((await run("ip", [...(netns ? ["-n", netns] : []), "-j", "link", "show"], { timeoutMs: 30_000 })).stdout);
}

/**
 * A long-lived `ip [-n NS] -j -force -batch -` answering `link show` on request: the agent reads links
 * at every sync and a plug's answer waits for one, so one process that stays up spares each plug a
 * process start (tens of ms on a loaded host). Each command's answer is one JSON line on stdout, fresh
 * from the kernel (ip keeps no cache). Anything amiss (the process died, an error, a timeout) falls
 * back to a plain `ip -j link show` for that call and starts a fresh process next time. Idle, it never
 * keeps this process alive; close() ends it (it holds the namespace).
 */
export class LinkReader {
  private readonly netns: string | undefined;
  private child: ChildProcessWithoutNullStreams | undefined;
  private stdout = "";
  private waiting: ((line: string | undefined) => void) | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(netns?: string) {
    this.netns = netns;
  }

  /** The interfaces, as readLinks() gives them. */
  read(): Promise<Device[]> {
    const next = this.queue.then(async () => {
      const line = await this.ask();
      return line === undefined ? readLinks(this.netns) : parseLinks(line);
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.child?.stdin.end();
    this.child = undefined;
  }

  private start(): ChildProcessWithoutNullStreams {
    const child = spawn("ip", [...(this.netns ? ["-n", this.netns] : []), "-j", "-force", "-batch", "-"], { stdio: ["pipe", "pipe", "pipe"] });
    this.stdout = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      this.stdout += chunk;
      const end = this.stdout.indexOf("\n");
      if (end < 0) return;
      const line = this.stdout.slice(0, end);
      this.stdout = this.stdout.slice(end + 1);
      this.answer(line);
    });
    child.stderr.resume(); // errors end in a missing answer (the fallback), not in these words
    const gone = () => {
      if (this.child === child) this.child = undefined;
      this.answer(undefined);
    };
    child.on("error", gone);
    child.on("close", gone);
    child.stdin.on("error", () => undefined); // reported through "close"
    this.idle(child, false);
    return child;
  }

  private answer(line: string | undefined): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.(line);
  }

  private idle(child: ChildProcessWithoutNullStreams, busy: boolean): void {
    for (const stream of [child.stdin, child.stdout, child.stderr] as unknown as { ref(): void; unref(): void }[]) {
      if (busy) stream.ref();
      else stream.unref();
    }
    if (busy) child.ref();
    else child.unref();
  }

  /** One `link show`: its JSON line, or undefined when the process could not answer. */
  private ask(): Promise<string | undefined> {
    const child = (this.child ??= this.start());
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL"); // a wedged ip: the fallback answers, the next call starts a fresh one
      }, 30_000);
      this.waiting = (line) => {
        clearTimeout(timer);
        if (this.child === child) this.idle(child, false);
        resolve(line);
      };
      this.idle(child, true);
      child.stdin.write("link show\n");
    });
  }
}
