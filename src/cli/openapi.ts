// `vifguard openapi`: prints the controller API's OpenAPI 3.1 document (as GET /v1/openapi.json
// serves it), for linters and client generators that want a file. Effects: writes --output.
import { writeFile } from "node:fs/promises";
import type { Command } from "commander";
import { openApiDocument } from "../controller/api/document.ts";

export function registerOpenApi(command: Command): void {
  command
    .option("-o, --output <file>", "write the document to this file instead of standard output")
    .addHelpText("after", "\nExamples:\n  vifguard openapi > openapi.json\n  vifguard openapi -o openapi.json && npx openapi-typescript openapi.json -o vifguard-api.d.ts\n")
    .action(async (flags: { output?: string }) => {
      const text = `${JSON.stringify(await openApiDocument(), null, 2)}\n`;
      if (flags.output) await writeFile(flags.output, text);
      else process.stdout.write(text);
    });
}
