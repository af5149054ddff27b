#!/usr/bin/env node
// The vifguard command (the installed bin: compiled to dist/cli/main.js; bin/vifguard runs it through tsx in a checkout).
// `vifguard port plug|unplug|...` (what hooks run at every VM start and stop) takes a short path that
// loads only the control socket's client; everything else loads the program (commander, one subcommand).

// `vifguard check ... | head` closes our stdout early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});
const argv = process.argv.slice(2);
const fast = argv[0] === "port" ? await (await import("./port-fast.ts")).runPortCall(argv.slice(1)) : undefined;
process.exitCode = fast ?? (await (await import("./program.ts")).main(argv));
