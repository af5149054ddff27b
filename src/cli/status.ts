// `vifguard status`: each port with its level, guards enforced and missing, sync state and drop counters.
import { compileMatched } from "../agent/device-match.ts";
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import type { Command } from "commander";
import { LifecycleError, requestLifecycle } from "../agent/lifecycle.ts";
import { agentSocket } from "./agent-socket.ts";
import { UsageError } from "../errors.ts";
import { readPortFile } from "../host/files.ts";
import { parsePortFile } from "../model/port-file.ts";
import type { PortFile } from "../model/types.ts";
import { portPolicies } from "../policy/port-policy.ts";
import { portStatusRows, renderControllerStatus, renderStatus } from "./status-view.ts";
import { succeed } from "../controller/client.ts";
import { addControllerOptions, clientFromFlags, type ControllerFlags } from "./controller-options.ts";
import { addDriverOptions, appliedStatePath, driverFromFlags, type DriverFlags } from "./driver-options.ts";

async function desiredState(flags: DriverFlags & { file?: string }): Promise<PortFile> {
  if (flags.file) return readPortFile(flags.file);
  const path = appliedStatePath(flags);
  let saved: { file: string; text: string };
  try {
    saved = JSON.parse(await readFile(path, "utf8")) as { file: string; text: string };
  } catch {
    throw new UsageError(`no port file given and nothing applied yet with these options (${path} is missing): pass -f ports.yaml`);
  }
  return parsePortFile(saved.text, `${saved.file} (as applied)`);
}

type ControllerStatusFlags = ControllerFlags & { network?: string; host?: string; json?: boolean };

/** The ports the token sees (optionally of one network or host), each with its status, through the typed client. */
async function controllerStatus(flags: ControllerStatusFlags): Promise<void> {
  const api = await clientFromFlags(flags);
  const query = { ...(flags.network && { network: flags.network }), ...(flags.host && { host: flags.host }) };
  const ports = await succeed(api.v1.ports.$get({ query }), `GET ${flags.controller}/v1/ports`);
  const rows = await Promise.all(ports.map(async (p) => [p, await succeed(api.v1.ports[":id"].status.$get({ param: { id: p.id } }), `GET ${flags.controller}/v1/ports/${p.id}/status`)] as const));
  console.log(flags.json ? JSON.stringify(rows.map(([port, status]) => ({ ...port, status })), null, 2) : renderControllerStatus(flags.controller!, rows));
}

/** The running agent's view: its desired revision, source problems and each port's state. */
async function agentStatus(socket: string, json: boolean): Promise<void> {
  const answer = await requestLifecycle(socket, { op: "status", timeoutMs: 5_000 }, 10_000);
  if (!answer.ok) throw new LifecycleError(answer.code, answer.message);
  if (json) return console.log(JSON.stringify(answer.data, null, 2));
  const data = answer.data as { revision: string | null; healthy: boolean; sourceProblem: string | null; states: Record<string, string> };
  const lines = [`agent on ${socket}: ${answer.message}, desired revision ${data.revision ?? "none"}, ${data.healthy ? "healthy" : "NOT healthy"}${data.sourceProblem ? ` (source: ${data.sourceProblem})` : ""}`];
  for (const [port, state] of Object.entries(data.states).sort(([a], [b]) => a.localeCompare(b))) lines.push(`  ${port.padEnd(24)} ${state}`);
  console.log(lines.join("\n"));
}

export function registerStatus(command: Command): void {
  addControllerOptions(addDriverOptions(
    command
      .option("-f, --file <ports.yaml>", "compare with this port file (default: the one last applied with these options)")
      .option("--json", "print JSON"),
  ))
    .option("--network <id>", "with --controller: only this network's ports")
    .option("--host <name>", "with --controller: only the ports bound to this host")
    .addHelpText("after", "\nExamples:\n  vifguard status                 # on an agent host: asks the running agent\n  vifguard status --netns hv1\n  VIFGUARD_TOKEN=... vifguard status --controller http://127.0.0.1:8700 --network public\n")
    .option("--socket <path>", "ask the agent on this control socket (default, when no other option is given: the agent's, if one runs here)")
    .action(async (flags: DriverFlags & ControllerStatusFlags & { file?: string; socket?: string }, self: Command) => {
      if (flags.controller) return controllerStatus(flags);
      // On an agent host, plain `vifguard status` asks the running agent (it knows its driver, netns and prefix).
      const chosen = self.options.some((o) => !["json", "socket"].includes(o.attributeName()) && self.getOptionValueSource(o.attributeName()) === "cli");
      const socket = flags.socket ?? (chosen ? undefined : await agentSocket());
      if (socket !== undefined && (flags.socket !== undefined || existsSync(socket))) return agentStatus(socket, flags.json === true);
      const policies = portPolicies(await desiredState(flags));
      const driver = await driverFromFlags(flags);
      const [observed, counters] = await Promise.all([driver.observe(), driver.counters()]);
      const { units: desired, matches } = compileMatched((p, d) => driver.compile(p, d), policies, observed.devices);
      const rows = portStatusRows(policies, desired, observed.units, counters, driver.capabilities, matches);
      console.log(flags.json ? JSON.stringify(rows, null, 2) : renderStatus(rows, driver.name));
    });
}
