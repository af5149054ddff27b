// The warm-up on a SQLite file in a temp dir.
import { test } from "node:test";
import { sqliteBackend } from "./helpers.ts";
import { warmUpSuite } from "./warm-up-suite.ts";

test("the warm-up rehearses the largest writes on SQLite and stores nothing; a rehearsal runs the real checks and rolls back", async (t) => warmUpSuite(t, await sqliteBackend(t)));
