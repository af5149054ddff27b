// Units and removals → one `ovs-ofctl --bundle add-flows BRIDGE -` input. Pure.
// Each replaced or removed unit is first deleted by its exact cookies in each of vifguard's tables (never
// in anyone else's), then its flows are added; the bundle commits atomically, so a port is never
// seen without its flows, and other ports' flows (other cookies) are not touched at all.
import type { ChangeSet } from "../contract.ts";
import { GUARDS } from "../../policy/guards.ts";
import { allCookieMask, baseFlows, cookieOf, keyHash, TABLE_COUNT, type OvsLayout } from "./compile.ts";

function deleteLines(layout: OvsLayout, cookieMask: string): string[] {
  const lines: string[] = [];
  for (let i = 0; i < TABLE_COUNT; i++) lines.push(`delete table=${layout.tableBase + i},cookie=${cookieMask}`);
  return lines;
}

/**
 * Deletes every flow of one unit: one exact cookie per kind (pass + each guard) in each of vifguard's
 * tables. Exact cookies, not a cookie mask: OVS indexes cookies only for exact lookups, and a masked
 * delete scans every flow of the table (with 10,000 ports, a bundle of 1,000 masked replacements
 * took over a minute).
 */
function unitDeleteLines(layout: OvsLayout, key: string): string[] {
  const hash = keyHash(key);
  const lines: string[] = [];
  for (let i = 0; i < TABLE_COUNT; i++) {
    for (let kind = 0; kind <= GUARDS.length; kind++) lines.push(`delete table=${layout.tableBase + i},cookie=${cookieOf(layout, hash, kind)}/-1`);
  }
  return lines;
}

/** The bundle for a change set; the base flows are (re)added each time, which is idempotent. */
export function renderChanges(changes: ChangeSet, layout: OvsLayout): string {
  const lines: string[] = [];
  for (const key of [...changes.remove].sort()) lines.push(...unitDeleteLines(layout, key));
  for (const unit of changes.add) {
    lines.push(...unitDeleteLines(layout, unit.key));
    for (const line of unit.text.split("\n")) if (line.trim()) lines.push(`add ${line}`);
  }
  for (const line of baseFlows(layout)) lines.push(`add ${line}`);
  return lines.join("\n") + "\n";
}

/** The bundle that takes away every flow vifguard owns under this layout's magic. */
export function renderRemoveAll(layout: OvsLayout): string {
  return deleteLines(layout, allCookieMask(layout)).join("\n") + "\n";
}
