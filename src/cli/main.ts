#!/usr/bin/env node
// The vifguard command. Installed as dist/cli/vifguard.cjs (scripts/bundle-cli.mjs bundles this file and
// the short path below into one CommonJS file; tsc's dist/cli/main.js is the same as an ES module), and
// run through tsx by bin/vifguard in a checkout. `vifguard port plug|unplug|...` (what hooks run at
// every VM start and stop) takes a short path that loads only the control socket's client; everything
// else loads the program (commander, one subcommand). No top-level await: the bundle is CommonJS.

// `vifguard check ... | head` closes our stdout early: that is not an error.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(process.exitCode ?? 0);
  throw error;
});

async function main(argv: readonly string[]): Promise<number> {
  const fast = argv[0] === "port" ? await (await import("./port-fast.ts")).runPortCall(argv.slice(1)) : undefined;
  return fast ?? (await (await import("./program.ts")).main(argv));
}

main(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    // As an uncaught error would: the stack on stderr, exit 1.
    console.error(error);
    process.exitCode = 1;
  },
);
