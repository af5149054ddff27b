// Puts raw frames on a wire and watches what arrives, inside network namespaces, through the lab's
// scripts (send.py, capture.py: AF_PACKET sockets, ready once bound). Effects: processes.
import type { ChildProcess } from "node:child_process";
import { startScript, type Running } from "./scripts.ts";

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

export type Sent = Readonly<{ sent: number; failed: number }>;
export type StreamOptions = Readonly<{
  /** How many frames in all, cycling through `frames` (default each once; 0: until stopped). */
  count?: number;
  /** The schedule's interval (0: as fast as it can). */
  gapMs?: number;
}>;

/** Sends `frames` out of `iface` in `netns`; resolves `ready` once sending, `done` when all went or stop() was called. */
export function stream(netns: string, iface: string, frames: readonly Uint8Array[], options: StreamOptions = {}, children?: Set<ChildProcess>): Running<Sent> {
  return startScript<Sent>("send", netns, { iface, frames: frames.map(hex), count: options.count ?? frames.length, gapMs: options.gapMs ?? 0 }, children);
}

/** Sends each frame once, `gapMs` apart; resolves with how many went, and fails if the kernel refused any. */
export async function sendFrames(netns: string, iface: string, frames: readonly Uint8Array[], gapMs = 1, children?: Set<ChildProcess>): Promise<number> {
  if (frames.length === 0) return 0;
  const { sent, failed } = await stream(netns, iface, frames, { gapMs }, children).done;
  if (failed > 0) throw new Error(`${failed} of ${frames.length} frames could not be sent from ${iface} in ${netns}`);
  return sent;
}

/** What a frame must hold to count: a marker anywhere in it, its beginning, or all of it. */
export type Match = readonly ["contains" | "startswith" | "equals", Uint8Array];
export type CaptureOptions = Readonly<{
  match?: readonly Match[];
  /** Also return every frame. */
  keep?: boolean;
  /** End by itself after this long. */
  timeoutS?: number;
  /** End by itself once a frame of this match (its index) arrived: a control frame sent last. */
  until?: number;
  /** Count what the host sends out of the interface instead of what arrives: on a tap, what reaches the VM behind it. */
  outgoing?: boolean;
}>;
/** Frames per match (in the order given), and with `keep` every frame (hex). */
export type Captured = Readonly<{ counts: number[]; frames?: string[] }>;

/**
 * Watches what arrives at `iface` in `netns` (null: every interface there, also ones made later),
 * never what it sends; `ready` resolves once nothing arriving can be missed.
 */
export function capture(netns: string, iface: string | null, options: CaptureOptions = {}, children?: Set<ChildProcess>): Running<Captured> {
  const match = (options.match ?? []).map(([kind, bytes]) => [kind, hex(bytes)]);
  return startScript<Captured>("capture", netns, { iface, match, keep: options.keep ?? false, timeoutS: options.timeoutS ?? null, until: options.until ?? null, outgoing: options.outgoing ?? false }, children);
}

/** Counts frames carrying each marker at `iface`; stop() resolves with the count per marker (hex). */
export function countMarkers(netns: string, iface: string | null, markers: readonly Uint8Array[], children?: Set<ChildProcess>, timeoutS?: number): Running<Record<string, number>> {
  const running = capture(netns, iface, { match: markers.map((m) => ["contains", m] as const), ...(timeoutS !== undefined && { timeoutS }) }, children);
  const byMarker = (c: Captured): Record<string, number> => Object.fromEntries(markers.map((m, i) => [hex(m), c.counts[i]!]));
  const done = running.done.then(byMarker);
  done.catch(() => undefined);
  return { ready: running.ready, done, stop: () => running.stop().then(byMarker) };
}
