// docs/install.md's shell blocks, without root: every one is tagged (run or not run, with a reason),
// and the steps come in the order test/dataplane/install-guide.test.ts checks them. Table test of the
// extractor (test/support/guide-blocks.ts).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { guideBlocks } from "../support/guide-blocks.ts";

const GUIDE = new URL("../../docs/install.md", import.meta.url);

test("docs/install.md: every shell block is tagged, and the steps come in the guide's order", async () => {
  const blocks = guideBlocks(await readFile(GUIDE, "utf8"), "docs/install.md");
  const steps = blocks.flatMap((b) => (b.run ? [b.step] : []));
  assert.deepEqual(steps, ["build", "install", "ports", "agent-config", "hook", "start", "agent-status", "vm", "status", "uninstall"]);
  for (const b of blocks) if (!b.run) assert.ok(b.reason.length > 10, `line ${b.line}: a not-run block says why`);
  const vm = blocks.find((b) => b.run && b.step === "vm")!;
  assert.match(vm.code, /^virsh start web-1$/m, "the guide starts the VM the ordinary way");
});

const cases: { name: string; text: string; error?: RegExp; want?: unknown[] }[] = [
  { name: "a run block and a not-run block", text: "x\n<!-- run: a-1; re-run -->\n```sh\necho a\n```\n\n<!-- not run: needs the network -->\n\n```bash\napt-get update\n```\n", want: [{ line: 3, code: "echo a\n", run: true, step: "a-1", note: "re-run" }, { line: 9, code: "apt-get update\n", run: false, reason: "needs the network" }] },
  { name: "other blocks need no tag", text: "```text\nout\n```\n```xml\n<a/>\n```\n", want: [] },
  { name: "an untagged shell block", text: "text\n```sh\nrm -rf /\n```\n", error: /line 2: a sh block without/ },
  { name: "a tag before prose", text: "<!-- run: a -->\nsome words\n```sh\ntrue\n```\n", error: /line 1: the tag is not followed by a shell block/ },
  { name: "a tag before a text block", text: "<!-- run: a -->\n```text\nx\n```\n", error: /followed by a text block/ },
  { name: "a step named twice", text: "<!-- run: a -->\n```sh\ntrue\n```\n<!-- run: a -->\n```sh\ntrue\n```\n", error: /step "a" is named twice/ },
  { name: "not run without a reason", text: "<!-- not run: -->\n```sh\ntrue\n```\n", error: /must say why/ },
  { name: "a block that never ends", text: "<!-- run: a -->\n```sh\ntrue\n", error: /never ends/ },
  { name: "a tag at the end", text: "<!-- run: a -->\n", error: /not followed by a shell block/ },
];

for (const c of cases) {
  test(`guideBlocks: ${c.name}`, () => {
    if (c.error) assert.throws(() => guideBlocks(c.text), c.error);
    else assert.deepEqual(guideBlocks(c.text), c.want);
  });
}
