// The migration act's figures: what one migration measured (MigrationFigures) and where Bob's lost
// pings fell relative to the switch-over (placeLosses, pure). The lab (lab.ts) fills them; the story
// (story.ts) and the dataplane tests read them.

export type Host = "hv1" | "hv2";


/** Ping interval of Bob's stream, and how long the VM keeps running on the source after the destination is ready (the memory copy). */
export const PING_INTERVAL_MS = 10;
export const COPY_MS = 1_000;
/** A lost ping counts as "at the switch-over" if sent from this long before its start to this long after the new interface was up. */
export const SWITCH_SLACK_MS = 2 * PING_INTERVAL_MS;

export type MigrationFigures = Readonly<{
  from: Host;
  to: Host;
  /** Spoofed frames from Eve seen at Alice (any interface), Bob and on the wire between the hypervisors. */
  spoofedThrough: number;
  spoofedSent: number;
  /** Bob → Alice pings (every 10 ms) lost, over the whole window (spoof stream start to end). */
  pingLossPercent: number;
  pingSent: number;
  pingLost: number;
  /** Lost pings by when they were sent: before the switch-over, at it (±2 intervals), after it. */
  pingLostBefore: number;
  pingLostAt: number;
  pingLostAfter: number;
  /** When each lost ping was sent, in ms after the switch-over began (negative: before). */
  lostOffsetsMs: number[];
  /** The longest time between two answered pings, and when it began (ms after the switch-over began). */
  longestPingGapMs: number;
  pingGapStartMs: number;
  /** From the PATCH to the switch-over (old interface deleted, new one up), and how long that took. */
  switchOverMs: number;
  switchDurationMs: number;
  /** From the PATCH of Alice's host to the controller showing her port ready on the destination. */
  readyMs: number;
  /** From the PATCH to the first sample of the destination's dataplane holding Alice's port. */
  destinationInstalledMs: number;
  /** From the PATCH to the first sample of the source's dataplane no longer holding it. */
  sourceCleanMs: number;
  /** From the PATCH to the controller ending the migration (the source reported the port released). */
  migrationEndedMs: number;
  /** How long `vifguard port migrate-in` (the destination's hook) and `migrate-out` (the source's) took, process start included. */
  migrateInMs: number;
  migrateOutMs: number;
  /** Samples of both dataplanes during the migration in which neither held Alice's port (must be 0). */
  gapSamples: number;
  /** Samples before the switch-over in which the source did not hold Alice's port (must be 0: the VM still ran there). */
  sourceGoneEarlySamples: number;
  samples: number;
  /** Replies to 3 IPv4 and 3 IPv6 pings from Bob to Alice after the migration. */
  repliesAfter: number;
  repliesAfter6: number;
  /** Frames Eve's port dropped, as the agent of her hypervisor reported them to the controller. */
  eveDropsReported: number;
}>;

/** Where the pings were lost, relative to the switch-over. Pure. */
export function placeLosses(sent: readonly number[], answered: ReadonlySet<number>, switchStart: number, switchEnd: number, slackMs: number): {
  lost: number; before: number; at: number; after: number; offsets: number[]; longestGapMs: number; gapStartMs: number;
} {
  const offsets: number[] = [];
  let [before, at, after] = [0, 0, 0];
  let lastAnswered: number | undefined;
  let [longestGapMs, gapStart] = [0, 0];
  sent.forEach((t, seq) => {
    if (answered.has(seq)) {
      if (lastAnswered !== undefined && t - lastAnswered > longestGapMs) [longestGapMs, gapStart] = [t - lastAnswered, lastAnswered];
      lastAnswered = t;
      return;
    }
    offsets.push(Math.round(t - switchStart));
    if (t < switchStart - slackMs) before++;
    else if (t > switchEnd + slackMs) after++;
    else at++;
  });
  return { lost: offsets.length, before, at, after, offsets, longestGapMs, gapStartMs: gapStart - switchStart };
}
