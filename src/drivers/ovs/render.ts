// Units and removals → the steps of one bundle (sent as OpenFlow by ofconn.ts, or as
// `ovs-ofctl --bundle add-flows BRIDGE -` input). Pure.
// Each replaced or removed unit is first deleted by its exact cookie (in every table: the cookie's
// magic byte and key hash are vifguard's alone), then its flows are added; the bundle commits
// atomically, so a port is never seen without its flows, and other ports' flows (other cookies) are
// not touched at all.
import type { ChangeSet } from "../contract.ts";
import { GUARDS } from "../../policy/guards.ts";
import { allCookieMask, baseFlows, cookieOf, keyHash, TABLE_COUNT, type OvsLayout } from "./compile.ts";
import { encodeAddFlow, encodeDeleteByCookie, encodeDeleteStrict } from "./openflow.ts";

/**
 * One step of a bundle: delete by cookie/mask in one table (undefined: every table); delete the one
 * flow of a line's table, priority, match and cookie (its actions ignored); or add one flow line.
 */
export type BundleOp =
  | Readonly<{ op: "delete"; table: number | undefined; cookie: bigint; mask: bigint }>
  | Readonly<{ op: "delete-strict"; line: string }>
  | Readonly<{ op: "add"; line: string }>;

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

/** A flow's identity in OpenFlow: everything before its actions (table, priority, cookie, match). */
const identity = (line: string): string => line.slice(0, line.indexOf(" actions="));

const linesOf = (text: string): string[] => text.split("\n").filter((l) => l.trim() !== "").map((l) => l.trim());

/**
 * A unit's change as the difference from the text last committed for it: the flows it no longer has
 * are deleted one by one (strict: by table, priority, match and cookie), new or changed flows are
 * added (an add replaces the flow of the same identity), the others are not touched. A one-port
 * change is then a few messages instead of all its ~40 flows and a delete.
 */
function unitDiff(before: string, after: string): BundleOp[] {
  const kept = new Set(linesOf(before));
  const next = linesOf(after);
  const nextIds = new Set(next.map(identity));
  const ops: BundleOp[] = [];
  for (const line of kept) if (!nextIds.has(identity(line))) ops.push({ op: "delete-strict", line });
  for (const line of next) if (!kept.has(line)) ops.push({ op: "add", line });
  return ops;
}

export type ChangeOpsOptions = Readonly<{
  /** Add the base flows (default true). They are idempotent; the driver leaves them out once it knows they are there. */
  base?: boolean;
  /** Units an older vifguard wrote (a cookie per kind): they and the older base flows are deleted kind by kind. */
  legacy?: ReadonlySet<string>;
  /**
   * The text of each unit as last committed to this ovs-vswitchd by this driver (and not seen
   * changed since): such a unit is changed by its difference (unitDiff), any other one replaced whole.
   */
  previous?: ReadonlyMap<string, Readonly<{ text: string }>>;
}>;

/** The bundle for a change set. */
export function changeOps(changes: ChangeSet, layout: OvsLayout, options: ChangeOpsOptions = {}): BundleOp[] {
  const legacy = options.legacy ?? new Set<string>();
  const ops: BundleOp[] = [];
  for (const key of [...changes.remove].sort()) ops.push(...unitDeletes(layout, key, legacy.has(key)));
  for (const unit of changes.add) {
    const before = legacy.has(unit.key) ? undefined : options.previous?.get(unit.key)?.text;
    if (before !== undefined && before !== "" && unit.text !== "") {
      ops.push(...unitDiff(before, unit.text));
      continue;
    }
    ops.push(...unitDeletes(layout, unit.key, legacy.has(unit.key)));
    for (const line of linesOf(unit.text)) ops.push({ op: "add", line });
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

/** One op as its FLOW_MOD, after `headroom` bytes (a bundle's header). */
export function encodeOp(o: BundleOp, xid: number, headroom = 0): Buffer {
  if (o.op === "add") return encodeAddFlow(xid, o.line, headroom);
  if (o.op === "delete-strict") return encodeDeleteStrict(xid, o.line, headroom);
  return encodeDeleteByCookie(xid, o.table, o.cookie, o.mask, headroom);
}

/** Bundle ops → `ovs-ofctl --bundle add-flows BRIDGE -` input (the fallback path). */
export function renderOps(ops: readonly BundleOp[]): string {
  const hex = (n: bigint): string => `0x${n.toString(16)}`;
  const text = ops.map((o) =>
    o.op === "add"
      ? `add ${o.line}`
      : o.op === "delete-strict"
        ? `delete_strict ${identity(o.line).replace(/(cookie=0x[0-9a-f]+)/, "$1/-1")}`
        : `delete ${o.table === undefined ? "" : `table=${o.table},`}cookie=${hex(o.cookie)}/${o.mask === EXACT ? "-1" : hex(o.mask)}`,
  );
  return text.join("\n") + "\n";
}

export const renderChanges = (changes: ChangeSet, layout: OvsLayout): string => renderOps(changeOps(changes, layout));
export const renderRemoveAll = (layout: OvsLayout): string => renderOps(removeAllOps(layout));
