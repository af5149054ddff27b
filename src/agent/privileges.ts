// What the agent must hold for its configured driver, checked at start so that a unit that grants
// too little stops with one line naming what is missing instead of failing later inside nft or
// ovs-ofctl. Each driver's module says what it needs (DriverModule.privileges); entering a network
// namespace is the one need common to all. The decisions (neededCapabilities, parseCapabilities,
// missingCapabilities) are pure; checkAgentPrivileges reads /proc/self/status and tries the
// driver's sockets (effects).
// Why each capability: docs/install.md, "Users and capabilities"; the unit: contrib/systemd/vifguard-agent.service.
import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
import type { CapabilityName, DriverPrivileges } from "../drivers/contract.ts";
import { findDriverModule, type DriverSettings } from "../drivers/registry.ts";
import { VifguardError } from "../errors.ts";

/** The capabilities the agent may need, with their bit numbers (linux/capability.h). */
export const CAPABILITY_BITS: Readonly<Record<CapabilityName, number>> = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21 };
export type { CapabilityName };

export type NeededCapability = Readonly<{ capability: CapabilityName; why: string }>;

/** The agent could not start: it lacks a capability or an access its driver needs. Nothing was changed. */
export class MissingPrivilegeError extends VifguardError {
  override name = "MissingPrivilegeError";
  readonly code = "VG_MISSING_PRIVILEGE";
  readonly driver: string;
  /** The missing capabilities (CAP_…), empty when a file access is what is missing. */
  readonly capabilities: readonly CapabilityName[];
  constructor(driver: string, capabilities: readonly CapabilityName[], message: string) {
    super(message);
    this.driver = driver;
    this.capabilities = capabilities;
  }
}

/** What the driver named `driver` declares it needs with these settings (nothing for an unknown name). */
function driverPrivileges(driver: string, settings: DriverSettings): DriverPrivileges {
  return findDriverModule(driver)?.privileges?.(settings) ?? { capabilities: [], sockets: [] };
}

/** What a driver (with these settings) needs of the kernel's capabilities. Pure. */
export function neededCapabilities(driver: string, settings: DriverSettings): NeededCapability[] {
  const needed: NeededCapability[] = [...driverPrivileges(driver, settings).capabilities];
  if (settings.netns) needed.push({ capability: "CAP_SYS_ADMIN", why: `driver.netns (${settings.netns}) enters a network namespace with ip netns exec` });
  return needed;
}

/** The effective capability mask from /proc/<pid>/status text (the CapEff line); undefined when absent. Pure. */
export function parseCapabilities(status: string): bigint | undefined {
  const hex = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(status)?.[1];
  return hex === undefined ? undefined : BigInt(`0x${hex}`);
}

/** The needed capabilities that `effective` lacks. Pure. */
export function missingCapabilities(needed: readonly NeededCapability[], effective: bigint): NeededCapability[] {
  return needed.filter((n) => (effective & (1n << BigInt(CAPABILITY_BITS[n.capability]))) === 0n);
}

/** Names of the capabilities in `mask` that vifguard knows of, or the mask in hex. Pure. */
function describeMask(mask: bigint): string {
  if (mask === 0n) return "none";
  const known = (Object.entries(CAPABILITY_BITS) as [CapabilityName, number][]).filter(([, bit]) => (mask & (1n << BigInt(bit))) !== 0n).map(([name]) => name);
  return `0x${mask.toString(16)}${known.length > 0 ? ` (${known.join(", ")}, …)` : ""}`;
}

/** The error for missing capabilities, or undefined when none is missing. Pure. */
export function missingCapabilityError(driver: string, missing: readonly NeededCapability[], effective: bigint, uid: number): MissingPrivilegeError | undefined {
  if (missing.length === 0) return undefined;
  const names = [...new Set(missing.map((m) => m.capability))];
  const reasons = missing.map((m) => `${m.capability}: ${m.why}`).join("; ");
  return new MissingPrivilegeError(
    driver,
    names,
    `the ${driver} driver needs ${names.join(" and ")}, which this process does not have (uid ${uid}, effective capabilities: ${describeMask(effective)}). ` +
      `Why: ${reasons}. Grant ${names.length > 1 ? "them" : "it"} as contrib/systemd/vifguard-agent.service does ` +
      `(AmbientCapabilities=${names.join(" ")} and CapabilityBoundingSet=${names.join(" ")}); the agent did not start and changed nothing.`,
  );
}

/**
 * Checks that this process can run its driver: the capabilities (CapEff of /proc/self/status) and
 * read-write access to the sockets the driver declares (ovs: OVSDB's, root's with mode 0750).
 * Throws MissingPrivilegeError naming what is missing; a socket that does not exist is left to the driver's probe.
 */
export async function checkAgentPrivileges(driver: string, settings: DriverSettings): Promise<void> {
  const status = await readFile("/proc/self/status", "utf8").catch(() => "");
  const effective = parseCapabilities(status);
  const uid = process.getuid?.() ?? -1;
  if (effective !== undefined) {
    const error = missingCapabilityError(driver, missingCapabilities(neededCapabilities(driver, settings), effective), effective, uid);
    if (error) throw error;
  }
  for (const socket of driverPrivileges(driver, settings).sockets) {
    try {
      await access(socket.path, constants.R_OK | constants.W_OK);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EACCES" || code === "EPERM") {
        throw new MissingPrivilegeError(driver, [], `the ${driver} driver needs read-write access to ${socket.what} ${socket.path}, which uid ${uid} does not have (${code}). ${socket.hint}`);
      }
    }
  }
}
