// The agent's configuration file (agent.yaml): schema, defaults and validation. Pure: the caller reads the file.
// Every problem names its field (`source.controller.url`), the value as given and what is accepted.
import { parseDocument } from "yaml";
import { z } from "zod";
import { checkDriverSettings, DEFAULT_DRIVER, driverNames, findDriverModule, type DriverSettings } from "../drivers/registry.ts";
import { VifguardError, formatIssue, type Issue } from "../errors.ts";
import { zodIssues } from "../model/zod-issues.ts";
import { DEFAULT_CONTROL_SOCKET } from "./lifecycle.ts";

/** The agent configuration could not be loaded; the agent did not start. */
export class AgentConfigError extends VifguardError {
  override name = "AgentConfigError";
  readonly code = "VG_AGENT_CONFIG_INVALID";
  readonly file: string;
  readonly issues: readonly Issue[];
  constructor(file: string, issues: readonly Issue[]) {
    super(`Cannot load agent configuration ${file}:\n  ${issues.map(formatIssue).join("\n  ")}`);
    this.file = file;
    this.issues = issues;
  }
}

export const DEFAULT_FAIL_CLOSED_DEVICES: readonly string[] = ["vnet*", "tap*", "vif*"];
const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LEVELS)[number];

// A device pattern: an interface name with at most one '*', at the end (what nft's ifname wildcards accept).
const DEVICE_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}\*?$|^\*$/;
const PREFIX = /^[a-z][a-z0-9_-]{0,23}$/;
const LISTEN = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

const positiveMs = (min: number) => z.number().int().min(min, { message: `an integer number of milliseconds ≥ ${min}` });

const schema = z.strictObject({
  // The rest of the section is the driver's own settings, checked by its module's schema.
  driver: z.looseObject({
    name: z.string().default(DEFAULT_DRIVER),
    netns: z.string().min(1).optional(),
    prefix: z.string().regex(PREFIX, "1-24 characters: lower-case letters, digits, '_' or '-', starting with a letter").default("vifguard"),
  }).default({ name: DEFAULT_DRIVER, prefix: "vifguard" }),
  source: z.union([
    z.strictObject({ file: z.string().min(1, "a path to a port file") }),
    z.strictObject({
      controller: z.strictObject({
        url: z.url({ protocol: /^https?$/, message: "an http:// or https:// URL of the controller" }),
        tokenFile: z.string().min(1, "a path to a file holding the bearer token"),
        host: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, "this host's name as the controller knows it"),
        pollTimeoutMs: positiveMs(1000).default(30_000),
        retryMs: positiveMs(100).default(2_000),
        heartbeatMs: positiveMs(100).optional(),
        /** Only warn (loudly) when group or others may read the token file; default: refuse to start. */
        allowInsecureTokenFile: z.boolean().default(false),
      }),
    }),
  ], { message: "either { file: ports.yaml } or { controller: { url, tokenFile, host } }" }),
  stateDir: z.string().min(1).default("/var/lib/vifguard/agent"),
  controlSocket: z.string().min(1).default(DEFAULT_CONTROL_SOCKET),
  listen: z.union([z.literal(false), z.string().regex(LISTEN, "host:port, e.g. 127.0.0.1:9477 or [::1]:9477")]).default("127.0.0.1:9477"),
  log: z.strictObject({ level: z.enum(LEVELS, { message: `one of ${LEVELS.join(", ")}` }).default("info") }).default({ level: "info" }),
  failClosed: z.strictObject({
    enabled: z.boolean().default(true),
    devices: z.array(z.string().regex(DEVICE_PATTERN, "an interface name, optionally ending in '*' (vnet*, tap*, vif*)")).default([...DEFAULT_FAIL_CLOSED_DEVICES]),
  }).default({ enabled: true, devices: [...DEFAULT_FAIL_CLOSED_DEVICES] }),
  reconcile: z.strictObject({
    intervalMs: positiveMs(100).default(5_000),
    watch: z.boolean().default(true),
    batchSize: z.number().int().min(1).max(100_000).default(250),
    debounceMs: z.number().int().min(0).max(10_000).default(100),
  }).default({ intervalMs: 5_000, watch: true, batchSize: 250, debounceMs: 100 }),
  drops: z.strictObject({ logIntervalMs: positiveMs(100).default(10_000) }).default({ logIntervalMs: 10_000 }),
  events: z.strictObject({
    intervalMs: positiveMs(100).default(1_000),
    quietMs: positiveMs(1_000).default(60_000),
    sampleFrames: z.boolean().default(true),
    keep: z.number().int().min(1).max(1_000_000).default(1_000),
  }).default({ intervalMs: 1_000, quietMs: 60_000, sampleFrames: true, keep: 1_000 }),
});

export type SourceConfig =
  | Readonly<{ kind: "file"; file: string }>
  | Readonly<{ kind: "controller"; url: string; tokenFile: string; host: string; pollTimeoutMs: number; retryMs: number; /** default 10000 */ heartbeatMs?: number; allowInsecureTokenFile?: boolean }>;

export type AgentConfig = Readonly<{
  driver: Readonly<{ name: string; settings: DriverSettings }>;
  source: SourceConfig;
  stateDir: string;
  controlSocket: string;
  /** host and port of /metrics and /healthz; undefined: no HTTP listener. */
  listen: Readonly<{ host: string; port: number }> | undefined;
  logLevel: LogLevel;
  failClosed: Readonly<{ enabled: boolean; devices: readonly string[] }>;
  reconcile: Readonly<{ intervalMs: number; watch: boolean; batchSize: number; debounceMs: number }>;
  drops: Readonly<{ logIntervalMs: number }>;
  /**
   * Spoof events: counters are read every intervalMs (one report per port and reason at most that
   * often); an episode ends after quietMs without drops; sampleFrames reads dropped frames the
   * dataplane logs (nftables: NFLOG); the agent remembers the newest `keep` events.
   */
  events: Readonly<{ intervalMs: number; quietMs: number; sampleFrames: boolean; keep: number }>;
}>;


function parseListen(text: string): { host: string; port: number } | undefined {
  const m = LISTEN.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  return port <= 65535 ? { host: m[1]!.replace(/^\[|\]$/g, ""), port } : undefined;
}

/** Validates a parsed document (any JSON value) as agent configuration. */
export function validateAgentConfig(document: unknown, file: string): AgentConfig {
  const parsed = schema.safeParse(document ?? {});
  if (!parsed.success) throw new AgentConfigError(file, zodIssues(document, parsed.error.issues));
  const raw = parsed.data;
  const issues: Issue[] = [];
  const listen = raw.listen === false ? undefined : parseListen(raw.listen);
  if (raw.listen !== false && !listen) issues.push({ path: "listen", value: raw.listen, expected: "host:port with a port from 0 to 65535" });
  const { name, netns, prefix, ...own } = raw.driver;
  const module = findDriverModule(name);
  if (!module) issues.push({ path: "driver.name", value: name, expected: `one of ${driverNames().join(", ")}` });
  const checked = module ? checkDriverSettings(module, own, (key) => `driver.${key}`) : { settings: {}, issues: [] };
  issues.push(...checked.issues);
  if (raw.failClosed.enabled && raw.failClosed.devices.length === 0) issues.push({ path: "failClosed.devices", value: [], expected: "at least one device pattern, or failClosed.enabled: false" });
  if (issues.length > 0) throw new AgentConfigError(file, issues);
  const settings: DriverSettings = { ...checked.settings, prefix, ...(netns !== undefined && { netns }) };
  const source: SourceConfig = "file" in raw.source ? { kind: "file", file: raw.source.file } : { kind: "controller", ...raw.source.controller };
  return {
    driver: { name, settings },
    source,
    stateDir: raw.stateDir,
    controlSocket: raw.controlSocket,
    listen,
    logLevel: raw.log.level,
    failClosed: raw.failClosed,
    reconcile: raw.reconcile,
    drops: raw.drops,
    events: raw.events,
  };
}

/** Parses YAML or JSON text as agent configuration. */
export function parseAgentConfig(text: string, file: string): AgentConfig {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new AgentConfigError(file, doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? "?"}`, value: e.code, expected: `valid YAML or JSON (${e.message.split("\n")[0]})` })));
  }
  return validateAgentConfig(doc.toJS(), file);
}
