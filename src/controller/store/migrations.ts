// The controller's migrations, one set for SQLite and PostgreSQL, run by Kysely's Migrator (which
// takes a lock, so two replicas starting at once migrate once). Effects: DDL on the store.
import { type Kysely, type Migration, type MigrationProvider } from "kysely";
import { eui64LinkLocal } from "../../model/ip.ts";
import type { Mac } from "../../model/mac.ts";
import { claimRange } from "../rules.ts";

const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable("revision")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("value", "bigint", (c) => c.notNull())
      .execute();
    await db.insertInto("revision" as never).values({ id: 1, value: 0 } as never).execute();

    await db.schema.createTable("change")
      .addColumn("revision", "bigint", (c) => c.notNull())
      .addColumn("host", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("change_revision").on("change").columns(["revision", "host"]).execute();
    await db.schema.createIndex("change_host").on("change").columns(["host", "revision"]).execute();

    await db.schema.createTable("config")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("anti_spoofing", "integer", (c) => c.notNull())
      .addColumn("fail_closed", "integer", (c) => c.notNull())
      .addColumn("revision", "bigint", (c) => c.notNull())
      .execute();
    await db.insertInto("config" as never).values({ id: 1, anti_spoofing: 1, fail_closed: 1, revision: 0 } as never).execute();

    await db.schema.createTable("network")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("tenant", "text", (c) => c.notNull())
      .addColumn("shared", "integer", (c) => c.notNull())
      .addColumn("protection", "text", (c) => c.notNull())
      .addColumn("revision", "bigint", (c) => c.notNull())
      .execute();

    await db.schema.createTable("port")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("tenant", "text", (c) => c.notNull())
      .addColumn("network", "text", (c) => c.notNull().references("network.id"))
      .addColumn("host", "text")
      .addColumn("migrating_from", "text")
      .addColumn("bound_revision", "bigint", (c) => c.notNull())
      .addColumn("device", "text", (c) => c.notNull())
      .addColumn("mac", "text", (c) => c.notNull())
      .addColumn("ips", "text", (c) => c.notNull())
      .addColumn("allowed", "text", (c) => c.notNull())
      .addColumn("protection", "text")
      .addColumn("revision", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("port_network").on("port").column("network").execute();
    await db.schema.createIndex("port_host").on("port").column("host").execute();
    await db.schema.createIndex("port_migrating_from").on("port").column("migrating_from").execute();
    await db.schema.createIndex("port_tenant").on("port").column("tenant").execute();

    await db.schema.createTable("claim")
      .addColumn("network", "text", (c) => c.notNull())
      .addColumn("port", "text", (c) => c.notNull())
      .addColumn("tenant", "text", (c) => c.notNull())
      .addColumn("kind", "text", (c) => c.notNull())
      .addColumn("family", "integer", (c) => c.notNull())
      .addColumn("lo", "text", (c) => c.notNull())
      .addColumn("hi", "text", (c) => c.notNull())
      .addColumn("length", "integer", (c) => c.notNull())
      .addColumn("text", "text", (c) => c.notNull())
      .addColumn("path", "text", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("claim_range").on("claim").columns(["network", "kind", "family", "lo"]).execute();
    await db.schema.createIndex("claim_port").on("claim").column("port").execute();

    await db.schema.createTable("host")
      .addColumn("name", "text", (c) => c.primaryKey())
      .addColumn("driver", "text", (c) => c.notNull())
      .addColumn("version", "text", (c) => c.notNull())
      .addColumn("guards", "text", (c) => c.notNull())
      .addColumn("limitations", "text", (c) => c.notNull())
      .addColumn("registered_ms", "bigint", (c) => c.notNull())
      .addColumn("last_seen_ms", "bigint", (c) => c.notNull())
      .addColumn("revision", "bigint", (c) => c.notNull())
      .execute();

    await db.schema.createTable("port_status")
      .addColumn("port", "text", (c) => c.notNull())
      .addColumn("host", "text", (c) => c.notNull())
      .addColumn("applied_revision", "bigint", (c) => c.notNull())
      .addColumn("guards_enforced", "text", (c) => c.notNull())
      .addColumn("guards_missing", "text", (c) => c.notNull())
      .addColumn("drops", "text", (c) => c.notNull())
      .addColumn("reported_ms", "bigint", (c) => c.notNull())
      .addColumn("revision", "bigint", (c) => c.notNull())
      .addPrimaryKeyConstraint("port_status_pk", ["port", "host"])
      .execute();

    await db.schema.createTable("token")
      .addColumn("id", "text", (c) => c.primaryKey())
      .addColumn("hash", "text", (c) => c.notNull().unique())
      .addColumn("role", "text", (c) => c.notNull())
      .addColumn("tenant", "text")
      .addColumn("host", "text")
      .addColumn("name", "text", (c) => c.notNull())
      .addColumn("created_ms", "bigint", (c) => c.notNull())
      .addColumn("revision", "bigint", (c) => c.notNull())
      .execute();
  },
};

// A migration's source keeps the port until it reports it released; the hold's timeout runs from
// when the destination applied it.
const migrationHold: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable("port").addColumn("ready_since_ms", "bigint").execute();
  },
};

// Issue 12: a shared network's widest allowed pair; derived link-locals are claims (backfilled for
// stored ports); the claim check reads the lengths stored per network and family from an index.
const claimHardening: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable("network").addColumn("widest_pair", "text").execute();
    await db.schema.createIndex("claim_length").on("claim").columns(["network", "kind", "family", "length"]).execute();
    const ports = await db.selectFrom("port" as never).select(["id", "tenant", "network", "mac", "allowed"] as never[]).execute() as { id: string; tenant: string; network: string; mac: string; allowed: string }[];
    const rows = ports.flatMap((p) => {
      const macs = new Map<string, string>([[p.mac, "mac"]]);
      (JSON.parse(p.allowed) as { mac: string }[]).forEach((a, i) => macs.has(a.mac) || macs.set(a.mac, `allowed[${i}].mac`));
      return [...macs].map(([mac, path]) => {
        const prefix = eui64LinkLocal(mac as Mac);
        return { network: p.network, port: p.id, tenant: p.tenant, kind: "ip", family: 6, ...claimRange(prefix), length: 128, text: prefix.text, path };
      });
    });
    for (let i = 0; i < rows.length; i += 300) await db.insertInto("claim" as never).values(rows.slice(i, i + 300) as never).execute();
  },
};

// Spoof events reported by the agents (issue 15): one row per host and event, updated as it goes on.
const spoofEvents: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.createTable("spoof_event")
      .addColumn("key", "text", (c) => c.primaryKey())
      .addColumn("host", "text", (c) => c.notNull())
      .addColumn("port", "text", (c) => c.notNull())
      .addColumn("tenant", "text", (c) => c.notNull())
      .addColumn("network", "text", (c) => c.notNull())
      .addColumn("reason", "text", (c) => c.notNull())
      .addColumn("first_seen_ms", "bigint", (c) => c.notNull())
      .addColumn("last_seen_ms", "bigint", (c) => c.notNull())
      .addColumn("count", "bigint", (c) => c.notNull())
      .addColumn("claimed", "text", (c) => c.notNull())
      .addColumn("owner_port", "text")
      .addColumn("owner_tenant", "text")
      .addColumn("samples", "text", (c) => c.notNull())
      .addColumn("updated_ms", "bigint", (c) => c.notNull())
      .execute();
    await db.schema.createIndex("spoof_event_last_seen").on("spoof_event").columns(["last_seen_ms", "key"]).execute();
    await db.schema.createIndex("spoof_event_updated").on("spoof_event").columns(["updated_ms", "key"]).execute();
    await db.schema.createIndex("spoof_event_tenant").on("spoof_event").columns(["tenant", "last_seen_ms"]).execute();
    await db.schema.createIndex("spoof_event_port").on("spoof_event").columns(["port", "last_seen_ms"]).execute();
  },
};

// Issue 12: a network's own address ranges (JSON list of prefixes; null: none).
const networkRanges: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable("network").addColumn("ranges", "text").execute();
  },
};

// Issue 15: agents report ports awaiting their device (or with an ambiguous one) too, and each port's
// drift repairs. Rows stored before were all enforced.
const portReportState: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    await db.schema.alterTable("port_status").addColumn("state", "text", (c) => c.notNull().defaultTo("enforced")).execute();
    await db.schema.alterTable("port_status").addColumn("drift_repairs", "integer", (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable("port_status").addColumn("last_drift_ms", "bigint").execute();
  },
};

export const migrations: MigrationProvider = {
  getMigrations: () => Promise.resolve({ "001_initial": initial, "002_migration_hold": migrationHold, "003_claim_hardening": claimHardening, "004_spoof_events": spoofEvents, "005_network_ranges": networkRanges, "006_port_report_state": portReportState }),
};
