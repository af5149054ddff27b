// OpenFlow 1.5 messages for the flows compile.ts writes, encoded without ovs-ofctl. Pure.
//
// Why: spawning ovs-ofctl costs ~10 ms per process, and a one-port change took two of them
// (set-frags, then the bundle). The driver (ofconn.ts) keeps one connection to the bridge's
// management socket and sends these bytes instead. Only the vocabulary compile.ts uses is encoded:
// anything else throws UnsupportedFlowError, and the driver falls back to ovs-ofctl.
//
// Matches are OXM (OpenFlow basic class 0x8000), plus three Nicira fields OVS accepts inside OXM
// (vlan_tci, ip_frag, regN). Fields are emitted in prerequisite order (OVS checks each field's
// prerequisites against the fields before it). Actions: NORMAL, output:N, drop (no instruction),
// goto_table, write_metadata, and the Nicira actions note, resubmit(,T) and output:NXM_NX_REGn[].
import ipaddr from "ipaddr.js";

export const OFP15_VERSION = 0x06;

export const OFPT = {
  HELLO: 0,
  ERROR: 1,
  ECHO_REQUEST: 2,
  ECHO_REPLY: 3,
  GET_CONFIG_REQUEST: 7,
  GET_CONFIG_REPLY: 8,
  SET_CONFIG: 9,
  FLOW_MOD: 14,
  BARRIER_REQUEST: 20,
  BARRIER_REPLY: 21,
  BUNDLE_CONTROL: 33,
  BUNDLE_ADD_MESSAGE: 34,
} as const;

export const BUNDLE = { OPEN_REQUEST: 0, OPEN_REPLY: 1, CLOSE_REQUEST: 2, CLOSE_REPLY: 3, COMMIT_REQUEST: 4, COMMIT_REPLY: 5, DISCARD_REQUEST: 6, DISCARD_REPLY: 7 } as const;
/** OFPBF_ATOMIC | OFPBF_ORDERED, as `ovs-ofctl --bundle` sets. */
export const BUNDLE_ATOMIC_ORDERED = 0x3;
/** OFPC_FRAG_MASK and the value of `ovs-ofctl set-frags nx-match`. */
export const FRAG_MASK = 0x3;
export const FRAG_NX_MATCH = 0x3;

/** A flow line (or action) this encoder does not know; the caller falls back to ovs-ofctl. */
export class UnsupportedFlowError extends Error {
  override name = "UnsupportedFlowError";
}

/** A message that is not what the protocol allows (a broken stream, not a refused request). */
export class OpenFlowProtocolError extends Error {
  override name = "OpenFlowProtocolError";
}

export function header(type: number, length: number, xid: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(OFP15_VERSION, 0);
  b.writeUInt8(type, 1);
  b.writeUInt16BE(length, 2);
  b.writeUInt32BE(xid >>> 0, 4);
  return b;
}

function message(type: number, xid: number, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([header(type, 8 + body.length, xid), body]);
}

/** HELLO with a version bitmap that offers OpenFlow 1.5 only. */
export function encodeHello(xid: number): Buffer {
  const element = Buffer.alloc(8);
  element.writeUInt16BE(1, 0); // OFPHET_VERSIONBITMAP
  element.writeUInt16BE(8, 2);
  element.writeUInt32BE(1 << OFP15_VERSION, 4);
  return message(OFPT.HELLO, xid, element);
}

export const encodeBarrier = (xid: number): Buffer => message(OFPT.BARRIER_REQUEST, xid);
export const encodeGetConfig = (xid: number): Buffer => message(OFPT.GET_CONFIG_REQUEST, xid);

export function encodeSetConfig(xid: number, flags: number, missSendLen: number): Buffer {
  const body = Buffer.alloc(4);
  body.writeUInt16BE(flags, 0);
  body.writeUInt16BE(missSendLen, 2);
  return message(OFPT.SET_CONFIG, xid, body);
}

/** The flags and miss_send_len of a GET_CONFIG_REPLY. */
export function decodeConfig(msg: Buffer): { flags: number; missSendLen: number } {
  return { flags: msg.readUInt16BE(8), missSendLen: msg.readUInt16BE(10) };
}

export function encodeEchoReply(request: Buffer): Buffer {
  const reply = Buffer.from(request);
  reply.writeUInt8(OFPT.ECHO_REPLY, 1);
  return reply;
}

export function encodeBundleControl(xid: number, bundleId: number, type: number, flags: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(bundleId >>> 0, 0);
  body.writeUInt16BE(type, 4);
  body.writeUInt16BE(flags, 6);
  return message(OFPT.BUNDLE_CONTROL, xid, body);
}

/** Bytes of a BUNDLE_ADD_MESSAGE before the message it carries. */
export const BUNDLE_ADD_HEADER = 16;

/**
 * Writes the BUNDLE_ADD_MESSAGE header into the first BUNDLE_ADD_HEADER bytes of `message`, whose
 * rest is the message to add (encoded with that much headroom; its xid must equal `xid`: OVS refuses
 * a mismatch). In place: an install wraps ~400,000 messages, and a copy each was garbage to collect.
 */
export function writeBundleAddHeader(message: Buffer, xid: number, bundleId: number, flags: number): Buffer {
  message.writeUInt8(OFP15_VERSION, 0);
  message.writeUInt8(OFPT.BUNDLE_ADD_MESSAGE, 1);
  message.writeUInt16BE(message.length, 2);
  message.writeUInt32BE(xid >>> 0, 4);
  message.writeUInt32BE(bundleId >>> 0, 8);
  message.writeUInt16BE(0, 12); // pad
  message.writeUInt16BE(flags, 14);
  return message;
}

/** Wraps `inner` (whose xid must equal `xid`: OVS refuses a mismatch) into the bundle. */
export function encodeBundleAdd(xid: number, bundleId: number, flags: number, inner: Buffer): Buffer {
  const out = Buffer.allocUnsafe(BUNDLE_ADD_HEADER + inner.length);
  inner.copy(out, BUNDLE_ADD_HEADER);
  return writeBundleAddHeader(out, xid, bundleId, flags);
}

// ---------------------------------------------------------------------------------------------
// Matches

const OXM_BASIC = 0x8000;
const NXM_OF = 0x0000;
const NXM_NX = 0x0001;

type FieldDef = Readonly<{ cls: number; field: number; width: number; rank: number }>;

// rank: emission order, so every field comes after its prerequisites.
const FIELDS = {
  in_port: { cls: OXM_BASIC, field: 0, width: 4, rank: 0 },
  metadata: { cls: OXM_BASIC, field: 2, width: 8, rank: 1 },
  reg: { cls: NXM_NX, field: 0, width: 4, rank: 2 }, // field = register number
  eth_dst: { cls: OXM_BASIC, field: 3, width: 6, rank: 3 },
  eth_src: { cls: OXM_BASIC, field: 4, width: 6, rank: 4 },
  vlan_tci: { cls: NXM_OF, field: 4, width: 2, rank: 5 },
  eth_type: { cls: OXM_BASIC, field: 5, width: 2, rank: 6 },
  ip_proto: { cls: OXM_BASIC, field: 10, width: 1, rank: 7 },
  ip_frag: { cls: NXM_NX, field: 26, width: 1, rank: 8 },
  ipv4_src: { cls: OXM_BASIC, field: 11, width: 4, rank: 9 },
  ipv4_dst: { cls: OXM_BASIC, field: 12, width: 4, rank: 10 },
  ipv6_src: { cls: OXM_BASIC, field: 26, width: 16, rank: 11 },
  ipv6_dst: { cls: OXM_BASIC, field: 27, width: 16, rank: 12 },
  arp_op: { cls: OXM_BASIC, field: 21, width: 2, rank: 13 },
  arp_spa: { cls: OXM_BASIC, field: 22, width: 4, rank: 14 },
  arp_tpa: { cls: OXM_BASIC, field: 23, width: 4, rank: 15 },
  arp_sha: { cls: OXM_BASIC, field: 24, width: 6, rank: 16 },
  arp_tha: { cls: OXM_BASIC, field: 25, width: 6, rank: 17 },
  udp_src: { cls: OXM_BASIC, field: 15, width: 2, rank: 18 },
  udp_dst: { cls: OXM_BASIC, field: 16, width: 2, rank: 19 },
  icmpv6_type: { cls: OXM_BASIC, field: 29, width: 1, rank: 20 },
  nd_target: { cls: OXM_BASIC, field: 31, width: 16, rank: 21 },
  nd_sll: { cls: OXM_BASIC, field: 32, width: 6, rank: 22 },
  nd_tll: { cls: OXM_BASIC, field: 33, width: 6, rank: 23 },
} as const satisfies Record<string, FieldDef>;

type FieldName = keyof typeof FIELDS;
type Entry = { def: FieldDef; value: Buffer; mask?: Buffer };

function uint(value: bigint | number, width: number): Buffer {
  let v = BigInt(value);
  if (v < 0n || v >= 1n << BigInt(width * 8)) throw new UnsupportedFlowError(`${value} does not fit in ${width} bytes`);
  const b = Buffer.alloc(width);
  for (let i = width - 1; i >= 0; i--) {
    b[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return b;
}

function macBytes(text: string): Buffer {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(text)) throw new UnsupportedFlowError(`not a MAC: ${text}`);
  return Buffer.from(text.split(":").map((h) => parseInt(h, 16)));
}

function prefixMask(width: number, length: number): Buffer {
  const b = Buffer.alloc(width);
  for (let i = 0; i < width; i++) b[i] = length >= (i + 1) * 8 ? 0xff : length <= i * 8 ? 0 : (0xff << (8 - (length - i * 8))) & 0xff;
  return b;
}

const allOnes = (b: Buffer): boolean => b.every((x) => x === 0xff);
const allZeros = (b: Buffer): boolean => b.every((x) => x === 0);

/** value[/mask] → bytes; returns undefined when the mask is all zeros (the field is wildcarded). */
function fieldValue(name: FieldName, text: string): { value: Buffer; mask?: Buffer } | undefined {
  const def: FieldDef = FIELDS[name];
  const slash = text.indexOf("/");
  const [v, m] = slash < 0 ? [text, undefined] : [text.slice(0, slash), text.slice(slash + 1)];
  let value: Buffer;
  let mask: Buffer | undefined;
  if (def.width === 6) {
    value = macBytes(v);
    mask = m === undefined ? undefined : macBytes(m);
  } else if (name === "ipv4_src" || name === "ipv4_dst" || name === "arp_spa" || name === "arp_tpa" || name === "ipv6_src" || name === "ipv6_dst" || name === "nd_target") {
    const family = def.width === 4 ? "ipv4" : "ipv6";
    let address: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      address = ipaddr.parse(v);
    } catch {
      throw new UnsupportedFlowError(`not an address: ${v}`);
    }
    if (address.kind() !== family) throw new UnsupportedFlowError(`${name}: ${v} is not ${family}`);
    value = Buffer.from(address.toByteArray());
    if (m !== undefined) {
      if (!/^\d+$/.test(m) || Number(m) > def.width * 8) throw new UnsupportedFlowError(`${name}: mask ${m} is not a prefix length`);
      mask = prefixMask(def.width, Number(m));
    }
  } else {
    if (!/^(0x[0-9a-f]+|\d+)$/i.test(v) || (m !== undefined && !/^(0x[0-9a-f]+|\d+)$/i.test(m))) throw new UnsupportedFlowError(`${name}: not a number: ${text}`);
    value = uint(BigInt(v), def.width);
    mask = m === undefined ? undefined : uint(BigInt(m), def.width);
  }
  if (mask && allZeros(mask)) return undefined;
  if (mask && allOnes(mask)) mask = undefined;
  if (mask) value = Buffer.from(value.map((x, i) => x & mask![i]!));
  return mask ? { value, mask } : { value };
}

const SHORTHANDS: Record<string, ReadonlyArray<[FieldName, string]>> = {
  ip: [["eth_type", "0x0800"]],
  ipv6: [["eth_type", "0x86dd"]],
  arp: [["eth_type", "0x0806"]],
  rarp: [["eth_type", "0x8035"]],
  udp: [["eth_type", "0x0800"], ["ip_proto", "17"]],
  udp6: [["eth_type", "0x86dd"], ["ip_proto", "17"]],
  icmp6: [["eth_type", "0x86dd"], ["ip_proto", "58"]],
};

/** ip_frag keywords (OVS's names) → value/mask of NXM_NX_IP_FRAG (bit 0: fragment, bit 1: later). */
const IP_FRAG: Record<string, string> = { no: "0/1", yes: "1/1", first: "1/3", later: "3/3", not_later: "0/2" };

/**
 * Parsed match items, by their text ("dl_src=52:54:...", "icmp6"). Why: an install of 10,000 ports
 * encodes ~400,000 flows whose items mostly repeat (the same few keywords and constants in every
 * port's flows; one port's MAC and addresses in ~10 of its flows): parsing each item once made the
 * encoder ~5× faster. Bounded: see memoByText.
 */
type ParsedItem = Readonly<{ keys: readonly string[]; entries: readonly Entry[]; needs?: "udp" | "icmp6" }>;

/** `compute` remembered by its text argument; the memory is emptied when it holds 200,000 texts (an agent lives for months). */
function memoByText<T>(compute: (text: string) => T): (text: string) => T {
  const memory = new Map<string, T>();
  return (text) => {
    let value = memory.get(text);
    if (value === undefined) {
      value = compute(text);
      if (memory.size >= 200_000) memory.clear();
      memory.set(text, value);
    }
    return value;
  };
}

function parseItem(item: string): ParsedItem {
  const eq = item.indexOf("=");
  if (eq < 0) {
    const fields = SHORTHANDS[item];
    if (!fields) throw new UnsupportedFlowError(`match keyword ${item}`);
    return { keys: fields.map(([name]) => name), entries: fields.map(([name, value]) => ({ def: FIELDS[name], ...fieldValue(name, value)! })) };
  }
  const key = item.slice(0, eq);
  const value = item.slice(eq + 1);
  const one = (name: FieldName, text: string, def: FieldDef = FIELDS[name], needs?: "udp" | "icmp6"): ParsedItem => {
    const parsed = fieldValue(name, text);
    return { keys: [name === "reg" ? key : name], entries: parsed ? [{ def, ...parsed }] : [], ...(needs && { needs }) };
  };
  const reg = /^reg(\d{1,2})$/.exec(key);
  if (reg && Number(reg[1]) <= 15) return one("reg", value, { ...FIELDS.reg, field: Number(reg[1]) });
  switch (key) {
    case "in_port": return one("in_port", value);
    case "metadata": return one("metadata", value);
    case "dl_src": return one("eth_src", value);
    case "dl_dst": return one("eth_dst", value);
    case "vlan_tci": return one("vlan_tci", value);
    case "dl_type": return one("eth_type", value);
    case "nw_proto": return one("ip_proto", value);
    case "nw_src": return one("ipv4_src", value);
    case "nw_dst": return one("ipv4_dst", value);
    case "ipv6_src": return one("ipv6_src", value);
    case "ipv6_dst": return one("ipv6_dst", value);
    case "arp_op": return one("arp_op", value);
    case "arp_spa": return one("arp_spa", value);
    case "arp_tpa": return one("arp_tpa", value);
    case "arp_sha": return one("arp_sha", value);
    case "arp_tha": return one("arp_tha", value);
    case "nd_target": return one("nd_target", value);
    case "nd_sll": return one("nd_sll", value);
    case "nd_tll": return one("nd_tll", value);
    case "ip_frag": {
      const v = IP_FRAG[value];
      if (!v) throw new UnsupportedFlowError(`ip_frag=${value}`);
      return one("ip_frag", v);
    }
    case "tp_src":
    case "tp_dst":
      return one(key === "tp_src" ? "udp_src" : "udp_dst", value, undefined, "udp");
    case "icmp_type":
      return one("icmpv6_type", value, undefined, "icmp6");
    default:
      throw new UnsupportedFlowError(`match field ${key}`);
  }
}

const cachedItem = memoByText(parseItem);

/** Encodes the `key=value,...` match of a flow line as an OXM ofp_match (padded to 8 bytes). */
export function encodeMatch(text: string): Buffer {
  return encodeMatchItems(text === "" ? [] : text.split(","));
}

function encodeMatchItems(items: readonly string[]): Buffer {
  let udp = false;
  let icmp6 = false;
  for (const item of items) {
    if (item === "udp" || item === "udp6") udp = true;
    else if (item === "icmp6") icmp6 = true;
  }
  // A keyword's fields yield to the same fields given explicitly or by an earlier keyword (icmp6
  // after ipv6); a field given twice explicitly is refused.
  const seen = new Set<string>();
  const entries: Entry[] = [];
  for (const item of items) {
    const parsed = cachedItem(item);
    if (parsed.needs === "udp" && !udp) throw new UnsupportedFlowError(`${item} without udp/udp6`);
    if (parsed.needs === "icmp6" && !icmp6) throw new UnsupportedFlowError(`${item} without icmp6`);
    const shorthand = !item.includes("=");
    for (let i = 0; i < parsed.keys.length; i++) {
      const key = parsed.keys[i]!;
      if (seen.has(key)) {
        if (shorthand) continue;
        throw new UnsupportedFlowError(`field ${key} given twice`);
      }
      seen.add(key);
      const entry = shorthand ? parsed.entries[i] : parsed.entries[0];
      if (entry) entries.push(entry);
    }
  }
  entries.sort((a, b) => a.def.rank - b.def.rank || a.def.field - b.def.field);
  let length = 4;
  for (const e of entries) length += 4 + e.value.length + (e.mask ? e.mask.length : 0);
  const out = Buffer.alloc(Math.ceil(length / 8) * 8);
  out.writeUInt16BE(1, 0); // OFPMT_OXM
  out.writeUInt16BE(length, 2);
  let at = 4;
  for (const { def, value, mask } of entries) {
    out.writeUInt16BE(def.cls, at);
    out.writeUInt8((def.field << 1) | (mask ? 1 : 0), at + 2);
    out.writeUInt8(mask ? def.width * 2 : def.width, at + 3);
    at += 4;
    at += value.copy(out, at);
    if (mask) at += mask.copy(out, at);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Actions and instructions

const NX_VENDOR = 0x00002320;
const OFPP_NORMAL = 0xfffffffa;
const OFPP_IN_PORT_16 = 0xfff8;

function outputAction(port: number): Buffer {
  const a = Buffer.alloc(16);
  a.writeUInt16BE(0, 0); // OFPAT_OUTPUT
  a.writeUInt16BE(16, 2);
  a.writeUInt32BE(port >>> 0, 4);
  a.writeUInt16BE(port === OFPP_NORMAL ? 0 : 0, 8); // max_len: only meaningful towards a controller
  return a;
}

function nxAction(subtype: number, body: Buffer): Buffer {
  const length = Math.ceil((10 + body.length) / 8) * 8;
  const a = Buffer.alloc(length);
  a.writeUInt16BE(0xffff, 0); // OFPAT_EXPERIMENTER
  a.writeUInt16BE(length, 2);
  a.writeUInt32BE(NX_VENDOR, 4);
  a.writeUInt16BE(subtype, 8);
  body.copy(a, 10);
  return a;
}

function noteAction(dotted: string): Buffer {
  if (!/^[0-9a-f]{2}(\.[0-9a-f]{2})*$/i.test(dotted)) throw new UnsupportedFlowError(`note:${dotted}`);
  return nxAction(8, Buffer.from(dotted.split(".").map((h) => parseInt(h, 16))));
}

function resubmitTable(table: number): Buffer {
  const body = Buffer.alloc(6);
  body.writeUInt16BE(OFPP_IN_PORT_16, 0);
  body.writeUInt8(table, 2);
  return nxAction(14, body); // NXAST_RESUBMIT_TABLE
}

function outputReg(register: number): Buffer {
  const body = Buffer.alloc(14);
  body.writeUInt16BE(31, 0); // ofs_nbits: offset 0, 32 bits (nbits - 1)
  body.writeUInt32BE(((NXM_NX << 16) | (register << 9) | 4) >>> 0, 2); // NXM_NX_REGn
  body.writeUInt16BE(0, 6); // max_len
  return nxAction(15, body); // NXAST_OUTPUT_REG
}

function instruction(type: number, body: Buffer): Buffer {
  const i = Buffer.alloc(4 + body.length);
  i.writeUInt16BE(type, 0);
  i.writeUInt16BE(4 + body.length, 2);
  body.copy(i, 4);
  return i;
}

function tableId(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 254) throw new UnsupportedFlowError(`table ${text}`);
  return Number(text);
}

/**
 * Encodes `actions=` text as OpenFlow 1.1+ instructions, in the order OVS writes them. Remembered by
 * text: a port's few distinct action lists repeat across its flows and across ports.
 */
export const encodeInstructions: (text: string) => Buffer = memoByText(encodeInstructionsUncached);

function encodeInstructionsUncached(text: string): Buffer {
  const apply: Buffer[] = [];
  let metadata: Buffer | undefined;
  let goto: Buffer | undefined;
  const actions = text === "drop" || text === "" ? [] : text.split(/,(?![^(]*\))/);
  for (const action of actions) {
    let m: RegExpExecArray | null;
    if (goto) throw new UnsupportedFlowError(`${action} after goto_table`);
    if (action === "NORMAL") apply.push(outputAction(OFPP_NORMAL));
    else if ((m = /^output:(\d+)$/.exec(action))) apply.push(outputAction(Number(m[1])));
    else if ((m = /^output:NXM_NX_REG(\d{1,2})\[\]$/.exec(action)) && Number(m[1]) <= 15) apply.push(outputReg(Number(m[1])));
    else if ((m = /^note:(.*)$/.exec(action))) apply.push(noteAction(m[1]!));
    else if ((m = /^resubmit\(,(\d+)\)$/.exec(action))) apply.push(resubmitTable(tableId(m[1]!)));
    else if ((m = /^write_metadata:(0x[0-9a-f]+|\d+)$/i.exec(action))) {
      const body = Buffer.alloc(20);
      uint(BigInt(m[1]!), 8).copy(body, 4);
      body.fill(0xff, 12);
      metadata = instruction(2, body); // OFPIT_WRITE_METADATA
    } else if ((m = /^goto_table:(\d+)$/.exec(action))) {
      const body = Buffer.alloc(4);
      body.writeUInt8(tableId(m[1]!), 0);
      goto = instruction(1, body); // OFPIT_GOTO_TABLE
    } else throw new UnsupportedFlowError(`action ${action}`);
  }
  const out: Buffer[] = [];
  if (apply.length > 0) out.push(instruction(4, Buffer.concat([Buffer.alloc(4), ...apply]))); // OFPIT_APPLY_ACTIONS (4 bytes of padding first)
  if (metadata) out.push(metadata);
  if (goto) out.push(goto);
  return Buffer.concat(out);
}

// ---------------------------------------------------------------------------------------------
// FLOW_MOD

export const OFPFC = { ADD: 0, DELETE: 3, DELETE_STRICT: 4 } as const;
const OFPP_ANY = 0xffffffff;
const OFPG_ANY = 0xffffffff;
const NO_BUFFER = 0xffffffff;

type FlowModInit = Readonly<{ command: number; table: number; priority: number; cookie: bigint; cookieMask: bigint; match: Buffer; instructions: Buffer }>;

/** A FLOW_MOD after `headroom` bytes the caller fills (a bundle's header: writeBundleAddHeader). */
function flowMod(xid: number, f: FlowModInit, headroom: number): Buffer {
  // One allocation from Node's pool (every byte is written below): headroom, header, the fixed part, the match, the instructions.
  const length = 48 + f.match.length + f.instructions.length;
  const out = Buffer.allocUnsafe(headroom + length);
  const at = headroom;
  out.writeUInt8(OFP15_VERSION, at);
  out.writeUInt8(OFPT.FLOW_MOD, at + 1);
  out.writeUInt16BE(length, at + 2);
  out.writeUInt32BE(xid >>> 0, at + 4);
  out.writeBigUInt64BE(f.cookie, at + 8);
  out.writeBigUInt64BE(f.cookieMask, at + 16);
  out.writeUInt8(f.table, at + 24);
  out.writeUInt8(f.command, at + 25);
  out.writeUInt32BE(0, at + 26); // idle_timeout, hard_timeout
  out.writeUInt16BE(f.priority, at + 30);
  out.writeUInt32BE(NO_BUFFER, at + 32);
  out.writeUInt32BE(OFPP_ANY, at + 36);
  out.writeUInt32BE(OFPG_ANY, at + 40);
  out.writeUInt32BE(0, at + 44); // flags, importance
  f.match.copy(out, at + 48);
  f.instructions.copy(out, at + 48 + f.match.length);
  return out;
}

/** A parsed flow line: `table=T,priority=P,cookie=C,<match> actions=<actions>`. */
export type FlowLine = Readonly<{ table: number; priority: number; cookie: bigint; match: string; actions: string }>;

/** A `cookie=0x…` item's value (undefined: not a cookie vifguard writes); every flow of a port carries the same one. */
const cookieOfItem = memoByText((item: string): bigint | undefined => (/^0x[0-9a-f]{1,16}$/i.test(item.slice(7)) ? BigInt(item.slice(7)) : undefined));

function parseFlowItems(line: string): { table: number; priority: number; cookie: bigint; items: string[]; actions: string } {
  const at = line.indexOf(" actions=");
  if (at < 0) throw new UnsupportedFlowError(`no actions: ${line}`);
  let table: number | undefined;
  let priority: number | undefined;
  let cookie: bigint | undefined;
  const items: string[] = [];
  for (const item of line.slice(0, at).trim().split(",")) {
    if (item === "") continue;
    if (item.startsWith("table=")) table = tableId(item.slice(6));
    else if (item.startsWith("priority=") && /^\d{1,5}$/.test(item.slice(9)) && Number(item.slice(9)) <= 0xffff) priority = Number(item.slice(9));
    else if (item.startsWith("cookie=")) cookie = cookieOfItem(item);
    else items.push(item);
  }
  if (table === undefined || priority === undefined || cookie === undefined) throw new UnsupportedFlowError(`table, priority and cookie are required: ${line}`);
  return { table, priority, cookie, items, actions: line.slice(at + " actions=".length).trim() };
}

export function parseFlowLine(line: string): FlowLine {
  const { items, ...rest } = parseFlowItems(line);
  return { ...rest, match: items.join(",") };
}

/** FLOW_MOD ADD of one flow line as compile.ts writes it, after `headroom` bytes left to the caller. */
export function encodeAddFlow(xid: number, line: string, headroom = 0): Buffer {
  const f = parseFlowItems(line);
  return flowMod(xid, { command: OFPFC.ADD, table: f.table, priority: f.priority, cookie: f.cookie, cookieMask: 0n, match: encodeMatchItems(f.items), instructions: encodeInstructions(f.actions) }, headroom);
}

/**
 * FLOW_MOD DELETE_STRICT of the one flow of this line's table, priority and match (its actions are
 * ignored), and only if it carries the line's cookie: the classifier finds it by exact match, no scan.
 */
export function encodeDeleteStrict(xid: number, line: string, headroom = 0): Buffer {
  const f = parseFlowItems(line);
  return flowMod(xid, { command: OFPFC.DELETE_STRICT, table: f.table, priority: f.priority, cookie: f.cookie, cookieMask: EXACT_COOKIE, match: encodeMatchItems(f.items), instructions: NO_INSTRUCTIONS }, headroom);
}

const EXACT_COOKIE = 0xffffffffffffffffn;
const EMPTY_MATCH = encodeMatchItems([]);
const NO_INSTRUCTIONS = Buffer.alloc(0);

/** OFPTT_ALL: a delete in every table. */
const ALL_TABLES = 0xff;

/** FLOW_MOD DELETE of every flow in `table` (undefined: all tables) whose cookie matches cookie/mask (mask all ones: exact, which OVS looks up by index). */
export function encodeDeleteByCookie(xid: number, table: number | undefined, cookie: bigint, mask: bigint, headroom = 0): Buffer {
  return flowMod(xid, { command: OFPFC.DELETE, table: table ?? ALL_TABLES, priority: 0, cookie, cookieMask: mask, match: EMPTY_MATCH, instructions: NO_INSTRUCTIONS }, headroom);
}

// ---------------------------------------------------------------------------------------------
// Errors

const ERROR_TYPES: Record<number, [string, string, readonly string[]]> = {
  0: ["HELLO_FAILED", "OFPHFC", ["INCOMPATIBLE", "EPERM"]],
  1: ["BAD_REQUEST", "OFPBRC", ["BAD_VERSION", "BAD_TYPE", "BAD_MULTIPART", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "EPERM", "BAD_LEN", "BUFFER_EMPTY", "BUFFER_UNKNOWN", "BAD_TABLE_ID", "IS_SLAVE", "BAD_PORT", "BAD_PACKET", "MULTIPART_BUFFER_OVERFLOW"]],
  2: ["BAD_ACTION", "OFPBAC", ["BAD_TYPE", "BAD_LEN", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_OUT_PORT", "BAD_ARGUMENT", "EPERM", "TOO_MANY", "BAD_QUEUE", "BAD_OUT_GROUP", "MATCH_INCONSISTENT", "UNSUPPORTED_ORDER", "BAD_TAG", "BAD_SET_TYPE", "BAD_SET_LEN", "BAD_SET_ARGUMENT"]],
  3: ["BAD_INSTRUCTION", "OFPBIC", ["UNKNOWN_INST", "UNSUP_INST", "BAD_TABLE_ID", "UNSUP_METADATA", "UNSUP_METADATA_MASK", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_LEN", "EPERM", "DUP_INST"]],
  4: ["BAD_MATCH", "OFPBMC", ["BAD_TYPE", "BAD_LEN", "BAD_TAG", "BAD_DL_ADDR_MASK", "BAD_NW_ADDR_MASK", "BAD_WILDCARDS", "BAD_FIELD", "BAD_VALUE", "BAD_MASK", "BAD_PREREQ", "DUP_FIELD", "EPERM"]],
  5: ["FLOW_MOD_FAILED", "OFPFMFC", ["UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND", "BAD_FLAGS", "CANT_SYNC", "BAD_PRIORITY", "IS_SYNC"]],
  10: ["SWITCH_CONFIG_FAILED", "OFPSCFC", ["BAD_FLAGS", "BAD_LEN", "EPERM"]],
  17: ["BUNDLE_FAILED", "OFPBFC", ["UNKNOWN", "EPERM", "BAD_ID", "BUNDLE_EXIST", "BUNDLE_CLOSED", "OUT_OF_BUNDLES", "BAD_TYPE", "BAD_FLAGS", "MSG_BAD_LEN", "MSG_BAD_XID", "MSG_UNSUP", "MSG_CONFLICT", "MSG_TOO_MANY", "MSG_FAILED", "TIMEOUT", "BUNDLE_IN_PROGRESS", "SCHED_NOT_SUPPORTED", "SCHED_FUTURE", "SCHED_PAST"]],
};

export type DecodedError = Readonly<{ xid: number; type: number; code: number; name: string; data: Buffer }>;

/** An OFPT_ERROR message → its xid, type, code and OVS-style name (OFPBAC_BAD_OUT_PORT, ...). */
export function decodeError(msg: Buffer): DecodedError {
  if (msg.length < 12 || msg.readUInt8(1) !== OFPT.ERROR) throw new OpenFlowProtocolError("not an OFPT_ERROR message");
  const xid = msg.readUInt32BE(4);
  const type = msg.readUInt16BE(8);
  const code = msg.readUInt16BE(10);
  if (type === 0xffff && msg.length >= 16) {
    const experimenter = msg.readUInt32BE(12);
    return { xid, type, code, name: `experimenter 0x${experimenter.toString(16)} error ${code}`, data: msg.subarray(16) };
  }
  const known = ERROR_TYPES[type];
  const name = known ? `${known[1]}_${known[2][code] ?? `code ${code}`} (${known[0]})` : `error type ${type} code ${code}`;
  return { xid, type, code, name, data: msg.subarray(12) };
}

/** Splits a byte stream into whole OpenFlow messages; keeps the remainder for the next chunk. */
export class MessageReader {
  private pending: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: Buffer[] = [];
    while (this.pending.length >= 8) {
      const length = this.pending.readUInt16BE(2);
      if (length < 8) throw new OpenFlowProtocolError(`message length ${length} < 8`);
      if (this.pending.length < length) break;
      out.push(this.pending.subarray(0, length));
      this.pending = this.pending.subarray(length);
    }
    return out;
  }
}
