#!/usr/bin/env node
// The vifguard command (the installed bin: compiled to dist/cli/main.js; bin/vifguard runs it through tsx in a checkout).
import { main } from "./program.ts";

// `vifguard check ... | head` closes our stdout early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});
process.exitCode = await main(process.argv.slice(2));
