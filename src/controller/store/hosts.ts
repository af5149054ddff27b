// Hosts and migration: hosts register their driver's capabilities, report what they enforce, watch
// their desired set; a port moving between hosts is held by its source until released or its hold
// ends. Effects: the store.
import type { Issue } from "../../errors.ts";
import type { Config } from "../../model/types.ts";
import { guardsForLevel } from "../../policy/guards.ts";
import { portPolicy } from "../../policy/port-policy.ts";
import { ApiError } from "../errors.ts";
import { placementHosts, endMigration, missingGuards, type Placement } from "../rules.ts";
import { notFound, type Reader, type StoreCore, type Trx } from "./core.ts";
import type { Ports } from "./ports.ts";
import {
  placement, hostView, networkView, reportView, rowToPort,
  type DesiredState, type HostRegistration, type HostView, type PortRow, type PortStatusView, type ReportOutcome, type StatusReport,
} from "./rows.ts";

export class Hosts {
  constructor(private readonly core: StoreCore, private readonly ports: Ports) {}

  register(name: string, registration: HostRegistration): Promise<HostView> {
    return this.core.write(async ({ trx, revision }) => {
      const now = this.core.now();
      const values = {
        driver: registration.driver,
        version: registration.version,
        guards: JSON.stringify([...registration.guards].sort()),
        limitations: JSON.stringify(registration.limitations),
        last_seen_ms: now,
        revision,
      };
      await trx.insertInto("host").values({ name, registered_ms: now, ...values }).onConflict((oc) => oc.column("name").doUpdateSet(values)).execute();
      return (await this.get(name, trx))!;
    });
  }

  /** Liveness only: updates lastSeenAt without a new revision (nobody watches it). */
  async heartbeat(name: string): Promise<HostView | undefined> {
    await this.core.db.updateTable("host").set({ last_seen_ms: this.core.now() }).where("name", "=", name).execute();
    return this.get(name);
  }

  async get(name: string, db: Reader = this.core.db): Promise<HostView | undefined> {
    const row = await db.selectFrom("host").selectAll().where("name", "=", name).executeTakeFirst();
    return row && hostView(row);
  }

  async list(): Promise<HostView[]> {
    return (await this.core.db.selectFrom("host").selectAll().orderBy("name").execute()).map(hostView);
  }

  delete(name: string): Promise<void> {
    return this.core.write(async ({ trx }) => {
      const deleted = await trx.deleteFrom("host").where("name", "=", name).executeTakeFirst();
      if (deleted.numDeletedRows === 0n) throw notFound("host", name);
    });
  }

  /**
   * Stores what `host`'s agent reports for its ports. A destination that applied a migrating port at
   * (or after) the revision that moved it makes it ready there; the source still keeps it. `released`
   * names ports the host let go of (the VM left: migrate-out, unplug): a source releasing a migrating
   * port ends the migration (its desired set drops the port), and the host's report of it goes.
   */
  report(host: string, reports: readonly StatusReport[], released: readonly string[] = []): Promise<ReportOutcome> {
    return this.core.write(async ({ trx, revision, touch }) => {
      const ids = [...new Set([...reports.map((r) => r.port), ...released])];
      const rows = new Map<string, PortRow>();
      for (let i = 0; i < ids.length; i += 500) {
        (await trx.selectFrom("port").selectAll().where("id", "in", ids.slice(i, i + 500)).execute()).forEach((r) => rows.set(r.id, r));
      }
      const issues: Issue[] = [];
      reports.forEach((r, i) => {
        const row = rows.get(r.port);
        if (!row || !placementHosts(placement(row)).includes(host)) issues.push({ path: `ports[${i}].port`, value: r.port, expected: `a port bound to host ${host}` });
      });
      if (issues.length > 0) throw new ApiError("VG_FORBIDDEN", `Host ${host} may only report its own ports; nothing was stored`, issues);
      const reported = new Set(reports.map((r) => r.port));
      released.forEach((port, i) => {
        if (reported.has(port)) issues.push({ path: `released[${i}]`, value: port, expected: "a port not also reported as enforced in ports" });
      });
      if (issues.length > 0) throw new ApiError("VG_INVALID", "A port cannot be both enforced and released; nothing was stored", issues);
      const now = this.core.now();
      const ready: string[] = [];
      const completed: string[] = [];
      for (const r of reports) {
        const values = {
          applied_revision: r.appliedRevision,
          guards_enforced: JSON.stringify(r.guardsEnforced),
          guards_missing: JSON.stringify(r.guardsMissing),
          drops: JSON.stringify(r.drops),
          state: r.state ?? "enforced",
          drift_repairs: r.driftRepairs ?? 0,
          last_drift_ms: r.lastDriftMs ?? null,
          reported_ms: now,
          revision,
        };
        await trx.insertInto("port_status").values({ port: r.port, host, ...values }).onConflict((oc) => oc.columns(["port", "host"]).doUpdateSet(values)).execute();
        const row = rows.get(r.port)!;
        // Only an enforced port is ready: one awaiting its device (or with an ambiguous one) has no rules there yet.
        if (row.host === host && row.migrating_from !== null && row.ready_since_ms === null && (r.state ?? "enforced") === "enforced" && r.appliedRevision >= Number(row.bound_revision)) {
          await trx.updateTable("port").set({ ready_since_ms: now, revision }).where("id", "=", r.port).execute();
          ready.push(r.port);
        }
      }
      for (const port of new Set(released)) {
        const row = rows.get(port);
        // A port no longer bound here (its migration already ended, or it was deleted) is released already.
        if (!row || !placementHosts(placement(row)).includes(host)) continue;
        await trx.deleteFrom("port_status").where("port", "=", port).where("host", "=", host).execute();
        if (row.migrating_from === host) {
          await setPlacement(trx, row, endMigration(placement(row)), revision);
          touch([host]);
          completed.push(port);
        } else if (row.migrating_from !== null) {
          // The destination let go (an incoming migration failed): it is not ready there any more.
          await trx.updateTable("port").set({ ready_since_ms: null, revision }).where("id", "=", port).execute();
        }
      }
      await trx.updateTable("host").set({ last_seen_ms: now }).where("name", "=", host).execute();
      return { revision, ready, completed };
    });
  }

  /**
   * Ends the migrations whose source held the port for migrationHoldMs after the destination applied
   * it without reporting it released (a source whose hook never ran); returns their ports.
   */
  async expireHolds(): Promise<string[]> {
    const holdMs = this.core.migrationHoldMs;
    if (holdMs <= 0) return [];
    const due = (db: Reader) => db.selectFrom("port").selectAll()
      .where("migrating_from", "is not", null).where("ready_since_ms", "<=", this.core.now() - holdMs).execute();
    if ((await due(this.core.db)).length === 0) return []; // the common case writes nothing
    return this.core.write(async ({ trx, revision, touch }) => {
      const rows = await due(trx); // again inside the write: another replica may have ended them
      for (const row of rows) {
        await trx.deleteFrom("port_status").where("port", "=", row.id).where("host", "=", row.migrating_from!).execute();
        await setPlacement(trx, row, endMigration(placement(row)), revision);
        touch([row.migrating_from!]);
      }
      return rows.map((r) => r.id);
    });
  }

  /** A port's level, the guards its host enforces or lacks, its migration and the agents' reports. */
  portStatus(id: string): Promise<PortStatusView | undefined> {
    return this.core.snapshot(async (trx) => {
      const row = await trx.selectFrom("port").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) return undefined;
      const view = (await this.ports.views(trx, [row]))[0]!;
      const host = row.host === null ? undefined : await this.get(row.host, trx);
      const required = [...guardsForLevel(view.level)];
      const reports = await trx.selectFrom("port_status").selectAll().where("port", "=", id).orderBy("host").execute();
      return {
        port: id,
        host: row.host,
        level: view.level,
        guardsRequired: required,
        guardsMissing: missingGuards(view.level, host?.guards),
        limitations: (host?.limitations ?? []).filter((l) => required.includes(l.guard)),
        hostRegistered: host !== undefined,
        migration: view.migration,
        reports: reports.map(reportView),
      };
    });
  }

  /** The host's desired set and the revision it is as of, read in one snapshot. */
  desired(host: string): Promise<DesiredState> {
    return this.core.snapshot(async (trx) => {
      const revision = await this.core.revision(trx);
      const config = await this.core.config(trx);
      const rows = await trx.selectFrom("port").selectAll()
        .where((eb) => eb.or([eb("host", "=", host), eb("migrating_from", "=", host)])).orderBy("id").execute();
      const networkIds = [...new Set(rows.map((r) => r.network))];
      const networks = new Map(networkIds.length === 0 ? [] : (await trx.selectFrom("network").selectAll().where("id", "in", networkIds).execute()).map((n) => [n.id, networkView(n)]));
      const model: Config = { antiSpoofing: config.antiSpoofing };
      const ports = rows.map((row) => portPolicy(rowToPort(row), networks.get(row.network)!, model));
      return { revision, host, config: { antiSpoofing: config.antiSpoofing, failClosed: config.failClosed }, ports };
    });
  }
}

async function setPlacement(trx: Trx, row: PortRow, b: Placement, revision: number): Promise<void> {
  await trx.updateTable("port").set({ host: b.host, migrating_from: b.migratingFrom, bound_revision: b.boundRevision, ready_since_ms: b.readySinceMs, revision }).where("id", "=", row.id).execute();
}
