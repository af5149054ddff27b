// readPcap() and writePcap(): classic pcap in both byte orders, micro- and nanosecond magic;
// pcapng and truncated files refused with a CaptureError; a scapy-written capture decided by evaluate().
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { CaptureError } from "../../src/errors.ts";
import { evaluate } from "../../src/policy/evaluate.ts";
import * as f from "../../src/policy/frame-builder.ts";
import { readPcap, writePcap } from "../../src/policy/pcap.ts";
import type { PortPolicy } from "../../src/policy/port-policy.ts";
import { ALICE_MAC, BOB_MAC, EVE_MAC, aliceFull, eveFull } from "./evaluate-fixture.ts";

const exec = promisify(execFile);
const SCAPY_PYTHON = "/usr/bin/python3";

const FRAMES = [
  f.ether(BOB_MAC, EVE_MAC, 0x0800, f.icmp4Echo("10.0.0.2", "10.0.0.3")),
  f.ether("ff:ff:ff:ff:ff:ff", ALICE_MAC, 0x0806, f.arp({ op: 2, sha: ALICE_MAC, spa: "10.0.0.100", tpa: "10.0.0.100" })),
  new Uint8Array(0),
  f.ether(BOB_MAC, EVE_MAC, 0x86dd, f.icmp6Echo("fe80::5054:ff:fe00:2", "fe80::5054:ff:fe00:3")),
];

type PcapRecord = { seconds: number; fraction: number; bytes: Uint8Array; original?: number };

/** A classic pcap file built by hand: magic in the given byte order, then the records. */
function pcapFile(o: { littleEndian: boolean; nanos: boolean; linkType?: number; records: PcapRecord[] }): Uint8Array {
  const size = 24 + o.records.reduce((n, r) => n + 16 + r.bytes.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  const le = o.littleEndian;
  view.setUint32(0, o.nanos ? 0xa1b23c4d : 0xa1b2c3d4, le);
  view.setUint16(4, 2, le);
  view.setUint16(6, 4, le);
  view.setUint32(16, 262144, le);
  view.setUint32(20, o.linkType ?? 1, le);
  let offset = 24;
  for (const r of o.records) {
    view.setUint32(offset, r.seconds, le);
    view.setUint32(offset + 4, r.fraction, le);
    view.setUint32(offset + 8, r.bytes.length, le);
    view.setUint32(offset + 12, r.original ?? r.bytes.length, le);
    out.set(r.bytes, offset + 16);
    offset += 16 + r.bytes.length;
  }
  return out;
}

function refuses(bytes: Uint8Array, message: RegExp): void {
  assert.throws(
    () => readPcap(bytes),
    (error: unknown) => {
      assert.ok(error instanceof CaptureError, `expected a CaptureError, got ${String(error)}`);
      assert.equal(error.code, "VG_CAPTURE_INVALID");
      assert.match(error.message, message);
      return true;
    },
  );
}

test("writePcap() output reads back with readPcap(): link type Ethernet, packets numbered from 1", () => {
  const capture = readPcap(writePcap(FRAMES));
  assert.equal(capture.linkType, 1);
  assert.deepEqual(
    capture.packets.map((p) => p.index),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    capture.packets.map((p) => p.timestampUs),
    [0, 1, 2, 3],
  );
  capture.packets.forEach((p, i) => assert.deepEqual(p.bytes, FRAMES[i]));
  assert.deepEqual(readPcap(writePcap([])).packets, []);
});

test("readPcap() reads both byte orders with microsecond timestamps", () => {
  const records = [
    { seconds: 1_700_000_000, fraction: 123_456, bytes: FRAMES[0]! },
    { seconds: 1_700_000_001, fraction: 999_999, bytes: FRAMES[1]! },
  ];
  for (const littleEndian of [true, false]) {
    const capture = readPcap(pcapFile({ littleEndian, nanos: false, records }));
    assert.equal(capture.linkType, 1);
    assert.deepEqual(
      capture.packets.map((p) => [p.index, p.timestampUs, p.bytes.length]),
      [
        [1, 1_700_000_000_123_456, FRAMES[0]!.length],
        [2, 1_700_000_001_999_999, FRAMES[1]!.length],
      ],
      littleEndian ? "little-endian" : "big-endian",
    );
    assert.deepEqual(capture.packets[1]!.bytes, FRAMES[1]);
  }
});

test("readPcap() reads both byte orders with nanosecond timestamps, rounded down to microseconds", () => {
  const records = [{ seconds: 10, fraction: 123_456_789, bytes: FRAMES[0]! }];
  for (const littleEndian of [true, false]) {
    const capture = readPcap(pcapFile({ littleEndian, nanos: true, records }));
    assert.equal(capture.packets[0]!.timestampUs, 10_123_456, littleEndian ? "little-endian" : "big-endian");
    assert.deepEqual(capture.packets[0]!.bytes, FRAMES[0]);
  }
});

test("readPcap() reports the link type without the FCS bits, and reads a file inside a larger buffer", () => {
  const file = pcapFile({ littleEndian: true, nanos: false, linkType: 0x1000_0000 | 1, records: [{ seconds: 0, fraction: 5, bytes: FRAMES[3]! }] });
  assert.equal(readPcap(file).linkType, 1);
  const sll = pcapFile({ littleEndian: false, nanos: false, linkType: 113, records: [] });
  assert.equal(readPcap(sll).linkType, 113);
  const buffer = new Uint8Array(file.length + 7);
  buffer.set(file, 3);
  const capture = readPcap(buffer.subarray(3, 3 + file.length));
  assert.deepEqual(capture.packets[0]!.bytes, FRAMES[3]);
});

test("readPcap() keeps only the captured bytes of a packet cut by the snap length", () => {
  const capture = readPcap(pcapFile({ littleEndian: true, nanos: false, records: [{ seconds: 0, fraction: 0, bytes: FRAMES[0]!.subarray(0, 20), original: FRAMES[0]!.length }] }));
  assert.equal(capture.packets[0]!.bytes.length, 20);
});

test("readPcap() refuses pcapng and says how to convert it", () => {
  const pcapng = Uint8Array.from([0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1c, 0, 0, 0]);
  refuses(pcapng, /pcapng.*(editcap|tshark|tcpdump)/);
});

test("readPcap() refuses a file that is not a pcap", () => {
  refuses(new TextEncoder().encode("this is not a capture file at all, sorry"), /not a pcap file: magic/);
  refuses(new Uint8Array(0), /not a pcap file: 0 bytes/);
  refuses(writePcap([]).subarray(0, 23), /shorter than the 24-byte pcap header/);
});

test("readPcap() refuses a truncated file, naming the packet", () => {
  const file = writePcap(FRAMES.slice(0, 2));
  refuses(file.subarray(0, 24 + 16 + FRAMES[0]!.length + 10), /truncated pcap file: packet 2 header/);
  refuses(file.subarray(0, file.length - 1), /truncated pcap file: packet 2 needs \d+ bytes, \d+ left/);
  refuses(file.subarray(0, 24 + 16 + 5), /truncated pcap file: packet 1 needs/);
});

// Frames as scapy builds them, written in four pcap flavours; readPcap() then evaluate() must agree
// with docs/semantics.md.
const SCAPY = String.raw`
import sys
from scapy.all import Ether, IP, UDP, ARP, BOOTP, Dot1Q, IPv6, IPv6ExtHdrHopByHop, RouterAlert, ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RA, ICMPv6NDOptSrcLLAddr, ICMPv6NDOptDstLLAddr, ICMPv6NDOptMTU, ICMPv6MLReport2, wrpcap
alice, eve, bob = "52:54:00:00:00:01", "52:54:00:00:00:02", "52:54:00:00:00:03"
frames = [
  Ether(src=eve, dst=bob)/IP(src="10.0.0.2", dst="10.0.0.3")/UDP(sport=40000, dport=53),
  Ether(src=eve, dst=bob)/IP(src="10.0.0.1", dst="10.0.0.3")/UDP(sport=40000, dport=53),
  Ether(src=eve, dst="ff:ff:ff:ff:ff:ff")/ARP(op=2, hwsrc=eve, psrc="10.0.0.1", hwdst="ff:ff:ff:ff:ff:ff", pdst="10.0.0.1"),
  Ether(src=alice, dst="ff:ff:ff:ff:ff:ff")/ARP(op=2, hwsrc=alice, psrc="10.0.0.100", hwdst="ff:ff:ff:ff:ff:ff", pdst="10.0.0.100"),
  Ether(src=alice, dst="ff:ff:ff:ff:ff:ff")/IP(src="0.0.0.0", dst="255.255.255.255")/UDP(sport=68, dport=67)/BOOTP(op=1, chaddr=bytes.fromhex("525400000001")),
  Ether(src=eve, dst="ff:ff:ff:ff:ff:ff")/IP(src="10.0.0.2", dst="255.255.255.255")/UDP(sport=67, dport=68)/BOOTP(op=2),
  Ether(src=alice, dst="33:33:ff:00:00:01")/IPv6(src="::", dst="ff02::1:ff00:1")/ICMPv6ND_NS(tgt="2001:db8::1"),
  Ether(src=alice, dst="33:33:00:00:00:16")/IPv6(src="::", dst="ff02::16", hlim=1)/IPv6ExtHdrHopByHop(options=[RouterAlert()])/ICMPv6MLReport2(),
  Ether(src=eve, dst="33:33:00:00:00:01")/IPv6(src="fe80::5054:ff:fe00:2", dst="ff02::1")/ICMPv6ND_NA(tgt="2001:db8::2", O=1)/ICMPv6NDOptMTU()/ICMPv6NDOptDstLLAddr(lladdr=alice),
  Ether(src=eve, dst="33:33:00:00:00:01")/IPv6(src="fe80::5054:ff:fe00:2", dst="ff02::1")/ICMPv6ND_RA()/ICMPv6NDOptSrcLLAddr(lladdr=eve),
  Ether(src=eve, dst=bob)/Dot1Q(vlan=5)/IP(src="10.0.0.2", dst="10.0.0.3"),
  Ether(src=alice, dst=bob)/IP(src="10.0.0.1", dst="10.0.0.3", flags="MF")/UDP(sport=40000, dport=53),
]
out = sys.argv[1]
wrpcap(out + "/le-us.pcap", frames)
wrpcap(out + "/be-us.pcap", frames, endianness=">")
wrpcap(out + "/le-ns.pcap", frames, nano=True)
wrpcap(out + "/be-ns.pcap", frames, endianness=">", nano=True)
`;

const SCAPY_EXPECTED: [PortPolicy, string, string][] = [
  [eveFull, "allow", "allowed"],
  [eveFull, "drop", "ipv4-spoof"],
  [eveFull, "drop", "arp-spoof"],
  [aliceFull, "allow", "allowed"],
  [aliceFull, "allow", "allowed"],
  [eveFull, "drop", "dhcp-server-guard"],
  [aliceFull, "allow", "allowed"],
  [aliceFull, "allow", "allowed"],
  [eveFull, "drop", "nd-spoof"],
  [eveFull, "drop", "ra-guard"],
  [eveFull, "drop", "vlan"],
  [aliceFull, "allow", "allowed"],
];

test("readPcap() reads scapy-written captures (both byte orders, µs and ns) and evaluate() decides each frame", async (t) => {
  const hasScapy = existsSync(SCAPY_PYTHON) && (await exec(SCAPY_PYTHON, ["-c", "import scapy.all"]).then(() => true, () => false));
  if (!hasScapy) {
    if (process.env.CI === "true") assert.fail(`python3-scapy is required in CI (${SCAPY_PYTHON} -c "import scapy.all" failed)`);
    t.skip(`python3-scapy is not installed (${SCAPY_PYTHON} -c "import scapy.all" failed)`);
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), "vg-pcap-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "write.py"), SCAPY);
  await exec(SCAPY_PYTHON, [join(dir, "write.py"), dir]);
  const contents: string[] = [];
  for (const name of ["le-us", "be-us", "le-ns", "be-ns"]) {
    const capture = readPcap(new Uint8Array(await readFile(join(dir, `${name}.pcap`))));
    assert.equal(capture.linkType, 1, name);
    assert.equal(capture.packets.length, SCAPY_EXPECTED.length, name);
    const got = capture.packets.map((p, i) => {
      const [policy] = SCAPY_EXPECTED[i]!;
      const d = evaluate(policy, p.bytes, "from-vm");
      return `${p.index} ${d.verdict} ${d.reason}`;
    });
    assert.deepEqual(
      got,
      SCAPY_EXPECTED.map(([, verdict, reason], i) => `${i + 1} ${verdict} ${reason}`),
      name,
    );
    contents.push(JSON.stringify(capture.packets.map((p) => [...p.bytes])));
  }
  assert.equal(new Set(contents).size, 1, "the four flavours hold the same frames");
});
