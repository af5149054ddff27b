// Bearer tokens and roles. admin: everything. tenant: its own networks and ports (and ports of its
// own on shared networks). agent: its host's registration, desired set and port statuses. Tokens are
// random 32-byte secrets stored as sha256 (no salt needed for random secrets). Effects: the store.
import { createHash, timingSafeEqual } from "node:crypto";
import type { Network, Port } from "../model/types.ts";
import { ApiError } from "./errors.ts";
import type { Store } from "./store/store.ts";

export type Principal =
  | Readonly<{ role: "admin"; token: string }>
  | Readonly<{ role: "tenant"; tenant: string; token: string }>
  | Readonly<{ role: "agent"; host: string; token: string }>;

export function hashToken(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

export class Authenticator {
  private readonly store: Store;
  private readonly bootstrap: readonly Buffer[];

  /** `bootstrapTokens`: admin secrets from the configuration (kept as hashes, compared in constant time). */
  constructor(store: Store, bootstrapTokens: readonly string[]) {
    this.store = store;
    this.bootstrap = bootstrapTokens.filter((t) => t.length > 0).map((t) => Buffer.from(hashToken(t), "hex"));
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
    if (!match) throw new ApiError("VG_UNAUTHENTICATED", "A bearer token is required (Authorization: Bearer <token>)");
    const hash = hashToken(match[1]!);
    const digest = Buffer.from(hash, "hex");
    if (this.bootstrap.some((b) => timingSafeEqual(b, digest))) return { role: "admin", token: "bootstrap" };
    const token = await this.store.tokens.find(hash);
    if (!token) throw new ApiError("VG_UNAUTHENTICATED", "Unknown or revoked token");
    if (token.role === "tenant" && token.tenant) return { role: "tenant", tenant: token.tenant, token: token.id };
    if (token.role === "agent" && token.host) return { role: "agent", host: token.host, token: token.id };
    if (token.role === "admin") return { role: "admin", token: token.id };
    throw new ApiError("VG_UNAUTHENTICATED", "The token has no usable role");
  }
}

function forbidden(what: string, path = "(token)", value: unknown = undefined, expected = "a token with that right"): ApiError {
  return new ApiError("VG_FORBIDDEN", `Your token may not ${what}`, [{ path, value, expected }]);
}

export function requireAdmin(p: Principal, what: string): void {
  if (p.role !== "admin") throw forbidden(what, "(token)", p.role, "an admin token");
}

/** Tenants act for their own tenant only; admins for anyone. Agents never manage networks or ports. */
export function requireTenant(p: Principal, tenant: string, what: string, path = "tenant"): void {
  if (p.role === "admin") return;
  if (p.role === "tenant" && p.tenant === tenant) return;
  throw forbidden(what, path, tenant, p.role === "tenant" ? `your own tenant (${p.tenant})` : "an admin or tenant token");
}

/** An agent only for its own host; admins for any. */
export function requireHost(p: Principal, host: string, what: string): void {
  if (p.role === "admin") return;
  if (p.role === "agent" && p.host === host) return;
  throw forbidden(what, "host", host, p.role === "agent" ? `your own host (${p.host})` : "an admin or that host's agent token");
}

/** May `p` read this network? Tenants see their own and shared ones. */
export function canSeeNetwork(p: Principal, n: Network): boolean {
  return p.role === "admin" || (p.role === "tenant" && (n.tenant === p.tenant || n.shared));
}

/** May `p` create ports on this network? Tenants on their own networks and on shared ones. */
export function canUseNetwork(p: Principal, n: Network): boolean {
  return canSeeNetwork(p, n);
}

/** May `p` read this port? Its tenant, the agents of its hosts, admins. */
export function canSeePort(p: Principal, port: Pick<Port, "tenant">, hosts: readonly (string | null)[]): boolean {
  if (p.role === "admin") return true;
  if (p.role === "tenant") return port.tenant === p.tenant;
  return hosts.includes(p.host);
}
