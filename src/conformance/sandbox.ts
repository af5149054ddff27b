// The sandbox hypervisor: a switch (switch.ts: a Linux bridge in a namespace, an OVS bridge, or a
// Linux bridge in the root namespace), and guests Alice, Eve, Bob and a gateway (running a DHCP
// server) in their own namespaces, each behind a veth port. Effects.
// Every name carries a per-run prefix; destroy() removes everything, also after a failure, and a
// SIGINT or SIGTERM while the sandbox exists destroys it before the process exits.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import type { DriverSettings } from "../drivers/registry.ts";
import { run } from "../host/run.ts";
import { parsePortFile } from "../model/port-file.ts";
import { portPolicies, type PortPolicy } from "../policy/port-policy.ts";
import { addNetns, deleteNetns } from "./lab/net.ts";
import { createSwitch, type SandboxSwitch, type SwitchKind } from "./switch.ts";

export type GuestName = "alice" | "eve" | "bob" | "gw";
export type Guest = Readonly<{ name: GuestName; netns: string; device: string; mac: string; ipv4: string; ipv6: string }>;

/** Addresses live only inside the sandbox's namespaces (documentation and test ranges). */
export const SUBNET4 = "10.9.0";
export const SUBNET6 = "2001:db8:9";
export const VIP4 = `${SUBNET4}.100`;
export const VIP6 = `${SUBNET6}::100`;

const GUESTS: readonly { name: GuestName; mac: string; host: number }[] = [
  { name: "alice", mac: "52:54:00:09:00:01", host: 1 },
  { name: "eve", mac: "52:54:00:09:00:02", host: 2 },
  { name: "bob", mac: "52:54:00:09:00:03", host: 3 },
  { name: "gw", mac: "52:54:00:09:00:fe", host: 254 },
];

export type SandboxOptions = Readonly<{ switch?: SwitchKind }>;

export class Sandbox {
  readonly id: string;
  readonly switch: SandboxSwitch;
  readonly guests = new Map<GuestName, Guest>();
  readonly children = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];
  private readonly cleanups: (() => Promise<void>)[] = [];
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    void this.destroy().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };

  private constructor(id: string, kind: SwitchKind) {
    this.id = id;
    this.switch = createSwitch(kind, id);
  }

  /** Builds the sandbox around a switch (default linux-bridge); on any failure what was built is removed again. */
  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const sandbox = new Sandbox(randomBytes(3).toString("hex"), options.switch ?? "linux-bridge");
    process.once("SIGINT", sandbox.onSignal);
    process.once("SIGTERM", sandbox.onSignal);
    try {
      await sandbox.build();
      return sandbox;
    } catch (error) {
      await sandbox.destroy();
      throw error;
    }
  }

  /** The namespace of the switch and the ports' host-side devices (undefined: the root namespace). */
  get hypervisor(): string | undefined {
    return this.switch.netns;
  }

  /** How a driver under test reaches the sandbox's switch; its objects named with the run's prefix. */
  driverSettings(): DriverSettings {
    return this.switch.driverSettings(`vgc${this.id}`);
  }

  /** Runs `cleanup` at destroy(), before the switch goes (e.g. a driver's removeAll for root-namespace state). */
  onDestroy(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  guest(name: GuestName): Guest {
    return this.guests.get(name)!;
  }

  /** The port file of the sandbox: one shared network at level full; the gateway is an uplink, unprotected. */
  portFile(): string {
    const port = (name: GuestName, tenant: string, allowed: string[] = []) => {
      const g = this.guest(name);
      return { id: `${name}-0`, tenant, network: "public", device: g.device, mac: g.mac, ips: [g.ipv4, g.ipv6], allowed: allowed.map((ip) => ({ ip })) };
    };
    return JSON.stringify({
      networks: [{ id: "public", tenant: "provider", shared: true, protection: "full" }],
      ports: [port("alice", "alice", [`${VIP4}/32`, VIP6]), port("eve", "eve"), port("bob", "bob")],
    });
  }

  policies(): PortPolicy[] {
    return portPolicies(parsePortFile(this.portFile(), "sandbox"));
  }

  private async build(): Promise<void> {
    await this.switch.start();
    for (const g of GUESTS) {
      const netns = `vgc${this.id}-${g.name}`;
      const device = this.switch.device(g.name);
      const ipv4 = `${SUBNET4}.${g.host}`;
      const ipv6 = `${SUBNET6}::${g.host.toString(16)}`;
      await addNetns(netns);
      this.namespaces.push(netns);
      // Few kernel chatters (no RS, quick DAD) so captures are about the cases; Eve sniffs (promiscuous).
      const sysctls = ["net.ipv6.conf.all.router_solicitations=0", "net.ipv6.conf.default.router_solicitations=0", "net.ipv6.conf.all.dad_transmits=1", "net.ipv6.conf.default.dad_transmits=1"];
      await this.switch.plug(device, { netns, mac: g.mac, ipv4: `${ipv4}/24`, ipv6: `${ipv6}/64`, sysctls, promisc: g.name === "eve" });
      this.guests.set(g.name, { name: g.name, netns, device, mac: g.mac, ipv4, ipv6 });
    }
    const gw = this.guest("gw");
    await run(
      "dnsmasq",
      [
        "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--port=0", "--interface=eth0", "--bind-interfaces",
        `--dhcp-range=${SUBNET4}.50,${SUBNET4}.60,1h`, `--dhcp-host=${this.guest("alice").mac},${this.guest("alice").ipv4}`,
        `--dhcp-leasefile=/tmp/vgc${this.id}-leases`, `--pid-file=/tmp/vgc${this.id}-dnsmasq.pid`,
      ],
      { netns: gw.netns },
    );
  }

  /** Runs a command inside a guest. */
  exec(name: GuestName, command: string, args: readonly string[], allowFailure = false) {
    return run(command, args, { netns: this.guest(name).netns, allowFailure, timeoutMs: 30_000 });
  }

  /** Removes everything; safe to call twice. A failing cleanup step does not stop the others. */
  async destroy(): Promise<void> {
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
    for (const child of this.children) child.kill("SIGKILL");
    const problems: unknown[] = [];
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup().catch((error: unknown) => problems.push(error));
    await run("sh", ["-c", `[ -f /tmp/vgc${this.id}-dnsmasq.pid ] && kill $(cat /tmp/vgc${this.id}-dnsmasq.pid); rm -f /tmp/vgc${this.id}-*`], { allowFailure: true });
    for (const ns of this.namespaces.splice(0).reverse()) await deleteNetns(ns);
    await this.switch.stop().catch((error: unknown) => problems.push(error));
    if (problems.length > 0) throw new AggregateError(problems, `sandbox vgc${this.id}: ${problems.length} clean-up step(s) failed`);
  }
}
