// Where the running agent listens: its config's controlSocket (the file at $VIFGUARD_AGENT_CONFIG, else
// /etc/vifguard/agent.yaml), else the default. Effects: reads that file. Hooks and `vifguard port`
// call this when no --socket is given, so a changed controlSocket needs no change in any hook.
import { readFile } from "node:fs/promises";
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
  const plain = plainControlSocket(text);
  if (plain !== undefined) return plain || DEFAULT_AGENT_SOCKET;
  // Written some other way (flow style, an anchor, a block scalar): the YAML parser (≈50 ms to load) decides.
  const { parse } = await import("yaml");
  const config: unknown = parse(text);
  const socket = config !== null && typeof config === "object" ? (config as Record<string, unknown>).controlSocket : undefined;
  return typeof socket === "string" && socket !== "" ? socket : DEFAULT_AGENT_SOCKET;
}

/**
 * The controlSocket of an agent config as it is nearly always written: a top-level `controlSocket: PATH`
 * line (PATH plain or quoted, an optional comment after it), or no mention at all ("": the default).
 * undefined: written some other way, for the YAML parser. Pure.
 */
export function plainControlSocket(text: string): string | undefined {
  if (!text.includes("controlSocket")) return "";
  const lines = text.split("\n").filter((l) => /^controlSocket\s*:/.test(l));
  if (lines.length !== 1) return undefined;
  const m = /^controlSocket\s*:\s*(?:"([^"\\]*)"|'([^']*)'|([/\w.@+-][^\s#]*))\s*(?:#.*)?\r?$/.exec(lines[0]!);
  const value = m?.[1] ?? m?.[2] ?? m?.[3];
  return value === undefined || value === "" ? undefined : value;
}
