// The page's calls to the controller's /v1 API: the operator's token travels only in the
// Authorization header (never in a URL, so no log or Referer carries it) and is kept in
// sessionStorage (gone when the tab closes). Effects: fetch, sessionStorage.
import type { ApiErrorBody, EventPage, Host, Port, PortStatus } from "./api-types.ts";

const TOKEN_KEY = "vifguard.token";

export function savedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

export function saveToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An answer other than the one expected: the controller's {code, message}, or why there was none. */
export class RequestError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export class Api {
  constructor(private readonly token: string) {}

  private async get<T>(path: string, signal?: AbortSignal): Promise<T> {
    let answer: Response;
    try {
      answer = await fetch(path, { headers: { authorization: `Bearer ${this.token}`, accept: "application/json" }, cache: "no-store", ...(signal && { signal }) });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new RequestError(0, "VG_UNREACHABLE", `The controller did not answer (${(error as Error).message})`);
    }
    if (answer.ok) return (await answer.json()) as T;
    const body = (await answer.json().catch(() => undefined)) as ApiErrorBody | undefined;
    throw new RequestError(answer.status, body?.code ?? `HTTP_${answer.status}`, body?.message ?? `HTTP ${answer.status} from ${path}`);
  }

  /** Admin only: 403 for tenants. */
  hosts(): Promise<Host[]> {
    return this.get("/v1/hosts");
  }

  ports(): Promise<Port[]> {
    return this.get("/v1/ports");
  }

  portStatus(id: string): Promise<PortStatus> {
    return this.get(`/v1/ports/${encodeURIComponent(id)}/status`);
  }

  /** The newest events (one page). */
  events(limit: number): Promise<EventPage> {
    return this.get(`/v1/events?limit=${limit}`);
  }

  /** Long-poll: events stored after `cursor`, waiting up to timeoutMs for one. */
  eventsAfter(cursor: number, timeoutMs: number, signal: AbortSignal): Promise<EventPage> {
    return this.get(`/v1/events?changedAfter=${cursor}&timeoutMs=${timeoutMs}&limit=1000`, signal);
  }
}
