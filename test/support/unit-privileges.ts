// Runs a command with the user, groups, capability sets, secure bits, no-new-privileges flag and
// umask that a systemd unit file gives its service, without systemd as PID 1: parses the unit's
// [Service] section into setpriv(1) arguments (util-linux). Used by test/dataplane/unit-privileges.test.ts
// and meant for any test that must run a daemon "as its unit would" (e.g. the real-VM test of #13):
//
//   const unit = await readUnitPrivileges("contrib/systemd/vifguard-agent.service");
//   const { command, args } = privilegedCommand(unit, ["bin/vifguard", "agent", "--config", file]);
//   spawn(command, args);                       // as root: setpriv drops to what the unit grants
//
// What it does not reproduce (systemd's namespaces and seccomp filter: ProtectSystem=, PrivateTmp=,
// SystemCallFilter=, ...) is checked by systemd-analyze in test/contrib/systemd.test.ts instead.
import { readFile } from "node:fs/promises";

/** A capability set as systemd's merging leaves it: exactly these, or every capability but these. */
export type CapabilitySet = Readonly<{ mode: "only" | "all-but"; caps: readonly string[] }>;

export type UnitPrivileges = Readonly<{
  /** User= (default root), or "dynamic" for DynamicUser=yes. */
  user: string;
  group: string | undefined;
  supplementaryGroups: readonly string[];
  boundingSet: CapabilitySet;
  ambient: readonly string[];
  /** SecureBits= words, as systemd spells them (noroot, noroot-locked, keep-caps, …). */
  secureBits: readonly string[];
  noNewPrivileges: boolean;
  /** UMask= as an octal string, e.g. "0077". */
  umask: string | undefined;
}>;

const ALL: CapabilitySet = { mode: "all-but", caps: [] };

const isTrue = (value: string): boolean => /^(1|yes|true|on)$/i.test(value.trim());
const capWords = (value: string): string[] => value.split(/\s+/).filter(Boolean).map((w) => w.toUpperCase());

/** systemd's merging of repeated CapabilityBoundingSet= lines: a list adds, "~list" removes, "" empties. */
function mergeCapabilities(current: CapabilitySet | undefined, value: string): CapabilitySet {
  const v = value.trim();
  if (v === "") return { mode: "only", caps: [] };
  const inverted = v.startsWith("~");
  const caps = capWords(inverted ? v.slice(1) : v);
  const base = current ?? (inverted ? ALL : { mode: "only" as const, caps: [] });
  if (inverted) {
    return base.mode === "only" ? { mode: "only", caps: base.caps.filter((c) => !caps.includes(c)) } : { mode: "all-but", caps: [...new Set([...base.caps, ...caps])] };
  }
  return base.mode === "only" ? { mode: "only", caps: [...new Set([...base.caps, ...caps])] } : { mode: "all-but", caps: base.caps.filter((c) => !caps.includes(c)) };
}

/** The [Service] section's privilege settings of a unit file's text. Pure. */
export function parseUnitPrivileges(text: string): UnitPrivileges {
  let section = "";
  let user = "root";
  let dynamic = false;
  let group: string | undefined;
  let supplementaryGroups: string[] = [];
  let bounding: CapabilitySet | undefined;
  let ambient: string[] = [];
  let secureBits: string[] = [];
  let noNewPrivileges = false;
  let umask: string | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== "Service") continue;
    const eq = line.indexOf("=");
    if (eq < 0) continue;
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    switch (key) {
      case "User":
        user = value || "root";
        break;
      case "Group":
        group = value || undefined;
        break;
      case "DynamicUser":
        dynamic = isTrue(value);
        break;
      case "SupplementaryGroups":
        supplementaryGroups = value === "" ? [] : [...supplementaryGroups, ...value.split(/\s+/)];
        break;
      case "CapabilityBoundingSet":
        bounding = mergeCapabilities(bounding, value);
        break;
      case "AmbientCapabilities": {
        if (value === "") ambient = [];
        else if (value.startsWith("~")) ambient = ambient.filter((c) => !capWords(value.slice(1)).includes(c));
        else ambient = [...new Set([...ambient, ...capWords(value)])];
        break;
      }
      case "SecureBits":
        secureBits = value === "" ? [] : [...secureBits, ...value.split(/\s+/)];
        break;
      case "NoNewPrivileges":
        noNewPrivileges = isTrue(value);
        break;
      case "UMask":
        umask = value;
        break;
    }
  }
  return { user: dynamic ? "dynamic" : user, group, supplementaryGroups, boundingSet: bounding ?? ALL, ambient, secureBits, noNewPrivileges, umask };
}

export async function readUnitPrivileges(file: string): Promise<UnitPrivileges> {
  return parseUnitPrivileges(await readFile(file, "utf8"));
}

/** The same unit with `capability` taken away everywhere (bounding and ambient sets). Pure. */
export function withoutCapability(unit: UnitPrivileges, capability: string): UnitPrivileges {
  const cap = capability.toUpperCase();
  const b = unit.boundingSet;
  const boundingSet: CapabilitySet = b.mode === "only" ? { mode: "only", caps: b.caps.filter((c) => c !== cap) } : { mode: "all-but", caps: [...b.caps, cap] };
  return { ...unit, boundingSet, ambient: unit.ambient.filter((c) => c !== cap) };
}

const setprivCap = (cap: string): string => cap.toLowerCase().replace(/^cap_/, "");

/** setpriv's spelling of a capability set: "-all,+net_admin" or "+all,-sys_admin". */
function capList(set: CapabilitySet): string {
  return set.mode === "only" ? ["-all", ...set.caps.map((c) => `+${setprivCap(c)}`)].join(",") : ["+all", ...set.caps.map((c) => `-${setprivCap(c)}`)].join(",");
}

export type PrivilegedOptions = Readonly<{
  /** The uid and gid to use for DynamicUser=yes (systemd picks one in 61184–65519; pick an unused one). */
  dynamicId?: number;
}>;

/**
 * setpriv arguments that give `argv` what the unit gives its service: uid and gid (root, User=/Group=,
 * or DynamicUser's), groups, bounding set, inheritable and ambient capabilities (AmbientCapabilities=
 * puts them in both, as systemd does), secure bits, no_new_privs, and the umask (through sh).
 */
export function setprivArgs(unit: UnitPrivileges, options: PrivilegedOptions = {}): string[] {
  const args: string[] = [];
  if (unit.supplementaryGroups.length > 0) throw new Error("SupplementaryGroups= is not reproduced yet (setpriv cannot add groups to --init-groups)");
  if (unit.user === "dynamic") {
    if (options.dynamicId === undefined) throw new Error("DynamicUser=yes: pass dynamicId, the uid/gid to run as");
    args.push(`--reuid=${options.dynamicId}`, `--regid=${options.dynamicId}`, "--clear-groups");
  } else {
    args.push(`--reuid=${unit.user}`, `--regid=${unit.group ?? unit.user}`, "--init-groups");
  }
  args.push(`--bounding-set=${capList(unit.boundingSet)}`);
  const inheritable: CapabilitySet = { mode: "only", caps: unit.ambient };
  args.push(`--inh-caps=${capList(inheritable)}`, `--ambient-caps=${capList(inheritable)}`);
  const bits = unit.secureBits.map((b) => `+${b.replaceAll("-", "_")}`);
  if (bits.length > 0) args.push(`--securebits=${bits.join(",")}`);
  if (unit.noNewPrivileges) args.push("--no-new-privs");
  return args;
}

/** The command line that runs `argv` as the unit would: setpriv …, then sh to set the umask, then argv. */
export function privilegedCommand(unit: UnitPrivileges, argv: readonly string[], options: PrivilegedOptions = {}): { command: string; args: string[] } {
  const umask = unit.umask ?? "0022";
  return { command: "setpriv", args: [...setprivArgs(unit, options), "--", "/bin/sh", "-c", `umask ${umask} && exec "$0" "$@"`, ...argv] };
}
