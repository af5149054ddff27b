// The native OpenFlow 1.5 encoder (src/drivers/ovs/openflow.ts) against ovs-ofctl itself: every flow
// line of every golden case, at pass=normal and pass=table, plus the base flows and the deletes,
// encoded by us and decoded by `ovs-ofctl ofp-parse`, must read exactly as `ovs-ofctl parse-flows`
// prints the same line. Needs the ovs-ofctl binary only (no daemon, no root).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { baseFlows, compileOvs, magicFor, type OvsLayout } from "../../../src/drivers/ovs/compile.ts";
import {
  BUNDLE,
  BUNDLE_ATOMIC_ORDERED,
  decodeError,
  encodeAddFlow,
  encodeBundleAdd,
  BUNDLE_ADD_HEADER,
  writeBundleAddHeader,
  encodeBundleControl,
  encodeDeleteByCookie,
  encodeDeleteStrict,
  encodeHello,
  encodeMatch,
  MessageReader,
  UnsupportedFlowError,
} from "../../../src/drivers/ovs/openflow.ts";
import { changeOps } from "../../../src/drivers/ovs/render.ts";
import { parsePortFile } from "../../../src/model/port-file.ts";
import { portPolicies, type PlacedPolicy } from "../../../src/policy/port-policy.ts";
import { placeAsNamed } from "../../../src/agent/device-match.ts";

const CASES = new URL("../../golden/cases/", import.meta.url);
const NORMAL: OvsLayout = { tableBase: 0, pass: "normal", magic: magicFor("vifguard"), portRegister: 7 };
const TABLE: OvsLayout = { tableBase: 20, pass: { table: 30 }, magic: magicFor("vifguard"), portRegister: 7 };

function allLines(): string[] {
  const lines = new Set<string>();
  for (const file of readdirSync(CASES).filter((f) => f.endsWith(".yaml")).sort()) {
    const policies: PlacedPolicy[] = placeAsNamed(portPolicies(parsePortFile(readFileSync(new URL(file, CASES), "utf8"), file)));
    const devices = policies.map((p, i) => ({ name: p.device, ofport: i + 1 }));
    for (const layout of [NORMAL, TABLE]) {
      for (const unit of compileOvs(policies, devices, layout).values()) for (const l of unit.text.split("\n")) if (l.trim()) lines.add(l.trim());
      for (const l of baseFlows(layout)) lines.add(l);
    }
  }
  return [...lines];
}

test("every flow compile() writes encodes to the bytes ovs-ofctl reads back as the same flow", () => {
  const lines = allLines();
  assert.ok(lines.length > 300, `only ${lines.length} distinct lines`);
  const dir = mkdtempSync(join(tmpdir(), "vg-openflow-"));
  try {
    writeFileSync(join(dir, "flows.txt"), lines.join("\n") + "\n");
    writeFileSync(join(dir, "msgs.bin"), Buffer.concat(lines.map((l, i) => encodeAddFlow(i + 1, l))));
    const theirs = execFileSync("ovs-ofctl", ["-O", "OpenFlow15", "parse-flows", join(dir, "flows.txt")], { encoding: "utf8", maxBuffer: 64 << 20 })
      .split("\n")
      .filter((l) => l.startsWith("OFPT_FLOW_MOD"))
      .map((l) => l.replace(/\(xid=0x[0-9a-f]+\)/, ""));
    const ours = execFileSync("ovs-ofctl", ["ofp-parse", join(dir, "msgs.bin")], { encoding: "utf8", maxBuffer: 64 << 20 })
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => l.replace(/\(xid=0x[0-9a-f]+\)/, ""));
    assert.equal(ours.length, lines.length, `ofp-parse decoded ${ours.length} of ${lines.length} messages:\n${ours.filter((l) => !l.startsWith("OFPT_FLOW_MOD")).slice(0, 3).join("\n")}`);
    for (let i = 0; i < lines.length; i++) assert.equal(ours[i], theirs[i], `flow ${lines[i]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("deletes by exact and masked cookie decode as ovs-ofctl's delete of the same cookie", () => {
  const dir = mkdtempSync(join(tmpdir(), "vg-openflow-"));
  try {
    const ops = changeOps({ add: [], remove: ["alice-0"] }, NORMAL).filter((o) => o.op === "delete");
    const first = ops[0]!;
    assert.equal(first.op, "delete");
    if (first.op !== "delete") return;
    writeFileSync(join(dir, "m.bin"), Buffer.concat([encodeDeleteByCookie(1, first.table, first.cookie, first.mask), encodeDeleteByCookie(2, 3, 0xef00000000000000n, 0xff00000000000000n)]));
    const text = execFileSync("ovs-ofctl", ["ofp-parse", join(dir, "m.bin")], { encoding: "utf8" });
    assert.equal(first.table, undefined);
    assert.match(text, new RegExp(`DEL table:255 priority=0 cookie:0x${first.cookie.toString(16)}/0xffffffffffffffff actions=drop`)); // OFPTT_ALL, as ovs-ofctl's delete without table=
    assert.match(text, /DEL table:3 priority=0 cookie:0xef00000000000000\/0xff00000000000000 actions=drop/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a strict delete decodes as ovs-ofctl's delete_strict of the same flow and cookie", () => {
  const dir = mkdtempSync(join(tmpdir(), "vg-openflow-"));
  try {
    const line = allLines().find((l) => l.includes("nd_target=") && l.includes("in_port="))!;
    writeFileSync(join(dir, "m.bin"), encodeDeleteStrict(3, line));
    const ours = execFileSync("ovs-ofctl", ["ofp-parse", join(dir, "m.bin")], { encoding: "utf8" }).trim();
    const cookie = /cookie=(0x[0-9a-f]+)/.exec(line)![1]!;
    const priority = /priority=(\d+)/.exec(line)![1]!;
    assert.match(ours, new RegExp(`DEL_STRICT table:${/table=(\d+)/.exec(line)![1]} priority=${priority},`));
    assert.match(ours, new RegExp(`cookie:${cookie}/0xffffffffffffffff`));
    // The match reads as ovs-ofctl reads the line's own match.
    const theirs = execFileSync("ovs-ofctl", ["-O", "OpenFlow15", "parse-flow", line], { encoding: "utf8" });
    const match = (text: string): string => /priority=\d+,([^ ]+)/.exec(text)![1]!;
    assert.equal(match(ours), match(theirs));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a message encoded with headroom and wrapped in place writes every byte: equal to the copied wrapping, whatever allocUnsafe hands out", () => {
  const line = "table=3,priority=7200,cookie=0xef5c263ca8a0da00,in_port=1,dl_src=52:54:00:30:00:01,icmp6,icmp_type=136,nd_target=fd00:3::1,nd_tll=00:00:00:00:00:00 actions=goto_table:4";
  const encode = (junk: number): Buffer[] => {
    const original = Buffer.allocUnsafe;
    Buffer.allocUnsafe = (size: number) => Buffer.alloc(size, junk); // what a reused pool may hold
    try {
      return [
        writeBundleAddHeader(encodeAddFlow(9, line, BUNDLE_ADD_HEADER), 9, 3, BUNDLE_ATOMIC_ORDERED),
        writeBundleAddHeader(encodeDeleteByCookie(10, undefined, 0xef5c263ca8a0da00n, 0xffffffffffffffffn, BUNDLE_ADD_HEADER), 10, 3, BUNDLE_ATOMIC_ORDERED),
        encodeBundleAdd(9, 3, BUNDLE_ATOMIC_ORDERED, encodeAddFlow(9, line)),
      ];
    } finally {
      Buffer.allocUnsafe = original;
    }
  };
  const [a, d, copied] = encode(0x00);
  assert.deepEqual(encode(0xa5), [a, d, copied], "a byte left unwritten would show the junk");
  assert.deepEqual(a, copied);
  const fm = a!.subarray(BUNDLE_ADD_HEADER);
  assert.deepEqual([...a!.subarray(12, 14), ...fm.subarray(26, 30), ...fm.subarray(44, 48)], new Array(10).fill(0), "the bundle pad, timeouts, flags and importance are zero");
});

test("bundle control and add messages decode as ovs-ofctl prints them", () => {
  const dir = mkdtempSync(join(tmpdir(), "vg-openflow-"));
  try {
    const inner = encodeAddFlow(5, "table=1,priority=1,cookie=0x1,in_port=2 actions=drop");
    writeFileSync(join(dir, "m.bin"), Buffer.concat([encodeHello(1), encodeBundleControl(4, 7, BUNDLE.OPEN_REQUEST, BUNDLE_ATOMIC_ORDERED), encodeBundleAdd(5, 7, BUNDLE_ATOMIC_ORDERED, inner), encodeBundleControl(6, 7, BUNDLE.COMMIT_REQUEST, BUNDLE_ATOMIC_ORDERED)]));
    const text = execFileSync("ovs-ofctl", ["ofp-parse", join(dir, "m.bin")], { encoding: "utf8" });
    assert.match(text, /OFPT_HELLO \(OF1\.5\).*\n version bitmap: 0x06/);
    assert.match(text, /OFPT_BUNDLE_CONTROL \(OF1\.5\) \(xid=0x4\):\n bundle_id=0x7 type=OPEN_REQUEST flags=atomic ordered/);
    assert.match(text, /OFPT_BUNDLE_ADD_MESSAGE \(OF1\.5\) \(xid=0x5\):\n bundle_id=0x7 flags=atomic ordered\nOFPT_FLOW_MOD \(OF1\.5\) \(xid=0x5\): ADD table:1 priority=1,in_port=2 cookie:0x1 actions=drop/);
    assert.match(text, /type=COMMIT_REQUEST/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a flow outside the encoder's vocabulary is refused before anything is sent (the driver falls back to ovs-ofctl)", () => {
  assert.throws(() => encodeAddFlow(1, "table=0,priority=1,cookie=0x1,tcp,tp_dst=80 actions=drop"), UnsupportedFlowError);
  assert.throws(() => encodeAddFlow(1, "table=0,priority=1,cookie=0x1,in_port=1 actions=mod_vlan_vid:3"), UnsupportedFlowError);
  assert.throws(() => encodeAddFlow(1, "table=0,priority=1,in_port=1 actions=drop"), UnsupportedFlowError); // no cookie: not ours
  assert.throws(() => encodeMatch("udp,icmp_type=3"), UnsupportedFlowError);
});

test("a /0 mask wildcards the field; an all-ones mask is an exact match", () => {
  assert.deepEqual(encodeMatch("arp,arp_spa=0.0.0.0/0"), encodeMatch("arp"));
  assert.deepEqual(encodeMatch("ip,nw_src=10.0.0.1/32"), encodeMatch("ip,nw_src=10.0.0.1"));
  assert.notDeepEqual(encodeMatch("arp,arp_spa=0.0.0.0"), encodeMatch("arp")); // the ARP probe's exact 0.0.0.0
});

test("decodeError() names OVS's errors and the request's xid", () => {
  const msg = Buffer.from("0601001000000009000200040000000000", "hex").subarray(0, 16);
  msg.writeUInt16BE(16, 2);
  const e = decodeError(msg);
  assert.equal(e.xid, 9);
  assert.match(e.name, /OFPBAC_BAD_OUT_PORT/);
});

test("MessageReader splits a stream at message boundaries, across chunks", () => {
  const a = encodeHello(1);
  const b = encodeDeleteByCookie(2, 0, 1n, 0xffffffffffffffffn);
  const stream = Buffer.concat([a, b]);
  const reader = new MessageReader();
  const got = [...reader.push(stream.subarray(0, 5)), ...reader.push(stream.subarray(5, 20)), ...reader.push(stream.subarray(20))];
  assert.deepEqual(got, [a, b]);
});
