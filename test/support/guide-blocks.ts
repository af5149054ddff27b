// The shell blocks of a guide (docs/install.md), in order, as a test runs them. Pure.
//
// Every ```sh block must carry a tag on the last non-blank line before it:
//   <!-- run: STEP -->             the test runs the block as written (STEP names it; text after ';' is a note)
//   <!-- not run: REASON -->       the test does not run it, and REASON says why
// An untagged block, a tag that no block follows, or a step named twice is an error, so a command
// cannot slip into the guide without either being run or saying why not.

export type GuideBlock = Readonly<{ line: number; code: string }> &
  (Readonly<{ run: true; step: string; note: string }> | Readonly<{ run: false; reason: string }>);

const TAG = /^<!--\s*(run|not run)\s*:\s*(.*?)\s*-->$/;
const SHELL = new Set(["sh", "bash", "shell", "console"]);

/** The guide's shell blocks with their tags; throws naming the line of the first untagged or stray one. */
export function guideBlocks(markdown: string, name = "the guide"): GuideBlock[] {
  const lines = markdown.split("\n");
  const blocks: GuideBlock[] = [];
  const steps = new Set<string>();
  let pending: { line: number; kind: string; text: string } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    const fence = /^(`{3,})\s*([\w-]*)/.exec(line);
    if (fence) {
      const close = lines.findIndex((l, j) => j > i && l.trimEnd() === fence[1]);
      if (close < 0) throw new Error(`${name}, line ${i + 1}: a code block that never ends`);
      const lang = fence[2]!.toLowerCase();
      if (SHELL.has(lang)) {
        if (!pending) throw new Error(`${name}, line ${i + 1}: a ${lang} block without <!-- run: STEP --> or <!-- not run: REASON --> before it`);
        const code = lines.slice(i + 1, close).join("\n") + "\n";
        if (pending.kind === "run") {
          const [step = "", ...rest] = pending.text.split(";");
          const id = step.trim();
          if (!/^[a-z][a-z0-9-]*$/.test(id)) throw new Error(`${name}, line ${pending.line}: a step is named with lower-case letters, digits and '-', got "${id}"`);
          if (steps.has(id)) throw new Error(`${name}, line ${pending.line}: step "${id}" is named twice`);
          steps.add(id);
          blocks.push({ line: i + 1, code, run: true, step: id, note: rest.join(";").trim() });
        } else {
          if (pending.text === "") throw new Error(`${name}, line ${pending.line}: <!-- not run: --> must say why`);
          blocks.push({ line: i + 1, code, run: false, reason: pending.text });
        }
      } else if (pending) {
        throw new Error(`${name}, line ${pending.line}: the tag is followed by a ${lang || "plain"} block, not a shell block`);
      }
      pending = undefined;
      i = close;
      continue;
    }
    if (line.trim() === "") continue;
    const tag = TAG.exec(line.trim());
    if (pending) throw new Error(`${name}, line ${pending.line}: the tag is not followed by a shell block`);
    if (tag) pending = { line: i + 1, kind: tag[1]!, text: tag[2]! };
  }
  if (pending) throw new Error(`${name}, line ${pending.line}: the tag is not followed by a shell block`);
  return blocks;
}
