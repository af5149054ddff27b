// Units and removals → the steps of one bundle (sent as OpenFlow by ofconn.ts, or as
// `ovs-ofctl --bundle add-flows BRIDGE -` input). Pure.
// Each replaced or removed unit is first deleted by its exact cookie (in every table: the cookie's
// magic byte and key hash are vifguard's alone), then its flows are added; the bundle commits
// atomically, so a port is never seen without its flows, and other ports' flows (other cookies) are
// not touched at all.
import type { ChangeSet } from "../contract.ts";
import { GUARDS } from "../../policy/guards.ts";
import { allCookieMask, baseFlows, cookieOf, keyHash, TABLE_COUNT, type OvsLayout } from "./compile.ts";

/** One step of a bundle: delete by cookie/mask in one table (undefined: every table), or add one flow line. */
export type BundleOp = Readonly<{ op: "delete"; table: number | undefined; cookie: bigint; mask: bigint }> | Readonly<{ op: "add"; line: string }>;

const EXACT = 0xffffffffffffffffn;

function deleteAll(layout: OvsLayout): BundleOp[] {
  const [cookie, mask] = allCookieMask(layout).split("/").map((x) => BigInt(x)) as [bigint, bigint];
  return Array.from({ length: TABLE_COUNT }, (_, i) => ({ op: "delete" as const, table: layout.tableBase + i, cookie, mask }));
}

/**
 * Deletes every flow of one unit, in all tables: its one exact cookie; for a unit an older vifguard
 * wrote (`legacy`), which gave each kind its own cookie, one exact cookie per kind (pass + each guard).
 * Exact cookies, not a cookie mask: OVS indexes cookies only for exact lookups (one index for all
 * tables), and a masked delete scans every flow of the table (with 10,000 ports, a bundle of 1,000
 * masked replacements took over a minute). All tables at once: a unit is also found in tables an
 * older layout (another tableBase) put it in.
 */
function unitDeletes(layout: OvsLayout, key: string, legacy: boolean): BundleOp[] {
  const hash = keyHash(key);
  const kinds = legacy ? GUARDS.length + 1 : 1;
  return Array.from({ length: kinds }, (_, kind) => ({ op: "delete" as const, table: undefined, cookie: BigInt(cookieOf(layout, hash, kind)), mask: EXACT }));
}

export type ChangeOpsOptions = Readonly<{
  /** Add the base flows (default true). They are idempotent; the driver leaves them out once it knows they are there. */
  base?: boolean;
  /** Units an older vifguard wrote (a cookie per kind): they and the older base flows are deleted kind by kind. */
  legacy?: ReadonlySet<string>;
}>;

/** The bundle for a change set. */
export function changeOps(changes: ChangeSet, layout: OvsLayout, options: ChangeOpsOptions = {}): BundleOp[] {
  const legacy = options.legacy ?? new Set<string>();
  const ops: BundleOp[] = [];
  for (const key of [...changes.remove].sort()) ops.push(...unitDeletes(layout, key, legacy.has(key)));
  for (const unit of changes.add) {
    ops.push(...unitDeletes(layout, unit.key, legacy.has(unit.key)));
    for (const line of unit.text.split("\n")) if (line.trim()) ops.push({ op: "add", line: line.trim() });
  }
  // Older base flows had other priorities: adding the new ones would not replace them.
  if (legacy.size > 0) ops.push({ op: "delete", table: undefined, cookie: BigInt(cookieOf(layout, "000000000000")), mask: EXACT });
  if ((options.base ?? true) || legacy.size > 0) for (const line of baseFlows(layout)) ops.push({ op: "add", line });
  return ops;
}

/** The bundle that takes away every flow vifguard owns under this layout's magic. */
export function removeAllOps(layout: OvsLayout): BundleOp[] {
  return deleteAll(layout);
}

/** Bundle ops → `ovs-ofctl --bundle add-flows BRIDGE -` input (the fallback path). */
export function renderOps(ops: readonly BundleOp[]): string {
  const hex = (n: bigint): string => `0x${n.toString(16)}`;
  const text = ops.map((o) => (o.op === "add" ? `add ${o.line}` : `delete ${o.table === undefined ? "" : `table=${o.table},`}cookie=${hex(o.cookie)}/${o.mask === EXACT ? "-1" : hex(o.mask)}`));
  return text.join("\n") + "\n";
}

export const renderChanges = (changes: ChangeSet, layout: OvsLayout): string => renderOps(changeOps(changes, layout));
export const renderRemoveAll = (layout: OvsLayout): string => renderOps(removeAllOps(layout));
