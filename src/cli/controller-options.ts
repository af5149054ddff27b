// Command-line options that point a command at a controller (--controller URL, --token-file FILE or
// $VIFGUARD_TOKEN), shared by the commands that talk to one (status --controller, events). Effects:
// reads the token file.
import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { controllerClient, type ControllerClient } from "../controller/client.ts";
import { UsageError } from "../errors.ts";

export type ControllerFlags = { controller?: string; tokenFile?: string };

export function addControllerOptions(command: Command, required = false): Command {
  const url = "the controller's URL, e.g. http://127.0.0.1:8700";
  return (required ? command.requiredOption("--controller <url>", url) : command.option("--controller <url>", url))
    .option("--token-file <file>", "a file holding the bearer token (default: $VIFGUARD_TOKEN)");
}

/** The typed client for --controller, with the token of --token-file or $VIFGUARD_TOKEN. */
export async function clientFromFlags(flags: ControllerFlags): Promise<ControllerClient> {
  if (!flags.controller) throw new UsageError("--controller: missing, expected the controller's URL, e.g. http://127.0.0.1:8700");
  if (!/^https?:\/\/[^/]+/.test(flags.controller)) throw new UsageError(`--controller: got "${flags.controller}", expected an http:// or https:// URL`);
  let token = process.env.VIFGUARD_TOKEN?.trim();
  if (flags.tokenFile) {
    try {
      token = (await readFile(flags.tokenFile, "utf8")).trim();
    } catch (e) {
      throw new UsageError(`--token-file: cannot read "${flags.tokenFile}" (${(e as Error).message}), expected a file holding the bearer token`);
    }
  }
  if (!token) throw new UsageError("no token: pass --token-file FILE or set VIFGUARD_TOKEN (a token from POST /v1/tokens, or the bootstrap admin token)");
  return controllerClient(flags.controller, token);
}
