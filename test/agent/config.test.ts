import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { AgentConfigError, parseAgentConfig } from "../../src/agent/config.ts";

test("parseAgentConfig() reads examples/agent.yaml", async () => {
  const config = parseAgentConfig(await readFile("examples/agent.yaml", "utf8"), "examples/agent.yaml");
  assert.equal(config.driver.name, "nftables");
  assert.equal(config.source.kind, "file");
  assert.deepEqual(config.failClosed.devices, ["vnet*", "tap*", "vif*"]);
});

test("parseAgentConfig() fills defaults around a minimal file", () => {
  const config = parseAgentConfig("source: { file: /etc/vifguard/ports.yaml }\n", "a.yaml");
  assert.deepEqual(config.driver, { name: "nftables", settings: { prefix: "vifguard" } });
  assert.deepEqual(config.listen, { host: "127.0.0.1", port: 9477 });
  assert.equal(config.reconcile.intervalMs, 5000);
  assert.equal(config.failClosed.enabled, true);
  assert.equal(config.logLevel, "info");
});

test("parseAgentConfig() reads a controller source", () => {
  const config = parseAgentConfig("source:\n  controller: { url: 'https://ctl:8443', tokenFile: /etc/vifguard/token, host: hv1 }\nlisten: '[::1]:9000'\n", "a.yaml");
  assert.deepEqual(config.source, { kind: "controller", url: "https://ctl:8443", tokenFile: "/etc/vifguard/token", host: "hv1", pollTimeoutMs: 30000, retryMs: 2000, allowInsecureTokenFile: false });
  assert.deepEqual(config.listen, { host: "::1", port: 9000 });
});

const rows: { name: string; yaml: string; path: string }[] = [
  { name: "a misspelt field", yaml: "source: { file: p.yaml }\nreconcile: { intervalMS: 100 }\n", path: "reconcile.intervalMS" },
  { name: "an unknown driver", yaml: "source: { file: p.yaml }\ndriver: { name: iptables }\n", path: "driver.name" },
  { name: "a bad prefix", yaml: "source: { file: p.yaml }\ndriver: { prefix: 'Bad Prefix' }\n", path: "driver.prefix" },
  { name: "a missing source", yaml: "stateDir: /tmp/x\n", path: "source" },
  { name: "a bad controller URL", yaml: "source: { controller: { url: 'ftp://x', tokenFile: t, host: hv1 } }\n", path: "source.controller.url" },
  { name: "a controller without its host", yaml: "source: { controller: { url: 'http://x', tokenFile: t } }\n", path: "source.controller.host" },
  { name: "a device pattern with a star inside", yaml: "source: { file: p.yaml }\nfailClosed: { devices: ['v*net'] }\n", path: "failClosed.devices[0]" },
  { name: "a bad listen address", yaml: "source: { file: p.yaml }\nlisten: 'localhost'\n", path: "listen" },
  { name: "a port out of range", yaml: "source: { file: p.yaml }\nlisten: 'localhost:70000'\n", path: "listen" },
  { name: "ovs without a bridge", yaml: "source: { file: p.yaml }\ndriver: { name: ovs }\n", path: "driver.bridge" },
  { name: "a bad log level", yaml: "source: { file: p.yaml }\nlog: { level: loud }\n", path: "log.level" },
  { name: "an interval too short", yaml: "source: { file: p.yaml }\nreconcile: { intervalMs: 5 }\n", path: "reconcile.intervalMs" },
];

test("parseAgentConfig() names the field of each mistake", async (t) => {
  for (const row of rows) {
    await t.test(row.name, () => {
      assert.throws(
        () => parseAgentConfig(row.yaml, "agent.yaml"),
        (e: unknown) => {
          assert.ok(e instanceof AgentConfigError, String(e));
          assert.equal(e.code, "VG_AGENT_CONFIG_INVALID");
          assert.ok(e.issues.some((i) => i.path === row.path), `${row.path} in ${e.message}`);
          assert.match(e.message, /agent\.yaml/);
          return true;
        },
      );
    });
  }
});
