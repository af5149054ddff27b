// The committed bundle (src/web/public/app.js) is what its sources build to now, and the page loads
// nothing from another origin (it must work without internet).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { BUNDLE_PATH, bundleWeb } from "../../src/web/build.ts";
import { loadUiAssets } from "../../src/controller/ui.ts";

test("src/web/public/app.js is up to date with src/web/app (else: npm run build:web, and commit it)", async () => {
  const built = await bundleWeb();
  const committed = await readFile(BUNDLE_PATH, "utf8");
  assert.ok(built === committed, `src/web/public/app.js (${committed.length} chars) differs from what src/web/app builds to (${built.length} chars): run npm run build:web and commit the result`);
});

test("the page's files name no other origin: no CDN, no web fonts", async () => {
  for (const [name, { body }] of await loadUiAssets()) {
    // XML namespace names (preact creates SVG elements in the SVG namespace) are names, never fetched.
    const urls = (body.match(/(?:https?:)?\/\/[a-z0-9.-]+\.[a-z]{2,}[^\s"'`)]*/gi) ?? []).filter((u) => !/^http:\/\/www\.w3\.org\/(2000\/svg|1998\/Math\/MathML|1999\/xhtml|1999\/xlink)$/.test(u));
    assert.deepEqual(urls, [], `${name} refers to another origin`);
  }
});
