// The lazily loaded program: every subcommand listed at the top loads, under its name, with its own options or subcommands.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SUBCOMMANDS, buildProgram } from "../../src/cli/program.ts";

test("buildProgram() loads every subcommand under the name and description it lists", async () => {
  const program = await buildProgram();
  assert.deepEqual(program.commands.map((c) => c.name()), SUBCOMMANDS.map((s) => s.name));
  for (const command of program.commands) {
    const listed = SUBCOMMANDS.find((s) => s.name === command.name())!;
    assert.equal(command.description(), listed.description, command.name());
    assert.ok(command.options.length > 0 || command.commands.length > 0, `${command.name()}: loaded (has options or subcommands)`);
  }
});

test("buildProgram(argv) loads only the subcommand argv names", async () => {
  const program = await buildProgram(["port", "plug", "52:54:00:00:00:01"]);
  const loaded = program.commands.filter((c) => c.options.length > 0 || c.commands.length > 0).map((c) => c.name());
  assert.deepEqual(loaded, ["port"]);
  assert.deepEqual((await buildProgram(["help", "check"])).commands.filter((c) => c.options.length > 0).map((c) => c.name()), ["check"]);
  assert.deepEqual((await buildProgram(["--help"])).commands.filter((c) => c.options.length > 0 || c.commands.length > 0), []);
});
