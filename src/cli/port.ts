// `vifguard port plug|unplug|migrate-in|migrate-out|status`: lifecycle requests to the running agent
// over its control socket (hooks call these; they block until the agent has applied the change).
// Hooks' calls take the short path in port-fast.ts; this is the same command for --help and errors.
import type { Command } from "commander";
import type { LifecycleOp } from "../agent/lifecycle.ts";
import { sendPort as send, type PortFlags as Flags } from "./port-send.ts";

export function registerPort(command: Command): void {
  const port = command
    .addHelpText("after", "\nID is a port id, its host device (vnet3) or its MAC; several IDs are sent at once. A port that names no\ndevice is found by MAC (its tap carries the guest MAC with first octet fe), or on the --device given for its MAC.\n\nExamples:\n  vifguard port migrate-in 52:54:00:00:00:01   # blocks until the port's rules are installed (and, with a controller, it is ready here)\n  vifguard port unplug vnet3\n");
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
    if (op === "plug" || op === "migrate-in") verb.option("--device <mac=device...>", "the host device the hypervisor gave a guest MAC (libvirt's <target dev>), for ports that name no device: e.g. 52:54:00:12:34:56=vnet3");
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
