// The NFLOG pcap stream as nflog-read.py (and tcpdump -w -) writes it: records cut at any chunk boundary, TLVs decoded.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseNflogRecord, PcapStream } from "../../src/host/nflog.ts";

function tlv(type: number, value: Uint8Array): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16LE(4 + value.length, 0);
  head.writeUInt16LE(type, 2);
  const pad = Buffer.alloc((4 - (value.length % 4)) % 4);
  return Buffer.concat([head, value, pad]);
}

test("PcapStream and parseNflogRecord() give the prefix, the bridge port and the whole frame", () => {
  const hw = Buffer.from("ffffffffffff5254000000020806", "hex");
  const payload = Buffer.from("0001080006040001525400000002", "hex");
  const ifindex = Buffer.alloc(4);
  ifindex.writeUInt32BE(7, 0);
  const record = Buffer.concat([Buffer.from([7, 0, 0x56, 0x47]), tlv(10, Buffer.from("vg:arp-spoof \0")), tlv(4, Buffer.from([0, 0, 0, 2])), tlv(6, ifindex), tlv(16, hw), tlv(9, payload)]);
  const global = Buffer.alloc(24);
  global.writeUInt32LE(0xa1b2c3d4, 0);
  global.writeUInt32LE(239, 20);
  const header = Buffer.alloc(16);
  header.writeUInt32LE(1_700_000_000, 0);
  header.writeUInt32LE(250_000, 4);
  header.writeUInt32LE(record.length, 8);
  header.writeUInt32LE(record.length, 12);
  const bytes = Buffer.concat([global, header, record]);
  const stream = new PcapStream();
  const got = [...stream.push(bytes.subarray(0, 30)), ...stream.push(bytes.subarray(30, 50)), ...stream.push(bytes.subarray(50))];
  assert.equal(stream.linkType, 239);
  assert.equal(got.length, 1);
  const packet = parseNflogRecord(got[0]!.data, got[0]!.timeMs)!;
  assert.deepEqual([packet.prefix, packet.inIfindex, packet.timeMs], ["vg:arp-spoof ", 7, 1_700_000_000_250]);
  assert.equal(Buffer.from(packet.frame).toString("hex"), hw.toString("hex") + payload.toString("hex"));
});
