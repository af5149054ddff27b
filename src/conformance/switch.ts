// The sandbox's switch: what joins the guests' ports, and where their host-side devices live. Effects.
//   linux-bridge       bridge br0 in the hypervisor namespace vgcXXXXXX-hv (the nftables driver, --netns)
//   ovs                a userspace OVS bridge br0; ovs-vswitchd's namespace vgcXXXXXX-ovs is the hypervisor
//   linux-bridge-root  bridge vgcXXXXXXbr in the root namespace, ports vgcXXXXXXa, …: libvirt's filter
//                      bindings act on root-namespace devices only
// Every switch floods unicast (it learns no MAC), so a guest would see frames for others unless the
// driver keeps them away: anti-sniffing is really tested.
import type { SandboxSwitchKind } from "../drivers/contract.ts";
import type { DriverSettings } from "../drivers/registry.ts";
import { startOvsSandbox, type OvsSandbox } from "../drivers/ovs/sandbox.ts";
import { addBridge, addNetns, deleteNetns, plugGuest, type GuestSpec } from "./lab/net.ts";
import { run } from "../host/run.ts";
import type { GuestName } from "./sandbox.ts";

export type SwitchKind = SandboxSwitchKind; // which one a driver filters: its module says (DriverModule.sandbox)
export const SWITCH_KINDS: readonly SwitchKind[] = ["linux-bridge", "ovs", "linux-bridge-root"];


export interface SandboxSwitch {
  readonly kind: SwitchKind;
  /** The namespace of the bridge and of the ports' host-side devices; undefined: the root namespace. */
  readonly netns: string | undefined;
  readonly bridge: string;
  /** The host-side device of a guest's port (the port file's `device`). */
  device(guest: GuestName): string;
  start(): Promise<void>;
  /** Plugs a guest: the veth pair `device` (here) – its interface (in its namespace), `device` joined to the switch. */
  plug(device: string, guest: Guest): Promise<void>;
  /** How a driver under test reaches this switch (names prefixed with the run's `prefix`). */
  driverSettings(prefix: string): DriverSettings;
  /** Removes what start() and plug() made; safe after a partial start, and twice. */
  stop(): Promise<void>;
}

/** A guest as the sandbox plugs it; the switch adds where its port's host end goes. */
export type Guest = Omit<GuestSpec, "device" | "hostNetns" | "bridge">;

/** A Linux bridge in its own hypervisor namespace, with br_netfilter off there. */
class NamespacedBridge implements SandboxSwitch {
  readonly kind = "linux-bridge";
  readonly bridge = "br0";
  readonly netns: string;
  private started = false;
  constructor(id: string) {
    this.netns = `vgc${id}-hv`;
  }
  device(guest: GuestName): string {
    return `vnet-${guest}`;
  }
  async start(): Promise<void> {
    await addNetns(this.netns);
    this.started = true;
    // With br_netfilter on, bridged IP frames are trimmed to their IP length, which cuts off the
    // kit's case markers (trailing bytes); vifguard filters in the bridge family and needs none of it.
    await addBridge(this.netns, this.bridge, { flood: true, noBrNetfilter: true });
  }
  async plug(device: string, guest: Guest): Promise<void> {
    await plugGuest({ ...guest, device, hostNetns: this.netns, bridge: this.bridge });
  }
  driverSettings(prefix: string): DriverSettings {
    return { netns: this.netns, prefix };
  }
  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    await deleteNetns(this.netns); // takes the bridge and the host ends
  }
}

/**
 * A Linux bridge and the ports' host ends in the root namespace, for libvirt. br_netfilter is a
 * per-namespace setting that the host owns (libvirt's own networks may rely on it), so it is left as
 * it is: when on, bridged IP frames are trimmed to their IP length and the kit also matches frames
 * whole (see wire.ts).
 */
class RootBridge implements SandboxSwitch {
  readonly kind = "linux-bridge-root";
  readonly netns = undefined;
  readonly bridge: string;
  private readonly id: string;
  private readonly devices: string[] = [];
  private bridgeMade = false;
  constructor(id: string) {
    this.id = id;
    this.bridge = `vgc${id}br`;
  }
  device(guest: GuestName): string {
    return `vgc${this.id}${guest[0]}`; // alice, eve, bob, gw: a, e, b, g (15 characters at most)
  }
  async start(): Promise<void> {
    await addBridge(undefined, this.bridge, { flood: true });
    this.bridgeMade = true;
    await run("sysctl", ["-qw", `net.ipv6.conf.${this.bridge}.disable_ipv6=1`], { allowFailure: true }); // no chatter of the host's own
  }
  async plug(device: string, guest: Guest): Promise<void> {
    this.devices.push(device);
    await plugGuest({ ...guest, device, bridge: this.bridge });
  }
  driverSettings(prefix: string): DriverSettings {
    return { prefix: `${prefix}-` };
  }
  async stop(): Promise<void> {
    // A veth's host end usually goes with its guest's namespace; delete it anyway if still there.
    for (const device of this.devices.splice(0)) await run("ip", ["link", "del", device], { allowFailure: true });
    if (this.bridgeMade) await run("ip", ["link", "del", this.bridge], { allowFailure: true });
    this.bridgeMade = false;
  }
}

/** A userspace (netdev) OVS bridge from src/drivers/ovs/sandbox.ts; vswitchd's namespace holds the ports. */
export class OvsSwitch implements SandboxSwitch {
  readonly kind = "ovs";
  readonly bridge = "br0";
  readonly netns: string;
  private readonly prefix: string;
  private ovsSandbox: OvsSandbox | undefined;
  constructor(id: string) {
    this.prefix = `vgc${id}`;
    this.netns = `${this.prefix}-ovs`; // the name startOvsSandbox gives its namespace
  }
  get ovs(): OvsSandbox {
    if (!this.ovsSandbox) throw new Error("the OVS switch is not started");
    return this.ovsSandbox;
  }
  device(guest: GuestName): string {
    return `vnet-${guest}`;
  }
  async start(): Promise<void> {
    this.ovsSandbox = await startOvsSandbox({ prefix: this.prefix });
    await this.ovs.addBridge(this.bridge);
    // NORMAL learns MACs per VLAN; flood_vlans turns learning off for untagged traffic (VLAN 0), so
    // NORMAL floods every unicast as the Linux bridges with ageing 0 do.
    await this.ovs.vsctl("set", "bridge", this.bridge, "flood_vlans=0");
  }
  async plug(device: string, guest: Guest): Promise<void> {
    // Userspace OVS reads the veth with a plain AF_PACKET socket, without the header that says a
    // checksum is still to be filled in: the guest must compute its TCP/UDP checksums itself.
    await plugGuest({ ...guest, device, hostNetns: this.netns, noTxOffload: true });
    await this.ovs.vsctl("add-port", this.bridge, device);
  }
  driverSettings(prefix: string): DriverSettings {
    return { prefix, bridge: this.bridge, runDir: this.ovs.runDir };
  }
  async stop(): Promise<void> {
    await this.ovsSandbox?.stop(); // both daemons, the namespace (with the host ends) and the run directory
  }
}

export function createSwitch(kind: SwitchKind, id: string): SandboxSwitch {
  switch (kind) {
    case "linux-bridge":
      return new NamespacedBridge(id);
    case "ovs":
      return new OvsSwitch(id);
    case "linux-bridge-root":
      return new RootBridge(id);
  }
}
