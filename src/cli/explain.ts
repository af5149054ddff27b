// `vifguard explain`: the reference verdict, with its reason, for every frame of a capture.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { CaptureError, UsageError } from "../errors.ts";
import { readPortFile } from "../host/files.ts";
import { evaluate, DIRECTIONS, type Direction } from "../policy/evaluate.ts";
import { parseFrame } from "../policy/frame.ts";
import { readPcap } from "../policy/pcap.ts";
import { portPolicies } from "../policy/port-policy.ts";
import { summarizeFrame } from "../policy/summary.ts";

const LINKTYPE_ETHERNET = 1;

export function registerExplain(command: Command): void {
  command
    .requiredOption("-f, --file <ports.yaml>", "the port file")
    .requiredOption("--port <id>", "the port the frames were sent from (or delivered to)")
    .requiredOption("--pcap <file>", "a classic libpcap capture with Ethernet frames (tcpdump -w, wireshark 'pcap')")
    .option("--direction <dir>", `from-vm (the guest sent them) or to-vm (delivered to the guest)`, "from-vm")
    .addHelpText("after", "\nExample:\n  tcpdump -i vnet1 -w eve.pcap\n  vifguard explain -f examples/ports.yaml --port eve-0 --pcap eve.pcap\n\nOutput: one line per frame: number, summary, verdict (allow/drop), reason (the guard).")
    .action(async (options: { file: string; port: string; pcap: string; direction: string }) => {
      if (!(DIRECTIONS as readonly string[]).includes(options.direction)) {
        throw new UsageError(`--direction: got "${options.direction}", expected one of ${DIRECTIONS.join(", ")}`);
      }
      const policies = portPolicies(await readPortFile(options.file));
      const policy = policies.find((p) => p.port === options.port);
      if (!policy) throw new UsageError(`--port: got "${options.port}", expected one of the ports in ${options.file}: ${policies.map((p) => p.port).join(", ")}`);
      let bytes: Uint8Array;
      try {
        bytes = await readFile(options.pcap);
      } catch (cause) {
        throw new CaptureError(`Cannot read ${options.pcap}: ${(cause as Error).message}`, { cause });
      }
      const capture = readPcap(bytes);
      if (capture.linkType !== LINKTYPE_ETHERNET) {
        throw new CaptureError(`${options.pcap}: link type ${capture.linkType}, expected 1 (Ethernet); capture on the port device, not on "any"`);
      }
      const counts = { allow: 0, drop: 0 };
      for (const packet of capture.packets) {
        const frame = parseFrame(packet.bytes);
        const decision = evaluate(policy, frame, options.direction as Direction);
        counts[decision.verdict]++;
        console.log(`${String(packet.index).padStart(5)}  ${summarizeFrame(frame)}  ${decision.verdict.toUpperCase()} ${decision.reason}  (${decision.detail})`);
      }
      console.log(`${capture.packets.length} frames: ${counts.allow} allowed, ${counts.drop} dropped (port ${policy.port}, level ${policy.level}, ${options.direction})`);
    });
}
