// Shared by the evaluator's table-driven tests: the cast (Alice, Eve, Bob), their policies at
// every level, frame shorthands and the row runner. Expectations come from docs/semantics.md.
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { parsePortFile } from "../../src/model/port-file.ts";
import type { Level } from "../../src/model/types.ts";
import { evaluate, type Direction } from "../../src/policy/evaluate.ts";
import * as f from "../../src/policy/frame-builder.ts";
import { portPolicies, type PortPolicy } from "../../src/policy/port-policy.ts";

export const ALICE_MAC = "52:54:00:00:00:01";
export const EVE_MAC = "52:54:00:00:00:02";
export const BOB_MAC = "52:54:00:00:00:03";
/** The MAC of Alice's second allowed pair (a VIP that moves with its own MAC). */
export const VIP_MAC = "52:54:00:aa:00:01";
export const BCAST = "ff:ff:ff:ff:ff:ff";
export const ALL_NODES_MAC = "33:33:00:00:00:01";
export const ALL_ROUTERS_MAC = "33:33:00:00:00:02";

/** EUI-64 link-local addresses (RFC 4291 App. A) of the MACs above. */
export const ALICE_LL = "fe80::5054:ff:fe00:1";
export const EVE_LL = "fe80::5054:ff:fe00:2";
export const BOB_LL = "fe80::5054:ff:fe00:3";
export const VIP_LL = "fe80::5054:ff:feaa:1";

/**
 * Alice: 10.0.0.1 and 2001:db8::1 on her MAC; allowed pairs 10.0.0.96/28 and 2001:db8:0:ff::/64
 * (her MAC), 10.0.0.200 and 2001:db8::200 (VIP_MAC). Eve: 10.0.0.2 and 2001:db8::2. Bob: 10.0.0.3.
 * One network whose level is `level` (shared only at full, as the port file demands).
 */
function portFile(level: Level, antiSpoofing = true): string {
  return JSON.stringify({
    config: { antiSpoofing },
    networks: [{ id: "lan", tenant: "provider", shared: level === "full", protection: level }],
    ports: [
      {
        id: "alice-0",
        tenant: "alice",
        network: "lan",
        device: "vnet0",
        mac: ALICE_MAC,
        ips: ["10.0.0.1", "2001:db8::1"],
        allowed: [{ ip: "10.0.0.96/28" }, { ip: "2001:db8:0:ff::/64" }, { ip: "10.0.0.200", mac: VIP_MAC }, { ip: "2001:db8::200", mac: VIP_MAC }],
      },
      { id: "eve-0", tenant: "eve", network: "lan", device: "vnet1", mac: EVE_MAC, ips: ["10.0.0.2", "2001:db8::2"] },
      { id: "bob-0", tenant: "bob", network: "lan", device: "vnet2", mac: BOB_MAC, ips: ["10.0.0.3", "2001:db8::3"] },
    ],
  });
}

function policiesAt(level: Level, antiSpoofing = true): { alice: PortPolicy; eve: PortPolicy } {
  const [alice, eve] = portPolicies(parsePortFile(portFile(level, antiSpoofing), `${level}.json`));
  return { alice: alice!, eve: eve! };
}

const full = policiesAt("full");
const mac = policiesAt("mac");
const off = policiesAt("off");
const globalOff = policiesAt("full", false);
export const aliceFull = full.alice;
export const eveFull = full.eve;
export const aliceMac = mac.alice;
export const eveMac = mac.eve;
export const aliceOff = off.alice;
export const eveOff = off.eve;
/** Level full on a shared network, but `antiSpoofing: false`. */
export const aliceGlobalOff = globalOff.alice;
export const eveGlobalOff = globalOff.eve;

export type Row = Readonly<{
  name: string;
  frame: Uint8Array;
  direction: Direction;
  policy: PortPolicy;
  verdict: "allow" | "drop";
  reason: string;
  /** False when trailing bytes would change what the frame is (a truncated header without a length field). */
  paddable?: boolean;
  /** A disagreement with the evaluator, reported and not yet resolved: the row keeps the spec's answer. */
  todo?: string;
}>;

/** Runs each row as a subtest asserting verdict and reason. */
export async function checkRows(t: TestContext, rows: readonly Row[]): Promise<void> {
  for (const row of rows) {
    await t.test(row.name, row.todo ? { todo: row.todo } : {}, () => {
      const got = evaluate(row.policy, row.frame, row.direction);
      assert.deepEqual([got.verdict, got.reason], [row.verdict, row.reason], got.detail);
    });
  }
}

/** Ethernet padding up to 60 bytes plus a 4-byte trailer (an FCS left on by a capture). */
export function padded(frame: Uint8Array): Uint8Array {
  const body = frame.length >= 60 ? frame : f.withTrailer(frame, new Uint8Array(60 - frame.length));
  return f.withTrailer(body, Uint8Array.from([0xde, 0xad, 0xbe, 0xef]));
}

/** The same rows with padding and a trailer: the verdict and reason must not change. */
export async function checkPadded(t: TestContext, rows: readonly Row[]): Promise<void> {
  for (const row of rows) {
    if (row.paddable === false) continue;
    await t.test(`${row.name} (padded)`, row.todo ? { todo: row.todo } : {}, () => {
      const got = evaluate(row.policy, padded(row.frame), row.direction);
      assert.deepEqual([got.verdict, got.reason], [row.verdict, row.reason], got.detail);
    });
  }
}

// ---- frame shorthands ----

export const e4 = (src: string, dst: string, packet: Uint8Array): Uint8Array => f.ether(dst, src, 0x0800, packet);
export const e6 = (src: string, dst: string, packet: Uint8Array): Uint8Array => f.ether(dst, src, 0x86dd, packet);
export const earp = (src: string, dst: string, packet: Uint8Array): Uint8Array => f.ether(dst, src, 0x0806, packet);

/** Alice's (or anyone's) plain ICMP echo to Bob. */
export const ping4 = (srcMac: string, srcIp: string): Uint8Array => e4(srcMac, BOB_MAC, f.icmp4Echo(srcIp, "10.0.0.3"));
export const ping6 = (srcMac: string, srcIp: string, extensions?: readonly f.Extension[]): Uint8Array =>
  e6(srcMac, BOB_MAC, f.icmp6Echo(srcIp, "2001:db8::3", extensions ? { extensions } : {}));

/**
 * Cuts an IPv6 frame so its payload ends `payloadLength` bytes after the fixed header, with the
 * payload length field saying so: what a first fragment that stops early looks like on the wire.
 */
export function cutIpv6(frame: Uint8Array, payloadLength: number, l2 = 14): Uint8Array {
  const out = frame.slice(0, l2 + 40 + payloadLength);
  out[l2 + 4] = (payloadLength >> 8) & 0xff;
  out[l2 + 5] = payloadLength & 0xff;
  return out;
}

/** An IPv4 packet whose IP header carries `options` (a multiple of 4 bytes), checksum fixed. */
export function withIpv4Options(packet: Uint8Array, options: Uint8Array): Uint8Array {
  const out = new Uint8Array(packet.length + options.length);
  out.set(packet.subarray(0, 20));
  out.set(options, 20);
  out.set(packet.subarray(20), 20 + options.length);
  out[0] = 0x40 | ((20 + options.length) / 4);
  const total = packet.length + options.length;
  out[2] = total >> 8;
  out[3] = total & 0xff;
  out[10] = 0;
  out[11] = 0;
  const sum = f.checksum(out.subarray(0, 20 + options.length));
  out[10] = sum >> 8;
  out[11] = sum & 0xff;
  return out;
}

/** A UDP datagram in IPv4 built as a first or non-first fragment of a larger one. */
export function udp4Fragment(src: string, dst: string, sport: number, dport: number, fragmentOffset: number, moreFragments: boolean): Uint8Array {
  const whole = f.udp4(src, dst, sport, dport, new Uint8Array(32));
  const udp = whole.subarray(20);
  const payload = fragmentOffset === 0 ? udp.subarray(0, 16) : udp.subarray(16);
  return f.ipv4({ src, dst, protocol: 17, payload, fragmentOffset, moreFragments, id: 0x4242 });
}
