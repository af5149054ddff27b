// The legitimate flows, with the guests' real network stacks: they must keep working under
// protection. Effects (commands inside the sandbox's namespaces).
import { setTimeout as sleep } from "node:timers/promises";
import { VIP4, VIP6, type Sandbox } from "./sandbox.ts";

export type FlowResult = Readonly<{ name: string; ok: boolean; detail: string }>;

const ECHO_SERVER = `
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5001)); s.listen(1); s.settimeout(10)
c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
`;
const ECHO_CLIENT = `
import socket, sys
c = socket.create_connection((sys.argv[1], 5001), timeout=5); c.sendall(b"hello vifguard"); print(c.recv(100).decode())
`;

export async function runFlows(sandbox: Sandbox): Promise<FlowResult[]> {
  const alice = sandbox.guest("alice");
  const bob = sandbox.guest("bob");
  const results: FlowResult[] = [];
  const flow = async (name: string, body: () => Promise<string>) => {
    try {
      results.push({ name, ok: true, detail: await body() });
    } catch (error) {
      results.push({ name, ok: false, detail: (error as Error).message.split("\n")[0] ?? String(error) });
    }
  };
  const ping = async (from: "alice" | "bob", to: string) => {
    const r = await sandbox.exec(from, "ping", ["-c", "3", "-i", "0.2", "-W", "1", to], true);
    const received = /(\d+) received/.exec(r.stdout)?.[1] ?? "0";
    if (r.code !== 0) throw new Error(`${from} → ${to}: ${received}/3 replies`);
    return `${received}/3 replies`;
  };

  await flow("ping IPv4 Alice → Bob", () => ping("alice", bob.ipv4));
  await flow("ping IPv6 Alice → Bob", () => ping("alice", bob.ipv6));
  await flow("ARP: Bob resolved Alice to her MAC", async () => {
    const r = await sandbox.exec("bob", "ip", ["neigh", "show", alice.ipv4]);
    if (!r.stdout.includes(alice.mac)) throw new Error(`Bob's neighbour entry: ${r.stdout.trim() || "none"}`);
    return r.stdout.trim();
  });
  await flow("TCP Alice → Bob", async () => {
    const server = sandbox.exec("bob", "/usr/bin/python3", ["-c", ECHO_SERVER, bob.ipv4], true);
    await sleep(300);
    // The server's outcome is awaited either way: a failed client must not leave its rejection unhandled.
    const client = await sandbox.exec("alice", "/usr/bin/python3", ["-c", ECHO_CLIENT, bob.ipv4], true).finally(() => server);
    if (client.code !== 0) throw new Error(`client: ${client.stderr.trim().split("\n").at(-1) ?? "failed"}`);
    if (client.stdout.trim() !== "HELLO VIFGUARD") throw new Error(`echo: ${client.stdout.trim()}`);
    return "echoed 14 bytes";
  });
  await flow("DHCP lease for Alice (discover from 0.0.0.0)", async () => {
    const r = await sandbox.exec("alice", "busybox", ["udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "4", "-T", "1", "-s", "/bin/true"], true);
    const lease = /lease of ([\d.]+) obtained/.exec(r.stdout + r.stderr);
    if (!lease) throw new Error(`no lease: ${(r.stdout + r.stderr).trim().split("\n").at(-1)}`);
    return `lease of ${lease[1]}`;
  });
  await flow("ND with DAD: Alice adds her IPv6 VIP, Bob reaches it", async () => {
    await sandbox.exec("alice", "ip", ["-6", "addr", "add", `${VIP6}/64`, "dev", "eth0"]);
    await sleep(2500);
    const addr = await sandbox.exec("alice", "ip", ["-6", "addr", "show", "dev", "eth0"]);
    const line = addr.stdout.split("\n").find((l) => l.includes(VIP6)) ?? "";
    if (/tentative|dadfailed/.test(line)) throw new Error(`DAD did not complete: ${line.trim()}`);
    return `${VIP6} valid; ${await ping("bob", VIP6)}`;
  });
  await flow("failover VIP takeover: Alice claims it by gratuitous ARP", async () => {
    await sandbox.exec("alice", "ip", ["addr", "add", `${VIP4}/24`, "dev", "eth0"]);
    await sandbox.exec("alice", "arping", ["-U", "-c", "2", "-I", "eth0", VIP4], true);
    const replies = await ping("bob", VIP4);
    const neigh = await sandbox.exec("bob", "ip", ["neigh", "show", VIP4]);
    if (!neigh.stdout.includes(alice.mac)) throw new Error(`Bob maps the VIP to: ${neigh.stdout.trim() || "nothing"}`);
    return replies;
  });
  return results;
}
