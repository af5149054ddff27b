// The kit on the wire: every case's frame carries a marker (MARK + its 5-digit number), and a capture
// at each guest reports which cases arrived there. The sending and capturing are the lab's
// (lab/wire.ts); what the kit adds is the case numbering and a control frame per receiver: a frame
// that must arrive after the cases, so "case N did not arrive" is never just "the capture had
// stopped" or "it had not arrived yet". Effects: processes.
import type { ChildProcess } from "node:child_process";
import * as f from "../policy/frame-builder.ts";
import { capture, sendFrames, type Match } from "./lab/wire.ts";

export { sendFrames };

/** A legitimate broadcast from a guest: an ARP request for an address nobody holds, from its own MAC and IPv4. */
export function controlFrame(sender: Readonly<{ mac: string; ipv4: string }>, mark: string): Uint8Array {
  const request = f.arp({ op: 1, sha: sender.mac, spa: sender.ipv4, tpa: sender.ipv4.replace(/\.\d+$/, ".253") });
  return marked(f.ether("ff:ff:ff:ff:ff:ff", sender.mac, 0x0806, request), mark, 0);
}

export type CaseCapture = Readonly<{ ready: Promise<void>; stop(): Promise<Set<number>> }>;

/**
 * Watches `iface` in `netns` for the markers of cases 1..`cases`, or for one of `whole` (case number →
 * the frame without its marker, for a copy that lost it: br_netfilter trims bridged IP packets to
 * their IP length; give only frames no other case shares). It ends once the control frame (case 0)
 * arrived, or after `timeoutS`; without the control frame stop() fails rather than report absences.
 */
export function captureCases(netns: string, iface: string, mark: string, cases: number, children: Set<ChildProcess>, whole: ReadonlyMap<number, Uint8Array> = new Map(), timeoutS = 30): CaseCapture {
  const numbers = Array.from({ length: cases + 1 }, (_, n) => n);
  const wholeCases = [...whole.keys()];
  const match: Match[] = [
    ...numbers.map((n) => ["contains", caseMarker(mark, n)] as const),
    ...wholeCases.map((n) => ["equals", whole.get(n)!] as const),
  ];
  const running = capture(netns, iface, { match, timeoutS, until: 0 }, children);
  return {
    ready: running.ready,
    stop: async () => {
      const { counts } = await running.done;
      if (counts[0] === 0) throw new Error(`the control frame never reached ${iface} in ${netns} within ${timeoutS} s: no case's absence there can be told`);
      const seen = new Set(numbers.filter((n) => n > 0 && counts[n]! > 0));
      wholeCases.forEach((n, i) => counts[numbers.length + i]! > 0 && seen.add(n));
      return seen;
    },
  };
}

function caseMarker(mark: string, n: number): Uint8Array {
  return new TextEncoder().encode(`${mark}${String(n).padStart(5, "0")}`);
}

/** Appends the marker of case `n` to a frame (after the headers' declared lengths: parsers ignore it). */
export function marked(frame: Uint8Array, mark: string, n: number): Uint8Array {
  const tail = caseMarker(mark, n);
  const out = new Uint8Array(frame.length + tail.length);
  out.set(frame);
  out.set(tail, frame.length);
  return out;
}
