// The controller on a real socket: the agent's own controller source follows it, oversized bodies
// get 413, close() ends pending long-polls; and the configuration file and `vifguard controller`.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Command } from "commander";
import { ControllerSource } from "../../src/agent/sources/controller.ts";
import { decodeDelivery, type Delivery } from "../../src/agent/desired.ts";
import { controllerCommand } from "../../src/cli/controller.ts";
import { parseControllerConfig } from "../../src/controller/config.ts";
import { ControllerConfigError } from "../../src/controller/errors.ts";
import { startController } from "../../src/controller/server.ts";
import { cleanup } from "./helpers.ts";

test("a listening controller serves the agent's controller source", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vg-controller-server-"));
  cleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  const adminFile = join(dir, "admin.token");
  writeFileSync(adminFile, "file-bootstrap-admin-token-0123\n", { mode: 0o600 });
  const c = await startController({ store: `sqlite://${join(dir, "c.db")}`, bootstrapTokenFile: adminFile, listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent", maxBodyBytes: 4096 });
  cleanup(t, () => c.close());
  assert.match(c.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  const call = async (method: string, path: string, body?: unknown, token = "file-bootstrap-admin-token-0123"): Promise<Response> =>
    fetch(`${c.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });

  assert.equal((await call("POST", "/v1/networks", { id: "public", tenant: "provider", shared: true })).status, 201);
  const agentToken = (await (await call("POST", "/v1/tokens", { role: "agent", host: "h1" })).json()) as { token: string };
  const tokenFile = join(dir, "agent.token");
  writeFileSync(tokenFile, agentToken.token, { mode: 0o600 });

  const source = new ControllerSource({ url: c.url, tokenFile, host: "h1", pollTimeoutMs: 5000, retryMs: 100 });
  const first = decodeDelivery(await source.fetch(5000));
  assert.deepEqual(first.policies, []);
  source.seen(first.revision);
  const deliveries: Delivery[] = [];
  const errors: Error[] = [];
  const next = new Promise<void>((resolve) => source.start({ onDelivery: (d) => (deliveries.push(d), resolve()), onError: (e) => errors.push(e) }));
  cleanup(t, () => source.stop());
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await call("POST", "/v1/ports", { id: "alice-0", tenant: "alice", network: "public", device: "vnet0", mac: "52:54:00:00:00:01", ips: ["10.0.0.1"], host: "h1" })).status, 201);
  await next;
  const got = decodeDelivery(deliveries[0]!);
  assert.deepEqual(got.policies.map((p) => [p.port, p.device, p.level]), [["alice-0", "vnet0", "full"]]);
  assert.ok(Number(got.revision) > Number(first.revision));
  assert.deepEqual(errors, []);
  source.stop();

  await t.test("a body over maxBodyBytes is refused with 413 before it is read", async () => {
    const res = await call("POST", "/v1/ports", { id: "x", network: "public", device: "vnet1", mac: "52:54:00:00:00:02", ips: Array.from({ length: 1000 }, (_, i) => `10.1.${i >> 8}.${i & 255}`) });
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { code: string }).code, "VG_TOO_LARGE");
  });

  await t.test("close() ends pending long-polls promptly", async () => {
    const rev = ((await (await call("GET", "/v1/revision")).json()) as { revision: number }).revision;
    const pending = call("GET", `/v1/hosts/h1/desired?since=${rev}&timeoutMs=60000`, undefined, agentToken.token).then((r) => r.status, () => "closed");
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    await c.close();
    const outcome = await pending;
    assert.ok(outcome === 204 || outcome === "closed", String(outcome));
    assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
  });
});

test("parseControllerConfig() reads the file and names the field of every problem", () => {
  const ok = parseControllerConfig("listen: '[::1]:8701'\nstore: postgres://vg@db/vifguard\nbootstrapTokenFile: /etc/vifguard/admin.token\nrefuseMissingGuards: true\n", "c.yaml");
  assert.deepEqual([ok.listen, ok.store, ok.refuseMissingGuards, ok.maxBodyBytes], [{ host: "::1", port: 8701 }, "postgres://vg@db/vifguard", true, 1 << 20]);
  assert.equal(parseControllerConfig("", "empty.yaml").store, "sqlite:///var/lib/vifguard-controller/controller.db");
  assert.equal(parseControllerConfig("", "empty.yaml").migrationHoldMs, 600_000);
  assert.equal(parseControllerConfig("migrationHoldMs: 0\n", "c.yaml").migrationHoldMs, 0, "0: the source keeps a migrating port until it releases it");
  try {
    parseControllerConfig("listen: 8700\nstore: mysql://x\nrefuseMissingGuard: true\nmigrationHoldMs: -1\n", "bad.yaml");
    assert.fail("should throw");
  } catch (error) {
    assert.ok(error instanceof ControllerConfigError);
    assert.deepEqual(error.issues.map((i) => i.path).sort(), ["listen", "migrationHoldMs", "refuseMissingGuard", "store"]);
  }
});

test("vifguard controller --check validates the configuration", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vg-controller-cli-"));
  cleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "controller.yaml");
  writeFileSync(file, `listen: 127.0.0.1:0\nstore: sqlite://${join(dir, "c.db")}\n`);
  const program = new Command("vifguard").exitOverride();
  controllerCommand(program.command("controller"));
  const lines: string[] = [];
  t.mock.method(console, "log", (line: string) => lines.push(line));
  await program.parseAsync(["controller", "--config", file, "--check"], { from: "user" });
  assert.match(lines.join("\n"), /valid \(listen 127\.0\.0\.1:0, store sqlite:/);
  writeFileSync(file, "store: ''\n");
  await assert.rejects(program.parseAsync(["controller", "--config", file, "--check"], { from: "user" }), ControllerConfigError);
});
