// `vifguard agent`: runs the host agent until SIGTERM/SIGINT (the rules stay installed when it stops).
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { startAgent } from "../agent/agent.ts";
import { AgentConfigError, parseAgentConfig } from "../agent/config.ts";

export function registerAgent(command: Command): void {
  command
    .requiredOption("-c, --config <agent.yaml>", "the agent configuration (see docs/agent.md)")
    .option("--check", "validate the configuration and exit")
    .addHelpText("after", "\nExamples:\n  vifguard agent --config /etc/vifguard/agent.yaml\n  vifguard agent --config examples/agent.yaml --check\n\nStopping the agent leaves every rule in place; a restarted agent takes them over.")
    .action(async (flags: { config: string; check?: boolean }) => {
      let text: string;
      try {
        text = await readFile(flags.config, "utf8");
      } catch (e) {
        throw new AgentConfigError(flags.config, [{ path: "(file)", value: flags.config, expected: `a readable YAML file (${(e as Error).message})` }]);
      }
      const config = parseAgentConfig(text, flags.config);
      if (flags.check) {
        console.log(`${flags.config}: valid (driver ${config.driver.name}, source ${config.source.kind === "file" ? config.source.file : config.source.url})`);
        return;
      }
      const agent = await startAgent(config);
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          agent.logger.info({ signal }, `stopping on ${signal}; rules stay installed`);
          void agent.stop().then(resolve, resolve);
        };
        process.once("SIGTERM", () => stop("SIGTERM"));
        process.once("SIGINT", () => stop("SIGINT"));
      });
      agent.logger.flush?.();
    });
}
