// The warm-up on a PostgreSQL server this test starts itself (skipped with the reason when the
// server binaries or root are missing; failed instead under CI=true).
import { test } from "node:test";
import { postgresBackend } from "../controller/helpers.ts";
import { warmUpSuite } from "../controller/warm-up-suite.ts";

test("the warm-up rehearses the largest writes on PostgreSQL and stores nothing; a rehearsal runs the real checks and rolls back", async (t) => {
  const backend = await postgresBackend(t);
  if (backend) await warmUpSuite(t, backend);
});
