// Drift detection for the nftables driver when it has no change feed of its own: follows `nft monitor`
// in the driver's network namespace and reports every event that names vifguard's table (a deleted
// or flushed table, a rule, chain or set element changed by hand). Effects (through host/follow.ts).
import type { DriverWatch } from "../drivers/contract.ts";
import { follow, type Followed } from "../host/follow.ts";

export type NftWatchOptions = Readonly<{ netns?: string; prefix: string; restartMs?: number }>;

/** Does an `nft monitor` line concern the table named `prefix`? */
export function concernsTable(line: string, prefix: string): boolean {
  return new RegExp(`(^|\\s)${prefix.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")}(\\s|$)`).test(line);
}

/** Follows nft monitor until close(); restarts it if it exits (and reports a change, as events may have been missed). */
export function watchNftables(options: NftWatchOptions, onChange: () => void): Promise<DriverWatch> {
  let current: Followed | undefined;
  let closed = false;
  const start = (): void => {
    current = follow("nft", ["monitor"], { ...(options.netns && { netns: options.netns }) }, (line) => {
      if (concernsTable(line, options.prefix)) onChange();
    });
    void current.exited.then(() => {
      if (closed) return;
      onChange();
      setTimeout(() => !closed && start(), options.restartMs ?? 1_000);
    });
  };
  start();
  return Promise.resolve({
    close: () => {
      closed = true;
      current?.close();
    },
  });
}
