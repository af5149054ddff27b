// The controller serves the web page at /ui/ without a token (the page asks for one), with strict
// headers, and the page stays out of the OpenAPI document; /v1 still wants its token.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { startController } from "../../src/controller/server.ts";
import { ADMIN, cleanup, sqliteBackend } from "./helpers.ts";

test("GET /ui/ serves the page, its style and its bundle; / and /ui redirect; not in the OpenAPI document", async (t) => {
  const backend = await sqliteBackend(t);
  const c = await startController({ store: backend.url, bootstrapTokens: [ADMIN], listen: { host: "127.0.0.1", port: 0 }, logLevel: "silent" });
  cleanup(t, () => c.close());
  const files: [string, string, RegExp][] = [
    ["/ui/", "index.html", /^text\/html/],
    ["/ui/style.css", "style.css", /^text\/css/],
    ["/ui/app.js", "app.js", /^text\/javascript/],
  ];
  for (const [path, file, type] of files) {
    const answer = await fetch(`${c.url}${path}`);
    assert.equal(answer.status, 200, path);
    assert.match(answer.headers.get("content-type") ?? "", type, path);
    assert.equal(await answer.text(), await readFile(new URL(`../../src/web/public/${file}`, import.meta.url), "utf8"), path);
    const csp = answer.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/, path);
    assert.match(csp, /script-src 'self'/, path);
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.equal(answer.headers.get("referrer-policy"), "no-referrer");
    assert.equal(answer.headers.get("x-content-type-options"), "nosniff");
  }
  for (const [from, status] of [["/", 302], ["/ui", 301]] as const) {
    const answer = await fetch(`${c.url}${from}`, { redirect: "manual" });
    assert.equal(answer.status, status, from);
    assert.equal(answer.headers.get("location"), "/ui/", from);
  }
  assert.equal((await fetch(`${c.url}/ui/nothing.js`)).status, 404);
  assert.equal((await fetch(`${c.url}/v1/ports`)).status, 401, "the API still wants a token");
  const document = (await (await fetch(`${c.url}/v1/openapi.json`)).json()) as { paths: Record<string, unknown> };
  assert.deepEqual(Object.keys(document.paths).filter((p) => !p.startsWith("/v1/")), [], "only /v1 paths are documented");
});
