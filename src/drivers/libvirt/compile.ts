// PlacedPolicy → libvirt nwfilter documents: vifguard's shared filter set and, per port, its own
// filter (the level's top filter with the port's MACs and (MAC, prefix) bindings as parameters) and
// a filter binding of its device to that filter. Pure.
//
// Why a filter per port: libvirt cannot replace a binding, and between a delete and the next create
// (1-2 s of ebtables commands) the device is unfiltered. Redefining a filter (same name and uuid)
// makes libvirt build the new chains under temporary names and swap them in, for the bindings that
// use it only: a changed port is one nwfilter-define and never unprotected.
//
// Filter tree (prefix P, default "vifguard-"); each port's binding references one top filter:
//   P+full          from-vm: MAC (stock no-mac-spoofing) → VLAN tags → IPv4 source, DHCP server →
//                   IPv6 fragment sanity, source, RA/redirect/DHCPv6 server → ARP → QEMU announce-self
//                   (stock qemu-announce-self-rarp) → drop every other ethertype; to-vm: P+to-vm
//   P+full-no-ipv4  the same for a port without IPv4 bindings (libvirt refuses a binding that leaves a
//                   referenced variable empty, so the IPv4/ARP binding rules live in their own filters)
//   P+mac           oVirt's vdsm-no-mac-spoofing (stock no-mac-spoofing + no-arp-mac-spoofing) + P+to-vm
//   P+off           no rules (the binding still records the port, so observe() sees it)
// Per-port values are parameters of the port filter's <filterref>: MAC (every allowed MAC; it
// overrides the binding's own MAC, so the stock filters check the whole list), VG_V4_MAC/NET/MASK and VG_V6_MAC/NET/MASK as
// parallel lists iterated in lockstep ([@1], [@2]): rule n pairs the n-th MAC with the n-th
// prefix, so an address pair's IP is only accepted from that pair's MAC. VG_DIGEST carries the
// unit's digest, read back by observe().
//
// Every custom chain ends in an explicit verdict: with ebtables-nft (Debian 12's ebtables) the end of
// a libvirt sub-chain ACCEPTs the frame although `ebtables -L` shows "policy: RETURN" (seen with
// counters: a RARP reply accepted at the end of the stock rarp chain, never reaching the root drop).
//
// Rules are ebtables rules in the nat table (PREROUTING -i dev for from-vm, POSTROUTING -o dev for
// to-vm), so they run before the bridge learns a source MAC. Each custom chain is named for the
// guard its drops enforce, so counters need no rule comments: see chainGuard().
import { createHash } from "node:crypto";
import type { Device, Unit, UnitMap } from "../contract.ts";
import type { Guard } from "../../policy/guards.ts";
import type { Binding, PlacedPolicy, PortPolicy } from "../../policy/port-policy.ts";
import { formatAddress } from "../../model/ip.ts";

export const DEFAULT_PREFIX = "vifguard-";

/** A shared filter: its name and its definition (with a uuid derived from the name). */
export type FilterDef = Readonly<{ name: string; xml: string }>;

/** Chain names (≤ 12 characters: libvirt prefixes them with "I-<device>-" and ebtables allows 31). */
export const CHAINS = {
  toVm: "mac-vgtovm",
  ipv4Source: "ipv4-vgsrc",
  dhcp: "ipv4-vgdhcp",
  ipv6Fragment: "ipv6-vgfrag",
  ipv6Source: "ipv6-vgsrc",
  ipv6Guard: "ipv6-vgguard",
  arp: "arp-vg",
} as const;

const ATTR_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&apos;", '"': "&quot;" };
export function escapeXml(text: string): string {
  return text.replace(/[&<>'"]/g, (c) => ATTR_ESCAPES[c] ?? c);
}

/** A UUID (version-4 layout) derived from `text`, so every definition is the same on every host. */
export function uuidFor(text: string): string {
  const h = createHash("sha256").update(text).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16] ?? "0", 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

type Rule = Readonly<{ action: "return" | "drop" | "accept"; direction: "in" | "out"; priority: number; match?: string }>;

function ruleXml(r: Rule): string {
  const head = `  <rule action='${r.action}' direction='${r.direction}' priority='${r.priority}'`;
  return r.match ? `${head}>\n    <${r.match}/>\n  </rule>` : `${head}/>`;
}

function filterXml(name: string, chain: string, priority: number | undefined, body: readonly string[]): FilterDef {
  const prio = priority === undefined ? "" : ` priority='${priority}'`;
  const lines = [`<filter name='${name}' chain='${chain}'${prio}>`, `  <uuid>${uuidFor(`vifguard filter ${name}`)}</uuid>`, ...body, "</filter>"];
  return { name, xml: lines.join("\n") + "\n" };
}

const ref = (filter: string): string => `  <filterref filter='${filter}'/>`;

/** Drops of a tagged outer ethertype (802.1Q, 802.1ad, old QinQ): libvirt cannot look inside them. */
const VLAN_TYPES = ["vlan", "0x88a8", "0x9100"]; // libvirt prints 0x8100 as "vlan": say it its way

/** The shared filters for `prefix`, in definition order (referenced filters first). */
export function filterSet(prefix = DEFAULT_PREFIX): FilterDef[] {
  const P = prefix;
  const out = (priority: number, action: Rule["action"], match?: string): string => ruleXml({ action, direction: "out", priority, ...(match && { match }) });
  const toVm = filterXml(`${P}to-vm`, CHAINS.toVm, -790, [
    // Unicast for one of the port's MACs, broadcast and the multicast ranges guests use; libvirt only
    // accepts contiguous MAC masks, so "group bit set" cannot be said in one rule (see limitations).
    ruleXml({ action: "return", direction: "in", priority: 100, match: "mac dstmacaddr='$MAC'" }),
    ruleXml({ action: "return", direction: "in", priority: 200, match: "mac dstmacaddr='ff:ff:ff:ff:ff:ff'" }),
    ruleXml({ action: "return", direction: "in", priority: 210, match: "mac dstmacaddr='01:00:00:00:00:00' dstmacmask='ff:00:00:00:00:00'" }),
    ruleXml({ action: "return", direction: "in", priority: 220, match: "mac dstmacaddr='33:33:00:00:00:00' dstmacmask='ff:ff:00:00:00:00'" }),
    ruleXml({ action: "drop", direction: "in", priority: 1000 }),
  ]);
  const ipv4Bound = filterXml(`${P}ipv4-bound`, CHAINS.ipv4Source, -700, [
    out(100, "return", "ip srcmacaddr='$VG_V4_MAC[@1]' srcipaddr='$VG_V4_NET[@1]' srcipmask='$VG_V4_MASK[@1]'"),
  ]);
  const ipv4 = filterXml(`${P}ipv4`, CHAINS.ipv4Source, -700, [
    // A DHCP client before it has an address: 0.0.0.0:68 → 255.255.255.255:67 only.
    out(200, "return", "ip srcipaddr='0.0.0.0' dstipaddr='255.255.255.255' protocol='udp' srcportstart='68' dstportstart='67'"),
    out(1000, "drop"),
  ]);
  const dhcp = filterXml(`${P}dhcp-server`, CHAINS.dhcp, -690, [
    out(100, "drop", "ip protocol='udp' srcportstart='67'"),
    out(110, "drop", "ip protocol='udp' dstportstart='68'"), // a server whatever its source port
    out(1000, "return"),
  ]);
  const ipv6Fragment = filterXml(`${P}ipv6-fragment`, CHAINS.ipv6Fragment, -620, [
    // The kernel walks the extension headers for --ip6-proto; when the walk fails (a header whose
    // first bytes are missing) no protocol matches, not even "not 255", and the last rule drops it.
    // The walk does not check that the last extension header fits, so a first fragment cut inside
    // it passes (RFC 7112: declared). An ICMPv6 packet whose type cannot be read (its header is in a
    // later fragment) drops, so RA and redirect cannot hide there.
    out(100, "return", "ipv6 protocol='icmpv6' type='0' typeend='255'"),
    out(200, "drop", "ipv6 protocol='icmpv6'"),
    out(300, "return", "ipv6 match='no' protocol='255'"),
    out(1000, "drop"),
  ]);
  const ipv6Source = filterXml(`${P}ipv6-source`, CHAINS.ipv6Source, -610, [
    out(100, "return", "ipv6 srcmacaddr='$VG_V6_MAC[@2]' srcipaddr='$VG_V6_NET[@2]' srcipmask='$VG_V6_MASK[@2]'"),
    // From ::, only DAD (NS to a solicited-node group) and MLD reports (v1 131, v2 143).
    out(200, "return", "ipv6 srcipaddr='::' dstipaddr='ff02::1:ff00:0' dstipmask='104' protocol='icmpv6' type='135'"),
    out(210, "return", "ipv6 srcipaddr='::' protocol='icmpv6' type='131'"),
    out(220, "return", "ipv6 srcipaddr='::' protocol='icmpv6' type='143'"),
    out(1000, "drop"),
  ]);
  const ipv6Guard = filterXml(`${P}ipv6-guard`, CHAINS.ipv6Guard, -600, [
    out(100, "drop", "ipv6 protocol='icmpv6' type='134'"),
    out(200, "drop", "ipv6 protocol='icmpv6' type='137'"),
    out(300, "drop", "ipv6 protocol='udp' srcportstart='547'"),
    out(310, "drop", "ipv6 protocol='udp' dstportstart='546'"), // a server whatever its source port
    out(1000, "return"),
  ]);
  // RARP: only QEMU's announce-self (the stock qemu-announce-self-rarp accepts it), then drop.
  const rarp = filterXml(`${P}rarp`, "rarp", -400, [out(1000, "drop")]);
  // ARP: Ethernet/IPv4 only, the sender hardware address is the frame's source MAC, and the sender
  // IP is bound to that MAC (or 0.0.0.0, a probe). arpsrcipmask is accepted by libvirt's parser
  // but missing from its nwfilter.rng (9.0): see test/drivers/libvirt/schema.ts.
  const arpBound = filterXml(`${P}arp-bound`, CHAINS.arp, -520, [
    out(100, "return", "arp hwtype='1' protocoltype='0x0800' srcmacaddr='$VG_V4_MAC[@1]' arpsrcmacaddr='$VG_V4_MAC[@1]' arpsrcipaddr='$VG_V4_NET[@1]' arpsrcipmask='$VG_V4_MASK[@1]'"),
  ]);
  const arp = filterXml(`${P}arp`, CHAINS.arp, -520, [
    out(200, "return", "arp hwtype='1' protocoltype='0x0800' srcmacaddr='$MAC' arpsrcmacaddr='$MAC' arpsrcipaddr='0.0.0.0'"),
    out(1000, "drop"),
  ]);
  const full = (name: string, withIpv4: boolean): FilterDef =>
    filterXml(name, "root", undefined, [
      ref("no-mac-spoofing"),
      ref(`${P}to-vm`),
      ...VLAN_TYPES.map((type, i) => out(-750 + i, "drop", `mac protocolid='${type}'`)),
      ...(withIpv4 ? [ref(`${P}ipv4-bound`)] : []),
      ref(`${P}ipv4`),
      ref(`${P}dhcp-server`),
      out(-650, "accept", "mac protocolid='ipv4'"),
      ref(`${P}ipv6-fragment`),
      ref(`${P}ipv6-source`),
      ref(`${P}ipv6-guard`),
      out(-550, "accept", "mac protocolid='ipv6'"),
      ...(withIpv4 ? [ref(`${P}arp-bound`)] : []),
      ref(`${P}arp`),
      out(-500, "accept", "mac protocolid='arp'"),
      ref("qemu-announce-self-rarp"),
      ref(`${P}rarp`),
      out(1000, "drop"),
    ]);
  const mac = filterXml(`${P}mac`, "root", undefined, [ref("no-mac-spoofing"), ref("no-arp-mac-spoofing"), ref(`${P}to-vm`)]);
  const off = filterXml(`${P}off`, "root", undefined, []);
  return [toVm, ipv4Bound, ipv4, dhcp, ipv6Fragment, ipv6Source, ipv6Guard, arpBound, arp, rarp, full(`${P}full`, true), full(`${P}full-no-ipv4`, false), mac, off];
}

/** Stock libvirt filters the set references (shipped by libvirt-daemon-config-nwfilter). */
export const STOCK_FILTERS = ["no-mac-spoofing", "no-arp-mac-spoofing", "qemu-announce-self-rarp"] as const;

/** The guard a DROP rule enforces, from the libvirt chain it sits in (and the rule text, where one chain holds several). */
export function chainGuard(chainSuffix: string, ruleText: string): Guard | undefined {
  switch (chainSuffix) {
    case "mac":
      return "mac-spoof";
    case "root":
      return /802_1Q|0x88a8|0x9100|8021q|8021ad/i.test(ruleText) ? "vlan" : "ethertype";
    case CHAINS.toVm:
      return "not-for-this-port";
    case CHAINS.ipv4Source:
      return "ipv4-spoof";
    case CHAINS.dhcp:
      return "dhcp-server-guard";
    case CHAINS.ipv6Fragment:
      return "ipv6-fragment";
    case CHAINS.ipv6Source:
      return "ipv6-spoof";
    case CHAINS.ipv6Guard:
      if (/router-advertisement|type 134\b/.test(ruleText)) return "ra-guard";
      if (/redirect|type 137\b/.test(ruleText)) return "redirect-guard";
      return "dhcpv6-server-guard";
    case "rarp":
      return "ethertype";
    case CHAINS.arp:
    case "arp-mac":
      return "arp-spoof";
    default:
      return undefined;
  }
}

/** The top filter a port's binding references. */
export function topFilter(policy: PortPolicy, prefix = DEFAULT_PREFIX): string {
  switch (policy.level) {
    case "full":
      return policy.bindings.some((b) => b.prefix.family === 4) ? `${prefix}full` : `${prefix}full-no-ipv4`;
    case "mac":
      return `${prefix}mac`;
    case "off":
      return `${prefix}off`;
  }
}

type Parameter = readonly [name: string, value: string];

function bindingParameters(b: readonly Binding[], family: 4 | 6): Parameter[] {
  const v = `VG_V${family}_`;
  return b
    .filter((x) => x.prefix.family === family)
    .flatMap((x): Parameter[] => [
      [`${v}MAC`, x.mac],
      [`${v}NET`, formatAddress(family, x.prefix.bytes)],
      [`${v}MASK`, String(x.prefix.length)],
    ]);
}

/** The filter parameters of a port: its MACs and its bindings as lockstep lists (none at level off). */
export function portParameters(policy: PortPolicy): Parameter[] {
  if (policy.level === "off") return [];
  const macs = policy.macs.map((m): Parameter => ["MAC", m]);
  if (policy.level === "mac") return macs;
  return [...macs, ...bindingParameters(policy.bindings, 4), ...bindingParameters(policy.bindings, 6)];
}

function parameterLines(params: readonly Parameter[], indent: string): string[] {
  return params.map(([name, value]) => `${indent}<parameter name='${name}' value='${escapeXml(value)}'/>`);
}

/** The `<filterref>` for a domain's `<interface>` (`vifguard libvirt filterref --port ID`). */
export function filterrefSnippet(policy: PortPolicy, prefix = DEFAULT_PREFIX): string {
  const params = portParameters(policy);
  if (params.length === 0) return `<filterref filter='${topFilter(policy, prefix)}'/>\n`;
  return [`<filterref filter='${topFilter(policy, prefix)}'>`, ...parameterLines(params, "  "), "</filterref>"].join("\n") + "\n";
}

/** The owner of a port's binding: the prefix and the port id, and a uuid derived from both. */
export function ownerOf(port: string, prefix = DEFAULT_PREFIX): { name: string; uuid: string } {
  return { name: `${prefix}${port}`, uuid: uuidFor(`vifguard binding ${prefix}${port}`) };
}

/** The name of a port's own filter (the one its binding references). */
export function portFilterName(port: string, prefix = DEFAULT_PREFIX): string {
  return `${prefix}port-${port}`;
}

/** A port's own filter: its level's top filter with the port's parameters; `digest` is stored as VG_DIGEST. */
export function portFilterXml(policy: PortPolicy, prefix: string, digest: string): string {
  const params: Parameter[] = [...portParameters(policy), ["VG_DIGEST", digest]];
  const body = [`  <filterref filter='${topFilter(policy, prefix)}'>`, ...parameterLines(params, "    "), "  </filterref>"];
  return filterXml(portFilterName(policy.port, prefix), "root", undefined, body).xml;
}

/**
 * The attachment document of one port (libvirt's <filterbinding>: named an attachment here, since in
 * vifguard a binding is a (MAC, prefix) pair only): its device, its first MAC, and its own filter.
 */
export function attachmentXml(policy: PlacedPolicy, prefix: string): string {
  const owner = ownerOf(policy.port, prefix);
  return [
    "<filterbinding>",
    "  <owner>",
    `    <name>${escapeXml(owner.name)}</name>`,
    `    <uuid>${owner.uuid}</uuid>`,
    "  </owner>",
    `  <portdev name='${escapeXml(policy.device)}'/>`,
    `  <mac address='${policy.macs[0] ?? "00:00:00:00:00:00"}'/>`,
    `  <filterref filter='${escapeXml(portFilterName(policy.port, prefix))}'/>`,
    "</filterbinding>",
  ].join("\n") + "\n";
}

/** The digest of a port's unit: its filter (without the digest itself) and its binding. */
export function unitDigest(policy: PlacedPolicy, prefix: string): string {
  const body = portFilterXml(policy, prefix, "") + attachmentXml(policy, prefix);
  return createHash("sha256").update(body).digest("hex").slice(0, 16);
}

/** One unit per port, keyed by port id; text is the port's filter followed by its binding; a port whose device is not among `devices` awaits it. Sorted by key. */
export function compileLibvirt(policies: readonly PlacedPolicy[], devices: readonly Device[], prefix = DEFAULT_PREFIX): UnitMap {
  const present = new Set(devices.map((d) => d.name));
  const units = new Map<string, Unit>();
  for (const p of [...policies].sort((a, b) => (a.port < b.port ? -1 : a.port > b.port ? 1 : 0))) {
    // libvirt makes a binding's rules when it is created, and never later: wait for the device.
    if (!present.has(p.device)) {
      units.set(p.port, { key: p.port, port: p.port, digest: "", text: "", awaitingDevice: true });
      continue;
    }
    const digest = unitDigest(p, prefix);
    units.set(p.port, { key: p.port, port: p.port, digest, text: portFilterXml(p, prefix, digest) + attachmentXml(p, prefix) });
  }
  return units;
}

/** A unit's two documents: the port's filter and its attachment (libvirt's filter binding). */
export function unitDocuments(unit: Unit): { filter: string; attachment: string } {
  const at = unit.text.indexOf("<filterbinding>");
  if (at < 0) throw new Error(`bug: unit ${unit.key} has no binding document`);
  return { filter: unit.text.slice(0, at), attachment: unit.text.slice(at) };
}

/** The device a unit's binding is for (read back from its text). */
export function deviceOf(unit: Unit): string | undefined {
  const m = /<portdev name='([^']*)'\/>/.exec(unit.text);
  return m?.[1]?.replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}
