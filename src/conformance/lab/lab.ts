// One lab for the conformance kit, the demo, the dataplane tests and the benchmarks: per-run named
// network namespaces, bridges and guests (net.ts), the processes that send and capture frames in
// them (wire.ts), and one clean-up that removes it all, also after a failure. Effects.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { run } from "../../host/run.ts";
import { addBridge, addNetns, deleteNetns, plugGuest, type BridgeOptions, type GuestSpec } from "./net.ts";
import { startScript, type Running } from "./scripts.ts";
import * as f from "../../policy/frame-builder.ts";
import { capture, countMarkers, hex, sendFrames, stream, type CaptureOptions, type Captured, type Sent, type StreamOptions } from "./wire.ts";

/** A guest that sends a control frame: its namespace, MAC and IPv4 (without prefix length). */
export type ControlSender = Readonly<{ netns: string; mac: string; ipv4: string }>;
export type Watch = Readonly<{ ready: Promise<void>; counts: Promise<Record<string, number>>; stop(control?: ControlSender): void }>;

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

  /** Sends `count` frames cycling through `frames`, `gapMs` apart (0: as fast as it can); resolves with how many went. */
  async repeat(netns: string, frames: readonly Uint8Array[], count: number, gapMs = 0, iface = "eth0"): Promise<number> {
    return (await this.stream(netns, frames, { count, gapMs }, iface).done).sent;
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

  /**
   * Counts frames carrying each marker at `iface` in `netns` until stop() or timeoutS; `counts`
   * resolves per marker (hex). stop(control) first sends a control frame from that guest (a
   * broadcast ARP request from its own MAC and IPv4, legitimate under every level), and `counts`
   * fails if it never arrives: a count of 0 then means dropped, not still on its way.
   */
  watch(netns: string, markers: readonly Uint8Array[], timeoutS: number, iface = "eth0"): Watch {
    const tag = Uint8Array.from([0x76, 0x67, 0x63, 0x74, 0x6c, ...randomBytes(3)]); // "vgctl" + 3 random bytes
    const running = this.capture(netns, { match: [...markers, tag].map((m) => ["contains", m] as const), timeoutS, until: markers.length }, iface);
    let controlSent = false;
    const counts = running.done.then(({ counts }) => {
      if (controlSent && counts[markers.length] === 0) throw new Error(`the control frame never reached ${iface} in ${netns}: its counts of 0 cannot be told from frames still on their way`);
      return Object.fromEntries(markers.map((m, i) => [hex(m), counts[i]!]));
    });
    counts.catch(() => undefined);
    return {
      ready: running.ready,
      counts,
      stop: (control) => {
        if (control === undefined) return void running.stop();
        controlSent = true;
        const request = f.arp({ op: 1, sha: control.mac, spa: control.ipv4, tpa: control.ipv4.replace(/\.\d+$/, ".253") });
        void this.send(control.netns, [f.withTrailer(f.ether("ff:ff:ff:ff:ff:ff", control.mac, 0x0806, request), tag)], 0).catch(() => running.stop());
      },
    };
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
