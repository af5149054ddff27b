// `vifguard demo`: the guided tour (see src/demo/demo.ts).
import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import { runDemo } from "../demo/demo.ts";

export function registerDemo(command: Command): void {
  command
    .option("--no-migration", "skip the third act (two hypervisors, a controller and two agents)")
    .addHelpText("after", "\nExample:\n  vifguard demo\n\nNeeds root: it builds network namespaces, a bridge and nftables tables, all removed at the end.")
    .action(async (options: { migration: boolean }) => {
      if (process.getuid?.() !== 0) throw new UsageError("the demo needs root: it creates network namespaces, veth pairs, bridges and nftables tables");
      process.exitCode = await runDemo({ log: (line) => console.log(line), migration: options.migration });
    });
}
