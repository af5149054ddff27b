// PlacedPolicy[] + the bridge's devices (each port's OpenFlow port number) → OpenFlow flows, one unit per port. Pure.
//
// Tables, relative to `tableBase` (the operator sends every frame of the bridge there):
//   +0 classify  in_port of a protected port → +1; anything else → pass
//   +1 source    dl_src is one of the port's MACs → +2, else drop (mac-spoof)
//   +2 checks    VLAN, ethertype, ARP, IPv4 bindings and DHCP server, IPv6 source bindings
//   +3 ipv6      fragments, RA, redirect, NS/NA targets and link-layer options, DHCPv6 server
//   +4 to-vm     pass=normal: unicast to a protected MAC is output to its port directly, so NORMAL
//                never floods it to others; pass=table: the operator's pipeline resubmits here with
//                the output port in a register, and unicast not for that port is dropped.
// Every lookup is an exact or masked match in the OVS classifier (in_port, dl_src, nw_src, ...), so
// the per-packet cost does not grow with the number of ports.
//
// Cookies: magic byte (from the prefix) | 48-bit hash of the unit key | 0x00: every flow of a port
// carries the same cookie, so one exact-cookie delete takes the whole port away (OVS indexes exact
// cookies only). What a flow does is in its priority: rank × 16 + kind, the kind being 0 for a pass
// and 1 + the index of the guard a drop flow enforces; counters() and ofproto/trace read the reason
// there. Flows of equal rank and different kinds never overlap, so the kind bits change no verdict.
// One port is replaced with its delete plus its adds in one bundle; the classify flow carries
// `note:` with the key and the digest, so observe() rebuilds {key, digest} from a flow dump alone.
import { createHash } from "node:crypto";
import type { Device, Unit, UnitMap } from "../contract.ts";
import { GUARDS, type Guard } from "../../policy/guards.ts";
import type { Binding, PlacedPolicy } from "../../policy/port-policy.ts";
import type { Mac } from "../../model/mac.ts";

/** What frames that pass do next: NORMAL switching, or the operator's next table. */
export type PassAction = "normal" | Readonly<{ table: number }>;

export type OvsLayout = Readonly<{
  tableBase: number;
  pass: PassAction;
  /** High byte of every cookie vifguard sets. */
  magic: number;
  /** pass=table: the register (0–15) holding the output port when the operator's pipeline resubmits to to-vm. */
  portRegister: number;
}>;

export const TABLE_COUNT = 5;
export const CLASSIFY = 0;
export const SOURCE = 1;
export const CHECKS = 2;
export const IPV6 = 3;
export const TO_VM = 4;

const ZERO_MAC = "00:00:00:00:00:00";
const GROUP_BIT = "01:00:00:00:00:00/01:00:00:00:00:00";

/** The prefix's magic byte: the first byte of its SHA-256, never 0. */
export function magicFor(prefix: string): number {
  const byte = createHash("sha256").update(prefix).digest()[0] ?? 0;
  return byte === 0 ? 0x76 : byte;
}

/** 48-bit hash of a unit key as 12 hex digits; never zero (0 is the base unit). */
export function keyHash(key: string): string {
  const hex = createHash("sha256").update(key).digest("hex").slice(0, 12);
  return hex === "000000000000" ? "000000000001" : hex;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, "0");

/** The cookie of every flow of the unit with this key hash; `kind` only for flows older vifguards wrote. */
export function cookieOf(layout: OvsLayout, hash48: string, kind = 0): string {
  return `0x${hex2(layout.magic)}${hash48}${hex2(kind)}`;
}

/** Cookie and mask selecting every flow vifguard owns under this prefix. */
export function allCookieMask(layout: OvsLayout): string {
  return `0x${hex2(layout.magic)}00000000000000/0xff00000000000000`;
}

/** A flow's OpenFlow priority is rank × PRIORITY_SCALE + kind: the kind must fit below the scale. */
export const PRIORITY_SCALE = 16;
if (GUARDS.length >= PRIORITY_SCALE) throw new Error(`${GUARDS.length} guards do not fit in the priority's kind bits (${PRIORITY_SCALE - 1})`);

/** Rank of the classify flow: a classify flow of another rank was written by an older vifguard. */
export const CLASSIFY_RANK = 100;

export function kindOf(guard: Guard): number {
  return GUARDS.indexOf(guard) + 1;
}

function guardOfKind(kind: number): Guard | undefined {
  return GUARDS[kind - 1];
}

/** The guard a flow of this OpenFlow priority enforces (undefined: a pass). */
export function guardOfPriority(priority: number): Guard | undefined {
  return guardOfKind(priority % PRIORITY_SCALE);
}

/** OpenFlow priority of a flow of this rank and kind. */
export function priorityOf(rank: number, kind = 0): number {
  return rank * PRIORITY_SCALE + kind;
}

/** note: payload carried by the classify flow: JSON [key, digest] as dotted hex bytes. */
export function noteFor(key: string, digest: string): string {
  return [...Buffer.from(JSON.stringify([key, digest]), "utf8")].map(hex2).join(".");
}

/** Inverse of noteFor on dump-flows text ("note:5b.22..." possibly zero-padded); undefined if not ours. */
export function parseNote(dotted: string): { key: string; digest: string } | undefined {
  const bytes = dotted.split(".").map((h) => parseInt(h, 16));
  while (bytes.length > 0 && bytes[bytes.length - 1] === 0) bytes.pop();
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes).toString("utf8"));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && typeof value[1] === "string") {
      return { key: value[0], digest: value[1] };
    }
  } catch {
    // not a vifguard note
  }
  return undefined;
}

/** 32-bit tag of a network for the metadata field (pass=normal); never zero. */
export function networkTag(network: string): string {
  const hex = createHash("sha256").update(`network ${network}`).digest("hex").slice(0, 8);
  return `0x${hex === "00000000" ? "00000001" : hex}`;
}

/** `priority` is the flow's rank; its OpenFlow priority adds the kind (priorityOf). */
type Flow = Readonly<{ table: number; priority: number; kind: number; match: string; actions: string }>;

function passActions(layout: OvsLayout): string {
  return layout.pass === "normal" ? `goto_table:${layout.tableBase + TO_VM}` : `resubmit(,${layout.pass.table})`;
}

/**
 * The flows of the base unit (key hash 0): what frames of ports vifguard does not protect do, and
 * the passes every protected port shares. Sharing them (instead of one copy per port, each matching
 * in_port) takes 6 of 44 flows off every port at level full. A shared flow matches no in_port, so it
 * applies to every port that reaches its table: the checks table is reached by ports at level full
 * and mac, so only passes both levels give the same verdict are shared there (DHCP client, MLD from
 * ::; not DAD, which level mac checks as any NS); the ipv6 table is reached by level full only. Each
 * has the priority its per-port copy had, and no per-port flow of that priority overlaps it.
 */
export function baseFlows(layout: OvsLayout): string[] {
  const t = (n: number): number => layout.tableBase + n;
  const cookie = cookieOf(layout, "000000000000");
  const pass = passActions(layout);
  const toV6 = `goto_table:${t(IPV6)}`;
  const lines = [
    `table=${t(CLASSIFY)},priority=${priorityOf(0)},cookie=${cookie} actions=${layout.pass === "normal" ? "NORMAL" : `resubmit(,${layout.pass.table})`}`,
    `table=${t(CHECKS)},priority=${priorityOf(500)},cookie=${cookie},udp,nw_src=0.0.0.0,nw_dst=255.255.255.255,tp_src=68,tp_dst=67 actions=${pass}`, // DHCP client
    `table=${t(CHECKS)},priority=${priorityOf(500)},cookie=${cookie},icmp6,ipv6_src=::,icmp_type=131 actions=${toV6}`, // MLDv1 report from ::
    `table=${t(CHECKS)},priority=${priorityOf(500)},cookie=${cookie},icmp6,ipv6_src=::,icmp_type=143 actions=${toV6}`, // MLDv2 report from ::
    `table=${t(IPV6)},priority=${priorityOf(900)},cookie=${cookie},ipv6,ip_frag=later actions=${pass}`, // non-first fragment: no upper-layer header to check
    `table=${t(IPV6)},priority=${priorityOf(640)},cookie=${cookie},icmp6,icmp_type=135,nd_sll=${ZERO_MAC} actions=${pass}`, // NS without SLL
    `table=${t(IPV6)},priority=${priorityOf(1)},cookie=${cookie} actions=${pass}`,
    layout.pass === "normal"
      ? `table=${t(TO_VM)},priority=${priorityOf(0)},cookie=${cookie} actions=NORMAL`
      : `table=${t(TO_VM)},priority=${priorityOf(0)},cookie=${cookie} actions=output:NXM_NX_REG${layout.portRegister}[]`,
  ];
  return lines;
}

const v4 = (bs: readonly Binding[], mac: Mac): Binding[] => bs.filter((b) => b.mac === mac && b.prefix.family === 4);
const v6 = (bs: readonly Binding[], mac: Mac): Binding[] => bs.filter((b) => b.mac === mac && b.prefix.family === 6);
const v4Text = (b: Binding): string => (b.prefix.length === 0 ? "0.0.0.0/0" : b.prefix.text);
const v6Text = (b: Binding): string => (b.prefix.length === 0 ? "::/0" : b.prefix.text);

function fullChecks(p: PlacedPolicy, ofport: number, pass: string, t: (n: number) => number): Flow[] {
  const f: Flow[] = [];
  const add = (table: number, priority: number, match: string, actions: string, guard?: Guard): void => {
    f.push({ table: t(table), priority, kind: guard ? kindOf(guard) : 0, match: `in_port=${ofport},${match}`.replace(/,$/, ""), actions: guard ? "drop" : actions });
  };
  const toV6 = `goto_table:${t(IPV6)}`;
  // +2 checks. Priorities mirror docs/semantics.md's order: the first failing rule names the reason.
  // The DHCP client's discover, MLD reports from ::, and in +3 non-first fragments, NS without SLL
  // and the default pass are base flows, shared by every port (baseFlows()).
  add(CHECKS, 900, "vlan_tci=0x1000/0x1000", "", "vlan"); // 802.1Q and 802.1ad: OVS parses both as a tag
  add(CHECKS, 900, "dl_type=0x9100", "", "vlan"); // old QinQ TPID: OVS sees it as an ethertype
  add(CHECKS, 600, "ipv6,nw_proto=0", "", "ipv6-fragment"); // OVS gave up on the header chain (truncated)
  for (const mac of p.macs) {
    const m = `dl_src=${mac}`;
    add(CHECKS, 500, `${m},arp,arp_sha=${mac},arp_spa=0.0.0.0`, pass); // ARP probe
    add(CHECKS, 500, `${m},rarp,dl_dst=ff:ff:ff:ff:ff:ff,arp_op=3,arp_sha=${mac},arp_tha=${mac},arp_spa=0.0.0.0,arp_tpa=0.0.0.0`, pass); // QEMU announce-self
    for (const b of v4(p.bindings, mac)) {
      add(CHECKS, 500, `${m},arp,arp_sha=${mac},arp_spa=${v4Text(b)}`, pass);
      add(CHECKS, 500, `${m},udp,nw_src=${v4Text(b)},tp_src=67`, "", "dhcp-server-guard");
      add(CHECKS, 490, `${m},udp,nw_src=${v4Text(b)},tp_dst=68`, "", "dhcp-server-guard"); // a server whatever its source port
      add(CHECKS, 450, `${m},ip,nw_src=${v4Text(b)}`, pass);
    }
    for (const b of v6(p.bindings, mac)) add(CHECKS, 500, `${m},ipv6,ipv6_src=${v6Text(b)}`, toV6);
  }
  // :: only for DAD (NS to a solicited-node group) and MLD reports (those two are base flows).
  add(CHECKS, 500, "icmp6,ipv6_src=::,ipv6_dst=ff02::1:ff00:0/104,icmp_type=135", toV6);
  add(CHECKS, 400, "arp", "", "arp-spoof");
  add(CHECKS, 400, "ip", "", "ipv4-spoof");
  add(CHECKS, 400, "ipv6", "", "ipv6-spoof");
  add(CHECKS, 1, "", "", "ethertype"); // also 802.3 lengths (OVS: dl_type=0x05ff) and other RARP

  // +3 ipv6: the source is bound (or :: for DAD/MLD).
  add(IPV6, 800, "icmp6,icmp_type=134", "", "ra-guard");
  add(IPV6, 800, "icmp6,icmp_type=137", "", "redirect-guard");
  // OVS clears nd_target and the link-layer addresses when an option repeats or is malformed: a real
  // NS or NA never targets ::, so these catch "own SLL first, Alice's second".
  add(IPV6, 750, "icmp6,icmp_type=135,nd_target=::", "", "nd-spoof");
  add(IPV6, 750, "icmp6,icmp_type=136,nd_target=::", "", "nd-spoof");
  for (const mac of p.macs) {
    const m = `dl_src=${mac}`;
    for (const b of v6(p.bindings, mac)) {
      for (const ll of [mac, ZERO_MAC]) {
        add(IPV6, 700, `${m},icmp6,icmp_type=136,nd_target=${v6Text(b)},nd_tll=${ll}`, pass);
        add(IPV6, 700, `${m},icmp6,icmp_type=135,ipv6_src=::,nd_target=${v6Text(b)},nd_sll=${ll}`, pass); // DAD
      }
    }
    add(IPV6, 640, `${m},icmp6,icmp_type=135,nd_sll=${mac}`, pass);
  }
  add(IPV6, 650, "icmp6,icmp_type=135,ipv6_src=::", "", "nd-spoof");
  add(IPV6, 600, "icmp6,icmp_type=135", "", "nd-spoof");
  add(IPV6, 600, "icmp6,icmp_type=136", "", "nd-spoof");
  add(IPV6, 500, "udp6,tp_src=547", "", "dhcpv6-server-guard");
  add(IPV6, 490, "udp6,tp_dst=546", "", "dhcpv6-server-guard"); // a server whatever its source port
  return f;
}

function macChecks(p: PlacedPolicy, ofport: number, pass: string, t: (n: number) => number): Flow[] {
  const f: Flow[] = [];
  const add = (priority: number, match: string, actions: string, guard?: Guard): void => {
    f.push({ table: t(CHECKS), priority, kind: guard ? kindOf(guard) : 0, match: `in_port=${ofport},${match}`.replace(/,$/, ""), actions: guard ? "drop" : actions });
  };
  add(900, "vlan_tci=0x1000/0x1000", pass); // level mac does not look inside tags
  add(750, "icmp6,icmp_type=135,nd_target=::", "", "nd-spoof");
  add(750, "icmp6,icmp_type=136,nd_target=::", "", "nd-spoof");
  for (const mac of p.macs) {
    const m = `dl_src=${mac}`;
    add(500, `${m},arp,arp_sha=${mac}`, pass);
    add(500, `${m},icmp6,icmp_type=135,nd_sll=${mac}`, pass);
    add(500, `${m},icmp6,icmp_type=136,nd_tll=${mac}`, pass);
  }
  add(500, `icmp6,icmp_type=135,nd_sll=${ZERO_MAC}`, pass);
  add(500, `icmp6,icmp_type=136,nd_tll=${ZERO_MAC}`, pass);
  add(400, "arp", "", "arp-spoof");
  add(400, "icmp6,icmp_type=135", "", "nd-spoof");
  add(400, "icmp6,icmp_type=136", "", "nd-spoof");
  add(1, "", pass);
  return f;
}

/** MACs that more than one port of a network claims: NORMAL delivers those (no pinning). */
function sharedMacs(policies: readonly PlacedPolicy[]): Set<string> {
  const seen = new Map<string, number>();
  for (const p of policies) {
    if (p.level === "off") continue;
    for (const mac of p.macs) seen.set(`${p.network} ${mac}`, (seen.get(`${p.network} ${mac}`) ?? 0) + 1);
  }
  return new Set([...seen].filter(([, n]) => n > 1).map(([k]) => k));
}

function portFlows(p: PlacedPolicy, ofport: number, layout: OvsLayout, shared: ReadonlySet<string>): Flow[] {
  const t = (n: number): number => layout.tableBase + n;
  const pass = passActions(layout);
  const normal = layout.pass === "normal";
  const metadata = normal ? `write_metadata:${networkTag(p.network)},` : "";
  const flows: Flow[] = [];
  if (p.level === "off") {
    flows.push({ table: t(CLASSIFY), priority: CLASSIFY_RANK, kind: 0, match: `in_port=${ofport}`, actions: `${metadata}${pass}` });
    return flows;
  }
  flows.push({ table: t(CLASSIFY), priority: CLASSIFY_RANK, kind: 0, match: `in_port=${ofport}`, actions: `${metadata}goto_table:${t(SOURCE)}` });
  for (const mac of p.macs) flows.push({ table: t(SOURCE), priority: 100, kind: 0, match: `in_port=${ofport},dl_src=${mac}`, actions: `goto_table:${t(CHECKS)}` });
  flows.push({ table: t(SOURCE), priority: 1, kind: kindOf("mac-spoof"), match: `in_port=${ofport}`, actions: "drop" });
  flows.push(...(p.level === "full" ? fullChecks(p, ofport, pass, t) : macChecks(p, ofport, pass, t)));
  if (normal) {
    for (const mac of p.macs) {
      if (shared.has(`${p.network} ${mac}`)) continue;
      flows.push({ table: t(TO_VM), priority: 100, kind: 0, match: `metadata=${networkTag(p.network)},dl_dst=${mac}`, actions: `output:${ofport}` });
    }
  } else {
    const reg = `reg${layout.portRegister}=${ofport}`;
    for (const mac of p.macs) flows.push({ table: t(TO_VM), priority: 100, kind: 0, match: `${reg},dl_dst=${mac}`, actions: `output:${ofport}` });
    flows.push({ table: t(TO_VM), priority: 90, kind: 0, match: `${reg},dl_dst=${GROUP_BIT}`, actions: `output:${ofport}` });
    flows.push({ table: t(TO_VM), priority: 10, kind: kindOf("not-for-this-port"), match: reg, actions: "drop" });
  }
  return flows;
}

function flowLine(flow: Flow, layout: OvsLayout, hash48: string): string {
  return `table=${flow.table},priority=${priorityOf(flow.priority, flow.kind)},cookie=${cookieOf(layout, hash48)},${flow.match} actions=${flow.actions}`;
}

/**
 * device → ofport for compile(): each device under its name and under its external_ids:iface-id
 * (OpenStack, OVN and libvirt's `<virtualport type='openvswitch'>` set it), so a port file may name
 * either. Devices without an ofport are left out. Pure.
 */
export function ofportMap(devices: readonly Device[]): ReadonlyMap<string, number> {
  const known = ofportMaps.get(devices);
  if (known) return known;
  const map = new Map<string, number>();
  for (const d of devices) if (d.ofport !== undefined && d.ifaceId && !map.has(d.ifaceId)) map.set(d.ifaceId, d.ofport);
  for (const d of devices) if (d.ofport !== undefined) map.set(d.name, d.ofport); // a name wins over an iface-id
  ofportMaps.set(devices, map);
  return map;
}

/**
 * ofportMap() by the identity of its (never mutated) device list: one observe()'s devices serve
 * every compile() until the next observe, and a one-port compile should not rebuild the map of
 * every interface on the bridge (10,000 ports: 20,000 entries of garbage per compile).
 */
const ofportMaps = new WeakMap<readonly Device[], ReadonlyMap<string, number>>();

/**
 * Compiles every policy into one unit per port. A port meets its interface on the bridge by the
 * interface's name or external_ids:iface-id (`devices`, from observe()); a port whose interface is
 * not on the bridge, or has no OpenFlow port number yet, gets a unit awaiting its device.
 */
export function compileOvs(policies: readonly PlacedPolicy[], devices: readonly Device[], layout: OvsLayout): UnitMap {
  const shared = sharedMacs(policies);
  const ofports = ofportMap(devices);
  const units = new Map<string, Unit>();
  for (const p of [...policies].sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : 0))) {
    const key = p.port;
    const ofport = ofports.get(p.device);
    if (ofport === undefined) {
      units.set(key, { key, port: p.port, digest: "", text: "", awaitingDevice: true });
      continue;
    }
    const hash48 = keyHash(key);
    const flows = portFlows(p, ofport, layout, shared);
    const [classify, ...rest] = flows.map((flow) => flowLine(flow, layout, hash48));
    const body = [classify!, ...rest].join("\n");
    const digest = createHash("sha256").update(body).digest("hex").slice(0, 16);
    // The classify flow carries the note; it is the first line and the one observe() reads.
    const first = classify!.replace(" actions=", ` actions=note:${noteFor(key, digest)},`);
    units.set(key, { key, port: p.port, digest, text: [first, ...rest].join("\n") + "\n" });
  }
  return units;
}
