// Where the running agent listens: its config's controlSocket (the file at $VIFGUARD_AGENT_CONFIG, else
// /etc/vifguard/agent.yaml), else the default. Effects: reads that file. Hooks and `vifguard port`
// call this when no --socket is given, so a changed controlSocket needs no change in any hook.
import { readFile } from "node:fs/promises";
import { parse } from "yaml";
import { DEFAULT_CONTROL_SOCKET } from "../agent/lifecycle.ts";

export const DEFAULT_AGENT_CONFIG = "/etc/vifguard/agent.yaml";
export const DEFAULT_AGENT_SOCKET = DEFAULT_CONTROL_SOCKET;

export async function agentSocket(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const file = env.VIFGUARD_AGENT_CONFIG || DEFAULT_AGENT_CONFIG;
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch {
    return DEFAULT_AGENT_SOCKET; // no config here: the agent uses its default too
  }
  const config: unknown = parse(text);
  const socket = config !== null && typeof config === "object" ? (config as Record<string, unknown>).controlSocket : undefined;
  return typeof socket === "string" && socket !== "" ? socket : DEFAULT_AGENT_SOCKET;
}
