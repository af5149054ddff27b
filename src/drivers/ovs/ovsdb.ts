// Which OpenFlow port number each port's interface has on the bridge, from OVSDB: effects.
// Reads with `ovs-vsctl --format=json`; follows changes (a VIF re-created on reboot gets a new
// ofport) with a small OVSDB JSON-RPC monitor over the database's unix socket (RFC 7047).
import { connect, type Socket } from "node:net";
import type { Device } from "../contract.ts";
import { run, type RunOptions } from "../../host/run.ts";

/** One interface on the bridge: its name, OpenFlow port (-1 when not yet assigned), external_ids and MAC (mac_in_use). */
export type OvsInterface = Readonly<{ name: string; ofport: number; externalIds: Readonly<Record<string, string>>; mac?: string }>;

export type OvsdbAccess = Readonly<{ env: Readonly<Record<string, string>>; db?: string; netns?: string }>;

type OvsdbMap = ["map", [string, string][]];

function mapOf(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(value) && value[0] === "map") for (const [k, v] of (value as OvsdbMap)[1]) out[k] = v;
  return out;
}

function ofportOf(value: unknown): number {
  return typeof value === "number" ? value : -1; // ["set", []] while unassigned
}

function macOf(value: unknown): string | undefined {
  return typeof value === "string" && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(value) ? value.toLowerCase() : undefined; // ["set", []] while unknown
}

async function vsctl(access: OvsdbAccess, args: readonly string[]): Promise<string> {
  const options: RunOptions = { env: access.env, ...(access.netns && { netns: access.netns }) };
  const db = access.db ? [`--db=${access.db}`] : [];
  return (await run("ovs-vsctl", [...db, "--timeout=10", ...args], options)).stdout;
}

/** The interfaces of `bridge`, read in one ovs-vsctl call. */
export async function readInterfaces(access: OvsdbAccess, bridge: string): Promise<OvsInterface[]> {
  const out = await vsctl(access, ["--format=json", "--columns=name,ofport,external_ids,mac_in_use", "list", "Interface", "--", "list-ifaces", bridge]);
  const [json = "", ...rest] = out.split("\n");
  const onBridge = new Set(rest.map((s) => s.trim()).filter(Boolean));
  const table = JSON.parse(json) as { headings: string[]; data: unknown[][] };
  return table.data
    .map((row): OvsInterface => {
      const mac = macOf(row[3]);
      return { name: String(row[0]), ofport: ofportOf(row[1]), externalIds: mapOf(row[2]), ...(mac && { mac }) };
    })
    .filter((i) => onBridge.has(i.name))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The bridge's interfaces as device facts (an ofport only once OVS assigned one). Pure. */
export function interfaceDevices(interfaces: readonly OvsInterface[]): Device[] {
  return interfaces.map((i) => {
    const ifaceId = i.externalIds["iface-id"];
    const attachedMac = i.externalIds["attached-mac"]?.toLowerCase();
    return { name: i.name, ...(i.mac && { mac: i.mac }), ...(i.ofport > 0 && { ofport: i.ofport }), ...(ifaceId && { ifaceId }), ...(attachedMac && { attachedMac }) };
  });
}

/** Splits a byte stream of concatenated JSON values into the values. */
function jsonSplitter(onValue: (value: unknown) => void): (chunk: string) => void {
  let buffer = "";
  let depth = 0;
  let inString = false;
  let escaped = false;
  let start = 0;
  return (chunk) => {
    const offset = buffer.length;
    buffer += chunk;
    for (let i = offset; i < buffer.length; i++) {
      const c = buffer[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === "\\") escaped = true;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        if (depth === 0) {
          onValue(JSON.parse(buffer.slice(start, i + 1)));
          start = i + 1;
        }
      }
    }
    buffer = buffer.slice(start);
    start = 0;
  };
}

/** `ready`: the first rows arrived; `ended`: the connection is gone (closed, or ovsdb-server went away). */
export type InterfaceWatch = Readonly<{ close(): void; ready: Promise<void>; ended: Promise<void> }>;

/**
 * Calls `onChange` with every Interface row (name, ofport, external_ids, mac_in_use) whenever one is added,
 * modified or deleted (deleted rows come with ofport -1). The first call carries the initial rows.
 */
export function watchInterfaces(socketPath: string, onChange: (changed: OvsInterface[]) => void): InterfaceWatch {
  const socket: Socket = connect(socketPath);
  const rows = new Map<string, OvsInterface>();
  let resolveReady!: () => void;
  let rejectReady!: (e: unknown) => void;
  const ready = new Promise<void>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  const apply = (updates: Record<string, Record<string, { old?: Record<string, unknown>; new?: Record<string, unknown> }>>): void => {
    const changed: OvsInterface[] = [];
    for (const [uuid, change] of Object.entries(updates.Interface ?? {})) {
      const previous = rows.get(uuid);
      if (!change.new) {
        rows.delete(uuid);
        if (previous) changed.push({ ...previous, ofport: -1 });
        continue;
      }
      const mac = change.new.mac_in_use !== undefined ? macOf(change.new.mac_in_use) : previous?.mac;
      const row: OvsInterface = {
        name: change.new.name !== undefined ? String(change.new.name) : (previous?.name ?? ""),
        ofport: change.new.ofport !== undefined ? ofportOf(change.new.ofport) : (previous?.ofport ?? -1),
        externalIds: change.new.external_ids !== undefined ? mapOf(change.new.external_ids) : (previous?.externalIds ?? {}),
        ...(mac && { mac }),
      };
      rows.set(uuid, row);
      changed.push(row);
    }
    if (changed.length > 0) onChange(changed);
  };
  socket.setEncoding("utf8");
  socket.on(
    "data",
    jsonSplitter((value) => {
      const message = value as { id?: unknown; method?: string; params?: unknown[]; result?: unknown; error?: unknown };
      if (message.method === "echo") socket.write(JSON.stringify({ id: message.id, result: message.params ?? [], error: null }));
      else if (message.method === "update") apply(message.params?.[1] as Parameters<typeof apply>[0]);
      else if (message.id === "vg-monitor") {
        if (message.error) rejectReady(new Error(`OVSDB monitor failed: ${JSON.stringify(message.error)}`));
        else {
          apply(message.result as Parameters<typeof apply>[0]);
          resolveReady();
        }
      }
    }),
  );
  socket.on("error", (e) => rejectReady(e));
  const ended = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  void ended.then(() => rejectReady(new Error(`OVSDB connection to ${socketPath} closed`)));
  socket.on("connect", () => {
    const columns = { Interface: { columns: ["name", "ofport", "external_ids", "mac_in_use"] } };
    socket.write(JSON.stringify({ id: "vg-monitor", method: "monitor", params: ["Open_vSwitch", "vg-monitor", columns] }));
  });
  return { ready, ended, close: () => socket.destroy() };
}
