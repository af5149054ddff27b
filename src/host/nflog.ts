// Frames the dataplane logged to an NFLOG group (nftables `log group N`), read through nflog-read.py
// (beside this file), which writes the pcap stream `tcpdump -i nflog:N -w -` would: effects (a
// long-lived python3, `ip -o link` for device names). Not tcpdump: Debian's drops to user tcpdump, which
// fails under vifguard-agent.service (noroot securebits, CAP_NET_ADMIN only); the reader needs only that.
// parseNflogRecord() and PcapStream are pure: the pcap stream and the NFLOG TLVs of each record.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { followBytes } from "./follow.ts";
import { run } from "./run.ts";

/** One logged frame: the log prefix, the bridge port it came in on, and the frame (Ethernet header + payload). */
export type NflogPacket = Readonly<{
  prefix: string;
  /** ifindex of the bridge port (NFULA_IFINDEX_PHYSINDEV), else of the input device. */
  inIfindex: number | undefined;
  /** The device name of inIfindex, when known. */
  inDevice?: string;
  /** The Ethernet header (NFULA_HWHEADER) followed by the payload: a whole frame when both are there. */
  frame: Uint8Array;
  timeMs: number;
}>;

const LINKTYPE_NFLOG = 239;
// NFULA_* attribute types (linux/netfilter/nfnetlink_log.h).
const NFULA_IFINDEX_INDEV = 4;
const NFULA_IFINDEX_PHYSINDEV = 6;
const NFULA_PAYLOAD = 9;
const NFULA_PREFIX = 10;
const NFULA_HWHEADER = 16;

/**
 * Decodes one DLT_NFLOG record: a 4-byte header (family, version, resource id) and TLVs whose length
 * and type are in the capturing host's byte order (little-endian here), each padded to 4 bytes; the
 * values themselves are network order. Pure.
 */
export function parseNflogRecord(data: Uint8Array, timeMs: number): NflogPacket | undefined {
  if (data.length < 4) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let prefix = "";
  let indev: number | undefined;
  let physindev: number | undefined;
  let hw: Uint8Array = new Uint8Array();
  let payload: Uint8Array = new Uint8Array();
  for (let at = 4; at + 4 <= data.length; ) {
    const length = view.getUint16(at, true);
    const type = view.getUint16(at + 2, true) & 0x7fff;
    if (length < 4 || at + length > data.length) break;
    const value = data.subarray(at + 4, at + length);
    if (type === NFULA_PREFIX) prefix = new TextDecoder().decode(value).replace(/\0.*$/s, "");
    else if (type === NFULA_IFINDEX_INDEV && value.length >= 4) indev = view.getUint32(at + 4, false);
    else if (type === NFULA_IFINDEX_PHYSINDEV && value.length >= 4) physindev = view.getUint32(at + 4, false);
    else if (type === NFULA_HWHEADER) hw = value;
    else if (type === NFULA_PAYLOAD) payload = value;
    at += (length + 3) & ~3;
  }
  const frame = new Uint8Array(hw.length + payload.length);
  frame.set(hw, 0);
  frame.set(payload, hw.length);
  return { prefix, inIfindex: physindev ?? indev, frame, timeMs };
}

/** Cuts a pcap byte stream (as `tcpdump -w -` and nflog-read.py write it) into records. Pure (state: the unread bytes). */
export class PcapStream {
  private buffer: Buffer = Buffer.alloc(0);
  private littleEndian: boolean | undefined;
  linkType: number | undefined;

  /** Feeds bytes; returns the whole records they complete, with their capture time (ms). */
  push(chunk: Uint8Array): { data: Uint8Array; timeMs: number }[] {
    this.buffer = this.buffer.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.buffer, chunk]);
    const records: { data: Uint8Array; timeMs: number }[] = [];
    let at = 0;
    if (this.littleEndian === undefined) {
      if (this.buffer.length < 24) return records;
      const magic = this.buffer.readUInt32LE(0);
      this.littleEndian = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
      this.linkType = this.littleEndian ? this.buffer.readUInt32LE(20) : this.buffer.readUInt32BE(20);
      at = 24;
    }
    const u32 = (o: number): number => (this.littleEndian ? this.buffer.readUInt32LE(o) : this.buffer.readUInt32BE(o));
    while (at + 16 <= this.buffer.length) {
      const captured = u32(at + 8);
      if (at + 16 + captured > this.buffer.length) break;
      records.push({ data: this.buffer.subarray(at + 16, at + 16 + captured), timeMs: u32(at) * 1000 + Math.floor(u32(at + 4) / 1000) });
      at += 16 + captured;
    }
    this.buffer = this.buffer.subarray(at);
    return records;
  }
}

export type NflogReader = Readonly<{
  close(): void;
  exited: Promise<number>;
  /** Resolves once the group is bound (the reader wrote the pcap header), or when the reader exits first. */
  ready: Promise<void>;
}>;

/** The reader script: shipped beside this file (`npm run build` copies it into dist/host/). */
export const NFLOG_READER = join(dirname(fileURLToPath(import.meta.url)), "nflog-read.py");
/** The interpreter the reader runs with (the .deb recommends python3). */
export const PYTHON = "/usr/bin/python3";

/** ifindex → device name in `netns` (or this namespace). */
async function linkNames(netns: string | undefined): Promise<Map<number, string>> {
  const out = await run("ip", ["-o", "link", "show"], { ...(netns && { netns }), allowFailure: true });
  const names = new Map<number, string>();
  for (const m of out.stdout.matchAll(/^(\d+):\s+([^:@\s]+)/gm)) names.set(Number(m[1]), m[2]!);
  return names;
}

/**
 * Follows NFLOG group `group` (in `netns`) and calls `onPacket` for each logged frame, with the name
 * of its bridge port. Frames are cut to `snapLength` bytes (headers are all we decode).
 */
export function readNflog(options: Readonly<{ group: number; netns?: string; snapLength?: number }>, onPacket: (packet: NflogPacket) => void): NflogReader {
  const stream = new PcapStream();
  let names = new Map<number, string>();
  let refreshed = 0;
  let refreshing: Promise<void> | undefined;
  const nameOf = async (ifindex: number | undefined): Promise<string | undefined> => {
    if (ifindex === undefined) return undefined;
    // A device we do not know yet: read the names again, at most once a second.
    if (!names.has(ifindex) && Date.now() - refreshed > 1000) {
      refreshing ??= linkNames(options.netns).then((n) => {
        names = n;
        refreshed = Date.now();
        refreshing = undefined;
      });
      await refreshing;
    }
    return names.get(ifindex);
  };
  let bound: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (bound = resolve));
  const args = [NFLOG_READER, String(options.group), String(options.snapLength ?? 256)];
  const followed = followBytes(PYTHON, args, { ...(options.netns && { netns: options.netns }) }, (chunk) => {
    const records = stream.push(chunk);
    if (stream.linkType !== undefined) bound();
    for (const record of records) {
      if (stream.linkType !== LINKTYPE_NFLOG) continue;
      const packet = parseNflogRecord(record.data, record.timeMs);
      if (!packet) continue;
      void nameOf(packet.inIfindex).then((inDevice) => onPacket(inDevice === undefined ? packet : { ...packet, inDevice }), () => onPacket(packet));
    }
  });
  void followed.exited.then(() => bound());
  return { ...followed, ready };
}
