// The nftables driver's dataplane tests and benchmark, on the one lab (src/conformance/lab/): a
// per-run "hypervisor" network namespace with a Linux bridge, guests in their own namespaces behind
// veth pairs (host side vnetN), the lab's scripts to send raw frames and to capture what arrives.
// Everything is named per run and removed by cleanup() (call it from t.after()).
import type { TestContext } from "node:test";
import { run } from "../../../src/host/run.ts";
import { Lab } from "../../../src/conformance/lab/lab.ts";
import { requireRoot } from "../../support/needs-root.ts";

export { PYTHON } from "../../../src/conformance/lab/scripts.ts";

/** Skips (with the reason) unless root; under CI=true that fails instead. */
export function needsRoot(t: TestContext): boolean {
  return requireRoot(t, "creates network namespaces, a bridge and nftables tables");
}

export type Guest = Readonly<{ name: string; netns: string; device: string; mac: string }>;
/** A frame that must arrive (from a guest whose port lets it through): proof that the capture saw everything sent before it. */
export type Control = Readonly<{ from: string; frame: Uint8Array }>;

export class NftLab {
  readonly lab: Lab;
  readonly hostNetns: string;
  readonly prefix: string;
  readonly guests = new Map<string, Guest>();

  private constructor(lab: Lab, hostNetns: string) {
    this.lab = lab;
    this.hostNetns = hostNetns;
    this.prefix = lab.id.replace("-", "");
  }

  /** A lab with its hypervisor namespace and bridge br0. */
  static async start(t: TestContext | undefined): Promise<NftLab> {
    const lab = new Lab("vgt-");
    t?.after(() => lab.cleanup());
    const hostNetns = await lab.netns("hv");
    await lab.bridge(hostNetns, "br0");
    return new NftLab(lab, hostNetns);
  }

  /** A guest: its own namespace, eth0 with `mac` (IPv6 off: no kernel chatter) ↔ `device` on br0. */
  async addGuest(name: string, device: string, mac: string, ip?: string): Promise<Guest> {
    const netns = this.lab.ns(name);
    await this.lab.guest({ netns, mac, device, hostNetns: this.hostNetns, bridge: "br0", noIpv6: true, ...(ip && { ipv4: ip }) });
    const guest = { name, netns, device, mac };
    this.guests.set(name, guest);
    return guest;
  }

  /** Sends raw frames from a guest's eth0, `gapMs` apart. */
  async send(from: string, frames: readonly Uint8Array[], gapMs = 2): Promise<void> {
    await this.lab.send(this.guests.get(from)!.netns, frames, gapMs);
  }

  /**
   * Captures at a guest's eth0 until `control` arrives. stop() sends the control frame and resolves
   * with every frame seen (hex); it fails if the control never arrives, so an absence is never a
   * capture that had stopped, or a frame still on its way.
   */
  capture(at: string, control: Control): { ready: Promise<void>; stop(): Promise<string[]> } {
    const guest = this.guests.get(at)!;
    const running = this.lab.capture(guest.netns, { keep: true, match: [["equals", control.frame]], until: 0, timeoutS: 120 });
    return {
      ready: running.ready,
      stop: async () => {
        await this.send(control.from, [control.frame], 0);
        const { counts, frames } = await running.done;
        if (counts[0] === 0) throw new Error(`the control frame from ${control.from} never reached ${at}: its absences cannot be told`);
        return frames ?? [];
      },
    };
  }

  nft(args: readonly string[]): Promise<string> {
    return run("nft", args, { netns: this.hostNetns }).then((r) => r.stdout);
  }

  cleanup(): Promise<void> {
    return this.lab.cleanup();
  }
}
