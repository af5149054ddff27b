// Ends migrations whose source never reported the port released within migrationHoldMs of the
// destination applying it (a source whose hook did not run, or a dead source host): without this
// backstop the source would keep the port, and its device name, forever. Effects: a timer, the store.
import type { Store } from "./store/store.ts";

export type HoldSweeperLog = Readonly<{
  info(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}>;

/** Checks every `periodMs` (default: a tenth of the hold, 50 ms to 5 s); nothing runs when the hold is 0 (until released). */
export function startHoldSweeper(store: Store, log: HoldSweeperLog, periodMs?: number): { stop(): Promise<void> } {
  const holdMs = store.migrationHoldMs;
  if (holdMs <= 0) return { stop: () => Promise.resolve() };
  let running: Promise<void> | undefined;
  const sweep = (): void => {
    if (running) return;
    running = store.hosts.expireHolds()
      .then((ports) => {
        if (ports.length > 0) log.info({ ports, holdMs }, `migration hold of ${holdMs} ms ended without the source releasing: ${ports.join(", ")} left the source`);
      })
      .catch((error: unknown) => log.error({ err: error }, `cannot end expired migration holds: ${(error as Error).message}`))
      .finally(() => (running = undefined));
  };
  const timer = setInterval(sweep, periodMs ?? Math.min(5_000, Math.max(50, Math.round(holdMs / 10))));
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
