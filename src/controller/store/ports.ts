// Ports and claims: networks, the ports on them, and the rules a write must pass against what is
// stored (no other tenant's address or MAC on the same network, one device name per host, the bound
// host's driver enforcing the port's level). Effects: the store.
import { sql } from "kysely";
import type { Issue } from "../../errors.ts";
import { parsePrefix } from "../../model/ip.ts";
import { crossTenantClaims, type Claim } from "../../model/port-file.ts";
import type { Level, Network, Port, WidestPair } from "../../model/types.ts";
import type { Guard } from "../../policy/guards.ts";
import { effectiveLevel } from "../../policy/port-policy.ts";
import { ApiError } from "../errors.ts";
import {
  placementHosts, checkNetwork, checkPort, claimRange, containingStarts, ipClaims, macClaims, missingGuards, moveTo, type NetworkInput, type PortInput,
} from "../rules.ts";
import { conflict, DEFAULT_PORT_LIMITS, notFound, type ControllerSettings, type Reader, type StoreCore, type Trx, type WriteContext } from "./core.ts";
import { claimRows, migrationView, networkView, placement, portRow, rowToPort, type AllowedView, type NetworkView, type PortRow, type PortView } from "./rows.ts";

export type PortPatch = Readonly<{
  host?: string | null;
  device?: string;
  mac?: string;
  ips?: readonly string[];
  allowed?: readonly { ip: string; mac?: string | undefined }[];
  protection?: Level | null;
  /** Edits the allowed pairs inside the write transaction (no lost update between two edits). */
  editAllowed?: (current: readonly AllowedView[]) => readonly { ip: string; mac?: string | undefined }[];
}>;
export type NetworkPatch = Readonly<{ shared?: boolean; protection?: Level; widestPair?: Partial<WidestPair>; ranges?: readonly string[] }>;
export type PortCreate = PortInput & Readonly<{ host?: string | null }>;
/**
 * What a tenant caller may learn: with `tenant` set, a refusal says "held by another tenant" instead
 * of naming another tenant's ports, and another tenant's private network is "not found".
 */
export type Audience = Readonly<{ tenant?: string }>;
/** The caller's right to act on a stored object: throws (e.g. 403) when it may not. */
export type ChangeAccess<T> = Readonly<{ canChange?: (current: T) => void }> & Audience;
/** The caller's right to put ports on a network. */
export type NetworkAccess = Readonly<{ canUseNetwork?: (network: Network) => boolean }> & Audience;

export class Networks {
  constructor(private readonly core: StoreCore) {}

  async list(filter: Readonly<{ visibleTo?: string }> = {}): Promise<NetworkView[]> {
    let q = this.core.db.selectFrom("network").selectAll().orderBy("id");
    if (filter.visibleTo !== undefined) q = q.where((eb) => eb.or([eb("tenant", "=", filter.visibleTo!), eb("shared", "=", 1)]));
    return (await q.execute()).map(networkView);
  }

  async get(id: string, db: Reader = this.core.db): Promise<NetworkView | undefined> {
    const row = await db.selectFrom("network").selectAll().where("id", "=", id).executeTakeFirst();
    return row && networkView(row);
  }

  create(input: NetworkInput): Promise<NetworkView> {
    const network = checkNetwork(input);
    return this.core.write(async ({ trx, revision }) => {
      if (await this.get(network.id, trx)) throw conflict("id", network.id, "a network id not used yet");
      const { widestPair, ranges, ...rest } = network;
      await trx.insertInto("network").values({ ...rest, shared: network.shared ? 1 : 0, widest_pair: widestPair ? JSON.stringify(widestPair) : null, ranges: ranges ? JSON.stringify(ranges) : null, revision }).execute();
      return { ...network, revision };
    });
  }

  update(id: string, patch: NetworkPatch, access: ChangeAccess<Network> = {}): Promise<NetworkView> {
    return this.core.write(async ({ trx, revision, touch }) => {
      const current = await this.get(id, trx);
      if (!current) throw notFound("network", id);
      access.canChange?.(current);
      const { ranges: _old, ...kept } = current;
      const ranges = patch.ranges ?? current.ranges;
      const next = checkNetwork({
        ...kept, ...patch,
        ...((current.widestPair || patch.widestPair) && { widestPair: { ...current.widestPair, ...patch.widestPair } }),
        ...(ranges && { ranges }),
      });
      if (next.shared) {
        // A network turning shared must not keep ports below full, nor ports of tenants that claim the same addresses.
        const weak = await trx.selectFrom("port").select(["id", "protection"]).where("network", "=", id).where("protection", "in", ["mac", "off"]).limit(5).execute();
        if (weak.length > 0) {
          throw new ApiError("VG_CONFLICT", `Network ${id} cannot be shared while ports on it are below full`, weak.map((p) => ({ path: "shared", value: true, expected: `false while port ${p.id} has protection ${p.protection} (set it to full first)` })));
        }
      }
      if (next.shared || next.ranges !== undefined) {
        // Nor ports whose claims the network would now refuse (a wide pair, a foreign link-local, an address outside its ranges, …).
        const field = patch.shared !== undefined && next.shared && !current.shared ? "shared" : patch.ranges !== undefined ? "ranges" : "widestPair";
        const value = field === "shared" ? true : field === "ranges" ? next.ranges : next.widestPair;
        const issues: Issue[] = [];
        for (const row of await trx.selectFrom("port").selectAll().where("network", "=", id).orderBy("id").execute()) {
          try {
            checkPort(inputOf(rowToPort(row)), next);
          } catch (error) {
            if (!(error instanceof ApiError)) throw error;
            issues.push(...error.issues.map((i) => ({ path: field, value, expected: `a network port ${row.id} still fits (its ${i.path} ${JSON.stringify(i.value)} needs ${i.expected})` })));
          }
          if (issues.length >= 5) break;
        }
        if (issues.length > 0) throw new ApiError("VG_CONFLICT", `Network ${id} would refuse what ports on it hold; nothing was stored`, issues);
      }
      await trx.updateTable("network").set({ shared: next.shared ? 1 : 0, protection: next.protection, widest_pair: next.widestPair ? JSON.stringify(next.widestPair) : null, ranges: next.ranges ? JSON.stringify(next.ranges) : null, revision }).where("id", "=", id).execute();
      touch(await hostsOfNetwork(trx, id));
      return { ...next, revision };
    });
  }

  delete(id: string, access: ChangeAccess<Network> = {}): Promise<void> {
    return this.core.write(async ({ trx }) => {
      const current = await this.get(id, trx);
      if (!current) throw notFound("network", id);
      access.canChange?.(current);
      const port = await trx.selectFrom("port").select("id").where("network", "=", id).executeTakeFirst();
      if (port) throw conflict("id", id, `a network without ports (port ${port.id} is on it)`);
      await trx.deleteFrom("network").where("id", "=", id).execute();
    });
  }
}

export class Ports {
  constructor(private readonly core: StoreCore, private readonly networks: Networks) {}

  async list(filter: Readonly<{ tenant?: string; network?: string; host?: string }> = {}): Promise<PortView[]> {
    let q = this.core.db.selectFrom("port").selectAll().orderBy("id");
    if (filter.tenant !== undefined) q = q.where("tenant", "=", filter.tenant);
    if (filter.network !== undefined) q = q.where("network", "=", filter.network);
    if (filter.host !== undefined) q = q.where((eb) => eb.or([eb("host", "=", filter.host!), eb("migrating_from", "=", filter.host!)]));
    return this.core.snapshot(async (trx) => this.views(trx, await trx.executeQuery(q.compile()).then((r) => r.rows)));
  }

  async get(id: string, db?: Trx): Promise<PortView | undefined> {
    const read = async (trx: Trx): Promise<PortView | undefined> => {
      const row = await trx.selectFrom("port").selectAll().where("id", "=", id).executeTakeFirst();
      return row && (await this.views(trx, [row]))[0];
    };
    return db ? read(db) : this.core.snapshot(read);
  }

  /** The views of stored rows: effective level and migration state included. */
  async views(db: Reader, rows: readonly PortRow[]): Promise<PortView[]> {
    if (rows.length === 0) return [];
    const config = await this.core.config(db);
    const networkIds = [...new Set(rows.map((r) => r.network))];
    const networks = new Map((await db.selectFrom("network").selectAll().where("id", "in", networkIds).execute()).map((n) => [n.id, networkView(n)]));
    // Applied means enforced: a report of a port awaiting its device (or with an ambiguous one) is not.
    const statuses = await db.selectFrom("port_status").select(["port", "host", "applied_revision"]).where("port", "in", rows.map((r) => r.id)).where("state", "=", "enforced").execute();
    const applied = new Map(statuses.map((s) => [`${s.port} ${s.host}`, Number(s.applied_revision)]));
    return rows.map((row) => {
      const port = rowToPort(row);
      const network = networks.get(row.network)!;
      return {
        id: port.id,
        tenant: port.tenant,
        network: port.network,
        host: row.host,
        ...(port.device !== undefined && { device: port.device }),
        mac: port.mac,
        ips: port.ips.map((p) => p.text),
        allowed: port.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac })),
        protection: port.protection ?? null,
        level: effectiveLevel(port, network, { antiSpoofing: config.antiSpoofing }),
        migration: migrationView(placement(row), row.host === null ? undefined : applied.get(`${row.id} ${row.host}`), this.core.migrationHoldMs),
        revision: Number(row.revision),
      };
    });
  }

  /** Creates ports, all or none: each checked like a port-file entry, then against stored claims. */
  create(inputs: readonly PortCreate[], access: NetworkAccess = {}, at: (i: number) => string = () => ""): Promise<PortView[]> {
    return this.core.write((ctx) => this.createIn(ctx, inputs, access, at));
  }

  /** create()'s work inside a caller's write (or the warm-up's rehearsal, which rolls it back). */
  async createIn(ctx: WriteContext, inputs: readonly PortCreate[], access: NetworkAccess = {}, at: (i: number) => string = () => ""): Promise<PortView[]> {
    const { trx, revision, touch } = ctx;
    const issues: Issue[] = inputs.flatMap((input, i) => overLimits(this.core, input, at(i)));
    if (issues.length > 0) throw tooLarge(issues);
    const networks = await networksFor(trx, inputs.map((p) => p.network), (i) => `${at(i)}network`, access);
    // The request's parsing and schema check ran in this turn already: validation gets its own.
    await yieldTurn();
    const ports: Port[] = [];
    inputs.forEach((input, i) => {
      try {
        ports.push(checkPort(input, networks.get(input.network)!, at(i)));
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        issues.push(...error.issues);
      }
    });
    if (issues.length > 0) throw new ApiError("VG_INVALID", "The request is not valid; nothing was stored", issues);
    await yieldTurn();
    const ids = ports.map((p) => p.id);
    const taken = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      (await trx.selectFrom("port").select("id").where("id", "in", ids.slice(i, i + 500)).execute()).forEach((r) => taken.add(r.id));
    }
    const seen = new Set<string>();
    ports.forEach((p, i) => {
      if (taken.has(p.id) || seen.has(p.id)) issues.push({ path: `${at(i)}id`, value: p.id, expected: "a port id not used yet" });
      seen.add(p.id);
    });
    if (issues.length > 0) throw new ApiError("VG_CONFLICT", "A port id is taken; nothing was stored", issues);
    const entries = ports.map((port, i) => ({ port, at: at(i), host: inputs[i]!.host ?? null }));
    await checkClaims(trx, entries, new Set(), access);
    await checkDevices(trx, entries.filter((e) => e.host !== null).map((e) => ({ port: e.port, at: e.at, hosts: [e.host!] })), new Set(), access);
    const config = await this.core.config(trx);
    for (const e of entries) if (e.host !== null) await this.checkGuards(trx, e.port, networks.get(e.port.network)!, config, e.host, e.at);
    for (let i = 0; i < entries.length; i += 200) {
      const chunk = entries.slice(i, i + 200);
      await trx.insertInto("port").values(chunk.map((e) => portRow(e.port, { host: e.host, migratingFrom: null, boundRevision: revision, readySinceMs: null }, revision))).execute();
      const claims = chunk.flatMap((e) => claimRows(e.port));
      for (let j = 0; j < claims.length; j += 300) {
        await trx.insertInto("claim").values(claims.slice(j, j + 300)).execute();
        await yieldTurn();
      }
    }
    touch(entries.flatMap((e) => (e.host === null ? [] : [e.host])));
    const views: PortView[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      views.push(...(await this.views(trx, await trx.selectFrom("port").selectAll().where("id", "in", ids.slice(i, i + 500)).execute())));
    }
    const order = new Map(ids.map((id, i) => [id, i]));
    return views.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  }

  update(id: string, patch: PortPatch, access: ChangeAccess<Port> = {}): Promise<PortView> {
    return this.core.write((ctx) => this.updateIn(ctx, id, patch, access));
  }

  /** update()'s work inside a caller's write (or the warm-up's rehearsal). */
  async updateIn({ trx, revision, touch }: WriteContext, id: string, patch: PortPatch, access: ChangeAccess<Port> = {}): Promise<PortView> {
    const row = await trx.selectFrom("port").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) throw notFound("port", id);
    const current = rowToPort(row);
    access.canChange?.(current);
    const network = (await this.networks.get(row.network, trx))!;
    const input = {
      id, tenant: current.tenant, network: current.network,
      device: patch.device ?? current.device,
      mac: patch.mac ?? current.mac,
      ips: patch.ips ?? current.ips.map((p) => p.text),
      allowed: patch.editAllowed?.(current.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac })))
        ?? patch.allowed ?? current.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac })),
      protection: patch.protection === undefined ? current.protection : patch.protection,
    };
    const limits = overLimits(this.core, input, "");
    if (limits.length > 0) throw tooLarge(limits);
    await yieldTurn(); // as in createIn: the request's parsing had this turn
    const port = checkPort(input, network);
    await yieldTurn();
    const before = placement(row);
    const after = patch.host === undefined ? before : moveTo(before, patch.host, revision);
    await checkClaims(trx, [{ port, at: "" }], new Set([id]), access);
    await checkDevices(trx, [{ port, at: "", hosts: placementHosts(after) }], new Set([id]), access);
    if (after.host !== null) await this.checkGuards(trx, port, network, await this.core.config(trx), after.host, "");
    await trx.updateTable("port").set(portRow(port, after, revision)).where("id", "=", id).execute();
    await trx.deleteFrom("claim").where("port", "=", id).execute();
    const claims = claimRows(port); // chunked as on creation: SQLite takes at most 32,766 parameters
    for (let j = 0; j < claims.length; j += 300) {
      await trx.insertInto("claim").values(claims.slice(j, j + 300)).execute();
      await yieldTurn();
    }
    touch([...placementHosts(before), ...placementHosts(after)]);
    return (await this.get(id, trx))!;
  }

  delete(id: string, access: ChangeAccess<Port> = {}): Promise<void> {
    return this.core.write(async ({ trx, touch }) => {
      const row = await trx.selectFrom("port").selectAll().where("id", "=", id).executeTakeFirst();
      if (!row) throw notFound("port", id);
      access.canChange?.(rowToPort(row));
      await trx.deleteFrom("port").where("id", "=", id).execute();
      await trx.deleteFrom("claim").where("port", "=", id).execute();
      await trx.deleteFrom("port_status").where("port", "=", id).execute();
      touch(placementHosts(placement(row)));
    });
  }

  /** With refuseMissingGuards: the bound host's driver must enforce every guard of the port's level. */
  private async checkGuards(trx: Trx, port: Port, network: Network, config: ControllerSettings, host: string, at: string): Promise<void> {
    if (!this.core.options.refuseMissingGuards) return;
    const row = await trx.selectFrom("host").select(["driver", "guards"]).where("name", "=", host).executeTakeFirst();
    if (!row) return;
    const level = effectiveLevel(port, network, { antiSpoofing: config.antiSpoofing });
    const missing = missingGuards(level, JSON.parse(row.guards) as Guard[]);
    if (missing.length > 0) {
      throw new ApiError("VG_MISSING_GUARDS", `Host ${host} cannot enforce level ${level} of port ${port.id}; nothing was stored`, [
        { path: `${at}host`, value: host, expected: `a host whose driver enforces every guard of level ${level} (driver ${row.driver} lacks ${missing.join(", ")})` },
      ]);
    }
  }
}

/** The per-port limits: a port's checks must stay short, and one write must not stall the others. */
function overLimits(core: StoreCore, input: PortInput, at: string): Issue[] {
  const maxAddresses = core.options.maxAddressesPerPort ?? DEFAULT_PORT_LIMITS.addresses;
  const maxPairs = core.options.maxAllowedPairsPerPort ?? DEFAULT_PORT_LIMITS.allowedPairs;
  const issues: Issue[] = [];
  const ips = input.ips?.length ?? 0;
  const pairs = input.allowed?.length ?? 0;
  if (ips > maxAddresses) issues.push({ path: `${at}ips`, value: `${ips} addresses`, expected: `at most ${maxAddresses} addresses per port (the controller's maxAddressesPerPort)` });
  if (pairs > maxPairs) issues.push({ path: `${at}allowed`, value: `${pairs} allowed pairs`, expected: `at most ${maxPairs} allowed pairs per port (the controller's maxAllowedPairsPerPort)` });
  return issues;
}

function tooLarge(issues: readonly Issue[]): ApiError {
  return new ApiError("VG_TOO_LARGE", "A port exceeds the controller's per-port limits; nothing was stored", issues);
}

function inputOf(port: Port): PortInput {
  return { ...port, ips: port.ips.map((p) => p.text), allowed: port.allowed.map((a) => ({ ip: a.ip.text, mac: a.mac })) };
}

async function hostsOfNetwork(trx: Trx, network: string): Promise<string[]> {
  const rows = await trx.selectFrom("port").select(["host", "migrating_from"]).distinct().where("network", "=", network).execute();
  return rows.flatMap((r) => [r.host, r.migrating_from]).filter((h): h is string => h !== null);
}

async function networksFor(trx: Trx, ids: readonly string[], path: (i: number) => string, access: NetworkAccess): Promise<Map<string, Network>> {
  const wanted = [...new Set(ids)];
  const rows = wanted.length === 0 ? [] : await trx.selectFrom("network").selectAll().where("id", "in", wanted).execute();
  const networks = new Map(rows.map((r) => [r.id, networkView(r) as Network]));
  const issues: Issue[] = [];
  ids.forEach((id, i) => {
    const network = networks.get(id);
    if (!network) issues.push({ path: path(i), value: id, expected: "an existing network" });
    // A tenant does not learn that another tenant's private network exists.
    else if (access.canUseNetwork && !access.canUseNetwork(network)) issues.push({ path: path(i), value: id, expected: access.tenant === undefined ? "a network of your tenant, or a shared one" : "an existing network" });
  });
  if (issues.some((i) => i.expected.startsWith("a network of"))) throw new ApiError("VG_FORBIDDEN", "You may not create ports on this network", issues);
  if (issues.length > 0) throw new ApiError("VG_NOT_FOUND", "No such network", issues);
  return networks;
}

/**
 * Lets the event loop run (timers, sockets, other requests' parsing) between the steps of a large
 * write: on SQLite every query is synchronous and awaiting it yields nothing, so a port with 512
 * claims would otherwise hold the loop for the whole transaction.
 */
const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Fresh claims checked per query: with the stored lengths' starts, a few hundred parameters. */
const CLAIM_BATCH = 128;

/**
 * No tenant may hold or be allowed an address (or a prefix overlapping one) or a MAC that another
 * tenant's port holds on the same network. The SQL finds candidates by range, one query per batch
 * of claims: a stored prefix overlapping a fresh one starts inside it, or contains it and so starts
 * at the fresh one's start masked to a length stored on that network (claims are laminar: nested or
 * disjoint). The model's crossTenantClaims() decides and words the issue, exactly as for a port file.
 */
async function checkClaims(trx: Trx, entries: readonly { port: Port; at: string }[], replacing: ReadonlySet<string>, audience: Audience = {}): Promise<void> {
  const fresh: Claim[] = entries.flatMap((e, i) => ipClaims(e.port, i + 1, e.at));
  const stored = new Map<string, Claim>();
  const groups = new Map<string, Claim[]>();
  for (const claim of fresh) {
    const key = `${claim.network} ${claim.prefix.family} ${claim.tenant}`;
    const group = groups.get(key);
    if (group) group.push(claim);
    else groups.set(key, [claim]);
  }
  const lengthsOf = new Map<string, number[]>();
  for (const group of groups.values()) {
    const { network, tenant } = group[0]!;
    const family = group[0]!.prefix.family;
    const lengthKey = `${network} ${family}`;
    let lengths = lengthsOf.get(lengthKey);
    if (!lengths) {
      lengths = await storedLengths(trx, network, family);
      lengthsOf.set(lengthKey, lengths);
    }
    if (lengths.length === 0) continue;
    for (let i = 0; i < group.length; i += CLAIM_BATCH) {
      const batch = group.slice(i, i + CLAIM_BATCH);
      const ranges = batch.map((c) => claimRange(c.prefix));
      const starts = [...new Set(batch.flatMap((c) => containingStarts(c.prefix, lengths)))];
      // One SELECT per range, glued by UNION ALL: each is a seek on claim_range. One SELECT with the
      // ranges OR-ed made SQLite's planner read every claim of the network and family instead (at
      // 1,000 ports per network most of a change's time); duplicates are dropped below.
      const claimsOf = () => trx.selectFrom("claim").selectAll()
        .where("network", "=", network).where("kind", "=", "ip").where("family", "=", family).where("tenant", "<>", tenant);
      const parts = [...ranges.map(({ lo, hi }) => claimsOf().where("lo", ">=", lo).where("lo", "<=", hi)), ...(starts.length > 0 ? [claimsOf().where("lo", "in", starts)] : [])];
      const rows = await parts.slice(1).reduce((q, part) => q.unionAll(part), parts[0]!).execute();
      await yieldTurn();
      for (const row of rows) {
        if (replacing.has(row.port) || !ranges.some(({ lo, hi }) => row.lo <= hi && row.hi >= lo)) continue;
        const prefix = parsePrefix(row.text);
        if (prefix.ok) stored.set(`${row.port} ${row.path} ${row.text}`, { port: row.port, tenant: row.tenant, network: row.network, order: 0, path: row.path, prefix: prefix.prefix });
      }
    }
  }

  const issues: Issue[] = [];
  const macs = entries.flatMap((e) => macClaims(e.port, e.at));
  const seen = new Map<string, (typeof macs)[number]>();
  const held = new Map<string, { port: string; tenant: string; path: string }[]>();
  const byNetwork = new Map<string, Set<string>>();
  for (const m of macs) byNetwork.set(m.network, (byNetwork.get(m.network) ?? new Set()).add(m.mac));
  for (const [network, set] of byNetwork) {
    const wanted = [...set];
    for (let i = 0; i < wanted.length; i += CLAIM_BATCH) {
      // family 0 (every MAC claim's) lets the lookup seek claim_range by lo.
      const rows = await trx.selectFrom("claim").select(["port", "tenant", "path", "lo"]).where("network", "=", network).where("kind", "=", "mac").where("family", "=", 0).where("lo", "in", wanted.slice(i, i + CLAIM_BATCH)).execute();
      for (const row of rows) {
        const key = `${network} ${row.lo}`;
        held.set(key, [...(held.get(key) ?? []), row]);
      }
    }
  }
  for (const claim of macs) {
    const key = `${claim.network} ${claim.mac}`;
    const earlier = seen.get(key);
    if (earlier && earlier.tenant !== claim.tenant) {
      issues.push({ path: claim.path, value: claim.mac, expected: `a MAC no other tenant uses on network ${claim.network} (${holder(audience, earlier)} has it)` });
      continue;
    }
    if (!earlier) seen.set(key, claim);
    const other = (held.get(key) ?? []).find((r) => r.tenant !== claim.tenant && !replacing.has(r.port));
    if (other) issues.push({ path: claim.path, value: claim.mac, expected: `a MAC no other tenant uses on network ${claim.network} (${holder(audience, other)} has it)` });
  }
  // A MAC another tenant uses is the cause; its derived link-local clashing too says nothing more.
  const macPaths = new Set(issues.map((i) => i.path));
  const freshPaths = new Set(fresh.map((c) => c.path));
  const storedClaims = [...stored.values()];
  const ipIssues = crossTenantClaims([...storedClaims, ...fresh]).filter((i) => freshPaths.has(i.path) && !macPaths.has(i.path));
  issues.unshift(...(audience.tenant === undefined ? ipIssues : ipIssues.map((i) => ({ ...i, expected: `an address no other tenant holds on this network (${String(i.value)} overlaps an address or prefix held by another tenant)` }))));
  if (issues.length > 0) throw new ApiError("VG_ADDRESS_CLAIMED", "Another tenant's port holds this address or MAC on the same network; nothing was stored", issues);
}

/**
 * The prefix lengths stored on a network for a family, one index seek per length (a loose index scan:
 * SELECT DISTINCT read every claim of the network, and neither SQLite nor PostgreSQL 15 skips).
 */
async function storedLengths(trx: Trx, network: string, family: number): Promise<number[]> {
  const { rows } = await sql<{ length: number }>`
    with recursive l(length) as (
      select min(length) from claim where network = ${network} and kind = 'ip' and family = ${family}
      union all
      select (select min(length) from claim where network = ${network} and kind = 'ip' and family = ${family} and length > l.length)
      from l where l.length is not null
    )
    select length from l where length is not null`.execute(trx);
  return rows.map((r) => Number(r.length));
}

/** Who holds a claim, as the caller may learn it: a tenant hears only "another tenant". */
function holder(audience: Audience, claim: Readonly<{ port: string; tenant: string; path: string }>): string {
  return audience.tenant === undefined || audience.tenant === claim.tenant ? `${claim.path} of port ${claim.port}, tenant ${claim.tenant},` : "another tenant";
}

/** Two ports on one host cannot share a device name: the agent could enforce only one of them. */
async function checkDevices(trx: Trx, entries: readonly { port: Port; at: string; hosts: readonly string[] }[], replacing: ReadonlySet<string>, audience: Audience = {}): Promise<void> {
  const issues: Issue[] = [];
  const seen = new Map<string, string>();
  for (const { port, at, hosts } of entries) {
    if (port.device === undefined) continue; // found by MAC: the tap's MAC is unique, a name is not claimed
    for (const host of hosts) {
      const key = `${host} ${port.device}`;
      const earlier = seen.get(key);
      if (earlier) issues.push({ path: `${at}device`, value: port.device, expected: `a device not used by another port on host ${host} (port ${earlier} has it)` });
      seen.set(key, port.id);
      const rows = await trx.selectFrom("port").select(["id", "tenant"]).where("device", "=", port.device)
        .where((eb) => eb.or([eb("host", "=", host), eb("migrating_from", "=", host)])).execute();
      const other = rows.find((r) => !replacing.has(r.id) && r.id !== port.id);
      const who = other && (audience.tenant === undefined || audience.tenant === other.tenant ? `port ${other.id}` : "another tenant's port");
      if (other) issues.push({ path: `${at}device`, value: port.device, expected: `a device not used by another port on host ${host} (${who} has it)` });
    }
  }
  if (issues.length > 0) throw new ApiError("VG_CONFLICT", "The device name is taken on that host; nothing was stored", issues);
}
