// Bundles the installed command's entry (src/cli/main.ts) into one CommonJS file, dist/cli/vifguard.cjs,
// run after tsc (`npm run build`). Why: a hook's `vifguard port plug` pays for every module Node loads.
// Node starts a CommonJS entry without initialising its ES module loader (≈15 ms of CPU on this class of
// host), and one file holding the short path (main, port-fast, port-send, lifecycle, agent-socket,
// errors: ≈7 kB) skips resolving and reading six. Everything else, `./program.ts` (commander, the
// subcommands) and the YAML parser, stays outside the bundle: loaded lazily from dist/ and node_modules/.
import { build } from "esbuild";

const external = {
  name: "vifguard-lazy",
  setup(b) {
    // The program is tsc's dist/cli/program.js next to the bundle, loaded with import() only off the short path.
    b.onResolve({ filter: /^\.\/program\.ts$/ }, () => ({ path: "./program.js", external: true }));
  },
};

await build({
  entryPoints: ["src/cli/main.ts"],
  outfile: "dist/cli/vifguard.cjs",
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  external: ["yaml"],
  plugins: [external],
  legalComments: "none",
  logLevel: "warning",
});
