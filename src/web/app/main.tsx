// The controller's web page: a login form for a token, then hosts and their agents' health, ports
// with their status and drop counters, the live spoof events (GET /v1/events long-poll) and a chart
// of a port's drops over time. Bundled by src/web/build.ts into src/web/public/app.js.
// Effects: the DOM, timers, the controller's API (api.ts).
import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { Api, forgetToken, RequestError, savedToken, saveToken } from "./api.ts";
import type { Host, Port, PortStatus, SpoofEvent } from "./api-types.ts";
import { addSample, chartOf, dropRates, dropTotals, eventLines, hostHealth, mergeEvents, portBadges, type Badge, type CounterSample } from "./derive.ts";

const REFRESH_MS = 5_000;
const LONG_POLL_MS = 25_000;
/** Statuses are one request per port: the page reads the first ones only (an admin of a large cloud filters by tenant in the CLI). */
const MAX_STATUS_PORTS = 200;
const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function App() {
  const [token, setToken] = useState<string | undefined>(savedToken());
  const [notice, setNotice] = useState<string | undefined>();
  const api = useMemo(() => (token === undefined ? undefined : new Api(token)), [token]);
  if (api === undefined) {
    return <Login notice={notice} onToken={(t) => (saveToken(t), setNotice(undefined), setToken(t))} />;
  }
  const logout = (why?: string): void => {
    forgetToken();
    setNotice(why);
    setToken(undefined);
  };
  return <Dashboard api={api} onLogout={logout} />;
}

function Login({ notice, onToken }: { notice: string | undefined; onToken: (token: string) => void }) {
  const [error, setError] = useState<string | undefined>(notice);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const input = (e.currentTarget as HTMLFormElement).elements.namedItem("token") as HTMLInputElement;
    const token = input.value.trim();
    if (token === "") return setError("Paste a token: the admin token, or a tenant token from POST /v1/tokens.");
    setBusy(true);
    try {
      await new Api(token).ports(); // any token that may read ports
      onToken(token);
    } catch (err) {
      setError(err instanceof RequestError && err.status === 401 ? "The controller does not know this token (or it was revoked)." : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>vifguard</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label for="token">Token</label>
        <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} placeholder="an admin or tenant token" autofocus />
        <button type="submit" disabled={busy}>Open</button>
        <p class="hint">Kept in this tab only (sessionStorage) and sent as <code>Authorization: Bearer</code>; never in a URL.</p>
        {error && <p class="error" role="alert">{error}</p>}
      </form>
    </main>
  );
}

type Snapshot = Readonly<{
  atMs: number;
  /** undefined until read; null: this token may not list hosts (tenants). */
  hosts: Host[] | null | undefined;
  ports: Port[];
  statuses: ReadonlyMap<string, PortStatus>;
  error: string | undefined;
}>;

/** Reads `items` through `fn`, at most `width` at a time. */
async function pooled<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<(R | undefined)[]> {
  const out: (R | undefined)[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!).catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}

function Dashboard({ api, onLogout }: { api: Api; onLogout: (why?: string) => void }) {
  const [snap, setSnap] = useState<Snapshot>({ atMs: Date.now(), hosts: undefined, ports: [], statuses: new Map(), error: undefined });
  const [events, setEvents] = useState<ReadonlyMap<string, SpoofEvent>>(new Map());
  const [live, setLive] = useState<"connecting" | "live" | "retrying">("connecting");
  const [selected, setSelected] = useState<string | undefined>();
  const history = useRef(new Map<string, CounterSample[]>());

  // Hosts, ports and their statuses every REFRESH_MS; each poll adds a drop-counter sample per port.
  useEffect(() => {
    let stopped = false;
    const poll = async (): Promise<void> => {
      while (!stopped) {
        try {
          const [hosts, ports] = await Promise.all([
            api.hosts().catch((e: unknown) => (e instanceof RequestError && e.status === 403 ? null : Promise.reject(e))),
            api.ports(),
          ]);
          const shown = ports.slice(0, MAX_STATUS_PORTS);
          const read = await pooled(shown, 8, (p) => api.portStatus(p.id));
          const atMs = Date.now();
          const statuses = new Map<string, PortStatus>();
          read.forEach((s, i) => {
            if (!s) return;
            statuses.set(shown[i]!.id, s);
            history.current.set(s.port, addSample(history.current.get(s.port) ?? [], { atMs, totals: dropTotals(s) }));
          });
          if (!stopped) setSnap({ atMs, hosts, ports, statuses, error: undefined });
        } catch (e) {
          if (e instanceof RequestError && e.status === 401) return onLogout("The token is no longer valid.");
          if (!stopped) setSnap((s) => ({ ...s, atMs: Date.now(), error: (e as Error).message }));
        }
        await sleep(REFRESH_MS);
      }
    };
    void poll();
    return () => void (stopped = true);
  }, [api]);

  // Spoof events: the newest page, then a long-poll for every event stored after its cursor.
  useEffect(() => {
    const abort = new AbortController();
    const follow = async (): Promise<void> => {
      let cursor: number | undefined;
      while (!abort.signal.aborted) {
        try {
          const page = cursor === undefined ? await api.events(200) : await api.eventsAfter(cursor, LONG_POLL_MS, abort.signal);
          cursor = page.cursor;
          if (page.events.length > 0) setEvents((current) => mergeEvents(current, page.events));
          setLive("live");
        } catch (e) {
          if (abort.signal.aborted) return;
          if (e instanceof RequestError && e.status === 401) return onLogout("The token is no longer valid.");
          setLive("retrying");
          await sleep(2_000);
        }
      }
    };
    void follow();
    return () => abort.abort();
  }, [api]);

  const lines = eventLines(events, { timeZone, nowMs: snap.atMs });
  const chartPort = selected ?? lines[0]?.port ?? snap.ports.find((p) => Object.keys(dropTotals(snap.statuses.get(p.id))).length > 0)?.id;
  return (
    <main>
      <header>
        <h1>vifguard</h1>
        <span class="role">{snap.hosts === null ? "tenant view" : snap.hosts === undefined ? "" : "admin view"}</span>
        {snap.error && <span class="error" role="alert">{snap.error}</span>}
        <button type="button" onClick={() => onLogout()}>Log out</button>
      </header>
      <Events lines={lines} live={live} onSelect={setSelected} />
      <section>
        <h2>Drops over time{chartPort ? `: ${chartPort}` : ""}</h2>
        {chartPort ? <DropChart port={chartPort} samples={history.current.get(chartPort) ?? []} /> : <p class="empty">No port has dropped anything since this page opened.</p>}
      </section>
      <Ports ports={snap.ports} statuses={snap.statuses} selected={chartPort} onSelect={setSelected} />
      <Hosts hosts={snap.hosts} nowMs={snap.atMs} />
    </main>
  );
}

function Events({ lines, live, onSelect }: { lines: ReturnType<typeof eventLines>; live: string; onSelect: (port: string) => void }) {
  return (
    <section>
      <h2>Spoof events <span class={`live ${live}`}>{live}</span></h2>
      {lines.length === 0 ? (
        <p class="empty">No spoof events.</p>
      ) : (
        <ol class="events">
          {lines.map((l) => (
            <li key={l.key} data-port={l.port} data-reasons={l.reasons.join(" ")} data-claimed={l.claimed ?? ""} onClick={() => onSelect(l.port)}>
              {l.text}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}

function Badges({ badges }: { badges: readonly Badge[] }) {
  return <>{badges.map((b) => <span key={b.label} class={`badge ${b.tone}`} title={b.title}>{b.label}</span>)}</>;
}

function Ports({ ports, statuses, selected, onSelect }: { ports: readonly Port[]; statuses: ReadonlyMap<string, PortStatus>; selected: string | undefined; onSelect: (port: string) => void }) {
  return (
    <section>
      <h2>Ports</h2>
      {ports.length === 0 ? <p class="empty">No ports.</p> : (
        <table class="ports">
          <thead><tr><th>Port</th><th>Tenant</th><th>Host</th><th>Addresses</th><th>Level</th><th>Status</th><th>Drops (packets)</th></tr></thead>
          <tbody>
            {ports.map((p) => {
              const status = statuses.get(p.id);
              const drops = Object.entries(dropTotals(status)).filter(([, n]) => n > 0);
              return (
                <tr key={p.id} data-port={p.id} class={p.id === selected ? "selected" : ""} onClick={() => onSelect(p.id)}>
                  <td>{p.id}</td>
                  <td>{p.tenant}</td>
                  <td>{p.host ?? "—"}</td>
                  <td class="addresses">{[p.mac, ...p.ips].join(" ")}</td>
                  <td>{p.level}</td>
                  <td><Badges badges={portBadges(p, status)} /></td>
                  <td class="drops">{status === undefined ? "…" : drops.length === 0 ? "none" : drops.map(([reason, n]) => <span key={reason} class="drop">{reason} {n.toLocaleString("en-US")}</span>)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Hosts({ hosts, nowMs }: { hosts: readonly Host[] | null | undefined; nowMs: number }) {
  return (
    <section>
      <h2>Hosts</h2>
      {hosts === null ? <p class="empty">Hosts are shown to admin tokens only.</p> : hosts === undefined ? <p class="empty">…</p> : hosts.length === 0 ? <p class="empty">No host registered.</p> : (
        <table class="hosts">
          <thead><tr><th>Host</th><th>Agent</th><th>Driver</th><th>Declared limitations</th></tr></thead>
          <tbody>
            {hosts.map((h) => (
              <tr key={h.name} data-host={h.name}>
                <td>{h.name}</td>
                <td><Badges badges={[hostHealth(h, nowMs)]} /></td>
                <td>{h.driver} {h.version} <span class="muted">({h.capabilities.guards.length} guards)</span></td>
                <td>{h.capabilities.limitations.length === 0 ? "none" : (
                  <ul class="limitations">{h.capabilities.limitations.map((l) => <li key={l.id} title={l.id}><b>{l.guard}</b>: {l.description}</li>)}</ul>
                )}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

const WIDTH = 640;
const HEIGHT = 160;

function DropChart({ port, samples }: { port: string; samples: readonly CounterSample[] }) {
  const chart = chartOf(dropRates(samples), WIDTH, HEIGHT, { fromMs: samples[0]?.atMs ?? 0, toMs: samples.at(-1)?.atMs ?? 0 });
  const clock = (ms: number): string => new Date(ms).toLocaleTimeString("en-GB", { timeZone, hour12: false });
  if (chart.lines.length === 0) return <p class="empty">{`Counting ${port}'s drops: the chart starts with the second sample (every ${REFRESH_MS / 1000} s).`}</p>;
  return (
    <figure class="chart">
      <svg viewBox={`-50 -10 ${WIDTH + 60} ${HEIGHT + 30}`} role="img" aria-label={`drops per second of ${port} by reason`} data-port={port}>
        <line class="axis" x1={0} y1={HEIGHT} x2={WIDTH} y2={HEIGHT} />
        <line class="axis" x1={0} y1={0} x2={0} y2={HEIGHT} />
        <text class="tick" x={-6} y={6} text-anchor="end">{formatRate(chart.max * 1.1)}</text>
        <text class="tick" x={-6} y={HEIGHT} text-anchor="end">0</text>
        <text class="tick" x={0} y={HEIGHT + 16}>{clock(chart.fromMs)}</text>
        <text class="tick" x={WIDTH} y={HEIGHT + 16} text-anchor="end">{clock(chart.toMs)}</text>
        {chart.lines.map((l, i) => (
          <g key={l.reason} class={`c${i % 8}`}>
            <path class="series" d={l.d} data-reason={l.reason} data-max={l.max} data-points={l.dots.length} />
            {l.dots.map((p) => <circle key={p.x} class="dot" cx={p.x} cy={p.y} r={3} />)}
          </g>
        ))}
      </svg>
      <figcaption>
        {chart.lines.map((l, i) => <span key={l.reason} class={`legend c${i % 8}`} data-reason={l.reason}>{l.reason} (peak {formatRate(l.max)}/s)</span>)}
        <span class="muted">drops per second, from the counters the agents report, since this page opened</span>
      </figcaption>
    </figure>
  );
}

function formatRate(n: number): string {
  return n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(n >= 10 ? 1 : 2);
}

render(<App />, document.getElementById("app")!);
