// Spoof events: what the agents report with their status (src/agent/events.ts), with the port's tenant
// and network and who holds the claimed address, kept for a bounded time and number; listed newest
// first, or changed after a cursor (the long-poll). Writes do not bump the revision: nobody's desired
// state changes. Effects: the store.
import { parseAddress } from "../../model/ip.ts";
import { parseMac } from "../../model/mac.ts";
import type { Guard } from "../../policy/guards.ts";
import { claimRange } from "../rules.ts";
import type { Reader, StoreCore } from "./core.ts";
import type { SpoofEventTable } from "./schema.ts";

/** One event as an agent reports it. */
export type EventReport = Readonly<{
  id: string;
  port: string;
  reason: string;
  firstSeenMs: number;
  lastSeenMs: number;
  count: number;
  claimed: readonly string[];
  samples: readonly Record<string, unknown>[];
}>;

export type EventView = Readonly<{
  id: string;
  host: string;
  port: string;
  tenant: string;
  network: string;
  reason: Guard;
  firstSeenAt: string;
  lastSeenAt: string;
  count: number;
  claimed: string[];
  /** The port (and its tenant) that holds claimed[0] on the network; null when none, or hidden from this reader. */
  claimedFrom: { port: string; tenant: string } | null;
  samples: Record<string, string | number>[];
  updatedMs: number;
}>;

export type EventQuery = Readonly<{
  tenant?: string;
  port?: string;
  host?: string;
  reason?: string;
  /** last seen at or after (ms) */
  sinceMs?: number;
  /** first seen before (ms) */
  untilMs?: number;
  /** Page: events older (by last seen, then id) than this cursor. */
  before?: Readonly<{ lastSeenMs: number; key: string }>;
  /** Long-poll: events stored after this updatedMs cursor, oldest change first. */
  changedAfterMs?: number;
  limit: number;
}>;

export type EventRetention = Readonly<{
  /** Events last seen longer ago are removed. */
  maxAgeMs: number;
  /** At most this many are kept (the oldest by last seen go). */
  maxEvents: number;
}>;

export const DEFAULT_EVENT_RETENTION: EventRetention = { maxAgeMs: 7 * 24 * 3_600_000, maxEvents: 100_000 };

export function eventView(row: SpoofEventTable, showOwner: (ownerTenant: string) => boolean): EventView {
  return {
    id: row.key,
    host: row.host,
    port: row.port,
    tenant: row.tenant,
    network: row.network,
    reason: row.reason as Guard,
    firstSeenAt: new Date(Number(row.first_seen_ms)).toISOString(),
    lastSeenAt: new Date(Number(row.last_seen_ms)).toISOString(),
    count: Number(row.count),
    claimed: JSON.parse(row.claimed) as string[],
    claimedFrom: row.owner_port !== null && row.owner_tenant !== null && showOwner(row.owner_tenant) ? { port: row.owner_port, tenant: row.owner_tenant } : null,
    samples: JSON.parse(row.samples) as Record<string, string | number>[],
    updatedMs: Number(row.updated_ms),
  };
}

export class SpoofEvents {
  private lastUpdatedMs = 0;
  private lastPrunedMs = 0;

  constructor(private readonly core: StoreCore, readonly retention: EventRetention = DEFAULT_EVENT_RETENTION) {}

  /** A cursor strictly after every one this process handed out. */
  private stamp(): number {
    this.lastUpdatedMs = Math.max(this.core.now(), this.lastUpdatedMs + 1);
    return this.lastUpdatedMs;
  }

  /** Who holds `claimed` (an address or a MAC) on `network`, other than `port`. */
  private async owner(db: Reader, network: string, port: string, claimed: string | undefined): Promise<{ port: string; tenant: string } | undefined> {
    if (claimed === undefined) return undefined;
    const mac = parseMac(claimed);
    const address = mac ? undefined : parseAddress(claimed);
    if (!mac && !address) return undefined;
    let query = db.selectFrom("claim").select(["port", "tenant"]).where("network", "=", network).where("port", "<>", port);
    if (mac) query = query.where("kind", "=", "mac").where("lo", "=", mac);
    else {
      const { lo } = claimRange(address!);
      query = query.where("kind", "=", "ip").where("family", "=", address!.family).where("lo", "<=", lo).where("hi", ">=", lo).orderBy("length", "desc");
    }
    return query.limit(1).executeTakeFirst();
  }

  /**
   * Stores `host`'s events of ports bound to it (as destination or migration source); returns how
   * many it took and the events of other ports it ignored. Prunes by the retention now and then.
   */
  async record(host: string, events: readonly EventReport[]): Promise<{ stored: number; ignored: string[] }> {
    if (events.length === 0) return { stored: 0, ignored: [] };
    const ids = [...new Set(events.map((e) => e.port))];
    const ports = new Map<string, { tenant: string; network: string }>();
    for (let i = 0; i < ids.length; i += 300) {
      const rows = await this.core.db.selectFrom("port").select(["id", "tenant", "network"]).where("id", "in", ids.slice(i, i + 300))
        .where((eb) => eb.or([eb("host", "=", host), eb("migrating_from", "=", host)])).execute();
      for (const r of rows) ports.set(r.id, { tenant: r.tenant, network: r.network });
    }
    const ignored: string[] = [];
    let stored = 0;
    await this.core.db.transaction().execute(async (trx) => {
      for (const e of events) {
        const port = ports.get(e.port);
        if (!port) {
          ignored.push(e.id);
          continue;
        }
        const owner = await this.owner(trx, port.network, e.port, e.claimed[0]);
        const values = {
          host,
          port: e.port,
          tenant: port.tenant,
          network: port.network,
          reason: e.reason,
          first_seen_ms: e.firstSeenMs,
          last_seen_ms: e.lastSeenMs,
          count: e.count,
          claimed: JSON.stringify(e.claimed),
          owner_port: owner?.port ?? null,
          owner_tenant: owner?.tenant ?? null,
          samples: JSON.stringify(e.samples),
          updated_ms: this.stamp(),
        };
        await trx.insertInto("spoof_event").values({ key: `${host}/${e.id}`, ...values }).onConflict((oc) => oc.column("key").doUpdateSet(values)).execute();
        stored++;
      }
    });
    if (this.core.now() - this.lastPrunedMs >= 10_000) await this.prune();
    if (stored > 0) this.core.events.emit("spoof-events");
    return { stored, ignored };
  }

  /** Removes events beyond the retention: last seen before maxAgeMs ago, and all but the newest maxEvents. */
  async prune(): Promise<number> {
    const now = this.core.now();
    this.lastPrunedMs = now;
    const old = await this.core.db.deleteFrom("spoof_event").where("last_seen_ms", "<", now - this.retention.maxAgeMs).executeTakeFirst();
    let removed = Number(old.numDeletedRows);
    const cut = await this.core.db.selectFrom("spoof_event").select(["last_seen_ms", "key"]).orderBy("last_seen_ms", "desc").orderBy("key", "desc").offset(this.retention.maxEvents).limit(1).executeTakeFirst();
    if (cut) {
      const over = await this.core.db.deleteFrom("spoof_event")
        .where((eb) => eb.or([eb("last_seen_ms", "<", cut.last_seen_ms), eb.and([eb("last_seen_ms", "=", cut.last_seen_ms), eb("key", "<=", cut.key)])]))
        .executeTakeFirst();
      removed += Number(over.numDeletedRows);
    }
    return removed;
  }

  /** Events matching `q`: newest first by last seen, or with changedAfterMs oldest change first. */
  async list(q: EventQuery): Promise<SpoofEventTable[]> {
    let query = this.core.db.selectFrom("spoof_event").selectAll();
    if (q.tenant !== undefined) query = query.where("tenant", "=", q.tenant);
    if (q.port !== undefined) query = query.where("port", "=", q.port);
    if (q.host !== undefined) query = query.where("host", "=", q.host);
    if (q.reason !== undefined) query = query.where("reason", "=", q.reason);
    if (q.sinceMs !== undefined) query = query.where("last_seen_ms", ">=", q.sinceMs);
    if (q.untilMs !== undefined) query = query.where("first_seen_ms", "<", q.untilMs);
    if (q.changedAfterMs !== undefined) {
      return query.where("updated_ms", ">", q.changedAfterMs).orderBy("updated_ms", "asc").orderBy("key", "asc").limit(q.limit).execute();
    }
    const b = q.before;
    if (b) query = query.where((eb) => eb.or([eb("last_seen_ms", "<", b.lastSeenMs), eb.and([eb("last_seen_ms", "=", b.lastSeenMs), eb("key", "<", b.key)])]));
    return query.orderBy("last_seen_ms", "desc").orderBy("key", "desc").limit(q.limit).execute();
  }

  /** The newest updatedMs stored (the cursor a long-poll starts from), 0 when none. */
  async cursor(): Promise<number> {
    const row = await this.core.db.selectFrom("spoof_event").select((eb) => eb.fn.max("updated_ms").as("max")).executeTakeFirst();
    return row?.max === null || row?.max === undefined ? 0 : Number(row.max);
  }
}
