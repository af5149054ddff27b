import assert from "node:assert/strict";
import { test } from "node:test";
import { controllerOn, sqliteBackend } from "./helpers.ts";

test("GET /ui serves the page without a token, outside the OpenAPI document, and the page keeps the token out of URLs", async (t) => {
  const c = await controllerOn(t, await sqliteBackend(t));
  const r = await c.app.request("/ui");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type") ?? "", /text\/html/);
  const html = await r.text();
  assert.match(html, /sessionStorage/);
  assert.match(html, /authorization: "Bearer "/);
  assert.doesNotMatch(html, /[?&]token=/);
  const doc = (await (await c.app.request("/v1/openapi.json")).json()) as { paths: Record<string, unknown> };
  assert.ok(!Object.keys(doc.paths).some((p) => p.startsWith("/ui")));
});
