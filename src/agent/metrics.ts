// The agent's Prometheus metrics (prom-client, a registry of its own) and the HTTP listener for
// /metrics and /healthz. Effects (a TCP socket); drop counters are read from the driver at scrape time.
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { DropCounter } from "../drivers/contract.ts";
import { PORT_STATES, type PortState } from "./plan.ts";

export type Health = Readonly<{ ok: boolean; detail: Record<string, unknown> }>;

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly reconcileSeconds: Histogram;
  private readonly lastSync: Gauge;
  private readonly drift: Counter;
  private readonly errors: Counter;
  private readonly ports: Gauge;
  private readonly revisionInfo: Gauge;
  private readonly sourceUp: Gauge;
  private readonly badDeliveries: Counter;
  private readonly lifecycle: Counter;
  private readonly spoofEvents: Counter;

  constructor(readCounters: () => Promise<readonly DropCounter[]>) {
    const registers = [this.registry];
    // The registry collects in registration order: the first metric reads the driver once per
    // scrape and fills the bytes counter and the up gauge registered after it.
    const droppedBytes = new Counter({ name: "vifguard_dropped_bytes_total", help: "Bytes dropped per port and reason (guard), since the port's rules were installed", labelNames: ["port", "reason"], registers: [] });
    const countersUp = new Gauge({ name: "vifguard_counters_up", help: "1 when the driver's drop counters could be read at this scrape", registers: [] });
    new Counter({
      name: "vifguard_dropped_frames_total",
      help: "Frames dropped per port and reason (guard), since the port's rules were installed",
      labelNames: ["port", "reason"],
      registers,
      async collect() {
        this.reset();
        droppedBytes.reset();
        try {
          for (const c of await readCounters()) {
            this.inc({ port: c.port, reason: c.reason }, c.packets);
            droppedBytes.inc({ port: c.port, reason: c.reason }, c.bytes);
          }
          countersUp.set(1);
        } catch {
          countersUp.set(0);
        }
      },
    });
    this.registry.registerMetric(droppedBytes);
    this.registry.registerMetric(countersUp);
    this.reconcileSeconds = new Histogram({ name: "vifguard_reconcile_duration_seconds", help: "Duration of a reconcile (compile, observe, apply)", labelNames: ["result"], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.lastSync = new Gauge({ name: "vifguard_last_successful_sync_timestamp_seconds", help: "When the dataplane last matched the desired state (Unix time)", registers });
    this.drift = new Counter({ name: "vifguard_drift_repairs_total", help: "Port units (and the fail-closed unit) repaired after they changed behind the agent's back", registers });
    this.errors = new Counter({ name: "vifguard_reconcile_errors_total", help: "Reconciles that failed (the next one retries)", registers });
    this.ports = new Gauge({ name: "vifguard_ports", help: "Ports of the desired state by state: enforced, pending, awaiting-device (its device is not there yet), ambiguous-device (several devices match its MAC), unplugged", labelNames: ["state"], registers });
    this.revisionInfo = new Gauge({ name: "vifguard_desired_info", help: "The desired state being enforced (value 1)", labelNames: ["revision", "origin", "saved"], registers });
    this.sourceUp = new Gauge({ name: "vifguard_source_up", help: "1 when the last read of the desired-state source succeeded and was valid", registers });
    this.badDeliveries = new Counter({ name: "vifguard_source_errors_total", help: "Reads of the desired-state source that failed or were invalid (the last good state stays)", labelNames: ["kind"], registers });
    this.spoofEvents = new Counter({ name: "vifguard_spoof_events_total", help: "Spoof events begun (an episode of drops of one port for one reason, see vifguard events)", labelNames: ["port", "reason"], registers });
    this.lifecycle = new Counter({ name: "vifguard_lifecycle_requests_total", help: "plug, unplug, migrate-in and migrate-out requests by result", labelNames: ["op", "result"], registers });
    for (const state of PORT_STATES) this.ports.set({ state }, 0);
  }

  synced(durationMs: number, nowMs: number, counts: Record<PortState, number>, drift: number): void {
    this.reconcileSeconds.observe({ result: "ok" }, durationMs / 1000);
    this.lastSync.set(nowMs / 1000);
    if (drift > 0) this.drift.inc(drift);
    for (const [state, n] of Object.entries(counts)) this.ports.set({ state }, n);
  }

  failed(durationMs: number): void {
    this.reconcileSeconds.observe({ result: "error" }, durationMs / 1000);
    this.errors.inc();
  }

  desired(revision: string, origin: string, saved: boolean): void {
    this.revisionInfo.reset();
    this.revisionInfo.set({ revision, origin, saved: String(saved) }, 1);
  }

  source(up: boolean, kind?: "unreadable" | "invalid"): void {
    this.sourceUp.set(up ? 1 : 0);
    if (kind) this.badDeliveries.inc({ kind });
  }

  /** A spoof event begun (its first report). */
  spoofEvent(port: string, reason: string): void {
    this.spoofEvents.inc({ port, reason });
  }

  request(op: string, ok: boolean): void {
    this.lifecycle.inc({ op, result: ok ? "ok" : "error" });
  }
}

/** Serves /metrics and /healthz on host:port; resolves once listening (with the bound port). */
export async function serveMetrics(metrics: AgentMetrics, health: () => Health, host: string, port: number): Promise<{ server: Server; port: number }> {
  const server = createServer((request, response) => {
    const path = (request.url ?? "/").split("?")[0];
    if (request.method !== "GET") {
      response.writeHead(405).end();
    } else if (path === "/metrics") {
      metrics.registry.metrics().then(
        (text) => response.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
        (error: Error) => response.writeHead(500, { "content-type": "text/plain" }).end(error.message),
      );
    } else if (path === "/healthz") {
      const h = health();
      response.writeHead(h.ok ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ status: h.ok ? "ok" : "failing", ...h.detail }) + "\n");
    } else {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: try /metrics or /healthz\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return { server, port: typeof address === "object" && address ? address.port : port };
}
