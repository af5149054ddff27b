// The controller's Prometheus metrics (prom-client, a registry of its own), served at GET /metrics
// beside the API: requests by route and status, their latency, and each registered host's last
// heartbeat (read from the store at scrape time, so every replica of one PostgreSQL reports the same).
// Effects: reads the store at scrape time.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Store } from "./store/store.ts";

export class ControllerMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter;
  private readonly latency: Histogram;

  constructor(store: Pick<Store, "hosts">) {
    const registers = [this.registry];
    this.requests = new Counter({ name: "vifguard_controller_requests_total", help: "API requests by method, route (its pattern, e.g. /v1/ports/:id) and HTTP status", labelNames: ["method", "route", "status"], registers });
    // Long-polls (changedAfter, watch) wait up to their timeout: their own route label keeps them apart.
    this.latency = new Histogram({ name: "vifguard_controller_request_duration_seconds", help: "API request duration by method and route (long-polls include their wait)", labelNames: ["method", "route"], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers });
    const lastSeen = new Gauge({
      name: "vifguard_controller_host_last_seen_timestamp_seconds",
      help: "When each registered host's agent last sent a heartbeat, registration or status report (Unix time)",
      labelNames: ["host"],
      registers,
      async collect() {
        this.reset();
        for (const h of await store.hosts.list()) this.set({ host: h.name }, Date.parse(h.lastSeenAt) / 1000);
      },
    });
    void lastSeen;
    new Gauge({
      name: "vifguard_controller_hosts",
      help: "Registered hosts",
      registers,
      async collect() {
        this.set((await store.hosts.list()).length);
      },
    });
  }

  /** One answered request. `route` is the matched pattern (never the raw path: bounded labels). */
  observe(method: string, route: string, status: number, seconds: number): void {
    this.requests.inc({ method, route, status: String(status) });
    this.latency.observe({ method, route }, seconds);
  }
}
