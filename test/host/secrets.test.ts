// Secret files (issue 12): the controller refuses an admin token file or SQLite store readable by
// group or others (or only warns with allowInsecureFiles), creates a new store 0600, and the agent's
// token file check refuses the same way.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { startController } from "../../src/controller/server.ts";
import { checkSecretFile, InsecureFileError } from "../../src/host/secrets.ts";

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "vg-secrets-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("checkSecretFile() refuses group- or world-accessible files, naming the file, its mode and the fix", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "agent.token");
  writeFileSync(file, "x".repeat(32), { mode: 0o644 });
  chmodSync(file, 0o644);
  await assert.rejects(checkSecretFile(file, "The agent's token file", { flag: "allowInsecureTokenFile" }), (e: unknown) =>
    e instanceof InsecureFileError && e.code === "VG_INSECURE_FILE" && e.message.includes(file) && /mode 0644/.test(e.message) && /chmod 600/.test(e.message));
  assert.match((await checkSecretFile(file, "The agent's token file", { warnOnly: true, flag: "f" }))!, /group or others/);
  chmodSync(file, 0o640);
  await assert.rejects(checkSecretFile(file, "token", { flag: "f" }), InsecureFileError);
  chmodSync(file, 0o600);
  assert.equal(await checkSecretFile(file, "token", { flag: "f" }), undefined);
});

test("the controller refuses to start with a readable admin token file or store, warns with allowInsecureFiles, and creates its store 0600", async (t) => {
  const dir = tempDir(t);
  const tokenFile = join(dir, "admin.token");
  writeFileSync(tokenFile, "file-bootstrap-admin-token-0123\n", { mode: 0o600 });
  const base = { bootstrapTokenFile: tokenFile, listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent" as const };
  const fresh = join(dir, "fresh.db");
  const c = await startController({ ...base, store: `sqlite://${fresh}` });
  await c.close();
  assert.equal(statSync(fresh).mode & 0o777, 0o600, "a new SQLite store is created 0600");

  chmodSync(tokenFile, 0o644);
  await assert.rejects(startController({ ...base, store: `sqlite://${fresh}` }), (e: unknown) => e instanceof InsecureFileError && e.file === tokenFile);
  chmodSync(tokenFile, 0o600);
  chmodSync(fresh, 0o644);
  await assert.rejects(startController({ ...base, store: `sqlite://${fresh}` }), (e: unknown) => e instanceof InsecureFileError && e.file === fresh);

  const lines: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
  const warned = await startController({ ...base, store: `sqlite://${fresh}`, allowInsecureFiles: true, logger });
  await warned.close();
  assert.ok(lines.some((l) => /INSECURE: The SQLite store .* mode 0644/.test(l)), lines.join("\n"));
});

test("the agent refuses a token file group or others can read, before it touches the dataplane", async (t) => {
  const { startAgent } = await import("../../src/agent/agent.ts");
  const { validateAgentConfig } = await import("../../src/agent/config.ts");
  const { FakeDriver } = await import("../agent/fake-driver.ts");
  const dir = tempDir(t);
  const tokenFile = join(dir, "agent.token");
  writeFileSync(tokenFile, "vg_agent-token-0123456789abcdef", { mode: 0o644 });
  chmodSync(tokenFile, 0o644);
  const config = (allow: boolean) => validateAgentConfig({
    source: { controller: { url: "http://127.0.0.1:9", tokenFile, host: "h1", allowInsecureTokenFile: allow } },
    stateDir: join(dir, "state"), controlSocket: join(dir, "agent.sock"), listen: false,
  }, "test");
  const driver = new FakeDriver();
  await assert.rejects(startAgent(config(false), { driver, logger: pino({ level: "silent" }) }), (e: unknown) => e instanceof InsecureFileError && e.file === tokenFile);
  assert.equal(driver.applied.length, 0, "nothing was applied");
  const relaxed = config(true).source;
  assert.ok(relaxed.kind === "controller" && relaxed.allowInsecureTokenFile, "allowInsecureTokenFile reaches the agent, which passes it as warnOnly (tested above)");
});
