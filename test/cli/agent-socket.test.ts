// agentSocket(): the hooks' and `vifguard port`'s default socket comes from the agent's config.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { DEFAULT_AGENT_SOCKET, agentSocket } from "../../src/cli/agent-socket.ts";
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
