// How a port meets its device: by the name its source gives, by the device a hypervisor hook named
// for its MAC, or by the tap's MAC. Pure: devices (from observe()), policies and hints in, placement out.
//
// libvirt names taps itself (vnetN) and gives a restarted VM a new name, so a written device name
// goes stale; the tap's MAC does not: libvirt gives the tap the guest's MAC with the first octet
// replaced by 0xfe (0xfa when the guest's own first octet is 0xfe), so that the bridge never takes
// the tap's MAC as its own. Open vSwitch also records the guest's MAC as external_ids:attached-mac.
import type { Device, Driver, Unit } from "../drivers/contract.ts";
import type { PlacedPolicy, PortPolicy } from "../policy/port-policy.ts";

/** Guest MAC (lower-case) → device name, as a hypervisor hook read it (libvirt's domain XML: <target dev>). */
export type DeviceHints = ReadonlyMap<string, string>;

/**
 * How one port met its device, or why it has none:
 *   named         the device its source names exists (by name, or OVS iface-id)
 *   hinted        a hook named the device for the port's MAC, and it exists
 *   mac           the one device whose MAC is the port's tap MAC (or whose attached-mac is the port's MAC)
 *   named-absent  its source names a device that does not exist and nothing matched by MAC: the
 *                 driver decides (nftables installs rules for the name; OVS and libvirt await it)
 *   none          no name, no hint, no device with its MAC: awaiting-device
 *   ambiguous     several devices carry its tap MAC, or another port matched the same device:
 *                 nothing is installed (fail-closed keeps those devices dark) until it is resolved
 */
export type DeviceMatch =
  | Readonly<{ port: string; how: "named" | "hinted" | "mac" | "named-absent"; device: string }>
  | Readonly<{ port: string; how: "none" }>
  | Readonly<{ port: string; how: "ambiguous"; candidates: readonly string[]; reason: string }>;

export type Placement = Readonly<{
  /** The policies with a device to compile (named, hinted, mac, named-absent), in the input's order. */
  placed: readonly PlacedPolicy[];
  /** Every port's match, keyed by port id. */
  matches: ReadonlyMap<string, DeviceMatch>;
}>;

/** The MAC libvirt (and QEMU's tap helpers) give the host end of a guest's tap: first octet fe, or fa when the guest's is fe. */
export function tapMac(guestMac: string): string {
  const mac = guestMac.toLowerCase();
  return (mac.startsWith("fe:") ? "fa" : "fe") + mac.slice(2);
}

const byPort = (a: PortPolicy, b: PortPolicy): number => (a.port < b.port ? -1 : a.port > b.port ? 1 : 0);

/**
 * Places each policy on a device. A device named by the source wins when it exists; devices so
 * named are nobody else's. Otherwise a hook's hint for the port's MAC (when that device exists),
 * else the one device with the port's tap MAC. Two candidates, or two ports on one device, is
 * `ambiguous` for each port involved: a silent pick could protect the wrong VM's tap with this
 * port's addresses.
 */
export function matchDevices(policies: readonly PortPolicy[], devices: readonly Device[], hints: DeviceHints = new Map()): Placement {
  const byName = new Map<string, Device>();
  for (const d of devices) byName.set(d.name, d);
  for (const d of devices) if (d.ifaceId !== undefined && !byName.has(d.ifaceId)) byName.set(d.ifaceId, d);
  const deviceNamed = (name: string): Device | undefined => byName.get(name);

  const matches = new Map<string, DeviceMatch>();
  const claimed = new Set<string>(); // device names taken by a port that names them
  for (const p of policies) {
    const d = p.device === undefined ? undefined : deviceNamed(p.device);
    if (d) {
      matches.set(p.port, { port: p.port, how: "named", device: p.device! });
      claimed.add(d.name);
    }
  }

  // The others, in port order (deterministic whatever the source's order).
  const found = new Map<string, DeviceMatch>();
  for (const p of [...policies].filter((p) => !matches.has(p.port)).sort(byPort)) {
    const mac = p.macs[0];
    const hinted = mac === undefined ? undefined : hints.get(mac);
    const hintDevice = hinted === undefined ? undefined : deviceNamed(hinted);
    if (hinted !== undefined && hintDevice && !claimed.has(hintDevice.name)) {
      found.set(p.port, { port: p.port, how: "hinted", device: hintDevice.name });
      continue;
    }
    const tap = mac === undefined ? undefined : tapMac(mac);
    const candidates = [...new Set(devices.filter((d) => !claimed.has(d.name) && !d.isMaster && ((tap !== undefined && d.mac === tap) || (mac !== undefined && d.attachedMac === mac))).map((d) => d.name))].sort();
    if (candidates.length === 1) found.set(p.port, { port: p.port, how: "mac", device: candidates[0]! });
    else if (candidates.length > 1) found.set(p.port, { port: p.port, how: "ambiguous", candidates, reason: `${candidates.length} devices carry its tap MAC ${tap} (${candidates.join(", ")})` });
    else if (p.device !== undefined) found.set(p.port, { port: p.port, how: "named-absent", device: p.device });
    else found.set(p.port, { port: p.port, how: "none" });
  }

  // Two ports matched to one device (same MAC on two networks, a hint naming another's tap): neither gets it.
  const users = new Map<string, string[]>();
  for (const m of found.values()) if (m.how === "hinted" || m.how === "mac") users.set(m.device, [...(users.get(m.device) ?? []), m.port]);
  for (const [device, ports] of users) {
    if (ports.length < 2) continue;
    for (const port of ports) found.set(port, { port, how: "ambiguous", candidates: [device], reason: `ports ${ports.join(", ")} all match device ${device}` });
  }

  for (const [port, m] of found) matches.set(port, m);
  const placed = policies.flatMap((p): PlacedPolicy[] => {
    const m = matches.get(p.port)!;
    return m.how === "none" || m.how === "ambiguous" ? [] : [{ ...p, device: m.device }];
  });
  return { placed, matches };
}

/**
 * The unit of a port that met no device (none, ambiguous): it awaits one, and installs nothing.
 * Its key cannot be a driver's (those are device names or port ids; neither starts with '?'),
 * so planning removes whatever the port's vanished device left under the driver's key.
 */
export function awaitingUnit(port: string): Unit {
  return { key: `?${port}`, port, digest: "", text: "", awaitingDevice: true };
}

/** Policies that name their device, placed on it as named (benches, tests, `vifguard libvirt`); throws naming a port without one. */
export function placeAsNamed(policies: readonly PortPolicy[]): PlacedPolicy[] {
  return policies.map((p) => {
    if (p.device === undefined) throw new Error(`port ${p.port} names no device (it is found by MAC by the agent)`);
    return { ...p, device: p.device };
  });
}

/**
 * Every port's unit: the driver compiles the placed policies (against the same devices); a port
 * that met no device gets awaitingUnit(). Pure when `compile` is (the contract says it is).
 */
export function compileMatched(compile: Driver["compile"], policies: readonly PortPolicy[], devices: readonly Device[], hints?: DeviceHints): { units: Map<string, Unit>; matches: ReadonlyMap<string, DeviceMatch> } {
  const { placed, matches } = matchDevices(policies, devices, hints);
  const units = new Map(compile(placed, devices));
  for (const m of matches.values()) if (m.how === "none" || m.how === "ambiguous") units.set(awaitingUnit(m.port).key, awaitingUnit(m.port));
  return { units, matches };
}
