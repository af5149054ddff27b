// The long-lived `nft -i` session, its pure part: how a transaction becomes one batch line (the
// session against real nft is test/dataplane/nftables-session.test.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { sessionLine } from "../../../src/drivers/nftables/session.ts";

test("sessionLine joins a transaction's commands into one batch line", () => {
  assert.equal(sessionLine("add table bridge t\n\n  add set bridge t s { type ifname; }\n"), "add table bridge t; add set bridge t s { type ifname; }");
});
