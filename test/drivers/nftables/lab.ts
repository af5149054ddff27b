// A lab for the nftables driver's dataplane tests and benchmark: a per-run "hypervisor" network
// namespace with a Linux bridge, guests in their own namespaces behind veth pairs (host side vnetN),
// scapy to send raw frames and to capture what arrives. Everything is named per run and removed by
// cleanup() (call it from t.after()).
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { TestContext } from "node:test";
import { run } from "../../../src/host/run.ts";
import { requireRoot } from "../../support/needs-root.ts";

export const PYTHON = "/usr/bin/python3"; // the one with scapy

/** Skips (with the reason) unless root; under CI=true that fails instead. */
export function needsRoot(t: TestContext): boolean {
  return requireRoot(t, "creates network namespaces, a bridge and nftables tables");
}

const SEND = `
import sys, json, time
from scapy.all import conf
a = json.loads(sys.stdin.read())
s = conf.L2socket(iface=a["iface"])
for h in a["frames"]:
    s.send(bytes.fromhex(h))
    if a["gapMs"]: time.sleep(a["gapMs"] / 1000)
print(len(a["frames"]), flush=True)
`;

const CAPTURE = `
import sys, json, signal, time
from scapy.all import AsyncSniffer
seen = []
stop = False
def done(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, done)
sn = AsyncSniffer(iface=sys.argv[1], prn=lambda p: seen.append(bytes(p).hex()), store=False)
sn.start()
time.sleep(0.5)
print("ready", flush=True)
while not stop:
    time.sleep(0.05)
time.sleep(0.3)
sn.stop()
print(json.dumps(seen), flush=True)
`;

export type Guest = Readonly<{ name: string; netns: string; device: string; mac: string }>;

export class NftLab {
  readonly id: string;
  readonly hostNetns: string;
  readonly prefix: string;
  readonly guests = new Map<string, Guest>();
  private readonly namespaces: string[] = [];
  private readonly children = new Set<ChildProcess>();

  private constructor(id: string) {
    this.id = id;
    this.hostNetns = `vgt-${id}-hv`;
    this.prefix = `vgt${id}`;
  }

  /** A lab with its hypervisor namespace and bridge br0. */
  static async start(t: TestContext | undefined): Promise<NftLab> {
    const lab = new NftLab(randomBytes(3).toString("hex"));
    t?.after(() => lab.cleanup());
    await lab.addNetns(lab.hostNetns);
    await run("ip", ["link", "add", "br0", "type", "bridge"], { netns: lab.hostNetns });
    await run("ip", ["link", "set", "br0", "up"], { netns: lab.hostNetns });
    return lab;
  }

  private async addNetns(name: string): Promise<void> {
    await run("ip", ["netns", "add", name]);
    this.namespaces.push(name);
  }

  /** A guest: its own namespace, eth0 with `mac` (IPv6 off: no kernel chatter) ↔ `device` on br0. */
  async addGuest(name: string, device: string, mac: string, ip?: string): Promise<Guest> {
    const netns = `vgt-${this.id}-${name}`;
    await this.addNetns(netns);
    await run("ip", ["link", "add", device, "type", "veth", "peer", "name", "eth0", "netns", netns], { netns: this.hostNetns });
    await run("sysctl", ["-qw", "net.ipv6.conf.all.disable_ipv6=1"], { netns });
    await run("ip", ["link", "set", "eth0", "address", mac, "up"], { netns });
    if (ip) await run("ip", ["addr", "add", ip, "dev", "eth0"], { netns });
    await run("ip", ["link", "set", "lo", "up"], { netns });
    await run("ip", ["link", "set", device, "master", "br0", "up"], { netns: this.hostNetns });
    const guest = { name, netns, device, mac };
    this.guests.set(name, guest);
    return guest;
  }

  /** Sends raw frames from a guest's eth0, `gapMs` apart. */
  async send(from: string, frames: readonly Uint8Array[], gapMs = 2): Promise<void> {
    const guest = this.guests.get(from)!;
    const input = JSON.stringify({ iface: "eth0", frames: frames.map((f) => Buffer.from(f).toString("hex")), gapMs });
    await run("ip", ["netns", "exec", guest.netns, PYTHON, "-c", SEND], { input, timeoutMs: 60_000 });
  }

  /** Captures at a guest's eth0; `frames` resolves with every frame seen (hex) after stop(). */
  capture(at: string): { ready: Promise<void>; stop(): Promise<string[]> } {
    const guest = this.guests.get(at)!;
    const child = spawn("ip", ["netns", "exec", guest.netns, PYTHON, "-c", CAPTURE, "eth0"], { stdio: ["ignore", "pipe", "pipe"] });
    this.children.add(child);
    let out = "";
    let resolveReady!: () => void;
    const ready = new Promise<void>((r) => (resolveReady = r));
    child.stdout!.setEncoding("utf8").on("data", (c: string) => {
      out += c;
      if (out.includes("ready")) resolveReady();
    });
    const exited = new Promise<string[]>((resolve, reject) =>
      child.once("exit", () => {
        this.children.delete(child);
        resolveReady();
        try {
          resolve(JSON.parse(out.trim().split("\n").at(-1)!) as string[]);
        } catch {
          reject(new Error(`capture output: ${out}`));
        }
      }),
    );
    return { ready, stop: () => (child.kill("SIGTERM"), exited) };
  }

  nft(args: readonly string[]): Promise<string> {
    return run("nft", args, { netns: this.hostNetns }).then((r) => r.stdout);
  }

  async cleanup(): Promise<void> {
    for (const child of this.children) child.kill("SIGKILL");
    for (const ns of [...this.namespaces].reverse()) await run("ip", ["netns", "del", ns], { allowFailure: true });
  }
}
