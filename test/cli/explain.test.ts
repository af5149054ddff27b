import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const exec = promisify(execFile);
const VIFGUARD = new URL("../../bin/vifguard", import.meta.url).pathname;
const SCAPY_PYTHON = "/usr/bin/python3";

// Frames Eve (52:54:00:00:00:02, 10.0.0.2) might send, written by scapy, as a real capture would be.
const SCAPY = String.raw`
import sys
from scapy.all import Ether, IP, UDP, ARP, IPv6, ICMPv6ND_NA, ICMPv6NDOptDstLLAddr, ICMPv6ND_RA, Dot1Q, BOOTP, wrpcap
eve, alice = "52:54:00:00:00:02", "52:54:00:00:00:01"
frames = [
  Ether(src=eve, dst="52:54:00:00:00:03")/IP(src="10.0.0.2", dst="10.0.0.3")/UDP(sport=1234, dport=53),
  Ether(src=eve, dst="52:54:00:00:00:03")/IP(src="10.0.0.1", dst="10.0.0.3")/UDP(sport=1234, dport=53),
  Ether(src=eve, dst="ff:ff:ff:ff:ff:ff")/ARP(op=2, hwsrc=eve, psrc="10.0.0.1", pdst="10.0.0.1"),
  Ether(src=alice, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=alice, psrc="10.0.0.1", pdst="10.0.0.3"),
  Ether(src=eve, dst="33:33:00:00:00:01")/IPv6(src="fe80::5054:ff:fe00:2", dst="ff02::1")/ICMPv6ND_NA(tgt="2001:db8::1")/ICMPv6NDOptDstLLAddr(lladdr=eve),
  Ether(src=eve, dst="33:33:00:00:00:01")/IPv6(src="fe80::5054:ff:fe00:2", dst="ff02::1")/ICMPv6ND_RA(),
  Ether(src=eve, dst="ff:ff:ff:ff:ff:ff")/IP(src="10.0.0.2", dst="255.255.255.255")/UDP(sport=67, dport=68)/BOOTP(op=2),
  Ether(src=eve, dst="52:54:00:00:00:03")/Dot1Q(vlan=5)/IP(src="10.0.0.2", dst="10.0.0.3"),
]
wrpcap(sys.argv[1], frames)
`;

const EXPECTED: [string, string][] = [
  ["ALLOW", "allowed"],
  ["DROP", "ipv4-spoof"],
  ["DROP", "arp-spoof"],
  ["DROP", "mac-spoof"],
  ["DROP", "nd-spoof"],
  ["DROP", "ra-guard"],
  ["DROP", "dhcp-server-guard"],
  ["DROP", "vlan"],
];

test("vifguard explain gives the expected verdict and reason for every frame of a scapy capture", async (t) => {
  if (!existsSync(SCAPY_PYTHON) || (await exec(SCAPY_PYTHON, ["-c", "import scapy"]).then(() => false, () => true))) {
    if (process.env.CI === "true") assert.fail("python3-scapy is required in CI");
    t.skip("python3-scapy is not installed");
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), "vg-explain-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pcap = join(dir, "eve.pcap");
  await writeFile(join(dir, "write.py"), SCAPY);
  await exec(SCAPY_PYTHON, [join(dir, "write.py"), pcap]);

  const { stdout } = await exec(VIFGUARD, ["explain", "-f", "examples/ports.yaml", "--port", "eve-0", "--pcap", pcap]);
  const lines = stdout.trim().split("\n");
  const frames = lines.slice(0, -1);
  assert.equal(frames.length, EXPECTED.length, stdout);
  frames.forEach((line, i) => {
    const [verdict, reason] = EXPECTED[i]!;
    assert.match(line, new RegExp(`^\\s*${i + 1}\\s.* ${verdict} ${reason}\\s`), `frame ${i + 1}`);
  });
  assert.match(lines.at(-1)!, /8 frames: 1 allowed, 7 dropped \(port eve-0, level full, from-vm\)/);
});

test("vifguard explain --direction to-vm drops unicast for other MACs (anti-sniffing)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "vg-explain-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { writePcap } = await import("../../src/policy/pcap.ts");
  const f = await import("../../src/policy/frame-builder.ts");
  const toBob = f.ether("52:54:00:00:00:03", "52:54:00:00:00:01", 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.3"));
  const toEve = f.ether("52:54:00:00:00:02", "52:54:00:00:00:01", 0x0800, f.icmp4Echo("10.0.0.1", "10.0.0.2"));
  const broadcast = f.ether("ff:ff:ff:ff:ff:ff", "52:54:00:00:00:01", 0x0806, f.arp({ sha: "52:54:00:00:00:01", spa: "10.0.0.1", tpa: "10.0.0.2" }));
  await writeFile(join(dir, "in.pcap"), writePcap([toBob, toEve, broadcast]));
  const { stdout } = await exec(VIFGUARD, ["explain", "-f", "examples/ports.yaml", "--port", "eve-0", "--pcap", join(dir, "in.pcap"), "--direction", "to-vm"]);
  assert.match(stdout, /^\s*1 .* DROP not-for-this-port/m);
  assert.match(stdout, /^\s*2 .* ALLOW allowed/m);
  assert.match(stdout, /^\s*3 .* ALLOW allowed/m);
});

test("vifguard explain names what is wrong with its input", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "vg-explain-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "ng.pcap"), Uint8Array.from([0x0a, 0x0d, 0x0d, 0x0a, ...new Array(40).fill(0)]));
  const cases: [string[], RegExp][] = [
    [["--port", "nobody", "--pcap", join(dir, "ng.pcap")], /--port: got "nobody", expected one of the ports in examples\/ports\.yaml: alice-0, eve-0/],
    [["--port", "eve-0", "--pcap", join(dir, "ng.pcap")], /pcapng/],
    [["--port", "eve-0", "--pcap", join(dir, "missing.pcap")], /Cannot read .*missing\.pcap/],
    [["--port", "eve-0", "--pcap", join(dir, "ng.pcap"), "--direction", "sideways"], /--direction: got "sideways", expected one of from-vm, to-vm/],
  ];
  for (const [args, message] of cases) {
    const result = await exec(VIFGUARD, ["explain", "-f", "examples/ports.yaml", ...args]).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.notEqual(result.code, 0, args.join(" "));
    assert.match(result.stderr, message);
  }
});
