// `vifguard libvirt filterref`: the <filterref> a domain's <interface> needs to get a port's policy
// from vifguard's shared filters, for operators who define domains themselves.
import type { Command } from "commander";
import { UsageError } from "../errors.ts";
import { filterrefSnippet } from "../drivers/libvirt/compile.ts";
import { readPortFile } from "../host/files.ts";
import { checkPrefix } from "./driver-options.ts";
import { portPolicies } from "../policy/port-policy.ts";

export function registerLibvirt(libvirt: Command): void {
  libvirt
    .command("filterref")
    .description("Print the <filterref> element for one port, to put inside the domain's <interface>")
    .requiredOption("-f, --file <ports.yaml>", "the port file that holds the port")
    .requiredOption("--port <id>", "the port's id in the file")
    .option("--prefix <prefix>", "vifguard's filter prefix on this host", "vifguard")
    .option("--define", "also define (or update in place) vifguard's shared filters in libvirt, which the element references")
    .option("--uri <uri>", "with --define: the libvirt connection", "nwfilter:///system")
    .addHelpText(
      "after",
      [
        "",
        "Example:",
        "  vifguard libvirt filterref -f examples/ports.yaml --port alice-0",
        "",
        "The element references one of vifguard's shared filters (<prefix>-full, -full-no-ipv4, -mac, -off)",
        "with the port's MACs and address bindings as parameters. Those filters must exist in libvirt:",
        "pass --define once per host (or let `vifguard apply --driver libvirt` or the agent define them).",
        "The guest then gets the policy when the domain starts; a change to the port means a new element",
        "and a domain update (virsh update-device). Ports applied by the agent need no element: it binds",
        "them with nwfilter bindings itself.",
      ].join("\n"),
    )
    .action(async (options: { file: string; port: string; prefix: string; define?: boolean; uri: string }) => {
      checkPrefix(options.prefix);
      const policies = portPolicies(await readPortFile(options.file));
      const policy = policies.find((p) => p.port === options.port);
      if (!policy) {
        const known = policies.map((p) => p.port);
        const listed = known.length > 10 ? `${known.slice(0, 10).join(", ")}, … (${known.length} ports)` : known.join(", ");
        throw new UsageError(`--port: no port "${options.port}" in ${options.file}; it has: ${listed || "no ports"}`);
      }
      const prefix = `${options.prefix}-`;
      if (options.define) {
        const { createLibvirtDriver } = await import("../drivers/libvirt/index.ts");
        const driver = createLibvirtDriver({ prefix: options.prefix, uri: options.uri });
        await driver.probe();
        const defined = await driver.ensureFilters(true);
        console.error(defined.length > 0 ? `defined ${defined.length} filters: ${defined.join(", ")}` : `vifguard's filters (${prefix}*) are current in ${options.uri}`);
      }
      process.stdout.write(filterrefSnippet(policy, prefix));
    });
}
