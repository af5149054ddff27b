// Checks HTTP exchanges against an OpenAPI 3.1 document with validators built from the document
// itself (Ajv, JSON Schema 2020-12): the answer's status must be one the operation declares, its
// body must match that status's schema (or be empty where none is declared), and a request meant to
// be valid must match the operation's path, query and body parameters. Pure apart from Ajv's cache.
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export type Exchange = Readonly<{
  method: string;
  /** The path as requested, with its query string. */
  url: string;
  requestBody?: unknown;
  status: number;
  contentType: string | null;
  /** The answer's text (empty when it has none). */
  text: string;
}>;

type Operation = Readonly<{ method: string; template: string; pattern: RegExp; names: readonly string[]; at: readonly string[]; op: Json }>;

const METHODS = ["get", "put", "post", "delete", "patch", "head", "options"];

function pointerTo(...parts: string[]): string {
  return parts.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/");
}

/** Turns a query or path value (always text) into what the parameter's schema describes. */
function coerce(text: string, schema: Json | undefined): unknown {
  const types = [schema?.type ?? []].flat() as string[];
  if ((types.includes("integer") || types.includes("number")) && text.trim() !== "" && !Number.isNaN(Number(text))) return Number(text);
  if (types.includes("boolean") && (text === "true" || text === "false")) return text === "true";
  return text;
}

export class OpenApiValidator {
  readonly document: Json;
  readonly #ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  readonly #operations: Operation[] = [];
  readonly #compiled = new Map<string, ValidateFunction>();
  /** Every (operation, status) the exchanges reached: for coverage figures. */
  readonly seen = new Set<string>();

  constructor(document: Json) {
    this.document = document;
    addFormats.default(this.#ajv);
    this.#ajv.addSchema(document, "openapi.json");
    for (const [template, item] of Object.entries(document.paths as Json)) {
      for (const method of METHODS) {
        const op = (item as Json)[method] as Json | undefined;
        if (!op) continue;
        const names: string[] = [];
        const source = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\\?\{([^}]+)\\?\}/g, (_, name: string) => (names.push(name), "([^/]+)"));
        this.#operations.push({ method: method.toUpperCase(), template, pattern: new RegExp(`^${source}$`), names, at: ["paths", template, method], op });
      }
    }
    // Literal paths before templated ones: /v1/ports/batch is not /v1/ports/{id}.
    this.#operations.sort((a, b) => a.names.length - b.names.length);
  }

  /** The operations of the document, with the statuses each declares. */
  get operationList(): { method: string; template: string; operationId: string; responses: string[]; hasBody: boolean }[] {
    return this.#operations.map((o) => ({ method: o.method, template: o.template, operationId: String(o.op.operationId), responses: Object.keys(o.op.responses as Json), hasBody: o.op.requestBody !== undefined }));
  }

  #validator(pointer: string): ValidateFunction {
    let v = this.#compiled.get(pointer);
    if (!v) this.#compiled.set(pointer, (v = this.#ajv.compile({ $ref: `openapi.json#/${pointer}` })));
    return v;
  }

  #check(pointer: string, value: unknown, where: string): string[] {
    const v = this.#validator(pointer);
    if (v(value)) return [];
    return (v.errors ?? []).map((e) => `${where}${e.instancePath || ""} ${e.message ?? "invalid"}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ""}`);
  }

  #find(method: string, path: string): { operation: Operation; params: Record<string, string> } | undefined {
    for (const operation of this.#operations) {
      if (operation.method !== method) continue;
      const m = operation.pattern.exec(path);
      if (m) return { operation, params: Object.fromEntries(operation.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)])) };
    }
    return undefined;
  }

  /** What in the answer breaks the document (empty: nothing). */
  checkResponse(x: Exchange): string[] {
    const url = new URL(x.url, "http://controller");
    const found = this.#find(x.method.toUpperCase(), url.pathname);
    const name = `${x.method.toUpperCase()} ${url.pathname} → ${x.status}`;
    if (!found) return [`${name}: no operation in the document for ${x.method.toUpperCase()} ${url.pathname}`];
    const { operation } = found;
    const responses = operation.op.responses as Json;
    const key = String(x.status) in responses ? String(x.status) : `${String(x.status)[0]}XX` in responses ? `${String(x.status)[0]}XX` : "default" in responses ? "default" : undefined;
    if (!key) return [`${name}: status ${x.status} is not declared for ${operation.method} ${operation.template} (declared: ${Object.keys(responses).join(", ")})`];
    this.seen.add(`${operation.method} ${operation.template} ${key}`);
    const content = (responses[key] as Json).content as Json | undefined;
    if (!content) return x.text === "" ? [] : [`${name}: the document declares no body, the answer has ${x.text.length} bytes`];
    const media = Object.keys(content).find((m) => x.contentType?.split(";")[0]?.trim() === m);
    if (!media) return [`${name}: content-type ${x.contentType ?? "(none)"} is not one of ${Object.keys(content).join(", ")}`];
    if (!("schema" in (content[media] as Json))) return [];
    let body: unknown;
    try {
      body = JSON.parse(x.text);
    } catch {
      return [`${name}: the body is not JSON: ${x.text.slice(0, 80)}`];
    }
    return this.#check(pointerTo(...operation.at, "responses", key, "content", media, "schema"), body, `${name}: body`);
  }

  /** What in the request breaks the document (for requests meant to be valid). */
  checkRequest(x: Pick<Exchange, "method" | "url" | "requestBody">): string[] {
    const url = new URL(x.url, "http://controller");
    const found = this.#find(x.method.toUpperCase(), url.pathname);
    const name = `${x.method.toUpperCase()} ${url.pathname}`;
    if (!found) return [`${name}: no operation in the document`];
    const { operation, params } = found;
    const problems: string[] = [];
    for (const [i, p] of ((operation.op.parameters ?? []) as Json[]).entries()) {
      const given = p.in === "path" ? params[p.name as string] : p.in === "query" ? (url.searchParams.get(p.name as string) ?? undefined) : undefined;
      if (p.in !== "path" && p.in !== "query") continue;
      if (given === undefined) {
        if (p.required) problems.push(`${name}: ${p.in} parameter ${p.name} is required`);
        continue;
      }
      problems.push(...this.#check(pointerTo(...operation.at, "parameters", String(i), "schema"), coerce(given, p.schema as Json), `${name}: ${p.in}.${p.name}`));
    }
    const documented = new Set(((operation.op.parameters ?? []) as Json[]).filter((p) => p.in === "query").map((p) => p.name as string));
    for (const key of url.searchParams.keys()) if (!documented.has(key)) problems.push(`${name}: query parameter ${key} is not in the document`);
    const requestBody = operation.op.requestBody as Json | undefined;
    if (!requestBody) {
      if (x.requestBody !== undefined) problems.push(`${name}: the document declares no request body`);
    } else if (x.requestBody === undefined) {
      if (requestBody.required) problems.push(`${name}: the request body is required`);
    } else {
      problems.push(...this.#check(pointerTo(...operation.at, "requestBody", "content", "application/json", "schema"), x.requestBody, `${name}: request body`));
    }
    return problems;
  }
}
