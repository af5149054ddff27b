// The long-lived `ip -j -batch -` link reader (src/host/links.ts) against a real namespace: it answers
// what `ip -j link show` answers, sees links added and removed behind its back, and answers again after
// its process is killed. Needs root (skips otherwise; fails under CI=true).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { addNetns, deleteNetns } from "../../src/conformance/lab/net.ts";
import { LinkReader, readLinks } from "../../src/host/links.ts";
import { run } from "../../src/host/run.ts";
import { requireRoot } from "../support/needs-root.ts";

test("LinkReader: the same devices as ip -j link show, fresh after changes, alive after a kill", async (t) => {
  if (!requireRoot(t, "creates a network namespace and links")) return;
  const netns = `vglr-${randomBytes(3).toString("hex")}`;
  await addNetns(netns);
  const reader = new LinkReader(netns);
  t.after(async () => {
    reader.close();
    await deleteNetns(netns);
  });
  const names = async (): Promise<string[]> => (await reader.read()).map((d) => d.name).sort();

  assert.deepEqual(await reader.read(), await readLinks(netns));
  await run("ip", ["-n", netns, "link", "add", "vglr0", "address", "fe:54:00:00:00:01", "type", "veth", "peer", "name", "vglr1"]);
  assert.deepEqual(await names(), ["lo", "vglr0", "vglr1"]);
  assert.equal((await reader.read()).find((d) => d.name === "vglr0")?.mac, "fe:54:00:00:00:01");
  // Many in a row, some at once: each answer whole.
  const all = await Promise.all(Array.from({ length: 20 }, () => reader.read()));
  for (const devices of all) assert.equal(devices.length, 3);

  // ip dies: the call in flight (or the next) still answers, by a plain ip, and a fresh process follows.
  const [pid] = (await run("pgrep", ["-f", `^ip -n ${netns} -j -force -batch -$`])).stdout.trim().split("\n");
  assert.ok(pid, "the reader runs an ip process");
  process.kill(Number(pid), "SIGKILL");
  await run("ip", ["-n", netns, "link", "del", "vglr0"]);
  assert.deepEqual(await names(), ["lo"]);
  assert.deepEqual(await names(), ["lo"]);
});
