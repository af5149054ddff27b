// Starts the controller: opens (and migrates) the store, follows the revision, serves the API.
// Several replicas may run on one PostgreSQL: they share every piece of state that matters.
// Effects: the store, a listening socket, timers.
import { readFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { pino, type Logger } from "pino";
import { createApi } from "./api/app.ts";
import { Authenticator } from "./auth.ts";
import type { ControllerConfig } from "./config.ts";
import { ControllerConfigError } from "./errors.ts";
import { ControllerMetrics } from "./metrics.ts";
import { startHoldSweeper } from "./migration-hold.ts";
import { parseStoreUrl, redact } from "./store/open.ts";
import { checkSecretFile } from "../host/secrets.ts";
import { Store } from "./store/store.ts";
import { RevisionWatch } from "./watch.ts";
import { loadUiAssets } from "./ui.ts";
import { warmUp } from "./warm-up.ts";

export type StartOptions = Partial<Omit<ControllerConfig, "listen">> & Readonly<{
  listen?: ControllerConfig["listen"];
  /** Bootstrap admin tokens given directly (tests); added to bootstrapTokenFile's. */
  bootstrapTokens?: readonly string[];
  logger?: Logger;
}>;

export type RunningController = Readonly<{
  url: string;
  store: Store;
  watch: RevisionWatch;
  app: ReturnType<typeof createApi>;
  close(): Promise<void>;
}>;

export async function startController(config: StartOptions & Readonly<{ store: string }>): Promise<RunningController> {
  const logger = config.logger ?? pino({ name: "vifguard-controller", level: config.logLevel ?? "info" }, pino.destination(2));
  const tokens = [...(config.bootstrapTokens ?? [])];
  // The admin token and the store are the keys to every port: refuse them readable by others.
  const location = parseStoreUrl(config.store);
  const secrets: [string, string][] = [
    ...(config.bootstrapTokenFile ? [[config.bootstrapTokenFile, "The admin token file"] as [string, string]] : []),
    ...(location?.kind === "sqlite" ? [[location.file, "The SQLite store"] as [string, string]] : []),
  ];
  for (const [file, what] of secrets) {
    const warning = await checkSecretFile(file, what, { warnOnly: config.allowInsecureFiles ?? false, flag: "--allow-insecure-files (allowInsecureFiles: true)" });
    if (warning) logger.warn({ file }, `INSECURE: ${warning}`);
  }
  if (config.bootstrapTokenFile) {
    let text: string;
    try {
      text = await readFile(config.bootstrapTokenFile, "utf8");
    } catch (e) {
      throw new ControllerConfigError("controller config", [{ path: "bootstrapTokenFile", value: config.bootstrapTokenFile, expected: `a readable file holding the admin token (${(e as Error).message})` }]);
    }
    if (text.trim().length < 16) throw new ControllerConfigError("controller config", [{ path: "bootstrapTokenFile", value: config.bootstrapTokenFile, expected: "a file holding a token of at least 16 characters" }]);
    tokens.push(text.trim());
  }
  const ui = await loadUiAssets();
  const store = await Store.open(config.store, { refuseMissingGuards: config.refuseMissingGuards ?? false, ...(config.migrationHoldMs !== undefined && { migrationHoldMs: config.migrationHoldMs }),
    ...(config.maxAddressesPerPort !== undefined && { maxAddressesPerPort: config.maxAddressesPerPort }),
    ...(config.maxAllowedPairsPerPort !== undefined && { maxAllowedPairsPerPort: config.maxAllowedPairsPerPort }),
    eventRetention: { maxAgeMs: Math.round((config.eventRetentionHours ?? 168) * 3_600_000), maxEvents: config.maxEvents ?? 100_000 },
  });
  const watch = new RevisionWatch(store, { pollMs: config.watchPollMs ?? 1000 });
  let server: ServerType | undefined;
  try {
    const warming = performance.now();
    // Best effort: a controller that could not rehearse still serves, only its first large write is slower.
    await warmUp(store).then(
      () => logger.debug({ ms: Math.round(performance.now() - warming) }, "warmed up (largest writes rehearsed, rolled back)"),
      (error: unknown) => logger.warn({ err: error }, "warm-up failed; the first large write may block the event loop longer"),
    );
    await watch.start();
    const app = createApi({ store, watch, auth: new Authenticator(store, tokens), maxBodyBytes: config.maxBodyBytes, metrics: new ControllerMetrics(store), ui, logError: (error) => logger.error({ err: error }, "request failed") });
    const listen = config.listen ?? { host: "127.0.0.1", port: 8700 };
    const address = await new Promise<AddressInfo>((resolve, reject) => {
      server = serve({ fetch: app.fetch, hostname: listen.host, port: listen.port }, (info) => resolve(info));
      server.once("error", reject);
    });
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    logger.info({ url, store: redact(config.store), kind: store.kind, revision: watch.revision, migrationHoldMs: store.migrationHoldMs }, "controller listening");
    const sweeper = startHoldSweeper(store, logger);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => (closing ??= (async () => {
      await sweeper.stop();
      await watch.stop(); // ends the long-polls, so the server can close
      await new Promise<void>((resolve) => {
        server!.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await store.close();
    })());
    return { url, store, watch, app, close };
  } catch (error) {
    await watch.stop().catch(() => undefined);
    server?.close();
    await store.close();
    throw error;
  }
}
