// `vifguard check`: validate a port file and print each port's effective policy.
import type { Command } from "commander";
import { readPortFile } from "../host/files.ts";
import { describePolicy } from "../policy/describe.ts";
import { portPolicies } from "../policy/port-policy.ts";

export function registerCheck(command: Command): void {
  command
    .requiredOption("-f, --file <ports.yaml>", "the port file (YAML or JSON)")
    .option("--json", "print the policies as JSON")
    .addHelpText("after", "\nExample:\n  vifguard check -f examples/ports.yaml\n\nExits 1 and names every bad field (e.g. ports[3].allowed[0].ip) when the file is invalid.")
    .action(async (options: { file: string; json?: boolean }) => {
      const file = await readPortFile(options.file);
      const policies = portPolicies(file);
      if (options.json) {
        const plain = policies.map((p) => ({ ...p, bindings: p.bindings.map((b) => ({ mac: b.mac, prefix: b.prefix.text })) }));
        console.log(JSON.stringify(plain, null, 2));
        return;
      }
      console.log(policies.map(describePolicy).join("\n\n"));
      const off = file.config.antiSpoofing ? "" : " (global switch antiSpoofing is OFF: every port is at level off)";
      console.log(`\n${options.file}: valid, ${file.networks.length} networks, ${file.ports.length} ports${off}`);
    });
}
