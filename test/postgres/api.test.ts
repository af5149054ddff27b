// The controller's API rules on a PostgreSQL server this test starts itself (skipped with the
// reason when the server binaries or root are missing; failed instead under CI=true).
import { test } from "node:test";
import { apiSuite, claimSuite, eventsSuite, holdSuite, refuseSuite } from "../controller/api-suite.ts";
import { postgresBackend } from "../controller/helpers.ts";

test("controller API on PostgreSQL", async (t) => {
  const backend = await postgresBackend(t);
  if (!backend) return;
  await t.test("rules, roles, revisions, watch, migration", async (t) => apiSuite(t, backend));
  await t.test("refuses ports on hosts lacking a guard when configured", async (t) => refuseSuite(t, backend));
  await t.test("ends a migration when the source's hold runs out", async (t) => holdSuite(t, backend));
  await t.test("closes the claim holes of issue 12", async (t) => claimSuite(t, backend));
  await t.test("spoof events, their access, long-poll and retention", async (t) => eventsSuite(t, backend));
});
