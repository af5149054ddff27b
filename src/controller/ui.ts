// The web page at /ui/: three static files (src/web/public: index.html, style.css and the bundled
// app.js), read once when the controller starts. Not part of the /v1 API: the page needs no token to
// load; it asks for one and calls /v1 with it. Strict headers: only this origin's scripts, styles
// and API, no framing, no Referer. Effects: reads the files.
import { readFile } from "node:fs/promises";
import type { Context } from "hono";
import type { Api } from "./api/common.ts";
import { ControllerConfigError } from "./errors.ts";

/** src/web/public from src/controller (tsx), dist/web/public from dist/controller (npm run build copies it). */
export const UI_DIR = new URL("../web/public/", import.meta.url);

const FILES = [
  ["index.html", "text/html; charset=utf-8"],
  ["style.css", "text/css; charset=utf-8"],
  ["app.js", "text/javascript; charset=utf-8"],
] as const;

export type UiAssets = ReadonlyMap<string, Readonly<{ body: string; type: string }>>;

export async function loadUiAssets(dir: URL = UI_DIR): Promise<UiAssets> {
  const assets = new Map<string, { body: string; type: string }>();
  for (const [name, type] of FILES) {
    try {
      assets.set(name, { body: await readFile(new URL(name, dir), "utf8"), type });
    } catch (e) {
      throw new ControllerConfigError("web page", [{ path: "(install)", value: new URL(name, dir).pathname, expected: `the web page's file (${(e as Error).message}); a checkout has it in src/web/public, a build copies it to dist/web/public` }]);
    }
  }
  return assets;
}

const HEADERS = {
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  // Small files, and a new controller version may change them: always revalidate.
  "cache-control": "no-cache",
};

/** GET /ui/ (the page), /ui/style.css, /ui/app.js; /ui and / redirect to /ui/. */
export function registerUi(app: Api, assets: UiAssets): void {
  const serve = (name: string) => (c: Context) => {
    const file = assets.get(name)!;
    return c.body(file.body, 200, { ...HEADERS, "content-type": file.type });
  };
  app.get("/", (c) => c.redirect("/ui/", 302));
  app.get("/ui", (c) => c.redirect("/ui/", 301));
  app.get("/ui/", serve("index.html"));
  app.get("/ui/index.html", serve("index.html"));
  app.get("/ui/style.css", serve("style.css"));
  app.get("/ui/app.js", serve("app.js"));
}
