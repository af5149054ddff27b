// The difference between what is wanted and what is installed, as a change set. Pure.
import type { ChangeSet, UnitMap } from "../drivers/contract.ts";

export function planChanges(desired: UnitMap, installed: UnitMap): ChangeSet {
  const add = [...desired.values()].filter((u) => installed.get(u.key)?.digest !== u.digest);
  const remove = [...installed.keys()].filter((key) => !desired.has(key)).sort();
  return { add, remove };
}
