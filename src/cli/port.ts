// `vifguard port plug|unplug|migrate-in|migrate-out|status`: lifecycle requests to the running agent
// over its control socket (hooks call these; they block until the agent has applied the change).
import type { Command } from "commander";
import { LifecycleError, requestLifecycle, type LifecycleAnswer, type LifecycleOp } from "../agent/lifecycle.ts";
import { agentSocket } from "./agent-socket.ts";

type Flags = { socket?: string; timeout: string; json?: boolean; waitReady?: boolean };

/**
 * One request per port, one after the other, in one process (a hook names all of a domain's MACs in one call);
 * fails if any failed. Sequential: the agent saves its unplugged set per request, and concurrent saves collide.
 */
async function send(op: LifecycleOp, ports: readonly (string | undefined)[], flags: Flags): Promise<void> {
  const timeoutMs = Number(flags.timeout);
  const socket = flags.socket ?? (await agentSocket());
  const waitReady = op === "migrate-in" && flags.waitReady === false ? { waitReady: false } : {};
  const answers: LifecycleAnswer[] = [];
  for (const port of ports) answers.push(await requestLifecycle(socket, { op, ...(port !== undefined && { port }), timeoutMs, ...waitReady }, timeoutMs + 5_000));
  if (flags.json) console.log(JSON.stringify(answers.length === 1 ? answers[0] : answers, null, 2));
  else for (const answer of answers) if (answer.ok) console.log(answer.message);
  const failed = answers.filter((a) => !a.ok);
  if (failed.length > 0) throw new LifecycleError(failed[0]!.code, failed.map((a) => a.message).join("\n  "));
}

export function registerPort(command: Command): void {
  const port = command
    .addHelpText("after", "\nID is a port id, its host device (vnet3) or its MAC; several IDs are sent at once.\n\nExamples:\n  vifguard port migrate-in 52:54:00:00:00:01   # blocks until the port's rules are installed (and, with a controller, it is ready here)\n  vifguard port unplug vnet3\n");
  const verbs: [LifecycleOp, string][] = [
    ["plug", "install the port's rules now (blocks until applied)"],
    ["unplug", "remove every rule of the port (VM stopped or destroyed)"],
    ["migrate-in", "install the port's rules before an incoming VM runs; waits for the desired state to name it and, with a controller, until the controller shows it ready here"],
    ["migrate-out", "remove every rule of the port after the VM left this host"],
  ];
  for (const [op, description] of verbs) {
    const verb = port
      .command(`${op} <id...>`)
      .description(description)
      .option("--socket <path>", "the agent's control socket (default: controlSocket of the agent's config, /etc/vifguard/agent.yaml or $VIFGUARD_AGENT_CONFIG, else /run/vifguard/agent.sock)")
      .option("--timeout <ms>", "how long to wait for the agent", "30000")
      .option("--json", "print the agent's answer as JSON");
    // With a controller, "ready on destination" means the controller recorded it: the source then removes the port.
    if (op === "migrate-in") verb.option("--no-wait-ready", "return once the rules are installed here, without waiting for the controller to show the port ready on this host");
    verb.action((ids: string[], flags: Flags) => send(op, ids, flags));
  }
  port
    .command("status")
    .description("the agent's desired revision and each port's state")
    .option("--socket <path>", "the agent's control socket (default: as for plug)")
    .option("--timeout <ms>", "how long to wait for the agent", "5000")
    .option("--json", "print the agent's answer as JSON", true)
    .action((flags: Flags) => send("status", [undefined], flags));
}
