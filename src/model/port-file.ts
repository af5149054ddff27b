// Parses and validates a port file (YAML or JSON) into a PortFile; collects every issue and
// rejects the whole file if there is one. Pure: the caller reads the file.
import { parseDocument } from "yaml";
import { z } from "zod";
import { PortFileError, type Issue } from "../errors.ts";
import {
  comparePrefixes, eui64LinkLocal, IPV4_EMBEDDING, isIpv4InIpv6, LINK_LOCAL, parseAddress, parsePrefix, prefixCovers, prefixesOverlap, unusableHostAddress, type Prefix,
} from "./ip.ts";
import { isMulticastMac, isZeroMac, parseMac, type Mac } from "./mac.ts";
import { DEFAULT_WIDEST_PAIR, LEVELS, type Level, type Network, type Port, type PortFile } from "./types.ts";
import { zodIssues } from "./zod-issues.ts";

export { formatPath } from "./zod-issues.ts";

const ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const ID_EXPECTED = "1-63 characters: letters, digits, '.', '_' or '-', starting with a letter or digit";
// Linux interface names: at most 15 bytes, no '/', ':' or whitespace; "vif3.0" and "tap-1a2b" are fine.
const DEVICE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,14}$/;
const MAC_EXPECTED = "a unicast MAC like 52:54:00:12:34:56 (not multicast, broadcast or all-zero)";

const id = z.string().regex(ID, ID_EXPECTED);
const level = z.enum(LEVELS as [Level, ...Level[]], { message: `one of ${LEVELS.join(", ")}` });

const schema = z.strictObject({
  config: z.strictObject({ antiSpoofing: z.boolean().default(true) }).default({ antiSpoofing: true }),
  networks: z.array(
    z.strictObject({
      id,
      tenant: id,
      shared: z.boolean().default(false),
      protection: level.default("full"),
      widestPair: z.strictObject({
        ipv4: z.number().int().min(0).max(32).default(DEFAULT_WIDEST_PAIR.ipv4),
        ipv6: z.number().int().min(0).max(128).default(DEFAULT_WIDEST_PAIR.ipv6),
      }).optional(),
      ranges: z.array(z.string()).max(64).optional(),
    }),
  ),
  ports: z.array(
    z.strictObject({
      id,
      tenant: id.optional(),
      network: id,
      device: z.string().regex(DEVICE, "a Linux interface name of 1-15 characters: letters, digits, '.', '_' or '-'").optional(),
      mac: z.string(),
      ips: z.array(z.string()).default([]),
      allowed: z.array(z.strictObject({ ip: z.string(), mac: z.string().optional() })).default([]),
      protection: level.optional(),
    }),
  ).default([]),
});

type Raw = z.infer<typeof schema>;

function macAt(text: string, path: string, issues: Issue[]): Mac | undefined {
  const mac = parseMac(text);
  if (!mac || isMulticastMac(mac) || isZeroMac(mac)) {
    issues.push({ path, value: text, expected: MAC_EXPECTED });
    return undefined;
  }
  return mac;
}

/** One address or prefix a port holds, with where it was written (for the error). */
export type Claim = Readonly<{ port: string; tenant: string; network: string; order: number; path: string; prefix: Prefix }>;

/** Validates a parsed document (any JSON value) as a port file. */
export function validatePortFile(document: unknown, file: string): PortFile {
  const parsed = schema.safeParse(document);
  if (!parsed.success) throw new PortFileError(file, zodIssues(document, parsed.error.issues));
  return checkSemantics(parsed.data, file);
}

/** Parses YAML or JSON text (JSON is YAML) as a port file. */
export function parsePortFile(text: string, file: string): PortFile {
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PortFileError(file, doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? "?"}`, value: e.code, expected: `valid YAML or JSON (${e.message.split("\n")[0]})` })));
  }
  return validatePortFile(doc.toJS(), file);
}

function checkSemantics(raw: Raw, file: string): PortFile {
  const issues: Issue[] = [];
  const networks = new Map<string, Network>();
  const rangesOf = new Map<string, Prefix[]>();
  raw.networks.forEach((n, i) => {
    const ranges: Prefix[] = [];
    (n.ranges ?? []).forEach((text, j) => {
      const parsed = parsePrefix(text);
      if (!parsed.ok) issues.push({ path: `networks[${i}].ranges[${j}]`, value: text, expected: parsed.expected });
      else if (isIpv4InIpv6(parsed.prefix) || prefixesOverlap(parsed.prefix, LINK_LOCAL)) {
        issues.push({ path: `networks[${i}].ranges[${j}]`, value: text, expected: "an IPv4 or global IPv6 prefix (not IPv4-mapped/compatible, not link-local: link-locals follow the ports' MACs)" });
      } else ranges.push(parsed.prefix);
    });
    rangesOf.set(n.id, ranges);
    // Canonical text; no range at all is the same as none given.
    const { ranges: _given, ...rest } = n;
    const network: Network = ranges.length > 0 ? { ...rest, ranges: ranges.map((r) => r.text) } : rest;
    if (networks.has(n.id)) issues.push({ path: `networks[${i}].id`, value: n.id, expected: "a network id not used by another network" });
    if (n.shared && n.protection !== "full") {
      issues.push({ path: `networks[${i}].protection`, value: n.protection, expected: "full on a shared network (mac and off would let tenants spoof each other)" });
    }
    networks.set(n.id, network);
  });

  const ports: Port[] = [];
  const claims: Claim[] = [];
  const portIds = new Map<string, number>();
  const devices = new Map<string, number>();
  raw.ports.forEach((p, i) => {
    const at = `ports[${i}]`;
    const firstId = portIds.get(p.id);
    if (firstId !== undefined) issues.push({ path: `${at}.id`, value: p.id, expected: `a port id not used by another port (ports[${firstId}] has it)` });
    else portIds.set(p.id, i);
    const firstDevice = p.device === undefined ? undefined : devices.get(p.device);
    if (firstDevice !== undefined) issues.push({ path: `${at}.device`, value: p.device, expected: `a device not used by another port (ports[${firstDevice}] has it)` });
    else if (p.device !== undefined) devices.set(p.device, i);

    const network = networks.get(p.network);
    if (!network) issues.push({ path: `${at}.network`, value: p.network, expected: `one of the networks defined in this file (${[...networks.keys()].join(", ") || "none"})` });
    // An inherited level is reported once, on the network; a level set on the port, here.
    if (network?.shared && p.protection !== undefined && p.protection !== "full") {
      issues.push({ path: `${at}.protection`, value: p.protection, expected: `full: network ${network.id} is shared, and mac or off would let tenants spoof each other` });
    }

    const mac = macAt(p.mac, `${at}.mac`, issues);
    const ips: Prefix[] = [];
    p.ips.forEach((text, j) => {
      const address = parseAddress(text);
      const unusable = address && unusableHostAddress(address);
      if (!address) issues.push({ path: `${at}.ips[${j}]`, value: text, expected: "an IPv4 or IPv6 address, e.g. 10.0.0.5 or 2001:db8::5 (a CIDR belongs in allowed)" });
      else if (unusable) issues.push({ path: `${at}.ips[${j}]`, value: text, expected: `a host address, ${unusable}` });
      else ips.push(address);
    });
    const allowed: { ip: Prefix; mac: Mac }[] = [];
    const tenant = p.tenant ?? network?.tenant ?? p.network;
    const pairs: { path: string; prefix: Prefix; mac: Mac | undefined }[] = [];
    p.allowed.forEach((pair, j) => {
      const parsed = parsePrefix(pair.ip);
      if (!parsed.ok) issues.push({ path: `${at}.allowed[${j}].ip`, value: pair.ip, expected: parsed.expected });
      const pairMac = pair.mac === undefined ? mac : macAt(pair.mac, `${at}.allowed[${j}].mac`, issues);
      if (parsed.ok) pairs.push({ path: `${at}.allowed[${j}].ip`, prefix: parsed.prefix, mac: pairMac });
    });
    // The port's own claims: the addresses and pairs written, and the link-local derived from each
    // of its MACs (when the MAC itself is valid; an invalid one is reported above).
    const macPaths = new Map<Mac, string>(mac ? [[mac, `${at}.mac`]] : []);
    p.allowed.forEach((pair, j) => {
      const pairMac = pairs.find((x) => x.path === `${at}.allowed[${j}].ip`)?.mac;
      if (pair.mac !== undefined && pairMac && !macPaths.has(pairMac)) macPaths.set(pairMac, `${at}.allowed[${j}].mac`);
    });
    const derived = [...macPaths].map(([m, path]) => ({ path, prefix: eui64LinkLocal(m) }));
    const written = [...ips.map((prefix, j) => ({ path: `${at}.ips[${j}]`, prefix, pair: false })), ...pairs.map((x) => ({ ...x, pair: true }))];
    const refused = new Set<string>();
    for (const claim of written) {
      const expected = claimProblem(claim.prefix, claim.pair, network, derived.map((d) => d.prefix)) ?? outsideRanges(claim.prefix, network, rangesOf.get(p.network));
      if (expected) {
        issues.push({ path: claim.path, value: claim.prefix.text, expected });
        refused.add(claim.path);
      }
    }
    for (const claim of [...written.filter((c) => !refused.has(c.path)), ...derived]) {
      claims.push({ port: p.id, tenant, network: p.network, order: i, path: claim.path, prefix: claim.prefix });
    }
    if (mac) {
      pairs.forEach((x) => x.mac && allowed.push({ ip: x.prefix, mac: x.mac }));
      ports.push({ id: p.id, tenant, network: p.network, ...(p.device !== undefined && { device: p.device }), mac, ips, allowed, protection: p.protection });
    }
  });

  // A MAC another tenant uses is the cause; its derived link-local clashing too says nothing more.
  const macIssues = crossTenantMacs(ports, raw);
  const macPaths = new Set(macIssues.map((i) => i.path));
  issues.push(...crossTenantClaims(claims).filter((i) => !macPaths.has(i.path)), ...macIssues);
  if (issues.length > 0) throw new PortFileError(file, issues);
  return { config: raw.config, networks: [...networks.values()], ports };
}

/**
 * Why a port may not hold `prefix` (one of its fixed addresses, or an allowed pair's when `pair`),
 * or undefined if it may. Everywhere: no IPv4 address in IPv6 clothing (mapped, compatible). On a
 * shared network: a pair no wider than the network's widestPair and not containing a range that
 * embeds IPv4 (mapped, compatible, NAT64, 6to4); link-local only as derived from the port's MACs.
 */
function claimProblem(prefix: Prefix, pair: boolean, network: Network | undefined, derived: readonly Prefix[]): string | undefined {
  if (isIpv4InIpv6(prefix)) {
    return "not an IPv4-mapped (::ffff:0:0/96) or IPv4-compatible (::/96) IPv6 address: write the IPv4 address itself";
  }
  if (!network?.shared) return undefined;
  const widest = network.widestPair ?? DEFAULT_WIDEST_PAIR;
  const limit = prefix.family === 4 ? widest.ipv4 : widest.ipv6;
  const family = prefix.family === 4 ? "ipv4" : "ipv6";
  if (pair && prefix.length < limit) {
    return `a prefix no wider than /${limit} on shared network ${network.id} (its widestPair.${family}; an admin may raise it)`;
  }
  const embedded = IPV4_EMBEDDING.find((range) => prefixCovers(prefix, range));
  if (embedded) return `a prefix that does not contain ${embedded.text} (IPv4 addresses in IPv6 form) on shared network ${network.id}`;
  if (prefixesOverlap(prefix, LINK_LOCAL) && !derived.some((d) => d.text === prefix.text)) {
    const own = derived.map((d) => d.text).join(", ");
    return `on shared network ${network.id}, no link-local address or prefix but those derived from the port's own MACs (${own}), which it holds anyway`;
  }
  return undefined;
}

/**
 * Why `prefix` is outside its network's own ranges, or undefined if it is inside one of them (or the
 * network has no range of that family). IPv6 link-local is exempt: it is bound by the MACs. A pair
 * wider than the range that would contain it is told the range's length as the limit.
 */
function outsideRanges(prefix: Prefix, network: Network | undefined, ranges: readonly Prefix[] | undefined): string | undefined {
  if (!network || !ranges || prefixesOverlap(prefix, LINK_LOCAL)) return undefined;
  const same = ranges.filter((r) => r.family === prefix.family);
  if (same.length === 0 || same.some((r) => prefixCovers(r, prefix))) return undefined;
  const list = same.map((r) => r.text).join(", ");
  const inside = same.find((r) => prefixCovers(prefix, r));
  if (inside) return `a prefix no wider than /${inside.length}, network ${network.id}'s range ${inside.text} (its ranges: ${list})`;
  return `an address or prefix inside network ${network.id}'s ranges (${list})`;
}

/**
 * A MAC (a port's, or an allowed pair's) used by ports of two tenants on one network: one could
 * take over the other's frames in the bridge's forwarding table, so the later use is refused.
 */
function crossTenantMacs(ports: readonly Port[], raw: Raw): Issue[] {
  const index = new Map(raw.ports.map((p, i) => [p.id, i]));
  const first = new Map<string, { port: Port; path: string }>();
  const issues: Issue[] = [];
  for (const port of ports) {
    const i = index.get(port.id) ?? 0;
    const uses: [string, string][] = [[port.mac, `ports[${i}].mac`], ...port.allowed.map((pair, j): [string, string] => [pair.mac, `ports[${i}].allowed[${j}].mac`])];
    for (const [mac, path] of uses) {
      const key = `${port.network} ${mac}`;
      const seen = first.get(key);
      if (!seen) first.set(key, { port, path });
      else if (seen.port.tenant !== port.tenant) {
        issues.push({ path, value: mac, expected: `a MAC no other tenant uses on network ${port.network} (${seen.path} of port ${seen.port.id}, tenant ${seen.port.tenant}, uses it)` });
      }
    }
  }
  return issues;
}

/**
 * An address (or overlapping CIDR) claimed by ports of two tenants on one network: the claim that
 * comes later in the file is refused. CIDRs are laminar (nested or disjoint), so after sorting, the
 * claims that overlap one are exactly the open ones on a stack: O(n log n), fine for 100k ports.
 */
export function crossTenantClaims(claims: readonly Claim[]): Issue[] {
  const byNetwork = new Map<string, Claim[]>();
  for (const claim of claims) {
    const list = byNetwork.get(claim.network);
    if (list) list.push(claim);
    else byNetwork.set(claim.network, [claim]);
  }
  const issues: Issue[] = [];
  for (const claims of byNetwork.values()) {
    claims.sort((a, b) => comparePrefixes(a.prefix, b.prefix) || a.order - b.order);
    const open: Claim[] = [];
    for (const claim of claims) {
      while (open.length > 0 && !prefixesOverlap(open[open.length - 1]!.prefix, claim.prefix)) open.pop();
      for (const other of open) {
        if (other.tenant === claim.tenant) continue;
        const [first, second] = other.order <= claim.order ? [other, claim] : [claim, other];
        issues.push({
          path: second.path,
          value: second.prefix.text,
          expected: `an address no other tenant holds on network ${second.network} (${first.path} of port ${first.port}, tenant ${first.tenant}, holds ${first.prefix.text})`,
        });
      }
      open.push(claim);
    }
  }
  return issues.sort((a, b) => a.path.localeCompare(b.path, "en", { numeric: true }));
}
