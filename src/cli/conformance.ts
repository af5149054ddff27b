// `vifguard conformance`: attack a driver with real frames in a sandbox hypervisor and compare every
// outcome with the reference evaluator.
import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import { installSandboxPolicy, renderReport, runConformance } from "../conformance/run.ts";
import { Sandbox } from "../conformance/sandbox.ts";
import { createDriver, DEFAULT_DRIVER, driverModule, driverNames } from "../drivers/registry.ts";

const HELP = `
Examples:
  vifguard conformance --driver nftables
  vifguard conformance --driver ovs --no-flows

The sandbox's switch follows the driver (its module's \`sandbox\`):
  nftables  a Linux bridge br0 in the namespace vgcXXXXXX-hv (the driver runs there, as with --netns)
  ovs       a userspace OVS bridge br0: a private ovsdb-server and ovs-vswitchd, in the namespace
            vgcXXXXXX-ovs; MAC learning is off, so NORMAL floods unicast
  libvirt   a Linux bridge vgcXXXXXXbr and ports vgcXXXXXXa/e/b/g in the root namespace (filter
            bindings act on root-namespace devices only); libvirtd must be running
Guests are namespaces vgcXXXXXX-alice, -eve, -bob and -gw; everything is removed at the end, also
after a failure or Ctrl-C (the driver's removeAll first, which matters for libvirt's bindings).

Prints one line per case and a final line 'N passed, M failed'; exits 1 if any case failed.
Cases a driver declares it cannot enforce show as 'not enforced (declared)'. Needs root.`;

export function registerConformance(command: Command): void {
  command
    .option("--driver <name>", `the driver under test: ${driverNames().join(", ")}`, DEFAULT_DRIVER)
    .option("--no-flows", "skip the legitimate flows with real network stacks (ping, TCP, DHCP, DAD, VIP takeover)")
    .addHelpText("after", HELP)
    .action(async (options: { driver: string; flows: boolean }) => {
      const name = options.driver;
      const module = driverModule(name);
      if (process.getuid?.() !== 0) throw new UsageError("conformance needs root: it creates network namespaces, veth pairs and a bridge");
      const sandbox = await Sandbox.create({ switch: module.sandbox });
      try {
        const driver = await createDriver(name, sandbox.driverSettings());
        await driver.probe();
        sandbox.onDestroy(async () => {
          await driver.removeAll();
          driver.close?.();
        });
        await installSandboxPolicy(driver, sandbox);
        const report = await runConformance({ driver, sandbox, flows: options.flows });
        console.log(renderReport(report));
        if (report.failed > 0) process.exitCode = 1;
      } finally {
        await sandbox.destroy();
      }
    });
}
