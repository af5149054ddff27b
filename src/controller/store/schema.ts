// The controller's tables as Kysely sees them: one schema for SQLite and PostgreSQL. Types only.
// Booleans are integers (0/1) and lists are JSON text, so both dialects store the same values.

export type RevisionTable = { id: number; value: number };

/** Which hosts' desired sets a revision touched ("*": every host). Watchers read it by revision. */
export type ChangeTable = { revision: number; host: string };

export type ConfigTable = { id: number; anti_spoofing: number; fail_closed: number; revision: number };

export type NetworkTable = {
  id: string;
  tenant: string;
  shared: number;
  protection: string;
  /** JSON: {ipv4, ipv6}, the widest allowed pair on a shared network; null: the defaults. */
  widest_pair: string | null;
  /** JSON: the network's own address ranges (canonical prefixes); null: none. */
  ranges: string | null;
  revision: number;
};

export type PortTable = {
  id: string;
  tenant: string;
  network: string;
  /** Where the port runs (the destination while migrating); null when unbound. */
  host: string | null;
  /** The source host while migrating: it keeps the port until it reports it released (or its hold ends). */
  migrating_from: string | null;
  /** The revision that bound the port to `host`: the host is ready once it applied at least this. */
  bound_revision: number;
  /** While migrating: when the destination first reported the port applied; the source's hold runs from then. */
  ready_since_ms: number | null;
  device: string;
  mac: string;
  /** JSON: string[] */
  ips: string;
  /** JSON: {ip, mac}[] */
  allowed: string;
  protection: string | null;
  revision: number;
};

/** One address, prefix or MAC a port holds on its network: the index of the cross-tenant check. */
export type ClaimTable = {
  network: string;
  port: string;
  tenant: string;
  /** "ip" or "mac" */
  kind: string;
  /** 4 or 6 for kind ip, 0 for mac */
  family: number;
  /** Fixed-width hex of the first and last address (the MAC text for kind mac): compares as text. */
  lo: string;
  hi: string;
  length: number;
  text: string;
  /** Where the port holds it: ips[0], allowed[1].ip, mac, allowed[0].mac */
  path: string;
};

export type HostTable = {
  name: string;
  driver: string;
  version: string;
  /** JSON: Guard[] */
  guards: string;
  /** JSON: Limitation[] */
  limitations: string;
  registered_ms: number;
  last_seen_ms: number;
  revision: number;
};

export type PortStatusTable = {
  port: string;
  host: string;
  applied_revision: number;
  /** JSON: Guard[] */
  guards_enforced: string;
  /** JSON: Guard[] */
  guards_missing: string;
  /** JSON: {reason, packets, bytes}[] */
  drops: string;
  /** enforced, awaiting-device or ambiguous-device: only enforced is applied */
  state: string;
  drift_repairs: number;
  last_drift_ms: number | null;
  reported_ms: number;
  revision: number;
};

export type TokenTable = {
  id: string;
  /** sha256 hex of the secret; the secret itself is never stored. */
  hash: string;
  role: string;
  tenant: string | null;
  host: string | null;
  name: string;
  created_ms: number;
  revision: number;
};

/** A spoof event an agent reported (src/agent/events.ts), kept until retention removes it. */
export type SpoofEventTable = {
  /** host + "/" + the agent's event id (port/reason/first seen). */
  key: string;
  host: string;
  port: string;
  tenant: string;
  network: string;
  reason: string;
  first_seen_ms: number;
  last_seen_ms: number;
  count: number;
  /** JSON: string[], what the sampled frames claimed */
  claimed: string;
  /** Who holds the first claimed address or MAC on the port's network, if a port does. */
  owner_port: string | null;
  owner_tenant: string | null;
  /** JSON: FrameSample[] */
  samples: string;
  /** When the controller last stored it: the cursor of the long-poll. */
  updated_ms: number;
};

export type Database = {
  revision: RevisionTable;
  change: ChangeTable;
  config: ConfigTable;
  network: NetworkTable;
  port: PortTable;
  claim: ClaimTable;
  host: HostTable;
  port_status: PortStatusTable;
  token: TokenTable;
  spoof_event: SpoofEventTable;
};
