// The agent's side of the controller beyond the desired state: registers the host (driver,
// version, capabilities), heartbeats, reports each port's status after an apply and the ports it
// released (unplugged, migrated out), and waits for a migrating port to be ready. Effects (network,
// and the token file, re-read on every request).
import { readFile } from "node:fs/promises";
import { VifguardError } from "../errors.ts";
import type { PortState } from "./plan.ts";
import type { SpoofEvent } from "./events.ts";
import { changedReports, type HostRegistration, type PortReport } from "./report.ts";

export type ControllerLinkOptions = Readonly<{
  url: string;
  tokenFile: string;
  host: string;
  /** Period of heartbeats. */
  heartbeatMs: number;
  /** Pause after a failed request before the next try. */
  retryMs: number;
  log: Readonly<{
    info(fields: Record<string, unknown>, message: string): void;
    warn(fields: Record<string, unknown>, message: string): void;
    debug(fields: Record<string, unknown>, message: string): void;
  }>;
}>;

/** The controller refused or could not be reached. */
export class ControllerRequestError extends VifguardError {
  override name = "ControllerRequestError";
  readonly code = "VG_CONTROLLER_REQUEST";
  readonly status: number | undefined;
  readonly body: unknown;
  constructor(message: string, status?: number, body?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.body = body;
  }
}

/** The answer of `GET /v1/ports/{id}/migration`. */
export type MigrationAnswer = Readonly<{ state: string; host: string | null; source: string | null; boundRevision: number; appliedRevision: number | null; ready: boolean }>;

/** Ports per status request: well under the controller's default body limit (1 MiB). */
const REPORT_CHUNK = 500;
/** Spoof events per status request (each carries a few decoded frames). */
const EVENT_CHUNK = 200;
/** Events waiting for the controller beyond this many: the oldest are dropped (counted, logged). */
const EVENT_BACKLOG = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ControllerLink {
  private readonly options: ControllerLinkOptions;
  private readonly base: string;
  private registration: HostRegistration | undefined;
  private registered = false;
  private stopped = false;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly abort = new AbortController();
  // Reports: the latest full set wins; only what the controller has not accepted yet is sent.
  private latest: PortReport[] | undefined;
  private dirty = false;
  private sending: Promise<void> | undefined;
  private readonly accepted = new Map<string, string>();
  // Released ports (unplugged, migrated out) of the latest sync, and the revision it applied. They
  // are sent again with every new revision: a migration that starts after the VM already left (the
  // port was unplugged here before the move) ends only when the controller hears it again.
  private released: string[] = [];
  private releasedRevision: string | undefined;
  private readonly acceptedReleased = new Set<string>();
  private acceptedRevision: string | undefined;
  // Spoof events not yet accepted, by id (a newer version of an event replaces the older).
  private events = new Map<string, SpoofEvent>();
  private eventsDropped = 0;

  constructor(options: ControllerLinkOptions) {
    this.options = options;
    this.base = options.url.replace(/\/+$/, "");
  }

  private hostPath(suffix = ""): string {
    return `/v1/hosts/${encodeURIComponent(this.options.host)}${suffix}`;
  }

  private async request(method: string, path: string, body?: unknown, waitMs = 0): Promise<{ status: number; body: unknown }> {
    const token = (await readFile(this.options.tokenFile, "utf8")).trim();
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, accept: "application/json", ...(body !== undefined && { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(waitMs + 10_000)]),
      });
    } catch (cause) {
      throw new ControllerRequestError(`${method} ${this.base}${path}: ${(cause as Error).message}`, undefined, undefined, { cause });
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = text;
    }
    return { status: response.status, body: json };
  }

  private async expect(method: string, path: string, body: unknown, ok: readonly number[], waitMs = 0): Promise<unknown> {
    const answer = await this.request(method, path, body, waitMs);
    if (!ok.includes(answer.status)) throw new ControllerRequestError(`${method} ${this.base}${path}: HTTP ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`, answer.status, answer.body);
    return answer.body;
  }

  /** Registers the host now and then keeps it registered (heartbeats; re-registers if forgotten) until stop(). */
  start(registration: HostRegistration): void {
    this.registration = registration;
    const beat = async (): Promise<void> => {
      if (this.stopped) return;
      try {
        if (!this.registered) await this.register();
        else {
          const answer = await this.request("POST", this.hostPath("/heartbeat"));
          if (answer.status === 404) {
            this.options.log.warn({ host: this.options.host }, `the controller forgot host ${this.options.host}: registering again`);
            this.registered = false;
            await this.register();
          } else if (answer.status !== 200) throw new ControllerRequestError(`heartbeat: HTTP ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`, answer.status, answer.body);
        }
      } catch (error) {
        this.options.log.debug({ err: error }, `controller heartbeat failed: ${(error as Error).message}`);
      }
      if (!this.stopped) this.heartbeat = setTimeout(() => void beat(), this.registered ? this.options.heartbeatMs : this.options.retryMs);
    };
    void beat();
  }

  private async register(): Promise<void> {
    await this.expect("PUT", this.hostPath(), this.registration, [200]);
    this.registered = true;
    const r = this.registration!;
    this.options.log.info({ host: this.options.host, driver: r.driver, guards: r.capabilities.guards.length, limitations: r.capabilities.limitations.map((l) => l.id) }, `registered host ${this.options.host} at ${this.base} (driver ${r.driver}, ${r.capabilities.guards.length} guards)`);
  }

  /**
   * Hands over the status of every enforced port, and (from the sync's port states) the ports this
   * host released: desired here but unplugged, i.e. the VM left (`vifguard port unplug`,
   * `migrate-out`). The controller ends a migration when its source releases the port; until then
   * the source keeps it, since the VM runs there until the switch-over. Sent at once (in the
   * background), retried until accepted or replaced by a newer set.
   */
  submit(reports: PortReport[], sync?: Readonly<{ revision: string | undefined; states: ReadonlyMap<string, PortState> }>): void {
    this.latest = reports;
    if (sync) {
      this.released = [...sync.states].filter(([, state]) => state === "unplugged").map(([port]) => port).sort();
      this.releasedRevision = sync.revision;
      // A port plugged again is no longer released: a later release must be sent again.
      for (const port of this.acceptedReleased) if (!this.released.includes(port)) this.acceptedReleased.delete(port);
    }
    this.kick();
  }

  /**
   * Hands over spoof events: they ride with the next status report (alone if no port changed),
   * retried like reports; a backlog beyond EVENT_BACKLOG loses its oldest events.
   */
  submitEvents(events: readonly SpoofEvent[]): void {
    for (const e of events) {
      this.events.delete(e.id);
      this.events.set(e.id, e);
    }
    while (this.events.size > EVENT_BACKLOG) {
      this.events.delete(this.events.keys().next().value!);
      this.eventsDropped++;
    }
    this.kick();
  }

  private kick(): void {
    this.dirty = true;
    if (this.sending || this.stopped) return;
    this.sending = (async () => {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        const reports = this.latest ?? [];
        try {
          await this.send(changedReports(reports, this.accepted));
        } catch (error) {
          this.options.log.debug({ err: error }, `status report not delivered (retrying): ${(error as Error).message}`);
          if (this.latest === reports) this.dirty = true;
          if (!this.stopped) await sleep(this.options.retryMs);
        }
      }
    })().finally(() => (this.sending = undefined));
  }

  /** Resolves when every submitted report was delivered (or the link stopped). */
  async delivered(): Promise<void> {
    while (this.sending) await this.sending;
  }

  /** Released ports the controller has not accepted as of this revision (all of them after a new revision). */
  private releasedToSend(): string[] {
    if (this.released.length === 0) return [];
    if (this.releasedRevision !== this.acceptedRevision) return this.released;
    return this.released.some((p) => !this.acceptedReleased.has(p)) ? this.released : [];
  }

  private async send(reports: readonly PortReport[]): Promise<void> {
    const released = this.releasedToSend();
    const revision = this.releasedRevision;
    const events = [...this.events.values()];
    if (this.eventsDropped > 0) {
      this.options.log.warn({ dropped: this.eventsDropped }, `${this.eventsDropped} spoof events were dropped: the controller did not take them in time`);
      this.eventsDropped = 0;
    }
    // Released ports ride with the first chunk, events with the first ones; alone if no report changed.
    const chunks = Math.max(reports.length === 0 && released.length > 0 ? 1 : Math.ceil(reports.length / REPORT_CHUNK), Math.ceil(events.length / EVENT_CHUNK));
    for (let n = 0; n < chunks; n++) {
      let chunk = reports.slice(n * REPORT_CHUNK, (n + 1) * REPORT_CHUNK);
      const withReleased = n === 0 && released.length > 0;
      const eventChunk = events.slice(n * EVENT_CHUNK, (n + 1) * EVENT_CHUNK);
      const extra = { ...(withReleased && { released }), ...(eventChunk.length > 0 && { events: eventChunk }) };
      let answer = await this.request("PUT", this.hostPath("/status"), { ports: chunk, ...extra });
      // A port can leave this host between our apply and this report (its migration ended): the
      // controller refuses the whole report naming it; leave it out and send the rest.
      for (let attempt = 0; answer.status === 403 && attempt < 3; attempt++) {
        const gone = new Set(issuesOf(answer.body).flatMap((issue) => /^ports\[(\d+)\]\.port$/.exec(issue.path)?.[1] ?? []).map(Number));
        if (gone.size === 0) break;
        chunk = chunk.filter((_, j) => !gone.has(j));
        if (chunk.length === 0 && !withReleased && eventChunk.length === 0) break;
        answer = await this.request("PUT", this.hostPath("/status"), { ports: chunk, ...extra });
      }
      if (chunk.length === 0 && !withReleased && eventChunk.length === 0) continue;
      if (answer.status !== 200) throw new ControllerRequestError(`PUT ${this.hostPath("/status")}: HTTP ${answer.status}: ${JSON.stringify(answer.body).slice(0, 300)}`, answer.status, answer.body);
      for (const r of chunk) this.accepted.set(r.port, JSON.stringify(r));
      for (const e of eventChunk) if (this.events.get(e.id) === e) this.events.delete(e.id);
      if (withReleased) {
        released.forEach((p) => this.acceptedReleased.add(p));
        this.acceptedRevision = revision;
      }
      const { readyMigrations: ready = [], completedMigrations: completed = [] } = (answer.body ?? {}) as { readyMigrations?: string[]; completedMigrations?: string[] };
      if (ready.length > 0) this.options.log.info({ ports: ready }, `ready on ${this.options.host} (their sources keep them until the switch-over): ${ready.join(", ")}`);
      if (completed.length > 0) this.options.log.info({ ports: completed }, `released by ${this.options.host}, migrations completed: ${completed.join(", ")}`);
    }
    const names = new Set(this.latest?.map((r) => r.port));
    for (const port of this.accepted.keys()) if (!names.has(port)) this.accepted.delete(port);
  }

  /**
   * Waits until the controller says `port` is ready on this host (the destination of a migration
   * applied it), up to `timeoutMs`; resolves with the last answer (`ready` false after the timeout).
   */
  async waitReady(port: string, timeoutMs: number): Promise<MigrationAnswer> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const waitMs = Math.max(0, Math.min(120_000, Math.round(deadline - performance.now())));
      const query = new URLSearchParams({ readyOn: this.options.host, timeoutMs: String(waitMs) });
      try {
        const answer = (await this.expect("GET", `/v1/ports/${encodeURIComponent(port)}/migration?${query}`, undefined, [200], waitMs)) as MigrationAnswer;
        if (answer.ready || performance.now() >= deadline) return answer;
      } catch (error) {
        if (this.stopped || performance.now() >= deadline || (error instanceof ControllerRequestError && error.status !== undefined && error.status < 500)) throw error;
        await sleep(Math.min(this.options.retryMs, Math.max(0, deadline - performance.now())));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.heartbeat);
    this.abort.abort();
  }
}

function issuesOf(body: unknown): { path: string }[] {
  const issues = (body as { issues?: unknown } | undefined)?.issues;
  return Array.isArray(issues) ? issues.filter((i): i is { path: string } => typeof (i as { path?: unknown })?.path === "string") : [];
}
