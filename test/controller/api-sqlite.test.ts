// The controller's API rules on a SQLite file in a temp dir.
import { test } from "node:test";
import { apiSuite, claimSuite, eventsSuite, holdSuite, refuseSuite } from "./api-suite.ts";
import { sqliteBackend } from "./helpers.ts";

test("controller API on SQLite", async (t) => apiSuite(t, await sqliteBackend(t)));
test("controller API on SQLite refuses ports on hosts lacking a guard when configured", async (t) => refuseSuite(t, await sqliteBackend(t)));
test("controller API on SQLite ends a migration when the source's hold runs out", async (t) => holdSuite(t, await sqliteBackend(t)));
test("controller API on SQLite closes the claim holes of issue 12", async (t) => claimSuite(t, await sqliteBackend(t)));
test("controller API on SQLite: spoof events, their access, long-poll and retention", async (t) => eventsSuite(t, await sqliteBackend(t)));
