// docs/controller.md's curl session, run as written against a fresh controller (SQLite, a real
// socket): it must print exactly the output the document shows below it.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { ADMIN, cleanup, controllerOn, sqliteBackend } from "./helpers.ts";

/** The first ```sh block after the heading, and the ```text block after it (what it prints). */
function session(doc: string, heading: string): { script: string; output: string } {
  const from = doc.indexOf(heading);
  assert.ok(from >= 0, `docs/controller.md has no "${heading}"`);
  const rest = doc.slice(from);
  const script = /```sh\n([\s\S]*?)```/.exec(rest);
  const output = /```text\n([\s\S]*?)```/.exec(rest);
  assert.ok(script && output && output.index > script.index, `"${heading}" needs a sh block followed by a text block`);
  return { script: script[1]!, output: output[1]! };
}

test("the curl session of docs/controller.md prints what the document shows", async (t) => {
  const doc = readFileSync(new URL("../../docs/controller.md", import.meta.url), "utf8");
  const { script, output } = session(doc, "### A curl session");
  const c = await controllerOn(t, await sqliteBackend(t));
  const dir = mkdtempSync(join(tmpdir(), "vg-docs-curl-"));
  cleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  const { stdout } = await promisify(execFile)("bash", ["-eu", "-c", script], { cwd: dir, env: { PATH: process.env.PATH, C: c.url, ADMIN } });
  assert.equal(stdout, output);
});
