// The check that keeps the API and its document together: the validator the API suite runs on every
// exchange really refuses answers and requests that break the served document, and the route groups
// keep the form that gives the typed client every route.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { ADMIN, client, controllerOn, sqliteBackend, validatorOf } from "./helpers.ts";

test("the validator built from the served document fails answers and requests of the wrong shape", async (t) => {
  const c = await controllerOn(t, await sqliteBackend(t));
  const admin = client(c, ADMIN);
  assert.equal((await admin("POST", "/v1/networks", { id: "n", tenant: "carol" })).status, 201);
  const port = await admin("POST", "/v1/ports", { id: "p", network: "n", device: "vnet0", mac: "52:54:00:00:00:01" });
  assert.equal(port.status, 201, "the true answer passes");
  assert.equal((await admin("POST", "/v1/tokens", { role: "admin", name: "ci" })).status, 201);

  // A controller whose answers are tampered with after the handler ran: what the suite's client sees.
  const tampered = (rewrite: (status: number, body: unknown) => { status: number; text: string }) => ({
    app: {
      request: async (...args: Parameters<typeof c.app.request>) => {
        const res = await c.app.request(...args);
        if (String(args[0]) === "/v1/openapi.json") return res; // the validator's own copy of the document
        const text = await res.text();
        const out = rewrite(res.status, text ? JSON.parse(text) : undefined);
        return new Response(out.text, { status: out.status, headers: { "content-type": "application/json" } });
      },
    },
  });
  const json = (status: number, body: unknown) => ({ status, text: JSON.stringify(body) });
  const cases: [string, Parameters<typeof tampered>[0], string, string, unknown, RegExp][] = [
    ["protection a number", (s, b) => json(s, { ...(b as object), protection: 7 }), "GET", "/v1/ports/p", undefined, /body\/protection must be/],
    ["a required field missing", (s, b) => { const { migration: _, ...rest } = b as Record<string, unknown>; return json(s, rest); }, "GET", "/v1/ports/p", undefined, /must have required property 'migration'/],
    ["a timestamp that is not ISO 8601", (s, b) => json(s, (b as { createdAt: string }[]).map((x) => ({ ...x, createdAt: "yesterday" }))), "GET", "/v1/tokens", undefined, /createdAt must match format "date-time"/],
    ["an undeclared status", (_, b) => json(418, b), "GET", "/v1/config", undefined, /status 418 is not declared/],
    ["an empty answer where a body is declared", () => ({ status: 200, text: "" }), "GET", "/v1/config", undefined, /the body is not JSON/],
    ["an error body without its code", () => json(404, { message: "gone", issues: [] }), "GET", "/v1/networks/nope", undefined, /must have required property 'code'/],
    ["a request meant to be valid with a wrong type", (_, b) => json(201, b), "POST", "/v1/ports", { id: "q", network: "n", device: "vnet1", mac: "52:54:00:00:00:02", ips: "10.0.0.1" }, /request body\/ips must be array/],
    ["a query parameter the document does not know", (s, b) => json(s, b), "GET", "/v1/ports?colour=red", undefined, /query parameter colour is not in the document/],
  ];
  for (const [name, rewrite, method, path, body, expected] of cases) {
    await assert.rejects(client(tampered(rewrite), ADMIN)(method, path, body), (e: Error) => {
      assert.match(e.message, /breaks the OpenAPI document/, name);
      assert.match(e.message, expected, name);
      return true;
    }, name);
  }
  const validator = await validatorOf(c);
  // A 204 with a body cannot be built as a fetch Response; the check itself refuses it.
  assert.match(validator.checkResponse({ method: "DELETE", url: "/v1/ports/p", status: 204, contentType: "application/json", text: "{}" }).join(), /declares no body/);
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  assert.equal(validator.document.info.version, pkg.version, "info.version is the package's version");
});

test("route groups return their chain of app.openapi() calls, so the typed client has every route", () => {
  const dir = new URL("../../src/controller/api/", import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".ts"))) {
    const text = readFileSync(new URL(file, dir), "utf8");
    const loose = text.split("\n").map((line, i) => [i + 1, line] as const).filter(([, line]) => /^\s*[A-Za-z_$][\w$]*\.openapi\(/.test(line));
    assert.deepEqual(loose.map(([n, line]) => `${file}:${n}: ${line.trim().slice(0, 60)}`), [], "register routes as `return app.openapi(…).openapi(…)` (see docs/controller.md, Typed client)");
  }
});
