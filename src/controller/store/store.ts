// The controller's state, in one SQL store (SQLite or PostgreSQL), in rooms by job: the write core and
// the global config (core.ts), networks, ports and their claims (ports.ts), hosts, their reports and
// migrations (hosts.ts), tokens (tokens.ts), spoof events (events.ts); rows.ts maps rows to the answers. Effects: the store.
import { openDatabase } from "./open.ts";
import { StoreCore, type StoreOptions } from "./core.ts";
import { SpoofEvents } from "./events.ts";
import { Hosts } from "./hosts.ts";
import { Networks, Ports } from "./ports.ts";
import { Tokens } from "./tokens.ts";

export type { ControllerSettings, StoreOptions } from "./core.ts";
export type { ChangeAccess, NetworkAccess, NetworkPatch, PortCreate, PortPatch } from "./ports.ts";
export type * from "./rows.ts";
export type { EventQuery, EventReport, EventRetention, EventView } from "./events.ts";

export class Store extends StoreCore {
  readonly networks = new Networks(this);
  readonly ports = new Ports(this, this.networks);
  readonly hosts = new Hosts(this, this.ports);
  readonly tokens = new Tokens(this);
  readonly spoofEvents = new SpoofEvents(this, this.options.eventRetention);

  static async open(url: string, options: StoreOptions = {}): Promise<Store> {
    return new Store(await openDatabase(url), options);
  }
}
