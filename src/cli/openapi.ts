// `vifguard openapi`: prints the controller API's OpenAPI 3.1 document (as GET /v1/openapi.json
// serves it), for linters and client generators that want a file.
import type { Command } from "commander";
import { openApiDocument } from "../controller/api/document.ts";

export function registerOpenApi(command: Command): void {
  command
    .addHelpText("after", "\nExample:\n  vifguard openapi > openapi.json\n")
    .action(async () => {
      console.log(JSON.stringify(await openApiDocument(), null, 2));
    });
}
