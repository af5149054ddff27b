// `vifguard conformance`: attack a driver with real frames in a sandbox hypervisor and compare every
// outcome with the reference evaluator.
import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import { installSandboxPolicy, renderReport, runConformance } from "../conformance/run.ts";
import { Sandbox } from "../conformance/sandbox.ts";
import { createDriver } from "../drivers/registry.ts";

export function registerConformance(program: Command): void {
  program
    .command("conformance")
    .description("Build a sandbox hypervisor (network namespaces), protect its ports with a driver, send Eve's attacks and the legit twins as real frames, and check every outcome against the reference evaluator")
    .option("--driver <name>", "the driver under test", "nftables")
    .option("--no-flows", "skip the legitimate flows with real network stacks (ping, TCP, DHCP, DAD, VIP takeover)")
    .addHelpText("after", "\nExample:\n  vifguard conformance --driver nftables\n\nPrints one line per case and a final line 'N passed, M failed'; exits 1 if any case failed.\nCases a driver declares it cannot enforce show as 'not enforced (declared)'. Needs root.")
    .action(async (options: { driver: string; flows: boolean }) => {
      if (options.driver !== "nftables") {
        throw new UsageError(`--driver: the kit's sandbox is a Linux bridge in a network namespace, which only the nftables driver filters; the ${options.driver} driver is attacked with real frames by its own tests in test/dataplane/${options.driver}.test.ts`);
      }
      if (process.getuid?.() !== 0) throw new UsageError("conformance needs root: it creates network namespaces, veth pairs and a bridge");
      const sandbox = await Sandbox.create();
      const stop = () => void sandbox.destroy().finally(() => process.exit(130));
      process.once("SIGINT", stop);
      try {
        const driver = await createDriver(options.driver, { netns: sandbox.hypervisor, prefix: `vgc${sandbox.id}` });
        await driver.probe();
        await installSandboxPolicy(driver, sandbox);
        const report = await runConformance({ driver, sandbox, flows: options.flows });
        console.log(renderReport(report));
        if (report.failed > 0) process.exitCode = 1;
      } finally {
        process.off("SIGINT", stop);
        await sandbox.destroy();
      }
    });
}
