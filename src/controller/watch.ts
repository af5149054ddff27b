// Follows the store's revision and wakes long-polls whose host's desired set changed. Works across
// replicas: it reads the change log by revision, on every local commit, on PostgreSQL NOTIFY, and
// on a timer (the fallback if a notification is lost). Waiters live in memory, but nothing that
// matters does: an agent resumes with `since=REV` against any replica. Effects: timers, the store.
import type { Store } from "./store/store.ts";

type Waiter = { host: string | undefined; wake: (revision?: number) => void };

export type WatchOptions = Readonly<{ pollMs?: number }>;

export class RevisionWatch {
  private readonly store: Store;
  private readonly pollMs: number;
  private seen = 0;
  /** By host (undefined: waits for any change), so a change wakes its hosts' polls without a look at the other 999. */
  private readonly waiters = new Map<string | undefined, Set<Waiter>>();
  private timer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private readonly onCommit = (): void => this.refresh();

  constructor(store: Store, options: WatchOptions = {}) {
    this.store = store;
    this.pollMs = options.pollMs ?? 1000;
  }

  /** The newest revision this watch has seen. */
  get revision(): number {
    return this.seen;
  }

  async start(): Promise<void> {
    this.seen = await this.store.revision();
    this.store.events.on("commit", this.onCommit);
    if (this.store.listen) this.unlisten = await this.store.listen(() => this.refresh());
    this.timer = setInterval(() => this.refresh(), this.pollMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.store.events.off("commit", this.onCommit);
    await this.unlisten?.();
    for (const w of this.all()) w.wake();
    this.waiters.clear();
    await this.running?.catch(() => undefined);
  }

  /** Reads what changed since the last look; coalesces calls that come while one runs. */
  refresh(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const { revision, hosts } = await this.store.changesSince(this.seen);
        if (revision <= this.seen) continue;
        this.seen = revision;
        const all = hosts.get("*");
        const woken = all !== undefined ? this.all() : [...this.waiters.get(undefined) ?? [], ...[...hosts.keys()].flatMap((h) => [...this.waiters.get(h) ?? []])];
        for (const w of woken) w.wake(w.host === undefined ? revision : Math.max(all ?? 0, hosts.get(w.host) ?? 0));
      } while (this.again);
    })().catch(() => undefined).finally(() => (this.running = undefined));
  }

  /**
   * A wait that ends when a change to `host`'s desired set (any change, if `host` is undefined) is
   * seen, on `timeoutMs`, or on `signal`. Register it before checking the store, so that nothing
   * committed after the check is missed; then `await wait.done` (true: woken by a change). A wait
   * woken by a change knows its `revision`: the newest one seen that touched `host` (or any, for
   * undefined), which spares the woken long-poll asking the store whether its host changed.
   */
  waitFor(host: string | undefined, timeoutMs: number, signal?: AbortSignal): { done: Promise<boolean>; readonly revision: number | undefined; cancel(): void } {
    let settle!: (woken: boolean) => void;
    let changedAt: number | undefined;
    const done = new Promise<boolean>((resolve) => (settle = resolve));
    const finish = (woken: boolean, revision?: number): void => {
      const set = this.waiters.get(host);
      if (!set?.delete(waiter)) return;
      if (set.size === 0) this.waiters.delete(host);
      changedAt = revision;
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      settle(woken);
    };
    const onAbort = (): void => finish(false);
    const waiter: Waiter = { host, wake: (revision) => finish(true, revision) };
    const set = this.waiters.get(host);
    if (set) set.add(waiter);
    else this.waiters.set(host, new Set([waiter]));
    const timer = setTimeout(() => finish(false), Math.max(0, timeoutMs));
    signal?.addEventListener("abort", onAbort);
    if (signal?.aborted) finish(false);
    return { done, get revision() { return changedAt; }, cancel: () => finish(false) };
  }

  /** How many long-polls wait now (metrics, tests). */
  get waiting(): number {
    let n = 0;
    for (const set of this.waiters.values()) n += set.size;
    return n;
  }

  private all(): Waiter[] {
    return [...this.waiters.values()].flatMap((set) => [...set]);
  }
}
