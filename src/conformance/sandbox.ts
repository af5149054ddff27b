// The sandbox hypervisor: a network namespace with a Linux bridge, and guests Alice, Eve, Bob and a
// gateway (running a DHCP server) in their own namespaces, each behind a veth port. Effects.
// Every name carries a per-run prefix; destroy() removes everything, also after a failure.
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { run } from "../host/run.ts";
import { parsePortFile } from "../model/port-file.ts";
import { portPolicies, type PortPolicy } from "../policy/port-policy.ts";

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

export class Sandbox {
  readonly id: string;
  readonly hypervisor: string;
  readonly guests = new Map<GuestName, Guest>();
  readonly children = new Set<ChildProcess>();
  private readonly namespaces: string[] = [];

  private constructor(id: string) {
    this.id = id;
    this.hypervisor = `vgc${id}-hv`;
  }

  /** Builds the sandbox; on any failure what was built is removed again. */
  static async create(): Promise<Sandbox> {
    const sandbox = new Sandbox(randomBytes(3).toString("hex"));
    try {
      await sandbox.build();
      return sandbox;
    } catch (error) {
      await sandbox.destroy();
      throw error;
    }
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
    await this.addNetns(this.hypervisor);
    const hv = { netns: this.hypervisor };
    // ageing 0: the bridge learns nothing and floods every unicast, so anti-sniffing is really tested.
    await run("ip", ["link", "add", "br0", "type", "bridge", "ageing_time", "0", "mcast_snooping", "0", "stp_state", "0"], hv);
    await run("ip", ["link", "set", "br0", "up"], hv);
    // With br_netfilter loaded, bridged IP frames are trimmed to their IP length, which would cut off
    // the kit's case markers (trailing bytes); vifguard filters in the bridge family and needs none of it.
    for (const family of ["iptables", "ip6tables", "arptables"]) {
      await run("sysctl", ["-qw", `net.bridge.bridge-nf-call-${family}=0`], { ...hv, allowFailure: true });
    }
    for (const g of GUESTS) {
      const netns = `vgc${this.id}-${g.name}`;
      const device = `vnet-${g.name}`;
      await this.addNetns(netns);
      const ns = { netns };
      await run("ip", ["link", "add", device, "type", "veth", "peer", "name", "eth0", "netns", netns], hv);
      // Few kernel chatters (no RS, quick DAD) so captures are about the cases.
      for (const setting of ["net.ipv6.conf.all.router_solicitations=0", "net.ipv6.conf.default.router_solicitations=0", "net.ipv6.conf.all.dad_transmits=1", "net.ipv6.conf.default.dad_transmits=1"]) {
        await run("sysctl", ["-qw", setting], ns);
      }
      await run("ip", ["link", "set", "eth0", "address", g.mac], ns);
      await run("ip", ["link", "set", "lo", "up"], ns);
      await run("ip", ["link", "set", "eth0", "up"], ns);
      const ipv4 = `${SUBNET4}.${g.host}`;
      const ipv6 = `${SUBNET6}::${g.host.toString(16)}`;
      await run("ip", ["addr", "add", `${ipv4}/24`, "dev", "eth0"], ns);
      await run("ip", ["-6", "addr", "add", `${ipv6}/64`, "dev", "eth0", "nodad"], ns);
      await run("ip", ["link", "set", device, "master", "br0", "up"], hv);
      this.guests.set(g.name, { name: g.name, netns, device, mac: g.mac, ipv4, ipv6 });
    }
    await run("ip", ["link", "set", "eth0", "promisc", "on"], { netns: this.guest("eve").netns });
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

  private async addNetns(name: string): Promise<void> {
    await run("ip", ["netns", "add", name]);
    this.namespaces.push(name);
  }

  /** Runs a command inside a guest. */
  exec(name: GuestName, command: string, args: readonly string[], allowFailure = false) {
    return run(command, args, { netns: this.guest(name).netns, allowFailure, timeoutMs: 30_000 });
  }

  async destroy(): Promise<void> {
    for (const child of this.children) child.kill("SIGKILL");
    await run("sh", ["-c", `[ -f /tmp/vgc${this.id}-dnsmasq.pid ] && kill $(cat /tmp/vgc${this.id}-dnsmasq.pid); rm -f /tmp/vgc${this.id}-*`], { allowFailure: true });
    for (const ns of [...this.namespaces].reverse()) await run("ip", ["netns", "del", ns], { allowFailure: true });
    this.namespaces.length = 0;
  }
}
