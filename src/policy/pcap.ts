// Reads and writes classic libpcap capture files (both byte orders, micro- and nanosecond). Pure.
import { CaptureError } from "../errors.ts";

export type CapturedPacket = Readonly<{ index: number; timestampUs: number; bytes: Uint8Array }>;
export type Capture = Readonly<{ linkType: number; packets: readonly CapturedPacket[] }>;

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const PCAPNG = 0x0a0d0d0a;

/** Parses a classic pcap file; pcapng and truncated files are refused with a CaptureError. */
export function readPcap(bytes: Uint8Array): Capture {
  if (bytes.length < 24) throw new CaptureError(`not a pcap file: ${bytes.length} bytes, shorter than the 24-byte pcap header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const big = view.getUint32(0, false);
  const little = view.getUint32(0, true);
  if (big === PCAPNG) throw new CaptureError("this is a pcapng file; write classic pcap (tcpdump -w, or tshark -F pcap) or convert it with editcap -F pcap");
  let le: boolean;
  let nanos: boolean;
  if (little === MAGIC_US || little === MAGIC_NS) [le, nanos] = [true, little === MAGIC_NS];
  else if (big === MAGIC_US || big === MAGIC_NS) [le, nanos] = [false, big === MAGIC_NS];
  else throw new CaptureError(`not a pcap file: magic 0x${big.toString(16).padStart(8, "0")}`);
  const linkType = view.getUint32(20, le) & 0x0fffffff;
  const packets: CapturedPacket[] = [];
  let offset = 24;
  while (offset < bytes.length) {
    if (offset + 16 > bytes.length) throw new CaptureError(`truncated pcap file: packet ${packets.length + 1} header cut at byte ${offset}`);
    const seconds = view.getUint32(offset, le);
    const fraction = view.getUint32(offset + 4, le);
    const captured = view.getUint32(offset + 8, le);
    if (offset + 16 + captured > bytes.length) throw new CaptureError(`truncated pcap file: packet ${packets.length + 1} needs ${captured} bytes, ${bytes.length - offset - 16} left`);
    packets.push({
      index: packets.length + 1,
      timestampUs: seconds * 1_000_000 + (nanos ? Math.floor(fraction / 1000) : fraction),
      bytes: bytes.slice(offset + 16, offset + 16 + captured),
    });
    offset += 16 + captured;
  }
  return { linkType, packets };
}

/** Writes Ethernet frames as a little-endian microsecond pcap, timestamps one microsecond apart. */
export function writePcap(frames: readonly Uint8Array[]): Uint8Array {
  const size = 24 + frames.reduce((n, f) => n + 16 + f.length, 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC_US, true);
  view.setUint16(4, 2, true);
  view.setUint16(6, 4, true);
  view.setUint32(16, 65535, true);
  view.setUint32(20, 1, true);
  let offset = 24;
  frames.forEach((frame, i) => {
    view.setUint32(offset, 0, true);
    view.setUint32(offset + 4, i, true);
    view.setUint32(offset + 8, frame.length, true);
    view.setUint32(offset + 12, frame.length, true);
    out.set(frame, offset + 16);
    offset += 16 + frame.length;
  });
  return out;
}
