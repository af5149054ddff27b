// Test helpers: a controller on a temp SQLite file or on a PostgreSQL server the test starts itself
// (initdb into a temp dir owned by postgres, pg_ctl on a free port, stopped in t.after()), and a
// small JSON client over app.request().
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, rmSync, chownSync } from "node:fs";
import { AssertionError } from "node:assert/strict";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import pg from "pg";
import { startController, type RunningController, type StartOptions } from "../../src/controller/server.ts";
import { OpenApiValidator } from "./openapi-validator.ts";

export const ADMIN = "admin-bootstrap-token-0123456789";

const stacks = new WeakMap<TestContext, (() => unknown)[]>();

/** Like t.after(), but last in, first out: controllers close before the database server stops. */
export function cleanup(t: TestContext, fn: () => unknown): void {
  let stack = stacks.get(t);
  if (!stack) {
    const fns: (() => unknown)[] = [];
    stacks.set(t, (stack = fns));
    t.after(async () => {
      for (const f of fns.reverse()) await f();
    });
  }
  stack.push(fn);
}

export type Backend = Readonly<{ name: "sqlite" | "postgres"; url: string }>;

export async function sqliteBackend(t: TestContext): Promise<Backend> {
  const dir = mkdtempSync(join(tmpdir(), "vg-controller-"));
  cleanup(t, () => rmSync(dir, { recursive: true, force: true }));
  return { name: "sqlite", url: `sqlite://${join(dir, "controller.db")}` };
}

/** runuser runs the server as postgres (it lives in /usr/sbin, often not on a non-login PATH). */
function runuser(): string | undefined {
  return ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].find((p) => existsSync(p));
}

function pgBin(name: string): string | undefined {
  const onPath = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).stdout.trim();
  if (onPath) return onPath;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  for (const version of readdirSync(root).sort().reverse()) {
    const bin = join(root, version, "bin", name);
    if (existsSync(bin)) return bin;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Why PostgreSQL tests cannot run here, or undefined if they can. */
export function postgresUnavailable(): string | undefined {
  if (!pgBin("initdb") || !pgBin("pg_ctl")) return "PostgreSQL server binaries (initdb, pg_ctl) not found";
  if (process.getuid?.() !== 0) return "not root: cannot run initdb as the postgres user";
  if (!runuser()) return "runuser not found: cannot run initdb as the postgres user";
  if (spawnSync("id", ["-u", "postgres"]).status !== 0) return "no postgres user";
  return undefined;
}

/** A throwaway PostgreSQL server (initdb into a temp dir owned by postgres, pg_ctl on a free port). */
export type ThrowawayPostgres = Readonly<{ url: string; stop(): void }>;

/** Starts one (the tests and bench/controller-scale.ts); stop() stops it and removes its directory. */
export async function startThrowawayPostgres(): Promise<ThrowawayPostgres> {
  const dir = mkdtempSync(join(tmpdir(), "vg-pg-"));
  const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
  const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
  chownSync(dir, uid, gid);
  const data = join(dir, "data");
  const port = await freePort();
  const asPostgres = (bin: string, args: string[]): void => {
    const r = spawnSync(runuser()!, ["-u", "postgres", "--", bin, ...args], { encoding: "utf8", cwd: dir });
    if (r.status !== 0) throw new Error(`${bin} ${args.join(" ")} failed (${r.status}): ${r.error?.message ?? ""}${r.stderr}${r.stdout}`);
  };
  const stop = (): void => {
    if (existsSync(join(data, "postmaster.pid"))) {
      spawnSync(runuser()!, ["-u", "postgres", "--", pgBin("pg_ctl")!, "-D", data, "-m", "immediate", "-w", "stop"], { encoding: "utf8", cwd: dir });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    asPostgres(pgBin("initdb")!, ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
    asPostgres(pgBin("pg_ctl")!, ["-D", data, "-l", join(dir, "pg.log"), "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "-w", "start"]);
    const admin = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
    await admin.connect();
    await admin.query("create database vifguard");
    await admin.end();
  } catch (error) {
    stop();
    throw error;
  }
  return { url: `postgres://postgres@127.0.0.1:${port}/vifguard`, stop };
}

/**
 * Starts a throwaway PostgreSQL server for this test (stopped in t.after(), even on failure) and
 * returns a URL to a fresh database; skips the test with the reason if it cannot (fails under CI=true).
 */
export async function postgresBackend(t: TestContext): Promise<Backend | undefined> {
  const why = postgresUnavailable();
  if (why) {
    if (process.env.CI === "true") throw new Error(`PostgreSQL tests cannot run under CI: ${why}`);
    t.skip(why);
    return undefined;
  }
  const server = await startThrowawayPostgres();
  cleanup(t, () => server.stop());
  return { name: "postgres", url: server.url };
}

export async function controllerOn(t: TestContext, backend: Backend, options: Partial<StartOptions> = {}): Promise<RunningController> {
  const c = await startController({ store: backend.url, bootstrapTokens: [ADMIN], logLevel: "silent", listen: { host: "127.0.0.1", port: 0 }, watchPollMs: 200, ...options });
  cleanup(t, () => c.close());
  return c;
}

export type Answer = Readonly<{ status: number; body: any; headers: Headers }>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** What the JSON client needs of a controller: its app's request(). */
export type ApiLike = Readonly<{ app: Pick<RunningController["app"], "request"> }>;

const validators = new WeakMap<object, Promise<OpenApiValidator>>();

/** The validator built from the document this app serves (GET /v1/openapi.json), made once per app. */
export function validatorOf(c: ApiLike): Promise<OpenApiValidator> {
  let v = validators.get(c.app);
  if (!v) {
    v = (async () => new OpenApiValidator((await (await c.app.request("/v1/openapi.json")).json()) as Record<string, unknown>))();
    validators.set(c.app, v);
  }
  return v;
}

/**
 * A JSON client over app.request() (no socket) with a bearer token. Every answer is checked against
 * the served OpenAPI document (status and body), and so is every request meant to be valid (all but
 * those answered 400 or 413, and bodies given as raw text); a violation fails the calling test.
 * With VG_OPENAPI_REPORT=FILE every exchange and its violations are appended to FILE instead (to count them).
 */
export function client(c: ApiLike, token: string | undefined) {
  return async (method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<Answer> => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const res = await c.app.request(path, { method, headers, body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body), ...init });
    const text = await res.text();
    const validator = await validatorOf(c);
    const exchange = { method, url: path, requestBody: body, status: res.status, contentType: res.headers.get("content-type"), text };
    const violations = validator.checkResponse(exchange);
    if (![400, 401, 413].includes(res.status) && typeof body !== "string") violations.push(...validator.checkRequest(exchange));
    const report = process.env.VG_OPENAPI_REPORT;
    if (report) appendFileSync(report, `${violations.length ? "BAD" : "ok"} ${method} ${path} → ${res.status}${violations.map((v) => `\n  ${v}`).join("")}\n`);
    else if (violations.length > 0) {
      throw new AssertionError({ message: `${method} ${path} breaks the OpenAPI document:\n  ${violations.join("\n  ")}` });
    }
    return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
  };
}

/** Creates a token of `role` through the API and returns its secret. */
export async function token(c: ApiLike, role: "admin" | "tenant" | "agent", who?: string): Promise<string> {
  const init = role === "tenant" ? { role, tenant: who } : role === "agent" ? { role, host: who } : { role };
  const res = await client(c, ADMIN)("POST", "/v1/tokens", init);
  if (res.status !== 201) throw new Error(`token: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.token as string;
}

export const FULL_GUARDS = [
  "mac-spoof", "arp-spoof", "ipv4-spoof", "ipv6-spoof", "nd-spoof", "ra-guard", "redirect-guard", "dhcp-server-guard",
  "dhcpv6-server-guard", "ipv6-fragment", "vlan", "ethertype", "malformed", "not-for-this-port",
];
