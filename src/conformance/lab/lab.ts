// One lab for the conformance kit, the demo, the dataplane tests and the benchmarks: per-run named
// network namespaces, bridges and guests (net.ts), the processes that send and capture frames in
// them (wire.ts), and one clean-up that removes it all, also after a failure. Effects.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { run } from "../../host/run.ts";
import { addBridge, addNetns, deleteNetns, plugGuest, type BridgeOptions, type GuestSpec } from "./net.ts";
import { startScript, type Running } from "./scripts.ts";
import { capture, countMarkers, sendFrames, stream, type CaptureOptions, type Captured, type Sent, type StreamOptions } from "./wire.ts";

export class Lab {
  /** The run's prefix: every namespace is `<id>-<name>`. */
  readonly id: string;
  /** The lab's processes, killed at clean-up. */
  readonly children = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];
  private readonly rootLinks: string[] = [];
  private readonly cleanups: (() => Promise<void>)[] = [];

  constructor(prefix: string, id = `${prefix}${randomBytes(3).toString("hex")}`) {
    this.id = id;
  }

  /** The full name of the lab's namespace `name`. */
  ns(name: string): string {
    return `${this.id}-${name}`;
  }

  /** Makes the lab's namespace `name` (once); resolves with its full name. */
  async netns(name: string): Promise<string> {
    const full = this.ns(name);
    if (this.namespaces.includes(full)) return full;
    await addNetns(full);
    this.namespaces.push(full);
    return full;
  }

  /** A bridge in the lab's namespace `netns` (full name; undefined: the root namespace, removed at clean-up). */
  async bridge(netns: string | undefined, name: string, options: BridgeOptions = {}): Promise<void> {
    await addBridge(netns, name, options);
    if (netns === undefined) this.rootLinks.push(name);
  }

  /** A guest in its namespace (made if needed), plugged as `spec` says. */
  async guest(spec: GuestSpec): Promise<void> {
    if (!this.namespaces.includes(spec.netns)) {
      await addNetns(spec.netns);
      this.namespaces.push(spec.netns);
    }
    if (spec.hostNetns === undefined) this.rootLinks.push(spec.device);
    await plugGuest(spec);
  }

  /** Runs `cleanup` first at clean-up (e.g. a driver's removeAll, a daemon's stop). */
  onCleanup(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  send(netns: string, frames: readonly Uint8Array[], gapMs = 1, iface = "eth0"): Promise<number> {
    return sendFrames(netns, iface, frames, gapMs, this.children);
  }

  stream(netns: string, frames: readonly Uint8Array[], options: StreamOptions = {}, iface = "eth0"): Running<Sent> {
    return stream(netns, iface, frames, options, this.children);
  }

  capture(netns: string, options: CaptureOptions = {}, iface: string | null = "eth0"): Running<Captured> {
    return capture(netns, iface, options, this.children);
  }

  countMarkers(netns: string, markers: readonly Uint8Array[], iface: string | null = "eth0", timeoutS?: number): Running<Record<string, number>> {
    return countMarkers(netns, iface, markers, this.children, timeoutS);
  }

  script<T>(name: "ping", netns: string, args: unknown): Running<T> {
    return startScript<T>(name, netns, args, this.children);
  }

  /** Removes everything; safe to call twice. A failing step does not stop the others. */
  async cleanup(): Promise<void> {
    for (const child of this.children) child.kill("SIGKILL");
    const problems: unknown[] = [];
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup().catch((error: unknown) => problems.push(error));
    for (const ns of this.namespaces.splice(0).reverse()) await deleteNetns(ns);
    // A veth's root end goes with its guest's namespace; delete it anyway if still there.
    for (const link of this.rootLinks.splice(0).reverse()) await run("ip", ["link", "del", link], { allowFailure: true });
    if (problems.length > 0) throw new AggregateError(problems, `lab ${this.id}: ${problems.length} clean-up step(s) failed`);
  }
}
