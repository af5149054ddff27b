// The transactions on vifguard's table: what is installed, and the one nft batch that adds, replaces
// or removes ports' elements (with the skeleton when it is missing or outdated). Pure.
import { FAIL_CLOSED_KEY, type ChangeSet } from "../contract.ts";
import { GUARDS } from "../../policy/guards.ts";
import { ELEMENT_SETS, elementText, FAIL_CLOSED_COMMENT, isDispatch, ownerComment, parseFailClosedText, parseUnitText, type Element, type ElementSet, type NftLayout, type PortElements } from "./compile.ts";
import { counterSet, logSet, renderSkeleton, SKELETON, type Skeleton } from "./skeleton.ts";

/** What vifguard has in the table now (from observe(), or kept up to date by apply()). */
export type Installed = Readonly<{
  /** Skeleton version found, undefined when there is no table. */
  version: string | undefined;
  /** Every skeleton chain, set and map there, each chain with its rule count. */
  intact: boolean;
  ports: ReadonlyMap<string, PortElements>;
  /** Patterns of the installed fail-closed rules; undefined when there are none. */
  failClosed: readonly string[] | undefined;
}>;

export const NOTHING_INSTALLED: Installed = { version: undefined, intact: false, ports: new Map(), failClosed: undefined };

export type Transaction = Readonly<{
  text: string;
  /** The skeleton is (re)created in this transaction. */
  skeleton: boolean;
  /** What is installed once it commits. */
  after: Installed;
}>;

function grouped(verb: "add" | "delete", layout: NftLayout, items: readonly (readonly [ElementSet | string, string])[]): string[] {
  const bySet = new Map<string, string[]>();
  for (const [set, text] of items) {
    const texts = bySet.get(set);
    if (texts) texts.push(text);
    else bySet.set(set, [text]);
  }
  const order = [...ELEMENT_SETS, ...GUARDS.map(counterSet), ...GUARDS.map(logSet)] as string[];
  return [...bySet.entries()]
    .sort(([a], [b]) => order.indexOf(a) - order.indexOf(b))
    .map(([set, texts]) => `${verb} element bridge ${layout.table} ${set} { ${texts.join(", ")} }`);
}

/**
 * One transaction for a change set, given what is installed: the skeleton when it is missing,
 * outdated or damaged and something is added; for a removed port the deletion of exactly its
 * installed elements and its drop counters; for a replaced port the deletion of the elements it no
 * longer has and the addition of those it did not have (and its dispatch element anew). The
 * batch commits whole or not at all, so a replaced port is never seen half-done.
 */
export function renderTransaction(layout: NftLayout, installed: Installed, changes: ChangeSet, sk: Skeleton = SKELETON): Transaction {
  const t = `bridge ${layout.table}`;
  const ports = new Map(installed.ports);
  let failClosed = installed.failClosed;
  const deletes: [ElementSet, string][] = [];
  const adds: [ElementSet, string][] = [];
  const counterClears: [string, string][] = [];
  const ruleLines: string[] = [];
  const tableThere = installed.version !== undefined;
  const portAdds = changes.add.filter((u) => u.key !== FAIL_CLOSED_KEY);
  const failAdd = changes.add.find((u) => u.key === FAIL_CLOSED_KEY);
  const needSkeleton = changes.add.length > 0 && (!installed.intact || installed.version !== sk.version);

  for (const key of [...changes.remove].sort()) {
    if (key === FAIL_CLOSED_KEY) {
      if (tableThere && !failAdd) ruleLines.push(`flush chain ${t} fail_closed_in`, `flush chain ${t} fail_closed_out`);
      failClosed = undefined;
      continue;
    }
    const old = ports.get(key);
    if (old) for (const e of old.elements) deletes.push([e.set, e.key]);
    if (tableThere) for (const g of GUARDS) counterClears.push([counterSet(g), `"${key}"`]);
    // The sampling limits of a removed port go too (an older skeleton has no such sets).
    if (tableThere && installed.version === sk.version) for (const g of GUARDS) counterClears.push([logSet(g), `"${key}"`]);
    ports.delete(key);
  }
  for (const unit of portAdds) {
    // A replaced port: only the elements that differ change (a delete from an interval set makes the
    // kernel rebuild it), except the dispatch element, whose comment carries the new digest.
    const old = ports.get(unit.key)?.elements ?? [];
    const elements = parseUnitText(unit.text);
    const id = (e: Element): string => `${e.set} ${e.key}`;
    const before = new Set(old.filter((e) => !isDispatch(e.set)).map(id));
    const after = new Set(elements.filter((e) => !isDispatch(e.set)).map(id));
    for (const e of old) if (isDispatch(e.set) || !after.has(id(e))) deletes.push([e.set, e.key]);
    for (const e of elements) if (isDispatch(e.set) || !before.has(id(e))) adds.push([e.set, elementText(e, isDispatch(e.set) ? ownerComment(unit.port, unit.digest) : undefined)]);
    ports.set(unit.key, { device: unit.key, port: unit.port, elements });
  }
  if (failAdd) {
    if (!needSkeleton) ruleLines.push(`flush chain ${t} fail_closed_in`, `flush chain ${t} fail_closed_out`);
    ruleLines.push(...failAdd.text.split("\n").filter((l) => l.trim()));
    failClosed = parseFailClosedText(failAdd.text);
  } else if (needSkeleton && failClosed) {
    // The skeleton flushes fail_closed_*: put the installed patterns back.
    for (const p of failClosed) {
      ruleLines.push(`add rule ${t} fail_closed_in iifname "${p}" counter drop comment "${FAIL_CLOSED_COMMENT} ${p}"`);
      ruleLines.push(`add rule ${t} fail_closed_out oifname "${p}" counter drop comment "${FAIL_CLOSED_COMMENT} ${p}"`);
    }
  }

  const lines = [
    ...(needSkeleton ? [renderSkeleton(layout, sk).trimEnd()] : []),
    ...grouped("delete", layout, deletes),
    // Adding then deleting a counter element removes it whether or not a drop created it.
    ...grouped("add", layout, counterClears),
    ...grouped("delete", layout, counterClears),
    ...grouped("add", layout, adds),
    ...ruleLines,
  ];
  const after: Installed = {
    version: needSkeleton ? sk.version : installed.version,
    intact: needSkeleton ? true : installed.intact,
    ports,
    failClosed,
  };
  return { text: lines.length ? lines.join("\n") + "\n" : "", skeleton: needSkeleton, after };
}

/** Takes the whole table away; `add table` first makes it idempotent (nft 1.0.6 has no `destroy`). */
export function renderRemoveAll(layout: NftLayout): string {
  return `add table bridge ${layout.table}\ndelete table bridge ${layout.table}\n`;
}
