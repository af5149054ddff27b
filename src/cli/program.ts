// The vifguard command's program: parses arguments, runs one subcommand, turns typed errors into messages.
// Subcommands load lazily: `vifguard port plug` (run by hooks at every VM start) loads the port
// command and the control-socket client, not the controller, the drivers or the demo.
import { Command, CommanderError } from "commander";
import { VifguardError } from "../errors.ts";
import { VERSION } from "../version.ts";

/** One subcommand: its name and description (for the top-level help) and how to load the rest of it. */
type Subcommand = Readonly<{ name: string; description: string; load: () => Promise<(command: Command) => void> }>;

export const SUBCOMMANDS: readonly Subcommand[] = [
  { name: "check", description: "Validate a port file and print the effective policy of each port (nothing on the host changes)", load: async () => (await import("./check.ts")).registerCheck },
  { name: "explain", description: "Say, for every frame in a pcap capture, whether vifguard allows or drops it on a port, and why", load: async () => (await import("./explain.ts")).registerExplain },
  { name: "apply", description: "Make the host's filtering match a port file: install new ports, replace changed ones, remove ports no longer in it", load: async () => (await import("./apply.ts")).registerApply },
  { name: "status", description: "Show each port: level, guards enforced, guards the driver cannot enforce, whether its rules are installed, and drop counters; with --controller, as the controller sees them", load: async () => (await import("./status.ts")).registerStatus },
  { name: "events", description: "Show spoof events (which port tried what, against whom, when, how often), from the controller or the agent on this host; --follow for new ones", load: async () => (await import("./events.ts")).registerEvents },
  { name: "remove", description: "Remove every rule, set, chain, flow or binding vifguard owns (nothing else is touched)", load: async () => (await import("./remove.ts")).registerRemove },
  { name: "conformance", description: "Build a sandbox hypervisor (network namespaces), protect its ports with a driver, send Eve's attacks and the legit twins as real frames, and check every outcome against the reference evaluator", load: async () => (await import("./conformance.ts")).registerConformance },
  { name: "demo", description: "Show Eve's attacks getting through with protection off, then stopped by vifguard's nftables driver while Alice and Bob keep working, then a live migration under attack; cleans up after itself", load: async () => (await import("./demo.ts")).registerDemo },
  { name: "agent", description: "Run the host agent: enforce the desired state from a port file or the controller, repair drift, fail closed, serve /metrics", load: async () => (await import("./agent.ts")).registerAgent },
  { name: "port", description: "Tell the running agent about a port's lifecycle (for libvirt hooks, Xen vif scripts, OVS watchers)", load: async () => (await import("./port.ts")).registerPort },
  { name: "libvirt", description: "libvirt helpers for operators who write domain XML themselves", load: async () => (await import("./libvirt.ts")).registerLibvirt },
  { name: "controller", description: "Run the controller: REST API for networks, ports, allowed pairs, levels and the global switch; agents watch their desired state", load: async () => (await import("./controller.ts")).controllerCommand },
  { name: "openapi", description: "Print the controller API's OpenAPI 3.1 document (what GET /v1/openapi.json serves)", load: async () => (await import("./openapi.ts")).registerOpenApi },
];

function rootCommand(): Command {
  return new Command("vifguard")
    .description("Stops virtual machines from spoofing each other: per-port MAC, IP, ARP, ND, RA, DHCP and VLAN guards")
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
}

/**
 * The program for these arguments. Every subcommand is listed (for help and "did you mean"), but only the
 * one named in argv (or, with no argv, all of them) is loaded with its options and action; the others stay stubs.
 */
export async function buildProgram(argv?: readonly string[]): Promise<Command> {
  const program = rootCommand();
  const wanted = argv === undefined ? undefined : argv[0] === "help" ? argv[1] : argv[0];
  for (const sub of SUBCOMMANDS) {
    const command = program.command(sub.name).description(sub.description);
    if (argv === undefined || sub.name === wanted) (await sub.load())(command);
  }
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await (await buildProgram(argv)).parseAsync(argv as string[], { from: "user" });
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
