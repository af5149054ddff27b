// The host agent: wires a desired-state source, the saved state, the reconciler, drift detection,
// the control socket and /metrics together. Effects (timers, sockets, files, the driver).
import { readFile } from "node:fs/promises";
import type { Server } from "node:net";
import type { Server as HttpServer } from "node:http";
import { pino, type Logger } from "pino";
import type { Driver } from "../drivers/contract.ts";
import { createDriver } from "../drivers/registry.ts";
import { PortFileError } from "../errors.ts";
import type { AgentConfig } from "./config.ts";
import { ControllerLink } from "./controller-link.ts";
import { decodeDelivery, type Delivery } from "./desired.ts";
import { serveLifecycle, type LifecycleAnswer, type LifecycleRequest } from "./lifecycle.ts";
import { AgentMetrics, serveMetrics } from "./metrics.ts";
import { EventTracker, keepNewest, sampleFrame, type SpoofEvent } from "./events.ts";
import { countStates, describeDrops, dropDeltas, findPort, type DropSample } from "./plan.ts";
import { checkSecretFile } from "../host/secrets.ts";
import { checkAgentPrivileges } from "./privileges.ts";
import { Reconciler, type SyncReport } from "./reconciler.ts";
import { hostRegistration, portReports } from "./report.ts";
import { ControllerSource } from "./sources/controller.ts";
import { FileSource } from "./sources/file.ts";
import type { DesiredSource } from "./sources/source.ts";
import { StateStore } from "./state-store.ts";

export type AgentDeps = Readonly<{
  /** Instead of the configured driver (tests: an in-memory fake). */
  driver?: Driver;
  /** Instead of the configured source. */
  source?: DesiredSource;
  logger?: Logger;
  now?: () => number;
}>;

export type RunningAgent = Readonly<{
  reconciler: Reconciler;
  metrics: AgentMetrics;
  logger: Logger;
  /** The bound port of /metrics and /healthz (undefined when listen is off). */
  httpPort: number | undefined;
  /** Handles one lifecycle request, as the control socket does. */
  handle(request: LifecycleRequest): Promise<LifecycleAnswer>;
  stop(): Promise<void>;
}>;

export function createLogger(level: string): Logger {
  return pino({ level, base: { component: "vifguard-agent" }, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label) => ({ level: label }) } });
}

function createSource(config: AgentConfig): DesiredSource {
  const s = config.source;
  return s.kind === "file" ? new FileSource({ path: s.file, debounceMs: config.reconcile.debounceMs }) : new ControllerSource(s);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** vifguard's version, as registered with the controller. */
async function ownVersion(): Promise<string> {
  try {
    const pkg = JSON.parse(await readFile(new URL("../../package.json", import.meta.url), "utf8")) as { version?: unknown };
    return typeof pkg.version === "string" ? pkg.version : "unknown";
  } catch {
    return "unknown";
  }
}

/** Is `next` a newer controller revision than `than` (both digits)? Anything else counts as newer. */
function isNewer(next: Delivery, than: { revision: string } | undefined): boolean {
  if (!than || next.format !== "controller" || !/^\d+$/.test(next.revision) || !/^\d+$/.test(than.revision)) return next.revision !== than?.revision;
  return Number(next.revision) > Number(than.revision);
}

export async function startAgent(config: AgentConfig, deps: AgentDeps = {}): Promise<RunningAgent> {
  const log = deps.logger ?? createLogger(config.logLevel);
  const now = deps.now ?? Date.now;
  // Before anything else: a unit that grants too little stops here, naming what is missing.
  if (!deps.driver) await checkAgentPrivileges(config.driver.name, config.driver.settings);
  // The token is the host's key to the controller: refused readable by group or others.
  if (config.source.kind === "controller") {
    const warning = await checkSecretFile(config.source.tokenFile, "The agent's token file", { warnOnly: config.source.allowInsecureTokenFile ?? false, flag: "source.controller.allowInsecureTokenFile: true" });
    if (warning) log.warn({ file: config.source.tokenFile }, `INSECURE: ${warning}`);
  }
  const driver = deps.driver ?? (await createDriver(config.driver.name, config.driver.settings));
  const facts = await driver.probe();
  log.info({ driver: driver.name, versions: facts.versions, notes: facts.notes }, `driver ${driver.name} ready`);

  const store = new StateStore(config.stateDir);
  const source = deps.source ?? createSource(config);
  const metrics = new AgentMetrics(() => driver.counters());
  // With a controller: register the host, heartbeat, and report each port's status after every sync.
  const link = config.source.kind === "controller"
    ? new ControllerLink({ ...config.source, heartbeatMs: config.source.heartbeatMs ?? 10_000, log })
    : undefined;
  let reporting: Promise<void> = Promise.resolve();
  const report = (sync: SyncReport): void => {
    if (!link || sync.revision === undefined) return;
    const revision = sync.revision;
    reporting = reporting.then(async () => {
      const counters = await driver.counters().catch(() => []);
      link.submit(portReports(revision, sync.policies, sync.states, driver.capabilities.guards, counters, sync.driftRepairs), sync); // sync: its unplugged ports are reported released
    });
  };
  const reconciler = new Reconciler({
    driver,
    log,
    batchSize: config.reconcile.batchSize,
    failClosedDevices: config.failClosed.enabled ? config.failClosed.devices : [],
    now,
    hooks: {
      synced: (sync, at) => {
        metrics.synced(sync.durationMs, at, countStates(sync.states), sync.drift);
        report(sync);
      },
      failed: (_error, durationMs) => metrics.failed(durationMs),
    },
  });
  for (const port of await store.loadUnplugged()) reconciler.setUnplugged(port, true);

  let current: { revision: string; origin: string; saved: boolean } | undefined;
  let stopping = false;
  let sourceProblem: string | undefined;

  /** Takes a delivery if it decodes; otherwise logs why (naming the field) and keeps the last good state. One at a time, in order. */
  let accepting: Promise<unknown> = Promise.resolve();
  const acceptWaiters = new Set<() => void>(); // lifecycle requests waiting for a port to appear
  const accept = (delivery: Delivery, fromSaved: boolean): Promise<boolean> => {
    const next = accepting.then(() => acceptNow(delivery, fromSaved));
    accepting = next.catch(() => undefined);
    return next;
  };
  const acceptNow = async (delivery: Delivery, fromSaved: boolean): Promise<boolean> => {
    let policies;
    let failClosed: boolean | undefined;
    try {
      ({ policies, failClosed } = decodeDelivery(delivery));
    } catch (error) {
      const issues = error instanceof PortFileError ? error.issues : undefined;
      sourceProblem = error instanceof Error ? error.message : String(error);
      metrics.source(false, "invalid");
      log.error(
        { origin: delivery.origin, issues, enforcing: current?.revision ?? null },
        `${sourceProblem}\n  still enforcing ${current ? `revision ${current.revision} from ${current.origin}` : "what is installed"}`,
      );
      return false;
    }
    reconciler.setDesired(policies, delivery.format === "controller" ? delivery.revision : undefined);
    // The controller's fail-closed switch (the local failClosed.enabled: false still wins).
    const closing = failClosed ?? true;
    const wasClosing = reconciler.failingClosed;
    reconciler.setFailClosed(closing);
    if (reconciler.failingClosed !== wasClosing) log.info({ failClosed: reconciler.failingClosed, origin: delivery.origin }, `fail-closed ${reconciler.failingClosed ? "on" : "off"} (the controller's switch)`);
    const names = new Set(policies.map((p) => p.port));
    const gone = [...reconciler.unplugged].filter((p) => !names.has(p));
    for (const port of gone) reconciler.setUnplugged(port, false); // a port that left the desired state is forgotten
    if (gone.length > 0) await store.saveUnplugged([...reconciler.unplugged]).catch((e: Error) => log.error({ err: e }, `cannot save unplugged ports: ${e.message}`));
    current = { revision: delivery.revision, origin: delivery.origin, saved: fromSaved };
    sourceProblem = undefined;
    metrics.desired(delivery.revision, delivery.origin, fromSaved);
    if (!fromSaved) {
      metrics.source(true);
      await store.save(delivery, now()).catch((e: Error) => log.error({ err: e }, `cannot save the desired state to ${store.path}: ${e.message}`));
    }
    for (const wake of acceptWaiters) wake();
    log.info({ revision: delivery.revision, origin: delivery.origin, ports: policies.length, saved: fromSaved }, `desired state: ${policies.length} ports (revision ${delivery.revision}${fromSaved ? ", saved copy" : ""})`);
    return true;
  };

  // Start-up: the source if it answers and is valid, else the saved copy, else keep what is installed.
  const startTimeoutMs = config.source.kind === "controller" ? Math.min(config.source.pollTimeoutMs, 10_000) : 5_000;
  let fresh = false;
  try {
    fresh = await accept(await source.fetch(startTimeoutMs), false);
  } catch (error) {
    sourceProblem = error instanceof Error ? error.message : String(error);
    metrics.source(false, "unreadable");
    log.error({ origin: source.origin, err: error }, `desired-state source unavailable at start: ${sourceProblem}`);
  }
  if (!fresh) {
    const saved = await store.load();
    if (saved.desired && (await accept(saved.desired, true))) log.warn({ path: store.path, revision: saved.desired.revision }, `using the saved desired state (revision ${saved.desired.revision}) until ${source.origin} answers`);
    else log.warn({ problem: saved.problem }, `no desired state yet: keeping what is installed (never flushing) and failing closed until one arrives`);
  }
  if (current && "seen" in source && typeof source.seen === "function" && !current.saved) (source as FileSource).seen(current.revision);

  await reconciler.sync("start").catch(() => undefined); // logged; the periodic check retries

  // Follow the source.
  source.start({
    onDelivery: (delivery) => {
      void accept(delivery, false).then((ok) => (ok ? reconciler.sync("desired").catch(() => undefined) : undefined));
    },
    onError: (error) => {
      sourceProblem = error.message;
      metrics.source(false, error instanceof PortFileError ? "invalid" : "unreadable");
      const issues = error instanceof PortFileError ? error.issues : undefined;
      log.error({ origin: source.origin, issues, enforcing: current?.revision ?? null }, `desired-state source: ${error.message}\n  still enforcing ${current ? `revision ${current.revision}` : "what is installed"}`);
    },
  });

  // Drift: the driver's change feed (debounced), and a periodic full check as the backstop.
  let driftTimer: NodeJS.Timeout | undefined;
  const onChange = (): void => {
    if (driftTimer) return;
    driftTimer = setTimeout(() => {
      driftTimer = undefined;
      reconciler.sync("change").catch(() => undefined);
    }, config.reconcile.debounceMs);
  };
  const watch = config.reconcile.watch
    ? await driver.watchChanges(onChange).catch((e: Error) => (log.warn({ err: e }, `cannot follow dataplane changes (${e.message}); relying on the periodic check`), undefined))
    : undefined;
  const periodic = setInterval(() => void reconciler.sync("periodic").catch(() => undefined), config.reconcile.intervalMs);

  // Drops: a rate-limited event per port when its counters rise.
  let previous: DropSample[] | undefined;
  const sampleDrops = async (): Promise<void> => {
    try {
      const counters = await driver.counters();
      if (previous) for (const d of describeDrops(dropDeltas(previous, counters))) log.warn({ event: "drops", port: d.port, frames: d.total, reasons: d.reasons }, d.message);
      previous = counters;
    } catch (e) {
      log.debug({ err: e }, "cannot read drop counters");
    }
  };
  await sampleDrops();
  const dropTimer = setInterval(() => void sampleDrops(), config.drops.logIntervalMs);

  // Spoof events: counter deltas every events.intervalMs, and frames the dataplane samples (nftables
  // logs dropped frames to NFLOG, rate-limited per device and guard in the kernel). Reported to the
  // controller with the status reports; the newest are kept here for `vifguard events` (standalone).
  const tracker = new EventTracker({ quietMs: config.events.quietMs, minIntervalMs: config.events.intervalMs });
  let recent = new Map<string, SpoofEvent>();
  let eventCounters: DropSample[] | undefined;
  const portFacts = (port: string) => {
    const p = findPort(reconciler.desiredPolicies, port, reconciler.matchedDevices);
    return p && { tenant: p.tenant, network: p.network };
  };
  const collectEvents = async (): Promise<void> => {
    try {
      const counters = await driver.counters();
      if (eventCounters) tracker.drops(dropDeltas(eventCounters, counters), now());
      eventCounters = counters;
    } catch (e) {
      log.debug({ err: e }, "cannot read drop counters for events");
    }
    const due = tracker.due(now(), portFacts);
    if (due.length === 0) return;
    for (const e of due) {
      if (!recent.has(e.id)) metrics.spoofEvent(e.port, e.reason);
      recent.set(e.id, e);
    }
    recent = keepNewest(recent, config.events.keep);
    link?.submitEvents(due);
  };
  await collectEvents();
  const eventTimer = setInterval(() => void collectEvents(), config.events.intervalMs);
  const sampler = config.events.sampleFrames
    ? driver.sampleDrops?.((dropped) => {
        const matched = reconciler.matchedDevices;
        const policy = reconciler.desiredPolicies.find((p) => (matched.get(p.port) ?? p.device) === dropped.device);
        if (policy) tracker.sample(policy.port, dropped.reason, sampleFrame(dropped.frame, dropped.reason, dropped.timeMs), now());
      })
    : undefined;
  void sampler?.stopped.then((why) => {
    if (!stopping) log.warn({ why }, `sampling dropped frames stopped (${why}); events still come from the counters`);
  });

  // Lifecycle.
  const waitForPort = async (name: string, timeoutMs: number, refresh: boolean) => {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const policy = findPort(reconciler.desiredPolicies, name, reconciler.matchedDevices);
      if (policy || !refresh || performance.now() >= deadline) return policy;
      try {
        const delivery = await source.fetch(Math.max(1000, deadline - performance.now()));
        // Only newer: the long-poll may have delivered a later revision while this fetch ran.
        if (isNewer(delivery, current)) await accept(delivery, false);
      } catch {
        // the source may not know it yet either
      }
      if (findPort(reconciler.desiredPolicies, name, reconciler.matchedDevices)) continue;
      // Until the next delivery (the controller's long-poll brings it at once), at most 500 ms.
      let wake!: () => void;
      const delivered = new Promise<void>((r) => acceptWaiters.add((wake = r)));
      await Promise.race([delivered, sleep(Math.min(500, Math.max(0, deadline - performance.now())))]);
      acceptWaiters.delete(wake);
    }
  };
  const saveUnplugged = () => store.saveUnplugged([...reconciler.unplugged]);
  const handle = async (request: LifecycleRequest): Promise<LifecycleAnswer> => {
    const started = performance.now();
    const timeoutMs = request.timeoutMs ?? 30_000;
    const name = request.port ?? "";
    const answer = async (): Promise<LifecycleAnswer> => {
      switch (request.op) {
        case "events": {
          const events = [...recent.values()].sort((a, b) => b.lastSeenMs - a.lastSeenMs);
          return { ok: true, message: `${events.length} spoof events`, data: { events } };
        }
        case "status": {
          const states = Object.fromEntries(reconciler.states);
          return { ok: true, message: `${countStates(reconciler.states).enforced} ports enforced`, data: { revision: current?.revision ?? null, origin: current?.origin ?? null, saved: current?.saved ?? false, healthy: reconciler.healthy, sourceProblem: sourceProblem ?? null, states } };
        }
        case "plug":
        case "migrate-in": {
          if (!name) return { ok: false, code: "VG_USAGE", message: `${request.op}: a port id, device or MAC is required` };
          // The hook's word on which device carries which MAC: kept until the port is unplugged.
          for (const [mac, device] of Object.entries(request.devices ?? {})) reconciler.setDeviceHint(mac, device);
          const policy = await waitForPort(name, request.op === "migrate-in" ? timeoutMs : Math.min(timeoutMs, 5_000), true);
          if (!policy) return { ok: false, code: "VG_PORT_UNKNOWN", message: `${request.op} ${name}: no port with this id, device or MAC in the desired state (revision ${current?.revision ?? "none"})` };
          // The answer waits for the sync that applies the unit, not for the disk: the unplugged set
          // (only when it changed) is saved alongside, and a failed save is logged, as it only matters after a restart.
          const wasUnplugged = reconciler.unplugged.has(policy.port);
          reconciler.setUnplugged(policy.port, false);
          const saved = wasUnplugged ? saveUnplugged().catch((e: Error) => log.error({ err: e }, `cannot save unplugged ports: ${e.message}`)) : undefined;
          const report = await reconciler.sync(request.op);
          await saved;
          const state = report.states.get(policy.port);
          const match = reconciler.matches.get(policy.port);
          const device = match && "device" in match ? match.device : (policy.device ?? "no device yet");
          if (state === "ambiguous-device") {
            const why = match?.how === "ambiguous" ? match.reason : "several devices match it";
            return { ok: false, code: "VG_DEVICE_AMBIGUOUS", message: `${request.op} ${policy.port}: no device chosen: ${why}; nothing is installed for it (name its device in the port, or pass the hypervisor's device)` };
          }
          // Hooks plug before the device exists (libvirt's prepare, a migration's destination): a
          // port whose dataplane needs its device gets its rules at the first sync after it appears
          // (the driver's change feed starts that sync). Nothing can carry traffic on it before.
          if (state === "awaiting-device") {
            return { ok: true, message: `${policy.port} (${device}): awaiting its device; its rules go in as soon as it appears`, data: { port: policy.port, device: policy.device ?? null, level: policy.level, state } };
          }
          if (state !== "enforced") return { ok: false, code: "VG_APPLY_FAILED", message: `${request.op} ${policy.port}: rules not installed (state ${state ?? "unknown"})` };
          if (request.op === "migrate-in" && link && request.waitReady !== false) {
            // The rules are in place here; now wait until the controller has recorded it (the source then removes the port).
            const installedMs = Math.round(performance.now() - started);
            const m = await link.waitReady(policy.port, Math.max(0, timeoutMs - (performance.now() - started)));
            const where = `${config.source.kind === "controller" ? config.source.host : "this host"}`;
            if (!m.ready) return { ok: false, code: "VG_MIGRATION_NOT_READY", message: `migrate-in ${policy.port}: rules installed here in ${installedMs} ms, but the controller did not show the port ready on ${where} within ${timeoutMs} ms (state ${m.state}, host ${m.host ?? "none"}, bound at revision ${m.boundRevision}, applied ${m.appliedRevision ?? "never"})` };
            return { ok: true, message: `${policy.port} (${device}) protected in ${installedMs} ms, ready on ${where} in ${Math.round(performance.now() - started)} ms`, data: { port: policy.port, device, level: policy.level, migration: m } };
          }
          return { ok: true, message: `${policy.port} (${device}${match?.how === "mac" ? ", found by MAC" : match?.how === "hinted" ? ", as the hypervisor named it" : ""}) protected in ${Math.round(performance.now() - started)} ms`, data: { port: policy.port, device, level: policy.level } };
        }
        case "unplug":
        case "migrate-out": {
          if (!name) return { ok: false, code: "VG_USAGE", message: `${request.op}: a port id, device or MAC is required` };
          const policy = findPort(reconciler.desiredPolicies, name, reconciler.matchedDevices);
          const device = policy && (reconciler.matchedDevices.get(policy.port) ?? policy.device);
          if (policy) {
            reconciler.setUnplugged(policy.port, true);
            // The VM is gone: libvirt may give its vnetN to another VM, so its hints go too.
            for (const mac of policy.macs) reconciler.setDeviceHint(mac, undefined);
            await saveUnplugged();
          }
          await reconciler.sync(request.op); // also removes rules of a port the desired state already dropped
          const port = policy?.port ?? name;
          return { ok: true, message: policy ? `${port} (${device ?? "no device"}): every rule removed` : `${name}: not in the desired state; nothing of it is installed`, data: { port } };
        }
      }
    };
    try {
      const result = await answer();
      metrics.request(request.op, result.ok);
      (result.ok ? log.info.bind(log) : log.error.bind(log))({ op: request.op, port: name, ok: result.ok, durationMs: Math.round(performance.now() - started) }, `${request.op}: ${result.message}`);
      return result;
    } catch (error) {
      metrics.request(request.op, false);
      throw error;
    }
  };
  const control: Server = await serveLifecycle(config.controlSocket, handle);

  let http: HttpServer | undefined;
  let httpPort: number | undefined;
  if (config.listen) {
    const served = await serveMetrics(metrics, () => ({ ok: reconciler.healthy, detail: { revision: current?.revision ?? null, saved: current?.saved ?? false, driver: driver.name, sourceProblem: sourceProblem ?? null } }), config.listen.host, config.listen.port);
    http = served.server;
    httpPort = served.port;
  }
  link?.start(hostRegistration(driver.name, await ownVersion(), driver.capabilities));
  log.info({ controlSocket: config.controlSocket, listen: httpPort === undefined ? null : `${config.listen?.host}:${httpPort}` }, "agent running");

  return {
    reconciler,
    metrics,
    logger: log,
    httpPort,
    handle,
    async stop() {
      stopping = true;
      sampler?.close();
      clearInterval(eventTimer);
      source.stop();
      link?.stop();
      watch?.close();
      clearInterval(periodic);
      clearInterval(dropTimer);
      clearTimeout(driftTimer);
      await new Promise<void>((r) => control.close(() => r()));
      if (http) {
        http.closeAllConnections();
        await new Promise<void>((r) => http.close(() => r()));
      }
      await reconciler.idle(); // an apply in flight finishes; nothing is flushed: the rules stay for the next agent
      driver.close?.();
    },
  };
}
