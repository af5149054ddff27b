// Desired state from the controller: long-polls GET /v1/hosts/{host}/desired?since=REV&timeoutMs=
// with a bearer token read from a file (re-read on every request, so it can be rotated). Effects (network, fs).
import { readFile } from "node:fs/promises";
import type { Delivery } from "../desired.ts";
import { decodeControllerAnswer } from "../desired.ts";
import type { DesiredSource, SourceHandlers } from "./source.ts";

export type ControllerSourceOptions = Readonly<{ url: string; tokenFile: string; host: string; pollTimeoutMs: number; retryMs: number }>;

/** The controller answered, but not with a desired state. */
export class ControllerUnavailableError extends Error {
  override name = "ControllerUnavailableError";
}

export class ControllerSource implements DesiredSource {
  readonly origin: string;
  private readonly options: ControllerSourceOptions;
  private revision: string | undefined;
  private abort: AbortController | undefined;
  private stopped = false;

  constructor(options: ControllerSourceOptions) {
    this.options = options;
    this.origin = `${options.url.replace(/\/+$/, "")}/v1/hosts/${encodeURIComponent(options.host)}/desired`;
  }

  private async request(since: string | undefined, waitMs: number, signal: AbortSignal): Promise<Delivery | undefined> {
    const token = (await readFile(this.options.tokenFile, "utf8")).trim();
    const query = new URLSearchParams({ timeoutMs: String(waitMs) });
    if (since !== undefined) query.set("since", since);
    const response = await fetch(`${this.origin}?${query}`, {
      headers: { authorization: `Bearer ${token}`, accept: "application/json" },
      signal: AbortSignal.any([signal, AbortSignal.timeout(waitMs + 10_000)]),
    });
    if (response.status === 304 || response.status === 204) return undefined; // nothing newer
    const body = await response.text();
    if (!response.ok) throw new ControllerUnavailableError(`${this.origin}: HTTP ${response.status}: ${body.slice(0, 200)}`);
    const { revision } = decodeControllerAnswer(body, this.origin); // only the revision here; the agent decodes again and keeps the last good
    return { format: "controller", origin: this.origin, revision, body };
  }

  async fetch(timeoutMs: number): Promise<Delivery> {
    const delivery = await this.request(undefined, 0, AbortSignal.timeout(timeoutMs));
    if (!delivery) throw new ControllerUnavailableError(`${this.origin}: no desired state`);
    return delivery;
  }

  seen(revision: string): void {
    this.revision = revision;
  }

  start(handlers: SourceHandlers): void {
    const loop = async (): Promise<void> => {
      while (!this.stopped) {
        this.abort = new AbortController();
        try {
          const delivery = await this.request(this.revision, this.options.pollTimeoutMs, this.abort.signal);
          if (delivery && delivery.revision !== this.revision) {
            this.revision = delivery.revision;
            handlers.onDelivery(delivery);
          }
        } catch (error) {
          if (this.stopped) return;
          handlers.onError(error instanceof Error ? error : new Error(String(error)));
          await new Promise((r) => setTimeout(r, this.options.retryMs));
        }
      }
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}
