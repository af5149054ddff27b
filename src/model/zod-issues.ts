// Turns zod's validation issues into vifguard Issues: a field path like `ports[3].allowed[0].ip`,
// the value as given, and what is accepted. Shared by the port file and the agent and controller
// configs. Pure.
import type { z } from "zod";
import type { Issue } from "../errors.ts";

/** `["ports", 3, "allowed", 0, "ip"]` → `ports[3].allowed[0].ip` */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === "number" ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), "") || "(top level)";
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

const expectedOf = (message: string): string => message.replace(/^Invalid input: expected /, "");

/** Every issue of `error`, with the values looked up in the validated document `root`. */
export function zodIssues(root: unknown, issues: readonly z.core.$ZodIssue[]): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) out.push({ path: formatPath([...issue.path, key]), value: valueAt(root, [...issue.path, key]), expected: "no such field (misspelt?)" });
      continue;
    }
    // A union names the branch that came closest: the one whose own issues go deepest.
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      const value = valueAt(root, issue.path);
      const nested = issue.errors.map((branch) => branch.map((i) => ({ ...i, path: [...issue.path, ...i.path] })));
      const best = value !== null && typeof value === "object" ? nested.find((branch) => branch.every((i) => i.code !== "unrecognized_keys")) : undefined;
      if (best) {
        out.push(...zodIssues(root, best));
        continue;
      }
    }
    const value = valueAt(root, issue.path);
    const expected = value === undefined ? `this field (it is required): ${expectedOf(issue.message)}` : expectedOf(issue.message);
    out.push({ path: formatPath(issue.path), value, expected });
  }
  return out;
}
