// follow() must not leave its command behind: not when close() is called, and not when this process
// dies without cleaning up (kill -9 of an agent), which left `nft monitor`s running in deleted namespaces.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { follow } from "../../src/host/follow.ts";
import { run } from "../../src/host/run.ts";

const running = async (marker: string): Promise<boolean> => (await run("pgrep", ["-f", `^sleep ${marker}$`], { allowFailure: true })).code === 0;
const settle = async (marker: string): Promise<boolean> => {
  for (let i = 0; i < 50 && (await running(marker)); i++) await new Promise((r) => setTimeout(r, 50));
  return running(marker);
};

test("follow(): close() stops the command and reports its exit", async () => {
  const marker = `${1000 + Math.floor(Math.random() * 1000)}.${process.pid}`;
  const lines: string[] = [];
  const followed = follow("sh", ["-c", `echo started; exec sleep ${marker}`], {}, (l) => lines.push(l));
  while (!(await running(marker))) await new Promise((r) => setTimeout(r, 20));
  followed.close();
  assert.notEqual(await followed.exited, 0);
  assert.deepEqual(lines, ["started"]);
  assert.equal(await settle(marker), false, "the command is gone");
});

test("follow(): a followed command dies with a process killed by SIGKILL", async () => {
  const marker = `${2000 + Math.floor(Math.random() * 1000)}.${process.pid}`;
  const script = `import { follow } from ${JSON.stringify(new URL("../../src/host/follow.ts", import.meta.url).href)};
follow("sleep", ["${marker}"], {}, () => undefined);
setInterval(() => undefined, 1000);`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { stdio: "ignore" });
  try {
    for (let i = 0; i < 200 && !(await running(marker)); i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await running(marker), true, "the followed command started");
    child.kill("SIGKILL");
    assert.equal(await settle(marker), false, "the followed command ended with its parent");
  } finally {
    child.kill("SIGKILL");
    await run("pkill", ["-f", `^sleep ${marker}$`], { allowFailure: true });
  }
});
