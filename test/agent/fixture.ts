// Port files and helpers shared by the agent's unit tests.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

export type PortSpec = Readonly<{ id: string; device: string; mac: string; ips: readonly string[]; allowed?: readonly string[]; protection?: "full" | "mac" | "off"; network?: string; tenant?: string }>;

export const ALICE: PortSpec = { id: "alice-0", tenant: "alice", device: "vnet0", mac: "52:54:00:00:00:01", ips: ["10.0.0.1"] };
export const EVE: PortSpec = { id: "eve-0", tenant: "eve", device: "vnet1", mac: "52:54:00:00:00:02", ips: ["10.0.0.2"] };
export const BOB: PortSpec = { id: "bob-0", tenant: "bob", device: "vnet2", mac: "52:54:00:00:00:03", ips: ["10.0.0.3"] };

/** A port file with a shared network `public` and a private network `lab` (level mac). */
export function portFile(ports: readonly PortSpec[]): string {
  const lines = [
    "networks:",
    "  - { id: public, tenant: provider, shared: true, protection: full }",
    "  - { id: lab, tenant: lab, shared: false, protection: mac }",
    "ports:",
  ];
  for (const p of ports) {
    const allowed = (p.allowed ?? []).map((ip) => `{ ip: "${ip}" }`).join(", ");
    lines.push(
      `  - { id: ${p.id}, tenant: ${p.tenant ?? p.id.split("-")[0]}, network: ${p.network ?? "public"}, device: ${p.device}, mac: "${p.mac}", ips: [${p.ips.map((ip) => `"${ip}"`).join(", ")}], allowed: [${allowed}]${p.protection ? `, protection: ${p.protection}` : ""} }`,
    );
  }
  return lines.join("\n") + "\n";
}

export async function tempDir(t: TestContext, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `vg-${name}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `timeoutMs` passes; returns whether it did. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, stepMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await settle(stepMs);
  }
  return check();
}
