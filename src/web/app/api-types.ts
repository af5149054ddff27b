// The shapes of the /v1 answers the page reads, as the browser sees them (JSON). Written out here so
// the front end needs neither zod nor the controller's modules; test/web/derive.test.ts checks at
// compile time that the controller's schemas (src/controller/api/schemas.ts) still fit them. Types only.

export type Limitation = Readonly<{ id: string; guard: string; description: string }>;

export type Host = Readonly<{
  name: string;
  driver: string;
  version: string;
  capabilities: Readonly<{ guards: readonly string[]; limitations: readonly Limitation[] }>;
  registeredAt: string;
  lastSeenAt: string;
}>;

export type Migration = Readonly<{
  state: string;
  host: string | null;
  source: string | null;
  boundRevision: number;
  appliedRevision: number | null;
}>;

export type Port = Readonly<{
  id: string;
  tenant: string;
  network: string;
  host: string | null;
  mac: string;
  ips: readonly string[];
  level: string;
  migration: Migration;
}>;

export type DropCounter = Readonly<{ reason: string; packets: number; bytes: number }>;

export type PortReport = Readonly<{
  host: string;
  appliedRevision: number;
  /** enforced, awaiting-device or ambiguous-device */
  state: string;
  guardsEnforced: readonly string[];
  guardsMissing: readonly string[];
  drops: readonly DropCounter[];
  driftRepairs: number;
  lastDriftAt: string | null;
  reportedAt: string;
}>;

export type PortStatus = Readonly<{
  port: string;
  host: string | null;
  level: string;
  guardsRequired: readonly string[];
  guardsMissing: readonly string[];
  limitations: readonly Limitation[];
  hostRegistered: boolean;
  migration: Migration;
  reports: readonly PortReport[];
}>;

export type SpoofEvent = Readonly<{
  id: string;
  host: string;
  port: string;
  tenant: string;
  network: string;
  reason: string;
  firstSeenAt: string;
  lastSeenAt: string;
  count: number;
  claimed: readonly string[];
  claimedFrom: Readonly<{ port: string; tenant: string }> | null;
  samples: readonly Readonly<Record<string, string | number>>[];
  updatedMs: number;
}>;

export type EventPage = Readonly<{ events: readonly SpoofEvent[]; next: string | null; cursor: number }>;

export type ApiErrorBody = Readonly<{ code: string; message: string; issues: readonly Readonly<{ path: string; value?: unknown; expected: string }>[] }>;
