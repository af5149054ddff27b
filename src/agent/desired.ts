// The desired state the agent enforces, and how it is decoded from what a source delivered. Pure.
// The agent keeps the delivered text (port file or controller answer) and re-decodes it on start,
// so the saved state is exactly what was received, in the source's own format.
import { z } from "zod";
import { PortFileError, type Issue } from "../errors.ts";
import { parsePrefix } from "../model/ip.ts";
import { parseMac, type Mac } from "../model/mac.ts";
import { LEVELS, type Level } from "../model/types.ts";
import { formatPath, parsePortFile } from "../model/port-file.ts";
import { guardsForLevel, GUARDS, type Guard } from "../policy/guards.ts";
import { portPolicies, type Binding, type PortPolicy } from "../policy/port-policy.ts";

export type DesiredFormat = "port-file" | "controller";

/** What a source delivered, verbatim, with where it came from. */
export type Delivery = Readonly<{ format: DesiredFormat; origin: string; revision: string; body: string }>;

/** A decoded delivery: the policies to enforce, and the controller's fail-closed switch (when it sent one). */
export type Desired = Delivery & Readonly<{ policies: readonly PortPolicy[]; failClosed?: boolean }>;

const binding = z.strictObject({ mac: z.string(), prefix: z.union([z.string(), z.looseObject({ text: z.string() })]) });
const policy = z.looseObject({
  port: z.string().min(1),
  tenant: z.string().min(1),
  network: z.string().min(1),
  device: z.string().min(1).optional(),
  level: z.enum(LEVELS as [Level, ...Level[]]),
  macs: z.array(z.string()).min(1),
  bindings: z.array(binding),
  guards: z.array(z.enum(GUARDS)).optional(),
});
const answer = z.looseObject({
  revision: z.union([z.number(), z.string()]),
  config: z.looseObject({ failClosed: z.boolean().optional() }).optional(),
  ports: z.array(policy),
});

/**
 * Decodes a controller answer `{revision, config?: {failClosed}, ports: PortPolicy[]}` (prefixes as
 * text or {text}); throws PortFileError naming the field.
 */
export function decodeControllerAnswer(body: string, origin: string): { revision: string; policies: PortPolicy[]; failClosed?: boolean } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (e) {
    throw new PortFileError(origin, [{ path: "(body)", value: body.slice(0, 80), expected: `JSON (${(e as Error).message})` }]);
  }
  const parsed = answer.safeParse(json);
  if (!parsed.success) {
    throw new PortFileError(origin, parsed.error.issues.map((i) => ({ path: formatPath(i.path), value: undefined, expected: i.message.replace(/^Invalid input: expected /, "") })));
  }
  const issues: Issue[] = [];
  const policies = parsed.data.ports.map((p, i): PortPolicy => {
    const macs = p.macs.map((text, j) => parseMac(text) ?? (issues.push({ path: `ports[${i}].macs[${j}]`, value: text, expected: "a MAC" }), "" as Mac));
    const bindings = p.bindings.flatMap((b, j): Binding[] => {
      const mac = parseMac(b.mac);
      const prefix = parsePrefix(typeof b.prefix === "string" ? b.prefix : b.prefix.text);
      if (!mac) issues.push({ path: `ports[${i}].bindings[${j}].mac`, value: b.mac, expected: "a MAC" });
      if (!prefix.ok) issues.push({ path: `ports[${i}].bindings[${j}].prefix`, value: b.prefix, expected: prefix.expected });
      return mac && prefix.ok ? [{ mac, prefix: prefix.prefix }] : [];
    });
    const guards: readonly Guard[] = p.guards ?? guardsForLevel(p.level);
    return { port: p.port, tenant: p.tenant, network: p.network, ...(p.device !== undefined && { device: p.device }), level: p.level, macs, bindings, guards };
  });
  if (issues.length > 0) throw new PortFileError(origin, issues);
  const failClosed = parsed.data.config?.failClosed;
  return { revision: String(parsed.data.revision), policies, ...(failClosed !== undefined && { failClosed }) };
}

/** Decodes a delivery; throws PortFileError (naming the field) when it is not valid. */
export function decodeDelivery(delivery: Delivery): Desired {
  if (delivery.format === "port-file") return { ...delivery, policies: portPolicies(parsePortFile(delivery.body, delivery.origin)) };
  const { policies, failClosed } = decodeControllerAnswer(delivery.body, delivery.origin);
  return { ...delivery, policies, ...(failClosed !== undefined && { failClosed }) };
}

/** The saved form of a delivery (JSON, one object). */
export function encodeSaved(delivery: Delivery, savedAtMs: number): string {
  return JSON.stringify({ version: 1, savedAtMs, ...delivery }) + "\n";
}

/** Reads a saved delivery back; undefined when the text is not one. */
export function decodeSaved(text: string): (Delivery & { savedAtMs: number }) | undefined {
  const saved = z.object({ version: z.literal(1), savedAtMs: z.number(), format: z.enum(["port-file", "controller"]), origin: z.string(), revision: z.string(), body: z.string() }).safeParse(safeJson(text));
  return saved.success ? saved.data : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
