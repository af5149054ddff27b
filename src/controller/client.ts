// The controller's API as a typed client: hono's hc over the route types of api/app.ts, so a path,
// an input or an answer's shape that changes on the server changes what the callers type-check
// against. Used by the CLI (and the web page); imports only types from the server side.
// Effects: HTTP requests.
import { hc, type ClientResponse } from "hono/client";
import type { SuccessStatusCode } from "hono/utils/http-status";
import { VifguardError, type Issue } from "../errors.ts";
import type { ApiRoutes } from "./api/app.ts";

export type ControllerClient = ReturnType<typeof hc<ApiRoutes>>;

/** A client of the controller at `url` (http://host:port) that sends `token` as its bearer token. */
export function controllerClient(url: string, token: string, options: Readonly<{ fetch?: typeof fetch }> = {}): ControllerClient {
  return hc<ApiRoutes>(url.replace(/\/+$/, ""), { headers: { authorization: `Bearer ${token}` }, ...(options.fetch && { fetch: options.fetch }) });
}

/** The controller refused a request (its {code, message, issues} body), or could not be reached. */
export class ControllerError extends VifguardError {
  override name = "ControllerError";
  readonly code = "VG_CONTROLLER";
  /** The HTTP status, or undefined when no answer came. */
  readonly status: number | undefined;
  /** The controller's own code (VG_NOT_FOUND, …) when it answered with one. */
  readonly apiCode: string | undefined;
  readonly issues: readonly Issue[];
  constructor(what: string, init: Readonly<{ status?: number; apiCode?: string; message: string; issues?: readonly Issue[]; cause?: unknown }>) {
    const lines = (init.issues ?? []).map((i) => `${i.path}: got ${JSON.stringify(i.value) ?? "nothing"}, expected ${i.expected}`);
    super(`${what}: ${init.status !== undefined ? `${init.status} ` : ""}${init.apiCode ? `${init.apiCode} ` : ""}${init.message}${lines.length ? `\n  ${lines.join("\n  ")}` : ""}`, { cause: init.cause });
    this.status = init.status;
    this.apiCode = init.apiCode;
    this.issues = init.issues ?? [];
  }
}

type Answer = ClientResponse<unknown, number, string>;
/** The body type of the successful (2xx, JSON) answers of a call. */
export type Success<R> = R extends ClientResponse<infer T, infer S, "json"> ? (S extends SuccessStatusCode ? T : never) : never;

/**
 * Awaits a call and returns its JSON body when the status is 2xx; otherwise throws a
 * ControllerError that carries the controller's code and issues. `what` says what was tried.
 */
export async function succeed<R extends Answer>(call: Promise<R>, what: string): Promise<Success<R>> {
  let res: R;
  try {
    res = await call;
  } catch (cause) {
    throw new ControllerError(what, { message: `no answer from the controller (${(cause as Error).message})`, cause });
  }
  if (!res.ok) {
    const text = await res.text();
    let body: { code?: string; message?: string; issues?: Issue[] } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = { message: text.slice(0, 200) || res.statusText };
    }
    throw new ControllerError(what, { status: res.status, apiCode: body.code, message: body.message ?? res.statusText, issues: body.issues ?? [] });
  }
  return (await res.json()) as Success<R>;
}
