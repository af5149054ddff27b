// agentSocket(): the hooks' and `vifguard port`'s default socket comes from the agent's config.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { parse } from "yaml";
import { DEFAULT_AGENT_SOCKET, agentSocket, plainControlSocket } from "../../src/cli/agent-socket.ts";
import { tempDir } from "../agent/fixture.ts";

test("agentSocket() takes controlSocket from the agent's config, else the default", async (t) => {
  const dir = await tempDir(t, "sock");
  const config = join(dir, "agent.yaml");
  await writeFile(config, "source: { file: /etc/vifguard/ports.yaml }\ncontrolSocket: /run/elsewhere/agent.sock\n");
  assert.equal(await agentSocket({ VIFGUARD_AGENT_CONFIG: config }), "/run/elsewhere/agent.sock");
  await writeFile(config, "source: { file: /etc/vifguard/ports.yaml }\n");
  assert.equal(await agentSocket({ VIFGUARD_AGENT_CONFIG: config }), DEFAULT_AGENT_SOCKET);
  assert.equal(await agentSocket({ VIFGUARD_AGENT_CONFIG: join(dir, "missing.yaml") }), DEFAULT_AGENT_SOCKET);
});

test("plainControlSocket() reads the usual one-line forms as the YAML parser does, and leaves every other form to it", () => {
  const cases: [string, string | undefined][] = [
    ["source: { file: x }\n", ""],
    ["controlSocket: /run/a.sock\n", "/run/a.sock"],
    ["controlSocket:   \"/run/b c.sock\"  # quoted\n", "/run/b c.sock"],
    ["controlSocket: '/run/c.sock'\r\n", "/run/c.sock"],
    ["controlSocket: /run/d.sock # why\nlisten: false\n", "/run/d.sock"],
    ["# controlSocket: /run/old.sock\n", undefined],
    ["{ controlSocket: /run/e.sock }\n", undefined],
    ["controlSocket: &s /run/f.sock\n", undefined],
    ["controlSocket: >-\n  /run/g.sock\n", undefined],
    ["controlSocket: /run/h.sock\ncontrolSocket: /run/i.sock\n", undefined],
  ];
  for (const [text, want] of cases) {
    assert.equal(plainControlSocket(text), want, JSON.stringify(text));
    if (want) assert.equal((parse(text) as { controlSocket?: unknown }).controlSocket, want, `the YAML parser agrees on ${JSON.stringify(text)}`);
  }
});

test("agentSocket() falls back to the YAML parser for other forms", async (t) => {
  const dir = await tempDir(t, "sock");
  const config = join(dir, "agent.yaml");
  await writeFile(config, "{ controlSocket: /run/flow/agent.sock }\n");
  assert.equal(await agentSocket({ VIFGUARD_AGENT_CONFIG: config }), "/run/flow/agent.sock");
});
