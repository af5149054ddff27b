// Bundles the web page (src/web/app/main.tsx, preact) with esbuild into src/web/public/app.js, the
// file the controller serves at /ui/app.js. The bundle is committed, so a fresh clone, `bin/vifguard
// controller` and the packages need no build step and no esbuild at run time; test/web/bundle.test.ts
// fails when it is not what its sources build to. Run: `npm run build:web`. Effects: writes the file.
import { writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BUNDLE_PATH = fileURLToPath(new URL("./public/app.js", import.meta.url));

/** The bundle as its sources build it now (nothing written). Deterministic for one esbuild version. */
export async function bundleWeb(): Promise<string> {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: ["src/web/app/main.tsx"],
    bundle: true,
    write: false,
    format: "esm",
    // Browsers of the last few years: no transpiling of classes, async or optional chaining.
    target: ["es2020", "chrome100", "firefox100", "safari15"],
    platform: "browser",
    minify: true,
    jsx: "automatic",
    jsxImportSource: "preact",
    charset: "utf8",
    legalComments: "eof",
    banner: { js: "/* vifguard's web page (src/web/app), built by src/web/build.ts. Includes preact, MIT License, Copyright (c) 2015-present Jason Miller. */" },
    logLevel: "silent",
  });
  return result.outputFiles[0]!.text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = await bundleWeb();
  await writeFile(BUNDLE_PATH, text);
  console.log(`${BUNDLE_PATH}: ${Buffer.byteLength(text)} bytes`);
}
