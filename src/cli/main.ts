// The vifguard command: parses arguments, runs one subcommand, turns typed errors into messages.
import { Command, CommanderError } from "commander";
import { VifguardError } from "../errors.ts";
import { registerAgent } from "./agent.ts";
import { registerApply } from "./apply.ts";
import { registerCheck } from "./check.ts";
import { registerConformance } from "./conformance.ts";
import { registerDemo } from "./demo.ts";
import { controllerCommand } from "./controller.ts";
import { registerExplain } from "./explain.ts";
import { registerLibvirt } from "./libvirt.ts";
import { registerPort } from "./port.ts";
import { registerRemove } from "./remove.ts";
import { registerStatus } from "./status.ts";

export function buildProgram(): Command {
  const program = new Command("vifguard")
    .description("Stops virtual machines from spoofing each other: per-port MAC, IP, ARP, ND, RA, DHCP and VLAN guards")
    .version("0.1.0")
    .showHelpAfterError()
    .exitOverride();
  registerCheck(program);
  registerExplain(program);
  registerApply(program);
  registerStatus(program);
  registerRemove(program);
  registerConformance(program);
  registerDemo(program);
  registerAgent(program);
  registerPort(program);
  registerLibvirt(program);
  controllerCommand(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv as string[], { from: "user" });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode;
    if (error instanceof VifguardError) {
      console.error(`vifguard: ${error.message}`);
      return error.code === "VG_USAGE" ? 2 : 1;
    }
    throw error;
  }
}

// `vifguard check ... | head` closes our stdout early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});
process.exitCode = await main(process.argv.slice(2));
