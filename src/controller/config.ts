// The controller's configuration file (YAML): where it listens, its store, the bootstrap admin
// token, and whether ports on hosts lacking a guard are refused. Pure: the caller reads the file.
import { parseDocument } from "yaml";
import { z } from "zod";
import { zodIssues } from "../model/zod-issues.ts";
import { ControllerConfigError } from "./errors.ts";
import { parseStoreUrl } from "./store/open.ts";
import { DEFAULT_MIGRATION_HOLD_MS } from "./rules.ts";
import { DEFAULT_PORT_LIMITS } from "./store/core.ts";

export type ControllerConfig = Readonly<{
  /** host:port; port 0 picks a free one. */
  listen: Readonly<{ host: string; port: number }>;
  /** sqlite:///path.db or postgres://… */
  store: string;
  /** File holding the bootstrap admin token (read at start). */
  bootstrapTokenFile: string | undefined;
  /** Refuse (409) placing a port on a host whose driver lacks a guard its level needs. */
  refuseMissingGuards: boolean;
  maxBodyBytes: number;
  /** Fallback poll of the revision (PostgreSQL also LISTENs). */
  watchPollMs: number;
  /** How long a migration's source keeps the port after the destination applied it, unless it reports it released first; 0: until released. */
  migrationHoldMs: number;
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "silent";
  /** Per port: at most this many fixed addresses, and allowed pairs (413 VG_TOO_LARGE beyond). */
  maxAddressesPerPort: number;
  maxAllowedPairsPerPort: number;
  /** Only warn (loudly) when the admin token file or the SQLite store grants group or others access; default false: refuse to start. */
  allowInsecureFiles: boolean;
  /** Spoof events last seen longer ago than this are removed (hours; default 168, a week). */
  eventRetentionHours: number;
  /** At most this many spoof events are kept; the oldest go first (default 100000). */
  maxEvents: number;
}>;

const LISTEN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

const schema = z.strictObject({
  listen: z.string().regex(LISTEN, "host:port, e.g. 127.0.0.1:8700 or [::]:8700").default("127.0.0.1:8700"),
  store: z.string().refine((s) => parseStoreUrl(s) !== undefined, "sqlite:///path/to/controller.db or postgres://user@host:port/database").default("sqlite:///var/lib/vifguard-controller/controller.db"),
  bootstrapTokenFile: z.string().min(1).optional(),
  refuseMissingGuards: z.boolean().default(false),
  maxBodyBytes: z.number().int().min(1024).max(64 << 20).default(1 << 20),
  watchPollMs: z.number().int().min(10).max(60_000).default(1000),
  migrationHoldMs: z.number().int().min(0).max(7 * 24 * 3_600_000).default(DEFAULT_MIGRATION_HOLD_MS),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "silent"]).default("info"),
  maxAddressesPerPort: z.number().int().min(1).max(4096).default(DEFAULT_PORT_LIMITS.addresses),
  maxAllowedPairsPerPort: z.number().int().min(0).max(4096).default(DEFAULT_PORT_LIMITS.allowedPairs),
  allowInsecureFiles: z.boolean().default(false),
  eventRetentionHours: z.number().min(0.001).max(24 * 3650).default(168),
  maxEvents: z.number().int().min(1).max(100_000_000).default(100_000),
});

export function parseControllerConfig(text: string, file: string): ControllerConfig {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) throw new ControllerConfigError(file, doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? "?"}`, value: e.code, expected: `valid YAML (${e.message.split("\n")[0]})` })));
  const raw: unknown = doc.toJS() ?? {};
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ControllerConfigError(file, zodIssues(raw, parsed.error.issues));
  }
  const c = parsed.data;
  const m = LISTEN.exec(c.listen)!;
  const port = Number(m[2]);
  if (port > 65535) throw new ControllerConfigError(file, [{ path: "listen", value: c.listen, expected: "a port from 0 to 65535" }]);
  return { ...c, bootstrapTokenFile: c.bootstrapTokenFile, listen: { host: m[1]!.replace(/^\[|\]$/g, ""), port } };
}
