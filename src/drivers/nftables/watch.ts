// The nftables driver's change feed: follows `nft monitor` in the driver's network namespace and
// reports every event that names vifguard's table (a deleted or flushed table, a rule, chain or set
// element changed by hand), and `ip monitor link` there: a tap that appears, goes or changes its MAC
// may be a port's device found by MAC (src/agent/device-match.ts). Effects (through host/follow.ts).
import type { DriverWatch } from "../contract.ts";
import { followChanges } from "../../host/follow.ts";

export type NftWatchOptions = Readonly<{ netns?: string; table: string; restartMs?: number }>;

/** Does an `nft monitor` line concern the table named `table`? */
export function concernsTable(line: string, table: string): boolean {
  return new RegExp(`(^|\\s)${table.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")}(\\s|$)`).test(line);
}

/** Follows nft monitor and ip monitor link until close(); restarts either if it exits (and reports a change, as events may have been missed). */
export function watchNftables(options: NftWatchOptions, onChange: () => void): DriverWatch {
  const where = { ...(options.netns && { netns: options.netns }), ...(options.restartMs !== undefined && { restartMs: options.restartMs }) };
  const rules = followChanges("nft", ["monitor"], where, (line) => concernsTable(line, options.table), onChange);
  const links = followChanges("ip", ["-o", "monitor", "link"], where, () => true, onChange);
  return { close: () => (rules.close(), links.close()) };
}
