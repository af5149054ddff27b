// `vifguard controller --config FILE`: runs the controller until SIGTERM/SIGINT.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { parseControllerConfig } from "../controller/config.ts";
import { ControllerConfigError } from "../controller/errors.ts";
import { redact } from "../controller/store/open.ts";
import { startController } from "../controller/server.ts";

export function controllerCommand(command: Command): void {
  command
    .requiredOption("-c, --config <controller.yaml>", "the controller configuration (see docs/controller.md)")
    .option("--check", "validate the configuration and exit")
    .option("--allow-insecure-files", "only warn (loudly) when the admin token file or the SQLite store is readable by group or others")
    .addHelpText("after", "\nExamples:\n  vifguard controller --config /etc/vifguard/controller.yaml\n  vifguard controller --config controller.yaml --check\n\nSeveral replicas may serve one PostgreSQL store (store: postgres://…).")
    .action(async (flags: { config: string; check?: boolean; allowInsecureFiles?: boolean }) => {
      let text: string;
      try {
        text = await readFile(flags.config, "utf8");
      } catch (e) {
        throw new ControllerConfigError(flags.config, [{ path: "(file)", value: flags.config, expected: `a readable YAML file (${(e as Error).message})` }]);
      }
      const config = parseControllerConfig(text, flags.config);
      if (flags.check) {
        console.log(`${flags.config}: valid (listen ${config.listen.host}:${config.listen.port}, store ${redact(config.store)})`);
        return;
      }
      const controller = await startController({ ...config, ...(flags.allowInsecureFiles && { allowInsecureFiles: true }) });
      await new Promise<void>((resolve) => {
        const stop = (): void => void controller.close().then(resolve, resolve);
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
    });
}
